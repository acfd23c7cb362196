package bastion

import (
	"context"
	"io"
	"strings"

	"github.com/bastion-dev/bastion/audit"
	"github.com/bastion-dev/bastion/pgproxy"
	"github.com/bastion-dev/bastion/policy"
	"github.com/bastion-dev/bastion/shellpolicy"
	"github.com/bastion-dev/bastion/shellpolicy/sqlpolicy"
)

// The gate is where every agent action is decided and recorded: an exec
// command, each line of an interactive shell, each statement through a
// database tunnel. For each one, in this order:
//
//  1. admit: the certificate is still valid and not revoked (liveness.go);
//  2. decide: the policy's verdict (shell or SQL engine);
//  3. record: the decision, durably, before anything runs — a recording
//     marker, the store's command row and an audit event for a command;
//     for a statement, its record (tunnelLog) is written before the next
//     statement goes upstream, and a refusal's before the client hears it;
//  4. hold: an approve verdict waits for a human (approval.go);
//  5. the verdict: run, or refuse with a code and a line the agent can act
//     on (refusal.go).
//
// A way in calls the gate; it never re-implements a stage.

// verdict is the gate's answer for one command or line.
type verdict struct {
	run bool
	// code is the exit status of an action that must not run.
	code int
	// refusal is what the agent must be told of a refused action, not yet
	// shown (the caller shows it where its channel wants it). Empty when
	// the gate has shown everything (a hold writes as it waits).
	refusal string
	// denied: the policy refused it, and its recorded decision has no end
	// yet. An exec records the refusal's exit code as the command's; a
	// shell line that was refused keeps none (it never ran: the index
	// shows "deny -").
	denied bool
}

// gated is the exec session's gate stage: the command runs only if the
// gate lets it.
func gated(next handler) handler {
	return func(sess *session) int {
		v := sess.gate(sess.ctx, sess.command, func(s string) { io.WriteString(sess.ch.Stderr(), s) })
		if !v.run {
			io.WriteString(sess.ch.Stderr(), v.refusal)
			if v.denied {
				sess.endCommand(v.code, 0)
			}
			return v.code
		}
		return next(sess)
	}
}

// gate decides input, a shell command or line, records the decision and
// holds it for approval if the policy says so. show writes to the agent
// while the gate waits (the approval's waiting line and its outcome); ctx
// ends the wait (the agent left, or pressed Ctrl-C at the prompt). A held
// command that must not run has its end recorded here, with the verdict's
// code; a denied one is left to the caller (verdict.denied).
func (sess *session) gate(ctx context.Context, input string, show func(string)) verdict {
	res, masked, err := sess.decide(input)
	if err != nil {
		return verdict{code: ExitRecordingUnavailable, refusal: sess.unrecordedText(err)}
	}
	switch res.Decision {
	case policy.Deny:
		code := ExitDenied
		if res.Rule == ruleCertificate {
			code = ExitCertificate
		}
		return verdict{code: code, refusal: sess.refusalText("denied", res.Reason, res.Hint, res), denied: true}
	case policy.Approve:
		if out, code := sess.hold(ctx, input, masked, res, sess.shellParts(input), heldAt{target: "shell", cwd: sess.srv.cfg.Exec.Dir}, show); out != holdRun {
			sess.endCommand(code, 0)
			return verdict{code: code}
		}
	}
	return verdict{run: true}
}

// decide admits the agent, runs the shell policy on input and durably
// records the decision (a recording marker, a row in the store's session
// index and an audit event) before returning it with input as recorded
// (masked). An error (errRecordingFailed or errStoreFailed) means the
// decision could not be recorded: nothing may run.
func (sess *session) decide(input string) (res policy.Result, masked string, err error) {
	s := sess.srv
	if sess.storeBroken() {
		// An earlier write to the index failed, and the session is ending.
		return res, "", errStoreFailed
	}
	res = s.Policy.Decide(input, shellpolicy.Input{Principal: sess.ident.Principal, Role: sess.ident.Provenance.Role}).Result
	if err := s.live.admit(sess.ident); err != nil {
		// Revoked or expired since the session opened: refused, recorded
		// and audited like any denial (the session itself is ending).
		res = certificateRefusal(err)
	}
	masked = s.Masker.String(input)
	ref, err := sess.rec.Command(masked, res.Decision.String(), res.Rule)
	if err != nil {
		sess.cancel(errRecordingFailed)
		return res, masked, errRecordingFailed
	}
	sess.cmdRef = ref
	if err := sess.indexCommand(ref); err != nil {
		// The recording shows the command refused, as the agent sees it.
		if err := sess.rec.CommandEnd(ref, ExitRecordingUnavailable); err != nil {
			sess.cancel(errRecordingFailed)
			return res, masked, errRecordingFailed
		}
		sess.cancel(errStoreFailed)
		return res, masked, errStoreFailed
	}
	e := sess.event(audit.Command, commandDecided{Command: masked, Reason: res.Reason})
	e.Decision, e.Rule = res.Decision.String(), res.Rule
	if err := s.audit(e); err != nil {
		return res, masked, errRecordingFailed
	}
	return res, masked, nil
}

// ruleCertificate is the rule id of a command refused because the
// session's certificate was revoked or expired.
const ruleCertificate = "certificate"

func certificateRefusal(err error) policy.Result {
	return policy.Result{Decision: policy.Deny, Rule: ruleCertificate, Reason: err.Error(), Hint: "run bastion login, then retry"}
}

// sqlGate is the gate of a database session's statements, as pgproxy's
// hooks: pgproxy decides each statement with classifier (the target's SQL
// rules) and calls these for the other stages. Statements are recorded by
// log.
func (sess *session) sqlGate(t DBTarget, classifier *sqlpolicy.Classifier, log *tunnelLog) pgproxy.Hooks {
	s := sess.srv
	return pgproxy.Hooks{
		// Every statement checks the certificate, as every exec and shell
		// line does: a stale revocation list or an expired certificate
		// refuses it even before the connection is closed.
		Admit: func() error { return s.live.admit(sess.ident) },
		Approve: func(ctx context.Context, stmt string, res policy.Result, notice func(string)) (bool, string) {
			at := heldAt{target: t.Name}
			out, _ := sess.hold(ctx, stmt, s.Masker.String(stmt), res, sqlParts(s.Masker, classifier.Classify(stmt)), at, func(msg string) {
				// The first line of msg becomes a NoticeResponse: a person
				// at psql sees why it waits, and how to release it.
				line, _, _ := strings.Cut(msg, "\n")
				line = strings.TrimSpace(line)
				if id, ok := pendingID(msg); ok {
					line += "; an approver runs: bastion approvals approve " + id
				}
				notice(line)
			})
			if out == holdRun {
				return true, ""
			}
			return false, "not approved"
		},
		Statement: log.statement,
		Cancel: func(ev pgproxy.CancelEvent) {
			d := statementCancelled{Target: ev.Target, Outcome: string(ev.Outcome)}
			if ev.Err != nil {
				d.Error = ev.Err.Error()
			}
			s.audit(sess.event(eventQueryCancel, d))
		},
	}
}

// pendingID is the approval id in a hold's waiting text (its JSON line).
func pendingID(msg string) (string, bool) {
	_, rest, ok := strings.Cut(msg, `"approval":"`)
	if !ok {
		return "", false
	}
	id, _, ok := strings.Cut(rest, `"`)
	return id, ok && id != ""
}
