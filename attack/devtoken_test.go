package attack

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/bastion-dev/bastion/internal/client"
	"github.com/bastion-dev/bastion/internal/sshtest"
)

// TestDevTokenNeedsTheOperator (#22 item 5): an agent in a session asks
// the dev issuer, over loopback, for a token of a more privileged identity
// ("ops-root" maps to the ops role): POST /dev/token without the operator
// token, with a guessed one, with a forged Host (a DNS-rebinding page's
// request), and the issuer's own authorize endpoint. Each is refused with
// a JSON reason, the /dev/token refusals are audited, and the operator,
// with the operator token, still gets a token the exchange takes.
func TestDevTokenNeedsTheOperator(t *testing.T) {
	b := start(t, sshtest.Options{})
	login := b.Login("agent-mallory")
	port := b.HTTPURL[strings.LastIndexByte(b.HTTPURL, ':')+1:]
	inSession := func(t *testing.T, curlArgs string) (int, string) {
		t.Helper()
		r := sshtest.SSH(t, login, nil, "bastion", "curl -sS --max-time 20 -w '\\n%{http_code}' "+curlArgs)
		body, code, ok := strings.Cut(strings.TrimSpace(r.Stdout), "\n")
		if r.Code != 0 || !ok {
			t.Fatalf("curl in the session: %+v", r)
		}
		var status int
		fmt.Sscan(code, &status)
		return status, body
	}
	mint := `-X POST -H 'Content-Type: application/json' -d '{"subject":"ops-root","groups":["admins"]}' ` + b.HTTPURL + "/dev/token"
	for _, tc := range []struct {
		name, args    string
		status        int
		code, message string
	}{
		{"no token", mint, 401, "unauthenticated", "missing operator token"},
		{"guessed token", "-H 'Authorization: Bearer guess' " + mint, 401, "unauthenticated", "wrong operator token"},
		{"rebound Host", "-H 'Host: rebind.attacker.example:" + port + "' -H 'Authorization: Bearer guess' " + mint, 421, "misdirected", "not a loopback name or address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := inSession(t, tc.args)
			var e struct{ Error, Code, IDToken string }
			if err := json.Unmarshal([]byte(body), &e); err != nil {
				t.Fatalf("status %d, body %q is not a JSON error", status, body)
			}
			if status != tc.status || e.Code != tc.code || !strings.Contains(e.Error, tc.message) || strings.Contains(body, "id_token") {
				t.Fatalf("got %d %s; want %d, code %q, message with %q", status, body, tc.status, tc.code, tc.message)
			}
			waitAudit(t, b, func(ev event) bool {
				return ev.str("type") == "request.refused" && ev.detail("request") == "POST /dev/token" &&
					ev.detail("code") == tc.code && strings.Contains(ev.detail("reason"), tc.message) && ev.str("source") == "127.0.0.1"
			})
		})
	}
	// The issuer's own minting endpoint is closed to the agent too.
	authorize := b.Issuer.URL() + "/authorize?" + url.Values{"scope": {"openid"}, "state": {"x"}, "client_id": {b.Issuer.ClientID()},
		"response_type": {"code"}, "redirect_uri": {"http://127.0.0.1/cb"}}.Encode()
	if status, body := inSession(t, "'"+authorize+"'"); status != 403 || !strings.Contains(body, "access_denied") {
		t.Errorf("issuer authorize from the session: %d %s; want 403 access_denied", status, body)
	}
	if status, _ := inSession(t, b.Issuer.URL()+"/.well-known/openid-configuration"); status != 200 {
		t.Errorf("discovery from the session: %d; want 200 (public by design)", status)
	}
	// The operator, with the operator token, gets a token the exchange
	// takes.
	r := curl(t, "-X", "POST", "-H", "Authorization: Bearer "+b.OperatorToken, "-d", `{"subject":"agent-other"}`, b.HTTPURL+"/dev/token")
	var ok struct {
		IDToken string `json:"id_token"`
	}
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &ok) != nil || ok.IDToken == "" {
		t.Fatalf("operator's dev token: %+v", r)
	}
	if _, err := client.Login(context.Background(), client.Options{Server: b.HTTPURL, Token: ok.IDToken, OutDir: t.TempDir()}); err != nil {
		t.Fatalf("the exchange refused the operator's dev token: %v", err)
	}
	waitAudit(t, b, func(ev event) bool {
		return ev.str("type") == "dev.token" && strings.Contains(ev.detail("subject"), "agent-other")
	})
}
