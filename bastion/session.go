package bastion

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/bastion-dev/bastion/audit"
	"github.com/bastion-dev/bastion/certs"
	"github.com/bastion-dev/bastion/pty"
	"github.com/bastion-dev/bastion/recordings"
	gliderssh "github.com/gliderlabs/ssh"
	"golang.org/x/crypto/ssh"
)

// Causes that end a session; their text reaches the agent.
var (
	errShutdown        = errors.New("bastion is shutting down")
	errClientGone      = errors.New("client disconnected")
	errRecordingFailed = errors.New("the session recording could not be written")
)

// window is a terminal size from pty-req or window-change (RFC 4254 6.2, 6.7).
type window struct{ cols, rows int }

// session is one "session" channel: its requests, its identity, its
// recording and its one command or shell. Its context is cancelled with a
// cause when the client goes away, the server shuts down or the recording
// fails.
//
// Lifetimes: the channel's goroutine (handleSessionChannel) owns the
// session; serveRequests starts the one goroutine that runs the command or
// shell and waits for it before returning, and Server.wg counts sessions
// for Shutdown. A database session (a tunnel) is owned the same way by its
// channel's goroutine, or by its socket's (dbsocket.go), which the parent
// session waits for.
//
// Lock order: none of Server.mu, session.mu, liveness.mu and liveConn.mu
// is ever held while another is taken: each guards its own fields, and a
// hook read under one (resize, signal) is called after it is released.
// The recording has two locks, always in this order: the session's
// recording mutex (recMu of a shell or an exec PTY, tunnelLog.mu of a
// tunnel), which keeps one session's output, input and resize events in
// order, then the recordings.Writer's own, which its methods take. No
// recording lock is held while writing to the agent.
type session struct {
	srv    *Server
	id     string
	ch     ssh.Channel
	ident  *certs.Identity
	source string
	ctx    context.Context
	cancel context.CancelCauseFunc

	mu      sync.Mutex
	env     map[string]string // guarded by mu: allow-listed client env
	pty     *ptyRequest       // guarded by mu: nil without a pty
	started bool              // guarded by mu: exec/shell accepted
	resize  func(window)      // guarded by mu: set while a shell runs
	signal  func(ssh.Signal)  // guarded by mu: set while an exec runs
	// storeErr is the first failed write to the session index; no command
	// is decided after it.
	storeErr error // guarded by mu

	kind     string // "exec" or "shell"
	command  string // the exec command
	rec      *recordings.Writer
	recStart time.Time // when the recording started, by the server's clock
	// cmdRef is the recording entry of the command the gate decided last,
	// whose end endCommand records. Only the session's own goroutine
	// touches it: an exec's one command, or a shell's lines one by one
	// (the line front checks a line only once the last one has exited).
	cmdRef recordings.CommandRef
	// shellOut is the shell's masked, recorded output (set by runShell).
	shellOut io.Writer
	// account is the session's own uid and home (shellCommand sets it when
	// bastion runs as root); releaseAccount frees it.
	account *account
}

type ptyRequest struct {
	term string
	win  window
}

// allowedEnv reports whether a client-sent variable is accepted (RFC 4254
// 6.4 leaves the policy to the server). Everything else, notably PATH,
// LD_PRELOAD, BASH_ENV and friends, is dropped and audited.
func allowedEnv(name string) bool {
	switch name {
	case "TERM", "LANG", "BASTION_REASON", "BASTION_TASK", "COLORTERM":
		return true
	}
	return strings.HasPrefix(name, "LC_") && len(name) > 3
}

func newSessionID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b[:])
}

// handleSessionChannel replaces gliderlabs' built-in session handler, which
// accepts agent forwarding unconditionally and rewrites "\n" in PTY output.
// It owns the channel's requests and runs one exec or shell.
func (s *Server) handleSessionChannel(_ *gliderssh.Server, conn *ssh.ServerConn, newChan ssh.NewChannel, gctx gliderssh.Context) {
	id, ok := IdentityFrom(gctx)
	if !ok {
		newChan.Reject(ssh.Prohibited, "not authenticated")
		return
	}
	if err := s.live.admit(id); err != nil {
		s.audit(connEvent(audit.ChannelRefused, id, hostOf(conn.RemoteAddr()), channelRefused{Channel: "session", Reason: err.Error()}))
		newChan.Reject(ssh.Prohibited, "bastion: "+err.Error())
		return
	}
	ch, reqs, err := newChan.Accept()
	if err != nil {
		return
	}
	ctx, cancel := context.WithCancelCause(gctx)
	sess := &session{
		srv: s, id: newSessionID(), ch: ch, ident: id, source: hostOf(conn.RemoteAddr()),
		ctx: ctx, cancel: cancel, env: map[string]string{},
	}
	if err := s.track(sess); err != nil {
		fmt.Fprintf(ch.Stderr(), "bastion: %v\r\n", err)
		sess.exit(ExitSessionLimit)
		cancel(err)
		return
	}
	defer s.untrack(sess)
	sess.serveRequests(reqs)
	cancel(errClientGone)
}

// track registers a session so Shutdown can end it; it refuses during
// shutdown.
func (s *Server) track(sess *session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return errShutdown
	}
	s.sessions[sess] = struct{}{}
	s.wg.Add(1)
	return nil
}

func (s *Server) untrack(sess *session) {
	s.mu.Lock()
	delete(s.sessions, sess)
	s.mu.Unlock()
	s.wg.Done()
}

// acquire counts a running command, shell or tunnel against its identity's
// limit; release undoes it.
func (s *Server) acquire(sess *session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	subj := sess.ident.Provenance.String()
	if n := s.perSubj[subj]; n >= s.cfg.Limits.MaxSessionsPerIdentity {
		return fmt.Errorf("%s already has %d open sessions (limit %d): close one and retry", subj, n, s.cfg.Limits.MaxSessionsPerIdentity)
	}
	s.perSubj[subj]++
	return nil
}

func (s *Server) release(sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	subj := sess.ident.Provenance.String()
	if s.perSubj[subj]--; s.perSubj[subj] <= 0 {
		delete(s.perSubj, subj)
	}
}

// serveRequests answers the channel's requests until the client closes it.
// The command itself runs in its own goroutine, which this one waits for.
func (sess *session) serveRequests(reqs <-chan *ssh.Request) {
	var run sync.WaitGroup
	defer run.Wait()
	for req := range reqs {
		ok := sess.handleRequest(req, &run)
		if req.WantReply {
			req.Reply(ok, nil)
		}
	}
	sess.cancel(errClientGone)
}

func (sess *session) refuse(what, reason string) bool {
	sess.srv.audit(sess.event(audit.RequestRefused, requestRefused{Request: what, Reason: reason}))
	return false
}

func (sess *session) handleRequest(req *ssh.Request, run *sync.WaitGroup) bool {
	sess.mu.Lock()
	started := sess.started
	sess.mu.Unlock()
	switch req.Type {
	case "env":
		var kv struct{ Name, Value string }
		if started || ssh.Unmarshal(req.Payload, &kv) != nil {
			return false
		}
		if !allowedEnv(kv.Name) {
			return sess.refuse("env", "variable "+kv.Name+" is not on the allow-list")
		}
		sess.mu.Lock()
		sess.env[kv.Name] = kv.Value
		sess.mu.Unlock()
		return true
	case "pty-req":
		var p struct {
			Term          string
			Cols, Rows    uint32
			Width, Height uint32
			Modes         string
		}
		if started || ssh.Unmarshal(req.Payload, &p) != nil {
			return false
		}
		if _, ok := sess.ident.Extensions["permit-pty"]; !ok {
			return sess.refuse("pty-req", "certificate does not permit a pty")
		}
		sess.mu.Lock()
		sess.pty = &ptyRequest{term: p.Term, win: window{int(p.Cols), int(p.Rows)}}
		sess.mu.Unlock()
		return true
	case "window-change":
		var w struct{ Cols, Rows, Width, Height uint32 }
		if ssh.Unmarshal(req.Payload, &w) != nil {
			return false
		}
		sess.mu.Lock()
		if sess.pty != nil {
			sess.pty.win = window{int(w.Cols), int(w.Rows)}
		}
		f := sess.resize
		sess.mu.Unlock()
		if f != nil {
			f(window{int(w.Cols), int(w.Rows)})
		}
		return sess.pty != nil
	case "signal":
		var sig struct{ Signal string }
		if ssh.Unmarshal(req.Payload, &sig) != nil {
			return false
		}
		sess.mu.Lock()
		f := sess.signal
		sess.mu.Unlock()
		if f != nil {
			f(ssh.Signal(sig.Signal))
		}
		return f != nil
	case "auth-agent-req@openssh.com":
		return sess.refuse(req.Type, "agent forwarding is not allowed")
	case "x11-req":
		return sess.refuse(req.Type, "X11 forwarding is not allowed")
	case "subsystem":
		var sub struct{ Name string }
		_ = ssh.Unmarshal(req.Payload, &sub)
		return sess.refuse("subsystem", fmt.Sprintf("subsystem %q is not available", sub.Name))
	case "exec", "shell":
		if started {
			return false
		}
		if req.Type == "exec" {
			var c struct{ Command string }
			if ssh.Unmarshal(req.Payload, &c) != nil {
				return false
			}
			sess.command = c.Command
		}
		sess.kind = req.Type
		if req.Type == "exec" && isShellCommand(sess.command) {
			// `ssh bastion bash` must not bypass the per-line check: a
			// bare shell as the command is a shell request.
			sess.kind = "shell"
		}
		sess.mu.Lock()
		sess.started = true
		sess.mu.Unlock()
		run.Add(1)
		go func() {
			defer run.Done()
			sess.exit(sess.run())
		}()
		return true
	}
	return false
}

// isShellCommand reports whether an exec command only starts an
// interactive shell (bash, sh, bash -l, /bin/bash -i ...), which bastion
// serves through its checked line front instead.
func isShellCommand(cmd string) bool {
	f := strings.Fields(cmd)
	if len(f) == 0 {
		return true
	}
	name := f[0]
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	switch name {
	case "bash", "sh", "dash", "zsh", "ksh", "fish", "-bash", "-sh":
	default:
		return false
	}
	for _, a := range f[1:] {
		switch a {
		case "-i", "-l", "--login", "-il", "-li", "--noprofile", "--norc", "-s":
		default:
			return false
		}
	}
	return true
}

// exit sends the exit status, then EOF, then closes the channel: the order
// OpenSSH clients rely on to report the status (RFC 4254 6.10).
func (sess *session) exit(code int) {
	status := struct{ Status uint32 }{uint32(code)}
	_, _ = sess.ch.SendRequest("exit-status", false, ssh.Marshal(&status))
	_ = sess.ch.CloseWrite()
	_ = sess.ch.Close()
}

// recordedResize returns a resize hook for a terminal: it resizes it with
// resize and records the new size under mu; a recording failure ends the
// session.
func (sess *session) recordedResize(mu *sync.Mutex, resize func(pty.Size) error) func(window) {
	return func(w window) {
		_ = resize(pty.Size{Cols: w.cols, Rows: w.rows}) // best effort, as a terminal does
		mu.Lock()
		err := sess.rec.Resize(w.cols, w.rows)
		mu.Unlock()
		if err != nil {
			sess.cancel(errRecordingFailed)
		}
	}
}
