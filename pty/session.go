//go:build linux

package pty

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	creackpty "github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// state is where the session is between the agent and the shell.
type state int

const (
	stStarting state = iota // waiting for the shell's first marker
	stIdle                  // bastion's line editor owns the keystrokes
	stChecking              // Check is deciding an input
	stRunning               // the shell runs an input; keystrokes go to it
	stClosing
)

const (
	startTimeout    = 10 * time.Second
	exitTimeout     = 2 * time.Second
	drainTimeout    = 2 * time.Second
	nudgeDelay      = 100 * time.Millisecond
	nudgeTries      = 50
	maxHeld         = 64 << 10
	ttyWriteTimeout = 100 * time.Millisecond
)

// ending says how the session ends.
type ending struct {
	graceful bool  // let bash exit by itself: EOF on its command FIFO
	exited   bool  // bash has exited; waitErr is set
	waitErr  error // from Wait, when exited
	err      error // returned by Run
}

// session is one Run: it owns the shell, the output pump, the Check
// goroutine and the loop that routes keystrokes. Fields without a comment
// are owned by the loop goroutine.
type session struct {
	f   *Front
	sh  *shell
	ed  *editor
	ctx context.Context // Run's context, parent of Check's

	state       state
	held        []byte // keystrokes kept for the line editor
	current     string // the input being checked or run
	lastN       int    // command number of the last accepted marker
	want        int    // command number of the running input's marker
	checkCancel context.CancelFunc
	noEcho      noEcho // what OnInput gets of keystrokes a password prompt hides
	interrupted bool   // Ctrl-C while Check was deciding
	inClosed    bool
	nudge       *time.Timer
	nudgesLeft  int
	end         *ending

	// dropMarkers makes the loop ignore that many markers of running
	// inputs: a test's way to simulate markers lost to a second ^C.
	dropMarkers atomic.Int32

	width   atomic.Int64 // terminal columns, written by Resize
	editing atomic.Bool  // the editor's prompt is on screen (read by the pump)
	lastNL  atomic.Bool  // the pump's last output ended a line

	inCh     chan []byte
	inErr    chan error
	marks    chan marker
	checks   chan Verdict
	exited   chan error
	bgOut    chan struct{}
	pumpDone chan struct{}
	done     chan struct{} // closed when the output is drained: releases In's reader and the pump

	checkWG sync.WaitGroup

	outMu     sync.Mutex
	outErr    error         // guarded by outMu
	outFailed chan struct{} // closed, under outMu, when outErr is set
}

func newSession(f *Front, sh *shell, size Size) *session {
	s := &session{
		f:         f,
		sh:        sh,
		ed:        newEditor(f.Prompt, int(winsize(size).Cols), incomplete),
		inCh:      make(chan []byte),
		inErr:     make(chan error, 1),
		marks:     make(chan marker, 16),
		checks:    make(chan Verdict, 1),
		exited:    make(chan error, 1),
		bgOut:     make(chan struct{}, 1),
		pumpDone:  make(chan struct{}),
		done:      make(chan struct{}),
		outFailed: make(chan struct{}),
	}
	s.ed.setWidth(int(winsize(size).Cols))
	s.ed.maxInput = sh.maxInput
	s.width.Store(int64(s.ed.width))
	return s
}

func (s *session) run(ctx context.Context) (int, error) {
	s.ctx = ctx
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		s.exited <- s.sh.cmd.Wait()
	}()
	go func() {
		defer wg.Done()
		defer close(s.pumpDone)
		s.pump()
	}()
	go s.readIn() // not waited for: see Front.In

	if err := s.sh.writeInit(); err != nil {
		s.stop(ending{err: fmt.Errorf("pty: configure shell: %w", err)})
	} else {
		s.loop(ctx)
	}
	code, err := s.teardown(*s.end)
	wg.Wait()
	return code, err
}

// stop records how the session ends; the first reason wins.
func (s *session) stop(e ending) {
	if s.end == nil {
		s.end = &e
	}
}

func (s *session) loop(ctx context.Context) {
	start := time.NewTimer(startTimeout)
	defer start.Stop()
	for s.end == nil {
		var nudgeC <-chan time.Time
		if s.nudge != nil {
			nudgeC = s.nudge.C
		}
		select {
		case <-ctx.Done():
			s.stop(ending{err: context.Cause(ctx)})
		case err := <-s.exited:
			e := ending{exited: true, waitErr: err}
			switch {
			case s.state == stStarting:
				e.err = fmt.Errorf("pty: shell exited during set-up (is it bash 4.4 or later, with job control?): %v", err)
			case s.state == stRunning && s.f.OnExit != nil:
				s.f.OnExit(s.current, exitStatus(s.sh.cmd.ProcessState))
			}
			s.stop(e)
		case p := <-s.inCh:
			if s.f.OnInput != nil {
				if q := s.noEcho.filter(p, s.echoes()); len(q) > 0 {
					s.f.OnInput(q)
				}
			}
			s.input(p)
		case <-s.inErr:
			s.inClosed = true
			if s.state != stRunning {
				s.stop(ending{graceful: true})
			}
		case m := <-s.marks:
			s.marker(m)
		case v := <-s.checks:
			s.verdict(v)
		case <-start.C:
			if s.state == stStarting {
				s.stop(ending{err: errors.New("pty: shell did not start (is it bash 4.4 or later?)")})
			}
		case <-nudgeC:
			s.maybeNudge()
		case <-s.bgOut:
			if s.state == stIdle {
				s.ed.redraw(s.lastNL.Load())
				s.write(s.ed.take())
			}
		case <-s.outFailed:
			s.stop(ending{err: fmt.Errorf("pty: write output: %w", s.outError())})
		}
	}
}

// input routes one chunk of keystrokes by state.
func (s *session) input(p []byte) {
	switch s.state {
	case stStarting:
		s.hold(p)
	case stIdle:
		s.edit(p)
	case stChecking:
		for i, b := range p {
			if b != 0x03 {
				continue
			}
			// Ctrl-C cancels the Check (an approval wait); what was typed
			// before it is dropped, what follows waits for the prompt.
			if !s.interrupted {
				s.interrupted = true
				s.checkCancel()
				s.write([]byte("^C\r\n"))
			}
			s.held = s.held[:0]
			p = p[i+1:]
			s.input(p)
			return
		}
		s.hold(p)
	case stRunning:
		s.passthrough(p)
	}
}

// echoes reports whether keystrokes that arrive now are shown: by the line
// editor, which gets them when no program runs or bash itself holds the
// terminal (see passthrough), or by the terminal, unless the program that
// reads them turned echo off (a password prompt) or the terminal cannot be
// asked.
func (s *session) echoes() bool {
	if s.state != stRunning {
		return true
	}
	if fg, err := foreground(s.sh.master); err != nil || fg <= 0 || fg == s.sh.pid {
		return true
	}
	hidden, err := hiddenInput(s.sh.master)
	return err == nil && !hidden
}

func (s *session) hold(p []byte) {
	n := min(len(p), maxHeld-len(s.held))
	s.held = append(s.held, p[:n]...)
}

// edit feeds keystrokes to the line editor. What follows a submitted input
// is held: it was typed before anything ran, so it is input for the next
// prompt, not for the command.
func (s *session) edit(p []byte) {
	s.ed.setWidth(int(s.width.Load()))
	for len(p) > 0 && s.state == stIdle && s.end == nil {
		n, ev := s.ed.feed(p)
		s.write(s.ed.take())
		p = p[n:]
		switch ev.kind {
		case evSubmit:
			s.editing.Store(false)
			s.submit(ev.text)
		case evInterrupt:
			s.ed.start()
			s.write(s.ed.take())
		case evEOF:
			s.editing.Store(false)
			s.stop(ending{graceful: true})
		}
	}
	if len(p) > 0 && s.end == nil {
		s.hold(p)
	}
}

func (s *session) submit(input string) {
	s.current = input
	s.interrupted = false
	s.state = stChecking
	ctx, cancel := context.WithCancel(s.ctx)
	s.checkCancel = cancel
	s.checkWG.Add(1)
	go func() {
		defer s.checkWG.Done()
		v := Verdict{Message: "bastion: denied: internal error\r\n"}
		defer func() {
			_ = recover() // a panicking Check refuses the input
			s.checks <- v
		}()
		v = s.f.Check(ctx, input)
	}()
}

func (s *session) verdict(v Verdict) {
	if s.checkCancel != nil {
		s.checkCancel()
		s.checkCancel = nil
	}
	if s.state != stChecking {
		return
	}
	switch {
	case s.interrupted:
		s.toIdle()
	case !v.Run:
		msg := v.Message
		if msg == "" {
			msg = "bastion: denied\r\n"
		}
		s.write([]byte(msg))
		s.toIdle()
	default:
		// Fail closed even if Check let a syntax error through: bash would
		// parse such an input differently than the checker did.
		if _, err := parse(s.current); err != nil {
			s.write([]byte("bastion: denied: " + strings.ReplaceAll(err.Error(), "\n", " ") + "\r\n"))
			s.toIdle()
			return
		}
		if err := s.sh.run(s.current); err != nil {
			s.stop(ending{err: fmt.Errorf("pty: send input to shell: %w", err)})
			return
		}
		s.want = s.lastN + 1
		s.state = stRunning
	}
}

// passthrough writes keystrokes to the command that runs. While bash itself
// is in the foreground (a builtin runs, or the command has not started or
// has just ended) keystrokes are held for the line editor, except Ctrl-C,
// which interrupts bash. Either way bash never reads them as commands: its
// commands come from a FIFO, and the terminal is only ever a command's
// stdin.
func (s *session) passthrough(p []byte) {
	fg, err := foreground(s.sh.master)
	if err == nil && fg > 0 && fg != s.sh.pid {
		s.writeTTY(p)
		if bytes.IndexByte(p, 0x03) >= 0 {
			s.armNudge()
		}
		return
	}
	for i, b := range p {
		if b == 0x03 {
			s.held = s.held[:0]
			s.writeTTY(p[i : i+1])
			s.armNudge()
			continue
		}
		s.hold(p[i : i+1])
	}
}

// writeTTY writes keystrokes to the PTY, dropping them when the program
// does not read and the terminal's buffer is full.
func (s *session) writeTTY(p []byte) {
	_ = s.sh.master.SetWriteDeadline(time.Now().Add(ttyWriteTimeout))
	n, err := s.sh.master.Write(p)
	if err != nil && bytes.IndexByte(p[n:], 0x03) >= 0 {
		// The interrupt did not fit: deliver it as the line discipline would.
		if fg, ferr := foreground(s.sh.master); ferr == nil && fg > 0 {
			_ = unix.Kill(-fg, unix.SIGINT)
		}
	}
}

// marker handles a marker from the output pump.
func (s *session) marker(m marker) {
	if m.number == 0 {
		// The marker function found bash's stdin replaced, and exits.
		s.tampered("the shell's command input was replaced")
		return
	}
	switch s.state {
	case stStarting:
		if ok, err := sigintIgnored(s.sh.pid); err != nil || !ok {
			s.stop(ending{err: fmt.Errorf("pty: shell set-up failed (SIGINT not ignored: %v)", err)})
			return
		}
		s.lastN = m.number
		s.toIdle()
	case stRunning:
		if s.dropMarkers.Load() > 0 {
			s.dropMarkers.Add(-1)
			return
		}
		switch {
		case m.number < s.want:
			return // printed again after a nudge
		case m.number > s.want:
			s.tampered("the shell ran a command bastion did not send")
			return
		}
		ok, err := sigintIgnored(s.sh.pid)
		if err != nil {
			s.stop(ending{err: fmt.Errorf("pty: read shell state: %w", err)})
			return
		}
		if !ok {
			s.tampered("a marker arrived while the shell did not ignore SIGINT")
			return
		}
		s.lastN = m.number
		// Keystrokes the command did not read are dropped, not left for
		// the next program.
		_ = flushInput(s.sh.tty)
		s.stopNudge()
		if s.f.OnExit != nil {
			s.f.OnExit(s.current, m.status)
		}
		s.toIdle()
	default:
		if m.number > s.lastN {
			s.tampered("the shell ran a command bastion did not send")
		}
	}
}

const tamperedMessage = "\r\nbastion: session ended: the shell was modified\r\n"

func (s *session) tampered(why string) {
	s.write([]byte(tamperedMessage))
	s.stop(ending{err: fmt.Errorf("%w: %s", ErrTampered, why)})
}

// toIdle shows the prompt and gives the held keystrokes to the editor.
func (s *session) toIdle() {
	s.state = stIdle
	s.current = ""
	if s.inClosed {
		s.stop(ending{graceful: true})
		return
	}
	s.ed.setWidth(int(s.width.Load()))
	s.ed.start()
	s.editing.Store(true)
	s.write(s.ed.take())
	if len(s.held) > 0 {
		p := s.held
		s.held = nil
		s.edit(p)
	}
}

// armNudge starts watching for a marker lost to a second Ctrl-C: SIGINT can
// reach bash after a command ends and before its marker function ignores
// SIGINT. If bash then holds the terminal without having printed the
// marker, an empty line makes it run PROMPT_COMMAND again.
func (s *session) armNudge() {
	s.nudgesLeft = nudgeTries
	if s.nudge == nil {
		s.nudge = time.NewTimer(nudgeDelay)
	} else {
		s.nudge.Reset(nudgeDelay)
	}
}

func (s *session) maybeNudge() {
	if s.state != stRunning {
		s.stopNudge()
		return
	}
	// Bash in the foreground and no marker: either a builtin still runs
	// (then the empty line waits and is harmless) or the marker was lost.
	if fg, err := foreground(s.sh.master); err == nil && fg == s.sh.pid {
		_ = s.sh.nudge()
	}
	if s.nudgesLeft--; s.nudgesLeft > 0 {
		s.nudge.Reset(nudgeDelay)
	} else {
		s.stopNudge()
	}
}

func (s *session) stopNudge() {
	if s.nudge != nil {
		s.nudge.Stop()
		s.nudge = nil
	}
}

func (s *session) resize(sz Size) error {
	ws := winsize(sz)
	s.width.Store(int64(ws.Cols))
	return creackpty.Setsize(s.sh.master, ws)
}

// teardown ends the shell and every process of its session, drains the
// output and closes the PTY. It returns the shell's exit status.
func (s *session) teardown(e ending) (int, error) {
	s.state = stClosing
	s.editing.Store(false)
	s.stopNudge()
	if s.checkCancel != nil {
		s.checkCancel()
	}
	s.checkWG.Wait()

	pid := s.sh.pid
	if !e.exited && e.graceful {
		// EOF on the command FIFO: bash exits with the last status.
		_ = s.sh.cmds.Close()
		timeout := time.After(exitTimeout)
	wait:
		for {
			select {
			case e.waitErr = <-s.exited:
				e.exited = true
				break wait
			case m := <-s.marks:
				s.lateMarker(m, &e)
			case <-timeout:
				break wait
			}
		}
	}
	if !e.exited {
		killSession(pid, syscall.SIGKILL)
		_ = unix.Kill(-pid, unix.SIGKILL)
		e.waitErr = <-s.exited
	}
	// Jobs outlive bash unless killed; the session ends with the shell.
	killSession(pid, syscall.SIGKILL)

	// Drain the output: the pump reads to EOF once no process holds the
	// slave, unless one outside the session does; closing the master stops
	// it then. A marker still in the output may report tampering.
	_ = s.sh.tty.Close()
	timeout := time.After(drainTimeout)
	for pumping := true; pumping; {
		select {
		case m := <-s.marks:
			s.lateMarker(m, &e)
		case <-s.pumpDone:
			pumping = false
		case <-timeout:
			_ = s.sh.master.Close()
		}
	}
	close(s.done)
	for len(s.marks) > 0 {
		s.lateMarker(<-s.marks, &e)
	}
	_ = s.sh.master.Close()
	_ = s.sh.cmds.Close()
	_ = s.sh.inputs.Close()
	s.sh.cleanup()
	return exitStatus(s.sh.cmd.ProcessState), e.err
}

// lateMarker handles a marker that arrives while the session ends: only
// the report that bash's stdin was replaced still matters.
func (s *session) lateMarker(m marker, e *ending) {
	if m.number == 0 && e.err == nil {
		s.write([]byte(tamperedMessage))
		e.err = fmt.Errorf("%w: the shell's command input was replaced", ErrTampered)
	}
}

// exitStatus is the shell's status as a shell reports it: 128+n when killed
// by signal n.
func exitStatus(ps *os.ProcessState) int {
	if ps == nil {
		return -1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}
