package pty

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	creackpty "github.com/creack/pty"
)

// Proc is one command running on its own PTY: an exec request from a
// client that asked for a terminal (`ssh -t bastion top`). Unlike Front it
// runs one already-checked command, so keystrokes simply go to it.
type Proc struct {
	cmd    *exec.Cmd
	master *os.File
}

// Start starts cmd on a new PTY of size sz as the leader of a new session
// with the PTY as its controlling terminal. cmd's Stdin, Stdout and Stderr
// must be nil; its SysProcAttr may carry a Credential.
func Start(cmd *exec.Cmd, sz Size) (*Proc, error) {
	if sz.Cols <= 0 || sz.Rows <= 0 {
		sz = Size{Cols: 80, Rows: 24}
	}
	attr := cmd.SysProcAttr
	if attr == nil {
		attr = &syscall.SysProcAttr{}
	}
	// A session leader with the PTY as controlling terminal, so job control
	// and ^C (SIGINT to the foreground group) work as on a login.
	attr.Setpgid, attr.Setsid, attr.Setctty = false, true, true
	cmd.SysProcAttr = attr
	master, err := creackpty.StartWithAttrs(cmd, winsize(sz), attr)
	if err != nil {
		return nil, err
	}
	return &Proc{cmd: cmd, master: master}, nil
}

// Resize changes the window size; the kernel sends SIGWINCH.
func (p *Proc) Resize(sz Size) error {
	return creackpty.Setsize(p.master, winsize(sz))
}

// Wait copies in to the terminal and the terminal's output to out until the
// command exits and its output is drained, and returns the command's wait
// error. The goroutine reading in ends at in's next failed Read (the
// caller closes in after Wait returns); the output copy is waited for,
// bounded by a grace period for descendants that keep the terminal open.
func (p *Proc) Wait(in io.Reader, out io.Writer) error {
	var wg sync.WaitGroup
	wg.Add(1)
	var outErr error
	go func() {
		defer wg.Done()
		br := newBatchReader(p.master)
		defer br.Close()
		_, outErr = io.CopyBuffer(out, br, make([]byte, batchChunk*batchQueue/4))
	}()
	go io.Copy(p.master, in)
	err := p.cmd.Wait()
	// The output copy ends with EIO once every holder of the terminal has
	// closed it; a background child may keep it open.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		p.master.Close()
		<-done
	}
	p.master.Close()
	var pe *os.PathError
	if outErr != nil && !(errors.As(outErr, &pe) && errors.Is(pe.Err, syscall.EIO)) && !errors.Is(outErr, os.ErrClosed) {
		if err == nil {
			return outErr
		}
	}
	return err
}
