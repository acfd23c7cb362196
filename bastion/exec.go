package bastion

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/bastion-dev/bastion/audit"
	"github.com/bastion-dev/bastion/pty"
	"golang.org/x/crypto/ssh"
)

// runExec runs an allowed exec command under `shell -c`, streaming stdout
// and stderr separately through the masker and the recording, forwarding
// stdin, and returning the command's exit status.
func (sess *session) runExec() int {
	s := sess.srv
	cmd, err := sess.shellCommand(sess.ctx, "-c", sess.command)
	if err != nil {
		s.Logger.Error("exec setup", "session", sess.id, "err", err)
		fmt.Fprintf(sess.ch.Stderr(), "bastion: cannot run commands as the configured user: %v\n", err)
		return ExitInternal
	}
	defer sess.releaseAccount()
	dbs, err := sess.withDBSockets(cmd)
	if err != nil {
		s.Logger.Error("database sockets", "session", sess.id, "err", err)
		fmt.Fprintf(sess.ch.Stderr(), "bastion: cannot set up database access for this session\n")
		return ExitInternal
	}
	defer dbs.stop()
	if sess.hasPTY() {
		return sess.runExecPTY(cmd)
	}
	// Output: command -> masker -> recording -> agent, the last two
	// stages in the sender's goroutines (stdout and stderr share them, so
	// the recording keeps their order).
	recOut := sess.rec.OutputWriter()
	snd := newSender(func(p []byte) error {
		_, err := recOut.Write(p)
		if err != nil {
			sess.cancel(errRecordingFailed)
		}
		return err
	})
	out := s.Masker.Writer(queuedWriter{snd, sess.ch})
	errw := s.Masker.Writer(queuedWriter{snd, sess.ch.Stderr()})
	pipes, err := newOutputPipes()
	if err != nil {
		snd.Close()
		return ExitInternal
	}
	defer pipes.close()
	cmd.Stdout, cmd.Stderr = pipes[0].w, pipes[1].w
	stdin, err := cmd.StdinPipe()
	if err != nil {
		snd.Close()
		return ExitInternal
	}
	start := s.Clock()
	err = cmd.Start()
	pipes.closeWriters() // the command holds its own copies
	if err != nil {
		snd.Close()
		s.Logger.Error("exec start", "session", sess.id, "err", err)
		fmt.Fprintf(sess.ch.Stderr(), "bastion: cannot start the command: %v\n", err)
		return ExitInternal
	}
	copied := pipes.copyTo(out, errw)
	sess.mu.Lock()
	sess.signal = func(sig ssh.Signal) { signalGroup(cmd, sig) }
	sess.mu.Unlock()
	// stdin: agent -> recording (masked) -> command. This goroutine ends
	// when the client sends EOF or the channel closes; the session's request
	// loop, which owns the channel, outlives it.
	go func() {
		in := s.Masker.Writer(sess.rec.InputWriter())
		io.Copy(stdin, io.TeeReader(sess.ch, in))
		in.Close()
		stdin.Close()
	}()
	err = cmd.Wait()
	copyErr := pipes.wait(copied, cmd.WaitDelay)
	sess.mu.Lock()
	sess.signal = nil
	sess.mu.Unlock()
	// Only a recording failure makes the status ExitRecordingUnavailable;
	// the agent's side failing (it went away) does not.
	var recErr error
	if outErr := errors.Join(copyErr, out.Close(), errw.Close(), snd.Close()); errors.Is(outErr, errNotRecorded) {
		recErr = outErr
	}
	return sess.finish(exitCode(cmd, err), recErr, start)
}

// finish decides a finished command's exit code, records its end and tells
// the agent if the session itself is ending. flushErr is the masking or
// recording writers' final error: output that could not be recorded makes
// the command's status ExitRecordingUnavailable.
func (sess *session) finish(code int, flushErr error, start time.Time) int {
	if c, ended := sess.ended(code); ended {
		code = c
	} else if flushErr != nil {
		code = ExitRecordingUnavailable
	}
	sess.endCommand(code, sess.srv.Clock().Sub(start))
	return code
}

// endCommand records the exit of the current command: in the recording,
// the store's session index and the audit log.
func (sess *session) endCommand(code int, d time.Duration) {
	if err := sess.rec.CommandEnd(sess.cmdRef, code); err != nil {
		sess.cancel(errRecordingFailed)
	}
	sess.indexCommandEnd(sess.cmdRef, code)
	sess.srv.audit(sess.event(audit.CommandExit, commandExited{Exit: code, Duration: d}))
}

func exitCode(cmd *exec.Cmd, err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	return ExitInternal
}

var sshSignals = map[ssh.Signal]syscall.Signal{
	ssh.SIGABRT: syscall.SIGABRT, ssh.SIGALRM: syscall.SIGALRM, ssh.SIGFPE: syscall.SIGFPE,
	ssh.SIGHUP: syscall.SIGHUP, ssh.SIGILL: syscall.SIGILL, ssh.SIGINT: syscall.SIGINT,
	ssh.SIGKILL: syscall.SIGKILL, ssh.SIGPIPE: syscall.SIGPIPE, ssh.SIGQUIT: syscall.SIGQUIT,
	ssh.SIGSEGV: syscall.SIGSEGV, ssh.SIGTERM: syscall.SIGTERM, ssh.SIGUSR1: syscall.SIGUSR1,
	ssh.SIGUSR2: syscall.SIGUSR2,
}

func signalGroup(cmd *exec.Cmd, sig ssh.Signal) {
	if s, ok := sshSignals[sig]; ok && cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, s)
	}
}

// shellCommand builds the shell process for this session: a scrubbed
// environment, the configured directory, its own process group (killed
// when the session ends), and, when bastion runs as root, the session's own
// unprivileged uid (or the OS account exec.users maps the principal to),
// with its own home and TMPDIR. The caller must call
// sess.releaseAccount once the process is gone.
func (sess *session) shellCommand(ctx context.Context, args ...string) (*exec.Cmd, error) {
	cfg := sess.srv.cfg.Exec
	cmd := exec.CommandContext(ctx, cfg.Shell, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	home, uname, tmp := "/", "", ""
	if os.Geteuid() == 0 {
		name, ok := cfg.Users[sess.ident.Principal]
		if !ok {
			name = cfg.DefaultUser
		}
		if name == "" {
			acc, err := sess.srv.accts.acquire(sess.id)
			if err != nil {
				return nil, err
			}
			sess.account = acc
			cmd.SysProcAttr.Credential = &syscall.Credential{Uid: acc.uid, Gid: acc.uid, Groups: []uint32{}}
			home, uname, tmp = acc.home, fmt.Sprintf("bastion-%d", acc.uid), acc.tmp
		} else {
			u, err := user.Lookup(name)
			if err != nil {
				return nil, fmt.Errorf("look up OS user %q: %w", name, err)
			}
			uid, _ := strconv.ParseUint(u.Uid, 10, 32)
			gid, _ := strconv.ParseUint(u.Gid, 10, 32)
			cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
			home, uname = u.HomeDir, u.Username
		}
	} else if u, err := user.Current(); err == nil {
		home, uname = u.HomeDir, u.Username
	}
	cmd.Dir = cfg.Dir
	env := []string{
		// Programs start shell escapes (vim :!, less !, script, screen)
		// with $SHELL; what they would run is never checked, so SHELL
		// names a program that refuses.
		"PATH=" + cfg.Path, "HOME=" + home, "USER=" + uname, "LOGNAME=" + uname, "SHELL=" + sess.srv.noShell,
		"BASTION_SESSION=" + sess.id,
	}
	if tmp != "" {
		// The uid has no passwd entry: libpq would fail to name the
		// database user itself, so PGUSER names it (bastion logs in
		// upstream with the target's own credentials anyway).
		env = append(env, "TMPDIR="+tmp, "PGUSER="+sess.ident.Principal)
	}
	sess.mu.Lock()
	for k, v := range sess.env {
		env = append(env, k+"="+v)
	}
	if sess.pty != nil && sess.env["TERM"] == "" {
		env = append(env, "TERM="+sess.pty.term)
	}
	sess.mu.Unlock()
	cmd.Env = env
	return cmd, nil
}

// releaseAccount ends what the session's uid left running and frees it.
func (sess *session) releaseAccount() {
	if sess.account != nil {
		sess.srv.accts.release(sess.account)
		sess.account = nil
	}
}

// noShellScript is the $SHELL of agent commands.
const noShellScript = `#!/bin/sh
echo "bastion: shell escapes from programs are refused: their commands cannot be checked; run the command at the bastion prompt instead" >&2
exit 126
`

// makeNoShell writes the refusing $SHELL into a private directory readable
// by the unprivileged accounts commands run as.
func makeNoShell() (path string, cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "bastion-noshell-")
	if err != nil {
		return "", nil, err
	}
	path = dir + "/noshell"
	if err := os.WriteFile(path, []byte(noShellScript), 0o755); err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return path, func() { os.RemoveAll(dir) }, nil
}

// withDBSockets starts the session's database sockets (if any target is
// configured for it) and adds their environment to cmd.
func (sess *session) withDBSockets(cmd *exec.Cmd) (*dbSockets, error) {
	d, env, err := sess.startDBSockets(cmd.SysProcAttr.Credential)
	if err != nil {
		return nil, err
	}
	cmd.Env = append(cmd.Env, env...)
	return d, nil
}

// runExecPTY runs an allowed exec command on its own PTY, for a client that
// asked for a terminal (`ssh -t bastion top`): output masked, then recorded,
// then sent; keystrokes recorded (masked) and passed to the command; window
// changes resize the PTY.
func (sess *session) runExecPTY(cmd *exec.Cmd) int {
	s := sess.srv
	sess.mu.Lock()
	size := pty.Size{Cols: sess.pty.win.cols, Rows: sess.pty.win.rows}
	sess.mu.Unlock()
	start := s.Clock()
	p, err := pty.Start(cmd, size)
	if err != nil {
		s.Logger.Error("exec start on pty", "session", sess.id, "err", err)
		fmt.Fprintf(sess.ch.Stderr(), "bastion: cannot start the command: %v\r\n", err)
		return ExitInternal
	}
	var recMu sync.Mutex
	out := s.Masker.Writer(recordedWriter{mu: &recMu, rec: sess.rec.OutputWriter(), to: sess.ch, sess: sess})
	in := s.Masker.Writer(lockedWriter{mu: &recMu, w: sess.rec.InputWriter()})
	sess.mu.Lock()
	sess.resize = sess.recordedResize(&recMu, p.Resize)
	sess.signal = func(sig ssh.Signal) { signalGroup(cmd, sig) }
	sess.mu.Unlock()
	err = p.Wait(io.TeeReader(sess.ch, p.MaskNoEcho(in)), out)
	sess.mu.Lock()
	sess.resize, sess.signal = nil, nil
	sess.mu.Unlock()
	return sess.finish(exitCode(cmd, err), errors.Join(out.Close(), in.Close()), start)
}

// lockedWriter serialises writes to a recording shared with other writers.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
