package recordings

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/bastion-dev/bastion/internal/fsync"
)

// ErrClosed is returned by every method of a Writer after Close.
var ErrClosed = errors.New("recordings: recording closed")

// Options configures a Writer. The zero value works.
type Options struct {
	// Clock gives event times; nil means time.Now.
	Clock func() time.Time
	// Signer signs the checkpoints and the seal. It must be an ed25519 key
	// (see LoadOrCreateKey); nil leaves them unsigned, which proves the
	// file is unchanged only to someone who trusts where it was kept.
	Signer crypto.Signer
}

// CommandRef identifies a command marker, for CommandEnd.
type CommandRef struct {
	N int // 1-based number of the command in the session
}

// Writer appends one session's events to its recording. Its methods are
// safe for concurrent use.
//
// Errors are sticky: once a write or sync fails, every later call returns
// that error and nothing more is written, so the caller ends the session
// and no further command runs unrecorded (fail closed).
//
// Methods on a nil *Writer do nothing and return nil, so that code paths
// without a recording stay simple; bastion itself never runs a session
// without one.
type Writer struct {
	id     string
	dir    string
	path   string
	clock  func() time.Time
	signer crypto.Signer
	start  time.Time

	mu     sync.Mutex // guards everything below
	f      *os.File
	err    error // sticky: the first failure
	closed bool
	sealed bool     // the seal is written and durable (Sealed)
	lines  int      // lines written, header included
	chain  [32]byte // hash chain over those lines
	last   float64  // time of the last event, so times never go backwards
	held   [2][]byte
	index  Index
	buf    []byte
	label  []byte // Query's marker label
	// While batching, writeLine collects lines in batch (batchEnds: where
	// each ends, at its newline) for writeBatch to write at once.
	batching  bool
	batch     []byte
	batchEnds []int
}

// Create creates dir/<session-id>.cast (exclusively, mode 0600; dir is
// created 0700 if missing), writes the header and fsyncs it before
// returning. If Create fails the session must not start.
func Create(dir string, h Header, opt Options) (*Writer, error) {
	id := h.Bastion.SessionID
	path, err := Path(dir, id)
	if err != nil {
		return nil, err
	}
	if opt.Signer != nil {
		if _, ok := opt.Signer.Public().(ed25519.PublicKey); !ok {
			return nil, fmt.Errorf("recordings: signer is %T, want an ed25519 key", opt.Signer.Public())
		}
	}
	w := &Writer{id: id, dir: dir, path: path, clock: opt.Clock, signer: opt.Signer}
	if w.clock == nil {
		w.clock = time.Now
	}
	w.start = w.clock()
	if h.Width <= 0 || h.Height <= 0 {
		h.Width, h.Height = 80, 24
	}
	if h.Timestamp == 0 {
		h.Timestamp = w.start.Unix()
	}
	line, err := compactJSON(headerLine{Version: 2, Header: h})
	if err != nil {
		return nil, fmt.Errorf("recordings: encode header: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("recordings: create %s: %w", path, err)
	}
	w.f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("recordings: create %s: %w", path, err)
	}
	w.index = Index{SessionID: id, Started: w.start.UTC(), Commands: []Entry{}}
	err = w.writeLine(line)
	if err == nil {
		err = w.syncLocked()
	}
	if err == nil {
		err = fsync.Dir(dir)
	}
	if err != nil {
		w.f.Close()
		os.Remove(path) // nothing ran: leave no half header behind
		return nil, fmt.Errorf("recordings: create %s: %w", path, err)
	}
	return w, nil
}

// Path returns the file the Writer appends to.
func (w *Writer) Path() string {
	if w == nil {
		return ""
	}
	return w.path
}

// Output records p as output. An incomplete UTF-8 sequence at the end of
// p is held until the next Output completes it (or Close flushes it).
func (w *Writer) Output(p []byte) error { return w.stream(0, p) }

// Input records p as input, with the same UTF-8 handling as Output.
func (w *Writer) Input(p []byte) error { return w.stream(1, p) }

func (w *Writer) stream(s int, p []byte) error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	return w.streamLocked(s, p)
}

func (w *Writer) streamLocked(s int, p []byte) error {
	data := p
	if len(w.held[s]) > 0 {
		data = append(w.held[s], p...)
		w.held[s] = nil
	}
	if n := incompleteTail(data); n > 0 {
		w.held[s] = append([]byte{}, data[len(data)-n:]...)
		data = data[:len(data)-n]
	}
	return w.data(s, data)
}

// data writes one output (s=0) or input (s=1) event.
func (w *Writer) data(s int, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	code, raw := CodeOutput, CodeOutputBytes
	if s == 1 {
		code, raw = CodeInput, CodeInputBytes
	}
	t := w.now()
	if !utf8.Valid(data) {
		b64 := make([]byte, base64.StdEncoding.EncodedLen(len(data)))
		base64.StdEncoding.Encode(b64, data)
		if err := w.event(t, raw, b64); err != nil {
			return err
		}
	}
	return w.event(t, code, data)
}

// Resize records a terminal size change.
func (w *Writer) Resize(cols, rows int) error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	return w.event(w.now(), CodeResize, []byte(strconv.Itoa(cols)+"x"+strconv.Itoa(rows)))
}

// Marker records a marker with a free-form label (approvals, SQL
// statements...). Players show the label. A label that is a JSON object
// whose "type" is one of bastion's own markers (command, exit, end, seal)
// is refused: only the Writer writes those.
func (w *Writer) Marker(label string) error { return w.MarkerOutput(label, nil) }

// MarkerOutput records a marker and then output (if any), as Marker and
// Output would, in one write to the file.
func (w *Writer) MarkerOutput(label string, out []byte) error {
	if w == nil {
		return nil
	}
	if err := checkLabel(label); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.markerOutput(unsafe.Slice(unsafe.StringData(label), len(label)), out)
}

// Query is the marker of one statement through a database tunnel.
type Query struct {
	SQL      string
	Decision string
	Rule     string
	Rows     int64
	MS       int64
	Error    string
}

// Query records a statement's marker, {"type":"query","sql":...,
// "decision":...,"rule":...,"rows":N,"ms":N,"error":...}, and then output
// (the tunnel's log line), in one write: one system call per statement.
func (w *Writer) Query(q Query, out []byte) error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	b := append(w.label[:0], `{"type":"query","sql":`...)
	b = appendStr(b, q.SQL)
	b = append(b, `,"decision":`...)
	b = appendStr(b, q.Decision)
	b = append(b, `,"rule":`...)
	b = appendStr(b, q.Rule)
	b = append(b, `,"rows":`...)
	b = strconv.AppendInt(b, q.Rows, 10)
	b = append(b, `,"ms":`...)
	b = strconv.AppendInt(b, q.MS, 10)
	b = append(b, `,"error":`...)
	b = appendStr(b, q.Error)
	b = append(b, '}')
	w.label = b
	if cap(w.label) > 1<<20 {
		w.label = nil // one huge statement does not pin its size for the session
	}
	return w.markerOutput(b, out)
}

// markerOutput writes a marker and output in one write. Caller holds mu.
func (w *Writer) markerOutput(label, out []byte) error {
	if err := w.usable(); err != nil {
		return err
	}
	w.batch, w.batchEnds = w.batch[:0], w.batchEnds[:0]
	w.batching = true
	err := w.event(w.now(), CodeMarker, label)
	if err == nil && len(out) > 0 {
		err = w.streamLocked(0, out)
	}
	w.batching = false
	if err != nil {
		return err
	}
	return w.writeBatch()
}

// checkLabel refuses a marker label that is a JSON object whose "type" is
// one of the Writer's own markers.
func checkLabel(label string) error {
	// Such a label holds the name in quotes, or spells it with an escape:
	// a label with neither needs no decoding.
	if !strings.Contains(label, `\`) && !strings.Contains(label, `"`+markCommand+`"`) && !strings.Contains(label, `"`+markExit+`"`) &&
		!strings.Contains(label, `"`+markEnd+`"`) && !strings.Contains(label, `"`+markSeal+`"`) {
		return nil
	}
	var m struct {
		Type string `json:"type"`
	}
	if json.Unmarshal([]byte(label), &m) == nil {
		switch m.Type {
		case markCommand, markExit, markEnd, markSeal:
			return fmt.Errorf("recordings: marker label claims the reserved type %q", m.Type)
		}
	}
	return nil
}

// Command records the decision on a command as a marker with a checkpoint
// and fsyncs it before returning, so a command never runs before its
// marker is durable. It adds the command to the index.
func (w *Writer) Command(cmd, decision, rule string) (CommandRef, error) {
	if w == nil {
		return CommandRef{}, nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return CommandRef{}, err
	}
	n := len(w.index.Commands) + 1
	t := w.now()
	e := Entry{N: n, Offset: t, Line: w.lines + 1, Cmd: cmd, Decision: decision, Rule: rule}
	if err := w.mark(t, marker{Type: markCommand, N: n, Cmd: cmd, Decision: decision, Rule: rule}); err != nil {
		return CommandRef{}, err
	}
	if err := w.syncLocked(); err != nil {
		return CommandRef{}, err
	}
	w.index.Commands = append(w.index.Commands, e)
	return CommandRef{N: n}, nil
}

// CommandEnd records a command's exit code as a marker with a checkpoint,
// fsyncs, and rewrites the index file.
func (w *Writer) CommandEnd(ref CommandRef, exitCode int) error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	if ref.N < 1 || ref.N > len(w.index.Commands) {
		return fmt.Errorf("recordings: no command %d in session %s", ref.N, w.id)
	}
	e := &w.index.Commands[ref.N-1]
	t := w.now()
	d := round6(t - e.Offset)
	code := exitCode
	if err := w.mark(t, marker{Type: markExit, N: ref.N, Exit: &code, Duration: &d}); err != nil {
		return err
	}
	if err := w.syncLocked(); err != nil {
		return err
	}
	e.Exit, e.Duration = &code, d
	return w.writeIndex()
}

// Index returns the session's commands so far.
func (w *Writer) Index() []Entry {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Entry{}, w.index.Commands...)
}

// Entry returns the index entry of the command ref names, without copying
// the whole index (Index does).
func (w *Writer) Entry(ref CommandRef) (Entry, bool) {
	if w == nil {
		return Entry{}, false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if ref.N < 1 || ref.N > len(w.index.Commands) {
		return Entry{}, false
	}
	return w.index.Commands[ref.N-1], true
}

// Sync makes everything written so far durable (fsync). Callers call it at
// every command boundary.
func (w *Writer) Sync() error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	return w.syncLocked()
}

// Close flushes held bytes, writes the end marker and the seal, fsyncs,
// writes the index and closes the file. After a sticky error it only
// closes the file and returns that error: the recording stays unsealed,
// which Verify reports as an abnormal end.
func (w *Writer) Close(exitCode int) error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	w.closed = true
	err := w.seal(exitCode)
	if cerr := w.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("recordings: close %s: %w", w.path, cerr)
	}
	return err
}

func (w *Writer) seal(exitCode int) error {
	if w.err != nil {
		return w.err
	}
	for s := range w.held {
		if err := w.data(s, w.held[s]); err != nil {
			return err
		}
		w.held[s] = nil
	}
	t := w.now()
	code, n := exitCode, len(w.index.Commands)
	if err := w.mark(t, marker{Type: markEnd, Exit: &code, Commands: &n}); err != nil {
		return err
	}
	if err := w.mark(t, marker{Type: markSeal}); err != nil {
		return err
	}
	if err := w.syncLocked(); err != nil {
		return err
	}
	w.sealed = true
	ended := w.start.Add(time.Duration(t * float64(time.Second))).UTC()
	w.index.Ended, w.index.Exit = &ended, &code
	return w.writeIndex()
}

// usable returns the sticky error, or ErrClosed.
func (w *Writer) usable() error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return ErrClosed
	}
	return nil
}

// fail makes err sticky.
func (w *Writer) fail(err error) error {
	if w.err == nil {
		w.err = err
	}
	return w.err
}

// now is the offset of an event from the start, in seconds rounded to the
// microsecond, never before the previous event's.
func (w *Writer) now() float64 {
	t := round6(w.clock().Sub(w.start).Seconds())
	if t < w.last {
		t = w.last
	}
	w.last = t
	return t
}

func round6(f float64) float64 { return math.Round(f*1e6) / 1e6 }

// mark writes one of bastion's markers; command, exit and seal markers get
// a checkpoint of the chain so far.
func (w *Writer) mark(t float64, m marker) error {
	if m.Type != markEnd {
		cp, err := w.checkpoint(m.Type)
		if err != nil {
			return w.fail(err)
		}
		m.checkpoint = cp
	}
	label, err := compactJSON(m)
	if err != nil {
		return fmt.Errorf("recordings: encode marker: %w", err)
	}
	return w.event(t, CodeMarker, label)
}

func (w *Writer) checkpoint(typ string) (checkpoint, error) {
	cp := checkpoint{Lines: w.lines, SHA256: hex.EncodeToString(w.chain[:])}
	if w.signer != nil {
		sig, err := w.signer.Sign(rand.Reader, signedMessage(typ, cp.Lines, cp.SHA256), crypto.Hash(0))
		if err != nil {
			return cp, fmt.Errorf("recordings: sign %s: %w", typ, err)
		}
		cp.Sig = base64.StdEncoding.EncodeToString(sig)
	}
	return cp, nil
}

func (w *Writer) event(t float64, code string, data []byte) error {
	w.buf = appendEvent(w.buf[:0], t, code, data)
	return w.writeLine(w.buf)
}

// writeLine appends line and a newline in one write and extends the chain.
func (w *Writer) writeLine(line []byte) error {
	if w.batching {
		w.batch = append(append(w.batch, line...), '\n')
		w.batchEnds = append(w.batchEnds, len(w.batch)-1)
		return nil
	}
	n := len(line)
	line = append(line, '\n')
	if _, err := w.f.Write(line); err != nil {
		return w.fail(fmt.Errorf("recordings: write %s: %w", w.path, err))
	}
	w.chain = chainNext(w.chain, w.lines == 0, line[:n])
	w.lines++
	return nil
}

// writeBatch writes the lines collected while batching in one write, then
// extends the chain over each.
func (w *Writer) writeBatch() error {
	if len(w.batchEnds) == 0 {
		return nil
	}
	if _, err := w.f.Write(w.batch); err != nil {
		return w.fail(fmt.Errorf("recordings: write %s: %w", w.path, err))
	}
	start := 0
	for _, end := range w.batchEnds {
		w.chain = chainNext(w.chain, w.lines == 0, w.batch[start:end])
		w.lines++
		start = end + 1
	}
	if cap(w.batch) > 1<<20 {
		w.batch = nil // one huge statement does not pin its size for the session
	}
	return nil
}

// chainNext is h(i) = SHA-256(h(i-1) || line), with h(1) = SHA-256(line1).
func chainNext(prev [32]byte, first bool, line []byte) [32]byte {
	h := sha256.New()
	if !first {
		h.Write(prev[:])
	}
	h.Write(line)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func (w *Writer) syncLocked() error {
	if err := w.f.Sync(); err != nil {
		return w.fail(fmt.Errorf("recordings: sync %s: %w", w.path, err))
	}
	return nil
}

func (w *Writer) writeIndex() error {
	if err := writeIndex(indexPath(w.dir, w.id), w.index); err != nil {
		return w.fail(err)
	}
	return nil
}

// OutputWriter returns an io.Writer that records what is written to it as
// output. A recording error is returned (and sticky): the caller ends the
// session with a cause. On a nil *Writer it discards.
func (w *Writer) OutputWriter() io.Writer { return streamWriter{w, 0} }

// InputWriter is OutputWriter for input.
func (w *Writer) InputWriter() io.Writer { return streamWriter{w, 1} }

type streamWriter struct {
	w *Writer
	s int
}

func (sw streamWriter) Write(p []byte) (int, error) {
	if err := sw.w.stream(sw.s, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// writeFileAtomic replaces path with b (mode 0600) through a temporary
// file, fsynced and renamed, then fsyncs the directory.
func writeFileAtomic(path string, b []byte) error { return fsync.WriteFile(path, b, 0o600) }
