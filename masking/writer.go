package masking

import (
	"errors"
	"io"
	"sync"
	"time"
)

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("masking: write after close")

// Writer masks a stream on its way to an underlying writer. Secret-free
// text is passed on at once; only an end of the input that may still grow
// into a secret is held back, until more input decides it, Flush or Close
// is called, or the Masker's Idle time passes without input.
//
// Write may be called from one goroutine while the idle timer flushes from
// another; Flush and Close may be called from any goroutine.
type Writer struct {
	idle time.Duration

	mu sync.Mutex
	e  *engine // guarded by mu
	// timer flushes after idle; armed says it is scheduled, deadline is
	// when it should flush (input moves it). All guarded by mu.
	timer    *time.Timer
	armed    bool
	deadline time.Time
	err      error // first error of the underlying writer; guarded by mu
	closed   bool  // guarded by mu
	// fires counts scheduled or running timer callbacks, so that Close
	// can wait for them.
	fires sync.WaitGroup
}

// Writer returns a Writer that writes the masked stream to w.
func (m *Masker) Writer(w io.Writer) *Writer {
	return &Writer{idle: m.idle, e: newEngine(m, w)}
}

// Write masks p and writes what can be decided to the underlying writer.
// It returns len(p) unless the underlying writer failed.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0, ErrClosed
	}
	if w.err != nil {
		return 0, w.err
	}
	if err := w.e.write(p); err != nil {
		w.err = err
		return 0, err
	}
	w.arm()
	return len(p), nil
}

// Flush writes everything held back, except the inside of an unfinished
// private key block, which stays masked.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || w.err != nil {
		return w.err
	}
	w.err = w.e.flush()
	return w.err
}

// Close flushes and stops the idle timer. An unfinished private key block
// is dropped (it was replaced by its marker when it began). Close does not
// close the underlying writer.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return w.err
	}
	w.closed = true
	if w.armed && w.timer.Stop() {
		w.armed = false
		w.fires.Done()
	}
	if w.err == nil {
		w.err = w.e.close()
	}
	err := w.err
	w.mu.Unlock()
	w.fires.Wait()
	return err
}

// arm schedules an idle flush when something is held back. Called with mu.
func (w *Writer) arm() {
	if w.idle < 0 || w.e.pem || w.e.done == len(w.e.buf) {
		return
	}
	w.deadline = time.Now().Add(w.idle)
	if w.armed {
		return
	}
	w.armed = true
	w.fires.Add(1)
	if w.timer == nil {
		w.timer = time.AfterFunc(w.idle, w.fire)
	} else {
		w.timer.Reset(w.idle)
	}
}

func (w *Writer) fire() {
	defer w.fires.Done()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.armed = false
	if w.closed || w.err != nil {
		return
	}
	if d := time.Until(w.deadline); d > 0 {
		// Input arrived since the timer was set: wait for the rest.
		w.armed = true
		w.fires.Add(1)
		w.timer.Reset(d)
		return
	}
	w.err = w.e.flush()
}
