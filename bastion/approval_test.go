package bastion

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/approvals"
	"github.com/bastion-dev/bastion/certs"
	"github.com/bastion-dev/bastion/identity"
	"github.com/bastion-dev/bastion/masking"
	"github.com/bastion-dev/bastion/policy"
	"github.com/bastion-dev/bastion/shellpolicy"
	"github.com/bastion-dev/bastion/store"
	"github.com/google/go-cmp/cmp"
)

// concealed is issue #22's item 2: a harmless command whose rule is the one
// named, a conceal sequence, and the command it hid.
const concealed = "python3 -c 1; : \x1b[8m; kubectl delete pod x"

// A GitHub token, assembled so that no scanner mistakes this file for a leak.
var ghToken = "ghp_" + "Zx9QmR4tLw2VbN7cYk3HsJ8dFp5GaE1uWo6T"

func TestApprovalBindsTheBytesThatRun(t *testing.T) {
	t.Parallel()
	m := masking.Default()
	approved := &approvals.Request{ID: "apr_0000000001", Command: m.String(concealed)}
	for _, tc := range []struct {
		name, run string
		ok        bool
	}{
		{"the approved bytes", concealed, true},
		{"a part added", concealed + "; rm -f /tmp/y", false},
		{"a zero-width space added", concealed + "\u200b", false},
		{"the conceal sequence dropped", "python3 -c 1; : ; kubectl delete pod x", false},
		{"one byte changed", strings.Replace(concealed, "x", "y", 1), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := bindsRun(m, tc.run, approved)
			if tc.ok != (err == nil) || err != nil && !errors.Is(err, approvals.ErrMismatch) {
				t.Fatalf("bindsRun(%q) = %v, want ok=%v", tc.run, err, tc.ok)
			}
		})
	}
	// A secret is masked before it is shown or hashed: the approval binds
	// what the approver saw, and two values of the one secret look alike
	// to it (the session runs the bytes it was given; nobody swaps them).
	withSecret := &approvals.Request{ID: "apr_0000000002", Command: m.String("gh auth login --with-token " + ghToken)}
	if strings.Contains(withSecret.Command, ghToken) {
		t.Fatalf("the masker let the token through: %q", withSecret.Command)
	}
	if err := bindsRun(m, "gh auth login --with-token "+ghToken, withSecret); err != nil {
		t.Fatal(err)
	}
}

func testSession(t *testing.T) *session {
	t.Helper()
	return &session{srv: &Server{Policy: shellpolicy.Default(), Masker: masking.Default()}, id: "sess-1",
		ident: &certs.Identity{Principal: "agent", Provenance: identity.Provenance{Kind: identity.KindAgent, Subject: "demo-agent"}},
		env:   map[string]string{}}
}

func TestApprovalShellPartsNameEveryRule(t *testing.T) {
	t.Parallel()
	sess := testSession(t)
	got := sess.shellParts(concealed + "; rm -f /tmp/zz; kubectl delete secret s --token " + ghToken)
	var short []approvals.Part
	for _, p := range got {
		if p.Reason == "" || strings.Contains(p.Reason, ghToken) {
			t.Errorf("part %+v: no reason, or an unmasked one", p)
		}
		short = append(short, approvals.Part{Text: p.Text, Rule: p.Rule})
	}
	want := []approvals.Part{
		{Text: "python3 -c 1", Rule: "interpreter-one-liner"},
		{Text: "kubectl delete pod x", Rule: "kubectl-delete"},
		{Text: "kubectl delete secret s --token [MASKED:github-token]", Rule: "kubectl-delete"},
	}
	if d := cmp.Diff(want, short); d != "" {
		t.Errorf("parts (-want +got):\n%s", d)
	}
	if got := sess.shellParts("ls -l"); len(got) != 0 {
		t.Errorf("parts of an allowed line: %+v", got)
	}
}

func TestApprovalWaitingTextRendersAgentText(t *testing.T) {
	t.Parallel()
	sess := testSession(t)
	req := &approvals.Request{ID: "apr_0000000003", Command: concealed, Expires: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		Parts: []approvals.Part{{Text: "python3 -c 1", Rule: "interpreter-one-liner"}, {Text: "kubectl delete pod x\u202e", Rule: "kubectl-delete"}}}
	res := policy.Result{Decision: policy.Approve, Rule: "interpreter-one-liner", Reason: "python3 runs inline code: 1\x1b[8m"}
	got := sess.waitingText(req, res)
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("waiting text %q: want the line, two parts and the JSON line", got)
	}
	for i, want := range []string{
		`bastion: waiting for approval apr_0000000003 (rule interpreter-one-liner): python3 runs inline code: 1\x1b[8m`,
		"bastion:   needs approval: python3 -c 1 [rule interpreter-one-liner]",
		`bastion:   needs approval: kubectl delete pod x\u202e [rule kubectl-delete]`,
	} {
		if lines[i] != want {
			t.Errorf("line %d = %q, want %q", i+1, lines[i], want)
		}
	}
	var js struct {
		Bastion, Approval, SHA256 string
		Rules                     []string
	}
	if err := json.Unmarshal([]byte(lines[3]), &js); err != nil || js.Bastion != "pending" || js.SHA256 != req.Sum() ||
		!cmp.Equal(js.Rules, []string{"interpreter-one-liner", "kubectl-delete"}) {
		t.Errorf("JSON line %q: %+v, %v", lines[3], js, err)
	}
	if strings.ContainsAny(got, "\x1b\u202e") {
		t.Errorf("raw controls in %q", got)
	}
}

func TestApprovalGrantMustCoverEveryRule(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := store.Open(filepath.Join(t.TempDir(), "bastion.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sess := testSession(t)
	sess.srv.Approvals = &approvals.Service{Store: st}
	req, err := sess.srv.Approvals.Create(ctx, approvals.Request{Requester: sess.ident.Provenance, SessionID: sess.id,
		Command: "python3 -c 1", Rule: "interpreter-one-liner"})
	if err != nil {
		t.Fatal(err)
	}
	bob := identity.Provenance{Kind: identity.KindHuman, Subject: "bob"}
	if _, err := sess.srv.Approvals.Approve(ctx, req.ID, bob, "", time.Hour); err != nil {
		t.Fatal(err)
	}
	if !sess.granted(ctx, []string{"interpreter-one-liner"}) {
		t.Fatal("the granted rule is not granted")
	}
	// python3 -c 1 is granted; the kubectl delete hidden after it is not.
	if sess.granted(ctx, []string{"interpreter-one-liner", "kubectl-delete"}) {
		t.Fatal("a grant of one rule carried a command that another rule holds")
	}
	if sess.granted(ctx, nil) {
		t.Fatal("no rules counted as granted")
	}
}

func TestApprovalAgentReasonIsMasked(t *testing.T) {
	t.Parallel()
	sess := testSession(t)
	sess.env["BASTION_REASON"] = "rotate " + ghToken + " after the leak"
	if got := sess.agentReason(); strings.Contains(got, ghToken) || !strings.Contains(got, "rotate [MASKED:") {
		t.Fatalf("agentReason = %q", got)
	}
}

func TestApprovalViewRendersAgentText(t *testing.T) {
	t.Parallel()
	r := approvals.Request{ID: "apr_0000000004", Status: approvals.Pending, Command: concealed, Rule: "interpreter-one-liner",
		Reason: "runs\u202e", AgentReason: "why\x1b]52;c;eA==\x07", Requester: identity.Provenance{Kind: identity.KindAgent, Subject: "demo\u200bagent"},
		Parts: []approvals.Part{{Text: "python3 -c 1", Rule: "interpreter-one-liner"}, {Text: "kubectl delete pod x", Rule: "kubectl-delete"}}}
	v := approvalView(r)
	if v.Command != `python3 -c 1; : \x1b[8m; kubectl delete pod x` || v.Reason != `runs\u202e` || v.AgentReason != `why\x1b]52;c;eA==\x07` ||
		v.Subject != `demo\u200bagent` || v.SHA256 != approvals.ShortSum(r.Sum()) || len(v.Parts) != 2 || v.Parts[1].Rule != "kubectl-delete" {
		t.Fatalf("approvalView = %+v", v)
	}
}

func TestApprovalsAPIApproveBindsSHA256(t *testing.T) {
	t.Parallel()
	srv, svc := approvalsServer(t)
	r := newRequest(t, svc, apiAgent, "sess-h")
	other := approvals.ShortSum(approvals.Sum("kubectl delete ns prod"))
	if a := call(t, srv, "POST", "/v1/approvals/"+r.ID+"/approve", approverToken, `{"sha256":"`+other+`"}`); a.status != 409 || !strings.Contains(a.body, "sha256_mismatch") {
		t.Fatalf("approve with another command's sum: %+v", a)
	}
	if a := call(t, srv, "POST", "/v1/approvals/"+r.ID+"/approve", approverToken, `{"sha256":"12ab"}`); a.status != 400 {
		t.Fatalf("approve with a short sum: %+v", a)
	}
	a := call(t, srv, "POST", "/v1/approvals/"+r.ID+"/approve", approverToken, `{"sha256":"`+approvals.ShortSum(r.Sum())+`"}`)
	if a.status != 200 || !strings.Contains(a.body, `"sha256":"`+r.Sum()+`"`) {
		t.Fatalf("approve with the request's sum: %+v", a)
	}
}
