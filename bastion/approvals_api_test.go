package bastion

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/approvals"
	"github.com/bastion-dev/bastion/identity"
	"github.com/bastion-dev/bastion/store"
)

const approverToken = "s3cret-approver-token"

var (
	apiAgent = identity.Provenance{Kind: identity.KindAgent, Subject: "ci-bot"}
	apiBob   = identity.Provenance{Kind: identity.KindHuman, Subject: "bob", Issuer: "bootstrap"}
)

// approvalsServer starts the API on a loopback httptest server. Tokens map
// to approvers: approverToken is bob; "alice-token" is alice, who also
// requests commands at a shell (four-eyes); "bot-token" is an agent.
func approvalsServer(t *testing.T) (*httptest.Server, *approvals.Service) {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "bastion.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc := &approvals.Service{Store: st, Poll: 10 * time.Millisecond}
	bob := BearerTokenAuthenticator(approverToken, apiBob)
	alice := BearerTokenAuthenticator("alice-token", identity.Provenance{Kind: identity.KindHuman, Subject: "alice"})
	bot := BearerTokenAuthenticator("bot-token", apiAgent)
	api := &ApprovalsAPI{Service: svc, Authenticate: func(r *http.Request) (*identity.Provenance, error) {
		for _, f := range []func(*http.Request) (*identity.Provenance, error){alice, bot} {
			if p, err := f(r); err == nil {
				return p, nil
			}
		}
		return bob(r)
	}}
	mux := http.NewServeMux()
	api.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, svc
}

func newRequest(t *testing.T, svc *approvals.Service, who identity.Provenance, session string) *approvals.Request {
	t.Helper()
	r, err := svc.Create(context.Background(), approvals.Request{Requester: who, SessionID: session,
		Command: "kubectl delete ns staging", Rule: "kubectl-delete", Reason: "deletes cluster resources"})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

type apiAnswer struct {
	status int
	body   string
}

func call(t *testing.T, srv *httptest.Server, method, path, token, body string) apiAnswer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" && resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	return apiAnswer{resp.StatusCode, string(b)}
}

func TestApprovalsAPIAuthentication(t *testing.T) {
	t.Parallel()
	srv, svc := approvalsServer(t)
	r := newRequest(t, svc, apiAgent, "s1")
	for _, tc := range []struct{ name, method, path, auth string }{
		{"list without token", "GET", "/v1/approvals", ""},
		{"get with a wrong token", "GET", "/v1/approvals/" + r.ID, "nope"},
		{"approve with a token prefix", "POST", "/v1/approvals/" + r.ID + "/approve", approverToken[:5]},
		{"deny with a longer token", "POST", "/v1/approvals/" + r.ID + "/deny", approverToken + "x"},
	} {
		got := call(t, srv, tc.method, tc.path, tc.auth, `{"comment":"x"}`)
		if got.status != http.StatusUnauthorized || !strings.Contains(got.body, "unauthenticated") {
			t.Errorf("%s: %d %s, want 401", tc.name, got.status, got.body)
		}
	}
	// Nothing was decided by the refused calls.
	if got, _ := svc.Get(context.Background(), r.ID); got.Status != approvals.Pending {
		t.Errorf("after refused calls the request is %s", got.Status)
	}
	// A nil Authenticate refuses everyone.
	mux := http.NewServeMux()
	(&ApprovalsAPI{Service: svc}).Register(mux)
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/v1/approvals", nil)
	req.Header.Set("Authorization", "Bearer "+approverToken)
	mux.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized || rec.Header().Get("WWW-Authenticate") == "" {
		t.Errorf("nil Authenticate: %d %v", rec.Code, rec.Header())
	}
}

func TestApprovalsAPIApprove(t *testing.T) {
	t.Parallel()
	srv, svc := approvalsServer(t)
	ctx := context.Background()
	r := newRequest(t, svc, apiAgent, "s1")
	done := make(chan *approvals.Request, 1)
	go func() {
		got, _ := svc.Wait(ctx, r.ID)
		done <- got
	}()

	got := call(t, srv, "GET", "/v1/approvals", approverToken, "")
	var list []approvals.Request
	if err := json.Unmarshal([]byte(got.body), &list); got.status != 200 || err != nil || len(list) != 1 || list[0].ID != r.ID {
		t.Fatalf("list: %d %s (%v)", got.status, got.body, err)
	}
	got = call(t, srv, "GET", "/v1/approvals/"+r.ID, approverToken, "")
	if got.status != 200 || !strings.Contains(got.body, `"command":"kubectl delete ns staging"`) {
		t.Fatalf("get: %d %s", got.status, got.body)
	}

	got = call(t, srv, "POST", "/v1/approvals/"+r.ID+"/approve", approverToken, `{"comment":"go","for_session":"10m"}`)
	if got.status != 200 {
		t.Fatalf("approve: %d %s", got.status, got.body)
	}
	var decided approvals.Request
	if err := json.Unmarshal([]byte(got.body), &decided); err != nil || decided.Status != approvals.Approved ||
		decided.Decider == nil || decided.Decider.Subject != "bob" || decided.ForSession != 10*time.Minute || decided.Comment != "go" {
		t.Fatalf("approve answered %s (%v)", got.body, err)
	}
	select {
	case w := <-done:
		if w == nil || w.Status != approvals.Approved {
			t.Fatalf("Wait = %+v", w)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the API approval did not release the waiter")
	}
	if ok, _ := svc.Granted(ctx, "s1", "kubectl-delete"); !ok {
		t.Error("for_session did not grant the rule")
	}
	// Decided: a second decision is a conflict; the list of pending is empty.
	got = call(t, srv, "POST", "/v1/approvals/"+r.ID+"/deny", approverToken, `{"comment":"too late"}`)
	if got.status != http.StatusConflict || !strings.Contains(got.body, "approved") {
		t.Errorf("deny after approve: %d %s, want 409", got.status, got.body)
	}
	if got = call(t, srv, "GET", "/v1/approvals", approverToken, ""); got.status != 200 || strings.TrimSpace(got.body) != "[]" {
		t.Errorf("pending after the decision: %d %s, want []", got.status, got.body)
	}
	if got = call(t, srv, "GET", "/v1/approvals?all=1", approverToken, ""); got.status != 200 || !strings.Contains(got.body, r.ID) {
		t.Errorf("all: %d %s", got.status, got.body)
	}
}

func TestApprovalsAPIRefusals(t *testing.T) {
	t.Parallel()
	srv, svc := approvalsServer(t)
	alice := identity.Provenance{Kind: identity.KindHuman, Subject: "alice"}
	own := newRequest(t, svc, alice, "s-alice")
	r := newRequest(t, svc, apiAgent, "s1")
	for _, tc := range []struct {
		name, method, path, token, body string
		status                          int
		says                            string
	}{
		{"self-approval", "POST", "/v1/approvals/" + own.ID + "/approve", "alice-token", "", 403, "four-eyes"},
		{"agent approver", "POST", "/v1/approvals/" + r.ID + "/approve", "bot-token", "", 403, "human"},
		{"unknown id", "GET", "/v1/approvals/" + approvals.NewID(), approverToken, "", 404, "no such approval"},
		{"approve unknown id", "POST", "/v1/approvals/apr_0000000000/approve", approverToken, "", 404, "no such approval"},
		{"deny without comment", "POST", "/v1/approvals/" + r.ID + "/deny", approverToken, `{}`, 400, "comment"},
		{"deny without body", "POST", "/v1/approvals/" + r.ID + "/deny", approverToken, "", 400, "comment"},
		{"bad for_session", "POST", "/v1/approvals/" + r.ID + "/approve", approverToken, `{"for_session":"soon"}`, 400, "duration"},
		{"negative for_session", "POST", "/v1/approvals/" + r.ID + "/approve", approverToken, `{"for_session":"-5m"}`, 400, "duration"},
		{"unknown field", "POST", "/v1/approvals/" + r.ID + "/approve", approverToken, `{"comment":"x","approver":"eve"}`, 400, "body must be"},
		{"bad all", "GET", "/v1/approvals?all=yes", approverToken, "", 400, "all"},
		{"wrong method", "DELETE", "/v1/approvals/" + r.ID, approverToken, "", 405, ""},
	} {
		got := call(t, srv, tc.method, tc.path, tc.token, tc.body)
		if tc.status == 405 { // the mux answers in plain text
			if got.status != 405 {
				t.Errorf("%s: %d", tc.name, got.status)
			}
			continue
		}
		if got.status != tc.status || !strings.Contains(got.body, tc.says) {
			t.Errorf("%s: %d %s; want %d saying %q", tc.name, got.status, got.body, tc.status, tc.says)
		}
	}
	for _, id := range []string{own.ID, r.ID} {
		if got, _ := svc.Get(context.Background(), id); got.Status != approvals.Pending {
			t.Errorf("%s is %s after refused calls", id, got.Status)
		}
	}
	// Another approver may approve alice's request; the requester may deny her own.
	if got := call(t, srv, "POST", "/v1/approvals/"+own.ID+"/deny", "alice-token", `{"comment":"withdrawn"}`); got.status != 200 {
		t.Errorf("self-deny: %d %s", got.status, got.body)
	}
	if got := call(t, srv, "POST", "/v1/approvals/"+r.ID+"/deny", approverToken, `{"comment":"use staging"}`); got.status != 200 || !strings.Contains(got.body, `"status":"denied"`) {
		t.Errorf("deny: %d %s", got.status, got.body)
	}
}

func TestBearerTokenAuthenticator(t *testing.T) {
	t.Parallel()
	who := identity.Provenance{Kind: identity.KindHuman, Subject: "ops"}
	auth := BearerTokenAuthenticator("tok", who)
	for _, tc := range []struct {
		header string
		ok     bool
	}{
		{"Bearer tok", true},
		{"bearer  tok ", true},
		{"Bearer tok2", false},
		{"Bearer to", false},
		{"Basic tok", false},
		{"tok", false},
		{"", false},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		if tc.header != "" {
			r.Header.Set("Authorization", tc.header)
		}
		p, err := auth(r)
		if (err == nil) != tc.ok || (tc.ok && (p == nil || *p != who)) {
			t.Errorf("%q: %+v, %v; want ok=%v", tc.header, p, err, tc.ok)
		}
	}
	// The returned identity is a copy: a handler cannot change the next caller's.
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer tok")
	p, _ := auth(r)
	p.Subject = "eve"
	if p2, _ := auth(r); p2.Subject != "ops" {
		t.Errorf("identity shared between calls: %q", p2.Subject)
	}
	// An empty configured token accepts nobody, not even an empty bearer.
	none := BearerTokenAuthenticator("", who)
	r.Header.Set("Authorization", "Bearer ")
	if p, err := none(r); err == nil || p != nil {
		t.Errorf("empty token accepted: %+v", p)
	}
}
