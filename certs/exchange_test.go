package certs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/identity"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"
)

const edKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDaHjmdxuo7gAZgvpzGpNBEp3jzm8nsRREE+HX0EfUvs agent@ci"

// Made with ssh-keygen: a 1024-bit RSA key, and a certificate (which is
// not a key to certify).
const (
	rsa1024Key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDFTyUTF2/fFfh7P/1slqvg5RXPNgWXjVkr9hgdnBcVNxutjD7QKuk05T0Uz3BRmi9BL/zpJD5oQmOatxZJb41l/E9B64HBjKgba76Hii+qSZX6iw2U1jdHtWCba1i68Daz4j+03WYYpepfRWWBzGE3nLPmSFcd+IMFbWjwXy7gcw=="
	certLine   = "ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAAIM1gMKbSs/Di3SjISz9+EaTNFcDdJE4M3nweTLVlZvVsAAAAIL7DICD7Rtd7pYQdoTAHH7UBtM2k565a0RyG6RgPHIjkAAAAAAAAAAAAAAABAAAABHRlc3QAAAAJAAAABWFnZW50AAAAAAAAAAD//////////wAAAAAAAACCAAAAFXBlcm1pdC1YMTEtZm9yd2FyZGluZwAAAAAAAAAXcGVybWl0LWFnZW50LWZvcndhcmRpbmcAAAAAAAAAFnBlcm1pdC1wb3J0LWZvcndhcmRpbmcAAAAAAAAACnBlcm1pdC1wdHkAAAAAAAAADnBlcm1pdC11c2VyLXJjAAAAAAAAAAAAAAAzAAAAC3NzaC1lZDI1NTE5AAAAIDaHjmdxuo7gAZgvpzGpNBEp3jzm8nsRREE+HX0EfUvsAAAAUwAAAAtzc2gtZWQyNTUxOQAAAEApnj8gVg6nfiu7vouQZJ8SGrAse4/Qzijx8N+fs2ddhSDUgqlD38zgp35DAKIck8IREesSO9tz2feVcSvnmP8J"
)

var requestTests = []struct {
	name    string
	body    string
	wantTTL time.Duration
	wantErr string // substring of ExchangeError.Msg; "" means accepted
}{
	{name: "key only", body: `{"public_key":"` + edKey + `"}`},
	{name: "all fields", body: `{"public_key":"` + edKey + `","ttl":"10m","task":"JIRA-42","reason":"deploy hotfix"}`, wantTTL: 10 * time.Minute},
	{name: "key with trailing newline", body: `{"public_key":"` + edKey + `\n"}`},
	{name: "empty ttl", body: `{"public_key":"` + edKey + `","ttl":""}`},
	{name: "empty body", body: ``, wantErr: "one JSON object"},
	{name: "not json", body: `public_key=x`, wantErr: "one JSON object"},
	{name: "array", body: `[{"public_key":"` + edKey + `"}]`, wantErr: "one JSON object"},
	{name: "unknown field", body: `{"public_key":"` + edKey + `","principals":["root"]}`, wantErr: "unknown field"},
	{name: "case variant field", body: `{"Public_Key":"` + edKey + `"}`, wantErr: "unknown field"},
	{name: "duplicate field", body: `{"public_key":"` + edKey + `","public_key":"` + edKey + `"}`, wantErr: "duplicate field"},
	{name: "two objects", body: `{"public_key":"` + edKey + `"}{"public_key":"` + edKey + `"}`, wantErr: "one JSON object"},
	{name: "trailing garbage", body: `{"public_key":"` + edKey + `"}x`, wantErr: "one JSON object"},
	{name: "ttl as number", body: `{"public_key":"` + edKey + `","ttl":600}`, wantErr: "must be a string"},
	{name: "missing key", body: `{"ttl":"10m"}`, wantErr: "public_key is required"},
	{name: "garbage key", body: `{"public_key":"ssh-ed25519 AAAA"}`, wantErr: "authorized_keys line"},
	{name: "second line smuggled", body: `{"public_key":"garbage\n` + edKey + `"}`, wantErr: "single authorized_keys line"},
	{name: "key with options", body: `{"public_key":"command=\"/bin/sh\" ` + edKey + `"}`, wantErr: "options"},
	// x/crypto no longer parses DSA keys at all.
	{name: "dsa key", body: `{"public_key":"ssh-dss AAAAB3NzaC1kc3MAAACBAJLbKYFH+5T1Mzi8TZiWEInsOQw7s+dsJOzLqWJ5o33SsNNfGXueF8NSHlHuykZx/uQhpL7th3lqCLqQcjFrQ+SGA0m/2QgLqd4xLwYGLyJdzad0pmnprL07j/38W+r1v7Xmin0If6W2yCPpSV0ww3Ndzo8rojPPFfIUlBJvNewBAAAAFQCg8xEBHwRn3xGzwYMeV4YA3BT4kwAAAIA19le3gS9bMyXn3+WoA1agjwwg/ChYzGuTdywSpl3umOS1VL4GDqyxrCMQTTYyZXJbkGVRoEKmy5xEYmmiit+8O9uj8JrkPCtTDWitC1KCMzF3/a5OfKPnSSIuLTNtIAMwwNq/xvGZGwOU9eEXDc0viEe/gy1xJkQXgmUame0euQAAAIAkJUkV+mdDaJ9qbq9hKZbsBmVemUVnKluazKa8pQKwLiQh43lJwlIw+STF844qaWtOOHgZc8FcnTF1VTUmpdveWTnSpGiUQ5cYSjuhygj8k2d3nf6mCqB/8mTrCE8tALiRy0jNWeKTBfdP1AuLDV4SKIrOXM2QrAKwpbrVOzI8Fg=="}`, wantErr: "authorized_keys line"},
	{name: "rsa 1024 key", body: `{"public_key":"` + rsa1024Key + `"}`, wantErr: "not allowed"},
	{name: "certificate as key", body: `{"public_key":"` + certLine + `"}`, wantErr: "not allowed"},
	{name: "bad ttl", body: `{"public_key":"` + edKey + `","ttl":"forever"}`, wantErr: "positive duration"},
	{name: "zero ttl", body: `{"public_key":"` + edKey + `","ttl":"0s"}`, wantErr: "positive duration"},
	{name: "negative ttl", body: `{"public_key":"` + edKey + `","ttl":"-5m"}`, wantErr: "positive duration"},
	{name: "task with newline", body: `{"public_key":"` + edKey + `","task":"a\nb"}`, wantErr: "task"},
	{name: "task too long", body: `{"public_key":"` + edKey + `","task":"` + strings.Repeat("t", 300) + `"}`, wantErr: "task"},
	{name: "reason with escape", body: `{"public_key":"` + edKey + `","reason":"\u001b[31m"}`, wantErr: "reason"},
	{name: "too large", body: `{"public_key":"` + edKey + `","reason":"` + strings.Repeat("r", MaxRequestSize) + `"}`, wantErr: "larger than"},
}

func TestParseCertificateRequest(t *testing.T) {
	t.Parallel()
	for _, tt := range requestTests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, pub, ttl, err := ParseCertificateRequest(strings.NewReader(tt.body))
			if tt.wantErr != "" {
				var xe *ExchangeError
				if !errors.As(err, &xe) || xe.Kind != BadRequest || !errors.Is(err, ErrBadRequest) {
					t.Fatalf("err = %v, want a BadRequest ExchangeError", err)
				}
				if !strings.Contains(xe.Msg, tt.wantErr) {
					t.Errorf("Msg = %q, want it to mention %q", xe.Msg, tt.wantErr)
				}
				if pub != nil {
					t.Error("a key came back with the error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if pub == nil || pub.Type() != ssh.KeyAlgoED25519 || ttl != tt.wantTTL {
				t.Errorf("pub %v ttl %s (want %s)", pub, ttl, tt.wantTTL)
			}
			if !strings.HasPrefix(strings.TrimSpace(req.PublicKey), edKey) {
				t.Errorf("PublicKey = %q", req.PublicKey)
			}
		})
	}
}

// FuzzParseCertificateRequest: no input panics; an accepted request
// re-encodes to one that parses to the same request, key and ttl.
func FuzzParseCertificateRequest(f *testing.F) {
	for _, tt := range requestTests {
		if len(tt.body) < 4096 {
			f.Add([]byte(tt.body))
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, pub, ttl, err := ParseCertificateRequest(bytes.NewReader(body))
		if err != nil {
			var xe *ExchangeError
			if !errors.As(err, &xe) || xe.Kind != BadRequest {
				t.Fatalf("refusal is not a BadRequest ExchangeError: %v", err)
			}
			return
		}
		if pub == nil || ttl < 0 || hasUnsafeRune(req.Task) || hasUnsafeRune(req.Reason) {
			t.Fatalf("accepted %+v, pub %v, ttl %s", req, pub, ttl)
		}
		if err := checkKeyType(pub); err != nil {
			t.Fatalf("accepted a disallowed key: %v", err)
		}
		enc, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		req2, pub2, ttl2, err := ParseCertificateRequest(bytes.NewReader(enc))
		if err != nil {
			t.Fatalf("re-parsing %s: %v", enc, err)
		}
		if req2 != req || !sameKey(pub, pub2) || ttl2 != ttl {
			t.Fatalf("round trip changed %+v into %+v", req, req2)
		}
	})
}

// exchangeFixture is a real OIDC provider, a Verifier trusting it, and an
// Exchanger with a role for GitHub-like tokens from it.
type exchangeFixture struct {
	p      *provider
	ex     *Exchanger
	ca     ssh.Signer
	hostCA ssh.Signer
	user   ssh.Signer
}

func newExchangeFixture(t *testing.T) *exchangeFixture {
	t.Helper()
	p := startProvider(t, rsaKey(t, 0))
	v, err := NewVerifier(context.Background(), []IssuerConfig{{URL: p.Issuer(), Audience: []string{p.ClientID}, SponsorClaim: "actor"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	roles := []RoleConfig{
		{Name: "deploy-agent", Principals: []string{"deploy"}, TTL: 10 * time.Minute,
			Extensions: []string{ExtensionPermitPortForwarding},
			Match:      MatchConfig{Issuer: p.Issuer(), Subject: "repo:acme/*:ref:refs/heads/main", Claims: map[string]string{"repository_owner": "acme"}}},
		{Name: "long-jobs", Principals: []string{"batch"}, MaxTTL: 4 * time.Hour,
			Match: MatchConfig{Issuer: p.Issuer(), Subject: "batch:*"}},
		{Name: "humans", Principals: []string{"alice"}, Kind: identity.KindHuman,
			Match: MatchConfig{Issuer: p.Issuer(), Subject: "user:*"}},
	}
	if err := ValidateRoles(roles); err != nil {
		t.Fatal(err)
	}
	f := &exchangeFixture{p: p, ca: seededSigner(t, 1), hostCA: seededSigner(t, 3), user: seededSigner(t, 2)}
	f.ex = &Exchanger{Verifier: v, Roles: roles, CA: f.ca, HostCA: f.hostCA.PublicKey()}
	return f
}

func (f *exchangeFixture) body(t *testing.T, extra string) string {
	t.Helper()
	return `{"public_key":"` + AuthorizedKeyLine(f.user.PublicKey(), "agent@ci") + `"` + extra + `}`
}

func TestExchange(t *testing.T) {
	t.Parallel()
	f := newExchangeFixture(t)
	ghUser := &claimsUser{sub: "repo:acme/api:ref:refs/heads/main", extra: map[string]any{"actor": "octocat", "repository_owner": "acme"}}
	tok := f.p.codeFlowToken(t, ghUser)
	ctx := context.Background()

	resp, cert, prov, err := f.ex.Exchange(ctx, tok, strings.NewReader(f.body(t, `,"task":"JIRA-42","reason":"hotfix"`)))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	wantProv := &identity.Provenance{Kind: identity.KindAgent, Subject: ghUser.sub, Issuer: f.p.Issuer(), Sponsor: "octocat", Task: "JIRA-42", Role: "deploy-agent"}
	if d := cmp.Diff(wantProv, prov); d != "" {
		t.Errorf("provenance (-want +got):\n%s", d)
	}
	// The certificate line parses back to the returned certificate.
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(resp.Certificate))
	if err != nil || !bytes.Equal(pub.Marshal(), cert.Marshal()) {
		t.Fatalf("certificate line does not parse to the certificate: %v", err)
	}
	if resp.Serial != cert.Serial || resp.KeyID != wantProv.String() || !cmp.Equal(resp.Principals, []string{"deploy"}) {
		t.Errorf("response = %+v", resp)
	}
	if d := time.Until(resp.ExpiresAt); d < 9*time.Minute || d > 10*time.Minute {
		t.Errorf("expires in %s, want the role's 10m", d)
	}
	if _, ok := cert.Extensions[ExtensionPermitPortForwarding]; !ok {
		t.Error("role grant permit-port-forwarding missing")
	}
	// known_hosts trusts the host CA for every host.
	marker, hosts, hostCA, _, _, err := ssh.ParseKnownHosts([]byte(resp.KnownHosts))
	if err != nil || marker != "cert-authority" || !cmp.Equal(hosts, []string{"*"}) || !sameKey(hostCA, f.hostCA.PublicKey()) {
		t.Errorf("known_hosts %q: marker %q hosts %v err %v", resp.KnownHosts, marker, hosts, err)
	}
	// The serial is a string in JSON, so JavaScript clients keep all 64 bits.
	js, _ := json.Marshal(resp)
	if !bytes.Contains(js, []byte(`"serial":"`)) {
		t.Errorf("serial is not a JSON string: %s", js)
	}
	// And the checker accepts it as the right identity.
	c := &Checker{UserCAs: func() []ssh.PublicKey { return []ssh.PublicKey{f.ca.PublicKey()} }}
	id, err := c.Check("deploy", tcpAddr("127.0.0.1:1"), cert)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(*wantProv, id.Provenance); d != "" {
		t.Errorf("checked provenance (-want +got):\n%s", d)
	}
}

func TestExchangeRefusals(t *testing.T) {
	t.Parallel()
	f := newExchangeFixture(t)
	gh := f.p.codeFlowToken(t, &claimsUser{sub: "repo:acme/api:ref:refs/heads/main", extra: map[string]any{"repository_owner": "acme"}})
	batch := f.p.codeFlowToken(t, &claimsUser{sub: "batch:nightly"})
	human := f.p.codeFlowToken(t, &claimsUser{sub: "user:alice"})
	stranger := f.p.codeFlowToken(t, &claimsUser{sub: "repo:evil/api:ref:refs/heads/main"})
	ctrl := f.p.codeFlowToken(t, &claimsUser{sub: "user:x\x1b[2J"})

	tests := []struct {
		name     string
		token    string
		body     string
		kind     ErrorKind // 0: accepted
		msg      string
		wantProv bool
		check    func(*testing.T, *ssh.Certificate, *identity.Provenance)
	}{
		{name: "bad token", token: "x.y.z", body: f.body(t, ""), kind: Unauthenticated, msg: "malformed token"},
		{name: "no role", token: stranger, body: f.body(t, ""), kind: Forbidden, msg: "no role", wantProv: true},
		{name: "bad body", token: gh, body: `{"public_key":1}`, kind: BadRequest, msg: "string", wantProv: true},
		{name: "ttl above default max", token: gh, body: f.body(t, `,"ttl":"2h"`), kind: BadRequest, msg: "ttl is above the maximum of 1h0m0s", wantProv: true},
		{name: "key is the CA", token: gh, body: `{"public_key":"` + AuthorizedKeyLine(f.ca.PublicKey(), "") + `"}`, kind: BadRequest, msg: "public key not allowed", wantProv: true},
		{name: "control characters in the token subject", token: ctrl, body: f.body(t, ""), kind: Forbidden, msg: "cannot be put in a certificate", wantProv: true},
		{name: "role max allows a longer ttl", token: batch, body: f.body(t, `,"ttl":"3h"`), check: func(t *testing.T, c *ssh.Certificate, _ *identity.Provenance) {
			if d := time.Duration(c.ValidBefore-c.ValidAfter) * time.Second; d != 3*time.Hour+ClockSkew {
				t.Errorf("validity %s", d)
			}
		}},
		{name: "role max still caps", token: batch, body: f.body(t, `,"ttl":"5h"`), kind: BadRequest, msg: "4h0m0s", wantProv: true},
		{name: "role kind overrides issuer kind", token: human, body: f.body(t, ""), check: func(t *testing.T, c *ssh.Certificate, p *identity.Provenance) {
			if p.Kind != identity.KindHuman || c.KeyId != "human:user:alice@"+f.p.Issuer() {
				t.Errorf("kind %q key id %q", p.Kind, c.KeyId)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, cert, prov, err := f.ex.Exchange(context.Background(), tt.token, strings.NewReader(tt.body))
			if tt.kind == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if resp == nil || cert == nil || prov == nil {
					t.Fatal("missing results")
				}
				tt.check(t, cert, prov)
				return
			}
			var xe *ExchangeError
			if !errors.As(err, &xe) || xe.Kind != tt.kind {
				t.Fatalf("err = %v, want kind %s", err, tt.kind)
			}
			if !strings.Contains(xe.Msg, tt.msg) {
				t.Errorf("Msg = %q, want it to mention %q", xe.Msg, tt.msg)
			}
			if resp != nil || cert != nil {
				t.Error("a certificate came back with the refusal")
			}
			if (prov != nil) != tt.wantProv {
				t.Errorf("provenance = %+v, want present: %v", prov, tt.wantProv)
			}
			if tt.kind == Forbidden && tt.msg == "no role" && !errors.Is(err, ErrNoRole) {
				t.Errorf("err does not wrap ErrNoRole: %v", err)
			}
		})
	}
}
