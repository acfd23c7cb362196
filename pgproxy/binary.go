package pgproxy

import (
	"bytes"
	"encoding/binary"

	"github.com/bastion-dev/bastion/masking"
)

// Binary result values of container types hold text too: an array of text
// (array_agg(passwd)), a record (row(passwd)), a composite or domain type
// of the user's. Their binary formats (PostgreSQL's array_send and
// record_send) give each element's type, so the text elements are masked
// in place and the container rebuilt around them; other elements are left
// as they are.

// containerOIDs are the built-in array and record types whose binary
// values are walked.
var containerOIDs = map[uint32]bool{
	2249: true, // record
	2287: true, // record[]
	1000: true, // bool[]
	1001: true, // bytea[]
	1002: true, // "char"[]
	1003: true, // name[]
	1005: true, // int2[]
	1007: true, // int4[]
	1009: true, // text[]
	1014: true, // bpchar[]
	1015: true, // varchar[]
	1016: true, // int8[]
	1021: true, // float4[]
	1022: true, // float8[]
	1231: true, // numeric[]
	143:  true, // xml[]
	199:  true, // json[]
	3807: true, // jsonb[]
	2951: true, // uuid[]
	1115: true, // timestamp[]
	1185: true, // timestamptz[]
}

// firstUserOID is PostgreSQL's FirstNormalObjectId: types from here on are
// the user's (composites, domains, enums, their arrays).
const firstUserOID = 16384

// maxBinaryDepth bounds nested containers.
const maxBinaryDepth = 16

// maskBinary masks a binary value of type oid; it returns v itself when
// nothing changed.
func maskBinary(m *masking.Masker, oid uint32, v []byte) []byte {
	return maskBinaryDepth(m, oid, v, 0)
}

func maskBinaryDepth(m *masking.Masker, oid uint32, v []byte, depth int) []byte {
	if textualOIDs[oid] {
		return m.Bytes(v)
	}
	if depth > maxBinaryDepth || (!containerOIDs[oid] && oid < firstUserOID) {
		return v
	}
	if out, ok := maskArray(m, v, depth); ok {
		return out
	}
	if out, ok := maskRecord(m, v, depth); ok {
		return out
	}
	if oid >= firstUserOID {
		// A domain over text or an enum is its text; a domain over a
		// number is a few bytes no secret pattern matches.
		return m.Bytes(v)
	}
	return v
}

// element is one element of a container: its type and bytes (nil: NULL).
type element struct {
	oid uint32
	val []byte
}

// maskArray walks array_send's format: ndim, has-null flag, element type,
// ndim (size, lower bound) pairs, then each element as length and bytes.
// ok false: v is not an array.
func maskArray(m *masking.Masker, v []byte, depth int) ([]byte, bool) {
	if len(v) < 12 {
		return nil, false
	}
	ndim := int32(binary.BigEndian.Uint32(v[0:4]))
	flags := binary.BigEndian.Uint32(v[4:8])
	elem := binary.BigEndian.Uint32(v[8:12])
	if ndim < 0 || ndim > 6 || flags > 1 || len(v) < 12+8*int(ndim) {
		return nil, false
	}
	hdr := 12 + 8*int(ndim)
	n := 1
	for d := 0; d < int(ndim); d++ {
		size := int32(binary.BigEndian.Uint32(v[12+8*d:]))
		if size < 0 || size > int32(len(v)) {
			return nil, false
		}
		n *= int(size)
		if n > len(v) {
			return nil, false
		}
	}
	if ndim == 0 {
		n = 0
	}
	elems, ok := splitElements(v[hdr:], n, func([]byte) (uint32, int) { return elem, 0 })
	if !ok {
		return nil, false
	}
	return rebuild(m, v, hdr, elems, false, depth), true
}

// maskRecord walks record_send's format: the field count, then each field
// as type OID, length and bytes. ok false: v is not a record.
func maskRecord(m *masking.Masker, v []byte, depth int) ([]byte, bool) {
	if len(v) < 4 {
		return nil, false
	}
	n := int32(binary.BigEndian.Uint32(v[0:4]))
	if n < 0 || int(n) > len(v)/8 {
		return nil, false
	}
	elems, ok := splitElements(v[4:], int(n), func(b []byte) (uint32, int) {
		if len(b) < 4 {
			return 0, -1
		}
		return binary.BigEndian.Uint32(b), 4
	})
	if !ok {
		return nil, false
	}
	return rebuild(m, v, 4, elems, true, depth), true
}

// splitElements reads exactly n elements filling b; head reads what comes
// before each element's length (a record field's OID).
func splitElements(b []byte, n int, head func([]byte) (uint32, int)) ([]element, bool) {
	elems := make([]element, 0, min(n, 64))
	for range n {
		oid, skip := head(b)
		if skip < 0 || len(b) < skip+4 {
			return nil, false
		}
		b = b[skip:]
		l := int32(binary.BigEndian.Uint32(b))
		b = b[4:]
		if l == -1 {
			elems = append(elems, element{oid: oid})
			continue
		}
		if l < 0 || int(l) > len(b) {
			return nil, false
		}
		elems = append(elems, element{oid: oid, val: b[:l:l]})
		b = b[l:]
	}
	return elems, len(b) == 0
}

// rebuild masks each element and, if one changed, writes the container
// again: the header (hdr bytes of v) and each element.
func rebuild(m *masking.Masker, v []byte, hdr int, elems []element, withOID bool, depth int) []byte {
	changed := false
	for i := range elems {
		if elems[i].val == nil {
			continue
		}
		nv := maskBinaryDepth(m, elems[i].oid, elems[i].val, depth+1)
		if !bytes.Equal(nv, elems[i].val) {
			elems[i].val, changed = nv, true
		}
	}
	if !changed {
		return v
	}
	out := append([]byte(nil), v[:hdr]...)
	for _, e := range elems {
		if withOID {
			out = binary.BigEndian.AppendUint32(out, e.oid)
		}
		if e.val == nil {
			out = binary.BigEndian.AppendUint32(out, 0xffffffff)
			continue
		}
		out = binary.BigEndian.AppendUint32(out, uint32(len(e.val)))
		out = append(out, e.val...)
	}
	return out
}
