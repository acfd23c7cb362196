package sqlpolicy

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"

	"github.com/bastion-dev/bastion/policy"
)

// Rule is one entry of a target's SQL policy file.
//
// A rule whose ID names a built-in rule (see DefaultRules) overrides it: its
// Decision replaces the built-in decision, and a non-empty Message or Hint
// replaces the built-in one. With matchers the override is scoped: it applies
// only to the verdicts whose statement kind, tables and functions all match,
// and the built-in applies everywhere else. That is how a policy loosens a
// built-in for some objects, e.g. sql-truncate allowed for tables "tmp_*".
// A scoped override's tables and functions matchers must match every table
// (function) the verdict is about, so TRUNCATE tmp_a, users stays denied.
//
// A rule with a new ID adds a check: it needs at least one matcher, and it
// applies to a statement when, for every matcher given, some statement kind,
// table or function of the statement matches (tables and functions anywhere
// in the statement, subqueries and CTEs included). New rules can only make a
// verdict stricter, so their decision must be approve or deny.
//
// Patterns are shell globs (path.Match), matched case-insensitively. A table
// pattern with a dot ("billing.*") matches schema-qualified names, and an
// unqualified table name in SQL counts as "public.<name>" for it; a pattern
// without a dot ("tmp_*") matches the table name in any schema. Kinds are the
// Statement.Kind strings ("DELETE", "DROP TABLE", "CREATE INDEX").
type Rule struct {
	ID        string          `yaml:"id" json:"id"`
	Kinds     []string        `yaml:"kinds,omitempty" json:"kinds,omitempty"`
	Tables    []string        `yaml:"tables,omitempty" json:"tables,omitempty"`
	Functions []string        `yaml:"functions,omitempty" json:"functions,omitempty"`
	Decision  policy.Decision `yaml:"decision" json:"decision"`
	Message   string          `yaml:"message,omitempty" json:"message,omitempty"`
	Hint      string          `yaml:"hint,omitempty" json:"hint,omitempty"`
}

// UnmarshalYAML decodes a rule from a policy file. Unknown fields are
// errors, and the decision must be given: the zero Decision is allow, and a
// rule that meant only to reword a hint must not silently allow what the
// built-in denies. Errors carry the line and column.
func (r *Rule) UnmarshalYAML(node ast.Node) error {
	var raw struct {
		ID        string   `yaml:"id"`
		Kinds     []string `yaml:"kinds"`
		Tables    []string `yaml:"tables"`
		Functions []string `yaml:"functions"`
		Decision  *string  `yaml:"decision"`
		Message   string   `yaml:"message"`
		Hint      string   `yaml:"hint"`
	}
	if err := yaml.NodeToValue(node, &raw, yaml.Strict()); err != nil {
		return err
	}
	if raw.Decision == nil {
		return &yaml.SyntaxError{Message: fmt.Sprintf("sql rule %q: decision is required (allow, approve or deny)", raw.ID), Token: node.GetToken()}
	}
	d, err := policy.ParseDecision(*raw.Decision)
	if err != nil {
		return &yaml.SyntaxError{Message: fmt.Sprintf("sql rule %q: %v", raw.ID, err), Token: valueToken(node, "decision")}
	}
	*r = Rule{ID: raw.ID, Kinds: raw.Kinds, Tables: raw.Tables, Functions: raw.Functions,
		Decision: d, Message: raw.Message, Hint: raw.Hint}
	return nil
}

// valueToken finds the token of a key's value in a mapping, for errors.
func valueToken(node ast.Node, key string) *token.Token {
	var pairs []*ast.MappingValueNode
	switch m := node.(type) {
	case *ast.MappingNode:
		pairs = m.Values
	case *ast.MappingValueNode:
		pairs = []*ast.MappingValueNode{m}
	}
	for _, kv := range pairs {
		if kv.Key != nil && kv.Key.GetToken() != nil && kv.Key.GetToken().Value == key && kv.Value != nil {
			return kv.Value.GetToken()
		}
	}
	return node.GetToken()
}

// ParseRules decodes a YAML list of rules, rejecting unknown fields. Errors
// name the line and column. The rules are not validated until New.
func ParseRules(data []byte) ([]Rule, error) {
	var rules []Rule
	if err := yaml.UnmarshalWithOptions(data, &rules, yaml.Strict()); err != nil {
		return nil, fmt.Errorf("sql policy: %s", yaml.FormatError(err, false, true))
	}
	return rules, nil
}

// RuleError is a rule that New rejects. Index is its position in the list
// given to New (from 0), so that a caller that read the rules from a file
// can point at the rule; the message counts from 1.
type RuleError struct {
	Index int
	ID    string
	Err   error
}

func (e *RuleError) Error() string {
	return fmt.Sprintf("sql rule %d (%q): %v", e.Index+1, e.ID, e.Err)
}

func (e *RuleError) Unwrap() error { return e.Err }

// builtin is the default SQL policy. Rule order is documentation order.
var builtin = []Rule{
	// deny
	{ID: "sql-parse-error", Decision: policy.Deny,
		Hint: "fix the SQL; bastion checks each statement with the PostgreSQL 17 parser and refuses what it cannot read"},
	{ID: "sql-drop", Decision: policy.Deny, Message: "dropping destroys the object and everything in it",
		Hint: "bastion does not run DROP for agents; ask a human to do it, or rename the object instead"},
	{ID: "sql-truncate", Decision: policy.Deny, Message: "TRUNCATE removes every row at once",
		Hint: "delete the rows you mean with DELETE ... WHERE, or ask a human to truncate"},
	{ID: "sql-copy-program", Decision: policy.Deny, Message: "COPY ... PROGRAM runs a shell command on the database server",
		Hint: "use COPY ... TO STDOUT or FROM STDIN (psql \\copy) to move data through the client"},
	{ID: "sql-server-file", Decision: policy.Deny, Message: "reads or writes files on the database server",
		Hint: "use COPY ... TO STDOUT or FROM STDIN (psql \\copy) to move data through the client"},
	{ID: "sql-alter-system", Decision: policy.Deny, Message: "ALTER SYSTEM rewrites the server configuration",
		Hint: "use SET for this session, or ask a DBA to change the server configuration"},
	{ID: "sql-untrusted-language", Decision: policy.Deny, Message: "code in an untrusted language runs with the database server's operating-system rights",
		Hint: "write the function in SQL or PL/pgSQL"},
	{ID: "sql-string-syntax", Decision: policy.Deny, Message: "changes how the server reads the strings of later statements, so that bastion's checks would no longer see what the server runs",
		Hint: "keep standard_conforming_strings on and client_encoding UTF8; use E'...' strings for backslash escapes"},
	// approve
	{ID: "sql-unrestricted-delete", Decision: policy.Approve, Message: "deletes every row",
		Hint: "add a WHERE clause on the rows to delete, or wait for a human to approve"},
	{ID: "sql-unrestricted-update", Decision: policy.Approve, Message: "updates every row",
		Hint: "add a WHERE clause on the rows to update, or wait for a human to approve"},
	{ID: "sql-alter-drop", Decision: policy.Approve, Message: "removes part of a table and its data",
		Hint: "wait for a human to approve the schema change"},
	{ID: "sql-ddl", Decision: policy.Approve, Message: "changes the schema",
		Hint: "wait for a human to approve the schema change"},
	{ID: "sql-privilege", Decision: policy.Approve, Message: "changes privileges or ownership",
		Hint: "wait for a human to approve the privilege change"},
	{ID: "sql-role", Decision: policy.Approve, Message: "creates, changes or switches roles",
		Hint: "wait for a human to approve; run as the role bastion connected you with"},
	{ID: "sql-lock", Decision: policy.Approve, Message: "an explicit lock can block other sessions",
		Hint: "let statements take their own locks, or wait for a human to approve"},
	{ID: "sql-opaque", Decision: policy.Approve, Message: "runs code that bastion cannot inspect",
		Hint: "send the statements themselves instead, or wait for a human to approve"},
	{ID: "sql-admin", Decision: policy.Approve, Message: "signals other sessions or changes server state",
		Hint: "wait for a human to approve"},
	{ID: "sql-setting", Decision: policy.Approve, Message: "changes a setting that affects logging, triggers, read-only mode or safety checks",
		Hint: "wait for a human to approve the setting"},
	{ID: "sql-maintenance", Decision: policy.Approve, Message: "rewrites data under a heavy lock",
		Hint: "wait for a human to approve, or schedule it in a maintenance window"},
	// allow
	{ID: "sql-read", Decision: policy.Allow, Hint: "results pass through bastion's masking"},
	{ID: "sql-write", Decision: policy.Allow, Hint: "wrap related writes in BEGIN ... COMMIT so that they can be rolled back"},
	{ID: "sql-create", Decision: policy.Allow, Message: "creates a new object",
		Hint: "replacing or dropping objects needs approval"},
	{ID: "sql-transaction", Decision: policy.Allow, Hint: "transaction control is always allowed"},
	{ID: "sql-session", Decision: policy.Allow, Hint: "session commands are allowed"},
	{ID: "sql-explain", Decision: policy.Allow, Message: "plans without running",
		Hint: "EXPLAIN ANALYZE runs the statement and is judged like it"},
	{ID: "sql-vacuum", Decision: policy.Allow, Hint: "VACUUM FULL, CLUSTER and REINDEX need approval"},
	{ID: "sql-empty", Decision: policy.Allow, Hint: "send a statement"},
}

// DefaultRules returns a copy of the built-in SQL policy, for
// `bastion policy show-default`.
func DefaultRules() []Rule {
	out := make([]Rule, len(builtin))
	copy(out, builtin)
	return out
}

var ruleID = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// matcher is a compiled set of a rule's patterns.
type matcher struct {
	kinds, tables, funcs []string
}

func (m matcher) empty() bool { return len(m.kinds)+len(m.tables)+len(m.funcs) == 0 }

type compiledRule struct {
	Rule
	match matcher
}

// ruleset is the compiled policy: built-ins (with unscoped overrides
// applied), scoped overrides by id, and added rules in file order.
type ruleset struct {
	base   map[string]Rule
	scoped map[string]compiledRule
	extra  []compiledRule
}

func compile(user []Rule) (*ruleset, error) {
	rs := &ruleset{base: make(map[string]Rule, len(builtin)), scoped: map[string]compiledRule{}}
	for _, r := range builtin {
		rs.base[r.ID] = r
	}
	seen := map[string]bool{}
	var errs []error
	for i, r := range user {
		if err := rs.add(r, seen); err != nil {
			errs = append(errs, &RuleError{Index: i, ID: r.ID, Err: err})
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return rs, nil
}

func (rs *ruleset) add(r Rule, seen map[string]bool) error {
	if !ruleID.MatchString(r.ID) {
		return errors.New("id must be kebab-case, like no-billing-writes")
	}
	if seen[r.ID] {
		return errors.New("duplicate id")
	}
	seen[r.ID] = true
	if r.Decision < policy.Allow || r.Decision > policy.Deny {
		return fmt.Errorf("invalid decision %v", r.Decision)
	}
	m, err := compileMatcher(r)
	if err != nil {
		return err
	}
	b, isBuiltin := rs.base[r.ID]
	switch {
	case isBuiltin:
		if (r.ID == "sql-parse-error" || r.ID == "sql-empty") && !m.empty() {
			return errors.New("this rule has no statement to match; drop the matchers")
		}
		if r.ID == "sql-parse-error" && r.Decision == policy.Allow {
			return errors.New("unparseable SQL cannot be allowed")
		}
		if r.Message == "" {
			r.Message = b.Message
		}
		if r.Hint == "" {
			r.Hint = b.Hint
		}
		if m.empty() {
			rs.base[r.ID] = r
		} else {
			rs.scoped[r.ID] = compiledRule{Rule: r, match: m}
		}
	case m.empty():
		return errors.New("a new rule needs at least one of kinds, tables or functions")
	case r.Decision == policy.Allow:
		return errors.New("a new rule can only make statements stricter (approve or deny); to allow, override a built-in rule by its id")
	default:
		rs.extra = append(rs.extra, compiledRule{Rule: r, match: m})
	}
	return nil
}

func compileMatcher(r Rule) (matcher, error) {
	var m matcher
	for _, k := range r.Kinds {
		k = strings.Join(strings.Fields(strings.ToUpper(k)), " ")
		if k == "" {
			return m, errors.New("empty kind")
		}
		m.kinds = append(m.kinds, k)
	}
	for _, list := range []struct {
		in  []string
		out *[]string
		of  string
	}{{r.Tables, &m.tables, "table"}, {r.Functions, &m.funcs, "function"}} {
		for _, p := range list.in {
			p = strings.ToLower(strings.TrimSpace(p))
			if _, err := path.Match(p, ""); err != nil || p == "" {
				return m, fmt.Errorf("bad %s pattern %q", list.of, p)
			}
			*list.out = append(*list.out, p)
		}
	}
	return m, nil
}

// matchName reports whether a pattern matches a table or function name
// written as "name" or "schema.name" (already lower case).
func matchName(pattern, name string) bool {
	if strings.Contains(pattern, ".") {
		if !strings.Contains(name, ".") {
			name = "public." + name
		}
	} else if i := strings.LastIndexByte(name, '.'); i >= 0 {
		name = name[i+1:]
	}
	ok, _ := path.Match(pattern, name)
	return ok
}

func anyMatch(patterns []string, names []string) bool {
	for _, n := range names {
		for _, p := range patterns {
			if matchName(p, strings.ToLower(n)) {
				return true
			}
		}
	}
	return false
}

// allMatch reports whether names is non-empty and each name matches a pattern.
func allMatch(patterns []string, names []string) bool {
	for _, n := range names {
		if !anyMatch(patterns, []string{n}) {
			return false
		}
	}
	return len(names) > 0
}

func hasKind(kinds []string, k string) bool {
	for _, x := range kinds {
		if x == k {
			return true
		}
	}
	return false
}

// matchesFinding is the test for a scoped override: every matcher given must
// hold for the finding's own subject.
func (m matcher) matchesFinding(f finding) bool {
	if len(m.kinds) > 0 && !hasKind(m.kinds, f.kind) {
		return false
	}
	if len(m.tables) > 0 && !allMatch(m.tables, f.tables) {
		return false
	}
	if len(m.funcs) > 0 && !allMatch(m.funcs, f.funcs) {
		return false
	}
	return true
}

// matchesStatement is the test for an added rule: every matcher given must
// hold for something anywhere in the statement. It returns what matched,
// for the reason: the first matching table and function.
func (m matcher) matchesStatement(a *analysis) (table, fn string, ok bool) {
	if len(m.kinds) > 0 {
		found := false
		for _, k := range a.kinds {
			found = found || hasKind(m.kinds, k)
		}
		if !found {
			return "", "", false
		}
	}
	if len(m.tables) > 0 {
		if table = firstMatch(m.tables, a.tables, a.shown); table == "" {
			return "", "", false
		}
	}
	if len(m.funcs) > 0 {
		if fn = firstMatch(m.funcs, a.funcs, a.funcs); fn == "" {
			return "", "", false
		}
	}
	return table, fn, true
}

// firstMatch returns shown[i] for the first names[i] that a pattern matches.
func firstMatch(patterns, names, shown []string) string {
	for i, n := range names {
		if anyMatch(patterns, []string{n}) {
			return shown[i]
		}
	}
	return ""
}

// result turns a finding into a policy result under this rule set.
func (rs *ruleset) result(f finding) policy.Result {
	r := rs.base[f.rule]
	if s, ok := rs.scoped[f.rule]; ok && s.match.matchesFinding(f) {
		r = s.Rule
	}
	return resultOf(r, f.detail)
}

func resultOf(r Rule, detail string) policy.Result {
	reason := detail
	if r.Message != "" {
		reason += ": " + r.Message
	}
	return policy.Result{Decision: r.Decision, Rule: r.ID, Reason: reason, Hint: r.Hint}
}

// Replaces is the tie-break of both policy engines, this one and the
// shell's (shellpolicy), when several rules decide the same input: it
// reports whether r should replace cur, the result so far. A stricter
// decision wins; on a tie the result found first is kept, unless it is
// only a fallback and r is not. The fallback is, here, a statement's
// baseline verdict (sql-read for a SELECT, sql-write for an INSERT), which
// any other finding of the same decision replaces; in the shell it is
// default-allow.
func Replaces(r policy.Result, rFallback bool, cur policy.Result, curFallback bool) bool {
	return r.Stricter(cur) || r.Decision == cur.Decision && curFallback && !rFallback
}
