package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/bastion-dev/bastion/internal/fsync"
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
	// Key is the audit key (DeriveKey): every event the Log writes is
	// keyed, its hash an HMAC-SHA256 under Key, and a legacy log is
	// continued with keyed events. Nil writes the legacy unkeyed chain
	// (for tests and tools; bastion always sets a key) and refuses a file
	// that is keyed already: continuing it unkeyed would be a downgrade.
	Key []byte
	// Heads, when non-nil, keeps the log's head (it needs Key): loaded at
	// Open to check the file against it, saved after every fsync, in the
	// background (see headSaver), and once more by Close.
	Heads HeadStore
}

// Log is an append-only, hash-chained JSON-lines audit log. It is safe for
// concurrent use, and several processes may append to the same file: every
// append holds an exclusive flock(2) on the file and picks up the chain
// from whatever another process wrote since. Lock order: qmu is never held
// while taking mu; the head saver's own lock is taken under mu.
type Log struct {
	path   string
	clock  func() time.Time
	mirror io.Writer
	heads  *headSaver // nil without Options.Heads

	mu    sync.Mutex // guards the fields below and serialises appends
	f     *os.File   // nil once closed
	chain *chain     // guarded by mu: its HMAC state is reused for every event
	// end is the file size after our last append, or -1 when unknown
	// (after an error): when the file size differs, another process (or a
	// torn write) changed the tail, and prev is re-read before appending.
	end     int64
	prev    string // hash of the last complete event in the file
	seq     uint64 // that event's number in the file; kept only when keyed
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
//
// With opt.Heads, the file is checked against the head kept in the store:
// a file that ends before the head (events were cut from its end), or
// whose event at the head is another (rewritten), gets a log.tampered
// event naming both, which Verify reports for good; the store's head then
// moves on to the file's. A file ahead of the head (a crash between an
// fsync and the head's save) is where the head catches up.
func Open(path string, opt Options) (*Log, error) {
	if opt.Heads != nil && opt.Key == nil {
		return nil, fmt.Errorf("audit: open %s: a head store needs the audit key", path)
	}
	// The head is loaded before the tail is read: a head is saved only
	// for events already durable in the file, so whatever another process
	// appends meanwhile leaves the file at or ahead of it.
	var head Head
	if opt.Heads != nil {
		ctx, cancel := context.WithTimeout(context.Background(), headTimeout)
		h, err := opt.Heads.LoadHead(ctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("audit: open %s: load head: %w", path, err)
		}
		head = h
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	if err := fsync.Dir(dir); err != nil { // make a newly created file's name durable
		f.Close()
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	l := &Log{path: path, clock: opt.Clock, mirror: opt.Mirror, f: f, end: -1, kick: make(chan struct{}, 1), linger: linger,
		chain: newChain(opt.Key)}
	if l.clock == nil {
		l.clock = time.Now
	}
	if opt.Heads != nil {
		l.heads = newHeadSaver(opt.Heads, head)
	}
	var cur Head
	err = l.locked(func() error {
		if err := l.resync(&checkpoint{head, "the store's head"}); err != nil {
			return err
		}
		if l.dirty { // a recovery or a log.tampered event: durable before anything else
			if err := l.syncLocked(); err != nil {
				return err
			}
		}
		cur = Head{Seq: l.seq, Hash: l.prev}
		return nil
	})
	if err == nil && l.heads != nil && cur != head {
		l.heads.set(cur)
		if serr := l.heads.save(); serr != nil {
			err = fmt.Errorf("audit: open %s: save head: %w", path, serr)
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	if l.heads != nil {
		go l.heads.run()
	}
	return l, nil
}

// Path returns the file the log appends to.
func (l *Log) Path() string { return l.path }

// Record fills in e.Time (when zero), e.Seq, e.Prev and e.Hash, appends e as one
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
		// What this Log wrote last is a head too: a file that another
		// process only ever appends to is never behind it.
		var known *checkpoint
		if l.chain.keyed() && l.seq > 0 {
			known = &checkpoint{Head{Seq: l.seq, Hash: l.prev}, "bastion's last write"}
		}
		if err := l.resync(known); err != nil {
			l.end = -1
			return err
		}
		// The lines are encoded in place after the unsynced ones, which
		// they join once written.
		buf := l.unsynced
		start := len(buf)
		prev, seq := l.prev, l.seq
		keyed := l.chain.keyed()
		for i, p := range batch {
			e := p.e
			if e.Time.IsZero() {
				e.Time = l.clock()
			}
			e.Seq = 0
			if keyed {
				e.Seq = seq + 1
			}
			b, hash, err := l.chain.appendLine(buf, e, prev)
			if err != nil {
				errs[i] = fmt.Errorf("audit: encode %s event: %w", e.Type, err)
				continue
			}
			buf, prev, seq = b, hash, e.Seq
		}
		if len(buf) == start {
			return nil
		}
		if err := l.append(buf[start:]); err != nil {
			return err
		}
		l.prev, l.seq = prev, seq
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

// syncLocked fsyncs the file, hands the lines it made durable to the
// Mirror and the new head to the head saver. A failed fsync is sticky.
// Caller holds the locks.
func (l *Log) syncLocked() error {
	if err := l.f.Sync(); err != nil {
		l.syncErr = fmt.Errorf("audit: sync %s: %w (the log needs attention: reopen it once the disk is healthy)", l.path, err)
		return l.syncErr
	}
	if l.heads != nil {
		l.heads.set(Head{Seq: l.seq, Hash: l.prev})
	}
	if l.mirror != nil && len(l.unsynced) > 0 {
		l.mirror.Write(l.unsynced)
	}
	l.unsynced, l.dirty = l.unsynced[:0], false
	if cap(l.unsynced) > 1<<20 {
		l.unsynced = nil // batches are encoded here: a huge one does not pin its size
	}
	return nil
}

// Close waits for queued events, closes the file and saves the final head
// (so a clean stop leaves the stored head exact). Record returns ErrClosed
// afterwards.
func (l *Log) Close() error {
	l.drains.Wait()
	l.mu.Lock()
	if l.f == nil {
		l.mu.Unlock()
		return nil
	}
	err := l.f.Close()
	l.f = nil
	l.mu.Unlock()
	if l.heads != nil {
		if herr := l.heads.close(); herr != nil {
			err = errors.Join(err, fmt.Errorf("audit: save head of %s: %w", l.path, herr))
		}
	}
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

// checkpoint is a head the file must reach: the store's, at Open, or what
// the Log itself wrote last, later; by names it in a log.tampered event.
type checkpoint struct {
	head Head
	by   string
}

// resync re-reads the tail when the file is not as we left it, and repairs
// a torn tail. It runs under the file lock. The tail is checked against cp
// (when not nil) before any repair: a file cut or rewritten under a
// running bastion is caught at its next write, not only at the next Open.
func (l *Log) resync(cp *checkpoint) error {
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
	seq, err := l.tailSeq(t, size)
	if err != nil {
		return err
	}
	l.prev, l.seq, l.end = t.prev, seq, size
	var tampered map[string]any
	if cp != nil {
		tampered = l.checkHead(*cp)
	}
	switch {
	case t.unterminated:
		// A complete event whose newline was lost: finish the line.
		if err := l.append([]byte("\n")); err != nil {
			return err
		}
	case t.torn != nil:
		sum := sha256.Sum256(t.torn)
		err := l.appendOwn(Event{Type: LogRecovered, Detail: map[string]any{
			"torn_bytes":  len(t.torn),
			"torn_sha256": hex.EncodeToString(sum[:]),
			"reason":      "torn last line (crash or full disk during a write); kept, chain continues from the last complete event",
		}}, !t.newline)
		if err != nil {
			return err
		}
	}
	if tampered != nil {
		return l.appendOwn(Event{Type: LogTampered, Detail: tampered}, false)
	}
	return nil
}

// tailSeq is the number of the file's last complete event: its Seq when it
// is keyed; when it is a legacy event and the Log keyed, the count of the
// file's events, which the keyed events that continue it follow.
func (l *Log) tailSeq(t tail, size int64) (uint64, error) {
	switch {
	case t.seq != 0 && !l.chain.keyed():
		return 0, fmt.Errorf("audit: %s is keyed (its events carry an HMAC): it can only be continued with the audit key", l.path)
	case t.seq != 0:
		return t.seq, nil
	case t.prev == "" || !l.chain.keyed():
		return 0, nil
	}
	n, err := countEvents(l.f, size)
	if err != nil {
		return 0, fmt.Errorf("audit: count the events of %s: %w", l.path, err)
	}
	return n, nil
}

// checkHead compares the tail just read with a head, and returns the
// detail of a log.tampered event when the file is behind it or ends on
// another event; nil when all is well. A file ahead of the head is not
// read back here: Verify checks that its event at the head is the head's.
func (l *Log) checkHead(cp checkpoint) map[string]any {
	head := cp.head
	if head.IsZero() || l.seq > head.Seq || l.seq == head.Seq && l.prev == head.Hash {
		return nil
	}
	d := map[string]any{"head_seq": head.Seq, "head_hash": head.Hash, "file_seq": l.seq, "file_hash": l.prev}
	if l.seq < head.Seq {
		d["kind"] = "truncated"
		d["reason"] = fmt.Sprintf("the file ended at event %d, but %s was event %d: %d event(s) were cut from its end",
			l.seq, cp.by, head.Seq, head.Seq-l.seq)
	} else {
		d["kind"] = "rewritten"
		d["reason"] = fmt.Sprintf("the file's event %d was not %s: the log was rewritten", head.Seq, cp.by)
	}
	return d
}

// appendOwn writes one of the Log's own events (a recovery, a tampering)
// at the tail, on a fresh line when fresh; it reaches the Mirror at once
// and is fsynced with the next batch (at Open, before Open returns).
// Caller holds the locks.
func (l *Log) appendOwn(e Event, fresh bool) error {
	e.Time = l.clock()
	if l.chain.keyed() {
		e.Seq = l.seq + 1
	}
	line, hash, err := l.chain.appendLine(nil, e, l.prev)
	if err != nil {
		return err
	}
	out := line
	if fresh {
		out = append([]byte("\n"), line...)
	}
	if err := l.append(out); err != nil {
		return err
	}
	l.prev, l.seq, l.dirty = hash, e.Seq, true
	if l.mirror != nil {
		l.mirror.Write(line)
	}
	return nil
}
