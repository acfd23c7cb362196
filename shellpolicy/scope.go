package shellpolicy

import (
	"slices"

	"mvdan.cc/sh/v3/syntax"
)

// Unknown text in resolved words is written with two reserved runes, which
// never survive from the input (sanitize replaces them).
const (
	markAny = '\uFDD0' // unknown text: may hold anything, slashes and spaces too
	markTok = '\uFDD1' // unknown token: a number or name, no slash, space or ".."
	sAny    = string(markAny)
	sTok    = string(markTok)
)

// maxAlts bounds how many possible values a variable or word may have before
// it is treated as unknown.
const maxAlts = 8

// val is what a shell variable may hold: one of alts, or for an array its
// elements.
type val struct {
	alts  []string
	elems []string
	array bool
}

var unknownVal = val{alts: []string{sAny}}

// scope is the shell state the analysis tracks: variables, the working
// directory and positional parameters. Subshells, branches and function
// calls get a child scope; a lookup walks up the chain.
type scope struct {
	parent  *scope
	vars    map[string]val
	cwd     []string // absolute paths or sAny; nil: the parent's
	args    []string // $0, $1...; when hasArgs (nil: set but unknown)
	hasArgs bool
}

func (sc *scope) child() *scope { return &scope{parent: sc} }

func (sc *scope) lookup(name string) (val, bool) {
	for s := sc; s != nil; s = s.parent {
		if v, ok := s.vars[name]; ok {
			return v, true
		}
	}
	return val{}, false
}

// Bounds on what a variable may hold before it is treated as unknown:
// X=$X$X doubles with each line, and the analysis must stay linear.
const (
	maxValueLen = 16 << 10 // bytes of one value
	maxElems    = 256      // elements of an array or positional parameters
)

func (sc *scope) set(name string, v val) {
	if sc.vars == nil {
		sc.vars = make(map[string]val)
	}
	sc.vars[name] = bounded(v)
}

// bounded is v, or unknown when it is too large to track.
func bounded(v val) val {
	if len(v.elems) > maxElems {
		return unknownVal
	}
	for _, s := range v.alts {
		if len(s) > maxValueLen {
			return unknownVal
		}
	}
	for _, s := range v.elems {
		if len(s) > maxValueLen {
			return unknownVal
		}
	}
	return v
}

// setArgs sets the positional parameters ($0 first), or marks them unknown
// when there are too many or they are too long.
func (sc *scope) setArgs(args []string) {
	sc.hasArgs = true
	if bounded(val{elems: args}).elems == nil && args != nil {
		args = nil
	}
	sc.args = args
}

func (sc *scope) getCwd() []string {
	for s := sc; s != nil; s = s.parent {
		if s.cwd != nil {
			return s.cwd
		}
	}
	return []string{sAny}
}

// positional returns $0, $1... and whether they are known.
func (sc *scope) positional() ([]string, bool) {
	for s := sc; s != nil; s = s.parent {
		if s.hasArgs {
			return s.args, s.args != nil
		}
	}
	return nil, false
}

// union returns the values a and b together, or unknown when too many.
func union(a, b val) val {
	if a.array || b.array {
		if a.array && b.array && slices.Equal(a.elems, b.elems) {
			return a
		}
		return unknownVal
	}
	out := append([]string(nil), a.alts...)
	for _, s := range b.alts {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	if len(out) > maxAlts {
		return unknownVal
	}
	return val{alts: out}
}

// merge folds branches (children of sc that may each have run) into sc.
// With orNone, the path on which none of them ran exists too.
func (sc *scope) merge(branches []*scope, orNone bool) {
	names := map[string]bool{}
	cwdChanged := false
	for _, b := range branches {
		for n := range b.vars {
			names[n] = true
		}
		cwdChanged = cwdChanged || b.cwd != nil
	}
	for n := range names {
		var acc val
		first := true
		add := func(v val) {
			if first {
				acc, first = v, false
			} else {
				acc = union(acc, v)
			}
		}
		cur, known := sc.lookup(n)
		if !known {
			cur = unknownVal
		}
		if orNone {
			add(cur)
		}
		for _, b := range branches {
			if v, ok := b.vars[n]; ok {
				add(v)
			} else {
				add(cur)
			}
		}
		sc.set(n, acc)
	}
	if cwdChanged {
		var acc []string
		add := func(c []string) {
			for _, d := range c {
				if !slices.Contains(acc, d) {
					acc = append(acc, d)
				}
			}
		}
		cur := sc.getCwd()
		if orNone {
			add(cur)
		}
		for _, b := range branches {
			if b.cwd != nil {
				add(b.cwd)
			} else {
				add(cur)
			}
		}
		if len(acc) > maxAlts {
			acc = []string{sAny}
		}
		sc.cwd = acc
	}
}

// forgetAssigned marks every variable assigned anywhere in nodes as possibly
// unknown, and the working directory when a cd appears. Loops use it: a body
// may run many times, and a later iteration sees what an earlier one set.
func (sc *scope) forgetAssigned(nodes ...syntax.Node) {
	for _, n := range nodes {
		if n == nil {
			continue
		}
		syntax.Walk(n, func(n syntax.Node) bool {
			switch n := n.(type) {
			case *syntax.Assign:
				if n.Name != nil {
					sc.maybeUnknown(n.Name.Value)
				}
			case *syntax.WordIter:
				sc.maybeUnknown(n.Name.Value)
			case *syntax.CallExpr:
				if len(n.Args) > 0 {
					switch n.Args[0].Lit() {
					case "cd", "pushd", "popd":
						sc.cwd = append(append([]string(nil), sc.getCwd()...), sAny)
					case "read", "mapfile", "readarray", "getopts", "printf":
						for _, w := range n.Args[1:] {
							if l := w.Lit(); l != "" {
								sc.maybeUnknown(l)
							}
						}
					}
				}
			}
			return true
		})
	}
}

func (sc *scope) maybeUnknown(name string) {
	cur, ok := sc.lookup(name)
	if !ok {
		sc.set(name, unknownVal)
		return
	}
	sc.set(name, union(cur, unknownVal))
}
