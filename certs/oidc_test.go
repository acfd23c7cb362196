package certs

import (
	"context"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/identity"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/oauth2-proxy/mockoidc"
)

// Real OIDC providers for the tests: github.com/oauth2-proxy/mockoidc
// serves discovery and JWKS over HTTP and signs RS256 ID tokens.

// rsaKeys are generated once: RSA generation is slow under -race.
var rsaKeys = sync.OnceValues(func() ([]*rsa.PrivateKey, error) {
	var keys []*rsa.PrivateKey
	for range 3 {
		kp, err := mockoidc.RandomKeypair(2048)
		if err != nil {
			return nil, err
		}
		keys = append(keys, kp.PrivateKey)
	}
	return keys, nil
})

func rsaKey(t testing.TB, i int) *rsa.PrivateKey {
	t.Helper()
	keys, err := rsaKeys()
	if err != nil {
		t.Fatal(err)
	}
	return keys[i]
}

// provider is a running mockoidc issuer. Its code-flow helper is
// serialised: mockoidc hands queued users to the next authorize call.
type provider struct {
	*mockoidc.MockOIDC
	mu sync.Mutex
}

func startProvider(t testing.TB, key *rsa.PrivateKey) *provider {
	t.Helper()
	m, err := mockoidc.NewServer(key)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ln, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown() })
	return &provider{MockOIDC: m}
}

// claimsUser is a mockoidc user whose ID token carries extra claims, such
// as GitHub's "actor" or "repository_owner".
type claimsUser struct {
	sub    string
	groups []string
	extra  map[string]any
}

func (u *claimsUser) ID() string { return u.sub }
func (u *claimsUser) Userinfo([]string) ([]byte, error) {
	return json.Marshal(map[string]string{"sub": u.sub})
}
func (u *claimsUser) Claims(_ []string, base *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	return &extraClaims{IDTokenClaims: base, groups: u.groups, extra: u.extra}, nil
}

type extraClaims struct {
	*mockoidc.IDTokenClaims
	groups []string
	extra  map[string]any
}

func (c *extraClaims) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(c.IDTokenClaims)
	if err != nil {
		return nil, err
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	if c.groups != nil {
		m["groups"] = c.groups
	}
	for k, v := range c.extra {
		m[k] = v
	}
	return json.Marshal(m)
}

// codeFlowToken gets an ID token for u the way a relying party does: the
// authorization-code flow over HTTP.
func (p *provider) codeFlowToken(t testing.TB, u mockoidc.User) string {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.QueueUser(u)
	const redirect = "http://127.0.0.1/callback"
	q := url.Values{"scope": {"openid groups"}, "state": {"s"}, "client_id": {p.ClientID}, "response_type": {"code"}, "redirect_uri": {redirect}, "nonce": {"n"}}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(p.AuthorizationEndpoint() + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("authorize: %s, location %q", resp.Status, resp.Header.Get("Location"))
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "redirect_uri": {redirect},
		"client_id": {p.ClientID}, "client_secret": {p.ClientSecret}}
	resp, err = http.PostForm(p.TokenEndpoint(), form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var tr struct {
		IDToken string `json:"id_token"`
	}
	if err := json.Unmarshal(body, &tr); err != nil || tr.IDToken == "" {
		t.Fatalf("token endpoint: %s %s", resp.Status, body)
	}
	return tr.IDToken
}

// mint has mockoidc sign an ID token directly, with cfg (issuer, client
// id, ttl) and kp possibly changed from the provider's own.
func mint(t testing.TB, cfg *mockoidc.Config, kp *mockoidc.Keypair, u mockoidc.User, now time.Time) string {
	t.Helper()
	s := &mockoidc.Session{SessionID: "sid", Scopes: []string{"openid", "groups"}, User: u}
	tok, err := s.IDToken(cfg, kp, now)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func payloadOf(t testing.TB, cfg *mockoidc.Config, sub string) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"iss": cfg.Issuer, "aud": cfg.ClientID, "sub": sub,
		"iat": time.Now().Unix(), "exp": time.Now().Add(10 * time.Minute).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestVerify(t *testing.T) {
	t.Parallel()
	a := startProvider(t, rsaKey(t, 0))     // configured, sponsor claim "actor"
	human := startProvider(t, rsaKey(t, 1)) // configured as kind human
	esOnly := startProvider(t, rsaKey(t, 1))
	unknown := startProvider(t, rsaKey(t, 2)) // a real provider nobody configured

	v, err := NewVerifier(context.Background(), []IssuerConfig{
		{URL: a.Issuer(), Audience: []string{a.ClientID, "second-client"}, SponsorClaim: "actor"},
		{URL: human.Issuer(), Audience: []string{human.ClientID}, Kind: identity.KindHuman},
		{URL: esOnly.Issuer(), Audience: []string{esOnly.ClientID}, Algorithms: []string{"ES256"}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}

	gh := &claimsUser{sub: "repo:acme/api:ref:refs/heads/main", groups: []string{"deployers"},
		extra: map[string]any{"actor": "octocat", "repository_owner": "acme", "run_attempt": 2}}
	cfgA := a.Config()
	with := func(edit func(*mockoidc.Config)) *mockoidc.Config { c := *cfgA; edit(&c); return &c }
	otherKey := &mockoidc.Keypair{PrivateKey: rsaKey(t, 2), PublicKey: &rsaKey(t, 2).PublicKey}
	if otherKey.Kid, err = a.Keypair.KeyID(); err != nil { // same kid as A's key: only the signature differs
		t.Fatal(err)
	}
	now := time.Now()

	valid := a.codeFlowToken(t, gh)
	parts := strings.Split(valid, ".")
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sig[len(sig)/2] ^= 0x01
	flippedSig := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)
	tamperedPayload := parts[0] + "." + payloadOf(t, cfgA, "repo:evil/api:ref:refs/heads/main") + "." + parts[2]

	algNone := b64(`{"alg":"none","typ":"JWT"}`) + "." + payloadOf(t, cfgA, gh.sub) + "."
	// HS256 keyed with the issuer's public key: the classic algorithm
	// confusion attack.
	pubDER, err := x509.MarshalPKIXPublicKey(&rsaKey(t, 0).PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	hsInput := b64(`{"alg":"HS256","typ":"JWT"}`) + "." + payloadOf(t, cfgA, gh.sub)
	mac := hmac.New(sha256.New, pubDER)
	mac.Write([]byte(hsInput))
	hs256 := hsInput + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))

	tests := []struct {
		name  string
		token string
		want  string // ExchangeError.Msg; "" means accepted
		check func(*testing.T, *Claims)
	}{
		{name: "valid (code flow)", token: valid, check: func(t *testing.T, c *Claims) {
			want := &Claims{Issuer: a.Issuer(), Subject: gh.sub, Audience: []string{a.ClientID}, Groups: []string{"deployers"},
				Kind: identity.KindAgent, Sponsor: "octocat"}
			got := *c
			got.Raw, got.Expiry = nil, time.Time{}
			if d := cmp.Diff(want, &got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
			if c.Raw["repository_owner"] != "acme" || c.Raw["run_attempt"] != json.Number("2") {
				t.Errorf("raw claims = %v", c.Raw)
			}
			if d := time.Until(c.Expiry); d <= 0 || d > time.Hour {
				t.Errorf("expiry in %s", d)
			}
		}},
		{name: "second accepted audience", token: mint(t, with(func(c *mockoidc.Config) { c.ClientID = "second-client" }), a.Keypair, gh, now)},
		{name: "human issuer", token: human.codeFlowToken(t, &claimsUser{sub: "alice"}), check: func(t *testing.T, c *Claims) {
			if c.Kind != identity.KindHuman || c.Sponsor != "" {
				t.Errorf("kind %q sponsor %q", c.Kind, c.Sponsor)
			}
		}},
		{name: "expired", token: mint(t, cfgA, a.Keypair, gh, now.Add(-2*time.Hour)), want: "token expired"},
		{name: "wrong audience", token: mint(t, with(func(c *mockoidc.Config) { c.ClientID = "someone-else" }), a.Keypair, gh, now), want: "token audience not accepted"},
		{name: "unknown issuer", token: unknown.codeFlowToken(t, gh), want: "unknown issuer"},
		{name: "wrong issuer (near-miss url)", token: mint(t, with(func(c *mockoidc.Config) { c.Issuer += "/" }), a.Keypair, gh, now), want: "unknown issuer"},
		{name: "another issuer's name, A's signature", token: mint(t, with(func(c *mockoidc.Config) { c.Issuer = human.Issuer(); c.ClientID = human.ClientID }), a.Keypair, gh, now), want: "invalid token"},
		{name: "signed by another key", token: mint(t, cfgA, otherKey, gh, now), want: "invalid token"},
		{name: "tampered signature", token: flippedSig, want: "invalid token"},
		{name: "tampered payload", token: tamperedPayload, want: "invalid token"},
		{name: "alg none", token: algNone, want: "token algorithm not allowed"},
		{name: "alg HS256 with the public key", token: hs256, want: "token algorithm not allowed"},
		{name: "RS256 where only ES256 is allowed", token: esOnly.codeFlowToken(t, gh), want: "token algorithm not allowed"},
		{name: "no subject", token: mint(t, cfgA, a.Keypair, &claimsUser{sub: ""}, now), want: "token has no subject"},
		{name: "empty", token: "", want: "malformed token"},
		{name: "not a jwt", token: "not-a-jwt", want: "malformed token"},
		{name: "garbage parts", token: "a.b.c", want: "malformed token"},
		{name: "oversized", token: strings.Repeat("a", maxTokenSize+1), want: "malformed token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c, err := v.Verify(ctx, tt.token)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if tt.check != nil {
					tt.check(t, c)
				}
				return
			}
			var xe *ExchangeError
			if !errors.As(err, &xe) || xe.Kind != Unauthenticated || !errors.Is(err, ErrUnauthenticated) {
				t.Fatalf("err = %v, want an Unauthenticated ExchangeError", err)
			}
			if xe.Msg != tt.want {
				t.Errorf("Msg = %q, want %q (cause %v)", xe.Msg, tt.want, xe.Err)
			}
			if c != nil {
				t.Error("claims returned with a refusal")
			}
			if tt.token != "" && len(tt.token) < 4096 && strings.Contains(xe.Msg, tt.token) {
				t.Error("the message echoes the token")
			}
		})
	}
}

func TestNewVerifierConfig(t *testing.T) {
	t.Parallel()
	ok := IssuerConfig{URL: "https://idp.example", Audience: []string{"bastion"}}
	tests := []struct {
		name string
		edit func(*IssuerConfig)
		want string // "" valid
	}{
		{"valid", func(*IssuerConfig) {}, ""},
		{"http on loopback", func(c *IssuerConfig) { c.URL = "http://127.0.0.1:5556/dex" }, ""},
		{"http on localhost", func(c *IssuerConfig) { c.URL = "http://localhost:5556" }, ""},
		{"http elsewhere", func(c *IssuerConfig) { c.URL = "http://idp.example" }, "https"},
		{"no url", func(c *IssuerConfig) { c.URL = "" }, "absolute URL"},
		{"relative url", func(c *IssuerConfig) { c.URL = "idp.example" }, "absolute URL"},
		{"url with query", func(c *IssuerConfig) { c.URL = "https://idp.example?x=1" }, "absolute URL"},
		{"no audience", func(c *IssuerConfig) { c.Audience = nil }, "audience"},
		{"empty audience", func(c *IssuerConfig) { c.Audience = []string{""} }, "audience"},
		{"alg none", func(c *IssuerConfig) { c.Algorithms = []string{"none"} }, "algorithm"},
		{"alg HS256", func(c *IssuerConfig) { c.Algorithms = []string{"RS256", "HS256"} }, "algorithm"},
		{"bad kind", func(c *IssuerConfig) { c.Kind = "robot" }, "kind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := ok
			tt.edit(&c)
			v, err := NewVerifier(context.Background(), []IssuerConfig{c}, nil)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				is := v.issuers[c.URL]
				if d := cmp.Diff([]string{"RS256", "ES256", "EdDSA"}, is.algs); d != "" {
					t.Errorf("default algorithms (-want +got):\n%s", d)
				}
				if is.cfg.Kind != identity.KindAgent {
					t.Errorf("default kind %q", is.cfg.Kind)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
	if _, err := NewVerifier(context.Background(), []IssuerConfig{ok, ok}, nil); err == nil {
		t.Error("the same issuer twice was accepted")
	}
}

// TestVerifierSlowIssuerBlocksOnlyItself: while one issuer's discovery
// hangs, tokens of another issuer verify, and callers waiting on the hung
// issuer return when their own context ends.
func TestVerifierSlowIssuerBlocksOnlyItself(t *testing.T) {
	t.Parallel()
	a := startProvider(t, rsaKey(t, 0))
	entered := make(chan struct{}, 4)
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-r.Context().Done()
	}))
	t.Cleanup(hung.Close)

	v, err := NewVerifier(context.Background(), []IssuerConfig{
		{URL: a.Issuer(), Audience: []string{a.ClientID}},
		{URL: hung.URL, Audience: []string{"bastion"}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	hungTok := mint(t, &mockoidc.Config{Issuer: hung.URL, ClientID: "bastion", AccessTTL: 10 * time.Minute}, a.Keypair, &claimsUser{sub: "x"}, time.Now())

	ctx1, cancel1 := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() { _, err := v.Verify(ctx1, hungTok); first <- err }()
	<-entered // discovery of the hung issuer is in flight

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := v.Verify(ctx, a.codeFlowToken(t, &claimsUser{sub: "y"})); err != nil {
		t.Fatalf("a healthy issuer was held up: %v", err)
	}

	short, cancelShort := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancelShort()
	if _, err := v.Verify(short, hungTok); !errors.Is(err, ErrIssuerUnavailable) {
		t.Fatalf("second caller of the hung issuer: err = %v, want ErrIssuerUnavailable", err)
	}
	cancel1()
	if err := <-first; !errors.Is(err, ErrIssuerUnavailable) {
		t.Fatalf("first caller: err = %v, want ErrIssuerUnavailable", err)
	}
}

// TestVerifierRetriesDiscovery: a failed discovery is remembered briefly
// (no hammering), then retried, and a success is kept.
func TestVerifierRetriesDiscovery(t *testing.T) {
	t.Parallel()
	kp := &mockoidc.Keypair{PrivateKey: rsaKey(t, 1), PublicKey: &rsaKey(t, 1).PublicKey}
	var up atomic.Bool
	var discoveries atomic.Int32
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			discoveries.Add(1)
			if !up.Load() {
				http.Error(w, "starting", http.StatusServiceUnavailable)
				return
			}
			json.NewEncoder(w).Encode(map[string]any{"issuer": srv.URL, "jwks_uri": srv.URL + "/jwks",
				"authorization_endpoint": srv.URL + "/auth", "id_token_signing_alg_values_supported": []string{"RS256"}})
		case "/jwks":
			b, err := kp.JWKS()
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			w.Write(b)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)

	v, err := NewVerifier(context.Background(), []IssuerConfig{{URL: srv.URL, Audience: []string{"bastion"}}}, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	now := time.Now()
	v.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	tok := mint(t, &mockoidc.Config{Issuer: srv.URL, ClientID: "bastion", AccessTTL: time.Hour}, kp, &claimsUser{sub: "x"}, time.Now())
	ctx := context.Background()
	for range 3 {
		if _, err := v.Verify(ctx, tok); !errors.Is(err, ErrIssuerUnavailable) {
			t.Fatalf("issuer down: err = %v, want ErrIssuerUnavailable", err)
		}
	}
	if n := discoveries.Load(); n != 1 {
		t.Fatalf("%d discovery requests while the failure is remembered, want 1", n)
	}
	if err := v.Discover(ctx); !errors.Is(err, ErrIssuerUnavailable) || !strings.Contains(err.Error(), srv.URL) {
		t.Fatalf("Discover = %v, want the issuer named", err)
	}

	up.Store(true)
	advance(discoveryRetry + time.Second)
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatalf("after the issuer came up: %v", err)
	}
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if n := discoveries.Load(); n != 2 {
		t.Fatalf("%d discovery requests, want 2 (one failure, one success kept)", n)
	}
	if err := v.Discover(ctx); err != nil {
		t.Fatalf("Discover after success: %v", err)
	}
}
