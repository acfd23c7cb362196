package config

import (
	"strings"
	"testing"
	"time"
)

func TestDefaultFileParsesToDefaults(t *testing.T) {
	t.Parallel()
	c, err := Parse(DefaultFile(), "bastion.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.SSH.Listen != "127.0.0.1:2222" || c.HTTP.Listen != "127.0.0.1:8080" || c.Certs.DefaultTTL != 15*time.Minute ||
		c.Certs.MaxTTL != time.Hour || c.Exec.DefaultUser != "" || c.Exec.UIDRange != "2000000-2099999" || c.Exec.Shell != "/bin/bash" ||
		strings.Join(c.SSH.Ciphers, ",") != "aes128-gcm@openssh.com,aes256-gcm@openssh.com" {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown key names line and column", "ssh:\n  listen: 127.0.0.1:22\n  lisen: x\n", "[3:3]"},
		{"bad duration", "certs:\n  max_ttl: forever\n", `invalid duration "forever"`},
		{"default above max", "certs:\n  default_ttl: 2h\n  max_ttl: 1h\n", "default_ttl 2h0m0s is above max_ttl"},
		{"plain http off loopback", "http:\n  listen: 0.0.0.0:8080\n", "plain HTTP is only allowed on a loopback address"},
		{"tls half configured", "http:\n  tls_cert: a.pem\n", "tls_cert and tls_key go together"},
		{"unknown cipher", "ssh:\n  ciphers: [aes128-cbc]\n", `cipher "aes128-cbc" is not one of`},
		{"empty user mapping", "exec:\n  users:\n    agent: \"\"\n", `principal "agent" maps to an empty user`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tc.yaml), "f.yaml")
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "f.yaml") {
				t.Fatalf("err = %v, want it to name f.yaml and contain %q", err, tc.want)
			}
		})
	}
}

func TestTLSAllowsAnyAddress(t *testing.T) {
	t.Parallel()
	c, err := Parse([]byte("http:\n  listen: 0.0.0.0:8443\n  tls_cert: c.pem\n  tls_key: k.pem\n"), "f")
	if err != nil || c.HTTP.Listen != "0.0.0.0:8443" {
		t.Fatalf("%+v %v", c.HTTP, err)
	}
}
