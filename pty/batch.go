package pty

import (
	"io"
	"sync"
)

// A terminal's master side returns at most about 4 KiB per read (the line
// discipline's buffer), so copying it read by read costs the agent's side
// one SSH packet, one masking pass and one recording event (a write and a
// hash) per 4 KiB. batchReader reads in the background and hands a reader
// everything already read, up to the size of its buffer: while the
// consumer is busy (usually: waiting for the SSH window) reads queue up
// and then leave as one batch. When the consumer is waiting, a read is
// handed over at once, so interactive echo gains no latency.
type batchReader struct {
	ch   chan []byte // filled reads, in order; closed after the last
	free chan []byte // buffers to reuse
	done chan struct{}
	once sync.Once
	err  error  // the source's error; read only after ch is closed
	cur  []byte // the read being handed out, from off
	off  int
}

const (
	batchChunk = 16 << 10 // per read of the source
	batchQueue = 16       // reads in flight: bounds memory to 256 KiB
)

func newBatchReader(r io.Reader) *batchReader {
	b := &batchReader{ch: make(chan []byte, batchQueue), free: make(chan []byte, batchQueue+1), done: make(chan struct{})}
	go b.fill(r)
	return b
}

func (b *batchReader) fill(r io.Reader) {
	defer close(b.ch)
	for {
		var buf []byte
		select {
		case buf = <-b.free:
		default:
			buf = make([]byte, batchChunk)
		}
		n, err := r.Read(buf[:batchChunk])
		if n > 0 {
			select {
			case b.ch <- buf[:n]:
			case <-b.done:
				return
			}
		}
		if err != nil {
			b.err = err
			return
		}
	}
}

// Read blocks for the first pending read, then adds whatever else is
// already pending that fits in p.
func (b *batchReader) Read(p []byte) (int, error) {
	if b.cur == nil {
		buf, ok := <-b.ch
		if !ok {
			return 0, b.err
		}
		b.cur, b.off = buf, 0
	}
	n := 0
	for {
		m := copy(p[n:], b.cur[b.off:])
		n += m
		b.off += m
		if b.off < len(b.cur) {
			return n, nil
		}
		select {
		case b.free <- b.cur[:0]:
		default:
		}
		b.cur = nil
		select {
		case buf, ok := <-b.ch:
			if !ok {
				return n, nil // the error comes with the next Read
			}
			b.cur, b.off = buf, 0
		default:
			return n, nil
		}
	}
}

// Close stops the background reader at its next read; it does not close
// the source.
func (b *batchReader) Close() error {
	b.once.Do(func() { close(b.done) })
	return nil
}
