package recordings

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math/bits"
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// marker is the JSON label of bastion's own "m" events. Fields are
// omitted when empty so each type carries only its own.
type marker struct {
	Type     string   `json:"type"`
	N        int      `json:"n,omitempty"`
	Cmd      string   `json:"cmd,omitempty"`
	Decision string   `json:"decision,omitempty"`
	Rule     string   `json:"rule,omitempty"`
	Exit     *int     `json:"exit,omitempty"`
	Duration *float64 `json:"duration,omitempty"`
	Commands *int     `json:"commands,omitempty"`
	checkpoint
}

// checkpoint vouches for every line before the marker that carries it.
type checkpoint struct {
	Lines  int    `json:"lines,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	Sig    string `json:"sig,omitempty"`
}

// Marker types bastion writes. Marker refuses labels that claim one of
// them, so a caller passing user text cannot forge a seal.
const (
	markCommand = "command"
	markExit    = "exit"
	markEnd     = "end"
	markSeal    = "seal"
)

// signedMessage is what a checkpoint's signature covers. The marker type is
// part of it so that a command checkpoint's signature cannot be replayed as
// a seal on a truncated copy.
func signedMessage(typ string, lines int, sum string) []byte {
	return []byte("bastion-recording-v1 " + typ + " lines=" + strconv.Itoa(lines) + " sha256=" + sum)
}

// compactJSON encodes v without HTML escaping (labels are read by people).
func compactJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// appendEvent appends the line [t, "code", "data"] (no newline) the way
// asciinema writes it.
func appendEvent(b []byte, t float64, code string, data []byte) []byte {
	b = append(b, '[')
	b = strconv.AppendFloat(b, t, 'f', 6, 64)
	b = append(b, ", \""...)
	b = append(b, code...)
	b = append(b, "\", "...)
	b = appendString(b, data)
	return append(b, ']')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. UTF-8 is written as is; control
// characters, DEL, C1 controls and U+2028/9 are \u-escaped (the spec asks
// for non-printable code points to be escaped); each byte that is not
// valid UTF-8 becomes U+FFFD, as encoding/json does.
func appendString(b, s []byte) []byte {
	b = append(b, '"')
	start := 0 // s[start:i] is pending, to be copied as is
	for i := 0; i < len(s); {
		// Skip eight plain bytes at a time: text output is mostly runs of
		// printable ASCII between newlines.
		for i+8 <= len(s) {
			if m := special8(binary.LittleEndian.Uint64(s[i:])); m != 0 {
				i += bits.TrailingZeros64(m) >> 3 // the first special byte
				break
			}
			i += 8
		}
		if i >= len(s) {
			break
		}
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
			default: // other controls and DEL
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

// appendStr is appendString for a string, without copying it.
func appendStr(b []byte, s string) []byte {
	return appendString(b, unsafe.Slice(unsafe.StringData(s), len(s)))
}

const (
	lo8 = 0x0101010101010101
	hi8 = 0x8080808080808080
)

// special8 sets the high bit of the first byte of x (little endian) that is
// not copied into a JSON string as is: below 0x20, 0x7f, 0x80 and above, '"'
// and '\\'. It may also set it for bytes after that one, never before, so
// the lowest set bit finds it. Each term is a bit trick whose borrows and
// carries start only at a special byte and move to higher bytes: x for
// bytes >= 0x80, x+0x01.. for 0x7f, x-0x20.. for bytes below 0x20, and
// "some byte is zero" of x^'"' and of x^'\\'. One expression, so that it
// inlines into appendString's loop.
func special8(x uint64) uint64 {
	q, b := x^(lo8*'"'), x^(lo8*'\\')
	return (x | (x + lo8) | (x - lo8*0x20) | ((q - lo8) &^ q) | ((b - lo8) &^ b)) & hi8
}

// incompleteTail returns how many bytes at the end of p are the start of a
// UTF-8 sequence that the next write may complete (0 to 3).
func incompleteTail(p []byte) int {
	for i := 1; i <= utf8.UTFMax-1 && i <= len(p); i++ {
		c := p[len(p)-i]
		if c < utf8.RuneSelf {
			return 0
		}
		if utf8.RuneStart(c) {
			if !utf8.FullRune(p[len(p)-i:]) {
				return i
			}
			return 0
		}
	}
	return 0
}
