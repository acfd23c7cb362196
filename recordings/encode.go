package recordings

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/bastion-dev/bastion/internal/jsonenc"
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

// appendString appends s as a JSON string with jsonenc.Printable: UTF-8
// as is; control characters, DEL, C1 controls and U+2028/9 \u-escaped
// (the spec asks for non-printable code points to be escaped); each byte
// that is not valid UTF-8 becomes U+FFFD, as encoding/json does.
func appendString(b, s []byte) []byte { return jsonenc.Printable.Append(b, s) }

// appendStr is appendString for a string, without copying it.
func appendStr(b []byte, s string) []byte { return jsonenc.Printable.AppendString(b, s) }

// special8 and hi8 are the fast path of appendString, which encode_test.go
// checks byte by byte.
func special8(x uint64) uint64 { return jsonenc.Special8(x) }

const hi8 = jsonenc.Hi8

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
