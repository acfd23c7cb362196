package shellpolicy

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/syntax"
)

// field is one word of a command after quote removal, variable resolution,
// word splitting and brace expansion: what the program will see in argv.
type field struct {
	s     string // the value; unknown text as markAny or markTok
	disp  string // the value for people: unknown parts as "…" or as written
	pat   string // s as a glob pattern, set when glob
	glob  bool   // has active (unquoted) glob characters
	dyn   bool   // has markAny: the value may be anything
	multi bool   // an unquoted unknown expansion: may be several words
	// expanded: some of the value came from an expansion ($X, $(pwd), ~,
	// {a,b}) even if bastion knows it; as a command name that is never
	// allowed without a human (see ruleIndirect)
	expanded bool
	proc     *syntax.ProcSubst // the word is exactly one process substitution
}

func (f *field) unknown() bool { return f.dyn || strings.ContainsRune(f.s, markTok) }
func (f *field) literal() bool { return !f.unknown() && !f.glob }

// pattern returns f as a glob pattern: active glob characters and markers
// match, everything else literally.
func (f *field) pattern() string {
	if f.glob {
		return f.pat
	}
	return escapeGlob(f.s)
}

func escapeGlob(s string) string {
	if !strings.ContainsAny(s, `*?[\`+sAny+sTok) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case markAny, markTok:
			b.WriteByte('*')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func litField(s string) field { return field{s: s, disp: s} }

// sanitize replaces the reserved marker runes (and their neighbours in the
// Unicode noncharacter block) so input can never fake resolved text.
func sanitize(s string) string {
	if !strings.Contains(s, "\xef\xb7") {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r >= 0xFDD0 && r <= 0xFDEF {
			return utf8.RuneError
		}
		return r
	}, s)
}

// maxDisp bounds how much source text an unknown part shows.
const maxDisp = 80

// fbuf is the field being built.
type fbuf struct {
	s, disp, pat   []byte
	glob, dyn, has bool
	multi          bool
	expanded       bool
	proc           *syntax.ProcSubst
}

// wstate is one way the word may expand: fields done plus the current one.
type wstate struct {
	fields []field
	cur    fbuf
}

func (st *wstate) clone() *wstate {
	c := &wstate{fields: append([]field(nil), st.fields...), cur: st.cur}
	c.cur.s = append([]byte(nil), st.cur.s...)
	c.cur.disp = append([]byte(nil), st.cur.disp...)
	c.cur.pat = append([]byte(nil), st.cur.pat...)
	return c
}

func (st *wstate) flush() {
	if st.cur.has {
		c := &st.cur
		f := field{s: string(c.s), disp: string(c.disp), glob: c.glob, dyn: c.dyn, multi: c.multi, proc: c.proc, expanded: c.expanded}
		if c.glob {
			f.pat = string(c.pat)
		}
		st.fields = append(st.fields, f)
	}
	st.cur = fbuf{}
}

// quoted adds text that is not subject to globbing or splitting.
func (st *wstate) quoted(text string) {
	c := &st.cur
	c.has = true
	for i := 0; i < len(text); i++ {
		if m := markerAt(text, i); m != 0 {
			st.marker(m, "…")
			i += 2
			continue
		}
		b := text[i]
		c.s, c.disp = append(c.s, b), append(c.disp, b)
		if b == '*' || b == '?' || b == '[' || b == '\\' {
			c.pat = append(c.pat, '\\')
		}
		c.pat = append(c.pat, b)
	}
}

// globChar adds an active glob character.
func (st *wstate) globChar(b byte) {
	c := &st.cur
	c.has, c.glob = true, true
	c.s, c.disp, c.pat = append(c.s, b), append(c.disp, b), append(c.pat, b)
}

func (st *wstate) marker(m rune, disp string) {
	c := &st.cur
	c.has = true
	c.s = utf8.AppendRune(c.s, m)
	c.disp = append(c.disp, disp...)
	c.pat = append(c.pat, '*')
	if m == markAny {
		c.dyn = true
	}
}

// markerAt returns the marker rune starting at s[i], or 0.
func markerAt(s string, i int) rune {
	if s[i] != 0xef || i+2 >= len(s) || s[i+1] != 0xb7 {
		return 0
	}
	switch s[i+2] {
	case 0x90:
		return markAny
	case 0x91:
		return markTok
	}
	return 0
}

// unquotedLit adds literal text as written outside quotes: backslash
// escapes, glob characters.
func (st *wstate) unquotedLit(v string) {
	for i := 0; i < len(v); i++ {
		switch b := v[i]; {
		case b == '\\':
			if i+1 < len(v) {
				i++
				if v[i] != '\n' {
					st.quoted(v[i : i+1])
				}
			} else {
				st.quoted(`\`)
			}
		case b == '*' || b == '?':
			st.globChar(b)
		case b == '[' && strings.IndexByte(v[i+1:], ']') >= 0:
			st.globChar(b)
		default:
			if m := markerAt(v, i); m != 0 {
				st.marker(m, "…")
				i += 2
				continue
			}
			st.quoted(v[i : i+1])
		}
	}
}

// splitValue adds the value of an unquoted expansion: split on ifs, with
// glob characters active.
func (st *wstate) splitValue(v, ifs string) {
	for i := 0; i < len(v); i++ {
		b := v[i]
		switch {
		case b < utf8.RuneSelf && strings.IndexByte(ifs, b) >= 0:
			st.flush()
			st.cur.expanded = true
		case b == '*' || b == '?' || b == '[':
			st.globChar(b)
		default:
			if m := markerAt(v, i); m != 0 {
				st.marker(m, "…")
				if m == markAny {
					st.cur.multi = true
				}
				i += 2
				continue
			}
			st.quoted(v[i : i+1])
		}
	}
}

// expander expands one word in every way it may expand.
type expander struct {
	a       *analyzer
	sc      *scope
	states  []*wstate
	noSplit bool // an assignment value or ${x:-word}: no splitting, no globbing
}

func (e *expander) each(fn func(st *wstate)) {
	for _, st := range e.states {
		fn(st)
	}
}

// unknownPart adds a part whose value is not known.
func (e *expander) unknownPart(n syntax.Node, quoted, tok bool) {
	disp := e.a.srcOf(n)
	if len(disp) > maxDisp {
		disp = shorten(disp) // $( $( $( ... ) ) ) must not copy the source at every level
	}
	e.each(func(st *wstate) {
		st.cur.expanded = true
		if tok {
			st.marker(markTok, disp)
			return
		}
		st.marker(markAny, disp)
		if !quoted && !e.noSplit {
			st.cur.multi = true
		}
	})
}

// values adds an expansion that has one of vs as value.
func (e *expander) values(n syntax.Node, vs []string, quoted bool) {
	if len(vs) == 0 { // impossible: a value has at least one possibility
		e.unknownPart(n, quoted, false)
		return
	}
	quoted = quoted || e.noSplit
	ifs, ifsKnown := e.ifs()
	if !quoted && !ifsKnown {
		e.unknownPart(n, quoted, false)
		return
	}
	add := func(st *wstate, v string) {
		st.cur.expanded = true
		if quoted {
			st.quoted(v)
		} else {
			st.splitValue(v, ifs)
		}
	}
	if len(vs) == 1 {
		e.each(func(st *wstate) { add(st, vs[0]) })
		return
	}
	if len(e.states)*len(vs) > maxAlts {
		e.unknownPart(n, quoted, false)
		return
	}
	var next []*wstate
	for _, st := range e.states {
		for i, v := range vs {
			c := st
			if i < len(vs)-1 {
				c = st.clone()
			}
			add(c, v)
			next = append(next, c)
		}
	}
	e.states = next
}

// splice adds "$@" or "${a[@]}": one field per element when quoted.
func (e *expander) splice(n syntax.Node, elems []string, quoted bool) {
	ifs, _ := e.ifs()
	e.each(func(st *wstate) {
		st.cur.expanded = true
		for i, el := range elems {
			if i > 0 {
				st.flush()
			}
			st.cur.expanded = true
			if quoted {
				st.quoted(el)
			} else {
				st.splitValue(el, ifs)
			}
		}
		if len(elems) == 0 && quoted {
			st.cur.has = st.cur.has || len(st.cur.s) > 0
		}
	})
}

func (e *expander) ifs() (string, bool) {
	v, ok := e.sc.lookup("IFS")
	if !ok {
		return " \t\n", true
	}
	if len(v.alts) != 1 || strings.ContainsAny(v.alts[0], sAny+sTok) {
		return "", false
	}
	return v.alts[0], true
}

func (e *expander) parts(parts []syntax.WordPart, quoted bool) {
	for i, p := range parts {
		switch p := p.(type) {
		case *syntax.Lit:
			v := p.Value
			if quoted {
				v = unescapeDouble(v)
				e.each(func(st *wstate) { st.quoted(v) })
				continue
			}
			if i == 0 && strings.HasPrefix(v, "~") {
				if t := e.tilde(v); t != v {
					v = t
					e.each(func(st *wstate) { st.cur.expanded = true })
				}
			}
			if e.noSplit {
				v = unescapeLit(v)
				e.each(func(st *wstate) { st.quoted(v) })
				continue
			}
			e.each(func(st *wstate) { st.unquotedLit(v) })
		case *syntax.SglQuoted:
			v := p.Value
			if p.Dollar {
				v = decodeANSIC(v)
			}
			e.each(func(st *wstate) { st.quoted(v) })
		case *syntax.DblQuoted:
			e.each(func(st *wstate) { st.cur.has = true })
			e.parts(p.Parts, true)
		case *syntax.ParamExp:
			e.param(p, quoted)
		case *syntax.CmdSubst:
			if v, ok := e.a.cmdSubst(e.sc, p); ok {
				e.values(p, []string{v}, quoted)
			} else {
				e.unknownPart(p, quoted, false)
			}
		case *syntax.ArithmExp:
			e.a.walkExprs(e.sc, p.X)
			e.unknownPart(p, quoted, true)
		case *syntax.ProcSubst:
			e.a.procSubst(e.sc, p)
			e.each(func(st *wstate) {
				st.quoted("/dev/fd/")
				st.marker(markTok, "")
				st.cur.disp = append(st.cur.disp[:len(st.cur.disp)-len("/dev/fd/")], e.a.srcOf(p)...)
				if len(parts) == 1 {
					st.cur.proc = p
				}
			})
		case *syntax.ExtGlob:
			e.each(func(st *wstate) {
				st.globChar('*')
				st.cur.disp = append(st.cur.disp[:len(st.cur.disp)-1], e.a.srcOf(p)...)
			})
		default: // brace expansions are expanded before; anything else is unknown
			e.unknownPart(p, quoted, false)
		}
	}
}

// tilde expands a leading ~, ~user or ~+ in v.
func (e *expander) tilde(v string) string {
	user, rest, _ := strings.Cut(v[1:], "/")
	if strings.ContainsAny(user, `\'"*?[`) {
		return v
	}
	var home string
	switch user {
	case "":
		hv, ok := e.sc.lookup("HOME")
		if !ok {
			hv, _ = e.a.envDefault(e.sc, "HOME")
		}
		if len(hv.alts) != 1 {
			return sAny + "/" + rest
		}
		home = hv.alts[0]
	case "+":
		if c := e.sc.getCwd(); len(c) == 1 {
			home = c[0]
		} else {
			home = sAny
		}
	case "-":
		home = sAny
	case "root":
		home = "/root"
	default:
		home = "/home/" + user
	}
	if strings.Contains(v, "/") {
		return home + "/" + rest
	}
	return home
}

func (e *expander) param(pe *syntax.ParamExp, quoted bool) {
	pv, ok := e.a.paramValue(e.sc, pe, quoted)
	switch {
	case !ok:
		e.unknownPart(pe, quoted, false)
	case pv.tok:
		e.unknownPart(pe, quoted, true)
	case pv.splice:
		e.splice(pe, pv.elems, quoted)
	default:
		e.values(pe, pv.alts, quoted)
	}
}

// unescapeDouble removes the backslashes that escape inside double quotes.
func unescapeDouble(v string) string {
	if !strings.Contains(v, `\`) {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			switch v[i+1] {
			case '$', '`', '"', '\\':
				i++
			case '\n':
				i++
				continue
			}
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// decodeANSIC decodes the escapes of a $'...' string as bash does.
func decodeANSIC(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			b = append(b, c)
			continue
		}
		i++
		switch c = s[i]; c {
		case 'a':
			b = append(b, 7)
		case 'b':
			b = append(b, 8)
		case 'e', 'E':
			b = append(b, 27)
		case 'f':
			b = append(b, 12)
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'v':
			b = append(b, 11)
		case '\\', '\'', '"', '?':
			b = append(b, c)
		case 'c':
			if i+1 < len(s) {
				i++
				b = append(b, s[i]&0x1f)
			}
		case 'x', 'u', 'U':
			max := map[byte]int{'x': 2, 'u': 4, 'U': 8}[c]
			j := i + 1
			for j < len(s) && j-i-1 < max && isHex(s[j]) {
				j++
			}
			if j == i+1 {
				b = append(b, '\\', c)
				continue
			}
			n, _ := strconv.ParseUint(s[i+1:j], 16, 32)
			if c == 'x' {
				b = append(b, byte(n))
			} else {
				b = utf8.AppendRune(b, rune(n))
			}
			i = j - 1
		case '0', '1', '2', '3', '4', '5', '6', '7':
			j := i
			for j < len(s) && j-i < 3 && s[j] >= '0' && s[j] <= '7' {
				j++
			}
			n, _ := strconv.ParseUint(s[i:j], 8, 16)
			b = append(b, byte(n))
			i = j - 1
		default:
			b = append(b, '\\', c)
		}
	}
	return sanitize(string(b))
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// plainLit reports whether a literal word needs no expansion at all.
func plainLit(v string) bool {
	return v != "" && !strings.ContainsAny(v, "\\*?[~{\xef")
}

// budget counts a word expansion; past maxWords the rest are unknown and
// the outcome is at least approve.
func (a *analyzer) budget() bool {
	a.expanded++
	if a.expanded > maxWords {
		a.complex = true
		return false
	}
	return true
}

// expandWord returns every way w may expand, each a list of fields.
func (a *analyzer) expandWord(sc *scope, w *syntax.Word) [][]field {
	if !a.budget() {
		return [][]field{{{s: sAny, disp: a.srcOf(w), dyn: true, multi: true, expanded: true}}}
	}
	if len(w.Parts) == 1 {
		if l, ok := w.Parts[0].(*syntax.Lit); ok && plainLit(l.Value) {
			return [][]field{{litField(l.Value)}}
		}
	}
	e := &expander{a: a, sc: sc, states: []*wstate{{}}}
	e.parts(w.Parts, false)
	out := make([][]field, len(e.states))
	for i, st := range e.states {
		st.flush()
		out[i] = st.fields
	}
	return out
}

// expandString expands w as a single string, as in an assignment or inside
// ${x:-word}: its possible values, unknown text as markers.
func (a *analyzer) expandString(sc *scope, w *syntax.Word) []string {
	if w == nil {
		return []string{""}
	}
	if !a.budget() {
		return []string{sAny}
	}
	e := &expander{a: a, sc: sc, states: []*wstate{{}}, noSplit: true}
	e.parts(w.Parts, false)
	vals := make([]string, 0, len(e.states))
	for _, st := range e.states {
		vals = append(vals, string(st.cur.s))
	}
	return vals
}

// unescapeLit removes the backslashes of unquoted literal text.
func unescapeLit(v string) string {
	if !strings.Contains(v, `\`) {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
			if v[i] == '\n' {
				continue
			}
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// words expands the words of a command into its possible argvs.
func (a *analyzer) words(sc *scope, words []*syntax.Word) [][]field {
	variants := [][]field{make([]field, 0, len(words))}
	for _, w := range words {
		ws := []*syntax.Word{w}
		split := *w // SplitBraces rewrites the word: keep the AST as parsed
		if syntax.SplitBraces(&split) || hasBraceExp(w) {
			ws = ws[:0]
			for bw, err := range expand.BracesSeq(nil, &split) {
				if err != nil || len(ws) >= 64 {
					ws = append(ws, &syntax.Word{Parts: []syntax.WordPart{&syntax.Lit{Value: sAny}}})
					break
				}
				ws = append(ws, bw)
			}
		}
		braces := len(ws) > 1 || len(ws) == 1 && ws[0] != w
		for _, bw := range ws {
			alts := a.expandWord(sc, bw)
			if len(alts) == 0 { // impossible: keep the word, unknown
				alts = [][]field{{{s: sAny, disp: a.srcOf(w), dyn: true, multi: true, expanded: true}}}
			}
			if braces {
				for _, alt := range alts {
					for i := range alt {
						alt[i].expanded = true
					}
				}
			}
			if len(alts) == 1 {
				for i := range variants {
					variants[i] = append(variants[i], alts[0]...)
				}
				continue
			}
			if len(variants)*len(alts) > maxAlts {
				f := field{s: sAny, disp: a.srcOf(w), dyn: true, multi: true, expanded: true}
				for i := range variants {
					variants[i] = append(variants[i], f)
				}
				continue
			}
			var next [][]field
			for _, v := range variants {
				for _, alt := range alts {
					next = append(next, append(append([]field(nil), v...), alt...))
				}
			}
			variants = next
		}
	}
	return variants
}

func hasBraceExp(w *syntax.Word) bool {
	for _, p := range w.Parts {
		if _, ok := p.(*syntax.BraceExp); ok {
			return true
		}
	}
	return false
}
