package pty

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/bastion-dev/bastion/masking"
)

// editorRun feeds keys to an editor as the session does: after a submitted
// or interrupted input it starts a new prompt.
func editorRun(e *editor, keys string) []event {
	var evs []event
	p := []byte(keys)
	for len(p) > 0 && e.active {
		n, ev := e.feed(p)
		p = p[n:]
		if ev.kind == evNone {
			continue
		}
		evs = append(evs, ev)
		if ev.kind == evSubmit || ev.kind == evInterrupt {
			e.start()
		}
	}
	return evs
}

func newTestEditor(width int) *editor {
	e := newEditor("$ ", width, incomplete)
	e.start()
	return e
}

func TestEditorKeys(t *testing.T) {
	t.Parallel()
	submit := func(s string) event { return event{kind: evSubmit, text: s} }
	for _, tc := range []struct {
		name   string
		keys   string
		line   string  // what is left being edited
		events []event // in order
		out    string  // a substring of the output, if set
	}{
		{name: "typing", keys: "abc", line: "abc", out: "$ abc"},
		{name: "backspace", keys: "abc\x7f", line: "ab"},
		{name: "ctrl-h", keys: "abc\x08", line: "ab"},
		{name: "ctrl-u kills to start", keys: "abc def\x1b[D\x1b[D\x15", line: "ef"},
		{name: "ctrl-k kills to end", keys: "abc def\x01\x1b[C\x0b", line: "a"},
		{name: "ctrl-w kills a word", keys: "echo foo bar\x17", line: "echo foo "},
		{name: "ctrl-w skips spaces", keys: "echo foo   \x17", line: "echo "},
		{name: "left then insert", keys: "ac\x1b[Db", line: "abc"},
		{name: "right", keys: "ac\x1b[D\x1b[D\x1b[Cb", line: "abc"},
		{name: "ctrl-a ctrl-e", keys: "bc\x01a\x05d", line: "abcd"},
		{name: "home end csi", keys: "bc\x1b[Ha\x1b[Fd", line: "abcd"},
		{name: "home end vt", keys: "bc\x1b[1~a\x1b[4~d", line: "abcd"},
		{name: "home end ss3", keys: "bc\x1bOHa\x1bOFd", line: "abcd"},
		{name: "delete key", keys: "abc\x01\x1b[3~", line: "bc"},
		{name: "ctrl-d deletes under cursor", keys: "abc\x01\x04", line: "bc"},
		{name: "ctrl-d on empty line ends", keys: "\x04", events: []event{{kind: evEOF}}},
		{name: "ctrl-c discards", keys: "echo hi\x03ls", line: "ls", events: []event{{kind: evInterrupt}}, out: "echo hi^C\r\n$ ls"},
		{name: "ctrl-c discards continuation", keys: "echo 'a\r\x03x", line: "x", events: []event{{kind: evInterrupt}}},
		{name: "enter submits", keys: "echo hi\r", events: []event{submit("echo hi")}, out: "$ echo hi\r\n$ "},
		{name: "lf submits", keys: "echo hi\n", events: []event{submit("echo hi")}},
		{name: "crlf is one enter", keys: "a\r\nb\r\n", events: []event{submit("a"), submit("b")}, out: "$ a\r\n$ b\r\n$ "},
		{name: "empty enter", keys: "\r  \r", out: "$ \r\n$   \r\n$ "},
		{name: "continuation", keys: "echo 'a\rb'\r", events: []event{submit("echo 'a\nb'")}, out: "echo 'a\r\n> b'\r\n$ "},
		{name: "empty continuation line", keys: "echo 'a\r\rb'\r", events: []event{submit("echo 'a\n\nb'")}},
		{name: "tab is literal", keys: "a\tb\r", events: []event{submit("a\tb")}, out: "$ a     b"},
		{name: "history up", keys: "one\rtwo\r\x1b[A\x1b[A", line: "one", events: []event{submit("one"), submit("two")}},
		{name: "history down restores", keys: "one\rtw\x1b[A\x1b[B", line: "tw", events: []event{submit("one")}},
		{name: "history ctrl-p ctrl-n", keys: "one\rtwo\r\x10\x10\x0e", line: "two", events: []event{submit("one"), submit("two")}},
		{name: "history skips repeats", keys: "a\ra\rb\r\x1b[A\x1b[A\x1b[A", line: "a", events: []event{submit("a"), submit("a"), submit("b")}},
		{name: "history keeps multi-line input", keys: "echo 'a\rb'\r\x1b[A\r", events: []event{submit("echo 'a\nb'"), submit("echo 'a\nb'")}, out: "$ echo 'a^Jb'"},
		{name: "bracketed paste waits for enter", keys: "\x1b[200~echo a\necho b\x1b[201~\r", events: []event{submit("echo a\necho b")}},
		{name: "bracketed paste crlf", keys: "\x1b[200~x\r\ny\r\n\x1b[201~\r", events: []event{submit("x\ny\n")}},
		{name: "bracketed paste keeps control keys literal", keys: "\x1b[200~a\x03b\x1b[Dc\x1b[201~", line: "abc"},
		{name: "utf8", keys: "é€\x7f", line: "é"},
		{name: "unknown csi ignored", keys: "a\x1b[1;2Pb", line: "ab"},
		{name: "alt key ignored", keys: "a\x1bxb", line: "ab"},
		{name: "alt arrows move by word", keys: "echo foo bar\x1b[1;3D\x1b[1;3DX\x1b[1;5CY", line: "echo XfooY bar"},
		{name: "control characters ignored", keys: "a\x07\x00\x1fb", line: "ab"},
		{name: "ctrl-l clears", keys: "ab\x0c", line: "ab", out: "\x1b[H\x1b[2J$ ab"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEditor(80)
			evs := editorRun(e, tc.keys)
			out := string(e.take())
			if got := string(e.line); got != tc.line {
				t.Errorf("line = %q, want %q", got, tc.line)
			}
			if len(evs) != len(tc.events) {
				t.Fatalf("events = %+v, want %+v", evs, tc.events)
			}
			for i := range evs {
				if evs[i] != tc.events[i] {
					t.Errorf("event %d = %+v, want %+v", i, evs[i], tc.events[i])
				}
			}
			if tc.out != "" && !strings.Contains(out, tc.out) {
				t.Errorf("output %q lacks %q", out, tc.out)
			}
		})
	}
}

func TestEditorSplitFeeds(t *testing.T) {
	t.Parallel()
	// Escape sequences, runes and CRLF split across reads.
	e := newTestEditor(80)
	for _, chunk := range []string{"a", "\x1b", "[", "D", "\xc3", "\xa9", "\r", "\n", "x"} {
		if _, ev := e.feed([]byte(chunk)); ev.kind == evSubmit {
			if ev.text != "éa" {
				t.Fatalf("submitted %q", ev.text)
			}
			e.start()
		}
	}
	if string(e.line) != "x" {
		t.Fatalf("line = %q; the LF after CR must not submit an empty line", string(e.line))
	}
}

func TestEditorFeedStopsAtEvent(t *testing.T) {
	t.Parallel()
	e := newTestEditor(80)
	n, ev := e.feed([]byte("ls\rhello"))
	if ev != (event{kind: evSubmit, text: "ls"}) || n != 3 {
		t.Fatalf("feed = %d, %+v; want 3 bytes and the submit", n, ev)
	}
}

func TestEditorMaxInput(t *testing.T) {
	t.Parallel()
	e := newTestEditor(80)
	e.maxInput = 5
	editorRun(e, "abcdefg")
	if string(e.line) != "abcde" || !strings.Contains(string(e.take()), "\a") {
		t.Fatalf("line = %q", string(e.line))
	}
}

// TestEditorRendering checks the screen a terminal would show after edits,
// including lines that wrap.
func TestEditorRendering(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		width int
		keys  string
	}{
		{"append wraps", 10, "abcdefghijklmnopqrstuvwxyz"},
		{"exact width", 10, "abcdefgh"},
		{"insert in wrapped line", 10, "abcdefghijklmnop\x01\x1b[C\x1b[CXYZ"},
		{"delete across wrap", 10, "abcdefghijklmnop\x1b[D\x1b[D\x1b[D\x1b[D\x1b[D\x1b[D\x1b[D\x7f\x7f"},
		{"tab stops", 12, "a\tb\tc\td\x01\x1b[CX"},
		{"history of other length", 10, "abcdefghijklmnopqrstuv\rxy\x1b[A\x1b[B\x1b[A"},
		{"continuation wraps", 8, "echo 'abcdefghij\rklmnopqrstu"},
		{"ctrl-l", 10, "abcdefghijklmno\x0c\x01"},
		{"resize narrower", 10, "abcdefghijklmno"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEditor(tc.width)
			vt := newVT(tc.width)
			editorRun(e, tc.keys)
			vt.write(e.take())
			if tc.name == "resize narrower" {
				e.setWidth(7)
				vt = newVT(7)
				e.redraw(true)
				vt.write(e.take())
			}
			if err := vt.check(e); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func FuzzEditor(f *testing.F) {
	for _, s := range []string{
		"abc\x7f", "echo 'a\rb'\r", "\x1b[200~x\ny\x1b[201~\r", "a\tb\x1b[D\x1b[D\x17",
		"one\rtwo\r\x1b[A\x1b[A\x1b[B", "é€\x01\x1b[3~", "abcdefghijklmnopqrstuvwxyz\x01\x1b[C\x0b",
		"\x0cab\x15", "if true; then\recho\rfi\r",
	} {
		f.Add(s, uint8(10))
	}
	f.Fuzz(func(t *testing.T, keys string, w uint8) {
		width := int(w%40) + 2
		e := newEditor("$ ", width, incomplete)
		e.start()
		vt := newVT(width)
		p := []byte(keys)
		for len(p) > 0 && e.active {
			n, ev := e.feed(p)
			p = p[n:]
			vt.write(e.take())
			if ev.kind == evSubmit || ev.kind == evInterrupt {
				if ev.kind == evSubmit && !utf8.ValidString(ev.text) {
					t.Fatalf("submitted invalid UTF-8 %q", ev.text)
				}
				e.start()
				vt.write(e.take())
			}
			if e.active {
				if err := vt.check(e); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}

// vt is the part of an xterm that the editor relies on: deferred autowrap,
// CR, LF, cursor moves and erase below.
type vt struct {
	width       int
	rows        [][]rune
	r, c        int
	pendingWrap bool
}

func newVT(width int) *vt { return &vt{width: width} }

func (v *vt) cell(r, c int) rune {
	if r < len(v.rows) && c < len(v.rows[r]) {
		return v.rows[r][c]
	}
	return ' '
}

func (v *vt) set(r, c int, ch rune) {
	for len(v.rows) <= r {
		v.rows = append(v.rows, nil)
	}
	for len(v.rows[r]) <= c {
		v.rows[r] = append(v.rows[r], ' ')
	}
	v.rows[r][c] = ch
}

func (v *vt) write(p []byte) {
	s := string(p)
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		s = s[n:]
		switch {
		case r == '\r':
			v.c, v.pendingWrap = 0, false
		case r == '\n':
			v.r, v.pendingWrap = v.r+1, false
		case r == '\a':
		case r == 0x1b && strings.HasPrefix(s, "["):
			i := 1
			for i < len(s) && (s[i] < 0x40 || s[i] > 0x7e) {
				i++
			}
			if i == len(s) {
				return
			}
			v.csi(s[1:i], s[i])
			s = s[i+1:]
		default:
			if v.pendingWrap {
				v.r, v.c, v.pendingWrap = v.r+1, 0, false
			}
			v.set(v.r, v.c, r)
			if v.c == v.width-1 {
				v.pendingWrap = true
			} else {
				v.c++
			}
		}
	}
}

func (v *vt) csi(params string, final byte) {
	n, err := strconv.Atoi(params)
	if err != nil || n == 0 {
		n = 1
	}
	v.pendingWrap = false
	switch final {
	case 'A':
		v.r = max(v.r-n, 0)
	case 'B':
		v.r += n
	case 'C':
		v.c = min(v.c+n, v.width-1)
	case 'D':
		v.c = max(v.c-n, 0)
	case 'H':
		v.r, v.c = 0, 0
	case 'J':
		if params == "2" {
			v.rows = nil
			return
		}
		if v.r < len(v.rows) {
			if v.c < len(v.rows[v.r]) {
				v.rows[v.r] = v.rows[v.r][:v.c]
			}
			v.rows = v.rows[:v.r+1]
		}
	}
}

// check compares the screen with the editor's state: the prompt and the
// line start at the row the cursor position implies, and the cursor is at
// the editor's position.
func (v *vt) check(e *editor) error {
	var want []rune
	col := 0
	for _, r := range e.promptText() {
		want = append(want, r)
		col++
	}
	for _, r := range e.line {
		w := e.runeCells(r, col)
		switch {
		case r == '\t':
			want = append(want, []rune(strings.Repeat(" ", w))...)
		case r < 0x20 || r == 0x7f:
			want = append(want, '^', r^0x40)
		default:
			want = append(want, r)
		}
		col += w
	}
	at := e.cells(e.pos)
	// Past the last column (deferred autowrap) the next character goes to
	// the start of the next row: that is where the editor's cursor is.
	r, c := v.r, v.c
	if v.pendingWrap {
		r, c = r+1, 0
	}
	row0 := r - at/e.width
	if c != at%e.width || row0 < 0 {
		return errorf("cursor at (%d,%d), want column %d; screen:\n%s", r, c, at%e.width, v.dump())
	}
	for i, r := range want {
		if got := v.cell(row0+i/e.width, i%e.width); got != r {
			return errorf("cell %d = %q, want %q; line %q; screen:\n%s", i, got, r, string(e.line), v.dump())
		}
	}
	// Nothing stale after the line on its last row or below.
	for i := len(want); i < (len(want)/e.width+2)*e.width; i++ {
		if got := v.cell(row0+i/e.width, i%e.width); got != ' ' {
			return errorf("stale cell %d = %q; screen:\n%s", i, got, v.dump())
		}
	}
	return nil
}

func (v *vt) dump() string {
	var b strings.Builder
	for i, row := range v.rows {
		b.WriteString(strconv.Itoa(i) + "|" + string(row) + "|\n")
	}
	return b.String()
}

type vtError string

func (e vtError) Error() string { return string(e) }

func errorf(format string, args ...any) error {
	return vtError(strings.TrimSpace(fmt.Sprintf(format, args...)))
}

// TestEditorWrapKeepsTypedLineWhole types a line longer than the terminal
// one key at a time, as an agent's keystrokes arrive, and checks that the
// echo is the line in one piece: the terminal wraps it (deferred autowrap),
// the editor writes no CR LF into it, so a masker after the editor sees a
// secret typed across the wrap whole. The screen stays right throughout.
func TestEditorWrapKeepsTypedLineWhole(t *testing.T) {
	t.Parallel()
	const line = "export AWS_ACCESS_KEY_ID=AKIAUJZDEGXDNCF32EPF"
	for _, width := range []int{3, 7, 10, 13, 20, 29, 40, 80} {
		t.Run(strconv.Itoa(width), func(t *testing.T) {
			t.Parallel()
			e := newTestEditor(width)
			vt := newVT(width)
			var echo strings.Builder
			for i := range len(line) {
				editorRun(e, line[i:i+1])
				out := e.take()
				echo.Write(out)
				vt.write(out)
				if err := vt.check(e); err != nil {
					t.Fatalf("after %q: %v", line[:i+1], err)
				}
			}
			if got := echo.String(); got != "$ "+line {
				t.Fatalf("echo %q, want the prompt and the line in one piece", got)
			}
			// Editing after the wrap and Enter still work from there.
			editorRun(e, "\x7fF\x1b[D\x1b[C")
			vt.write(e.take())
			if err := vt.check(e); err != nil {
				t.Fatal(err)
			}
			if evs := editorRun(e, "\r"); len(evs) != 1 || evs[0].text != line {
				t.Fatalf("events %+v", evs)
			}
			vt.write(e.take())
			if err := vt.check(e); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestEditorEchoMaskedAcrossWrap feeds the editor's echo of a typed secret
// to a masking Writer the way a session does (one write per keystroke, a
// pause after each), at widths where the secret crosses the wrap, and
// checks that no part of it reaches the output.
func TestEditorEchoMaskedAcrossWrap(t *testing.T) {
	t.Parallel()
	const key = "AKIA" + "UJZDEGXDNCF32EPF"
	for _, width := range []int{8, 11, 16, 21} {
		t.Run(strconv.Itoa(width), func(t *testing.T) {
			t.Parallel()
			var out strings.Builder
			w := masking.New(masking.Options{Idle: -1}).Writer(&out)
			e := newTestEditor(width)
			for i := range len("id " + key + " ok") {
				editorRun(e, ("id " + key + " ok")[i:][:1])
				if _, err := w.Write(e.take()); err != nil {
					t.Fatal(err)
				}
				if err := w.Flush(); err != nil { // the agent pauses between keys
					t.Fatal(err)
				}
			}
			editorRun(e, "\r")
			w.Write(e.take())
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			got := out.String()
			if !strings.Contains(got, "[MASKED:aws-access-key]") {
				t.Errorf("key not masked: %q", got)
			}
			for i := 0; i+6 <= len(key); i++ {
				if strings.Contains(got, key[i:i+6]) {
					t.Fatalf("part %q of the key in the echo %q", key[i:i+6], got)
				}
			}
		})
	}
}
