package approvals_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/bastion-dev/bastion/approvals"
	"github.com/bastion-dev/bastion/identity"
	"github.com/google/go-cmp/cmp"
)

// hidden is the attack of issue #22 item 2: a harmless first command, then
// a conceal sequence that hides the rest on a terminal.
const hidden = "python3 -c 1; printf '\x1b[8m'; kubectl delete pod x"

func sumOf(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestRequestSumIsTheCommandsSHA256(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc := &approvals.Service{Store: openStore(t, dbPath(t))}
	r := request("sess-1", hidden)
	r.Parts = []approvals.Part{
		{Text: "python3 -c 1", Rule: "interpreter-one-liner", Reason: "python3 runs inline code"},
		{Text: "kubectl delete pod x", Rule: "kubectl-delete", Reason: "kubectl delete removes cluster resources"},
	}
	req, err := svc.Create(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if req.Sum() != sumOf(hidden) || approvals.Sum(hidden) != sumOf(hidden) || approvals.ShortSum(req.Sum()) != sumOf(hidden)[:12] {
		t.Fatalf("Sum = %s, want %s", req.Sum(), sumOf(hidden))
	}
	// Every part and rule survives the store, and the JSON carries the sum.
	got, err := svc.Get(ctx, req.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(r.Parts, got.Parts); d != "" {
		t.Errorf("parts after the store (-want +got):\n%s", d)
	}
	b, _ := json.Marshal(got)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil || m["sha256"] != sumOf(hidden) || len(m["parts"].([]any)) != 2 {
		t.Errorf("JSON %s: %v", b, err)
	}
	var back approvals.Request
	if err := json.Unmarshal(b, &back); err != nil || back.Command != hidden || len(back.Parts) != 2 {
		t.Errorf("JSON round trip: %+v, %v", back, err)
	}
}

func TestApproveSum(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	full := sumOf("kubectl delete pod canary-1")
	for _, tc := range []struct {
		name, sum string
		want      error // nil: approved
	}{
		{"no sum", "", nil},
		{"short form", full[:12], nil},
		{"full", full, nil},
		{"upper case with prefix", "sha256:" + strings.ToUpper(full[:16]), nil},
		{"minimum length", full[:approvals.MinSumPrefix], nil},
		{"another command", sumOf("kubectl delete pod canary-2")[:12], approvals.ErrStaleHash},
		{"too short", full[:approvals.MinSumPrefix-1], approvals.ErrInvalid},
		{"not hex", "zz" + full[2:12], approvals.ErrInvalid},
		{"too long", full + "00", approvals.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			svc := &approvals.Service{Store: openStore(t, dbPath(t))}
			req, err := svc.Create(ctx, request("sess-1", "kubectl delete pod canary-1"))
			if err != nil {
				t.Fatal(err)
			}
			got, err := svc.ApproveSum(ctx, req.ID, tc.sum, bob, "", 0)
			if tc.want == nil {
				if err != nil || got.Status != approvals.Approved {
					t.Fatalf("ApproveSum(%q) = %+v, %v", tc.sum, got, err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("ApproveSum(%q): %v, want %v", tc.sum, err, tc.want)
			}
			if r, _ := svc.Get(ctx, req.ID); r.Status != approvals.Pending {
				t.Errorf("a refused approval left the request %s", r.Status)
			}
		})
	}
}

// The runner hands Consume the masked bytes it is about to run: anything
// but the approved bytes fails, including a command that renders alike.
func TestConsumeBindsTheExactBytes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc := &approvals.Service{Store: openStore(t, dbPath(t))}
	req, err := svc.Create(ctx, request("sess-1", "python3 -c 1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Approve(ctx, req.ID, bob, "", 0); err != nil {
		t.Fatal(err)
	}
	for _, other := range []string{hidden, "python3 -c 1 ", "python3 -c 1\u200b", "python3 -c 2"} {
		if err := req.Binds(other); !errors.Is(err, approvals.ErrMismatch) || !strings.Contains(err.Error(), approvals.ShortSum(req.Sum())) {
			t.Errorf("Binds(%q) = %v, want ErrMismatch naming the approved sum", other, err)
		}
		if err := svc.Consume(ctx, req.ID, "sess-1", other); !errors.Is(err, approvals.ErrMismatch) {
			t.Errorf("Consume(%q) = %v, want ErrMismatch", other, err)
		}
	}
	if err := req.Binds("python3 -c 1"); err != nil {
		t.Fatal(err)
	}
	if err := svc.Consume(ctx, req.ID, "sess-1", "python3 -c 1"); err != nil {
		t.Fatalf("Consume of the approved bytes: %v", err)
	}
}

func TestFourEyesCanonical(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	requester := identity.Provenance{Kind: identity.KindAgent, Subject: "demo-agent", Issuer: "http://127.0.0.1:8080/dev", Sponsor: "Alice"}
	human := func(sub, iss string) identity.Provenance {
		return identity.Provenance{Kind: identity.KindHuman, Subject: sub, Issuer: iss}
	}
	for _, tc := range []struct {
		name     string
		approver identity.Provenance
		want     error // nil: approved
	}{
		{"upper case", human("DEMO-AGENT", "cli"), approvals.ErrSelfApproval},
		{"mixed case, no issuer", human("Demo-Agent", ""), approvals.ErrSelfApproval},
		{"same issuer", human("demo-agent", "http://127.0.0.1:8080/dev"), approvals.ErrSelfApproval},
		{"spaces around", human("  demo-agent\t", "cli"), approvals.ErrSelfApproval},
		{"fullwidth", human("ｄｅｍｏ－ａｇｅｎｔ", "cli"), approvals.ErrSelfApproval},
		{"zero width inside", human("demo\u200b-agent\u2060", "cli"), approvals.ErrSelfApproval},
		{"bidi mark inside", human("demo-\u200eagent", "cli"), approvals.ErrSelfApproval},
		{"sharp s folds", human("DEMO-AGENT", "cli"), approvals.ErrSelfApproval},
		{"sponsor", human("alice", "https://idp.example"), approvals.ErrSelfApproval},
		{"sponsor in upper case", human("ALICE", "cli"), approvals.ErrSelfApproval},
		{"only invisible", human("\u200b\u200b", "cli"), approvals.ErrInvalid},
		{"another person", human("bob", "cli"), nil},
		{"a prefix is another person", human("demo", "cli"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var evs events
			svc := &approvals.Service{Store: openStore(t, dbPath(t)), Audit: &evs}
			r := request("sess-1", "kubectl delete pod x")
			r.Requester = requester
			req, err := svc.Create(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			got, err := svc.Approve(ctx, req.ID, tc.approver, "", 0)
			if tc.want == nil {
				if err != nil || got.Status != approvals.Approved {
					t.Fatalf("Approve as %q = %v", tc.approver.Subject, err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Approve as %q: %v, want %v", tc.approver.Subject, err, tc.want)
			}
			if r, _ := svc.Get(ctx, req.ID); r.Status != approvals.Pending {
				t.Errorf("a refused approval left the request %s", r.Status)
			}
			// The attempt is audited, with who tried and why it failed.
			ev, ok := evs.find(req.ID, "refused")
			if !ok || ev.Identity == nil || ev.Identity.Subject != tc.approver.Subject || ev.Detail["cause"] != err.Error() {
				t.Errorf("refused event = %+v, %v", ev, ok)
			}
		})
	}
}

func TestCanonical(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"Demo-Agent", "demo-agent"},
		{"STRASSE", "strasse"},
		{"Straße", "strasse"},
		{"ｄｅｍｏ", "demo"},
		{" a\u200bb\ufeff ", "ab"},
		{"ﬁle", "file"},
		{"", ""},
	} {
		if got := approvals.Canonical(tc.in); got != tc.want {
			t.Errorf("Canonical(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestAgentReasonIsBounded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc := &approvals.Service{Store: openStore(t, dbPath(t))}
	r := request("sess-1", "kubectl delete pod x")
	r.AgentReason = strings.Repeat("r", approvals.MaxAgentReason)
	if _, err := svc.Create(ctx, r); err != nil {
		t.Fatalf("a reason of %d bytes: %v", approvals.MaxAgentReason, err)
	}
	r.AgentReason += "r"
	if _, err := svc.Create(ctx, r); !errors.Is(err, approvals.ErrInvalid) || !strings.Contains(err.Error(), "1024 bytes") {
		t.Fatalf("a reason of %d bytes: %v, want ErrInvalid", len(r.AgentReason), err)
	}
}

// Notifications show agent text rendered: no byte of it reaches a person's
// terminal or chat as a control, and every rule is named.
func TestSummaryRendersAgentText(t *testing.T) {
	t.Parallel()
	r := request("sess-1", hidden+"\u202e")
	r.ID, r.Status = "apr_0123456789", approvals.Pending
	r.Parts = []approvals.Part{{Text: "python3 -c 1", Rule: "interpreter-one-liner"}, {Text: "kubectl delete pod x", Rule: "kubectl-delete"}}
	r.Rule = "interpreter-one-liner"
	got := approvals.Summary(approvals.Event{Step: approvals.StepRequested, Request: r})
	for _, want := range []string{`printf '\x1b[8m'; kubectl delete pod x\u202e`, "rules interpreter-one-liner, kubectl-delete",
		"sha256 " + approvals.ShortSum(r.Sum()), "--hash " + approvals.ShortSum(r.Sum())} {
		if !strings.Contains(got, want) {
			t.Errorf("Summary lacks %q:\n%s", want, got)
		}
	}
	if strings.ContainsAny(got, "\x1b\u202e") {
		t.Errorf("Summary carries raw controls: %q", got)
	}
	r.Status, r.Decider, r.Comment = approvals.Denied, &bob, "no\x1b[2J"
	got = approvals.Summary(approvals.Event{Step: approvals.StepDenied, Request: r})
	if strings.ContainsAny(got, "\x1b\u202e") || !strings.Contains(got, `comment: no\x1b[2J`) {
		t.Errorf("denied Summary = %q", got)
	}
}
