// Package jsonenc appends JSON strings without reflection, in the two
// escapings bastion writes: json.Marshal's, for the audit log (whose hash
// chain covers the exact bytes json.Marshal would give), and a printable
// one for recordings (UTF-8 as it is, for people to read). Both are RFC
// 8259 strings that decode to the same text; they differ in bytes, and a
// recording's checksum or an audit line's hash depends on every byte, so
// each caller must keep the escaping it has.
package jsonenc

import (
	"encoding/binary"
	"math/bits"
	"unicode/utf8"
	"unsafe"
)

// Escaping is one way of writing a JSON string: which bytes are copied as
// they are, and how the others are written. Marshal and Printable are the
// two bastion uses; the zero Escaping is not one of them.
type Escaping struct {
	plain   [utf8.RuneSelf]bool // ASCII bytes copied as they are
	html    bool                // '<', '>' and '&' are escaped (the fast path must stop at them)
	shortBF bool                // '\b' and '\f' as \b and \f rather than \u0008 and \u000c
	c1      bool                // U+0080 to U+009F are \u-escaped
	invalid string              // what each byte of invalid UTF-8 becomes
}

var (
	// Marshal is json.Marshal's escaping (encoding/json's appendString
	// with escapeHTML): '"', '\\' and controls escaped (\b, \f, \n, \r and
	// \t by their short forms), <, > and & as \u003c, \u003e and \u0026,
	// U+2028 and U+2029 as \u2028 and \u2029, and each byte of invalid
	// UTF-8 as the six characters \ufffd. DEL and the C1 controls are
	// copied.
	Marshal = newEscaping(`"\<>&`, 0x7f, true, true, false, `\ufffd`)

	// Printable writes UTF-8 as it is and \u-escapes what does not print:
	// controls (but \n, \r and \t, written short), DEL, the C1 controls,
	// U+2028 and U+2029; '"' and '\\' are escaped, and each byte of
	// invalid UTF-8 becomes U+FFFD itself, as the character.
	Printable = newEscaping(`"\`, 0x7e, false, false, true, "\ufffd")
)

// newEscaping copies the bytes from 0x20 to last as they are, but those in
// escaped.
func newEscaping(escaped string, last byte, html, shortBF, c1 bool, invalid string) *Escaping {
	e := &Escaping{html: html, shortBF: shortBF, c1: c1, invalid: invalid}
	for c := 0x20; c <= int(last); c++ {
		e.plain[c] = true
	}
	for _, c := range escaped {
		e.plain[c] = false
	}
	return e
}

const hexDigits = "0123456789abcdef"

// AppendString appends s to b as a JSON string, quotes included.
func (e *Escaping) AppendString(b []byte, s string) []byte {
	// s is only read: no copy.
	return e.Append(b, unsafe.Slice(unsafe.StringData(s), len(s)))
}

// Append appends s to b as a JSON string, quotes included. Runs of bytes
// that need no escaping are copied in one append.
func (e *Escaping) Append(b, s []byte) []byte {
	b = append(b, '"')
	html := e.html
	start := 0 // s[start:i] is pending, to be copied as is
	for i := 0; i < len(s); {
		// Skip eight plain bytes at a time: text is mostly runs of
		// printable ASCII. The fast path may stop at a byte that is plain
		// after all (DEL, for Marshal); the byte test below decides.
		for i+8 <= len(s) {
			x := binary.LittleEndian.Uint64(s[i:])
			m := Special8(x)
			if html {
				m |= html8(x)
			}
			if m != 0 {
				i += bits.TrailingZeros64(m) >> 3 // the first special byte
				break
			}
			i += 8
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if e.plain[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			b = e.appendEscape(b, c)
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, e.invalid...)
		case r == '\u2028' || r == '\u2029' || e.c1 && r <= 0x9f:
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

// appendEscape appends the escape of an ASCII byte that is not plain.
func (e *Escaping) appendEscape(b []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(b, '\\', c)
	case '\n':
		return append(b, '\\', 'n')
	case '\r':
		return append(b, '\\', 'r')
	case '\t':
		return append(b, '\\', 't')
	case '\b':
		if e.shortBF {
			return append(b, '\\', 'b')
		}
	case '\f':
		if e.shortBF {
			return append(b, '\\', 'f')
		}
	}
	// other controls, DEL, and <, > and & for Marshal
	return append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
}

const (
	lo8 = 0x0101010101010101
	// Hi8 is the high bit of every byte of a word.
	Hi8 = 0x8080808080808080
)

// Special8 sets the high bit of the first byte of x (little endian) that is
// not copied into a JSON string as is by Printable: below 0x20, 0x7f, 0x80
// and above, '"' and '\\'. It may also set it for bytes after that one,
// never before, so the lowest set bit finds it. Each term is a bit trick
// whose borrows and carries start only at a special byte and move to
// higher bytes: x for bytes >= 0x80, x+0x01.. for 0x7f, x-0x20.. for bytes
// below 0x20, and "some byte is zero" of x^'"' and of x^'\\'. One
// expression, so that it inlines into Append's loop. It is exported for
// the tests of recordings, which check it byte by byte.
func Special8(x uint64) uint64 {
	q, b := x^(lo8*'"'), x^(lo8*'\\')
	return (x | (x + lo8) | (x - lo8*0x20) | ((q - lo8) &^ q) | ((b - lo8) &^ b)) & Hi8
}

// html8 is Special8's term for the bytes Marshal escapes beyond it: "some
// byte is zero" of x^'<', x^'>' and x^'&', with the same guarantee (no bit
// set before the first such byte).
func html8(x uint64) uint64 {
	l, g, a := x^(lo8*'<'), x^(lo8*'>'), x^(lo8*'&')
	return (((l - lo8) &^ l) | ((g - lo8) &^ g) | ((a - lo8) &^ a)) & Hi8
}
