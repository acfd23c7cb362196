package bastion

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
	"sync"

	"github.com/bastion-dev/bastion/audit"
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

// run is the session pipeline: recover -> the session's lifecycle (its
// recording, store rows and audit events) -> (exec) the gate -> run; or,
// for a shell, the line front, which calls the gate for every line.
func (sess *session) run() int {
	s := sess.srv
	if sess.refuseLongReason() {
		return ExitDenied
	}
	if err := s.acquire(sess); err != nil {
		s.audit(sess.event(audit.RequestRefused, requestRefused{Request: sess.kind, Reason: err.Error()}))
		fmt.Fprintf(sess.ch.Stderr(), "bastion: session refused: %v%s", err, sess.nl())
		return ExitSessionLimit
	}
	defer s.release(sess)
	if sess.kind == "shell" {
		return chain((*session).runShell, recoverer, recorded)(sess)
	}
	return chain((*session).runExec, recoverer, recorded, gated)(sess)
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

// recorded is the lifecycle stage: the session's recording, store rows
// and audit events are opened before the next stage runs, and closed after
// it. If they cannot be opened, nothing runs (fail closed).
func recorded(next handler) handler {
	return func(sess *session) int {
		life, err := sess.open(sess.header(), sess.startDetail())
		if err != nil {
			return sess.refuseUnrecorded(err)
		}
		code := next(sess)
		life.close(code, context.Cause(sess.ctx))
		return code
	}
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
