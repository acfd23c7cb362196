package certs

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"
)

// Interoperability with the real OpenSSH tools: ssh-keygen must read the
// key files bastion writes and show its certificates as issued.

func sshKeygen(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("ssh-keygen")
	if err != nil {
		t.Fatalf("ssh-keygen not found (apt-get install -y openssh-client): %v", err)
	}
	return p
}

// keygenCert is what `ssh-keygen -L` says about a certificate.
type keygenCert struct {
	fields   map[string]string   // "Type", "Key ID", "Serial", "Valid", ...
	sections map[string][]string // "Principals", "Critical Options", "Extensions"
}

func keygenShow(t *testing.T, cert *ssh.Certificate) (keygenCert, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "id-cert.pub")
	if err := os.WriteFile(path, []byte(AuthorizedKeyLine(cert, "")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sshKeygen(t), "-L", "-f", path)
	cmd.Env = append(os.Environ(), "TZ=UTC")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return keygenCert{}, &exec.ExitError{ProcessState: cmd.ProcessState, Stderr: out}
	}
	return parseKeygenL(t, string(out)), nil
}

func parseKeygenL(t *testing.T, out string) keygenCert {
	t.Helper()
	kc := keygenCert{fields: map[string]string{}, sections: map[string][]string{}}
	section := ""
	for _, line := range strings.Split(out, "\n")[1:] {
		if strings.TrimSpace(line) == "" {
			continue
		}
		indent := len(line) - len(strings.TrimLeft(line, " \t"))
		line = strings.TrimSpace(line)
		if indent > 8 && section != "" {
			kc.sections[section] = append(kc.sections[section], line)
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			t.Fatalf("unexpected ssh-keygen line %q in\n%s", line, out)
		}
		value = strings.TrimSpace(value)
		switch name {
		case "Principals", "Critical Options", "Extensions":
			section = name
			if value != "" { // "(none)"
				kc.sections[name] = nil
			}
		default:
			section = ""
			kc.fields[name] = value
		}
	}
	return kc
}

// names returns the first word of each entry ("source-address 10.0.0.0/8"
// names source-address; "identity@bastion UNKNOWN OPTION ..." its name).
func names(entries []string) []string {
	var out []string
	for _, e := range entries {
		out = append(out, strings.Fields(e)[0])
	}
	slices.Sort(out)
	return out
}

func TestSSHKeygenShowsIssuedCertificate(t *testing.T) {
	t.Parallel()
	ca, user := seededSigner(t, 1), seededSigner(t, 2)
	tests := []struct {
		name     string
		edit     func(*UserRequest)
		wantExts []string
		wantOpts []string
	}{
		{name: "default", edit: func(*UserRequest) {}, wantExts: []string{ExtensionIdentity, ExtensionPermitPTY}},
		{name: "port forwarding granted", edit: func(r *UserRequest) {
			r.Extensions = []string{ExtensionPermitPortForwarding}
			r.Principals = []string{"agent", "deploy"}
			r.TTL = 40 * time.Minute
		}, wantExts: []string{ExtensionIdentity, ExtensionPermitPortForwarding, ExtensionPermitPTY}},
		{name: "source address", edit: func(r *UserRequest) { r.SourceAddress = []string{"10.0.0.0/8", "192.168.1.7"} },
			wantExts: []string{ExtensionIdentity, ExtensionPermitPTY}, wantOpts: []string{"source-address 10.0.0.0/8,192.168.1.7"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := userReq(user.PublicKey())
			tt.edit(&req)
			cert, err := SignUser(ca, req, Options{Clock: clockAt(t0)})
			if err != nil {
				t.Fatal(err)
			}
			kc, err := keygenShow(t, cert)
			if err != nil {
				t.Fatalf("ssh-keygen -L: %v: %s", err, err.(*exec.ExitError).Stderr)
			}
			if got := kc.fields["Type"]; got != "ssh-ed25519-cert-v01@openssh.com user certificate" {
				t.Errorf("Type = %q", got)
			}
			if got, want := kc.fields["Key ID"], `"`+cert.KeyId+`"`; got != want {
				t.Errorf("Key ID = %s, want %s", got, want)
			}
			if got, want := kc.fields["Serial"], strconv.FormatUint(cert.Serial, 10); got != want {
				t.Errorf("Serial = %s, want %s", got, want)
			}
			const layout = "2006-01-02T15:04:05"
			ttl := req.TTL
			if ttl == 0 {
				ttl = DefaultTTL
			}
			wantValid := "from " + t0.Add(-ClockSkew).Format(layout) + " to " + t0.Add(ttl).Format(layout)
			if got := kc.fields["Valid"]; got != wantValid {
				t.Errorf("Valid = %q, want %q", got, wantValid)
			}
			if d := cmp.Diff(req.Principals, kc.sections["Principals"]); d != "" {
				t.Errorf("principals (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tt.wantExts, names(kc.sections["Extensions"])); d != "" {
				t.Errorf("extensions: only the granted ones (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tt.wantOpts, kc.sections["Critical Options"]); d != "" {
				t.Errorf("critical options (-want +got):\n%s", d)
			}
		})
	}
}

// OpenSSH verifies the CA signature when it parses a certificate, so a
// certificate changed after signing is rejected by ssh-keygen too.
func TestSSHKeygenRejectsTamperedCertificate(t *testing.T) {
	t.Parallel()
	ca, user := seededSigner(t, 1), seededSigner(t, 2)
	cert := mustSign(t, ca, userReq(user.PublicKey()))
	cert.ValidPrincipals = []string{"root"}
	_, err := keygenShow(t, cert)
	if err == nil {
		t.Fatal("ssh-keygen accepted a certificate whose principals changed after signing")
	}
	t.Logf("ssh-keygen: %s", err.(*exec.ExitError).Stderr)
}

func TestSSHKeygenReadsCAFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cas, err := InitCAs(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sshKeygen(t), "-y", "-f", filepath.Join(dir, UserCAFile)).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen -y: %v: %s", err, out)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(out)
	if err != nil || !sameKey(pub, cas.User.PublicKey()) {
		t.Fatalf("ssh-keygen derives another public key from user_ca: %s", out)
	}

	cmd := exec.Command(sshKeygen(t), "-L", "-f", filepath.Join(dir, HostCertFile))
	cmd.Env = append(os.Environ(), "TZ=UTC")
	out, err = cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen -L host cert: %v: %s", err, out)
	}
	kc := parseKeygenL(t, string(out))
	if got := kc.fields["Type"]; got != "ssh-ed25519-cert-v01@openssh.com host certificate" {
		t.Errorf("Type = %q", got)
	}
	if d := cmp.Diff(DefaultHostPrincipals(), kc.sections["Principals"]); d != "" {
		t.Errorf("host principals (-want +got):\n%s", d)
	}
	if len(kc.sections["Extensions"]) != 0 || len(kc.sections["Critical Options"]) != 0 {
		t.Errorf("host certificate options: %v", kc.sections)
	}
}
