package pgproxy

import (
	"bytes"
	"encoding/binary"

	"github.com/jackc/pgx/v5/pgproto3"
	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// COPY ... TO STDOUT sends rows without a RowDescription, one CopyData
// message per row. Column masking applies to them as to result rows: the
// COPY statement names a table (and maybe columns, judged by the catalog)
// or a query (judged like any statement, see taint.go), and each masked
// field of each row is replaced whole, in the text, CSV and binary
// formats alike. The masker then reads the whole row, as before.

// copyPlan is how the rows of one COPY TO STDOUT are masked.
type copyPlan struct {
	format byte   // 't' text, 'c' CSV, 'b' binary
	delim  byte   // text and CSV
	quote  byte   // CSV
	escape byte   // CSV
	header bool   // CSV: the first row holds column names
	masked []bool // by field
	repl   [][]byte
	rows   int // rows seen
}

// describeCopy plans the masking of a COPY's rows, for the statement
// ref names; nil when nothing is masked. Relay loop, without mu.
func (s *session) describeCopy(m *pgproto3.CopyOutResponse, ref stmtRef) *copyPlan {
	s.resetOrigins()
	n := len(m.ColumnFormatCodes)
	plan := &copyPlan{format: 't', delim: '\t', quote: '"', escape: 0, masked: make([]bool, n)}
	if m.OverallFormat == 1 {
		plan.format = 'b'
	}
	var names []string
	cs := s.copyStatement(ref)
	if cs == nil {
		fill(plan.masked, true) // not the statement we expected: fail closed
	} else {
		plan.options(cs)
		names = s.copyColumns(cs, plan.masked)
	}
	anyMasked := false
	plan.repl = make([][]byte, n)
	for i := range plan.masked {
		name := "column"
		if i < len(names) && names[i] != "" {
			name = names[i]
		}
		if !plan.masked[i] && i < len(names) && s.columnRule([]byte(name)) {
			plan.masked[i] = true
		}
		if plan.masked[i] {
			anyMasked = true
			plan.repl[i] = []byte("[MASKED:" + copySafe(name) + "]")
		}
	}
	if !anyMasked {
		return nil
	}
	if plan.escape == 0 {
		plan.escape = plan.quote
	}
	return plan
}

// copyStatement finds the COPY statement ref names.
func (s *session) copyStatement(ref stmtRef) *pg_query.CopyStmt {
	if !ref.ok {
		return nil
	}
	tree, err := pg_query.Parse(ref.text)
	if err != nil || ref.index >= len(tree.Stmts) {
		return nil
	}
	return tree.Stmts[ref.index].Stmt.GetCopyStmt()
}

// options reads FORMAT, DELIMITER, QUOTE, ESCAPE and HEADER.
func (p *copyPlan) options(cs *pg_query.CopyStmt) {
	for _, o := range cs.Options {
		d := o.GetDefElem()
		if d == nil {
			continue
		}
		val := d.Arg.GetString_().GetSval()
		switch d.Defname {
		case "format":
			switch val {
			case "csv":
				p.format, p.delim = 'c', ','
			case "binary":
				p.format = 'b'
			}
		case "delimiter":
			if len(val) == 1 {
				p.delim = val[0]
			}
		case "quote":
			if len(val) == 1 {
				p.quote = val[0]
			}
		case "escape":
			if len(val) == 1 {
				p.escape = val[0]
			}
		case "header":
			b, ok := parseBoolSetting(val)
			p.header = d.Arg == nil || d.Arg.GetBoolean().GetBoolval() || (ok && b) || val == "match"
		}
	}
	// A delimiter option given before FORMAT csv still holds.
	for _, o := range cs.Options {
		if d := o.GetDefElem(); d != nil && d.Defname == "delimiter" {
			if v := d.Arg.GetString_().GetSval(); len(v) == 1 {
				p.delim = v[0]
			}
		}
	}
}

// copyColumns sets which fields are masked and returns their names.
func (s *session) copyColumns(cs *pg_query.CopyStmt, masked []bool) []string {
	if cs.Query != nil {
		a := &analyzer{r: s}
		cols := a.statementColumns(cs.Query, nil)
		mapColumns(cols, masked)
		names := make([]string, len(cols))
		for i, c := range cols {
			names[i] = c.name
		}
		if hasStar(cols) {
			names = nil
		}
		return names
	}
	rel := cs.Relation
	if rel == nil {
		fill(masked, true)
		return nil
	}
	cols, _, ok := s.relation(rel.Schemaname, rel.Relname)
	if !ok {
		fill(masked, true) // an unknown relation: fail closed
		return nil
	}
	var names []string
	if len(cs.Attlist) > 0 {
		for _, a := range cs.Attlist {
			names = append(names, a.GetString_().GetSval())
		}
	} else {
		for _, c := range cols {
			if c.name != "" { // dropped columns are not copied
				names = append(names, c.name)
			}
		}
	}
	if len(names) != len(masked) {
		fill(masked, true)
		return names
	}
	for i, name := range names {
		for _, c := range cols {
			if c.name == name {
				masked[i] = c.taint
			}
		}
	}
	return names
}

// copySafe keeps a column name from breaking the COPY format it is
// written into.
func copySafe(name string) string {
	b := []byte(name)
	for i, c := range b {
		if !identByte(c) || c >= 0x80 {
			b[i] = '_'
		}
	}
	return string(b)
}

// maskCopyRow masks the fields of one CopyData message.
func (p *copyPlan) maskCopyRow(data []byte) []byte {
	p.rows++
	switch p.format {
	case 'b':
		return p.maskBinaryRow(data)
	case 'c':
		if p.header && p.rows == 1 {
			return data
		}
		return p.maskCSVRow(data)
	}
	return p.maskTextRow(data)
}

// maskTextRow: fields end at the delimiter, which a value never holds
// raw (text format escapes it), the row at the newline.
func (p *copyPlan) maskTextRow(data []byte) []byte {
	body, eol := splitEOL(data)
	fields := bytes.Split(body, []byte{p.delim})
	changed := false
	for i := range fields {
		if i < len(p.masked) && p.masked[i] && !bytes.Equal(fields[i], []byte(`\N`)) {
			fields[i], changed = p.repl[i], true
		}
	}
	if !changed {
		return data
	}
	return append(bytes.Join(fields, []byte{p.delim}), eol...)
}

func splitEOL(data []byte) (body, eol []byte) {
	switch {
	case bytes.HasSuffix(data, []byte("\r\n")):
		return data[:len(data)-2], data[len(data)-2:]
	case bytes.HasSuffix(data, []byte("\n")):
		return data[:len(data)-1], data[len(data)-1:]
	}
	return data, nil
}

// maskCSVRow: a field is quoted when it starts with the quote byte; inside,
// the escape byte before a quote is a literal quote. A row is one message
// even with newlines in quoted fields.
func (p *copyPlan) maskCSVRow(data []byte) []byte {
	body, eol := splitEOL(data)
	var out []byte
	field, start, changed := 0, 0, false
	emit := func(end int) {
		v := body[start:end]
		if field < len(p.masked) && p.masked[field] && len(v) > 0 {
			v, changed = p.repl[field], true
		}
		out = append(out, v...)
	}
	i := 0
	for i <= len(body) {
		if i < len(body) && body[i] == p.quote && i == start {
			// A quoted field: find its closing quote.
			j := i + 1
			for j < len(body) {
				if body[j] == p.escape && p.escape != p.quote && j+1 < len(body) {
					j += 2
					continue
				}
				if body[j] == p.quote {
					if p.escape == p.quote && j+1 < len(body) && body[j+1] == p.quote {
						j += 2
						continue
					}
					break
				}
				j++
			}
			i = j + 1
			continue
		}
		if i == len(body) || body[i] == p.delim {
			emit(min(i, len(body)))
			if i < len(body) {
				out = append(out, p.delim)
			}
			field++
			start = i + 1
		}
		i++
	}
	if !changed {
		return data
	}
	return append(out, eol...)
}

// binaryCopySignature opens a binary COPY (PostgreSQL, "COPY", File
// Formats): 11 bytes, then flags and a header extension.
var binaryCopySignature = []byte("PGCOPY\n\xff\r\n\x00")

// maskBinaryRow walks one message of a binary COPY: maybe the file
// header, then tuples (a field count, then each field's length and bytes)
// or the trailer (-1). A message that does not parse is masked whole.
func (p *copyPlan) maskBinaryRow(data []byte) []byte {
	b := data
	var out []byte
	if bytes.HasPrefix(b, binaryCopySignature) {
		if len(b) < 19 {
			return p.allMasked()
		}
		ext := int(binary.BigEndian.Uint32(b[15:19]))
		if ext < 0 || 19+ext > len(b) {
			return p.allMasked()
		}
		out = append(out, b[:19+ext]...)
		b = b[19+ext:]
	}
	for len(b) > 0 {
		if len(b) < 2 {
			return p.allMasked()
		}
		n := int16(binary.BigEndian.Uint16(b))
		out = append(out, b[:2]...)
		b = b[2:]
		if n == -1 {
			continue
		}
		for f := 0; f < int(n); f++ {
			if len(b) < 4 {
				return p.allMasked()
			}
			l := int32(binary.BigEndian.Uint32(b))
			b = b[4:]
			if l == -1 {
				out = binary.BigEndian.AppendUint32(out, 0xffffffff)
				continue
			}
			if l < 0 || int(l) > len(b) {
				return p.allMasked()
			}
			v := b[:l]
			b = b[l:]
			if f < len(p.masked) && p.masked[f] {
				v = p.repl[f]
			}
			out = binary.BigEndian.AppendUint32(out, uint32(len(v)))
			out = append(out, v...)
		}
	}
	return out
}

// allMasked replaces a message it cannot read with one marker.
func (p *copyPlan) allMasked() []byte { return []byte("[MASKED:copy]") }
