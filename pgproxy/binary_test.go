package pgproxy

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/bastion-dev/bastion/masking"
)

// binArray encodes a one-dimensional array as array_send does; a nil
// element is NULL.
func binArray(elem uint32, elems ...[]byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, 1)
	hasNull := uint32(0)
	for _, e := range elems {
		if e == nil {
			hasNull = 1
		}
	}
	b = binary.BigEndian.AppendUint32(b, hasNull)
	b = binary.BigEndian.AppendUint32(b, elem)
	b = binary.BigEndian.AppendUint32(b, uint32(len(elems)))
	b = binary.BigEndian.AppendUint32(b, 1)
	return appendElems(b, elems, nil)
}

// binRecord encodes a record as record_send does.
func binRecord(oids []uint32, vals ...[]byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(vals)))
	return appendElems(b, vals, oids)
}

func appendElems(b []byte, elems [][]byte, oids []uint32) []byte {
	for i, e := range elems {
		if oids != nil {
			b = binary.BigEndian.AppendUint32(b, oids[i])
		}
		if e == nil {
			b = binary.BigEndian.AppendUint32(b, 0xffffffff)
			continue
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(e)))
		b = append(b, e...)
	}
	return b
}

func TestMaskBinary(t *testing.T) {
	t.Parallel()
	m := masking.Default()
	secret := []byte("tok " + fakeGitHubToken)
	masked := m.Bytes(secret)
	int4 := []byte{0, 0, 0, 7}
	cases := []struct {
		name string
		oid  uint32
		in   []byte
		want []byte // nil: unchanged
	}{
		{"text array", 1009, binArray(25, []byte("a"), secret, nil), binArray(25, []byte("a"), masked, nil)},
		{"clean text array", 1009, binArray(25, []byte("a"), []byte("b")), nil},
		{"int array", 1007, binArray(23, int4, int4), nil},
		{"empty array", 1009, binary.BigEndian.AppendUint32(make([]byte, 8), 25), nil},
		{"record", 2249, binRecord([]uint32{23, 25}, int4, secret), binRecord([]uint32{23, 25}, int4, masked)},
		{"array of records", 2287, binArray(2249, binRecord([]uint32{25}, secret)), binArray(2249, binRecord([]uint32{25}, masked))},
		{"user composite", 70000, binRecord([]uint32{1043}, secret), binRecord([]uint32{1043}, masked)},
		{"user domain over text", 70001, secret, masked},
		{"not an array", 1009, []byte("\x00\x00\x00\x01" + fakeGitHubToken), nil},
		{"truncated", 1009, binArray(25, secret)[:20], nil},
		{"integer", 23, int4, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			want := tc.want
			if want == nil {
				want = tc.in
			}
			if got := maskBinary(m, tc.oid, tc.in); !bytes.Equal(got, want) {
				t.Errorf("got %q\nwant %q", got, want)
			}
		})
	}
}

// FuzzMaskBinary: arbitrary bytes of any container type never panic, and
// a well-formed text array with the token never keeps it.
func FuzzMaskBinary(f *testing.F) {
	f.Add(uint32(1009), binArray(25, []byte("x"), nil))
	f.Add(uint32(2249), binRecord([]uint32{25, 23}, []byte("x"), []byte{0, 0, 0, 1}))
	f.Add(uint32(70000), []byte{0, 0, 0, 1, 0, 0, 0, 25, 0, 0, 0, 1, 'x'})
	m := masking.Default()
	f.Fuzz(func(t *testing.T, oid uint32, v []byte) {
		maskBinary(m, oid, v)
		arr := binArray(25, v, []byte(fakeGitHubToken))
		if bytes.Contains(maskBinary(m, 1009, arr), []byte(fakeGitHubToken)) {
			t.Fatalf("token kept in %q", arr)
		}
	})
}
