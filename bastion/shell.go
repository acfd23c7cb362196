package bastion

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/bastion-dev/bastion/pty"
)

// runShell serves an interactive shell through the line front: bastion
// edits each line itself, checks the complete input with the same policy as
// exec, and only then hands it to a persistent shell on a PTY. A shell
// without a client PTY gets one too; the client just sees no echo control.
func (sess *session) runShell() int {
	s := sess.srv
	cmd, err := sess.shellCommand(sess.ctx, "--noprofile", "--norc")
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
	if err != nil {
		s.Logger.Error("shell", "session", sess.id, "err", err)
		code = ExitInternal
	}
	code, _ = sess.ended(code)
	return code
}

// checkLine is the line front's check: the gate, as for an exec command.
// The waiting line and the outcome of a hold go straight to the terminal:
// the agent must see them while the prompt waits. Ctrl-C cancels ctx and
// so the request.
func (sess *session) checkLine(ctx context.Context, input string) pty.Verdict {
	v := sess.gate(ctx, input, func(s string) { io.WriteString(sess.shellOut, s) })
	return pty.Verdict{Run: v.run, Message: v.refusal}
}
