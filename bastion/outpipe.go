package bastion

import (
	"errors"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// outputPipes carry an exec command's stdout and stderr. os/exec would
// copy them in 32 KiB reads from 64 KiB pipes; each read costs a masking
// pass, a recording event (a write and a hash) and a hand-off to the
// sender. A 1 MiB stdout pipe read 256 KiB at a time lets a fast command
// run ahead and bastion handle its output in fewer, larger pieces.
type outputPipes [2]struct{ r, w *os.File }

const (
	outputPipeSize = 1 << 20
	outputReadSize = 256 << 10
)

func newOutputPipes() (*outputPipes, error) {
	var p outputPipes
	for i := range p {
		r, w, err := os.Pipe()
		if err != nil {
			p.close()
			return nil, err
		}
		p[i].r, p[i].w = r, w
	}
	// Best effort: the default size works, only slower (and
	// /proc/sys/fs/pipe-max-size may refuse 1 MiB to unprivileged users).
	_, _ = unix.FcntlInt(p[0].w.Fd(), unix.F_SETPIPE_SZ, outputPipeSize)
	return &p, nil
}

// closeWriters closes bastion's copies of the write ends once the command
// has its own.
func (p *outputPipes) closeWriters() {
	for i := range p {
		if p[i].w != nil {
			p[i].w.Close()
		}
	}
}

func (p *outputPipes) close() {
	p.closeWriters()
	for i := range p {
		if p[i].r != nil {
			p[i].r.Close()
		}
	}
}

// copyTo copies stdout to out and stderr to errw until EOF (every holder
// of the write end has closed it) or a write fails. The channel receives
// both copies' results.
func (p *outputPipes) copyTo(out, errw io.Writer) <-chan error {
	done := make(chan error, 2)
	for i, dst := range []io.Writer{out, errw} {
		go func() { done <- copyPipe(dst, p[i].r) }()
	}
	return done
}

func copyPipe(dst io.Writer, r *os.File) error {
	buf := make([]byte, outputReadSize)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF || errors.Is(err, os.ErrClosed) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// wait waits for both copies once the command has exited. Descendants
// that keep the output open get delay, as with os/exec's WaitDelay; then
// the pipes are closed and what they write later is not forwarded.
func (p *outputPipes) wait(done <-chan error, delay time.Duration) error {
	t := time.NewTimer(delay)
	defer t.Stop()
	var errs []error
	for len(errs) < len(p) {
		select {
		case err := <-done:
			errs = append(errs, err)
		case <-t.C:
			for i := range p {
				p[i].r.Close()
			}
			for len(errs) < len(p) {
				errs = append(errs, <-done)
			}
		}
	}
	return errors.Join(errs...)
}
