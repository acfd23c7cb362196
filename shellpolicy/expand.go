package shellpolicy

import (
	"strings"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/syntax"
)

// Word expansion, the layer between the parser and the analysis (as
// mvdan.cc/sh's expand sits between syntax and interp): it turns a
// syntax.Word into the fields a program receives, in every way the word
// may expand, with what is not known marked. It knows no command; it
// reaches the analyzer only for what expansion runs or looks up: command
// and process substitutions (cmdSubst, procSubst, walkExprs), parameters
// (paramValue, envDefault, params.go) and the source text shown for
// unknown parts (srcOf).

// maxDisp bounds how much source text an unknown part shows.
const maxDisp = 80

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
