package masking

import (
	"bytes"
	"slices"
)

// Terminal escape sequences (ECMA-48) are removed from the text the rules
// see, so that "ghp_\x1b[01;31m\x1b[Kabc..." as printed by grep --color is
// still one token. Removed are CSI sequences (ESC [ ... final byte) and the
// short ESC sequences (ESC 7, ESC =, ESC ( B). String sequences (OSC, DCS,
// APC, PM, SOS) are left in place: their payload, such as an OSC 8
// hyperlink, is scanned like any text, and their ESC and terminator are not
// token characters, so they separate tokens.

const maxCSI = 64

// strip appends raw[i:] without removable escape sequences to clean and
// the index in raw of each appended byte to pos. limit is where an
// unfinished sequence at the end of raw starts; it is len(raw) when there
// is none, or when final (an unfinished sequence is then plain text).
func strip(raw []byte, i int, clean []byte, pos []int32, final bool) (_ []byte, _ []int32, limit int) {
	clean = slices.Grow(clean, len(raw)-i)
	pos = slices.Grow(pos, len(raw)-i)
	keep := func(j int) {
		clean = append(clean, raw[i:j]...)
		n := len(pos)
		pos = pos[:n+j-i]
		for k := range pos[n:] {
			pos[n+k] = int32(i + k)
		}
		i = j
	}
	for i < len(raw) {
		j := bytes.IndexByte(raw[i:], 0x1b)
		if j < 0 {
			keep(len(raw))
			break
		}
		keep(i + j)
		n := escLen(raw[i:])
		switch {
		case n < 0 && !final:
			return clean, pos, i
		case n <= 0:
			keep(i + 1) // not a removable sequence: ESC stays as text
		default:
			i += n
		}
	}
	return clean, pos, len(raw)
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
	case c == ']' || c == 'P' || c == 'X' || c == '^' || c == '_' || c == '\\':
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
