package jsonenc

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math/bits"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// marshalRef is the audit log's encoder before this package (audit/json.go
// at 959c15e), byte by byte: the bytes Marshal must keep.
func marshalRef(b []byte, s string) []byte {
	safe := func(c byte) bool { return c >= 0x20 && c < utf8.RuneSelf && !strings.ContainsRune(`"\<>&`, rune(c)) }
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		for i < len(s) && safe(s[i]) {
			i++
		}
		if i == len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// printableRef is the recordings encoder before this package
// (recordings/encode.go at 959c15e) without its eight-byte fast path: the
// bytes Printable must keep.
func printableRef(b, s []byte) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, "\ufffd"...)
		case r >= 0x80 && r <= 0x9f, r == 0x2028, r == 0x2029:
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', hexDigits[r>>12], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// check compares both escapings with their references and Marshal with
// encoding/json itself.
func check(t *testing.T, s string) {
	t.Helper()
	if got, want := Marshal.AppendString(nil, s), marshalRef(nil, s); !bytes.Equal(got, want) {
		t.Fatalf("Marshal(%q) = %s, want %s", s, got, want)
	}
	if std, _ := json.Marshal(s); !bytes.Equal(Marshal.AppendString(nil, s), std) {
		t.Fatalf("Marshal(%q) = %s, json.Marshal gives %s", s, Marshal.AppendString(nil, s), std)
	}
	if got, want := Printable.Append(nil, []byte(s)), printableRef(nil, []byte(s)); !bytes.Equal(got, want) {
		t.Fatalf("Printable(%q) = %s, want %s", s, got, want)
	}
	if got, want := Printable.AppendString([]byte("x"), s), printableRef([]byte("x"), []byte(s)); !bytes.Equal(got, want) {
		t.Fatalf("Printable.AppendString(%q) = %s, want %s", s, got, want)
	}
}

func TestEscapings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, marshal, printable string }{
		{"", `""`, `""`},
		{"plain text", `"plain text"`, `"plain text"`},
		{"a\"b\\c", `"a\"b\\c"`, `"a\"b\\c"`},
		{"\b\f\n\r\t\x00\x1f", `"\b\f\n\r\t\u0000\u001f"`, `"\u0008\u000c\n\r\t\u0000\u001f"`},
		{"<a href='x'>&amp;</a>", `"\u003ca href='x'\u003e\u0026amp;\u003c/a\u003e"`, `"<a href='x'>&amp;</a>"`},
		{"del\x7f", "\"del\x7f\"", `"del\u007f"`},
		{"c1\u0085\u009f", "\"c1\u0085\u009f\"", `"c1\u0085\u009f"`},
		{"ls\u2028ps\u2029", `"ls\u2028ps\u2029"`, `"ls\u2028ps\u2029"`},
		{"bad\xff\xc3", `"bad\ufffd\ufffd"`, "\"bad\ufffd\ufffd\""},
		{"é日本\U0001F600\ufffd", "\"é日本\U0001F600\ufffd\"", "\"é日本\U0001F600\ufffd\""},
	} {
		if got := string(Marshal.AppendString(nil, tc.in)); got != tc.marshal {
			t.Errorf("Marshal(%q) = %s, want %s", tc.in, got, tc.marshal)
		}
		if got := string(Printable.Append(nil, []byte(tc.in))); got != tc.printable {
			t.Errorf("Printable(%q) = %s, want %s", tc.in, got, tc.printable)
		}
		check(t, tc.in)
	}
}

// TestEscapingsExhaustive: every byte and every pair of bytes, at every
// position of a word the fast path reads, among plain neighbours; and
// random strings with many special bytes and runes.
func TestEscapingsExhaustive(t *testing.T) {
	t.Parallel()
	for pos := range 10 {
		for c := range 256 {
			w := []byte("abcdefghijkl")
			w[pos] = byte(c)
			check(t, string(w))
		}
	}
	for c1 := range 256 {
		for c2 := range 256 {
			check(t, string([]byte{'a', byte(c1), 'b', 'c', 'd', 'e', byte(c2), 'f', 'g', 'h'}))
		}
	}
	pieces := []string{"a", "plain words ", "\"", "\\", "<", ">", "&", "\x00", "\x1b[0m", "\n", "\r\n", "\t", "\x7f",
		"\u0080", "\u009f", "\u00a0", "é", "\u2028", "\u2029", "\ufffd", "\xff", "\xc3", "\xe2\x80", "\xed\xa0\x80", "日本", "\U0001F600"}
	r := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		var sb strings.Builder
		for range r.IntN(24) {
			sb.WriteString(pieces[r.IntN(len(pieces))])
		}
		check(t, sb.String())
	}
}

// TestFastPath: the lowest byte that Special8 (with html8, for Marshal)
// flags is the first byte the byte test stops at, never a later one, and
// no byte before it is flagged: single special bytes at every position,
// pairs, and random words.
func TestFastPath(t *testing.T) {
	t.Parallel()
	for _, e := range []*Escaping{Marshal, Printable} {
		stops := func(c byte) bool { return c >= utf8.RuneSelf || !e.plain[c] || c == 0x7f }
		check := func(w [8]byte) {
			want := 8
			for i, c := range w {
				if stops(c) {
					want = i
					break
				}
			}
			x := binary.LittleEndian.Uint64(w[:])
			m := Special8(x)
			if e.html {
				m |= html8(x)
			}
			got := 8
			if m != 0 {
				got = bits.TrailingZeros64(m) >> 3
			}
			if got != want || m&^Hi8 != 0 {
				t.Fatalf("fast path(%q) = %#x: first flagged byte %d, want %d", w[:], m, got, want)
			}
		}
		for p1 := range 8 {
			for p2 := p1; p2 < 8; p2++ {
				for c1 := range 256 {
					for c2 := range 256 {
						w := [8]byte{'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a'}
						w[p1], w[p2] = byte(c1), byte(c2)
						check(w)
					}
				}
			}
		}
		r := rand.New(rand.NewPCG(1, 2))
		for range 100000 {
			var w [8]byte
			binary.LittleEndian.PutUint64(w[:], r.Uint64())
			for i := range w {
				if r.IntN(4) > 0 {
					w[i] = byte(0x20 + r.IntN(0x5f))
				}
			}
			check(w)
		}
	}
}

func FuzzEscapings(f *testing.F) {
	for _, s := range []string{"", "plain text\n", "a\"b\\c\x00\x7f\u2028é\xff<>&", "0123456789abcdef\"0123456789abcdef\\", "\u0085\xed\xa0\x80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { check(t, s) })
}

// logText is exec-like output: log lines of printable ASCII.
func logText(n int) []byte {
	line := "2026-11-26T10:00:00Z info GET /api/v1/users 200 latency_ms=12 user=alice request_id=4f1c\n"
	b := make([]byte, 0, n+len(line))
	for len(b) < n {
		b = append(b, line...)
	}
	return b[:n]
}

func BenchmarkAppend(b *testing.B) {
	s := logText(32 << 10)
	ansi := []byte(strings.Repeat("\x1b[01;34mdrwxr-xr-x\x1b[0m  2 root root 4096 Nov 26 10:00 \x1b[01;32mbin\x1b[0m\r\n", 400))
	buf := make([]byte, 0, 128<<10)
	for _, bc := range []struct {
		name string
		e    *Escaping
		s    []byte
	}{
		{"Marshal/log", Marshal, s}, {"Printable/log", Printable, s},
		{"Marshal/ansi", Marshal, ansi}, {"Printable/ansi", Printable, ansi},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.s)))
			for b.Loop() {
				buf = bc.e.Append(buf[:0], bc.s)
			}
		})
	}
}
