package shellpolicy

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
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
// sqlpolicy validates the rules; errors are reported at the rule.

// sqlRule is one SQL rule as read from the file.
type sqlRule struct {
	rule   sqlpolicy.Rule
	pos    ast.Node // the id's value, or the rule when it has no id
	target bool     // from a target's rules, not sql.rules
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

// targetSQL is the compiled SQL policy of one target.
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

// sqlRules decodes a list of SQL rules with sqlpolicy's own decoder, which
// rejects unknown fields and a missing or unknown decision. Rules with
// errors are left out.
func (fp *fileParser) sqlRules(n ast.Node, what string, target bool) []sqlRule {
	var out []sqlRule
	fp.sequence(n, what, func(e ast.Node) {
		if !fp.plainYAML(e) {
			return
		}
		switch e.(type) {
		case *ast.MappingNode, *ast.MappingValueNode:
		default:
			fp.errorf(e, "%s: each rule must be a mapping (id, decision, ...)", what)
			return
		}
		var r sqlpolicy.Rule
		if err := yaml.NodeToValue(e, &r, yaml.Strict()); err != nil {
			fp.yamlError(e, err)
			return
		}
		pos := e
		fp.mapping(e, "an sql rule", func(key string, _, v ast.Node) {
			if key == "id" {
				pos = v
			}
		})
		out = append(out, sqlRule{rule: r, pos: pos, target: target})
	})
	return out
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

// yamlError reports an error of the YAML library at its token.
func (fp *fileParser) yamlError(n ast.Node, err error) {
	var ye yaml.Error
	if !errors.As(err, &ye) || ye.GetToken() == nil || ye.GetToken().Position == nil {
		fp.errorf(n, "%v", err)
		return
	}
	msg := ye.GetMessage()
	var unknown *yaml.UnknownFieldError
	if errors.As(err, &unknown) {
		msg += " in sql rule (want " + sqlRuleFields + ")"
	}
	if n != nil && ye.GetToken() == n.GetToken() {
		fp.errorf(n, "%s", msg) // the rule itself: point at its first key
		return
	}
	pos := ye.GetToken().Position
	fp.errs = append(fp.errs, &ParseError{File: fp.name, Line: pos.Line, Col: pos.Column, Msg: msg})
}

// compileSQL compiles the sql: section into p once, at load: the rules for
// every target, and for each target its rules over those.
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
	p.sql = fp.sqlClassifier(s.rules, nil, true)
	p.summary.SQLRules = len(s.rules)
	p.sqlFor = make(map[string]*targetSQL, len(s.targets))
	for _, t := range s.targets {
		line, col := fp.position(t.key)
		p.sqlFor[t.name] = &targetSQL{
			classifier: fp.sqlClassifier(s.rules, t.rules, false),
			where:      ParseError{File: fp.name, Line: line, Col: col},
		}
	}
	p.summary.SQLTargets = len(p.sqlFor)
}

// sqlClassifier compiles base with over on top of it: a rule of over
// replaces the rule of base with the same id, the others are added. It
// reports sqlpolicy's errors at their rules: those of over's rules, and
// those of base's when reportBase is set (so that they are reported once,
// not once per target). It returns nil when there are errors.
func (fp *fileParser) sqlClassifier(base, over []sqlRule, reportBase bool) *sqlpolicy.Classifier {
	merged := slices.Clone(base)
	first := map[string]int{}
	for i, r := range base {
		if _, ok := first[r.rule.ID]; !ok {
			first[r.rule.ID] = i
		}
	}
	replaced := map[string]bool{}
	for _, r := range over {
		if i, ok := first[r.rule.ID]; ok && !replaced[r.rule.ID] {
			merged[i], replaced[r.rule.ID] = r, true
			continue
		}
		merged = append(merged, r) // a second one with the same id is sqlpolicy's duplicate
	}
	rules := make([]sqlpolicy.Rule, len(merged))
	for i, r := range merged {
		rules[i] = r.rule
	}
	c, err := sqlpolicy.New(rules)
	if err == nil {
		return c
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		var re *sqlpolicy.RuleError
		if !errors.As(e, &re) || re.Index < 0 || re.Index >= len(merged) {
			fp.errorf(nil, "sql rules: %v", e) // impossible: New reports RuleErrors
			continue
		}
		if r := merged[re.Index]; reportBase || r.target {
			fp.errorf(r.pos, "sql rule %q: %v", re.ID, re.Err)
		}
	}
	return nil
}

// SQLClassifier returns the SQL policy for a database target: the built-in
// SQL rules with the file's sql.rules over them, and the target's own
// sql.targets.<target>.rules over those. A target of "" or one without a
// section of its own gets sql.rules alone; SQL found in shell commands
// (psql -c, here-documents) is judged with that. It never returns nil.
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
// (sql.targets), sorted.
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
