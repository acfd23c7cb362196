package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/identity"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"
)

func TestSignUserDefaults(t *testing.T) {
	t.Parallel()
	ca, user := seededSigner(t, 1), seededSigner(t, 2)
	cert := mustSign(t, ca, userReq(user.PublicKey()))

	if cert.CertType != ssh.UserCert {
		t.Errorf("CertType = %d, want user", cert.CertType)
	}
	if got, want := time.Unix(int64(cert.ValidAfter), 0), t0.Add(-time.Minute); !got.Equal(want) {
		t.Errorf("ValidAfter = %s, want %s (1m skew)", got, want)
	}
	if got, want := time.Unix(int64(cert.ValidBefore), 0), t0.Add(15*time.Minute); !got.Equal(want) {
		t.Errorf("ValidBefore = %s, want %s (15m default)", got, want)
	}
	if cert.Serial == 0 {
		t.Error("serial is zero")
	}
	if want := "agent:repo:acme/api:ref:refs/heads/main@https://token.actions.githubusercontent.com"; cert.KeyId != want {
		t.Errorf("KeyId = %q, want %q", cert.KeyId, want)
	}
	if d := cmp.Diff([]string{"agent"}, cert.ValidPrincipals); d != "" {
		t.Errorf("principals (-want +got):\n%s", d)
	}
	exts := slices.Sorted(maps.Keys(cert.Extensions))
	if d := cmp.Diff([]string{ExtensionIdentity, ExtensionPermitPTY}, exts); d != "" {
		t.Errorf("extensions: only permit-pty and the identity (-want +got):\n%s", d)
	}
	if len(cert.CriticalOptions) != 0 {
		t.Errorf("critical options = %v, want none", cert.CriticalOptions)
	}
	p, err := ParseProvenance(cert)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(agentProv, p); d != "" {
		t.Errorf("provenance (-want +got):\n%s", d)
	}
	if !sameKey(cert.SignatureKey, ca.PublicKey()) || !sameKey(cert.Key, user.PublicKey()) {
		t.Error("certificate names the wrong keys")
	}
}

func TestSignUserSerialsDiffer(t *testing.T) {
	t.Parallel()
	ca, user := seededSigner(t, 1), seededSigner(t, 2)
	seen := map[uint64]bool{}
	for range 50 {
		c := mustSign(t, ca, userReq(user.PublicKey()))
		if seen[c.Serial] {
			t.Fatalf("serial %d issued twice", c.Serial)
		}
		seen[c.Serial] = true
	}
}

// zeroThenReader yields n zero bytes, then bytes from r.
type zeroThenReader struct {
	n int
	r io.Reader
}

func (z *zeroThenReader) Read(p []byte) (int, error) {
	if z.n > 0 {
		k := min(len(p), z.n)
		clear(p[:k])
		z.n -= k
		return k, nil
	}
	return z.r.Read(p)
}

func TestSignUserSerialNeverZero(t *testing.T) {
	t.Parallel()
	ca, user := seededSigner(t, 1), seededSigner(t, 2)
	// The first draw is zero: the signer must draw again.
	cert, err := SignUser(ca, userReq(user.PublicKey()), Options{Clock: clockAt(t0), Rand: &zeroThenReader{n: 8, r: rand.Reader}})
	if err != nil {
		t.Fatal(err)
	}
	if cert.Serial == 0 {
		t.Fatal("serial is zero")
	}
	// A source of nothing but zeros is an error, not a zero serial.
	if _, err := SignUser(ca, userReq(user.PublicKey()), Options{Clock: clockAt(t0), Rand: &zeroThenReader{n: 1 << 20}}); err == nil {
		t.Fatal("signed with an all-zero random source")
	}
}

func skKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	wire := ssh.Marshal(struct {
		Name string
		Key  []byte
		App  string
	}{ssh.KeyAlgoSKED25519, bytes.Repeat([]byte{7}, 32), "ssh:"})
	k, err := ssh.ParsePublicKey(wire)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sshPub(t *testing.T, k any) ssh.PublicKey {
	t.Helper()
	p, err := ssh.NewPublicKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSignUserRequests(t *testing.T) {
	t.Parallel()
	ca, user := seededSigner(t, 1), seededSigner(t, 2)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	rsa2048, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	other := mustSign(t, ca, userReq(user.PublicKey()))

	tests := []struct {
		name    string
		edit    func(*UserRequest, *Options)
		wantErr error
		check   func(*testing.T, *ssh.Certificate)
	}{
		{name: "ttl too long", edit: func(r *UserRequest, _ *Options) { r.TTL = 2 * time.Hour }, wantErr: ErrTTLTooLong},
		{name: "ttl just above default max", edit: func(r *UserRequest, _ *Options) { r.TTL = time.Hour + time.Second }, wantErr: ErrTTLTooLong},
		{name: "ttl at max", edit: func(r *UserRequest, _ *Options) { r.TTL = time.Hour }, check: func(t *testing.T, c *ssh.Certificate) {
			if got := time.Unix(int64(c.ValidBefore), 0); !got.Equal(t0.Add(time.Hour)) {
				t.Errorf("ValidBefore = %s", got)
			}
		}},
		{name: "configured max allows more", edit: func(r *UserRequest, o *Options) { r.TTL, o.MaxTTL = 3*time.Hour, 4*time.Hour }},
		{name: "configured default ttl", edit: func(_ *UserRequest, o *Options) { o.DefaultTTL = 5 * time.Minute }, check: func(t *testing.T, c *ssh.Certificate) {
			if got := time.Unix(int64(c.ValidBefore), 0); !got.Equal(t0.Add(5 * time.Minute)) {
				t.Errorf("ValidBefore = %s", got)
			}
		}},
		{name: "default ttl above max", edit: func(_ *UserRequest, o *Options) { o.DefaultTTL, o.MaxTTL = time.Hour, time.Minute }, wantErr: ErrTTLTooLong},
		{name: "negative ttl", edit: func(r *UserRequest, _ *Options) { r.TTL = -time.Minute }, wantErr: ErrInvalidRequest},
		{name: "no principals", edit: func(r *UserRequest, _ *Options) { r.Principals = nil }, wantErr: ErrInvalidRequest},
		{name: "empty principal", edit: func(r *UserRequest, _ *Options) { r.Principals = []string{""} }, wantErr: ErrInvalidRequest},
		{name: "principal with space", edit: func(r *UserRequest, _ *Options) { r.Principals = []string{"a b"} }, wantErr: ErrInvalidRequest},
		{name: "principal with comma", edit: func(r *UserRequest, _ *Options) { r.Principals = []string{"agent,root"} }, wantErr: ErrInvalidRequest},
		{name: "principal with newline", edit: func(r *UserRequest, _ *Options) { r.Principals = []string{"agent\nroot"} }, wantErr: ErrInvalidRequest},
		{name: "principal like an option", edit: func(r *UserRequest, _ *Options) { r.Principals = []string{"-oProxyCommand"} }, wantErr: ErrInvalidRequest},
		{name: "several principals", edit: func(r *UserRequest, _ *Options) { r.Principals = []string{"agent", "deploy.bot", "ci_user-1@acme"} }},
		{name: "port forwarding only when granted", edit: func(r *UserRequest, _ *Options) { r.Extensions = []string{ExtensionPermitPortForwarding} }, check: func(t *testing.T, c *ssh.Certificate) {
			want := []string{ExtensionIdentity, ExtensionPermitPortForwarding, ExtensionPermitPTY}
			if d := cmp.Diff(want, slices.Sorted(maps.Keys(c.Extensions))); d != "" {
				t.Errorf("extensions (-want +got):\n%s", d)
			}
		}},
		{name: "agent and X11 forwarding only when granted", edit: func(r *UserRequest, _ *Options) {
			r.Extensions = []string{ExtensionPermitAgentForwarding, ExtensionPermitX11Forwarding}
		}, check: func(t *testing.T, c *ssh.Certificate) {
			want := []string{ExtensionIdentity, ExtensionPermitX11Forwarding, ExtensionPermitAgentForwarding, ExtensionPermitPTY}
			if d := cmp.Diff(want, slices.Sorted(maps.Keys(c.Extensions))); d != "" {
				t.Errorf("extensions (-want +got):\n%s", d)
			}
		}},
		{name: "unknown extension", edit: func(r *UserRequest, _ *Options) { r.Extensions = []string{"no-presence-required"} }, wantErr: ErrInvalidRequest},
		{name: "identity extension cannot be granted", edit: func(r *UserRequest, _ *Options) { r.Extensions = []string{ExtensionIdentity} }, wantErr: ErrInvalidRequest},
		{name: "source address", edit: func(r *UserRequest, _ *Options) {
			r.SourceAddress = []string{"10.0.0.0/8", "192.168.1.7", "2001:db8::/32"}
		}, check: func(t *testing.T, c *ssh.Certificate) {
			if got, want := c.CriticalOptions[OptionSourceAddress], "10.0.0.0/8,192.168.1.7,2001:db8::/32"; got != want {
				t.Errorf("source-address = %q, want %q", got, want)
			}
		}},
		{name: "source address bad prefix", edit: func(r *UserRequest, _ *Options) { r.SourceAddress = []string{"10.0.0.0/33"} }, wantErr: ErrInvalidRequest},
		{name: "source address injection", edit: func(r *UserRequest, _ *Options) { r.SourceAddress = []string{"10.0.0.1,0.0.0.0/0"} }, wantErr: ErrInvalidRequest},
		{name: "source address with zone", edit: func(r *UserRequest, _ *Options) { r.SourceAddress = []string{"fe80::1%eth0"} }, wantErr: ErrInvalidRequest},
		{name: "no key", edit: func(r *UserRequest, _ *Options) { r.PublicKey = nil }, wantErr: ErrKeyNotAllowed},
		{name: "ecdsa key", edit: func(r *UserRequest, _ *Options) { r.PublicKey = sshPub(t, &ec.PublicKey) }},
		{name: "rsa 2048 key", edit: func(r *UserRequest, _ *Options) { r.PublicKey = sshPub(t, &rsa2048.PublicKey) }},
		{name: "rsa 1024 key", edit: func(r *UserRequest, _ *Options) { r.PublicKey = sshPub(t, &rsa1024.PublicKey) }, wantErr: ErrKeyNotAllowed},
		{name: "security key", edit: func(r *UserRequest, _ *Options) { r.PublicKey = skKey(t) }, wantErr: ErrKeyNotAllowed},
		{name: "certificate as key", edit: func(r *UserRequest, _ *Options) { r.PublicKey = other }, wantErr: ErrKeyNotAllowed},
		{name: "the CA key", edit: func(r *UserRequest, _ *Options) { r.PublicKey = ca.PublicKey() }, wantErr: ErrKeyNotAllowed},
		{name: "human", edit: func(r *UserRequest, _ *Options) {
			r.Provenance = identity.Provenance{Kind: identity.KindHuman, Subject: "alice", Issuer: "https://idp.example"}
		}, check: func(t *testing.T, c *ssh.Certificate) {
			if c.KeyId != "human:alice@https://idp.example" {
				t.Errorf("KeyId = %q", c.KeyId)
			}
		}},
		{name: "unknown kind", edit: func(r *UserRequest, _ *Options) { r.Provenance.Kind = "robot" }, wantErr: ErrInvalidProvenance},
		{name: "empty subject", edit: func(r *UserRequest, _ *Options) { r.Provenance.Subject = "" }, wantErr: ErrInvalidProvenance},
		{name: "huge provenance", edit: func(r *UserRequest, _ *Options) { r.Provenance.Task = strings.Repeat("x", MaxProvenanceSize) }, wantErr: ErrInvalidProvenance},
		{name: "extra modifier and validator run", edit: func(_ *UserRequest, o *Options) {
			o.Modifiers = []Modifier{func(c *ssh.Certificate) error { c.ValidPrincipals = append(c.ValidPrincipals, "extra"); return nil }}
			o.Validators = []Validator{func(c *ssh.Certificate) error {
				if !slices.Contains(c.ValidPrincipals, "extra") {
					return errors.New("modifier did not run")
				}
				return nil
			}}
		}},
		{name: "failing validator discards", edit: func(_ *UserRequest, o *Options) {
			o.Validators = []Validator{func(*ssh.Certificate) error { return io.ErrUnexpectedEOF }}
		}, wantErr: io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, opt := userReq(user.PublicKey()), Options{Clock: clockAt(t0)}
			tt.edit(&req, &opt)
			cert, err := SignUser(ca, req, opt)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if cert != nil {
					t.Fatal("a certificate came back with the error")
				}
				return
			}
			if err != nil {
				t.Fatalf("SignUser: %v", err)
			}
			if tt.check != nil {
				tt.check(t, cert)
			}
		})
	}
}

// TestSignUserInjection tries to smuggle JSON, templates and line breaks
// through the identity: whatever is accepted must decode to exactly the
// input, pass the checker with the same identity, and never turn the agent
// into a human or change its issuer.
func TestSignUserInjection(t *testing.T) {
	t.Parallel()
	ca, user := seededSigner(t, 1), seededSigner(t, 2)
	const iss = "https://issuer.example"
	tests := []struct {
		name    string
		prov    identity.Provenance
		refused bool
	}{
		{name: "json break-out in subject", prov: identity.Provenance{Kind: "agent", Subject: `x","kind":"human`, Issuer: iss}},
		{name: "json object close", prov: identity.Provenance{Kind: "agent", Subject: `x"}`, Issuer: iss}},
		{name: "duplicate key attempt", prov: identity.Provenance{Kind: "agent", Subject: `x","issuer":"https://evil.example","x":"`, Issuer: iss}},
		{name: "template in subject", prov: identity.Provenance{Kind: "agent", Subject: `{{.Issuer}}{{ .Kind }}`, Issuer: iss}},
		{name: "key id separator in subject", prov: identity.Provenance{Kind: "agent", Subject: `bob@https://evil.example`, Issuer: iss}},
		{name: "kind prefix in subject", prov: identity.Provenance{Kind: "agent", Subject: `human:alice`, Issuer: iss}},
		{name: "backslashes and unicode", prov: identity.Provenance{Kind: "agent", Subject: `\u0022 \\" ü 日本 <script>&`, Issuer: iss}},
		{name: "injection in issuer", prov: identity.Provenance{Kind: "agent", Subject: "x", Issuer: `https://a","kind":"human`}},
		{name: "injection in task and role", prov: identity.Provenance{Kind: "agent", Subject: "x", Issuer: iss, Task: `"}{"kind":"human`, Role: `{{template "x"}}`}},
		{name: "newline in subject", prov: identity.Provenance{Kind: "agent", Subject: "x\nkind: human", Issuer: iss}, refused: true},
		{name: "carriage return in task", prov: identity.Provenance{Kind: "agent", Subject: "x", Issuer: iss, Task: "a\rb"}, refused: true},
		{name: "NUL in sponsor", prov: identity.Provenance{Kind: "agent", Subject: "x", Issuer: iss, Sponsor: "a\x00b"}, refused: true},
		{name: "escape sequence in subject", prov: identity.Provenance{Kind: "agent", Subject: "x\x1b[2Jhuman", Issuer: iss}, refused: true},
		{name: "bidi override in subject", prov: identity.Provenance{Kind: "agent", Subject: "x\u202enamuh", Issuer: iss}, refused: true},
		{name: "line separator in role", prov: identity.Provenance{Kind: "agent", Subject: "x", Issuer: iss, Role: "a\u2028b"}, refused: true},
		{name: "invalid utf-8 in subject", prov: identity.Provenance{Kind: "agent", Subject: "x\xffy", Issuer: iss}, refused: true},
		{name: "kind with payload", prov: identity.Provenance{Kind: `agent","kind":"human`, Subject: "x", Issuer: iss}, refused: true},
	}
	checker := &Checker{UserCAs: func() []ssh.PublicKey { return []ssh.PublicKey{ca.PublicKey()} }, Clock: clockAt(t0)}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := userReq(user.PublicKey())
			req.Provenance = tt.prov
			cert, err := SignUser(ca, req, Options{Clock: clockAt(t0)})
			if tt.refused {
				if !errors.Is(err, ErrInvalidProvenance) {
					t.Fatalf("err = %v, want ErrInvalidProvenance", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("SignUser: %v", err)
			}
			got, err := ParseProvenance(cert)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.prov, got); d != "" {
				t.Errorf("decoded provenance differs from input (-want +got):\n%s", d)
			}
			if want := tt.prov.String(); cert.KeyId != want {
				t.Errorf("KeyId = %q, want %q", cert.KeyId, want)
			}
			id, err := checker.Check("agent", tcpAddr("127.0.0.1:5000"), cert)
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if d := cmp.Diff(tt.prov, id.Provenance); d != "" {
				t.Errorf("checked provenance (-want +got):\n%s", d)
			}
			if id.Provenance.Kind != identity.KindAgent {
				t.Errorf("kind became %q", id.Provenance.Kind)
			}
		})
	}
}

func TestSignHost(t *testing.T) {
	t.Parallel()
	ca, host := seededSigner(t, 3), seededSigner(t, 4)
	opt := Options{Clock: clockAt(t0)}
	cert, err := SignHost(ca, host.PublicKey(), []string{"bastion.example", "10.0.0.1", "::1", "*.internal"}, 0, opt)
	if err != nil {
		t.Fatal(err)
	}
	if cert.CertType != ssh.HostCert || cert.KeyId != "host:bastion.example" || cert.Serial == 0 {
		t.Errorf("type %d, key id %q, serial %d", cert.CertType, cert.KeyId, cert.Serial)
	}
	if got := time.Unix(int64(cert.ValidBefore), 0); !got.Equal(t0.Add(DefaultHostTTL)) {
		t.Errorf("ValidBefore = %s, want one year on", got)
	}
	if len(cert.Extensions) != 0 || len(cert.CriticalOptions) != 0 {
		t.Errorf("host certificate has options %v %v", cert.Extensions, cert.CriticalOptions)
	}
	hc := ssh.CertChecker{IsHostAuthority: func(k ssh.PublicKey, _ string) bool { return sameKey(k, ca.PublicKey()) }, Clock: clockAt(t0)}
	if err := hc.CheckHostKey("bastion.example:22", nil, cert); err != nil {
		t.Errorf("a client refuses the host certificate: %v", err)
	}

	for _, bad := range []struct {
		name  string
		names []string
		ttl   time.Duration
		pub   ssh.PublicKey
		want  error
	}{
		{"no principals", nil, 0, host.PublicKey(), ErrInvalidRequest},
		{"principal with space", []string{"a b"}, 0, host.PublicKey(), ErrInvalidRequest},
		{"principal with comma", []string{"a,b"}, 0, host.PublicKey(), ErrInvalidRequest},
		{"ttl too long", []string{"bastion"}, MaxHostTTL + time.Hour, host.PublicKey(), ErrTTLTooLong},
		{"host key is the CA", []string{"bastion"}, 0, ca.PublicKey(), ErrKeyNotAllowed},
	} {
		if _, err := SignHost(ca, bad.pub, bad.names, bad.ttl, opt); !errors.Is(err, bad.want) {
			t.Errorf("%s: err = %v, want %v", bad.name, err, bad.want)
		}
	}
}
