package sshtest

import (
	"net"
	"sync"
	"time"
)

// pipeAddr is an address a pipe end reports, so that the server sees a
// client address of the test's choosing (the fail limiter counts by host,
// certificates may restrict it with source-address).
type pipeAddr string

func (a pipeAddr) Network() string { return "tcp" }
func (a pipeAddr) String() string  { return string(a) }

// addrConn is a pipe end that reports the given addresses.
type addrConn struct {
	net.Conn
	local, remote net.Addr
}

func (c addrConn) LocalAddr() net.Addr  { return c.local }
func (c addrConn) RemoteAddr() net.Addr { return c.remote }

// queuedConn is the client's end of a net.Pipe with its writes queued.
// net.Pipe is unbuffered, and both SSH peers begin by writing (their
// version lines, then KEXINIT: RFC 4253 4.2 and 7.1), so over a bare pipe
// each would wait for the other to read. Queueing the client's writes
// breaks the tie as a socket's send buffer does; the server's end stays
// the bare pipe, exactly what HandleConn is given. The SSH client reads
// without pause, so the server's writes never wait long.
//
// Its goroutine (flush) is owned by Close, which waits for it.
type queuedConn struct {
	net.Conn
	mu     sync.Mutex
	cond   *sync.Cond
	queue  []byte        // guarded by mu
	closed bool          // guarded by mu
	err    error         // guarded by mu: the write that failed
	done   chan struct{} // closed when flush returns
	once   sync.Once
}

func newQueuedConn(c net.Conn) *queuedConn {
	q := &queuedConn{Conn: c, done: make(chan struct{})}
	q.cond = sync.NewCond(&q.mu)
	go q.flush()
	return q
}

func (q *queuedConn) Write(p []byte) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case q.closed:
		return 0, net.ErrClosed
	case q.err != nil:
		return 0, q.err
	}
	q.queue = append(q.queue, p...)
	q.cond.Signal()
	return len(p), nil
}

// flush writes the queue to the pipe until the connection is closed and
// the queue is empty, or a write fails (the server closed its end).
func (q *queuedConn) flush() {
	defer close(q.done)
	for {
		q.mu.Lock()
		for len(q.queue) == 0 && !q.closed {
			q.cond.Wait()
		}
		b, closed := q.queue, q.closed
		q.queue = nil
		q.mu.Unlock()
		if len(b) == 0 && closed {
			return
		}
		if _, err := q.Conn.Write(b); err != nil {
			q.mu.Lock()
			q.err = err
			q.mu.Unlock()
			return
		}
	}
}

// Close sends what is queued, as closing a socket does, then closes the
// pipe. A server that stopped reading gets a second before the pipe is
// closed under it.
func (q *queuedConn) Close() error {
	var err error
	q.once.Do(func() {
		q.mu.Lock()
		q.closed = true
		q.cond.Signal()
		q.mu.Unlock()
		select {
		case <-q.done:
		case <-time.After(time.Second):
		}
		err = q.Conn.Close()
		<-q.done
	})
	return err
}
