package pgproxy

import (
	"path"
	"strings"
	"unsafe"

	"github.com/jackc/pgx/v5/pgproto3"
)

// column is how one result column is masked.
type column struct {
	rule bool   // a column rule matches the column or its origin: replace whole values
	repl []byte // "[MASKED:<name>]"
	text bool   // values are text the masker can read
	walk bool   // binary values of a container type: see maskBinary
	oid  uint32 // the column's type
}

// Type OIDs whose binary format is the text itself (or, for jsonb, a
// version byte and the text); their binary values still go through the
// masker. Arrays, records and the user's types are walked for textual
// elements (see maskBinary). Other binary values (integers, timestamps)
// would only be corrupted by text substitution: they get the column rules
// only.
var textualOIDs = map[uint32]bool{
	17:   true, // bytea: raw bytes, often text
	18:   true, // "char"
	19:   true, // name
	25:   true, // text
	114:  true, // json
	142:  true, // xml
	705:  true, // unknown
	1042: true, // bpchar
	1043: true, // varchar
	3802: true, // jsonb
}

// maskNames masks the column names the client sees (a name can be a
// secret the server produced, e.g. from crosstab). How the values are
// masked was decided by describeColumns.
func (s *session) maskNames(m *pgproto3.RowDescription) {
	for i := range m.Fields {
		m.Fields[i].Name = s.masker.Bytes(m.Fields[i].Name)
	}
}

// maskRow masks a DataRow in place and returns how many values it
// changed. NULLs stay NULL. Values beyond the known columns (no
// description seen) are treated as text.
func (s *session) maskRow(m *pgproto3.DataRow) (masked int) {
	for i, v := range m.Values {
		if v == nil {
			continue
		}
		var nv []byte
		switch {
		case i >= len(s.cols):
			nv = s.masker.Bytes(v)
		case s.cols[i].rule:
			nv = s.cols[i].repl
		case s.cols[i].text:
			nv = s.masker.Bytes(v)
		case s.cols[i].walk:
			nv = maskBinary(s.masker, s.cols[i].oid, v)
		default:
			continue
		}
		if changed(v, nv) {
			m.Values[i] = nv
			masked++
		}
	}
	return masked
}

// changed reports whether the masker returned other bytes than it was
// given (it returns its input when nothing matched).
func changed(v, nv []byte) bool {
	return len(v) != len(nv) || len(v) > 0 && unsafe.SliceData(v) != unsafe.SliceData(nv)
}

// maskNotice masks the free-text fields of an ErrorResponse or
// NoticeResponse: a unique violation's Detail quotes the duplicate value.
func (s *session) maskNotice(m *pgproto3.ErrorResponse) {
	m.Message = s.masker.String(m.Message)
	m.Detail = s.masker.String(m.Detail)
	m.Hint = s.masker.String(m.Hint)
	m.Where = s.masker.String(m.Where)
	m.InternalQuery = s.masker.String(m.InternalQuery)
	for k, v := range m.UnknownFields {
		m.UnknownFields[k] = s.masker.String(v)
	}
}

// maxRuleSeen bounds the column names a session remembers rule matches for.
const maxRuleSeen = 1024

// columnRule reports whether a column rule matches name. A session sees
// the same columns again and again: the answer is remembered. Relay loop
// only.
func (s *session) columnRule(name []byte) bool {
	if r, ok := s.ruleSeen[string(name)]; ok {
		return r
	}
	r := matchRule(s.rules, string(name))
	if s.ruleSeen == nil || len(s.ruleSeen) >= maxRuleSeen {
		s.ruleSeen = make(map[string]bool)
	}
	s.ruleSeen[string(name)] = r
	return r
}

func matchRule(rules []string, name string) bool {
	if len(rules) == 0 {
		return false
	}
	name = strings.ToLower(name)
	for _, r := range rules {
		if ok, _ := path.Match(r, name); ok {
			return true
		}
	}
	return false
}

func lowerAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToLower(s)
	}
	return out
}
