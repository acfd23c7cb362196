package shellpolicy

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"

	"github.com/bastion-dev/bastion/shellpolicy/sqlpolicy"
)

// The sql: section of a policy file holds SQL rules (sqlpolicy.Rule) for
// the database proxy and for SQL found in shell commands:
//
//	sql:
//	  max_rows: 1000      # planner estimate above which an UPDATE or DELETE needs approval
//	  rules: [...]        # every database target, and psql -c / here-docs
//	  targets:
//	    <name>:           # a database target of bastion.yaml
//	      rules: [...]    # that target only, over sql.rules (same id: this one)
//
// A rule is decoded like a shell rule (headField: id, decision, message,
// hint, principals, roles), with the matchers kinds, tables and functions,
// and in sql.rules targets. sqlpolicy validates each rule; errors are
// reported at the rule. Which rules apply to an agent is chosen in
// sqlscope.go.

// sqlRule is one SQL rule as read from the file.
type sqlRule struct {
	rule       sqlpolicy.Rule
	ruleScope           // principals, roles, and for a rule of sql.rules targets
	pos        ast.Node // the id's value, or the rule when it has no id
	targetsPos ast.Node // the targets' value, when given
}

// fileSQLTarget is one entry of sql.targets.
type fileSQLTarget struct {
	name  string
	key   ast.Node
	rules []sqlRule
}

// fileSQL is the sql: section as written.
type fileSQL struct {
	maxRows *int // sql.max_rows; nil when not given
	rules   []sqlRule
	targets []fileSQLTarget
}

// DefaultSQLMaxRows is sql.max_rows when a policy file does not set it.
const DefaultSQLMaxRows = 1000

// maxSQLMaxRows bounds sql.max_rows: a planner estimate is a float, and a
// limit past int32 is no limit a user meant.
const maxSQLMaxRows = 1<<31 - 1

// targetSQL is the compiled SQL policy of one target: the rules for
// every principal and role.
type targetSQL struct {
	classifier *sqlpolicy.Classifier
	where      ParseError // the target's name in the file, for CheckSQLTargets
}

const sqlRuleFields = "id, kinds, tables, functions, decision, message or hint"

func (fp *fileParser) sqlSection(n ast.Node) *fileSQL {
	s := &fileSQL{}
	fp.mapping(n, "sql", func(key string, k, v ast.Node) {
		switch key {
		case "max_rows":
			s.maxRows = fp.maxRows(v)
		case "rules":
			s.rules = fp.sqlRules(v, "sql.rules", false)
		case "targets":
			fp.mapping(v, "sql.targets", func(name string, k, v ast.Node) {
				if strings.TrimSpace(name) == "" {
					fp.errorf(k, "sql.targets: empty target name")
					return
				}
				t := fileSQLTarget{name: name, key: k}
				fp.mapping(v, fmt.Sprintf("sql target %q", name), func(key string, k, v ast.Node) {
					switch key {
					case "rules":
						t.rules = fp.sqlRules(v, fmt.Sprintf("sql target %q: rules", name), true)
					default:
						fp.errorf(k, "unknown field %q in sql target %q (want rules)", key, name)
					}
				})
				s.targets = append(s.targets, t)
			})
		default:
			fp.errorf(k, "unknown field %q in sql (want max_rows, rules or targets)", key)
		}
	})
	return s
}

// maxRows reads sql.max_rows: a whole number of rows, 0 or more, written
// as a YAML integer (not "1000", 1e3 or 1_000, which YAML reads as other
// things). It reports an error at the value and returns nil when the
// value is not one.
func (fp *fileParser) maxRows(v ast.Node) *int {
	if !fp.plainYAML(v) {
		return nil
	}
	const want = "sql.max_rows: want a whole number of rows from 0 to 2147483647 (0: ask the target for no estimate)"
	in, ok := v.(*ast.IntegerNode)
	if !ok {
		got := "nothing"
		if v != nil {
			got = strings.ToLower(v.Type().String())
			if tk := v.GetToken(); tk != nil && tk.Value != "" {
				got = fmt.Sprintf("%q", tk.Value)
			}
		}
		fp.errorf(v, "%s, got %s", want, got)
		return nil
	}
	text := in.GetToken().Value
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil || n < 0 || n > maxSQLMaxRows {
		fp.errorf(v, "%s, got %s", want, text)
		return nil
	}
	rows := int(n)
	return &rows
}

// sqlRules decodes a list of SQL rules. Rules with errors are left out.
// inTarget is set for the rules of a target, which take no targets.
func (fp *fileParser) sqlRules(n ast.Node, what string, inTarget bool) []sqlRule {
	var out []sqlRule
	fp.sequence(n, what, func(e ast.Node) {
		if r, ok := fp.sqlRule(e, what, inTarget); ok {
			out = append(out, r)
		}
	})
	return out
}

// sqlRule decodes one SQL rule. Unknown fields are errors, and the
// decision must be given: a rule that meant only to reword a hint must
// not silently allow what the built-in denies.
func (fp *fileParser) sqlRule(e ast.Node, what string, inTarget bool) (sqlRule, bool) {
	if !fp.plainYAML(e) {
		return sqlRule{}, false
	}
	switch e.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
	default:
		fp.errorf(e, "%s: each rule must be a mapping (id, decision, ...)", what)
		return sqlRule{}, false
	}
	var h ruleHead
	r := sqlRule{pos: e}
	prefix := sqlPrefix(peekID(e))
	nerr := len(fp.errs)
	fp.mapping(e, "an sql rule", func(key string, k, v ast.Node) {
		if key == "targets" && inTarget {
			fp.errorf(k, "%stargets: a rule of sql.targets.<name>.rules is for that target already", prefix)
			return
		}
		if fp.headField(&h, key, v, prefix, true) {
			if key == "targets" {
				r.targetsPos = v
			}
			return
		}
		switch key {
		case "kinds":
			r.rule.Kinds = fp.sqlList(v, key)
		case "tables":
			r.rule.Tables = fp.sqlList(v, key)
		case "functions":
			r.rule.Functions = fp.sqlList(v, key)
		default:
			fp.errorf(k, "unknown field %q in sql rule (want %s)", key, sqlRuleFields)
		}
	})
	if len(fp.errs) > nerr {
		return sqlRule{}, false
	}
	if h.decision == nil {
		fp.errorf(e, "%sdecision is required (allow, approve or deny)", prefix)
		return sqlRule{}, false
	}
	r.rule.ID, r.rule.Decision, r.ruleScope = h.id, *h.decision, h.ruleScope
	if h.message != nil {
		r.rule.Message = *h.message
	}
	if h.hint != nil {
		r.rule.Hint = *h.hint
	}
	if h.idPos != nil {
		r.pos = h.idPos
	}
	return r, true
}

// sqlList reads kinds, tables or functions: a list of names or patterns,
// or one. A null is as if not given.
func (fp *fileParser) sqlList(v ast.Node, key string) []string {
	switch v.(type) {
	case *ast.NullNode:
		return nil
	case *ast.MappingNode, *ast.MappingValueNode:
		fp.errorf(v, "mapping was used where sequence is expected (%s: a list)", key)
		return nil
	}
	return fp.strings(v, key)
}

// plainYAML reports whether n is free of anchors, aliases and tags, which
// the shell rules do not accept either.
func (fp *fileParser) plainYAML(n ast.Node) bool {
	for _, typ := range []ast.NodeType{ast.AnchorType, ast.AliasType, ast.TagType} {
		if found := ast.Filter(typ, n); len(found) > 0 {
			fp.errorf(found[0], "YAML anchors, aliases and tags are not supported here")
			return false
		}
	}
	return true
}

// compileSQL compiles the sql: section into p once, at load: the rules for
// every target, and for each target its rules over those (see sqlscope.go
// for rules scoped by principal or role).
func (fp *fileParser) compileSQL(p *Policy, base *Policy, s *fileSQL) {
	p.sqlMaxRows = DefaultSQLMaxRows
	if base != nil {
		p.sqlMaxRows = base.sqlMaxRows
	}
	if s == nil {
		return
	}
	if s.maxRows != nil {
		p.sqlMaxRows = *s.maxRows
	}
	p.summary.SQLRules = len(s.rules)
	fp.checkSQLRules(s.rules)
	own := make(map[string][]sqlRule, len(s.targets))
	where := map[string]ParseError{}
	for _, t := range s.targets {
		fp.checkSQLRules(t.rules)
		own[t.name] = t.rules
		line, col := fp.position(t.key)
		where[t.name] = ParseError{File: fp.name, Line: line, Col: col}
	}
	for _, r := range s.rules { // targets named only by rules of sql.rules
		for _, name := range r.targets {
			if _, ok := where[name]; !ok {
				line, col := fp.position(r.targetsPos)
				where[name] = ParseError{File: fp.name, Line: line, Col: col}
			}
		}
	}
	if len(fp.errs) > 0 {
		return // the policy is refused: nothing to compile
	}
	sc := newSQLScopes(s.rules, own)
	p.sql = sc.classifier(Input{})
	p.sqlFor = make(map[string]*targetSQL, len(where))
	for name, w := range where {
		p.sqlFor[name] = &targetSQL{classifier: sc.classifier(Input{Target: name}), where: w}
	}
	p.summary.SQLTargets = len(p.sqlFor)
	if sc.byPerson {
		p.sqlScopes = sc
	}
}

// checkSQLRules reports sqlpolicy's errors at each rule of one list
// (sql.rules, or one target's), and an id given again after a rule with
// that id for everyone: a later definition is used only for those an
// earlier one does not apply to, so one after a rule for everyone would
// never be used.
func (fp *fileParser) checkSQLRules(rules []sqlRule) {
	forAll := map[string]bool{}
	for _, r := range rules {
		id := r.rule.ID
		if ruleIDRe.MatchString(id) {
			if forAll[id] {
				if r.everyone() {
					fp.errorf(r.pos, "sql rule %q: duplicate id", id)
				} else {
					fp.errorf(r.pos, "sql rule %q: duplicate id: a rule above with this id applies to everyone, so this scoped one would never be used (put it first)", id)
				}
				continue
			}
			forAll[id] = forAll[id] || r.everyone()
		}
		_, err := sqlpolicy.New([]sqlpolicy.Rule{r.rule})
		errs := []error{err}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			errs = j.Unwrap()
		}
		for _, e := range errs {
			var re *sqlpolicy.RuleError
			switch {
			case e == nil:
			case errors.As(e, &re):
				fp.errorf(r.pos, "sql rule %q: %v", re.ID, re.Err)
			default:
				fp.errorf(r.pos, "sql rule %q: %v", id, e) // impossible: New reports RuleErrors
			}
		}
	}
}

// SQLClassifier returns the SQL policy for a database target: the built-in
// SQL rules with the file's sql.rules over them, and the target's own
// sql.targets.<target>.rules over those. A target of "" or one without
// rules of its own gets sql.rules alone; SQL found in shell commands
// (psql -c, here-documents) is judged with that. Rules scoped by principal
// or role are left out: SQLClassifierFor applies them. It never returns
// nil.
func (p *Policy) SQLClassifier(target string) *sqlpolicy.Classifier {
	if p == nil {
		p = defaultPolicy
	}
	if t, ok := p.sqlFor[target]; ok && target != "" {
		return t.classifier
	}
	if p.sql != nil {
		return p.sql
	}
	return sqlpolicy.Default()
}

// SQLMaxRows returns sql.max_rows (DefaultSQLMaxRows, 1000, unless the
// policy file sets it): the database proxy asks the target to plan each
// UPDATE and DELETE (EXPLAIN, never ANALYZE) and holds one whose estimate
// exceeds this many rows for approval. 0 means no estimate is asked for.
// It applies to every database target.
func (p *Policy) SQLMaxRows() int {
	if p == nil {
		p = defaultPolicy
	}
	return p.sqlMaxRows
}

// SQLTargets returns the names of the targets with rules of their own
// (sql.targets, or named by the targets of a rule of sql.rules), sorted.
func (p *Policy) SQLTargets() []string {
	if p == nil {
		p = defaultPolicy
	}
	return slices.Sorted(maps.Keys(p.sqlFor))
}

// CheckSQLTargets reports every sql.targets name that is not one of the
// configured database targets, as ParseErrors at the name. Rules for a
// target that does not exist (a typo, a renamed database) would silently
// apply nowhere, so bastion refuses to start with them.
func (p *Policy) CheckSQLTargets(configured []string) error {
	if p == nil {
		p = defaultPolicy
	}
	var errs ParseErrors
	for _, name := range p.SQLTargets() {
		if slices.Contains(configured, name) {
			continue
		}
		e := p.sqlFor[name].where
		known := "no database targets are configured"
		if len(configured) > 0 {
			sorted := slices.Sorted(slices.Values(configured))
			known = "configured: " + strings.Join(sorted, ", ")
		}
		e.Msg = fmt.Sprintf("sql target %q is not a configured database target (%s)", name, known)
		errs = append(errs, &e)
	}
	if len(errs) == 0 {
		return nil
	}
	slices.SortFunc(errs, func(a, b *ParseError) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
	})
	return errs
}
