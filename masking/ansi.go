package masking

import (
	"slices"
)

// The rules see what a terminal would display. Removed from the text they
// match, and so masked together with a secret they sit inside, are:
//
//   - escape sequences (ECMA-48): CSI (ESC [ ... final byte), the short
//     ESC sequences (ESC 7, ESC =, ESC ( B, ESC E) and the string sequences
//     OSC, DCS, SOS, PM and APC up to their terminator (ST or BEL), so that
//     "ghp_\x1b[01;31m\x1b[Kabc..." as printed by grep --color, or an OSC
//     title written between two halves of a key, is still one token;
//   - C0 controls other than TAB, LF, VT, FF and CR (BEL, NUL, SO, SI, ...)
//     and DEL, which a terminal does not show; BS also takes back the
//     character before it on the line, as the terminal overwrites it;
//   - zero-width and format characters: soft hyphen, C1 controls, the
//     combining grapheme joiner, U+061C, Mongolian selectors, U+200B-U+200F,
//     bidirectional embeddings, overrides and isolates, U+2060-U+2064,
//     variation selectors, U+FEFF, interlinear annotations and tag
//     characters.
//
// A string sequence's payload (a window title, an OSC 8 link) is not on the
// screen but may carry a secret of its own: it is masked on its own as the
// sequence is written out (maskStrings).

const (
	maxCSI = 64
	// maxString bounds a string sequence. Beyond it the ESC is taken as
	// text and the payload is scanned with the text around it.
	maxString = 4096
)

// hiddenLen reports whether b[0] begins something strip removes (ESC aside,
// which hasEscape finds): n > 0 its length, n < 0 when b ends before it is
// known.
func hiddenLen(b []byte) (n int) {
	c := b[0]
	switch {
	case c < 0x20:
		switch c {
		case '\t', '\n', '\v', '\f', '\r', 0x1b:
			return 0
		}
		return 1
	case c == 0x7f:
		return 1
	case c < 0xc2:
		return 0
	}
	return invisibleRune(b)
}

// invisibleRune returns the length of the zero-width or format character
// UTF-8 encoded at the start of b, 0 if there is none, -1 if b is cut.
func invisibleRune(b []byte) int {
	need := 2
	switch c := b[0]; {
	case c == 0xc2 || c == 0xcd || c == 0xd8:
	case c == 0xe1 || c == 0xe2 || c == 0xef:
		need = 3
	case c == 0xf3:
		need = 4
	default:
		return 0
	}
	if len(b) < need {
		for _, x := range b[1:] {
			if x&0xc0 != 0x80 {
				return 0
			}
		}
		return -1
	}
	b1 := b[1]
	switch b[0] {
	case 0xc2: // U+00AD soft hyphen, U+0080-U+009F C1 controls
		if b1 == 0xad || b1 >= 0x80 && b1 <= 0x9f {
			return 2
		}
	case 0xcd: // U+034F combining grapheme joiner
		if b1 == 0x8f {
			return 2
		}
	case 0xd8: // U+061C Arabic letter mark
		if b1 == 0x9c {
			return 2
		}
	case 0xe1: // U+180B-U+180F Mongolian selectors and vowel separator
		if b1 == 0xa0 && b[2] >= 0x8b && b[2] <= 0x8f {
			return 3
		}
	case 0xe2:
		b2 := b[2]
		switch {
		case b1 == 0x80 && (b2 >= 0x8b && b2 <= 0x8f || b2 >= 0xaa && b2 <= 0xae):
			return 3 // U+200B-U+200F, U+202A-U+202E
		case b1 == 0x81 && b2 >= 0xa0 && b2 <= 0xaf && b2 != 0xa5:
			return 3 // U+2060-U+2064, U+2066-U+206F
		}
	case 0xef:
		b2 := b[2]
		switch {
		case b1 == 0xb8 && b2 >= 0x80 && b2 <= 0x8f, // U+FE00-U+FE0F
			b1 == 0xbb && b2 == 0xbf,               // U+FEFF
			b1 == 0xbf && b2 >= 0xb9 && b2 <= 0xbb: // U+FFF9-U+FFFB
			return 3
		}
	case 0xf3: // U+E0000-U+E007F tags, U+E0100-U+E01EF selectors
		if b1 == 0xa0 && (b[2] == 0x80 || b[2] == 0x81 || b[2] >= 0x84 && b[2] <= 0x87) {
			return 4
		}
	}
	return 0
}

// strip appends raw[i:] without what a terminal does not display to clean
// and the index in raw of each appended byte to pos. limit is where an
// unfinished sequence at the end of raw starts; it is len(raw) when there
// is none, or when final (an unfinished sequence is then plain text).
func strip(raw []byte, i int, clean []byte, pos []int32, final bool) (_ []byte, _ []int32, limit int) {
	clean = slices.Grow(clean, len(raw)-i)
	pos = slices.Grow(pos, len(raw)-i)
	start := i // keep appends raw[start:j]
	keep := func(j int) {
		clean = append(clean, raw[start:j]...)
		n := len(pos)
		pos = pos[:n+j-start]
		for k := range pos[n:] {
			pos[n+k] = int32(start + k)
		}
	}
	for i < len(raw) {
		c := raw[i]
		if c >= 0x20 && c < 0x7f {
			i++
			continue
		}
		var n int
		if c == 0x1b {
			n = escLen(raw[i:])
		} else {
			n = hiddenLen(raw[i:])
		}
		switch {
		case n < 0 && !final:
			keep(i)
			return clean, pos, i
		case n <= 0:
			i++ // shown, or not a sequence: stays as text
			continue
		}
		keep(i)
		if c == '\b' {
			clean, pos = backspace(clean, pos)
		}
		i += n
		start = i
	}
	keep(len(raw))
	return clean, pos, len(raw)
}

// backspace takes back the last character of clean unless it ends a line.
func backspace(clean []byte, pos []int32) ([]byte, []int32) {
	n := len(clean)
	if n == 0 || clean[n-1] == '\n' || clean[n-1] == '\r' {
		return clean, pos
	}
	n--
	for n > 0 && clean[n]&0xc0 == 0x80 {
		n--
	}
	return clean[:n], pos[:n]
}

// escLen returns the length of the removable sequence at the start of b
// (b[0] is ESC), 0 if there is none, or -1 if b ends before it is known.
func escLen(b []byte) int {
	if len(b) < 2 {
		return -1
	}
	c := b[1]
	switch {
	case c == '[':
		for k := 2; k < len(b) && k < maxCSI; k++ {
			switch c := b[k]; {
			case c >= 0x20 && c <= 0x3f: // parameter and intermediate bytes
			case c >= 0x40 && c <= 0x7e:
				return k + 1
			default:
				return 0
			}
		}
		if len(b) < maxCSI {
			return -1
		}
		return 0
	case c == ']' || c == 'P' || c == 'X' || c == '^' || c == '_':
		_, end := stringEnd(b)
		return end
	case c == '\\':
		return 0
	case c >= 0x20 && c <= 0x2f: // ESC ( B and other designations
		if len(b) < 3 {
			return -1
		}
		if b[2] >= 0x30 && b[2] <= 0x7e {
			return 3
		}
		return 0
	case c >= 0x30 && c <= 0x7e:
		return 2
	}
	return 0
}

// stringEnd finds the terminator of the string sequence that starts b:
// payload ends b's payload, end is the sequence's length, 0 when it is not
// one (too long, or broken by a control other than its terminator) and
// -1 when b ends first.
func stringEnd(b []byte) (payload, end int) {
	for k := 2; k < len(b) && k < maxString; k++ {
		switch b[k] {
		case 0x07:
			return k, k + 1
		case 0x1b:
			if k+1 == len(b) {
				return 0, -1
			}
			if b[k+1] == '\\' {
				return k, k + 2
			}
			return 0, 0
		case 0x18, 0x1a: // CAN, SUB abort a sequence
			return 0, 0
		}
	}
	if len(b) < maxString {
		return 0, -1
	}
	return 0, 0
}
