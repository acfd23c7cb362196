package attack

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/approvals"
	"github.com/bastion-dev/bastion/bastion"
	"github.com/bastion-dev/bastion/internal/client"
	"github.com/bastion-dev/bastion/internal/sshtest"
)

// approvalBastion is a real bastion with the built-in policy, whose
// approvals notice a decision made by the CLI within 20 ms.
func approvalBastion(t *testing.T) *sshtest.Bastion {
	t.Helper()
	return start(t, sshtest.Options{Configure: func(env *bastion.Env) {
		env.Approvals.Poll = 20 * time.Millisecond
	}})
}

// held is a command the real ssh client sent that bastion holds for
// approval.
type held struct {
	*Proc
	id string
}

var waitingLine = regexp.MustCompile(`bastion: waiting for approval (apr_[0-9a-z]+) \(rule ([^)]+)\)`)

// holdCommand sends command through the real ssh client with the given
// client options (-o SetEnv=...) and returns once bastion says it waits for
// an approval.
func holdCommand(t *testing.T, login *client.Result, command string, opts ...string) *held {
	t.Helper()
	args := append([]string{"-F", login.SSHConfig, "-o", "BatchMode=yes"}, opts...)
	p := startProc(t, "ssh", append(args, "bastion", command)...)
	var id string
	if !within(20*time.Second, func() bool {
		m := waitingLine.FindStringSubmatch(p.Stderr())
		if m != nil {
			id = m[1]
		}
		return m != nil || p.Exited()
	}) || id == "" {
		t.Fatalf("no waiting line; stderr %q", p.Stderr())
	}
	return &held{Proc: p, id: id}
}

// rawControl finds a byte or rune that a terminal would act on instead of
// showing it: C0 controls other than newline, DEL, C1, bidi and zero-width.
var rawControl = regexp.MustCompile(`[\x00-\x09\x0b-\x1f\x7f\x{80}-\x{9f}\x{202a}-\x{202e}\x{2066}-\x{2069}\x{200b}-\x{200f}\x{2060}\x{feff}]`)

// TestApprovalShowsEveryPartVisiblyAndBindsTheBytes (#22 item 2): an agent
// sends a harmless python3 -c whose rule is the first one named, then a
// conceal sequence (ESC [8m) that makes the rest of the line invisible on a
// terminal, then kubectl delete. The approver's `approvals show` prints the
// escape as text and names both parts with both rules; the request binds
// the command's sha256, so an approval given for another sum is refused;
// the approval with the right one runs the command, and every step is
// audited with the sum and both rules.
func TestApprovalShowsEveryPartVisiblyAndBindsTheBytes(t *testing.T) {
	b := approvalBastion(t)
	login := b.Login("agent-concealer")
	const command = "python3 -c 1; : '\x1b[8m\u202e'; kubectl delete pod x"
	h := holdCommand(t, login, command)
	// The agent's own terminal gets the waiting line and every part, with
	// nothing that drives the terminal.
	for _, want := range []string{"(rule interpreter-one-liner)", "needs approval: python3 -c 1 [rule interpreter-one-liner]",
		"needs approval: kubectl delete pod x [rule kubectl-delete]", `"rules":["interpreter-one-liner","kubectl-delete"]`} {
		if !within(5*time.Second, func() bool { return strings.Contains(h.Stderr(), want) }) {
			t.Errorf("waiting text lacks %q:\n%s", want, h.Stderr())
		}
	}
	if rawControl.MatchString(h.Stderr()) {
		t.Errorf("waiting text carries a raw control: %q", h.Stderr())
	}

	show := cli(t, b, "approvals", "show", h.id)
	if show.Code != 0 {
		t.Fatalf("approvals show: %+v", show)
	}
	sum := approvals.Sum(command)
	for _, want := range []string{
		`    python3 -c 1; : '\x1b[8m\u202e'; kubectl delete pod x` + "\n",
		"[rule interpreter-one-liner] python3 -c 1",
		"[rule kubectl-delete] kubectl delete pod x",
		"SHA256:", sum,
		"Command (sha256 " + approvals.ShortSum(sum) + "):",
	} {
		if !strings.Contains(show.Stdout, want) {
			t.Errorf("approvals show lacks %q:\n%s", want, show.Stdout)
		}
	}
	if rawControl.MatchString(show.Stdout) {
		t.Errorf("approvals show prints a raw control: %q", show.Stdout)
	}
	list := cli(t, b, "approvals", "list")
	if !strings.Contains(list.Stdout, `: '\x1b[8m\u202e'; kubectl delete pod x`) || !strings.Contains(list.Stdout, "interpreter-one-liner,kubectl-delete") ||
		rawControl.MatchString(list.Stdout) {
		t.Errorf("approvals list:\n%s", list.Stdout)
	}

	// An approval for another command's sum is refused and changes nothing.
	wrong := approvals.ShortSum(approvals.Sum("python3 -c 1"))
	r := cli(t, b, "approvals", "approve", h.id, "--as", "alice", "--hash", wrong)
	if r.Code == 0 || !strings.Contains(r.Stderr, "does not have that sha256") {
		t.Fatalf("approve with another sum: %+v", r)
	}
	waitAudit(t, b, func(e event) bool {
		return e.str("type") == "approval" && e.detail("id") == h.id && e.detail("step") == "refused" &&
			strings.Contains(e.detail("cause"), "does not have that sha256")
	})
	if h.Exited() {
		t.Fatalf("the held command ended after a refused approval: %q", h.Stderr())
	}

	r = cli(t, b, "approvals", "approve", h.id, "--as", "alice", "--hash", approvals.ShortSum(sum))
	if r.Code != 0 || !strings.Contains(r.Stdout, "rules interpreter-one-liner, kubectl-delete") || rawControl.MatchString(r.Stdout) {
		t.Fatalf("approve with the command's sum: %+v", r)
	}
	switch code := h.Wait(20 * time.Second); code {
	case -1, bastion.ExitApprovalDenied, bastion.ExitApprovalTimeout, bastion.ExitInternal:
		t.Fatalf("approved command: exit %d; stderr %q", code, h.Stderr())
	}
	req := waitAudit(t, b, func(e event) bool {
		return e.str("type") == "approval" && e.detail("id") == h.id && e.detail("step") == "requested"
	})
	if req.detail("sha256") != sum || req.detail("rules") != `["interpreter-one-liner","kubectl-delete"]` {
		t.Errorf("requested event %v: want sha256 %s and both rules", req, sum)
	}
	waitAudit(t, b, func(e event) bool {
		return e.str("type") == "approval" && e.detail("id") == h.id && e.detail("step") == "executed" && e.detail("sha256") == sum
	})
}

// TestApprovalReasonIsMaskedAndBounded (#22 item 11): a GitHub token sent
// in BASTION_REASON (ssh -o SetEnv) reaches neither the audit log, nor the
// recording, nor the store, nor an approval request; a reason over 1 KiB
// refuses the session with a line to act on, a JSON line and an audit
// event.
func TestApprovalReasonIsMaskedAndBounded(t *testing.T) {
	b := approvalBastion(t)
	login := b.Login("agent-reasoner")
	token := "ghp_" + "Zx9QmR4tLw2VbN7cYk3HsJ8dFp5GaE1uWo6T"
	reason := "SetEnv=BASTION_REASON=rotate-" + token

	r := sshtest.SSH(t, login, nil, "-o", reason, "bastion", "echo ran")
	if r.Code != 0 || r.Stdout != "ran\n" {
		t.Fatalf("exec with a token in its reason: %+v", r)
	}
	start := waitAudit(t, b, func(e event) bool {
		return e.str("type") == "session.start" && strings.HasPrefix(e.detail("reason"), "rotate-")
	})
	if !strings.Contains(start.detail("reason"), "[MASKED:") {
		t.Errorf("session.start reason = %q, want it masked", start.detail("reason"))
	}
	sessID := start.str("session")
	rec := cli(t, b, "recordings", "show", sessID)
	if rec.Code != 0 || !strings.Contains(rec.Stdout, "rotate-[MASKED:") {
		t.Errorf("recordings show %s: %+v", sessID, rec)
	}
	stored, err := b.Env.Store.Session(context.Background(), sessID)
	if err != nil || !strings.HasPrefix(stored.Reason, "rotate-[MASKED:") {
		t.Errorf("store session %s: reason %q, %v", sessID, stored.Reason, err)
	}

	// The same reason on a held command: the request keeps it masked too.
	h := holdCommand(t, login, "kubectl delete pod x", "-o", reason)
	show := cli(t, b, "approvals", "show", h.id)
	if !strings.Contains(show.Stdout, "Agent's reason:") || !strings.Contains(show.Stdout, "rotate-[MASKED:") {
		t.Errorf("approvals show:\n%s", show.Stdout)
	}
	if r := cli(t, b, "approvals", "deny", h.id, "--as", "alice", "--comment", "not today"); r.Code != 0 {
		t.Fatalf("deny: %+v", r)
	}
	if code := h.Wait(20 * time.Second); code != bastion.ExitApprovalDenied {
		t.Fatalf("denied command: exit %d", code)
	}

	for _, e := range auditEvents(t, b) {
		if strings.Contains(e.detail("reason")+e.detail("agent_reason"), token) {
			t.Errorf("audit event %v carries the token", e)
		}
	}
	if strings.Contains(readFile(b.Dir.AuditLog()), token) {
		t.Errorf("the audit log holds the token")
	}
	if cast := readFile(filepath.Join(b.Dir.Recordings(), sessID+".cast")); cast == "" || strings.Contains(cast, token) {
		t.Errorf("recording of %s: empty, or holds the token", sessID)
	}

	// Over 1 KiB: refused before anything runs, told how to fix it.
	long := "SetEnv=BASTION_REASON=" + strings.Repeat("x", approvals.MaxAgentReason+1)
	r = sshtest.SSH(t, login, nil, "-o", long, "bastion", "echo should-not-run")
	if r.Code != bastion.ExitDenied || strings.Contains(r.Stdout, "should-not-run") {
		t.Fatalf("exec with a long reason: %+v", r)
	}
	if !strings.Contains(r.Stderr, "bastion: denied: BASTION_REASON is longer than 1024 bytes (1025): shorten it [rule bastion-reason]") ||
		!strings.Contains(r.Stderr, `{"bastion":"denied","rule":"bastion-reason"`) {
		t.Errorf("stderr %q", r.Stderr)
	}
	waitAudit(t, b, func(e event) bool {
		return e.str("type") == "request.refused" && strings.Contains(e.detail("reason"), "BASTION_REASON is longer than 1024 bytes")
	})
}

// TestFourEyesIgnoresCaseAndInvisibleCharacters (#22 item 12): the agent's
// own name in capitals, with a zero-width space inside, or in full-width
// letters, cannot approve its request; each attempt is audited; another
// person can.
func TestFourEyesIgnoresCaseAndInvisibleCharacters(t *testing.T) {
	b := approvalBastion(t)
	login := b.Login("agent-demo")
	h := holdCommand(t, login, "kubectl delete pod x")
	for _, as := range []string{"AGENT-DEMO", "agent\u200b-demo", "ａｇｅｎｔ-ｄｅｍｏ", " Agent-Demo "} {
		r := cli(t, b, "approvals", "approve", h.id, "--as", as)
		if r.Code == 0 || !strings.Contains(r.Stderr, "four-eyes rule: the requester cannot approve their own request") {
			t.Fatalf("approve --as %q: %+v", as, r)
		}
	}
	refused := 0
	for _, e := range auditEvents(t, b) {
		if e.str("type") == "approval" && e.detail("id") == h.id && e.detail("step") == "refused" && strings.Contains(e.detail("cause"), "four-eyes") {
			refused++
		}
	}
	if refused != 4 {
		t.Errorf("%d refused approvals audited, want 4", refused)
	}
	if h.Exited() {
		t.Fatalf("the held command ended: %q", h.Stderr())
	}
	if r := cli(t, b, "approvals", "approve", h.id, "--as", "bob"); r.Code != 0 {
		t.Fatalf("approve as another person: %+v", r)
	}
	if code := h.Wait(20 * time.Second); code == -1 || code == bastion.ExitApprovalDenied || code == bastion.ExitApprovalTimeout {
		t.Fatalf("approved command: exit %d; stderr %q", code, h.Stderr())
	}
	waitAudit(t, b, func(e event) bool {
		return e.str("type") == "approval" && e.detail("id") == h.id && e.detail("step") == "approved"
	})
}
