package masking

import "bytes"

// Kubernetes Secret data: the values under data: and stringData: of an
// object whose kind is Secret, as printed by kubectl get secret -o yaml or
// -o json (data comes before kind there, so the block is held until the
// kind is known). Only the values are masked; keys stay readable.
//
// When the kind cannot be learnt because the start of the object has left
// the look-behind window and no kind: follows, the values are masked (fail
// closed).

type verdict int

const (
	vTrunc  verdict = iota // ran out of look-behind before the object's start
	vSecret                // kind: Secret
	vOther                 // another kind, or not an object's data at all
	vNone                  // the object ends without a kind
	vMore                  // the object continues past the input: wait
)

// decide combines what was found before and after a data block.
func decide(s *scanner, mark int, i int, before func() verdict, after func() verdict) {
	v := before()
	if v == vNone || v == vTrunc {
		switch a := after(); a {
		case vNone:
			if v == vTrunc {
				v = vSecret // fail closed: the kind may have scrolled away
			} else {
				v = vOther
			}
		default:
			v = a
		}
	}
	switch v {
	case vMore:
		s.ms = s.ms[:mark]
		s.more(i)
	case vOther, vNone:
		s.ms = s.ms[:mark]
	}
}

// kube handles a data: or stringData: key ending at ke; i is its colon.
func (s *scanner) kube(i, ks, ke int) {
	t := s.t
	if ke < i {
		if (t[ke] == '"' || t[ke] == '\\') && ks > 0 && t[ks-1] == '"' {
			s.kubeJSON(i, ks, t[ke] == '\\')
		}
		return
	}
	ls := ks
	for ls > 0 && t[ls-1] == ' ' {
		ls--
	}
	if ls > 0 && t[ls-1] != '\n' {
		return
	}
	indent := ks - ls
	if indent > 64 {
		return
	}
	k := i + 1
	for k < len(t) && t[k] == ' ' {
		k++
	}
	if k < len(t) && t[k] == '\r' {
		k++
	}
	if k == len(t) {
		if !s.final {
			s.more(i)
		}
		return
	}
	if t[k] != '\n' {
		return
	}
	mark := len(s.ms)
	end, ok := s.yamlBlock(k+1, indent)
	if !ok {
		s.ms = s.ms[:mark]
		s.more(i)
		return
	}
	if len(s.ms) == mark {
		return // no values
	}
	decide(s, mark, i,
		func() verdict { return s.yamlKindBefore(ls, indent) },
		func() verdict { return s.yamlKindAfter(end, indent) })
}

// line returns the line starting at p: the index of its first non-blank
// byte (after a "- " list marker, which counts as indentation), its end
// without "\r", the index of the next line, and whether the line is
// complete.
func (s *scanner) line(p int) (q, e, next int, item, ok bool) {
	t := s.t
	q = p
	for q < len(t) && t[q] == ' ' {
		q++
	}
	if q+1 < len(t) && t[q] == '-' && t[q+1] == ' ' {
		item = true
		q += 2
		for q < len(t) && t[q] == ' ' {
			q++
		}
	}
	n := bytes.IndexByte(t[q:], '\n')
	if n < 0 {
		if !s.final {
			return q, len(t), len(t), item, false
		}
		e = len(t)
		next = len(t)
	} else {
		e = q + n
		next = e + 1
	}
	if e > q && t[e-1] == '\r' {
		e--
	}
	return q, e, next, item, true
}

// yamlBlock adds a finding for every value of the block mapping that
// starts at p and is indented deeper than indent. It returns the index
// where the block ends; ok is false if the block may continue past t.
func (s *scanner) yamlBlock(p, indent int) (end int, ok bool) {
	t := s.t
	scalar := -1 // lines deeper than this belong to a block scalar
	for {
		if p >= len(t) {
			return p, s.final
		}
		q, e, next, _, ok := s.line(p)
		if !ok {
			return p, false
		}
		if q == e {
			p = next
			continue
		}
		ind := q - p
		if ind <= indent || bytes.HasPrefix(t[q:e], []byte("---")) {
			return p, true
		}
		if scalar >= 0 && ind > scalar {
			s.add(q, e, kKubeSecret)
			p = next
			continue
		}
		scalar = -1
		c := bytes.Index(t[q:e], []byte(": "))
		if c < 0 {
			if t[e-1] == ':' {
				p = next // a key whose value is on the next lines
				continue
			}
			s.add(q, e, kKubeSecret) // unexpected: fail closed
			p = next
			continue
		}
		vs := q + c + 2
		for vs < e && t[vs] == ' ' {
			vs++
		}
		v := t[vs:e]
		switch string(v) {
		case "|", "|-", "|+", ">", ">-", ">+":
			scalar = ind
		case "", `""`, "''":
		default:
			if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
				s.add(vs+1, e-1, kKubeSecret)
			} else {
				s.add(vs, e, kKubeSecret)
			}
		}
		p = next
	}
}

// yamlKind reads "kind: X" in t[q:e].
func yamlKind(l []byte) verdict {
	v, ok := bytes.CutPrefix(l, []byte("kind:"))
	if !ok {
		return vNone
	}
	v = bytes.Trim(v, ` "'`)
	if string(v) == "Secret" {
		return vSecret
	}
	return vOther
}

// yamlKindBefore looks for the kind among the keys that precede the data
// key at indentation indent, in the same object.
func (s *scanner) yamlKindBefore(ls, indent int) verdict {
	t := s.t
	e := ls - 1 // the newline ending the previous line
	lim := max(0, ls-lookBehind)
	for e > lim {
		b := lim + bytes.LastIndexByte(t[lim:e], '\n') + 1
		if b == lim && lim > 0 {
			break // the line starts before the window
		}
		line := bytes.TrimRight(t[b:e], "\r")
		e = b - 1
		q := 0
		for q < len(line) && line[q] == ' ' {
			q++
		}
		if q == len(line) {
			continue
		}
		item := false
		if q+1 < len(line) && line[q] == '-' && line[q+1] == ' ' {
			item = true
			q += 2
		}
		if q < indent || bytes.HasPrefix(line, []byte("---")) {
			return vNone // the object started without a kind
		}
		if q == indent {
			if v := yamlKind(line[q:]); v != vNone {
				return v
			}
			if item {
				return vNone
			}
		}
		if b == 0 {
			break
		}
	}
	if e <= 0 && s.streamStart {
		return vNone // reached the start of the stream
	}
	return vTrunc
}

// lookBehind bounds how far the kind of an object is looked for before a
// data block: less than the look-behind a Writer keeps (keepContext) by a
// margin for the key and its indentation, so that a stream and a whole
// buffer decide alike. kubeScan bounds the search after the block.
const lookBehind = keepContext - 128

const kubeScan = 16 << 10

// yamlKindAfter looks for the kind among the keys that follow the data
// block.
func (s *scanner) yamlKindAfter(p, indent int) verdict {
	t := s.t
	lim := p + kubeScan
	for p < len(t) {
		if p > lim {
			return vNone
		}
		q, e, next, item, ok := s.line(p)
		if !ok {
			break
		}
		if q < e {
			if q-p < indent || (item && q-p == indent) || bytes.HasPrefix(t[q:e], []byte("---")) {
				return vNone
			}
			if q-p == indent {
				if v := yamlKind(t[q:e]); v != vNone {
					return v
				}
			}
		}
		p = next
	}
	if s.final {
		return vNone
	}
	return vMore
}

// kubeJSON handles "data": { ... } in JSON; esc marks the \"-quoted form
// of JSON embedded in a JSON string (the last-applied-configuration
// annotation).
func (s *scanner) kubeJSON(i, ks int, esc bool) {
	t := s.t
	k := i + 1
	for k < len(t) && (t[k] == ' ' || t[k] == '\t' || t[k] == '\r' || t[k] == '\n') {
		k++
	}
	if k == len(t) {
		if !s.final {
			s.more(i)
		}
		return
	}
	if t[k] != '{' {
		return
	}
	j := jsonReader{t: t, esc: esc}
	mark := len(s.ms)
	end, st := j.object(s, k+1)
	if st == vSecret && len(s.ms) == mark {
		return // no values
	}
	if st == vMore {
		s.ms = s.ms[:mark]
		if !s.final {
			s.more(i)
		}
		return
	}
	if st == vOther {
		s.ms = s.ms[:mark]
		return
	}
	open := ks - 1
	if esc {
		open--
	}
	decide(s, mark, i,
		func() verdict { return j.kindBefore(s, open) },
		func() verdict { return j.kindAfter(s, end) })
}

// jsonReader reads the few JSON shapes kubeJSON needs. With esc, strings
// are delimited by \" because the JSON is itself inside a JSON string.
type jsonReader struct {
	t   []byte
	esc bool
}

// str reads a string whose opening quote is at p; it returns the content
// bounds and the index after the closing quote, or ok false at the end of t.
func (j jsonReader) str(p int) (cs, ce, next int, ok bool) {
	t := j.t
	if j.esc {
		cs = p + 2
		n := bytes.Index(t[cs:], []byte(`\"`))
		if n < 0 {
			return 0, 0, 0, false
		}
		return cs, cs + n, cs + n + 2, true
	}
	cs = p + 1
	for k := cs; k < len(t); k++ {
		switch t[k] {
		case '\\':
			k++
		case '"':
			return cs, k, k + 1, true
		}
	}
	return 0, 0, 0, false
}

func (j jsonReader) quoteAt(p int) bool {
	if j.esc {
		return p+1 < len(j.t) && j.t[p] == '\\' && j.t[p+1] == '"'
	}
	return p < len(j.t) && j.t[p] == '"'
}

func (j jsonReader) skipSpace(p int) int {
	for p < len(j.t) {
		switch j.t[p] {
		case ' ', '\t', '\r', '\n':
			p++
		default:
			return p
		}
	}
	return p
}

// object reads the members of the data object starting after its '{' and
// adds a finding for each string value. It returns the index after '}'.
func (j jsonReader) object(s *scanner, p int) (int, verdict) {
	t := j.t
	lim := p + kubeScan
	for {
		if p > lim {
			return p, vOther
		}
		p = j.skipSpace(p)
		if p < len(t) && t[p] == ',' {
			p++
			continue
		}
		if p >= len(t) {
			return p, vMore
		}
		if t[p] == '}' {
			return p + 1, vSecret
		}
		if !j.quoteAt(p) {
			if p+1 == len(t) {
				return p, vMore
			}
			return p, vOther
		}
		_, _, next, ok := j.str(p)
		if !ok {
			return p, vMore
		}
		p = j.skipSpace(next)
		if p >= len(t) {
			return p, vMore
		}
		if t[p] != ':' {
			return p, vOther
		}
		p = j.skipSpace(p + 1)
		if p >= len(t) {
			return p, vMore
		}
		if j.quoteAt(p) {
			cs, ce, next, ok := j.str(p)
			if !ok {
				return p, vMore
			}
			s.add(cs, ce, kKubeSecret)
			p = next
			continue
		}
		// Secret data values are strings; allow null and numbers.
		for p < len(t) && t[p] != ',' && t[p] != '}' {
			if t[p] == '{' || t[p] == '[' || t[p] == '"' || p > lim {
				return p, vOther
			}
			p++
		}
	}
}

// kindAfter scans the rest of the enclosing object from p for "kind".
func (j jsonReader) kindAfter(s *scanner, p int) verdict {
	t := j.t
	depth := 0
	lim := p + kubeScan
	for p < len(t) {
		if p > lim {
			return vNone
		}
		switch {
		case j.quoteAt(p):
			cs, ce, next, ok := j.str(p)
			if !ok {
				return j.more(s)
			}
			p = next
			if depth != 0 || string(t[cs:ce]) != "kind" {
				continue
			}
			p = j.skipSpace(p)
			if p < len(t) && t[p] == ':' {
				p = j.skipSpace(p + 1)
			}
			if p >= len(t) || !j.quoteAt(p) {
				if p >= len(t) {
					return j.more(s)
				}
				continue
			}
			cs, ce, next, ok = j.str(p)
			if !ok {
				return j.more(s)
			}
			if string(t[cs:ce]) == "Secret" {
				return vSecret
			}
			return vOther
		case t[p] == '{' || t[p] == '[':
			depth++
		case t[p] == '}' || t[p] == ']':
			depth--
			if depth < 0 {
				return vNone
			}
		}
		p++
	}
	return j.more(s)
}

func (j jsonReader) more(s *scanner) verdict {
	if s.final {
		return vNone
	}
	return vMore
}

// kindBefore finds the '{' that opens the object holding the data key
// (before open) and scans its members up to the data key for "kind".
func (j jsonReader) kindBefore(s *scanner, open int) verdict {
	t := j.t
	depth := 0
	for p := open - 1; p >= max(0, open-lookBehind); p-- {
		switch t[p] {
		case '}', ']':
			depth++
		case '[':
			depth--
		case '{':
			if depth == 0 {
				sub := jsonReader{t: t[:open], esc: j.esc}
				switch v := sub.kindAfter(s, p+1); v {
				case vSecret, vOther:
					return v
				}
				return vNone
			}
			depth--
		}
	}
	if s.streamStart && open <= lookBehind {
		return vNone
	}
	return vTrunc
}
