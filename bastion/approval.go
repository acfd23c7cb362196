package bastion

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/bastion-dev/bastion/approvals"
	"github.com/bastion-dev/bastion/policy"
)

// holdOutcome is how a held command ended.
type holdOutcome int

const (
	holdRun      holdOutcome = iota // approved (or granted): run it
	holdDenied                      // an approver refused
	holdTimedOut                    // expired or cancelled
	holdFailed                      // approvals unavailable: fail closed
)

// hold asks a human to approve input (already masked) and blocks until the
// request is decided, expires, or ctx ends (agent disconnect, Ctrl-C). It
// writes what the agent needs to stderr (text) and returns the exit code to
// use when the command must not run.
func (sess *session) hold(ctx context.Context, input string, res policy.Result, text func(string)) (holdOutcome, int) {
	s := sess.srv
	if s.Approvals == nil {
		text(sess.refusalText("approval required", res.Reason, "ask an operator to run it, or change the command", res))
		return holdFailed, ExitApprovalRequired
	}
	if ok, err := s.Approvals.Granted(ctx, sess.id, res.Rule); err == nil && ok {
		sess.marker(map[string]any{"type": "approval", "step": "granted", "rule": res.Rule})
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
		Requester: sess.ident.Provenance, SessionID: sess.id, Target: "shell", Command: input,
		Rule: res.Rule, Reason: res.Reason, AgentReason: env["BASTION_REASON"], Task: task, Cwd: s.cfg.Exec.Dir,
	})
	if err != nil {
		s.Logger.Error("create approval", "session", sess.id, "err", err)
		text(sess.refusalText("approval unavailable", "the approval request could not be stored, so nothing ran", "retry later; tell the bastion operator if it persists", res))
		return holdFailed, ExitInternal
	}
	js, _ := json.Marshal(map[string]any{"bastion": "pending", "approval": req.ID, "rule": res.Rule, "reason": res.Reason,
		"expires": req.Expires.UTC().Format(time.RFC3339), "session": sess.id})
	text(fmt.Sprintf("bastion: waiting for approval %s (rule %s): %s%s%s%s", req.ID, res.Rule, res.Reason, sess.nl(), js, sess.nl()))
	sess.marker(map[string]any{"type": "approval", "step": "requested", "id": req.ID, "rule": res.Rule})

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
		if err := s.Approvals.Consume(ctx, req.ID, sess.id, input); err != nil {
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
			reason = got.Decider.Subject + " refused " + req.ID
		}
		if got.Comment != "" {
			reason += ": " + got.Comment
		}
		text(sess.refusalText("approval denied", reason, "change the command or ask the approver", res))
		return holdDenied, ExitApprovalDenied
	default:
		text(sess.refusalText("approval timed out", fmt.Sprintf("nobody decided %s before it %s", req.ID, got.Status), "ask an approver, then retry", res))
		return holdTimedOut, ExitApprovalTimeout
	}
}

// marker adds a structured marker to the recording; a failure ends the
// session (fail closed).
func (sess *session) marker(v map[string]any) {
	b, _ := json.Marshal(v)
	if err := sess.rec.Marker(string(b)); err != nil {
		sess.cancel(errRecordingFailed)
	}
}

func (sess *session) nl() string {
	if sess.hasPTY() {
		return "\r\n"
	}
	return "\n"
}
