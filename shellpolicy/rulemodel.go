package shellpolicy

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/goccy/go-yaml/ast"

	"github.com/bastion-dev/bastion/policy"
	"github.com/bastion-dev/bastion/shellpolicy/sqlpolicy"
)

// The rule model shared by the shell rules (rules:) and the SQL rules
// (sql.rules, sql.targets.<name>.rules) of a policy file: every rule has
// an id, a decision, words for the agent and a scope, decoded by one
// function (headField), and the definitions of one id are chosen for an
// Input the same way (the first in file order whose scope applies, the
// built-in last). Results of different rules are combined with one
// tie-break (better).

// ruleScope is whom, and for an SQL rule where, a rule applies to. A nil list
// means everyone (every role, every database target).
type ruleScope struct {
	principals []string
	roles      []string
	targets    []string // SQL rules in sql.rules only
}

// applies reports whether the rule applies to in's principal and role.
// Targets are not looked at: shell rules have none, and an SQL rule's are
// checked by appliesSQL.
func (s ruleScope) applies(in Input) bool {
	return (s.principals == nil || contains(s.principals, in.Principal)) &&
		(s.roles == nil || contains(s.roles, in.Role))
}

// appliesSQL is applies, and the target: a rule with targets applies only
// to SQL going to one of them (never to SQL in shell commands, whose
// target is "").
func (s ruleScope) appliesSQL(in Input) bool {
	return s.applies(in) && (s.targets == nil || in.Target != "" && contains(s.targets, in.Target))
}

// everyone reports whether the scope is empty: the rule applies to all.
func (s ruleScope) everyone() bool { return s.principals == nil && s.roles == nil && s.targets == nil }

// ruleHead is what every rule of a policy file has, as written. Pointers
// are nil and lists nil when the field is not given.
type ruleHead struct {
	id       string
	idPos    ast.Node // the id's value; nil without an id
	decision *policy.Decision
	message  *string
	hint     *string
	ruleScope
}

// headField decodes key if it is one of the fields every rule has: id,
// decision, message, hint, principals, roles, and when withTargets (SQL
// rules in sql.rules) targets. It reports whether key was one. errPrefix
// starts the errors about values that name the rule (`sql rule "x": `;
// "" for shell rules). A null message or hint is as if not given.
func (fp *fileParser) headField(h *ruleHead, key string, v ast.Node, errPrefix string, withTargets bool) bool {
	switch key {
	case "id":
		if isNull(v) {
			return true
		}
		if s, ok := fp.scalar(v); ok {
			h.id, h.idPos = s, v
		}
	case "decision":
		if isNull(v) {
			fp.errorf(v, "%sdecision is required (allow, approve or deny)", errPrefix)
			return true
		}
		if s, ok := fp.scalar(v); ok {
			d, err := policy.ParseDecision(s)
			if err != nil {
				fp.errorf(v, "%s%v", errPrefix, err)
			}
			h.decision = &d
		}
	case "message", "hint":
		if isNull(v) {
			return true
		}
		if s, ok := fp.scalar(v); ok {
			if key == "message" {
				h.message = &s
			} else {
				h.hint = &s
			}
		}
	case "principals":
		h.principals = fp.scopeList(v, key, validPrincipal, "a principal (a login name: letters, digits and . _ - @ +, not starting with -)")
	case "roles":
		h.roles = fp.scopeList(v, key, validName, "a role name (printable, no spaces at either end)")
	case "targets":
		if !withTargets {
			return false
		}
		h.targets = fp.scopeList(v, key, validName, "a database target name (printable, no spaces at either end)")
	default:
		return false
	}
	return true
}

// scopeList reads principals, roles or targets: a name or a list of
// names, each of which valid accepts. An empty list would make the rule
// apply to no one, which is never what was meant: it is an error, like a
// name no principal or role can have.
func (fp *fileParser) scopeList(v ast.Node, key string, valid func(string) bool, want string) []string {
	if isNull(v) {
		fp.errorf(v, "%s: no value (leave %s out to apply the rule to all)", key, key)
		return nil
	}
	nerr := len(fp.errs)
	list := fp.strings(v, key)
	if len(fp.errs) > nerr {
		return list
	}
	if len(list) == 0 {
		fp.errorf(v, "%s: empty list: the rule would apply to none (leave %s out to apply it to all)", key, key)
	}
	for _, s := range list {
		if !valid(s) {
			fp.errorf(v, "%s: %q is not %s", key, s, want)
		}
	}
	return list
}

// validPrincipal accepts the login names bastion issues certificates for
// (certs: letters, digits and ._-@+, not starting with a dash).
func validPrincipal(s string) bool {
	if s == "" || len(s) > 255 || s[0] == '-' {
		return false
	}
	for _, r := range s {
		if !(r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) || strings.ContainsRune("._-@+", r)) {
			return false
		}
	}
	return true
}

// validName accepts a role or target name: not empty, printable, without
// spaces at either end (which would never match the configured name).
func validName(s string) bool {
	if s == "" || strings.TrimSpace(s) != s {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) && r != ' ' {
			return false
		}
	}
	return true
}

// isNull reports whether n is YAML's null (~, null, or nothing after the
// colon).
func isNull(n ast.Node) bool {
	_, ok := n.(*ast.NullNode)
	return ok
}

// peekID returns the id a rule mapping gives, for error messages about
// its other fields ("" when it has none).
func peekID(n ast.Node) string {
	var values []*ast.MappingValueNode
	switch m := n.(type) {
	case *ast.MappingNode:
		values = m.Values
	case *ast.MappingValueNode:
		values = []*ast.MappingValueNode{m}
	}
	for _, mv := range values {
		if mv.Key != nil && mv.Key.GetToken() != nil && mv.Key.GetToken().Value == "id" {
			if s, ok := mv.Value.(*ast.StringNode); ok {
				return s.Value
			}
			if mv.Value != nil && mv.Value.GetToken() != nil && !isNull(mv.Value) {
				return mv.Value.GetToken().Value
			}
		}
	}
	return ""
}

// better reports whether r should replace cur as the result of a command
// or command line: a stricter decision wins; on a tie the first found is
// kept, except that a rule that says something (rm-temp, sql-read)
// replaces the fallback default-allow. It is the SQL policy's tie-break
// (sqlpolicy.Replaces), with default-allow as the shell's fallback.
func better(r, cur policy.Result) bool {
	return sqlpolicy.Replaces(r, r.Rule == ruleDefaultAllow, cur, cur.Rule == ruleDefaultAllow)
}

// sqlPrefix starts the errors about an SQL rule's values.
func sqlPrefix(id string) string { return fmt.Sprintf("sql rule %q: ", id) }
