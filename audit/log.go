package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// ErrClosed is returned by Record after Close.
var ErrClosed = errors.New("audit: log closed")

// Options configures a Log. The zero value works.
type Options struct {
	// Clock stamps events that come without a Time; nil means time.Now.
	Clock func() time.Time
	// Mirror, when non-nil, also receives every line once it is durable
	// (for example os.Stdout for a SIEM collector). A Mirror write error is
	// not returned by Record: the file is the record of truth and the event
	// is already in it. Lines reach the Mirror in log order, under the
	// log's lock: a Mirror that blocks holds up Record.
	Mirror io.Writer
}

// Log is an append-only, hash-chained JSON-lines audit log. It is safe for
// concurrent use, and several processes may append to the same file: every
// append holds an exclusive flock(2) on the file and picks up the chain
// from whatever another process wrote since.
type Log struct {
	path   string
	clock  func() time.Time
	mirror io.Writer

	mu sync.Mutex // guards the fields below and serialises appends
	f  *os.File   // nil once closed
	// end is the file size after our last append, or -1 when unknown
	// (after an error): when the file size differs, another process (or a
	// torn write) changed the tail, and prev is re-read before appending.
	end     int64
	prev    string // hash of the last complete event in the file
	syncErr error  // guarded by mu; sticky: after a failed fsync, pages may be lost
	// unsynced holds the lines appended since the last fsync, for the
	// Mirror (which gets lines once durable); dirty says there are some.
	unsynced []byte // guarded by mu
	dirty    bool   // guarded by mu

	// Group commit: Records queue their events; one leader at a time
	// appends everything queued under one file lock, in one write, made
	// durable by one fsync, then answers every waiter.
	qmu   sync.Mutex
	queue []pending // guarded by qmu
	// spare holds emptied batch arrays for the next queue (guarded by
	// qmu): an event is a few hundred bytes, and a queue grown afresh for
	// every batch was most of what the database tunnel allocated.
	spare      [][]pending
	waiting    int  // guarded by qmu: events in queue whose caller waits (Record)
	committing bool // guarded by qmu: a leader is draining queue
	drains     sync.WaitGroup
	kick       chan struct{} // a Record's event arrived: stop lingering
	linger     time.Duration // the const linger; tests change it
}

type pending struct {
	e    Event
	done chan error
	wait bool // queued by Record
}

// Linger bounds how long a batch made only of Enqueued events, already
// written to the file, waits for company before its fsync; events that
// arrive meanwhile are written and fsynced when it ends. Nobody waits on
// those events (each is an allowed SQL statement, already in its session
// recording), and an fsync is costly: at 5 ms, the 200 fsyncs a second of
// a busy tunnel took a fifth of bastion's CPU per statement under
// pgbench -S (44 against 36 us at 20 ms, 37 us with no fsync at all). So a
// power loss can take up to linger of such events off the end of the log,
// as an asynchronous commit does in a database; the chain stays whole. A
// Record ends the wait.
const linger = 20 * time.Millisecond

// lingerBatch is the size from which an Enqueued batch is fsynced at once.
const lingerBatch = 512

// Open opens (creating it, mode 0600, in a 0700 directory) the audit log at
// path and reads its last event to continue the chain. A torn last line,
// left by a crash or a full disk in the middle of a write, is kept: the
// next line starts on a fresh line with a log.recovered event that names
// the torn bytes and chains from the last complete event.
func Open(path string, opt Options) (*Log, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	if err := syncDir(dir); err != nil { // make a newly created file's name durable
		f.Close()
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	l := &Log{path: path, clock: opt.Clock, mirror: opt.Mirror, f: f, end: -1, kick: make(chan struct{}, 1), linger: linger}
	if l.clock == nil {
		l.clock = time.Now
	}
	err = l.locked(l.resync)
	if err != nil {
		f.Close()
		return nil, err
	}
	return l, nil
}

// Path returns the file the log appends to.
func (l *Log) Path() string { return l.path }

// Record fills in e.Time (when zero), e.Prev and e.Hash, appends e as one
// line and fsyncs the file before returning: a nil error means the event
// is on disk. Concurrent Records share fsyncs (group commit). Events are
// written in the order Record is called. After a failed write nothing is
// half-done from the chain's point of view: the next Record re-reads the
// tail, repairs a torn line if the failed write left one, and tries again.
// A failed fsync is different: every later Record fails, because Linux may
// drop the unwritten pages and report the next fsync as a success.
func (l *Log) Record(e Event) error {
	done, lead := l.enqueue(e, true)
	if lead {
		l.drain()
	}
	return <-done
}

// Enqueue queues e behind every event already queued and returns at once;
// the channel receives e's outcome once it is on disk (nil) or failed. It
// is for events whose action need not wait for durability (an allowed SQL
// statement's result); the caller must still end the session on an error.
// Events keep the order of the Record and Enqueue calls. An event is
// written and fsynced with the next Record's, or within linger.
func (l *Log) Enqueue(e Event) <-chan error {
	done, lead := l.enqueue(e, false)
	if lead {
		go l.drain()
	}
	return done
}

func (l *Log) enqueue(e Event, wait bool) (done chan error, lead bool) {
	p := pending{e: e, done: make(chan error, 1), wait: wait}
	l.qmu.Lock()
	defer l.qmu.Unlock()
	l.queue = append(l.queue, p)
	if wait {
		l.waiting++
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
	lead = !l.committing
	if lead {
		l.committing = true
		l.drains.Add(1)
	}
	return p.done, lead
}

// drain commits batches until the queue is empty. A batch that no Record
// waits for is written at once and fsynced with whatever arrives within
// linger.
func (l *Log) drain() {
	var held []pending // written, answered after the next fsync
	var heldErrs []error
	for {
		l.qmu.Lock()
		batch := l.queue
		l.queue = nil
		if n := len(l.spare); n > 0 {
			l.queue, l.spare = l.spare[n-1], l.spare[:n-1]
		}
		waiting := l.waiting > 0
		l.waiting = 0
		select { // a kick for events taken here is spent
		case <-l.kick:
		default:
		}
		if len(batch) == 0 && len(held) == 0 {
			l.committing = false
			l.qmu.Unlock()
			l.drains.Done()
			return
		}
		l.qmu.Unlock()
		if len(held) == 0 && !waiting && len(batch) < lingerBatch {
			held, heldErrs = batch, l.commit(batch, false)
			t := time.NewTimer(l.linger)
			select {
			case <-t.C:
			case <-l.kick:
			}
			t.Stop()
			continue
		}
		errs := l.commit(batch, true) // its fsync covers the held lines too
		herr := l.flush()             // and when it did not run, this one does
		for i, p := range held {
			if heldErrs[i] != nil {
				p.done <- heldErrs[i]
			} else {
				p.done <- herr
			}
		}
		l.reuse(held)
		held, heldErrs = nil, nil
		for i, p := range batch {
			p.done <- errs[i]
		}
		l.reuse(batch)
	}
}

// maxSpare bounds the batch arrays kept for reuse, and their size.
const maxSpare, maxSpareCap = 4, 4096

// reuse keeps an answered batch's array for a later queue.
func (l *Log) reuse(batch []pending) {
	if batch == nil || cap(batch) > maxSpareCap {
		return
	}
	clear(batch) // drop the events and channels it held
	l.qmu.Lock()
	if len(l.spare) < maxSpare {
		l.spare = append(l.spare, batch[:0])
	}
	l.qmu.Unlock()
}

// commit appends a batch in order and, if sync, fsyncs the file. errs[i]
// is event i's outcome: an event that cannot be encoded fails alone; a
// failed write or fsync fails the whole batch, and nothing of a failed
// write joins the chain.
func (l *Log) commit(batch []pending, sync bool) []error {
	errs := make([]error, len(batch))
	fill := func(err error) []error {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
		return errs
	}
	err := l.locked(func() error {
		if l.syncErr != nil {
			return l.syncErr
		}
		if err := l.resync(); err != nil {
			l.end = -1
			return err
		}
		// The lines are encoded in place after the unsynced ones, which
		// they join once written.
		buf := l.unsynced
		start := len(buf)
		prev := l.prev
		for i, p := range batch {
			e := p.e
			if e.Time.IsZero() {
				e.Time = l.clock()
			}
			b, hash, err := appendLine(buf, e, prev)
			if err != nil {
				errs[i] = fmt.Errorf("audit: encode %s event: %w", e.Type, err)
				continue
			}
			buf, prev = b, hash
		}
		if len(buf) == start {
			return nil
		}
		if err := l.append(buf[start:]); err != nil {
			return err
		}
		l.prev = prev
		l.unsynced, l.dirty = buf, true
		if sync {
			return l.syncLocked()
		}
		return nil
	})
	if err != nil {
		return fill(err)
	}
	return errs
}

// flush fsyncs lines appended without a sync, if any.
func (l *Log) flush() error {
	return l.locked(func() error {
		if l.syncErr != nil {
			return l.syncErr
		}
		if !l.dirty {
			return nil
		}
		return l.syncLocked()
	})
}

// syncLocked fsyncs the file and hands the lines it made durable to the
// Mirror. A failed fsync is sticky. Caller holds the locks.
func (l *Log) syncLocked() error {
	if err := l.f.Sync(); err != nil {
		l.syncErr = fmt.Errorf("audit: sync %s: %w (the log needs attention: reopen it once the disk is healthy)", l.path, err)
		return l.syncErr
	}
	if l.mirror != nil {
		l.mirror.Write(l.unsynced)
	}
	l.unsynced, l.dirty = l.unsynced[:0], false
	if cap(l.unsynced) > 1<<20 {
		l.unsynced = nil // batches are encoded here: a huge one does not pin its size
	}
	return nil
}

// Close waits for queued events, then closes the file. Record returns
// ErrClosed afterwards.
func (l *Log) Close() error {
	l.drains.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// locked runs fn holding the mutex and the file lock.
func (l *Log) locked(fn func() error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return ErrClosed
	}
	fd := int(l.f.Fd())
	if err := flock(fd, syscall.LOCK_EX); err != nil {
		return fmt.Errorf("audit: lock %s: %w", l.path, err)
	}
	defer flock(fd, syscall.LOCK_UN)
	return fn()
}

func flock(fd, how int) error {
	for {
		err := syscall.Flock(fd, how)
		if err != syscall.EINTR {
			return err
		}
	}
}

// append writes lines (each ending in a newline); commit then fsyncs them.
// On error the tail is marked unknown so that the next append re-reads it.
func (l *Log) append(line []byte) error {
	if _, err := l.f.Write(line); err != nil {
		l.end = -1
		return fmt.Errorf("audit: append to %s: %w", l.path, err)
	}
	l.end += int64(len(line))
	return nil
}

// resync re-reads the tail when the file is not as we left it, and repairs
// a torn tail. It runs under the file lock.
func (l *Log) resync() error {
	fi, err := l.f.Stat()
	if err != nil {
		return fmt.Errorf("audit: stat %s: %w", l.path, err)
	}
	size := fi.Size()
	if size == l.end {
		return nil
	}
	t, err := scanTail(l.f, size)
	if err != nil {
		return fmt.Errorf("audit: read tail of %s: %w", l.path, err)
	}
	l.prev, l.end = t.prev, size
	switch {
	case t.unterminated:
		// A complete event whose newline was lost: finish the line.
		return l.append([]byte("\n"))
	case t.torn != nil:
		sum := sha256.Sum256(t.torn)
		line, hash, err := encode(Event{Time: l.clock(), Type: LogRecovered, Detail: map[string]any{
			"torn_bytes":  len(t.torn),
			"torn_sha256": hex.EncodeToString(sum[:]),
			"reason":      "torn last line (crash or full disk during a write); kept, chain continues from the last complete event",
		}}, l.prev)
		if err != nil {
			return err
		}
		out := line
		if !t.newline {
			out = append([]byte("\n"), line...)
		}
		if err := l.append(out); err != nil {
			return err
		}
		l.prev = hash
		if l.mirror != nil {
			l.mirror.Write(line)
		}
	}
	return nil
}

// hashSuffixLen is len(`,"hash":"` + 64 hex digits + `"}`).
const hashSuffixLen = 9 + 64 + 2

// encode returns e's line (with a trailing newline) chained to prev, and
// its hash.
func encode(e Event, prev string) (line []byte, hash string, err error) {
	return appendLine(nil, e, prev)
}

// appendLine appends e's line (with a trailing newline) chained to prev to
// dst, and returns its hash; on error, dst as it was. The hash covers the
// JSON encoding of e without Hash; the line is that encoding with
// `,"hash":"<hex>"` inserted before the final brace (Hash is the last field
// of Event, so this is also its JSON encoding).
func appendLine(dst []byte, e Event, prev string) ([]byte, string, error) {
	e.Time = e.Time.UTC()
	e.Prev, e.Hash = prev, ""
	n := len(dst)
	b, ok := appendEvent(dst, &e)
	if !ok { // something appendEvent leaves to encoding/json, errors included
		j, err := json.Marshal(e)
		if err != nil {
			return dst, "", err
		}
		b = append(b[:n], j...)
	}
	sum := sha256.Sum256(b[n:])
	b = append(b[:len(b)-1], `,"hash":"`...)
	b = hex.AppendEncode(b, sum[:])
	hash := string(b[len(b)-len(sum)*2:])
	return append(b, "\"}\n"...), hash, nil
}

// lineHash recomputes the hash of a line (without its newline) and returns
// it with the hash the line claims. ok is false when the line does not end
// with a well-formed hash field.
func lineHash(line []byte) (computed, claimed string, ok bool) {
	n := len(line)
	if n < hashSuffixLen+2 || string(line[n-hashSuffixLen:n-hashSuffixLen+9]) != `,"hash":"` || string(line[n-2:]) != `"}` {
		return "", "", false
	}
	claimed = string(line[n-hashSuffixLen+9 : n-2])
	if !isHex64(claimed) {
		return "", "", false
	}
	h := sha256.New()
	h.Write(line[:n-hashSuffixLen])
	h.Write([]byte("}"))
	return hex.EncodeToString(h.Sum(nil)), claimed, true
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// parseEvent decodes a line that looks like a complete event: valid JSON,
// an Event, with a well-formed hash field at the end.
func parseEvent(line []byte) (Event, bool) {
	var e Event
	if _, _, ok := lineHash(line); !ok {
		return e, false
	}
	if json.Unmarshal(line, &e) != nil || e.Hash == "" {
		return e, false
	}
	return e, true
}

// tail describes the end of a log file.
type tail struct {
	prev string // hash of the last complete event, "" if none
	// torn holds the bytes after the last complete event, without the
	// final newline if there is one; nil when there are none.
	torn    []byte
	newline bool // the file ends with a newline
	// unterminated: the last line is a complete event missing its newline.
	unterminated bool
}

// scanTail reads f backwards from size to find the last complete event.
func scanTail(f io.ReaderAt, size int64) (tail, error) {
	for n := int64(8 << 10); ; n *= 2 {
		pos := max(0, size-n)
		buf := make([]byte, size-pos)
		if _, err := f.ReadAt(buf, pos); err != nil && err != io.EOF {
			return tail{}, err
		}
		if t, ok := findTail(buf, pos == 0); ok {
			return t, nil
		}
	}
}

// findTail looks for the last complete event in buf, the end of the file.
// whole says buf starts at the beginning of the file; when it does not and
// no event was found, ok is false and the caller reads further back.
func findTail(buf []byte, whole bool) (t tail, ok bool) {
	i := lastIndex(buf, len(buf)) // end of the last complete line
	// After it, a piece without a newline: a complete event that lost its
	// newline, or torn.
	if i < len(buf)-1 {
		piece := buf[i+1:]
		if e, ok := parseEvent(piece); ok && (i >= 0 || whole) {
			return tail{prev: e.Hash, unterminated: true}, true
		}
	}
	for i >= 0 {
		j := lastIndex(buf, i)
		if j < 0 && !whole {
			return tail{}, false
		}
		if e, ok := parseEvent(buf[j+1 : i]); ok {
			return newTail(e.Hash, buf[i+1:]), true
		}
		i = j
	}
	if !whole {
		return tail{}, false
	}
	return newTail("", buf), true
}

func newTail(prev string, rest []byte) tail {
	t := tail{prev: prev}
	if len(rest) == 0 {
		return t
	}
	t.newline = rest[len(rest)-1] == '\n'
	if t.newline {
		rest = rest[:len(rest)-1]
	}
	t.torn = append([]byte{}, rest...)
	return t
}

// lastIndex is the index of the last newline in buf[:end], or -1.
func lastIndex(buf []byte, end int) int {
	for k := end - 1; k >= 0; k-- {
		if buf[k] == '\n' {
			return k
		}
	}
	return -1
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
