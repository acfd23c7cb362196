package pty

import (
	"context"
	"errors"
	"io"
	"os/exec"
	"sync"
)

// Size is a terminal window size in character cells.
type Size struct{ Cols, Rows int }

// Verdict is Check's answer for one input.
type Verdict struct {
	// Run lets the input through to the shell.
	Run bool
	// Message is written to the agent as is when Run is false, e.g.
	// "bastion: denied: ... [rule x]\r\n{json}\r\n"; use CRLF line endings,
	// the terminal is in raw mode. Empty means "bastion: denied\r\n".
	Message string
}

// ErrTampered is returned by Run when the shell's plumbing no longer behaves
// as set up: a marker arrived while the shell did not ignore SIGINT, the
// shell ran a command bastion did not send, or its standard input was no
// longer the command FIFO. Run ends the session rather than keep feeding a
// shell whose state it cannot trust.
var ErrTampered = errors.New("pty: shell plumbing was modified")

// Front is the interactive line front of a PTY session: bastion's own line
// editor in front of a persistent bash on a PTY. Every input the agent
// submits goes to Check before the shell sees it; while a command runs,
// keystrokes go to the command. See the package documentation for how no
// unchecked byte reaches the shell's command reader.
//
// Fill the fields, then call Run once; Resize may be called at any time
// from another goroutine.
type Front struct {
	// Shell is bash (4.4 or later), started with Env, Dir and
	// SysProcAttr.Credential set by the caller and no command or script
	// argument. Front adds --noediting and -i, replaces its standard
	// descriptors, appends two ExtraFiles, and sets SysProcAttr.Setsid and
	// Setctty. Whether rc files run (--noprofile --norc) is the caller's
	// choice. The shell must run as a different user than bastion itself:
	// a process of the same user could open bastion's FIFO and pipe through
	// /proc.
	Shell *exec.Cmd
	// In carries the agent's keystrokes (the SSH channel). Run reads it from
	// a goroutine that it does not wait for: that goroutine ends when a Read
	// returns an error, so the caller closes In (the channel) after Run
	// returns. Bytes read after Run returned are dropped.
	In io.Reader
	// Out receives everything the agent sees. The caller wraps it (masking,
	// recording). Front serializes its writes. A Write that blocks (a full
	// SSH window) holds up the session, including its reaction to ctx; the
	// caller unblocks it by closing the channel.
	Out io.Writer
	// Check decides one complete input, possibly of several lines. It may
	// block (approvals); its context is cancelled when the agent presses
	// Ctrl-C meanwhile, or when Run ends, and Check must then return soon.
	// Run refuses to start without Check.
	Check func(ctx context.Context, input string) Verdict
	// OnInput, if not nil, receives every chunk read from In, for the
	// recording, except keystrokes that a running program reads with echo
	// off (a password prompt: read -s in a script, sudo, ssh, psql): for
	// those it receives NoEchoMarker, once per burst. It must not keep p.
	OnInput func(p []byte)
	// OnExit, if not nil, is called when an input that Check let through has
	// finished, with its exit status (128+n when killed by signal n). It is
	// not called for refused inputs. It runs on Run's goroutine, between
	// keystrokes, so it should not block.
	OnExit func(input string, code int)
	// Prompt is the primary prompt; empty means "$ ". The continuation
	// prompt is "> ". The editor counts its characters to place the cursor,
	// so it must not contain escape sequences.
	Prompt string
	// Size is the initial window size; a zero field means 80x24.
	Size Size
	// Term is the TERM of the shell; empty leaves Shell.Env as is.
	Term string

	mu      sync.Mutex
	started bool     // guarded by mu
	sess    *session // guarded by mu; set while Run runs
}

// Run starts the shell and runs the session until the agent presses Ctrl-D
// on an empty line or In ends (after the running command, if any), the
// shell exits (`exit`), or ctx is done.
// It returns the shell's exit status (128+n when killed by signal n). When
// ctx is done it kills the shell and every process of its session, and
// returns context.Cause(ctx). When it returns, the shell, the processes of
// its session and all goroutines of Run except In's reader have ended.
func (f *Front) Run(ctx context.Context) (exitCode int, err error) {
	switch {
	case f.Shell == nil:
		return -1, errors.New("pty: Front.Shell is nil")
	case f.In == nil || f.Out == nil:
		return -1, errors.New("pty: Front.In and Front.Out are required")
	case f.Check == nil:
		return -1, errors.New("pty: Front.Check is nil")
	}
	f.mu.Lock()
	if f.started {
		f.mu.Unlock()
		return -1, errors.New("pty: Front.Run called twice")
	}
	f.started = true
	size := f.Size
	f.mu.Unlock()

	sh, err := startShell(f.Shell, size, f.Term)
	if err != nil {
		return -1, err
	}
	s := newSession(f, sh, size)
	f.mu.Lock()
	f.sess = s
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.sess = nil
		f.mu.Unlock()
	}()
	return s.run(ctx)
}

// Resize changes the window size (an SSH window-change request). The kernel
// sends SIGWINCH to the program in the foreground; the line editor wraps
// lines at the new width. Before Run it sets the initial size.
func (f *Front) Resize(sz Size) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Size = sz
	if f.sess == nil {
		return nil
	}
	return f.sess.resize(sz)
}
