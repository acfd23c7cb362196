package audit

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bastion-dev/bastion/internal/jsonenc"
)

// appendEvent appends the JSON encoding of e to b: the very bytes
// json.Marshal(e) returns, written without reflection. A log line's hash
// covers these bytes, and Verify and other tools re-read them, so any
// difference from encoding/json would be a different log. ok is false when
// e holds something appendEvent does not write exactly as encoding/json
// does (a Detail value of another type, a time MarshalJSON refuses...);
// the caller then encodes e with json.Marshal, which also reports the
// errors. b may hold a partial encoding then.
func appendEvent(b []byte, e *Event) ([]byte, bool) {
	b = append(b, `{"time":`...)
	b, ok := appendTime(b, e.Time)
	if !ok {
		return b, false
	}
	b = append(b, `,"type":`...)
	b = appendString(b, e.Type)
	if p := e.Identity; p != nil {
		b = append(b, `,"identity":{"kind":`...)
		b = appendString(b, string(p.Kind))
		b = append(b, `,"subject":`...)
		b = appendString(b, p.Subject)
		b = appendField(b, `,"issuer":`, p.Issuer)
		b = appendField(b, `,"sponsor":`, p.Sponsor)
		b = appendField(b, `,"task":`, p.Task)
		b = appendField(b, `,"role":`, p.Role)
		b = append(b, '}')
	}
	b = appendField(b, `,"session":`, e.Session)
	b = appendField(b, `,"source":`, e.Source)
	b = appendField(b, `,"decision":`, e.Decision)
	b = appendField(b, `,"rule":`, e.Rule)
	if len(e.Detail) > 0 {
		b = append(b, `,"detail":`...)
		if b, ok = appendMap(b, e.Detail, 0); !ok {
			return b, false
		}
	}
	if e.Seq != 0 {
		b = strconv.AppendUint(append(b, `,"seq":`...), e.Seq, 10)
	}
	b = appendField(b, `,"prev":`, e.Prev)
	b = appendField(b, `,"hash":`, e.Hash)
	return append(b, '}'), true
}

// appendField appends key (`,"name":`) and s, unless s is empty: the
// string fields are all omitempty.
func appendField(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	return appendString(append(b, key...), s)
}

// maxDepth bounds the nesting of Detail maps appendEvent writes. Deeper
// ones, and cycles, are left to json.Marshal.
const maxDepth = 8

// appendMap appends m as encoding/json does: keys sorted by their bytes.
func appendMap(b []byte, m map[string]any, depth int) ([]byte, bool) {
	if depth >= maxDepth {
		return b, false
	}
	type entry struct {
		k string
		v any
	}
	var buf [8]entry // details are small: sort them without allocating
	entries := buf[:0]
	for k, v := range m {
		entries = append(entries, entry{k, v})
	}
	slices.SortFunc(entries, func(x, y entry) int { return strings.Compare(x.k, y.k) })
	b = append(b, '{')
	for i, en := range entries {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, en.k)
		b = append(b, ':')
		var ok bool
		if b, ok = appendValue(b, en.v, depth); !ok {
			return b, false
		}
	}
	return append(b, '}'), true
}

// appendValue appends a Detail value of one of the types events carry.
// Named types fall outside the switch on purpose: they may have their own
// MarshalJSON or MarshalText.
func appendValue(b []byte, v any, depth int) ([]byte, bool) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), true
	case string:
		return appendString(b, v), true
	case bool:
		return strconv.AppendBool(b, v), true
	case int:
		return strconv.AppendInt(b, int64(v), 10), true
	case int8:
		return strconv.AppendInt(b, int64(v), 10), true
	case int16:
		return strconv.AppendInt(b, int64(v), 10), true
	case int32:
		return strconv.AppendInt(b, int64(v), 10), true
	case int64:
		return strconv.AppendInt(b, v, 10), true
	case uint:
		return strconv.AppendUint(b, uint64(v), 10), true
	case uint8:
		return strconv.AppendUint(b, uint64(v), 10), true
	case uint16:
		return strconv.AppendUint(b, uint64(v), 10), true
	case uint32:
		return strconv.AppendUint(b, uint64(v), 10), true
	case uint64:
		return strconv.AppendUint(b, v, 10), true
	case float64:
		return appendFloat(b, v, 64)
	case float32:
		return appendFloat(b, float64(v), 32)
	case []string:
		if v == nil {
			return append(b, "null"...), true
		}
		b = append(b, '[')
		for i, s := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, s)
		}
		return append(b, ']'), true
	case map[string]any:
		if v == nil {
			return append(b, "null"...), true
		}
		return appendMap(b, v, depth+1)
	case time.Time:
		return appendTime(b, v)
	}
	return b, false
}

// appendTime appends t as its MarshalJSON does (RFC 3339 with
// nanoseconds, quoted). ok is false where MarshalJSON fails.
func appendTime(b []byte, t time.Time) ([]byte, bool) {
	b = append(b, '"')
	n := len(b)
	b = t.AppendFormat(b, time.RFC3339Nano)
	// MarshalJSON's own checks (time.appendStrictRFC3339), on the same
	// bytes: a year of exactly four digits, and a zone offset under 24h.
	if b[n+len("9999")] != '-' {
		return b, false
	}
	if b[len(b)-1] != 'Z' {
		c := b[len(b)-len("Z07:00")]
		h := b[len(b)-len("07:00"):]
		if '0' <= c && c <= '9' || 10*(h[0]-'0')+(h[1]-'0') >= 24 {
			return b, false
		}
	}
	return append(b, '"'), true
}

// appendFloat appends f as encoding/json's floatEncoder does (like ES6:
// %f, or %e without a padded exponent for very small or large values).
// bits is 32 for a float32. ok is false for NaN and infinities, which
// encoding/json refuses.
func appendFloat(b []byte, f float64, bits int) ([]byte, bool) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return b, false
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	n := len(b)
	b = strconv.AppendFloat(b, f, format, -1, bits)
	if format == 'e' {
		// e-09 becomes e-9.
		s := b[n:]
		if k := len(s); k >= 4 && s[k-4] == 'e' && s[k-3] == '-' && s[k-2] == '0' {
			s[k-2] = s[k-1]
			b = b[:len(b)-1]
		}
	}
	return b, true
}

// appendString appends s as a JSON string the way json.Marshal does
// (jsonenc.Marshal: HTML characters, U+2028/9 and invalid UTF-8 escaped).
func appendString(b []byte, s string) []byte { return jsonenc.Marshal.AppendString(b, s) }
