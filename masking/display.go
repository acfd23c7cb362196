package masking

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Display returns agent-controlled text (a command, an SQL statement, a
// path, BASTION_REASON) as it may be shown to a person: every rune that a
// terminal, a browser or a chat client would not show as itself is written
// as an escape, so what the person reads is what the bytes are. It is the
// one rendering of agent text on every human surface (the approvals and
// recordings CLI, the web UI, webhook and Slack text, the approval lines in
// a shell); it does not mask secrets (mask first, then display).
//
// Escaped are: C0 controls and DEL ("\x1b", "\x00", "\x7f", with "\n",
// "\r" and "\t" for the usual three), C1 controls ("\u009b"), bytes that
// are not UTF-8 ("\xff", always 0x80 and above, so never confusable with
// a control), every rune unicode.IsPrint rejects (format characters such
// as the bidirectional overrides and isolates U+202A-U+202E and
// U+2066-U+2069, the marks U+200E, U+200F and U+061C, zero-width U+200B-
// U+200D, U+2060, U+FEFF and the soft hyphen U+00AD; line and paragraph
// separators; spaces other than U+0020; private-use and unassigned runes),
// the default-ignorable runes that are printable by category (variation
// selectors, Hangul fillers, the combining grapheme joiner) and the blank
// braille pattern U+2800, which all show as nothing or as a space, and
// combining marks that have no letter or digit to sit on or that pile up
// beyond four (an overlay on a space or on an escape would draw a
// character that is not there). Escapes are "\uXXXX" below U+10000 and
// "\UXXXXXXXX" above, in lower-case hex.
//
// Everything else, spaces and printable text in any script, is kept. So
// that the output has one reading, a backslash in the input is doubled
// when what follows it would read as an escape (a backslash, or n r t x u
// U, or a rune that is escaped); elsewhere it is kept single, as commands
// are full of them (regular expressions, escaped spaces, line
// continuations) and doubling every one would show the approver a
// different command than the one that runs. Decoding "\\" as a backslash
// and each escape as its rune gives the input back, byte for byte.
//
// The output is one line: newlines are "\n". Use DisplayLines to show a
// multi-line command on several lines.
func Display(s string) string { return display(s, "") }

// DisplayEscaping is Display that also escapes each rune of also, for a
// surface where they mean something (the backtick that would end a Slack
// code block). also must not hold a backslash, which is always written
// as itself or doubled.
func DisplayEscaping(s, also string) string { return display(s, also) }

func display(s, also string) string {
	if plain(s, also) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	marks := -1 // combining marks in a row after a kept letter or digit; -1: none may follow
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			writeHex(&b, 'x', uint32(s[i]), 2)
			marks = -1
		case r == '\\':
			b.WriteByte('\\')
			if escapesNext(s[i+1:], also) {
				b.WriteByte('\\')
			}
			marks = -1
		case unicode.IsMark(r):
			if marks < 0 || marks >= maxMarks || hidden(r) || strings.ContainsRune(also, r) {
				writeRune(&b, r)
				marks = -1
				break
			}
			b.WriteString(s[i : i+size])
			marks++
		case hidden(r) || also != "" && strings.ContainsRune(also, r):
			writeRune(&b, r)
			marks = -1
		default:
			b.WriteString(s[i : i+size])
			marks = -1
			if unicode.IsLetter(r) || unicode.IsDigit(r) {
				marks = 0
			}
		}
		i += size
	}
	return b.String()
}

// DisplayLines is Display for a multi-line text, one element per line of
// s: the caller shows each on a line of its own with a marker that the
// text cannot forge (a line number, an indent), since no element holds a
// line break. A final newline gives a final empty line.
func DisplayLines(s string) []string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = Display(l)
	}
	return lines
}

// maxMarks is how many combining marks in a row Display keeps on a letter
// or digit: enough for the stacked vowel signs and tones of the scripts
// that use them, and few enough that a pile of overlays cannot paint over
// the line.
const maxMarks = 4

// plain reports whether s is printable ASCII without a backslash or a
// rune of also, which display returns as it is.
func plain(s, also string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '\\' {
			return false
		}
	}
	return also == "" || !strings.ContainsAny(s, also)
}

// escapesNext reports whether the rendering of s begins with a character
// that would make a backslash before it read as an escape: a backslash
// (every escape starts with one), or n, r, t, x, u or U.
func escapesNext(s, also string) bool {
	if s == "" {
		return false
	}
	r, size := utf8.DecodeRuneInString(s)
	switch {
	case r == utf8.RuneError && size == 1:
		return true
	case strings.ContainsRune(`\nrtxuU`, r):
		return true
	case unicode.IsMark(r):
		return true // a mark after a backslash has no letter to sit on: escaped
	}
	return hidden(r) || also != "" && strings.ContainsRune(also, r)
}

// hidden reports whether r is shown as an escape wherever it appears.
func hidden(r rune) bool {
	if r < 0x20 || r == 0x7f {
		return true
	}
	if r < 0x7f {
		return false
	}
	return !unicode.IsPrint(r) || r == '\u2800' ||
		unicode.Is(unicode.Variation_Selector, r) || unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r)
}

// writeRune writes r's escape.
func writeRune(b *strings.Builder, r rune) {
	switch r {
	case '\n':
		b.WriteString(`\n`)
	case '\r':
		b.WriteString(`\r`)
	case '\t':
		b.WriteString(`\t`)
	default:
		switch {
		case r < 0x80:
			writeHex(b, 'x', uint32(r), 2)
		case r < 0x10000:
			writeHex(b, 'u', uint32(r), 4)
		default:
			writeHex(b, 'U', uint32(r), 8)
		}
	}
}

func writeHex(b *strings.Builder, kind byte, v uint32, digits int) {
	const hex = "0123456789abcdef"
	b.WriteByte('\\')
	b.WriteByte(kind)
	for i := digits - 1; i >= 0; i-- {
		b.WriteByte(hex[v>>(4*i)&0xf])
	}
}
