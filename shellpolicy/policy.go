// Package shellpolicy decides whether a shell command line an agent sends
// may run (allow), needs a human (approve) or is refused (deny).
//
// The command line is parsed as bash (mvdan.cc/sh) and never run. Every
// simple command in it is analysed wherever it appears (lists, pipelines,
// subshells, compound commands, functions, substitutions, here-documents
// fed to a shell), after resolving quoting, literal variables, wrappers
// (sudo, env, timeout, xargs, ssh host ...) and nested code (bash -c, eval).
// Deletions and writes are judged by their target paths, SQL given to psql,
// mysql or sqlite3 by the SQL policy (package sqlpolicy), and what cannot be
// known before it runs is never allowed. The rules, their decisions and
// words come from a YAML policy file (DefaultYAML, overridable by id); the
// line takes the strictest decision of its commands.
package shellpolicy

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/bastion-dev/bastion/policy"
	"github.com/bastion-dev/bastion/shellpolicy/sqlpolicy"
)

// Input says who runs a command; shell and SQL rules may be scoped to
// principals or roles.
type Input struct {
	Principal string
	Role      string
	// Target is the database target SQL given to DecideSQL goes to, for
	// its rules in the policy file (sql.targets, and rules of sql.rules
	// with targets); "" means the rules for every target. Decide does not
	// use it: SQL in shell commands is judged with the rules for every
	// target, and again by the target's own rules when it reaches
	// bastion's database proxy.
	Target string
}

// Finding is one simple command found in a command line, with the result of
// the rules that hit it.
type Finding struct {
	Command []string      // the command's words after quoting, variables and wrappers are resolved
	Result  policy.Result // the strictest result for this command
	Pos     string        // line:col of the command in the input
	// Approvals, when Result asks for approval, is every rule that asks
	// to approve this command, each once, Result's first: an approver is
	// shown them all.
	Approvals []policy.Result
}

// Outcome is the decision for a whole command line: the strictest result of
// its findings, and the findings themselves (for `bastion policy explain`).
type Outcome struct {
	policy.Result
	Findings []Finding
}

// Policy is a compiled shell policy. It is immutable and safe for concurrent
// use. A nil *Policy decides with the built-in policy.
type Policy struct {
	rules   map[string]*rule
	byName  map[string][]*rule // rules with a match, by literal command name
	anyName []*rule            // rules with a match on any or a pattern command name
	summary Summary

	sql        *sqlpolicy.Classifier // sql.rules over the built-in SQL policy; nil: the built-in one
	sqlFor     map[string]*targetSQL // targets with rules of their own, by name
	sqlMaxRows int                   // sql.max_rows
	sqlScopes  *sqlScopes            // nil: no SQL rule is scoped by principal or role
}

// Summary counts the rules of a policy, for `bastion policy lint`.
type Summary struct {
	Rules      int // rules in effect: built-in and from the file
	FileRules  int // rules the policy file defines or overrides
	Overrides  int // of those, the ones that override a built-in rule
	SQLRules   int // SQL rules for every database target (sql.rules)
	SQLTargets int // database targets with SQL rules of their own (sql.targets)
}

// Summary counts p's rules.
func (p *Policy) Summary() Summary {
	if p == nil {
		p = defaultPolicy
	}
	return p.summary
}

// RuleIDs returns the ids of every rule in p, sorted.
func (p *Policy) RuleIDs() []string {
	if p == nil {
		p = defaultPolicy
	}
	return slices.Sorted(maps.Keys(p.rules))
}

// rule is every definition of one rule id: overrides from a policy file
// first, the built-in definition last. The first that applies to an Input is
// the one used.
type rule struct {
	id       string
	variants []*variant
	// seq is the definition order: the built-in rules in default.yaml's
	// order, then a file's new rules in its order. Rules with a match
	// hit a command in this order, so that on a tie the first found
	// (better) is the same every time.
	seq int
}

type variant struct {
	decision  policy.Decision
	message   string
	hint      string
	ruleScope // principals and roles; nil: everyone
	disabled  bool
	match     []*matcher // nil: decided by the analysis
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// pick returns the definition of r that applies to in, or nil.
func (r *rule) pick(in Input) *variant {
	for _, v := range r.variants {
		if v.applies(in) {
			return v
		}
	}
	return nil
}

// Default returns the built-in policy (DefaultYAML).
func Default() *Policy { return defaultPolicy }

// Load reads a policy file and returns the built-in policy overridden and
// extended by it.
func Load(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load policy: %w", err)
	}
	return Parse(data, path)
}

// Parse compiles a policy file named name on top of the built-in policy.
// Errors are ParseErrors, each with the file, line and column.
func Parse(data []byte, name string) (*Policy, error) {
	return compile(defaultPolicy, data, name)
}

// Decide checks a shell command line (one line or a whole script).
func (p *Policy) Decide(cmd string, in Input) Outcome {
	if p == nil {
		p = defaultPolicy
	}
	a := newAnalyzer(p, in)
	a.run(cmd)
	return a.outcome()
}

// DecideSQL checks an SQL string with the SQL policy of in.Target for in's
// principal and role (see SQLClassifierFor).
func (p *Policy) DecideSQL(sql string, in Input) Outcome {
	out := p.SQLClassifierFor(in).Classify(sql)
	res := out.Result
	res.Reason = oneLine(res.Reason)
	if len(out.Statements) == 0 {
		return Outcome{Result: res, Findings: []Finding{{Command: []string{sql}, Result: res, Pos: "1:1"}}}
	}
	o := Outcome{Result: res}
	from := 0
	for _, st := range out.Statements {
		pos := "1:1"
		if i := strings.Index(sql[from:], st.Text); i >= 0 && st.Text != "" {
			pos = lineCol(sql, from+i)
			from += i + len(st.Text)
		}
		r := st.Result
		r.Reason = oneLine(r.Reason)
		o.Findings = append(o.Findings, Finding{Command: []string{st.Text}, Result: r, Pos: pos})
	}
	return o
}

// lineCol is the line:col of byte offset off in s, counting from 1:1.
func lineCol(s string, off int) string {
	line := 1 + strings.Count(s[:off], "\n")
	col := off - strings.LastIndexByte(s[:off], '\n')
	return fmt.Sprintf("%d:%d", line, col)
}

// hit is a rule that hit a command, as found by the analysis or a matcher.
type hit struct {
	rule  string
	arg   string         // what was found: a path, a subcommand
	cmd   string         // the command name when the hit was found ("" for the frame's)
	maybe bool           // matched only if unknown arguments take certain values
	res   *policy.Result // a result made elsewhere (the SQL classifier)
}

// result turns h into a Result for in; ok is false when the rule does not
// apply (disabled, or scoped to someone else).
func (p *Policy) result(h hit, in Input, cmd string) (res policy.Result, ok bool) {
	if h.res != nil {
		res = *h.res
		res.Reason = oneLine(res.Reason)
		return res, true
	}
	r := p.rules[h.rule]
	if r == nil { // impossible: codeRules are checked at init
		return policy.Result{Decision: policy.Deny, Rule: h.rule, Reason: "internal error: unknown rule"}, true
	}
	v := r.pick(in)
	if v == nil || v.disabled {
		return res, false
	}
	if h.cmd != "" {
		cmd = h.cmd
	}
	res = policy.Result{Decision: v.decision, Rule: r.id, Reason: fillMessage(v.message, cmd, h.arg), Hint: v.hint}
	if h.maybe {
		// The arguments are not known statically: hold for a human rather
		// than trusting the rule either way.
		res.Decision = min(res.Decision, policy.Approve)
		res.Reason += " (arguments are not known before it runs)"
	}
	return res, true
}

func fillMessage(msg, cmd, arg string) string {
	if !strings.Contains(msg, "{") {
		return msg
	}
	if cmd == "" {
		cmd = "the command"
	}
	// markers for unknown text never reach people
	return oneLine(strings.NewReplacer("{cmd}", human(cmd), "{arg}", human(arg)).Replace(msg))
}

// strictest returns the hits' strictest result for in, or default-allow.
func (p *Policy) strictest(hits []hit, in Input, cmd string) policy.Result {
	var best policy.Result
	found := false
	for _, h := range hits {
		r, ok := p.result(h, in, cmd)
		if !ok {
			continue
		}
		if !found || better(r, best) {
			best, found = r, true
		}
	}
	if !found {
		best, _ = p.result(hit{rule: ruleDefaultAllow}, in, cmd)
		if best.Rule == "" { // scoped away for this input: still the fallback
			best = policy.Result{Decision: policy.Allow, Rule: ruleDefaultAllow, Reason: "no rule restricts this command"}
		}
	}
	return best
}

// maxReason bounds a reason: it is one line of a terminal and of a log.
const maxReason = 300

// oneLine puts s on one line (a reason quotes scripts and SQL) and shortens
// it to maxReason bytes.
func oneLine(s string) string {
	if strings.ContainsAny(s, "\n\r\t") {
		s = strings.Join(strings.Fields(s), " ")
	}
	if len(s) > maxReason {
		s = cutUTF8(s, maxReason) + "…"
	}
	return s
}

// cutUTF8 is the longest prefix of s of at most n bytes that does not
// split a character.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// human shows unknown text in s as "…".
func human(s string) string {
	if !strings.ContainsAny(s, sAny+sTok) {
		return s
	}
	return strings.NewReplacer(sAny, "…", sTok, "…").Replace(s)
}
