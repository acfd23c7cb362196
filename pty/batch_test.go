package pty

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"
)

// chunkReader returns its chunks one per Read, then err.
type chunkReader struct {
	chunks [][]byte
	err    error
	gate   chan struct{} // if set, each Read waits for a token
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if c.gate != nil {
		<-c.gate
	}
	if len(c.chunks) == 0 {
		return 0, c.err
	}
	n := copy(p, c.chunks[0])
	c.chunks = c.chunks[1:]
	return n, nil
}

func TestBatchReaderKeepsOrderAndError(t *testing.T) {
	var want []byte
	var chunks [][]byte
	for i := range 100 {
		c := bytes.Repeat([]byte{byte('a' + i%26)}, 1+i*37%4000)
		chunks = append(chunks, c)
		want = append(want, c...)
	}
	boom := errors.New("boom")
	br := newBatchReader(&chunkReader{chunks: chunks, err: boom})
	defer br.Close()
	var got []byte
	buf := make([]byte, 5000)
	var err error
	for err == nil {
		var n int
		n, err = br.Read(buf)
		got = append(got, buf[:n]...)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes, want %d in order", len(got), len(want))
	}
	if err != boom {
		t.Fatalf("err = %v, want the source's error after its data", err)
	}
	if n, err := br.Read(buf); n != 0 || err != boom {
		t.Fatalf("read after the end = %d, %v", n, err)
	}
}

// Reads that pile up while the consumer is away leave as one batch; a read
// that arrives while the consumer waits is handed over alone, at once.
func TestBatchReaderCoalescesOnlyWhatIsPending(t *testing.T) {
	gate := make(chan struct{})
	src := &chunkReader{chunks: [][]byte{[]byte("one "), []byte("two "), []byte("three "), []byte("four")}, err: io.EOF, gate: gate}
	br := newBatchReader(src)
	defer br.Close()
	buf := make([]byte, 64)
	gate <- struct{}{}
	if n, err := br.Read(buf); err != nil || string(buf[:n]) != "one " {
		t.Fatalf("first read = %q, %v; want the single pending read", buf[:n], err)
	}
	gate <- struct{}{}
	gate <- struct{}{}
	gate <- struct{}{} // "four" is read once this is taken
	deadline := time.Now().Add(5 * time.Second)
	for len(br.ch) < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n, err := br.Read(buf); err != nil || string(buf[:n]) != "two three four" {
		t.Fatalf("batched read = %q, %v; want the three pending reads together", buf[:n], err)
	}
	close(gate)
	if n, err := br.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("end = %d, %v; want EOF", n, err)
	}
}

// A small buffer takes what fits and leaves the rest for the next Read.
func TestBatchReaderSmallBuffer(t *testing.T) {
	br := newBatchReader(&chunkReader{chunks: [][]byte{[]byte("abcdefgh")}, err: io.EOF})
	defer br.Close()
	got, err := io.ReadAll(struct{ io.Reader }{readerFunc(func(p []byte) (int, error) { return br.Read(p[:min(len(p), 3)]) })})
	if err != nil || string(got) != "abcdefgh" {
		t.Fatalf("got %q, %v", got, err)
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// Close releases a background reader blocked on a full queue.
func TestBatchReaderCloseStopsFill(t *testing.T) {
	r := readerFunc(func(p []byte) (int, error) { return copy(p, "x"), nil }) // endless
	br := newBatchReader(r)
	deadline := time.Now().Add(5 * time.Second)
	for len(br.ch) < batchQueue && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	br.Close()
	for range br.ch { // drains, then ends: fill returned and closed ch
	}
}
