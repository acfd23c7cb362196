package pty

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// editor is bastion's line editor: a pure state machine fed with keystrokes.
// It owns no I/O: feed appends terminal output to e.out and reports at most
// one event per call, so the caller decides what happens to the bytes that
// follow a submitted line (they may belong to the command it starts).
//
// Rendering assumes an xterm-like terminal with deferred autowrap, as
// golang.org/x/term does; tabs are shown as spaces up to the next tab stop
// and any newline recalled from history as ^J.
//
// The editor never breaks a line of the input with its own CR LF: a line
// longer than the terminal is written in one piece and the terminal wraps
// it. The output passes a masker before it reaches the agent and the
// recording, and a secret typed across the wrap must reach the masker
// whole, not as two halves it cannot recognise.
type editor struct {
	prompt, cont string
	width        int // terminal columns, at least 1
	maxInput     int // bytes; longer inputs are refused with a bell

	// incomplete reports whether src needs more lines (open quote, `if`
	// without `fi`, trailing backslash, open here-document).
	incomplete func(src string) bool

	line    []rune
	pos     int    // cursor index into line
	pending string // earlier lines of a multi-line input, each ending in '\n'

	hist    []string
	histPos int    // index into hist being shown; len(hist) means the fresh line
	saved   []rune // the fresh line while browsing history

	esc     []byte // a partial escape sequence carried between feeds
	partial []byte // the start of a UTF-8 rune split across feeds
	paste   bool   // inside a bracketed paste
	lastCR  bool   // the previous key was CR, so an LF right after it is dropped
	active  bool   // a prompt is on screen and keys are being edited

	cursorRow int // terminal row of the cursor, relative to the prompt's first row
	dirty     bool

	out []byte
}

type eventKind int

const (
	evNone      eventKind = iota
	evSubmit              // text holds a complete input
	evInterrupt           // Ctrl-C discarded the input
	evEOF                 // Ctrl-D on an empty input
)

type event struct {
	kind eventKind
	text string
}

const (
	maxHistory = 1000
	maxEscape  = 32
)

func newEditor(prompt string, width int, incomplete func(string) bool) *editor {
	if prompt == "" {
		prompt = "$ "
	}
	if width < 1 {
		width = 80
	}
	return &editor{prompt: prompt, cont: "> ", width: width, maxInput: 1 << 20, incomplete: incomplete}
}

// start shows the primary prompt and begins a new input.
func (e *editor) start() {
	e.line, e.pos, e.pending = e.line[:0], 0, ""
	e.histPos = len(e.hist)
	e.saved = nil
	e.esc, e.partial, e.paste = e.esc[:0], nil, false
	e.active = true
	e.writePrompt()
}

// writePrompt writes the prompt for the current line at the start of a row.
func (e *editor) writePrompt() {
	e.out = append(e.out, e.promptText()...)
	w := e.cells(0)
	if w > 0 && w%e.width == 0 {
		e.out = append(e.out, '\r', '\n') // deferred autowrap, as in render
	}
	e.cursorRow = w / e.width
	e.dirty = false
}

// redraw writes the prompt and the line again on a fresh row, for use after
// other output (a background job) was written over the prompt.
func (e *editor) redraw(atLineStart bool) {
	if !e.active {
		return
	}
	if !atLineStart {
		e.out = append(e.out, '\r', '\n')
	}
	e.cursorRow = 0
	e.render(false)
}

// setWidth records a new terminal width; the next render uses it.
func (e *editor) setWidth(w int) {
	if w >= 1 && w != e.width {
		e.width = w
		e.dirty = true
	}
}

// take returns the pending output and resets it.
func (e *editor) take() []byte {
	p := e.out
	e.out = nil
	return p
}

// feed consumes keystrokes until an event occurs or p is exhausted. It
// returns how many bytes of p it consumed.
func (e *editor) feed(p []byte) (int, event) {
	carried := len(e.partial)
	if carried > 0 {
		p = append(e.partial, p...)
		e.partial = nil
	}
	n, ev := e.feedKeys(p)
	return max(n-carried, 0), ev
}

func (e *editor) feedKeys(p []byte) (int, event) {
	i := 0
	for i < len(p) {
		if !e.active {
			return i, event{}
		}
		b := p[i]
		if len(e.esc) > 0 || b == 0x1b {
			e.esc = append(e.esc, b)
			i++
			e.escape()
			continue
		}
		if b >= utf8.RuneSelf {
			if !utf8.FullRune(p[i:]) {
				// A rune split across reads: keep its start for the next feed.
				e.partial = append(e.partial[:0], p[i:]...)
				i = len(p)
				break
			}
			r, n := utf8.DecodeRune(p[i:])
			i += n
			e.lastCR = false
			e.insert(r)
			continue
		}
		i++
		if ev := e.key(b); ev.kind != evNone {
			e.flush()
			return i, ev
		}
	}
	e.flush()
	return i, event{}
}

// escape handles e.esc, a sequence starting with ESC, once it is complete.
func (e *editor) escape() {
	s := e.esc
	if len(s) == 1 {
		return
	}
	switch s[1] {
	case '[':
		// CSI: parameters 0x30-0x3f, intermediates 0x20-0x2f, final 0x40-0x7e.
		if len(s) == 2 {
			return
		}
		last := s[len(s)-1]
		if last < 0x40 || last > 0x7e {
			if len(s) >= maxEscape {
				e.esc = e.esc[:0] // garbage; drop it
			}
			return
		}
		e.csi(string(s[2:len(s)-1]), last)
	case 'O': // SS3, sent by some terminals for cursor keys in application mode
		if len(s) == 2 {
			return
		}
		if !e.paste {
			e.cursorKey(s[2])
		}
	default:
		// ESC followed by a key (Alt+key): ignored.
	}
	e.esc = e.esc[:0]
	e.lastCR = false
}

func (e *editor) csi(params string, final byte) {
	if final == '~' {
		switch params {
		case "200":
			e.paste = true
			return
		case "201":
			e.paste = false
			return
		}
	}
	if e.paste {
		return
	}
	switch final {
	case '~':
		switch params {
		case "1", "7":
			e.cursorKey('H')
		case "4", "8":
			e.cursorKey('F')
		case "3":
			e.deleteAt()
		}
	case 'A', 'B', 'C', 'D', 'H', 'F':
		switch params {
		case "1;3", "1;5": // Alt/Ctrl+arrow: move by word
			switch final {
			case 'C':
				e.wordRight()
				return
			case 'D':
				e.wordLeft()
				return
			}
		}
		e.cursorKey(final)
	}
}

func (e *editor) cursorKey(k byte) {
	switch k {
	case 'A':
		e.historyMove(-1)
	case 'B':
		e.historyMove(1)
	case 'C':
		if e.pos < len(e.line) {
			e.pos++
			e.dirty = true
		}
	case 'D':
		if e.pos > 0 {
			e.pos--
			e.dirty = true
		}
	case 'H':
		e.pos, e.dirty = 0, true
	case 'F':
		e.pos, e.dirty = len(e.line), true
	}
}

// key handles one byte below 0x80 that is not part of an escape sequence.
func (e *editor) key(b byte) event {
	wasCR := e.lastCR
	e.lastCR = b == '\r'
	if e.paste {
		switch b {
		case '\r':
			e.pasteNewline()
		case '\n':
			if !wasCR {
				e.pasteNewline()
			}
		case '\t':
			e.insert('\t')
		default:
			if b >= 0x20 && b != 0x7f {
				e.insert(rune(b))
			}
		}
		return event{}
	}
	switch b {
	case '\r':
		return e.enter()
	case '\n':
		if wasCR {
			return event{}
		}
		return e.enter()
	case 0x03: // Ctrl-C
		e.moveToEnd()
		e.out = append(e.out, "^C\r\n"...)
		e.reset()
		return event{kind: evInterrupt}
	case 0x04: // Ctrl-D
		if len(e.line) == 0 && e.pending == "" {
			e.active = false
			return event{kind: evEOF}
		}
		e.deleteAt()
	case 0x7f, 0x08: // Backspace
		if e.pos > 0 {
			e.line = append(e.line[:e.pos-1], e.line[e.pos:]...)
			e.pos--
			e.dirty = true
		}
	case 0x01:
		e.cursorKey('H')
	case 0x05:
		e.cursorKey('F')
	case 0x02:
		e.cursorKey('D')
	case 0x06:
		e.cursorKey('C')
	case 0x10:
		e.cursorKey('A')
	case 0x0e:
		e.cursorKey('B')
	case 0x0b: // Ctrl-K: kill to end of line
		e.line, e.dirty = e.line[:e.pos], true
	case 0x15: // Ctrl-U: kill to start of line
		e.line = append(e.line[:0], e.line[e.pos:]...)
		e.pos, e.dirty = 0, true
	case 0x17: // Ctrl-W: kill the word before the cursor (whitespace-delimited)
		i := e.pos
		for i > 0 && unicode.IsSpace(e.line[i-1]) {
			i--
		}
		for i > 0 && !unicode.IsSpace(e.line[i-1]) {
			i--
		}
		e.line = append(e.line[:i], e.line[e.pos:]...)
		e.pos, e.dirty = i, true
	case 0x0c: // Ctrl-L: clear the screen, keep the input
		e.out = append(e.out, "\x1b[H\x1b[2J"...)
		e.cursorRow = 0
		e.render(true)
	case '\t':
		e.insert('\t')
	default:
		if b >= 0x20 && b != 0x7f {
			e.insert(rune(b))
		}
		// Other control characters are ignored.
	}
	return event{}
}

func (e *editor) reset() {
	e.line, e.pos, e.pending = e.line[:0], 0, ""
	e.histPos = len(e.hist)
	e.saved = nil
	e.active = false
}

// enter ends the current line: it submits the input when the shell grammar
// says it is complete, and otherwise asks for a continuation line.
func (e *editor) enter() event {
	e.moveToEnd()
	e.out = append(e.out, '\r', '\n')
	full := e.pending + string(e.line)
	if strings.TrimSpace(full) == "" && e.pending == "" {
		e.line, e.pos = e.line[:0], 0
		e.writePrompt()
		return event{}
	}
	if e.incomplete != nil && e.incomplete(full) {
		e.pending = full + "\n"
		e.line, e.pos = e.line[:0], 0
		e.writePrompt()
		return event{}
	}
	e.addHistory(full)
	e.reset()
	return event{kind: evSubmit, text: full}
}

// pasteNewline keeps a pasted newline as part of the input: the input is
// only submitted by an Enter typed after the paste, as readline does with
// bracketed paste.
func (e *editor) pasteNewline() {
	if len(e.pending)+len(string(e.line))+1 > e.maxInput {
		e.out = append(e.out, '\a')
		return
	}
	e.moveToEnd()
	e.pending += string(e.line) + "\n"
	e.line, e.pos = e.line[:0], 0
	e.out = append(e.out, '\r', '\n')
	e.writePrompt()
}

func (e *editor) addHistory(s string) {
	if n := len(e.hist); n > 0 && e.hist[n-1] == s {
		return
	}
	if len(e.hist) == maxHistory {
		copy(e.hist, e.hist[1:])
		e.hist = e.hist[:maxHistory-1]
	}
	e.hist = append(e.hist, s)
}

func (e *editor) historyMove(d int) {
	n := e.histPos + d
	if n < 0 || n > len(e.hist) {
		return
	}
	if e.histPos == len(e.hist) {
		e.saved = append(e.saved[:0], e.line...)
	}
	e.histPos = n
	if n == len(e.hist) {
		e.line = append(e.line[:0], e.saved...)
	} else {
		e.line = append(e.line[:0], []rune(e.hist[n])...)
	}
	e.pos, e.dirty = len(e.line), true
}

func (e *editor) wordLeft() {
	i := e.pos
	for i > 0 && unicode.IsSpace(e.line[i-1]) {
		i--
	}
	for i > 0 && !unicode.IsSpace(e.line[i-1]) {
		i--
	}
	e.pos, e.dirty = i, true
}

func (e *editor) wordRight() {
	i := e.pos
	for i < len(e.line) && unicode.IsSpace(e.line[i]) {
		i++
	}
	for i < len(e.line) && !unicode.IsSpace(e.line[i]) {
		i++
	}
	e.pos, e.dirty = i, true
}

func (e *editor) deleteAt() {
	if e.pos < len(e.line) {
		e.line = append(e.line[:e.pos], e.line[e.pos+1:]...)
		e.dirty = true
	}
}

func (e *editor) insert(r rune) {
	if r == utf8.RuneError || r == 0 {
		return
	}
	if len(e.pending)+len(string(e.line))+utf8.RuneLen(r) > e.maxInput {
		e.out = append(e.out, '\a')
		return
	}
	// Fast path: typing at the end of the line echoes the rune as is, so
	// recordings read like the keystrokes. At the last column the terminal
	// wraps by itself (deferred autowrap): no CR LF is written into the
	// line, so that the echo of a secret typed across the wrap stays one
	// piece for the masker.
	if e.pos == len(e.line) && !e.dirty && r != '\t' && unicode.IsPrint(r) {
		col := e.cells(len(e.line))
		e.line = append(e.line, r)
		e.pos++
		e.out = utf8.AppendRune(e.out, r)
		// The cursor is on the row of the cell just written, also when it
		// waits past the last column for the wrap: CR (render, enter)
		// then returns to the start of that row.
		e.cursorRow = col / e.width
		return
	}
	e.line = append(e.line, 0)
	copy(e.line[e.pos+1:], e.line[e.pos:])
	e.line[e.pos] = r
	e.pos++
	e.dirty = true
}

func (e *editor) moveToEnd() {
	if e.pos != len(e.line) || e.dirty {
		e.pos = len(e.line)
		e.render(false)
	}
}

func (e *editor) flush() {
	if e.dirty && e.active {
		e.render(false)
	}
}

// promptText is the prompt shown before the current line.
func (e *editor) promptText() string {
	if e.pending != "" {
		return e.cont
	}
	return e.prompt
}

// cells returns the number of terminal cells that the prompt and the first
// n runes of the line occupy.
func (e *editor) cells(n int) int {
	c := utf8.RuneCountInString(e.promptText())
	for _, r := range e.line[:n] {
		c += e.runeCells(r, c)
	}
	return c
}

func (e *editor) runeCells(r rune, col int) int {
	switch {
	case r == '\t':
		in := col % e.width
		w := 8 - in%8
		if in+w > e.width {
			w = e.width - in
		}
		return w
	case r < 0x20 || r == 0x7f:
		return 2
	}
	return 1
}

// render redraws the prompt and the line from the prompt's first row and
// leaves the cursor at e.pos.
func (e *editor) render(fromHome bool) {
	if !fromHome {
		e.out = append(e.out, '\r')
		if e.cursorRow > 0 {
			e.out = append(e.out, "\x1b["...)
			e.out = strconv.AppendInt(e.out, int64(e.cursorRow), 10)
			e.out = append(e.out, 'A')
		}
	}
	p := e.promptText()
	e.out = append(e.out, p...)
	col := utf8.RuneCountInString(p)
	for _, r := range e.line {
		w := e.runeCells(r, col)
		switch {
		case r == '\t':
			e.out = append(e.out, strings.Repeat(" ", w)...)
		case r < 0x20 || r == 0x7f:
			e.out = append(e.out, '^', byte(r)^0x40)
		default:
			e.out = utf8.AppendRune(e.out, r)
		}
		col += w
	}
	endRow := col / e.width
	if col > 0 && col%e.width == 0 {
		// Deferred autowrap: move to the next row explicitly so the cursor
		// position is known.
		e.out = append(e.out, '\r', '\n')
	}
	e.out = append(e.out, "\x1b[J"...)
	target := e.cells(e.pos)
	row, c := target/e.width, target%e.width
	if up := endRow - row; up > 0 {
		e.out = append(e.out, "\x1b["...)
		e.out = strconv.AppendInt(e.out, int64(up), 10)
		e.out = append(e.out, 'A')
	}
	e.out = append(e.out, '\r')
	if c > 0 {
		e.out = append(e.out, "\x1b["...)
		e.out = strconv.AppendInt(e.out, int64(c), 10)
		e.out = append(e.out, 'C')
	}
	e.cursorRow = row
	e.dirty = false
}
