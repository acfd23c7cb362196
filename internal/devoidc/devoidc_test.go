package devoidc

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/oauth2-proxy/mockoidc"
)

func TestRefusesNonLoopback(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:0", "example.com:80"} {
		if i, err := Start(addr); err == nil {
			i.Close()
			t.Errorf("Start(%q) succeeded; want refusal", addr)
		}
	}
}

// TestTokenVerifies checks the issued token against go-oidc with discovery,
// as bastion's verifier does.
func TestTokenVerifies(t *testing.T) {
	t.Parallel()
	iss, err := Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer iss.Close()
	ctx := context.Background()
	raw, err := iss.Token(ctx, "demo-agent", []string{"agents"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := oidc.NewProvider(ctx, iss.URL())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := p.Verifier(&oidc.Config{ClientID: iss.ClientID()}).Verify(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Subject != "demo-agent" {
		t.Fatalf("subject = %q, want demo-agent", tok.Subject)
	}
	if _, err := iss.Token(ctx, "", nil); err == nil {
		t.Fatal("empty subject accepted")
	}
}

// TestMintingNeedsTheKey checks that another process on the host (an agent
// in a session) cannot mint from the issuer: authorize, token and userinfo
// refuse requests without the issuer's key, while discovery and JWKS stay
// public, and a refused authorize does not take the user queued for
// Token.
func TestMintingNeedsTheKey(t *testing.T) {
	t.Parallel()
	iss, err := Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer iss.Close()
	authorize := iss.m.AuthorizationEndpoint() + "?" + url.Values{
		"scope": {"openid"}, "state": {"x"}, "client_id": {iss.ClientID()},
		"response_type": {"code"}, "redirect_uri": {"http://127.0.0.1/cb"},
	}.Encode()
	tokenForm := url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "client_id": {iss.ClientID()}, "client_secret": {"guess"}}.Encode()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		name   string
		method string
		url    string
		body   string
		key    string
		want   int
	}{
		{"discovery is public", http.MethodGet, iss.m.DiscoveryEndpoint(), "", "", http.StatusOK},
		{"jwks is public", http.MethodGet, iss.m.JWKSEndpoint(), "", "", http.StatusOK},
		{"authorize without key", http.MethodGet, authorize, "", "", http.StatusForbidden},
		{"authorize with a wrong key", http.MethodGet, authorize, "", "not-the-key", http.StatusForbidden},
		{"token without key", http.MethodPost, iss.m.TokenEndpoint(), tokenForm, "", http.StatusForbidden},
		{"userinfo without key", http.MethodGet, iss.m.UserinfoEndpoint(), "", "", http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, tc.url, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.body != "" {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			if tc.key != "" {
				req.Header.Set(keyHeader, tc.key)
			}
			resp, err := noRedirect.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.want, body)
			}
			if tc.want == http.StatusForbidden && !strings.Contains(string(body), "bastion dev token") {
				t.Fatalf("refusal does not say what to do: %s", body)
			}
		})
	}
	// A refused authorize left the queue alone: a user queued now is the
	// one the next keyed authorize gets.
	iss.m.QueueUser(&mockoidc.MockUser{Subject: "queued"})
	req, _ := http.NewRequest(http.MethodGet, authorize, nil)
	if resp, err := noRedirect.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("keyless authorize: %v %v", resp, err)
	}
	if n := len(iss.m.UserQueue.Queue); n != 1 {
		t.Fatalf("queue has %d users after a refused authorize, want 1", n)
	}
	req.Header.Set(keyHeader, iss.key)
	resp, err := noRedirect.Do(req)
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("keyed authorize: %v %v", resp, err)
	}
	if n := len(iss.m.UserQueue.Queue); n != 0 {
		t.Fatalf("queue has %d users after a keyed authorize, want 0", n)
	}
}
