package masking

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

var displayCases = []struct {
	name, in, want string
}{
	{"plain command", "kubectl get pods -n web", "kubectl get pods -n web"},
	{"empty", "", ""},
	{"conceal hides the rest", "python3 -c 1; printf '\x1b[8m'; kubectl delete pod x", `python3 -c 1; printf '\x1b[8m'; kubectl delete pod x`},
	{"cursor movement", "ls\x1b[2K\x1b[1Gecho safe", `ls\x1b[2K\x1b[1Gecho safe`},
	{"osc 52 clipboard write", "true \x1b]52;c;cm0gLXJmIH4=\x07", `true \x1b]52;c;cm0gLXJmIH4=\x07`},
	{"carriage return overwrites", "rm -rf /srv/data\rls        ", `rm -rf /srv/data\rls        `},
	{"newline and tab", "a\nb\tc", `a\nb\tc`},
	{"nul and del", "a\x00b\x7f", `a\x00b\x7f`},
	{"backspace", "rm\b\bls", `rm\x08\x08ls`},
	{"c1 csi", "a\u009b2Jb", `a\u009b2Jb`},
	{"invalid utf-8", "a\xff\xfeb\xc3", `a\xff\xfeb\xc3`},
	{"bidi override", "echo \u202egnp.exe", `echo \u202egnp.exe`},
	{"bidi embeddings", "\u202a\u202b\u202c\u202d", `\u202a\u202b\u202c\u202d`},
	{"bidi isolates", "\u2066\u2067\u2068\u2069", `\u2066\u2067\u2068\u2069`},
	{"bidi marks", "a\u200eb\u200fc\u061cd", `a\u200eb\u200fc\u061cd`},
	{"zero width", "kube\u200bctl\u200c\u200d\u2060\ufeff", `kube\u200bctl\u200c\u200d\u2060\ufeff`},
	{"soft hyphen", "rm\u00ad -rf", `rm\u00ad -rf`},
	{"line separators", "a\u2028b\u2029c\u0085d", `a\u2028b\u2029c\u0085d`},
	{"other spaces", "rm\u00a0-rf\u3000/\u2002x", `rm\u00a0-rf\u3000/\u2002x`},
	{"hangul fillers and blank braille", "a\u3164b\u115fc\uffa0d\u2800e", `a\u3164b\u115fc\uffa0d\u2800e`},
	{"variation selectors and tags", "ok\ufe0f\U000e0041\U000e0100", `ok\ufe0f\U000e0041\U000e0100`},
	{"private use", "\ue000", `\ue000`},
	{"unicode text is kept", "grep 'naïve café 日本語 Ελληνικά' ./données", "grep 'naïve café 日本語 Ελληνικά' ./données"},
	{"decomposed accents are kept", "cafe\u0301 e\u0302\u0323", "cafe\u0301 e\u0302\u0323"},
	{"mark on a space", "a \u0338b", `a \u0338b`},
	{"mark on punctuation", "-\u0336rf", `-\u0336rf`},
	{"mark at the start", "\u0301x", `\u0301x`},
	{"mark after an escape", "\x1b\u0301", `\x1b\u0301`},
	{"too many marks", "e\u0301\u0302\u0303\u0304\u0305\u0306", "e\u0301\u0302\u0303\u0304" + `\u0305\u0306`},
	{"combining grapheme joiner", "a\u034fb", `a\u034fb`},
	{"backslash kept single", `grep 'a\|b' x\ y \$HOME \"q\" \.`, `grep 'a\|b' x\ y \$HOME \"q\" \.`},
	{"backslash at the end", `line continues \`, `line continues \`},
	{"backslash before n", `sed 's/\n/ /'`, `sed 's/\\n/ /'`},
	{"backslash before x", `printf '\x1b[8m'`, `printf '\\x1b[8m'`},
	{"backslash before u and U", `\u202e \U0001f600`, `\\u202e \\U0001f600`},
	{"backslash before r and t", `\r\t`, `\\r\\t`},
	{"two backslashes", `a\\b`, `a\\\b`},
	{"backslash before an escape", "\\\x1b", `\\\x1b`},
	{"backslash before invalid utf-8", "\\\xff", `\\\xff`},
	{"backslash before a mark", "\\\u0301", `\\\u0301`},
	{"backslash before bidi", "\\\u202e", `\\\u202e`},
	{"emoji", "echo 🚀", "echo 🚀"},
}

func TestDisplay(t *testing.T) {
	t.Parallel()
	for _, tc := range displayCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := Display(tc.in)
			if got != tc.want {
				t.Errorf("Display(%q)\n got %q\nwant %q", tc.in, got, tc.want)
			}
			if err := displaySafe(got); err != nil {
				t.Errorf("Display(%q) = %q: %v", tc.in, got, err)
			}
			back, err := undisplay(got)
			if err != nil || back != tc.in {
				t.Errorf("undisplay(%q) = %q, %v; want the input %q", got, back, err, tc.in)
			}
		})
	}
}

func TestDisplayLines(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{"one line", "ls -l", []string{"ls -l"}},
		{"a script", "set -e\n\tkubectl delete pod x\x1b[8m\nrm -f y", []string{"set -e", `\tkubectl delete pod x\x1b[8m`, "rm -f y"}},
		{"final newline", "ls\n", []string{"ls", ""}},
		{"carriage return stays escaped", "a\r\nb", []string{`a\r`, "b"}},
		{"continuation", "echo a \\\n  b", []string{`echo a \`, "  b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := DisplayLines(tc.in)
			if strings.Join(got, "\x00") != strings.Join(tc.want, "\x00") {
				t.Fatalf("DisplayLines(%q)\n got %q\nwant %q", tc.in, got, tc.want)
			}
			var back []string
			for _, l := range got {
				if strings.ContainsAny(l, "\n\r") {
					t.Errorf("line %q holds a line break", l)
				}
				b, err := undisplay(l)
				if err != nil {
					t.Fatal(err)
				}
				back = append(back, b)
			}
			if strings.Join(back, "\n") != tc.in {
				t.Errorf("lines decode to %q, want %q", strings.Join(back, "\n"), tc.in)
			}
		})
	}
}

func TestDisplayEscaping(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, in, want string }{
		{"fence", "echo ```x```", `echo \x60\x60\x60x\x60\x60\x60`},
		{"no backtick", "ls \x1b", `ls \x1b`},
		{"backslash before a backtick", "\\`", `\\\x60`},
		{"control too", "`\x1b", `\x60\x1b`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := DisplayEscaping(tc.in, "`")
			if got != tc.want {
				t.Errorf("DisplayEscaping(%q, \"`\") = %q, want %q", tc.in, got, tc.want)
			}
			if back, err := undisplay(got); err != nil || back != tc.in {
				t.Errorf("undisplay(%q) = %q, %v", got, back, err)
			}
		})
	}
}

// FuzzDisplay: whatever the input, the output holds no control character,
// no C1 control, no bidi, zero-width or other invisible rune, is valid
// UTF-8, and decodes back to the input (one reading only).
func FuzzDisplay(f *testing.F) {
	for _, tc := range displayCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := Display(in)
		if err := displaySafe(out); err != nil {
			t.Fatalf("Display(%q) = %q: %v", in, out, err)
		}
		back, err := undisplay(out)
		if err != nil || back != in {
			t.Fatalf("Display(%q) = %q decodes to %q, %v", in, out, back, err)
		}
		if Display(in) != out {
			t.Fatal("Display is not deterministic")
		}
		fenced := DisplayEscaping(in, "`")
		if strings.Contains(fenced, "`") || displaySafe(fenced) != nil {
			t.Fatalf("DisplayEscaping(%q, \"`\") = %q", in, fenced)
		}
		if back, err := undisplay(fenced); err != nil || back != in {
			t.Fatalf("DisplayEscaping(%q) = %q decodes to %q, %v", in, fenced, back, err)
		}
	})
}

// displaySafe checks what Display promises about its output.
func displaySafe(out string) error {
	if !utf8.ValidString(out) {
		return fmt.Errorf("not valid UTF-8")
	}
	marks := 0
	for i, r := range out {
		switch {
		case r < 0x20 || r == 0x7f:
			return fmt.Errorf("control %#x at %d", r, i)
		case r >= 0x80 && r <= 0x9f:
			return fmt.Errorf("C1 control %U at %d", r, i)
		case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c:
			return fmt.Errorf("bidi control %U at %d", r, i)
		case r >= 0x200b && r <= 0x200d, r == 0x2060, r == 0xfeff, r == 0x00ad:
			return fmt.Errorf("zero-width %U at %d", r, i)
		case r != ' ' && !unicode.IsPrint(r):
			return fmt.Errorf("non-printing %U at %d", r, i)
		case unicode.Is(unicode.Variation_Selector, r), unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r), unicode.In(r, unicode.Cf):
			return fmt.Errorf("invisible %U at %d", r, i)
		}
		if unicode.IsMark(r) {
			marks++
			if marks > maxMarks {
				return fmt.Errorf("more than %d marks in a row at %d", maxMarks, i)
			}
		} else {
			marks = 0
		}
	}
	return nil
}

// undisplay is the decoding that Display's doc comment describes; the
// tests use it to show that every output has one reading.
func undisplay(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b.WriteByte(c)
			i++
			continue
		}
		n := 0
		switch s[i+1] {
		case '\\':
			b.WriteByte('\\')
			i += 2
			continue
		case 'n', 'r', 't':
			b.WriteByte(map[byte]byte{'n': '\n', 'r': '\r', 't': '\t'}[s[i+1]])
			i += 2
			continue
		case 'x':
			n = 2
		case 'u':
			n = 4
		case 'U':
			n = 8
		default:
			b.WriteByte('\\') // a lone backslash
			i++
			continue
		}
		if i+2+n > len(s) {
			return "", fmt.Errorf("short escape at %d in %q", i, s)
		}
		v, err := strconv.ParseUint(s[i+2:i+2+n], 16, 32)
		if err != nil {
			return "", fmt.Errorf("bad escape at %d in %q", i, s)
		}
		if n == 2 {
			b.WriteByte(byte(v)) // a control below 0x80, a stray byte above
		} else {
			b.WriteRune(rune(v))
		}
		i += 2 + n
	}
	return b.String(), nil
}

func BenchmarkDisplay(b *testing.B) {
	for _, bc := range []struct{ name, in string }{
		{"plain", "kubectl delete pod web-1 -n prod --grace-period=30"},
		{"escapes", "python3 -c 1; printf '\x1b[8m'; kubectl delete pod x \u202e\u200b"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Display(bc.in)
			}
		})
	}
}
