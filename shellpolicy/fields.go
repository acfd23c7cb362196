package shellpolicy

import (
	"strings"
	"unicode/utf8"

	"mvdan.cc/sh/v3/syntax"
)

// A field is one word of argv as the program will see it; a wstate builds
// the fields of one way a word may expand, byte by byte, keeping what is
// quoted, what is an active glob character and what is not known.

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
