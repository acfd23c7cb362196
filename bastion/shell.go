package bastion

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/bastion-dev/bastion/policy"
	"github.com/bastion-dev/bastion/pty"
)

// runShell serves an interactive shell through the line front: bastion
// edits each line itself, checks the complete input with the same policy as
// exec, and only then hands it to a persistent shell on a PTY. A shell
// without a client PTY gets one too; the client just sees no echo control.
func (sess *session) runShell() int {
	s := sess.srv
	cmd, err := sess.command_(sess.ctx, "--noprofile", "--norc")
	if err != nil {
		s.Logger.Error("shell setup", "session", sess.id, "err", err)
		fmt.Fprintf(sess.ch.Stderr(), "bastion: cannot start a shell as the configured user: %v\r\n", err)
		return ExitInternal
	}
	defer sess.releaseAccount()
	dbs, err := sess.withDBSockets(cmd)
	if err != nil {
		s.Logger.Error("database sockets", "session", sess.id, "err", err)
		fmt.Fprintf(sess.ch.Stderr(), "bastion: cannot set up database access for this session\r\n")
		return ExitInternal
	}
	defer dbs.stop()
	var recMu sync.Mutex
	out := s.Masker.Writer(recordedWriter{mu: &recMu, rec: sess.rec.OutputWriter(), to: sess.ch, sess: sess})
	defer out.Close()
	sess.shellOut = out
	in := s.Masker.Writer(sess.rec.InputWriter())
	defer in.Close()

	sess.mu.Lock()
	size, term := pty.Size{Cols: 80, Rows: 24}, "xterm"
	if sess.pty != nil {
		size, term = pty.Size{Cols: sess.pty.win.cols, Rows: sess.pty.win.rows}, sess.pty.term
	}
	sess.mu.Unlock()
	f := &pty.Front{
		Shell: cmd, In: sess.ch, Out: out, Size: size, Term: term,
		Check: sess.checkLine,
		OnInput: func(p []byte) {
			recMu.Lock()
			_, err := in.Write(p)
			recMu.Unlock()
			if err != nil {
				sess.cancel(errRecordingFailed)
			}
		},
		OnExit: func(_ string, code int) { sess.endCommand(code, 0) },
	}
	sess.mu.Lock()
	sess.resize = sess.recordedResize(&recMu, f.Resize)
	sess.mu.Unlock()
	code, err := f.Run(sess.ctx)
	sess.mu.Lock()
	sess.resize = nil
	sess.mu.Unlock()
	if cause := context.Cause(sess.ctx); cause != nil && sess.ctx.Err() != nil {
		fmt.Fprintf(sess.ch.Stderr(), "\r\nbastion: session ended: %v\r\n", cause)
		if c := causeCode(cause, -1); c != -1 {
			return c
		}
	}
	if err != nil {
		s.Logger.Error("shell", "session", sess.id, "err", err)
		return ExitInternal
	}
	return code
}

// checkLine is the line front's check: the same decision, recording and
// audit as an exec command.
func (sess *session) checkLine(ctx context.Context, input string) pty.Verdict {
	res, err := sess.decide(input)
	if errors.Is(err, errStoreFailed) {
		return pty.Verdict{Message: sess.storeRefusalText()}
	}
	if err != nil {
		return pty.Verdict{Message: sess.refusalText("recording-unavailable", "the command could not be recorded, so it did not run", "retry later", policy.Result{Rule: "recording"})}
	}
	switch res.Decision {
	case policy.Deny:
		return pty.Verdict{Message: sess.refusalText("denied", res.Reason, res.Hint, res)}
	case policy.Approve:
		// The waiting line and the outcome go straight to the terminal:
		// the agent must see them while the prompt waits. Ctrl-C cancels
		// ctx and so the request.
		out, code := sess.hold(ctx, input, sess.masked, res, sess.shellParts(input), func(s string) { io.WriteString(sess.shellOut, s) })
		if out != holdRun {
			sess.endCommand(code, 0)
			return pty.Verdict{}
		}
	}
	return pty.Verdict{Run: true}
}
