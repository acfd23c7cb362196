package recordings

import (
	"encoding/binary"
	"encoding/json"
	"math/bits"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

func plainByte(c byte) bool { return c >= 0x20 && c < 0x7f && c != '"' && c != '\\' }

// TestSpecial8 checks the eight-byte fast path against the byte test: the
// lowest flagged byte is the first special one, none flagged when none is.
// Every byte value at every position among plain neighbours, every pair of
// byte values at every pair of positions (a borrow or carry from the first
// must not hide or move the second), and random words.
func TestSpecial8(t *testing.T) {
	check := func(w [8]byte) {
		want := 8
		for i, c := range w {
			if !plainByte(c) {
				want = i
				break
			}
		}
		m := special8(binary.LittleEndian.Uint64(w[:]))
		got := 8
		if m != 0 {
			got = bits.TrailingZeros64(m) >> 3
		}
		if got != want || m&^hi8 != 0 {
			t.Fatalf("special8(%q) = %#x: first special byte %d, want %d", w[:], m, got, want)
		}
	}
	for pos := range 8 {
		for c := range 256 {
			for _, fill := range []byte{'a', ' ', '~', '#', ']'} {
				var w [8]byte
				for i := range w {
					w[i] = fill
				}
				w[pos] = byte(c)
				check(w)
			}
		}
	}
	for p1 := range 8 {
		for p2 := p1 + 1; p2 < 8; p2++ {
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
	for range 200000 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], r.Uint64())
		if r.IntN(2) == 0 { // bias towards mostly-plain words
			for i := range w {
				if r.IntN(4) > 0 {
					w[i] = byte(0x20 + r.IntN(0x5f))
				}
			}
		}
		check(w)
	}
}

// FuzzAppendString: the encoding is valid JSON that decodes to the input
// (with invalid UTF-8 bytes as U+FFFD, as encoding/json does).
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain text\n", "a\"b\\c\x00\x7f\u2028é\xff", "0123456789abcdef\"0123456789abcdef\\"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, s []byte) {
		enc := appendString(nil, s)
		var got string
		if err := json.Unmarshal(enc, &got); err != nil {
			t.Fatalf("appendString(%q) = %s: not JSON: %v", s, enc, err)
		}
		want := []rune{}
		for i := 0; i < len(s); {
			r, n := utf8.DecodeRune(s[i:])
			want = append(want, r)
			i += n
		}
		if got != string(want) {
			t.Fatalf("appendString(%q) decodes to %q, want %q", s, got, string(want))
		}
	})
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

func BenchmarkAppendStringLog(b *testing.B) {
	s := logText(32 << 10)
	buf := make([]byte, 0, 64<<10)
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		buf = appendString(buf[:0], s)
	}
}

// BenchmarkAppendStringANSI is terminal output: colour escapes and \r\n
// every few words (ls --color).
func BenchmarkAppendStringANSI(b *testing.B) {
	line := "\x1b[01;34mdrwxr-xr-x\x1b[0m  2 root root 4096 Nov 26 10:00 \x1b[01;32mbin\x1b[0m\r\n"
	s := []byte(strings.Repeat(line, (32<<10)/len(line)))
	buf := make([]byte, 0, 128<<10)
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		buf = appendString(buf[:0], s)
	}
}
