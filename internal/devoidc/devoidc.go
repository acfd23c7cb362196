// Package devoidc runs bastion's development OIDC issuer: a real OIDC
// provider (github.com/oauth2-proxy/mockoidc: discovery, JWKS, RS256 ID
// tokens from the authorization-code flow) on a loopback address, so the
// whole token-exchange flow can be tried with no identity provider.
//
// Only discovery and JWKS are public, as a relying party needs them. The
// endpoints that mint (authorize, token, and userinfo with them) answer
// only requests that carry a key this process made at Start: agents run on
// the same host and reach the loopback port, and mockoidc's authorize
// endpoint hands whoever calls it the next queued user, or a default one.
package devoidc

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/bastion-dev/bastion/internal/loopback"
	"github.com/oauth2-proxy/mockoidc"
)

// Issuer is a running development OIDC issuer.
type Issuer struct {
	m   *mockoidc.MockOIDC
	key string     // sent by Token's own requests; see gate
	mu  sync.Mutex // serialises Token: mockoidc hands queued users to the next authorize call
}

// keyHeader carries the issuer's key on Token's own requests.
const keyHeader = "X-Bastion-Dev-Issuer-Key"

// gate refuses every request but discovery and JWKS unless it carries key.
func gate(key string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case mockoidc.DiscoveryEndpoint, mockoidc.JWKSEndpoint:
				next.ServeHTTP(w, r)
				return
			}
			if subtle.ConstantTimeCompare([]byte(r.Header.Get(keyHeader)), []byte(key)) != 1 {
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Cache-Control", "no-store")
				w.WriteHeader(http.StatusForbidden)
				json.NewEncoder(w).Encode(map[string]string{"error": "access_denied",
					"error_description": "the dev issuer mints tokens only for bastion itself: run 'bastion dev token' as the operator"})
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// Start starts an issuer on addr, which must be a loopback address
// ("127.0.0.1:0" picks a free port). It refuses any other address: the dev
// issuer signs a token for whoever asks.
func Start(addr string) (*Issuer, error) {
	if err := loopback.Require(addr); err != nil {
		return nil, fmt.Errorf("dev OIDC issuer %w", err)
	}
	// A fresh key per start: mockoidc's default key is published in its
	// source, so anyone could mint tokens for an issuer that used it.
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("dev OIDC issuer: %w", err)
	}
	m, err := mockoidc.NewServer(key)
	if err != nil {
		return nil, fmt.Errorf("dev OIDC issuer: %w", err)
	}
	iss := &Issuer{m: m, key: rand.Text()}
	if err := m.AddMiddleware(gate(iss.key)); err != nil {
		return nil, fmt.Errorf("dev OIDC issuer: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dev OIDC issuer: %w", err)
	}
	if err := m.Start(ln, nil); err != nil {
		ln.Close()
		return nil, fmt.Errorf("dev OIDC issuer: %w", err)
	}
	return iss, nil
}

// URL is the issuer URL (the `iss` claim and the discovery base).
func (i *Issuer) URL() string { return i.m.Issuer() }

// ClientID is the audience of the tokens this issuer signs.
func (i *Issuer) ClientID() string { return i.m.ClientID }

// Close stops the issuer.
func (i *Issuer) Close() error { return i.m.Shutdown() }

// Token obtains an ID token for subject (with groups) by running the
// authorization-code flow against the issuer over HTTP, as a relying party
// would.
func (i *Issuer) Token(ctx context.Context, subject string, groups []string) (string, error) {
	if subject == "" {
		return "", errors.New("dev token: subject is empty")
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.m.QueueUser(&mockoidc.MockUser{Subject: subject, Email: subject + "@dev.local", EmailVerified: true, PreferredUsername: subject, Groups: groups})

	const redirect = "http://127.0.0.1/callback"
	q := url.Values{
		"scope": {"openid email profile groups"}, "state": {"dev"}, "client_id": {i.m.ClientID},
		"response_type": {"code"}, "redirect_uri": {redirect}, "nonce": {"dev"},
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, i.m.AuthorizationEndpoint()+"?"+q.Encode(), nil)
	if err != nil {
		return "", err
	}
	req.Header.Set(keyHeader, i.key)
	resp, err := noRedirect.Do(req)
	if err != nil {
		return "", fmt.Errorf("dev token: authorize: %w", err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		return "", fmt.Errorf("dev token: authorize returned %s without a code", resp.Status)
	}
	form := url.Values{
		"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "redirect_uri": {redirect},
		"client_id": {i.m.ClientID}, "client_secret": {i.m.ClientSecret},
	}
	req, err = http.NewRequestWithContext(ctx, http.MethodPost, i.m.TokenEndpoint(), strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(keyHeader, i.key)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("dev token: token endpoint: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("dev token: token endpoint: %s: %s", resp.Status, body)
	}
	var tr struct {
		IDToken string `json:"id_token"`
	}
	if err := json.Unmarshal(body, &tr); err != nil || tr.IDToken == "" {
		return "", fmt.Errorf("dev token: no id_token in the token response")
	}
	return tr.IDToken, nil
}
