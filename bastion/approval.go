package bastion

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bastion-dev/bastion/approvals"
	"github.com/bastion-dev/bastion/audit"
	"github.com/bastion-dev/bastion/masking"
	"github.com/bastion-dev/bastion/policy"
	"github.com/bastion-dev/bastion/shellpolicy"
	"github.com/bastion-dev/bastion/shellpolicy/sqlpolicy"
)

// heldAt is what a held command or statement runs against, as its
// approval request names it.
type heldAt struct {
	target string // "shell", or the database target of a statement
	cwd    string // a command's working directory; empty for a statement
}

// holdOutcome is how a held command ended.
type holdOutcome int

const (
	holdRun      holdOutcome = iota // approved (or granted): run it
	holdDenied                      // an approver refused
	holdTimedOut                    // expired or cancelled
	holdFailed                      // approvals unavailable: fail closed
)

// hold asks a human to approve run, the exact bytes the caller runs when
// hold returns holdRun, and blocks until the request is decided, expires,
// or ctx ends (agent disconnect, Ctrl-C). masked is run as the masker
// shows it (what the approver sees and the approval binds to) and parts
// every part of it that needs approval with its rule (nil: res alone). It
// writes what the agent needs to text and returns the exit code to use
// when the command must not run. at names what it runs against.
func (sess *session) hold(ctx context.Context, run, masked string, res policy.Result, parts []approvals.Part, at heldAt, text func(string)) (holdOutcome, int) {
	s := sess.srv
	if s.Approvals == nil {
		text(sess.refusalText("approval required", res.Reason, "ask an operator to run it, or change the command", res))
		return holdFailed, ExitApprovalRequired
	}
	if len(parts) == 0 {
		parts = []approvals.Part{{Text: masked, Rule: res.Rule, Reason: res.Reason}}
	}
	rules := partRules(parts)
	if sess.granted(ctx, rules) {
		sess.marker(map[string]any{"type": "approval", "step": "granted", "rule": res.Rule, "rules": rules})
		return holdRun, 0
	}
	sess.mu.Lock()
	env := sess.env
	sess.mu.Unlock()
	task := env["BASTION_TASK"]
	if task == "" {
		task = sess.ident.Provenance.Task
	}
	req, err := s.Approvals.Create(ctx, approvals.Request{
		Requester: sess.ident.Provenance, SessionID: sess.id, Target: at.target, Command: masked, Parts: parts,
		Rule: res.Rule, Reason: res.Reason, AgentReason: sess.agentReason(), Task: s.Masker.String(task), Cwd: at.cwd,
	})
	if err != nil {
		s.Logger.Error("create approval", "session", sess.id, "err", err)
		text(sess.refusalText("approval unavailable", "the approval request could not be stored, so nothing ran", "retry later; tell the bastion operator if it persists", res))
		return holdFailed, ExitInternal
	}
	text(sess.waitingText(req, res))
	sess.marker(map[string]any{"type": "approval", "step": "requested", "id": req.ID, "rule": res.Rule, "rules": rules, "sha256": req.Sum()})

	got, err := s.Approvals.Wait(ctx, req.ID)
	if ctx.Err() != nil {
		// Whatever raced the cancellation, a command whose wait was
		// cancelled never runs.
		sess.marker(map[string]any{"type": "approval", "step": "cancelled", "id": req.ID})
		text(sess.refusalText("approval cancelled", "the request "+req.ID+" was cancelled", "", res))
		return holdTimedOut, ExitApprovalTimeout
	}
	if err != nil && got == nil {
		s.Logger.Error("wait for approval", "session", sess.id, "approval", req.ID, "err", err)
		text(sess.refusalText("approval unavailable", "waiting for approval "+req.ID+" failed, so nothing ran", "retry later", res))
		return holdFailed, ExitInternal
	}
	sess.marker(map[string]any{"type": "approval", "step": string(got.Status), "id": req.ID, "comment": got.Comment})
	switch got.Status {
	case approvals.Approved:
		err := bindsRun(s.Masker, run, got)
		if err == nil {
			err = s.Approvals.Consume(ctx, req.ID, sess.id, masked)
		}
		if err != nil {
			text(sess.refusalText("approval unusable", fmt.Sprintf("approval %s cannot be used: %v", req.ID, err), "", res))
			if errors.Is(err, approvals.ErrAlreadyUsed) || errors.Is(err, approvals.ErrMismatch) {
				return holdDenied, ExitApprovalDenied
			}
			return holdFailed, ExitInternal
		}
		return holdRun, 0
	case approvals.Denied:
		reason := "an approver refused " + req.ID
		if got.Decider != nil {
			reason = masking.Display(got.Decider.Subject) + " refused " + req.ID
		}
		if got.Comment != "" {
			reason += ": " + masking.Display(got.Comment)
		}
		text(sess.refusalText("approval denied", reason, "change the command or ask the approver", res))
		return holdDenied, ExitApprovalDenied
	default:
		text(sess.refusalText("approval timed out", fmt.Sprintf("nobody decided %s before it %s", req.ID, got.Status), "ask an approver, then retry", res))
		return holdTimedOut, ExitApprovalTimeout
	}
}

// bindsRun checks that run, the bytes about to run, are what approval r
// was given for: masked as the approver saw them, they must have r's sum
// (approvals.Request.Binds). It is the runner's own check, where run is
// what runs, besides the store's comparison when the approval is used.
func bindsRun(m *masking.Masker, run string, r *approvals.Request) error {
	return r.Binds(m.String(run))
}

// waitingText is what the agent (and whoever watches its terminal) sees
// while a request waits: "bastion: waiting for approval <id> (rule <id>):
// <reason>", a line per part that needs the approval when there are
// several, then the JSON line. Agent text in it (the policy's reason
// quotes the command) goes through masking.Display, so the line shows
// what the bytes are.
func (sess *session) waitingText(req *approvals.Request, res policy.Result) string {
	nl := sess.nl()
	var b strings.Builder
	fmt.Fprintf(&b, "bastion: waiting for approval %s (rule %s): %s%s", req.ID, masking.Display(res.Rule), masking.Display(res.Reason), nl)
	if len(req.Parts) > 1 {
		for _, p := range req.Parts {
			fmt.Fprintf(&b, "bastion:   needs approval: %s [rule %s]%s", masking.Display(p.Text), masking.Display(p.Rule), nl)
		}
	}
	js, _ := json.Marshal(map[string]any{"bastion": "pending", "approval": req.ID, "rule": res.Rule, "rules": partRules(req.Parts),
		"reason": res.Reason, "sha256": req.Sum(), "expires": req.Expires.UTC().Format(time.RFC3339), "session": sess.id})
	b.Write(js)
	b.WriteString(nl)
	return b.String()
}

// granted reports whether approvals granted every one of rules to the
// session (approve --for-session): a grant of one rule does not carry a
// command that another rule holds.
func (sess *session) granted(ctx context.Context, rules []string) bool {
	for _, rule := range rules {
		if ok, err := sess.srv.Approvals.Granted(ctx, sess.id, rule); err != nil || !ok {
			return false
		}
	}
	return len(rules) > 0
}

// partRules is each rule of parts once, in order.
func partRules(parts []approvals.Part) []string {
	var rules []string
	for _, p := range parts {
		if !slices.Contains(rules, p.Rule) {
			rules = append(rules, p.Rule)
		}
	}
	return rules
}

// shellParts is every command of a shell line that needs approval, with
// every rule that asks for it, masked as the line is: the approver sees
// them all, not just the rule that speaks for the line.
func (sess *session) shellParts(input string) []approvals.Part {
	s := sess.srv
	out := s.Policy.Decide(input, shellpolicy.Input{Principal: sess.ident.Principal, Role: sess.ident.Provenance.Role})
	var parts []approvals.Part
	for _, f := range out.Findings {
		for _, r := range f.Approvals {
			parts = append(parts, approvals.Part{Text: s.Masker.String(words(f.Command)), Rule: r.Rule, Reason: s.Masker.String(r.Reason)})
		}
	}
	return parts
}

// words shows a command's resolved words as a shell would read them back.
func words(argv []string) string {
	var b strings.Builder
	for i, w := range argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		if w != "" && !strings.ContainsAny(w, " \t\n'\"\\$`;&|<>(){}*?[]#~") {
			b.WriteString(w)
			continue
		}
		b.WriteString("'" + strings.ReplaceAll(w, "'", `'\''`) + "'")
	}
	return b.String()
}

// sqlParts is every statement of an SQL string that needs approval, masked.
func sqlParts(m *masking.Masker, out sqlpolicy.Outcome) []approvals.Part {
	var parts []approvals.Part
	for _, st := range out.Statements {
		if st.Result.Decision == policy.Approve {
			parts = append(parts, approvals.Part{Text: m.String(st.Text), Rule: st.Result.Rule, Reason: m.String(st.Result.Reason)})
		}
	}
	return parts
}

// agentReason is the agent's BASTION_REASON as bastion keeps it, in the
// recording, the audit log, the store and approval requests: masked, for
// a reason may quote a secret.
func (sess *session) agentReason() string {
	sess.mu.Lock()
	r := sess.env["BASTION_REASON"]
	sess.mu.Unlock()
	return sess.srv.Masker.String(r)
}

// refuseLongReason refuses a session whose BASTION_REASON is longer than
// approvals.MaxAgentReason, before anything is recorded or run: it is
// audited and the agent is told to shorten it. It reports whether it
// refused.
func (sess *session) refuseLongReason() bool {
	sess.mu.Lock()
	n := len(sess.env["BASTION_REASON"])
	sess.mu.Unlock()
	if n <= approvals.MaxAgentReason {
		return false
	}
	reason := fmt.Sprintf("BASTION_REASON is longer than %d bytes (%d)", approvals.MaxAgentReason, n)
	sess.srv.audit(sess.event(audit.RequestRefused, requestRefused{Request: sess.kind, Reason: reason}))
	sess.refusal("denied", reason+": shorten it", fmt.Sprintf("say why in at most %d bytes", approvals.MaxAgentReason), policy.Result{Rule: ruleReason})
	return true
}

// ruleReason is the rule id of a session refused for its BASTION_REASON.
const ruleReason = "bastion-reason"

// marker adds a structured marker to the recording; a failure ends the
// session (fail closed).
func (sess *session) marker(v map[string]any) {
	b, _ := json.Marshal(v)
	if err := sess.rec.Marker(string(b)); err != nil {
		sess.cancel(errRecordingFailed)
	}
}
