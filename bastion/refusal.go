package bastion

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/bastion-dev/bastion/policy"
)

// Every refusal the agent sees has one form, written by refusalText: a line
// for a human, "bastion: <what>: <reason> [rule <id>]", then one JSON
// object for a program (README "Refusals"). Its exit code is in
// exitcodes.go.

// refusal writes a refusal to the session's stderr.
func (sess *session) refusal(what, reason, hint string, res policy.Result) {
	io.WriteString(sess.ch.Stderr(), sess.refusalText(what, reason, hint, res))
}

// refusalText is the refusal of what (its JSON key, with dashes for
// spaces) for reason, with a hint of what to do next.
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
	nl := sess.nl()
	return line + nl + string(js) + nl
}

// unrecordedText is the refusal of a session, command or line that could
// not be recorded (err from open or decide): errStoreFailed when the
// store's session index failed, anything else when the recording or the
// audit log did. Both are recording refusals (same key, rule and exit
// code, ExitRecordingUnavailable) whose reason names what failed.
func (sess *session) unrecordedText(err error) string {
	reason := "the session recording could not be written, so nothing ran"
	if errors.Is(err, errStoreFailed) {
		reason = "the session store could not record it, so nothing ran"
	}
	return sess.refusalText("recording-unavailable", reason, "retry later; tell the bastion operator if it persists", policy.Result{Rule: "recording"})
}

// refuseUnrecorded refuses a session that could not be recorded.
func (sess *session) refuseUnrecorded(err error) int {
	io.WriteString(sess.ch.Stderr(), sess.unrecordedText(err))
	return ExitRecordingUnavailable
}

// ended reports whether the session's context has ended, and if so tells
// the agent why and returns the exit code its cause implies (code when the
// cause has none). Exec and shell sessions call it when their command or
// shell returns: a session ended from outside reports that, not the
// command's own status.
func (sess *session) ended(code int) (int, bool) {
	cause := context.Cause(sess.ctx)
	if cause == nil || sess.ctx.Err() == nil {
		return code, false
	}
	fmt.Fprintf(sess.ch.Stderr(), "%sbastion: session ended: %v%s", sess.nl(), cause, sess.nl())
	return causeCode(cause, code), true
}

// causeCode is the exit status of a session ended by cause, or code when
// the cause has no status of its own.
func causeCode(cause error, code int) int {
	switch {
	case errors.Is(cause, errRecordingFailed), errors.Is(cause, errStoreFailed):
		return ExitRecordingUnavailable
	case errors.Is(cause, errCertRevoked), errors.Is(cause, errCertExpired):
		return ExitCertificate
	}
	return code
}

func (sess *session) hasPTY() bool {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.pty != nil
}

// nl is the line end of text written to the agent: a terminal needs CR LF.
func (sess *session) nl() string {
	if sess.hasPTY() {
		return "\r\n"
	}
	return "\n"
}
