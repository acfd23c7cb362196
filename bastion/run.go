package bastion

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/bastion-dev/bastion/audit"
	"github.com/bastion-dev/bastion/policy"
	"github.com/bastion-dev/bastion/recordings"
	"github.com/bastion-dev/bastion/shellpolicy"
)

// handler runs one session's command and returns its exit code.
type handler func(sess *session) int

// middleware wraps a handler with one control stage.
type middleware func(next handler) handler

// chain composes middlewares around h so that the first listed runs first:
// chain(h, a, b) runs a, then b, then h.
func chain(h handler, mws ...middleware) handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// run is the session pipeline: recover -> record+audit the session ->
// (exec) policy -> approval -> run, or the checked shell.
func (sess *session) run() int {
	s := sess.srv
	if sess.refuseLongReason() {
		return ExitDenied
	}
	if err := s.acquire(sess); err != nil {
		s.audit(audit.Event{Type: audit.RequestRefused, Identity: provOf(sess.ident), Session: sess.id, Source: sess.source,
			Detail: map[string]any{"request": sess.kind, "reason": err.Error()}})
		fmt.Fprintf(sess.ch.Stderr(), "bastion: session refused: %v%s", err, sess.nl())
		return ExitSessionLimit
	}
	defer s.release(sess)
	if sess.kind == "shell" {
		return chain((*session).runShell, recoverer, recorded)(sess)
	}
	return chain((*session).runExec, recoverer, recorded, checked, approved)(sess)
}

// recoverer turns a panic in a later stage into an internal-error exit, so
// one bad session cannot take the server down.
func recoverer(next handler) handler {
	return func(sess *session) (code int) {
		defer func() {
			if r := recover(); r != nil {
				sess.srv.Logger.Error("session panic", "session", sess.id, "panic", r, "stack", string(debug.Stack()))
				fmt.Fprintf(sess.ch.Stderr(), "bastion: internal error (session %s)\r\n", sess.id)
				code = ExitInternal
			}
		}()
		return next(sess)
	}
}

// createRecording opens a shell session's recording. It is a variable only
// so that a benchmark can measure what recording costs (export_test.go);
// bastion itself never runs a session without one.
var createRecording = recordings.Create

// recorded opens the session's recording and audits its start and end. If
// either cannot be written, nothing runs (fail closed).
func recorded(next handler) handler {
	return func(sess *session) int {
		s := sess.srv
		sess.mu.Lock()
		p := sess.pty
		sess.mu.Unlock()
		// The command is masked here as in its marker: a secret typed in it
		// must not reach the recording.
		h := recordings.Header{Width: 80, Height: 24, Timestamp: s.Clock().Unix(), Command: s.Masker.String(sess.command),
			Env: map[string]string{"SHELL": s.cfg.Exec.Shell}, Title: "bastion session " + sess.id,
			Bastion: recordings.Meta{SessionID: sess.id, Identity: sess.ident.Provenance, CertSerial: sess.ident.Serial,
				KeyID: sess.ident.KeyID, Principal: sess.ident.Principal, Source: sess.source, Reason: sess.agentReason()}}
		if p != nil {
			h.Width, h.Height, h.Env["TERM"] = p.win.cols, p.win.rows, p.term
		}
		sess.recStart = s.Clock()
		rec, err := createRecording(s.RecordingsDir, h, recordings.Options{Clock: s.Clock, Signer: s.RecordingKey})
		if err != nil {
			s.Logger.Error("recording unavailable", "session", sess.id, "err", err)
			return sess.refuseRecording()
		}
		sess.rec = rec
		if err := sess.indexStart(h, sess.recStart); err != nil {
			rec.Close(ExitRecordingUnavailable)
			return sess.refuseUnrecorded(errStoreFailed)
		}
		detail := map[string]any{"kind": sess.kind, "principal": sess.ident.Principal, "serial": fmt.Sprint(sess.ident.Serial)}
		if sess.kind == "exec" {
			detail["command"] = s.Masker.String(sess.command)
		}
		if r := sess.agentReason(); r != "" {
			detail["reason"] = r
		}
		if err := s.audit(audit.Event{Type: audit.SessionStart, Identity: provOf(sess.ident), Session: sess.id, Source: sess.source, Detail: detail}); err != nil {
			rec.Close(ExitRecordingUnavailable)
			sess.indexEnd(ExitRecordingUnavailable)
			return sess.refuseRecording()
		}
		code := next(sess)
		if err := rec.Close(code); err != nil {
			s.Logger.Error("closing recording", "session", sess.id, "err", err)
		}
		sess.indexEnd(code)
		cause := context.Cause(sess.ctx)
		end := map[string]any{"exit": code}
		if cause != nil {
			end["cause"] = cause.Error()
		}
		s.audit(audit.Event{Type: audit.SessionEnd, Identity: provOf(sess.ident), Session: sess.id, Source: sess.source, Detail: end})
		return code
	}
}

func (sess *session) refuseRecording() int {
	sess.refusal("recording-unavailable", "the session cannot be recorded, so nothing runs",
		"retry later; tell the bastion operator if it persists", policy.Result{Rule: "recording"})
	return ExitRecordingUnavailable
}

// refuseUnrecorded refuses a session or command that could not be
// recorded (decide's error): errStoreFailed when the store's session index
// failed, anything else when the recording or the audit log did.
func (sess *session) refuseUnrecorded(err error) int {
	if !errors.Is(err, errStoreFailed) {
		return sess.refuseRecording()
	}
	io.WriteString(sess.ch.Stderr(), sess.storeRefusalText())
	return ExitRecordingUnavailable
}

// storeRefusalText is the refusal of a session or command that the
// store's session index could not record. It is a recording refusal (same
// key, rule and exit code) whose reason names the store.
func (sess *session) storeRefusalText() string {
	return sess.refusalText("recording-unavailable", "the session store could not record it, so nothing ran",
		"retry later; tell the bastion operator if it persists", policy.Result{Rule: "recording"})
}

// checked decides the exec command with the shell policy. The decision is
// recorded and audited before anything runs; a denial runs nothing.
func checked(next handler) handler {
	return func(sess *session) int {
		res, err := sess.decide(sess.command)
		if err != nil {
			return sess.refuseUnrecorded(err)
		}
		switch res.Decision {
		case policy.Deny:
			sess.refusal("denied", res.Reason, res.Hint, res)
			code := ExitDenied
			if res.Rule == ruleCertificate {
				code = ExitCertificate
			}
			sess.endCommand(code, 0)
			return code
		case policy.Approve:
			sess.pending = res
		}
		return next(sess)
	}
}

// approved holds commands that need a human approval until one decides.
func approved(next handler) handler {
	return func(sess *session) int {
		if sess.pending.Decision != policy.Approve {
			return next(sess)
		}
		out, code := sess.hold(sess.ctx, sess.command, sess.masked, sess.pending, sess.shellParts(sess.command), func(s string) { io.WriteString(sess.ch.Stderr(), s) })
		if out != holdRun {
			sess.endCommand(code, 0)
			return code
		}
		return next(sess)
	}
}

// decide runs the policy on input and durably records the decision (a
// recording marker, a row in the store's session index and an audit event)
// before returning. An error (errRecordingFailed or errStoreFailed) means
// the decision could not be recorded: the caller must not run anything.
func (sess *session) decide(input string) (res policy.Result, err error) {
	s := sess.srv
	if sess.storeBroken() {
		// An earlier write to the index failed, and the session is ending.
		return res, errStoreFailed
	}
	out := s.Policy.Decide(input, shellpolicy.Input{Principal: sess.ident.Principal, Role: sess.ident.Provenance.Role})
	res = out.Result
	if err := s.live.admit(sess.ident); err != nil {
		// Revoked or expired since the session opened: refused, recorded
		// and audited like any denial (the session itself is ending).
		res = policy.Result{Decision: policy.Deny, Rule: ruleCertificate, Reason: err.Error(), Hint: "run bastion login, then retry"}
	}
	masked := s.Masker.String(input)
	sess.masked = masked
	ref, err := sess.rec.Command(masked, res.Decision.String(), res.Rule)
	if err != nil {
		sess.cancel(errRecordingFailed)
		return res, errRecordingFailed
	}
	sess.cmdRef = ref
	if err := sess.indexCommand(ref); err != nil {
		// The recording shows the command refused, as the agent sees it.
		if err := sess.rec.CommandEnd(ref, ExitRecordingUnavailable); err != nil {
			sess.cancel(errRecordingFailed)
			return res, errRecordingFailed
		}
		sess.cancel(errStoreFailed)
		return res, errStoreFailed
	}
	if err := s.audit(audit.Event{Type: audit.Command, Identity: provOf(sess.ident), Session: sess.id, Source: sess.source,
		Decision: res.Decision.String(), Rule: res.Rule, Detail: map[string]any{"command": masked, "reason": res.Reason}}); err != nil {
		return res, errRecordingFailed
	}
	return res, nil
}

// ruleCertificate is the rule id of a command refused because the
// session's certificate was revoked or expired.
const ruleCertificate = "certificate"

// refusal writes to stderr the two lines every refusal shows the agent.
func (sess *session) refusal(what, reason, hint string, res policy.Result) {
	io.WriteString(sess.ch.Stderr(), sess.refusalText(what, reason, hint, res))
}

// refusalText is one line for a human, "bastion: <what>: <reason> [rule
// <id>]", then one JSON object for a program.
func (sess *session) refusalText(what, reason, hint string, res policy.Result) string {
	line := "bastion: " + what + ": " + reason
	if res.Rule != "" {
		line += " [rule " + res.Rule + "]"
	}
	key := strings.ReplaceAll(what, " ", "-")
	js, _ := json.Marshal(struct {
		Bastion string `json:"bastion"`
		Rule    string `json:"rule"`
		Reason  string `json:"reason"`
		Hint    string `json:"hint,omitempty"`
		Session string `json:"session"`
	}{key, res.Rule, reason, hint, sess.id})
	nl := "\n"
	if sess.hasPTY() {
		nl = "\r\n"
	}
	return line + nl + string(js) + nl
}

func (sess *session) hasPTY() bool {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.pty != nil
}

// recordedWriter writes to the recording first and then to the agent, so
// nothing reaches the agent that is not in the recording. A recording error
// ends the session with a cause.
type recordedWriter struct {
	mu   *sync.Mutex // shared by stdout and stderr: one recording
	rec  io.Writer
	to   io.Writer
	sess *session
}

func (w recordedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	_, err := w.rec.Write(p)
	w.mu.Unlock()
	if err != nil {
		w.sess.cancel(errRecordingFailed)
		return 0, err
	}
	return w.to.Write(p)
}
