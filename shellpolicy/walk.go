package shellpolicy

import (
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// The walk over the syntax tree: every statement, wherever it stands
// (lists, pipelines, subshells, blocks, if/for/while/case bodies, function
// bodies where they are called, substitutions), in a scope that tracks
// what the script assigned. Each simple command goes to call, then to
// command (exec.go).

func (a *analyzer) stmts(sc *scope, list []*syntax.Stmt) *stream {
	var out *stream
	for _, st := range list {
		out = a.stmt(sc, st, nil, false)
	}
	return out
}

// stmt analyses one statement. in is what its standard input carries (nil:
// nothing known); it returns what its standard output carries. andThen is
// true on the left of && (the rest only runs if it succeeded).
func (a *analyzer) stmt(sc *scope, st *syntax.Stmt, in *stream, andThen bool) *stream {
	if !a.step() {
		return nil
	}
	fr := a.newFrame(st)
	in = a.redirects(sc, st, fr, in)
	var out *stream
	switch c := st.Cmd.(type) {
	case nil:
		if len(st.Redirs) > 0 {
			fr.argv = []string{strings.TrimSpace(a.srcOf(st))}
		}
	case *syntax.CallExpr:
		out = a.call(sc, c, fr, in, andThen)
	case *syntax.BinaryCmd:
		out = a.binary(sc, c, in)
	case *syntax.Subshell:
		out = a.block(sc.child(), c.Stmts, in)
	case *syntax.Block:
		out = a.block(sc, c.Stmts, in)
	case *syntax.IfClause:
		a.ifClause(sc, c, in)
	case *syntax.WhileClause:
		a.loop(sc, in, func(sc *scope) {
			a.block(sc, c.Cond, in)
			a.block(sc, c.Do, in)
		}, c)
	case *syntax.ForClause:
		a.forClause(sc, c, in)
	case *syntax.CaseClause:
		a.caseClause(sc, c, in)
	case *syntax.FuncDecl:
		a.funcDecl(sc, c, fr)
	case *syntax.TimeClause:
		if c.Stmt != nil {
			out = a.stmt(sc, c.Stmt, in, andThen)
		}
	case *syntax.CoprocClause:
		a.stmt(sc.child(), c.Stmt, nil, false)
	case *syntax.TestDecl:
		a.stmt(sc.child(), c.Body, nil, false)
	case *syntax.DeclClause:
		a.decl(sc, c, fr)
	default: // arithmetic, tests, let: only substitutions run commands
		a.walkExprs(sc, c)
	}
	if len(fr.hits) > 0 && fr.argv == nil {
		fr.argv = []string{strings.TrimSpace(a.srcOf(st))}
	}
	a.recordWrites(sc, st, out)
	a.endFrame(fr)
	return out
}

// block runs statements in sc; every one of them may read in.
func (a *analyzer) block(sc *scope, list []*syntax.Stmt, in *stream) *stream {
	var out *stream
	for _, st := range list {
		out = a.stmt(sc, st, in, false)
	}
	return out
}

func (a *analyzer) binary(sc *scope, c *syntax.BinaryCmd, in *stream) *stream {
	switch c.Op {
	case syntax.Pipe, syntax.PipeAll:
		// each part of a pipeline runs in a subshell, reading the previous one
		var parts []*syntax.Stmt
		var flat func(s *syntax.Stmt)
		flat = func(s *syntax.Stmt) {
			if b, ok := s.Cmd.(*syntax.BinaryCmd); ok && (b.Op == syntax.Pipe || b.Op == syntax.PipeAll) && len(s.Redirs) == 0 {
				flat(b.X)
				flat(b.Y)
				return
			}
			parts = append(parts, s)
		}
		flat(c.X)
		flat(c.Y)
		for _, p := range parts {
			in = a.stmt(sc.child(), p, in, false)
		}
		return in
	case syntax.AndStmt:
		a.stmt(sc, c.X, in, true)
	default:
		a.stmt(sc, c.X, in, false)
	}
	b := sc.child()
	out := a.stmt(b, c.Y, in, false)
	sc.merge([]*scope{b}, true)
	return out
}

func (a *analyzer) ifClause(sc *scope, c *syntax.IfClause, in *stream) {
	var branches []*scope
	hasElse := false
	for cl := c; cl != nil; cl = cl.Else {
		if len(cl.Cond) == 0 && cl != c {
			hasElse = true
		}
		a.block(sc, cl.Cond, in)
		b := sc.child()
		a.block(b, cl.Then, in)
		branches = append(branches, b)
	}
	sc.merge(branches, !hasElse)
}

// loop analyses a loop body once, after marking what the body assigns as
// possibly unknown: a later iteration sees what an earlier one set.
func (a *analyzer) loop(sc *scope, in *stream, body func(sc *scope), n syntax.Node) {
	sc.forgetAssigned(n)
	b := sc.child()
	body(b)
	sc.merge([]*scope{b}, true)
}

func (a *analyzer) forClause(sc *scope, c *syntax.ForClause, in *stream) {
	switch l := c.Loop.(type) {
	case *syntax.WordIter:
		var items val
		if l.InPos.IsValid() {
			for _, argv := range a.words(sc, l.Items) {
				for _, f := range argv {
					items.alts = appendNew(items.alts, f.s)
				}
			}
		} else if args, ok := sc.positional(); ok {
			items.alts = append(items.alts, args[1:]...)
		} else {
			items = unknownVal
		}
		if len(items.alts) > maxAlts {
			items = unknownVal
		}
		a.loop(sc, in, func(b *scope) {
			b.set(l.Name.Value, items)
			a.block(b, c.Do, in)
		}, c)
	case *syntax.CStyleLoop:
		a.walkExprs(sc, l)
		a.loop(sc, in, func(b *scope) { a.block(b, c.Do, in) }, c)
	}
}

func (a *analyzer) caseClause(sc *scope, c *syntax.CaseClause, in *stream) {
	a.words(sc, []*syntax.Word{c.Word})
	var branches []*scope
	for _, it := range c.Items {
		for _, p := range it.Patterns {
			a.walkExprs(sc, p)
		}
		b := sc.child()
		a.block(b, it.Stmts, in)
		branches = append(branches, b)
	}
	sc.merge(branches, true)
}

// funcDecl records a function. Its body is judged where it is called, with
// the call's arguments; a function no call analysed is judged at the end
// (see uncalled).
func (a *analyzer) funcDecl(sc *scope, c *syntax.FuncDecl, fr *frame) {
	if c.Name == nil {
		// an anonymous function (zsh's "() { ... }") runs where it stands
		b := sc.child()
		b.hasArgs = true
		a.callBody(b, &funcDef{decl: c, src: a.src}, fr)
		return
	}
	name := c.Name.Value
	if a.funcs == nil {
		a.funcs = make(map[string]*funcDef)
	}
	fd := &funcDef{decl: c, src: a.src, pos: a.pos, sc: sc}
	a.funcs[name] = fd
	a.defs = append(a.defs, fd)
	if isForkBomb(name, c.Body) {
		fr.argv = []string{name + "()"}
		a.hit(fr, ruleForkBomb, strings.TrimSpace(a.srcOf(c)))
	}
}

// callBody analyses a function's body. A recursive call is not analysed
// again (its body is being analysed); calls nested deeper than maxDepth are
// not analysed at all, which makes the caller's frame at least approve.
func (a *analyzer) callBody(sc *scope, fd *funcDef, fr *frame) {
	if a.calling[fd.decl] {
		return
	}
	if a.depth >= maxDepth {
		fr.show = true
		name := "an anonymous function"
		if fd.decl.Name != nil {
			name = fd.decl.Name.Value + "()"
		}
		a.hit(fr, ruleTooDeep, name) // and its body is judged on its own at the end
		return
	}
	fd.analysed = true
	if a.calling == nil {
		a.calling = make(map[*syntax.FuncDecl]bool)
	}
	a.calling[fd.decl] = true
	savedSrc := a.src
	a.src = fd.src
	a.depth++
	a.stmt(sc, fd.decl.Body, nil, false)
	a.depth--
	a.src = savedSrc
	delete(a.calling, fd.decl)
}

// isForkBomb reports a function that calls itself in the background or in
// a pipeline: :(){ :|:& };:
func isForkBomb(name string, body *syntax.Stmt) bool {
	found := false
	var walk func(n syntax.Node, spawn bool)
	walk = func(n syntax.Node, spawn bool) {
		syntax.Walk(n, func(n syntax.Node) bool {
			switch n := n.(type) {
			case *syntax.Stmt:
				if n != body && n.Background && !spawn {
					walk(n.Cmd, true)
					return false
				}
			case *syntax.BinaryCmd:
				if (n.Op == syntax.Pipe || n.Op == syntax.PipeAll) && !spawn {
					walk(n, true)
					return false
				}
			case *syntax.CallExpr:
				if spawn && len(n.Args) > 0 && n.Args[0].Lit() == name {
					found = true
				}
			}
			return !found
		})
	}
	walk(body, false)
	return found
}

// walkExprs analyses the command and process substitutions inside n.
func (a *analyzer) walkExprs(sc *scope, n syntax.Node) {
	if n == nil {
		return
	}
	syntax.Walk(n, func(n syntax.Node) bool {
		switch n := n.(type) {
		case *syntax.CmdSubst:
			a.block(sc.child(), n.Stmts, nil)
			return false
		case *syntax.ProcSubst:
			a.procSubst(sc, n)
			return false
		}
		return true
	})
}

func (a *analyzer) procSubst(sc *scope, p *syntax.ProcSubst) {
	if a.procs == nil {
		a.procs = make(map[*syntax.ProcSubst]*stream)
	}
	a.procs[p] = a.block(sc.child(), p.Stmts, nil)
}

// cmdSubst analyses $(...) and returns its output when bastion knows it:
// the text echo or printf print, or a here-document cat copies, mktemp's
// temporary path, pwd's working directory (see produce).
func (a *analyzer) cmdSubst(sc *scope, cs *syntax.CmdSubst) (string, bool) {
	out := a.block(sc.child(), cs.Stmts, nil)
	if len(cs.Stmts) != 1 || redirectsOutput(cs.Stmts[0]) || out == nil || out.kind != streamText || len(out.texts) != 1 {
		return "", false
	}
	return strings.TrimRight(out.texts[0], "\n"), true // $(...) drops trailing newlines
}

// redirectsOutput reports a statement whose standard output goes elsewhere
// than to its reader.
func redirectsOutput(st *syntax.Stmt) bool {
	for _, r := range st.Redirs {
		switch r.Op {
		case syntax.RdrIn, syntax.Hdoc, syntax.DashHdoc, syntax.WordHdoc:
		default:
			if r.N == nil || r.N.Value == "1" || r.Op == syntax.RdrAll || r.Op == syntax.AppAll {
				return true
			}
		}
	}
	return false
}

// call analyses a simple command.
func (a *analyzer) call(sc *scope, c *syntax.CallExpr, fr *frame, in *stream, andThen bool) *stream {
	for _, as := range c.Assigns {
		a.assign(sc, as, fr, len(c.Args) > 0)
	}
	if len(c.Args) == 0 {
		return nil
	}
	var out *stream
	indirect := !literalWord(c.Args[0])
	for i, argv := range a.words(sc, c.Args) {
		env := &cmdEnv{sc: sc, fr: fr, in: in, andThen: andThen, indirect: indirect, nameSrc: a.srcOf(c.Args[0])}
		if len(argv) == 0 && indirect { // {,} or $EMPTY: nothing runs, but it is written to hide
			fr.show = true
			a.hit(fr, ruleIndirect, env.nameSrc)
		}
		o := a.command(env, argv)
		if i == 0 {
			out = o
		}
	}
	return out
}

// literalWord reports whether w has no expansions: only literal text and
// quotes (globs and ~ are judged on the resolved words).
func literalWord(w *syntax.Word) bool {
	split := *w
	if syntax.SplitBraces(&split) {
		return false
	}
	for _, p := range w.Parts {
		switch p := p.(type) {
		case *syntax.Lit, *syntax.SglQuoted:
		case *syntax.DblQuoted:
			for _, q := range p.Parts {
				if _, ok := q.(*syntax.Lit); !ok {
					return false
				}
			}
		default:
			return false
		}
	}
	return true
}
