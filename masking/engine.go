package masking

import (
	"bytes"
	"io"
	"sort"
)

const (
	// maxHold bounds what is held back waiting for more input. Beyond it
	// the pending text is decided as if the stream had ended. An open
	// private key block is not held but swallowed, so it is not bounded.
	maxHold = 64 << 10
	// keepContext is how much already-emitted text stays available as
	// look-behind (key names before a separator, the kind of a Kubernetes
	// object before its data).
	keepContext = 1 << 10
)

// engine is the streaming masker without locking or timers: Writer adds
// those, Bytes uses it directly.
type engine struct {
	m   *Masker
	out io.Writer

	// buf[:done] has been emitted and is kept as look-behind context;
	// buf[done:] is pending.
	buf  []byte
	done int
	// base is the stream offset of buf[0]; trimmed reports whether bytes
	// before buf[0] were dropped from the look-behind.
	base    int64
	trimmed bool

	// pem is set inside a private key block: input is swallowed until its
	// footer. pemOff is the stream offset of the block's header.
	pem    bool
	pemOff int64

	// scanned is len(buf) when it was last scanned.
	scanned int

	sc scanner
	// esc is set once buf holds an escape sequence or another byte a
	// terminal does not show (hidden is set when the scanner found one):
	// the rules then see clean, buf[:stripped] as a terminal shows it,
	// and pos[i] is the index in buf of clean[i].
	esc, hidden bool
	clean       []byte
	pos         []int32
	stripped    int
	segs        [][]byte
	join        []byte
}

func newEngine(m *Masker, out io.Writer) *engine {
	return &engine{m: m, out: out}
}

func hasEscape(b []byte) bool { return bytes.IndexByte(b, 0x1b) >= 0 }

func (e *engine) write(p []byte) error {
	e.buf = append(e.buf, p...)
	// When much is held back (an open data block, a long token), rescan
	// only once the new input is a quarter of it, so that many small
	// writes cost linear time. Idle flushing bounds the delay.
	if held := e.scanned - e.done; held > deferAbove && len(e.buf)-e.scanned < held/4 {
		return nil
	}
	return e.process(false, false)
}

// deferAbove is the amount of held-back text above which rescans are
// batched.
const deferAbove = 1 << 10

// flush emits everything pending except an open private key block.
func (e *engine) flush() error { return e.process(true, false) }

// close flushes and ends an open private key block, still masked.
func (e *engine) close() error {
	err := e.process(true, true)
	if e.pem {
		e.event(kPrivateKey, e.pemOff, int(e.base+int64(len(e.buf))-e.pemOff))
		e.pem = false
		e.done = len(e.buf)
	}
	return err
}

func (e *engine) event(k kind, off int64, n int) {
	if e.m.onMask != nil {
		e.m.onMask(Event{Kind: ruleInfo[k].ID, Offset: off, Length: n})
	}
}

// view is the text the rules see: buf with escape sequences removed, and
// the mapping back to buf.
type view struct {
	t        []byte
	pos      []int32 // nil: identity
	from     int     // first pending index in t
	limit    int     // buf index where t ends (an unfinished escape)
	complete bool    // t covers all of buf
}

// raw maps index c of t to buf: the byte itself, or limit past the end.
func (v *view) raw(c int) int {
	if v.pos == nil {
		return c
	}
	if c < len(v.pos) {
		return int(v.pos[c])
	}
	return v.limit
}

// rawEnd maps the end of a span ending at c (exclusive) to buf, so that
// escape sequences after the span's last byte stay outside it.
func (v *view) rawEnd(c int) int {
	if v.pos == nil || c == 0 {
		return c
	}
	return int(v.pos[c-1]) + 1
}

// index returns the index in t of the first byte at or after buf index r.
func (v *view) index(r int) int {
	if v.pos == nil {
		return r
	}
	return sort.Search(len(v.pos), func(i int) bool { return int(v.pos[i]) >= r })
}

// view returns the text the rules see. Once buf holds an escape sequence,
// clean and pos are kept up to date incrementally: only bytes from
// stripped on are stripped again, so many small writes of coloured output
// cost linear time.
func (e *engine) view(final bool) view {
	if !e.esc {
		if !e.hidden && !hasEscape(e.buf[e.scanned:]) {
			return view{t: e.buf, from: e.done, limit: len(e.buf), complete: true}
		}
		e.esc = true
		e.clean, e.pos, e.stripped = e.clean[:0], e.pos[:0], 0
	}
	var limit int
	e.clean, e.pos, limit = strip(e.buf, e.stripped, e.clean, e.pos, final)
	e.stripped = limit
	from := sort.Search(len(e.pos), func(i int) bool { return int(e.pos[i]) >= e.done })
	return view{t: e.clean, pos: e.pos, from: from, limit: limit, complete: limit == len(e.buf)}
}

// process emits what can be decided. final decides everything pending
// (Flush, idle) except the beginning of a private key header; eof also
// decides that (Close).
func (e *engine) process(final, eof bool) error {
	e.segs = e.segs[:0]
	// buf does not change below, so one view serves every round; only
	// the first pending index moves.
	v := e.view(final)
	for e.done < len(e.buf) {
		v.from = v.index(e.done)
		if e.pem {
			end, ok := pemFooter(v.t, v.from, false)
			if ok {
				r := v.rawEnd(end)
				e.event(kPrivateKey, e.pemOff, int(e.base+int64(r)-e.pemOff))
				e.pem = false
				e.done = r
				continue
			}
			// Swallow all but what may be the start of the footer.
			e.done = max(e.done, v.raw(end))
			break
		}
		sc := &e.sc
		streamStart := !e.trimmed
		sc.reset(e.m, v.t, v.from, final && v.complete, streamStart)
		sc.eof, sc.raw = eof, v.pos == nil
		sc.run()
		if sc.invisible {
			// Match what a terminal shows, from here on.
			e.hidden = true
			v = e.view(final)
			continue
		}
		if !sc.eof && len(v.t)-sc.hold > maxHold {
			sc.reset(e.m, v.t, v.from, true, streamStart)
			sc.eof = true
			sc.run()
		}
		hold := v.raw(sc.hold)
		cur := e.done
		for _, m := range sc.ms {
			rs, re := v.raw(m.start), v.rawEnd(m.end)
			e.segs = e.appendShown(e.segs, cur, rs)
			e.segs = append(e.segs, replacement[m.kind])
			e.event(m.kind, e.base+int64(rs), re-rs)
			cur = re
		}
		if sc.pemAt >= 0 && sc.pemAt == sc.hold {
			e.segs = e.appendShown(e.segs, cur, hold)
			e.segs = append(e.segs, replacement[kPrivateKey])
			e.pem = true
			e.pemOff = e.base + int64(hold)
			e.done = v.rawEnd(sc.pemEnd)
			continue
		}
		e.segs = e.appendShown(e.segs, cur, hold)
		e.done = hold
		break
	}
	err := e.emit()
	e.scanned = len(e.buf)
	e.compact()
	return err
}

// emit writes the collected segments with one call to the underlying
// writer.
func (e *engine) emit() error {
	var out []byte
	n := 0
	for _, s := range e.segs {
		if len(s) > 0 {
			out = s
			n++
		}
	}
	if n == 0 {
		return nil
	}
	if n > 1 {
		e.join = e.join[:0]
		for _, s := range e.segs {
			e.join = append(e.join, s...)
		}
		out = e.join
	}
	e.segs = e.segs[:0]
	_, err := e.out.Write(out)
	return err
}

// compact drops emitted text beyond the look-behind window.
func (e *engine) compact() {
	if e.done < 2*keepContext {
		return
	}
	cut := e.done - keepContext
	if e.esc {
		// Keep keepContext bytes of text, not counting escape sequences.
		c := sort.Search(len(e.pos), func(i int) bool { return int(e.pos[i]) >= e.done }) - keepContext
		if c <= 0 {
			return
		}
		cut = int(e.pos[c])
	}
	n := copy(e.buf, e.buf[cut:])
	e.buf = e.buf[:n]
	e.done -= cut
	e.scanned -= cut
	e.base += int64(cut)
	e.trimmed = true
	if e.esc {
		if !hasEscape(e.buf) && !hasHidden(e.buf) {
			e.esc, e.hidden = false, false
			return
		}
		c := sort.Search(len(e.pos), func(i int) bool { return int(e.pos[i]) >= cut })
		n := copy(e.clean, e.clean[c:])
		e.clean = e.clean[:n]
		copy(e.pos, e.pos[c:])
		e.pos = e.pos[:n]
		for i := range e.pos {
			e.pos[i] -= int32(cut)
		}
		e.stripped -= cut
	}
}

// appendShown appends buf[from:to], text outside any finding, to segs.
// The payload of each string sequence in it (an OSC window title, an
// OSC 8 link), which the rules did not see, is masked on its own.
func (e *engine) appendShown(segs [][]byte, from, to int) [][]byte {
	if !e.esc {
		return append(segs, e.buf[from:to])
	}
	b := e.buf[:to]
	i := from
	for {
		j := bytes.IndexByte(b[i:], 0x1b)
		if j < 0 {
			break
		}
		j += i
		if j+1 < len(b) {
			switch b[j+1] {
			case ']', 'P', 'X', '^', '_':
				if p, end := stringEnd(b[j:]); end > 0 {
					payload := b[j+2 : j+p]
					if m := e.m.bytesAt(payload, e.base+int64(j+2)); len(m) > 0 && &m[0] != &payload[0] {
						segs = append(segs, b[from:j+2], m)
						from = j + p
					}
					i = j + end
					continue
				}
			}
		}
		i = j + 1
	}
	return append(segs, b[from:to])
}

// hasHidden reports whether b holds a byte that strip removes, ESC aside.
func hasHidden(b []byte) bool {
	for i, c := range b {
		if (c < 0x20 || c >= 0x7f) && hiddenLen(b[i:]) != 0 {
			return true
		}
	}
	return false
}
