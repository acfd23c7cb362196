package web_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/web"
	"github.com/google/go-cmp/cmp"
)

type approvalsBody struct {
	Enabled   bool
	Now       time.Time
	Approvals []web.Approval
}

func TestListApprovals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	got := decode[approvalsBody](t, e.do(t, req{path: "/ui/api/approvals", token: aliceToken}))
	if !got.Enabled || !got.Now.Equal(t0) {
		t.Errorf("enabled %t now %v, want true %v", got.Enabled, got.Now, t0)
	}
	var ids []string
	for _, a := range got.Approvals {
		ids = append(ids, a.ID)
	}
	if d := cmp.Diff([]string{"a-deploy", "a-own", "a-third"}, ids); d != "" {
		t.Errorf("oldest first (-want +got):\n%s", d)
	}
	if d := cmp.Diff(e.apps.list[1], got.Approvals[0]); d != "" {
		t.Errorf("approval round trip (-want +got):\n%s", d)
	}

	e.h.Approvals = nil
	w := e.do(t, req{path: "/ui/api/approvals", token: aliceToken})
	if got := decode[approvalsBody](t, w); got.Enabled || got.Approvals == nil {
		t.Errorf("disabled: %+v, want enabled false and []", got)
	}
}

func TestDecide(t *testing.T) {
	t.Parallel()
	alice := web.Operator{Subject: "alice", Kind: "human"}
	for _, c := range []struct {
		name            string
		r               req
		backendErr      error
		nilBackend      bool
		wantStatus      int
		wantError       string    // for failures
		wantCall        *decision // the call the backend should have seen
		wantStatusField string
	}{
		{name: "approve", r: req{path: "a-deploy/approve", body: `{"comment":"go ahead"}`},
			wantStatus: 200, wantStatusField: "approved", wantCall: &decision{"approve", "a-deploy", alice, "go ahead"}},
		{name: "approve without body", r: req{path: "a-deploy/approve"},
			wantStatus: 200, wantStatusField: "approved", wantCall: &decision{"approve", "a-deploy", alice, ""}},
		{name: "deny", r: req{path: "a-third/deny", body: `{"comment":"not on a Friday"}`},
			wantStatus: 200, wantStatusField: "denied", wantCall: &decision{"deny", "a-third", alice, "not on a Friday"}},
		{name: "four eyes", r: req{path: "a-own/approve", body: `{}`},
			wantStatus: 403, wantError: "you cannot approve your own request", wantCall: &decision{"approve", "a-own", alice, ""}},
		{name: "unknown approval", r: req{path: "a-none/deny", body: `{"comment":"x"}`},
			wantStatus: 404, wantError: "not found", wantCall: &decision{"deny", "a-none", alice, "x"}},
		{name: "backend refusal", r: req{path: "a-deploy/approve", body: `{}`}, backendErr: &web.Error{Status: 409, Msg: "request a-deploy expired"},
			wantStatus: 409, wantError: "request a-deploy expired", wantCall: &decision{"approve", "a-deploy", alice, ""}},
		{name: "backend failure", r: req{path: "a-deploy/deny", body: `{"comment":"x"}`}, backendErr: errors.New("sqlite: database is locked"),
			wantStatus: 500, wantError: "internal error", wantCall: &decision{"deny", "a-deploy", alice, "x"}},
		{name: "wrong content type", r: req{path: "a-deploy/approve", ctype: "application/x-www-form-urlencoded", body: "comment=x"},
			wantStatus: 415, wantError: "want Content-Type: application/json"},
		{name: "no content type", r: req{path: "a-deploy/approve", ctype: "-", body: `{}`},
			wantStatus: 415, wantError: "want Content-Type: application/json"},
		{name: "bad json", r: req{path: "a-deploy/approve", body: `{"comment":`},
			wantStatus: 400, wantError: `invalid body: want {"comment": "..."}`},
		{name: "unknown field", r: req{path: "a-deploy/approve", body: `{"comment":"x","approver":"bob"}`},
			wantStatus: 400, wantError: `invalid body: want {"comment": "..."}`},
		{name: "comment too long", r: req{path: "a-deploy/deny", body: `{"comment":"` + strings.Repeat("x", 4097) + `"}`},
			wantStatus: 400, wantError: "comment too long"},
		{name: "body too large", r: req{path: "a-deploy/deny", body: `{"comment":"` + strings.Repeat("x", 20<<10) + `"}`},
			wantStatus: 400, wantError: `invalid body: want {"comment": "..."}`},
		{name: "approvals disabled", r: req{path: "a-deploy/approve", body: `{}`}, nilBackend: true,
			wantStatus: 404, wantError: "approvals are not enabled"},
		{name: "GET is not allowed", r: req{method: "GET", path: "a-deploy/approve"},
			wantStatus: 405, wantError: "method not allowed"},
		{name: "PUT is not allowed", r: req{method: "PUT", path: "a-deploy/deny", body: `{}`},
			wantStatus: 405, wantError: "method not allowed"},
		{name: "unknown verb", r: req{path: "a-deploy/escalate", body: `{}`},
			wantStatus: 404, wantError: "not found"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			if c.backendErr != nil {
				e.apps.failWith(c.backendErr)
			}
			if c.nilBackend {
				e.h.Approvals = nil
			}
			r := c.r
			if r.method == "" {
				r.method = "POST"
			}
			r.path = "/ui/api/approvals/" + r.path
			r.token = aliceToken
			switch r.ctype {
			case "":
				r.ctype = "application/json; charset=utf-8"
			case "-":
				r.ctype = ""
			}
			w := e.do(t, r)
			if w.Code != c.wantStatus {
				t.Fatalf("status %d, want %d: %s", w.Code, c.wantStatus, w.Body)
			}
			if c.wantError != "" {
				if got := apiError(t, w); got != c.wantError {
					t.Errorf("error %q, want %q", got, c.wantError)
				}
			}
			if c.wantStatusField != "" {
				got := decode[map[string]string](t, w)
				if got["status"] != c.wantStatusField {
					t.Errorf("body %v, want status %q", got, c.wantStatusField)
				}
			}
			var want []decision
			if c.wantCall != nil {
				want = []decision{*c.wantCall}
			}
			if d := cmp.Diff(want, e.apps.decisions()); d != "" {
				t.Errorf("backend calls (-want +got):\n%s", d)
			}
			if strings.Contains(w.Body.String(), "sqlite") {
				t.Errorf("internal text leaked: %s", w.Body)
			}
		})
	}
}
