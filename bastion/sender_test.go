package bastion

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
)

type slowWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
	n   int
	err error // returned from the failAt-th write on
	at  int
}

func (w *slowWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.n++
	if w.err != nil && w.n >= w.at {
		return 0, w.err
	}
	return w.buf.Write(p)
}

// Chunks reach each writer whole and in order, the caller's buffer may be
// reused as soon as send returns, and Close waits for the last one.
func TestSenderOrderAndCopy(t *testing.T) {
	out, errw := &slowWriter{}, &slowWriter{}
	s := newSender(nil)
	var want, wantErr bytes.Buffer
	buf := make([]byte, 0, 64)
	for i := range 1000 {
		buf = fmt.Appendf(buf[:0], "line %d\n", i)
		to, w := out, &want
		if i%7 == 0 {
			to, w = errw, &wantErr
		}
		w.Write(buf)
		if err := s.send(to, buf); err != nil {
			t.Fatal(err)
		}
		for j := range buf { // the sender must have copied it
			buf[j] = 'X'
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if out.buf.String() != want.String() || errw.buf.String() != wantErr.String() {
		t.Fatalf("stdout %d bytes (want %d), stderr %d bytes (want %d), or out of order", out.buf.Len(), want.Len(), errw.buf.Len(), wantErr.Len())
	}
}

// After a write fails, send reports it (so the command's output copy
// stops) and nothing more is written; Close reports it too.
func TestSenderStopsAfterError(t *testing.T) {
	boom := errors.New("channel closed")
	w := &slowWriter{err: boom, at: 3}
	s := newSender(nil)
	var sendErr error
	for i := 0; i < 100 && sendErr == nil; i++ {
		sendErr = s.send(w, []byte("x"))
	}
	if !errors.Is(sendErr, boom) {
		t.Fatalf("send never reported the write error: %v", sendErr)
	}
	if err := s.Close(); !errors.Is(err, boom) {
		t.Fatalf("Close = %v, want %v", err, boom)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf.String() != "xx" || w.n != 3 {
		t.Fatalf("written %q in %d writes; want the two before the failure and no write after it", w.buf.String(), w.n)
	}
}

// With a record stage, every chunk is recorded before it is sent, in
// order; once recording fails nothing more is recorded or sent, and both
// send and Close report errNotRecorded.
func TestSenderRecordsFirst(t *testing.T) {
	var mu sync.Mutex
	var recorded bytes.Buffer
	sent := &checkWriter{t: t, recorded: func() string { mu.Lock(); defer mu.Unlock(); return recorded.String() }}
	boom := errors.New("disk full")
	s := newSender(func(p []byte) error {
		mu.Lock()
		defer mu.Unlock()
		if recorded.Len() >= 60 {
			return boom
		}
		recorded.Write(p)
		return nil
	})
	var sendErr error
	for i := 0; i < 1000 && sendErr == nil; i++ {
		sendErr = s.send(sent, fmt.Appendf(nil, "chunk %03d\n", i))
	}
	if !errors.Is(sendErr, errNotRecorded) || !errors.Is(sendErr, boom) {
		t.Fatalf("send after the recording failed = %v", sendErr)
	}
	if err := s.Close(); !errors.Is(err, errNotRecorded) {
		t.Fatalf("Close = %v", err)
	}
	if got := sent.String(); got != recorded.String() || got != "chunk 000\nchunk 001\nchunk 002\nchunk 003\nchunk 004\nchunk 005\n" {
		t.Fatalf("sent %q, recorded %q; want the six recorded chunks and nothing else", got, recorded.String())
	}
}

// checkWriter fails the test when a chunk arrives that is not yet in the
// recording.
type checkWriter struct {
	t        *testing.T
	recorded func() string
	buf      bytes.Buffer
}

func (w *checkWriter) Write(p []byte) (int, error) {
	w.buf.Write(p)
	if !bytes.HasPrefix([]byte(w.recorded()), w.buf.Bytes()) {
		w.t.Errorf("sent %q before it was recorded", p)
	}
	return len(p), nil
}

func (w *checkWriter) String() string { return w.buf.String() }
