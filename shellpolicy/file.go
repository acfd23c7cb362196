package shellpolicy

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/bastion-dev/bastion/policy"
)

// ParseError is one error in a policy file, at a line and column.
type ParseError struct {
	File string
	Line int
	Col  int
	Msg  string
}

func (e *ParseError) Error() string { return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg) }

// ParseErrors is every error found in a policy file, in file order.
type ParseErrors []*ParseError

func (es ParseErrors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

var ruleIDRe = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// fileRule is one entry of `rules:` as written.
type fileRule struct {
	ruleHead
	pos      ast.Node // the id's value, or the rule when it has none
	disabled bool
	match    []*matcher
}

// fileParser collects errors with positions while reading one file.
type fileParser struct {
	name string
	errs ParseErrors
}

func (fp *fileParser) errorf(n ast.Node, format string, args ...any) {
	line, col := fp.position(n)
	fp.errs = append(fp.errs, &ParseError{File: fp.name, Line: line, Col: col, Msg: fmt.Sprintf(format, args...)})
}

// position is where n starts, 1:1 when unknown.
func (fp *fileParser) position(n ast.Node) (line, col int) {
	line, col = 1, 1
	// a block mapping's token is its first ':'; point at its first key
	switch m := n.(type) {
	case *ast.MappingValueNode:
		n = m.Key
	case *ast.MappingNode:
		if !m.IsFlowStyle && len(m.Values) > 0 {
			n = m.Values[0].Key
		}
	}
	if n != nil {
		if tk := n.GetToken(); tk != nil && tk.Position != nil {
			line, col = tk.Position.Line, tk.Position.Column
		}
	}
	return line, col
}

// compile reads a policy file and merges it over base (nil for the built-in
// policy itself).
func compile(base *Policy, data []byte, name string) (*Policy, error) {
	fp := &fileParser{name: name}
	rules, sql := fp.read(data) // rules with errors are left out, so the rest is checked too
	p := &Policy{rules: make(map[string]*rule)}
	if base != nil {
		for id, r := range base.rules {
			p.rules[id] = r
		}
	}
	seen := make(map[string]*fileRule)
	for _, fr := range rules {
		fp.merge(p, base, fr, seen[fr.id])
		if seen[fr.id] == nil {
			seen[fr.id] = fr
			p.summary.FileRules++
			if base != nil && base.rules[fr.id] != nil {
				p.summary.Overrides++
			}
		}
	}
	fp.compileSQL(p, base, sql)
	if len(fp.errs) > 0 {
		slices.SortStableFunc(fp.errs, func(a, b *ParseError) int {
			return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
		})
		return nil, fp.errs
	}
	p.summary.Rules = len(p.rules)
	p.index()
	return p, nil
}

func (fp *fileParser) merge(p *Policy, base *Policy, fr *fileRule, earlier *fileRule) {
	if earlier != nil && (base == nil || earlier.everyone()) {
		fp.errorf(fr.pos, "rule %q is already defined above for everyone", fr.id)
		return
	}
	v := &variant{ruleScope: fr.ruleScope, disabled: fr.disabled, match: fr.match}
	old := p.rules[fr.id]
	var builtin *variant
	if base != nil && base.rules[fr.id] != nil {
		bv := base.rules[fr.id].variants
		builtin = bv[len(bv)-1]
	}
	switch {
	case builtin != nil:
		v.decision, v.message, v.hint = builtin.decision, builtin.message, builtin.hint
		if v.match == nil {
			v.match = builtin.match
		}
	case fr.disabled:
		fp.errorf(fr.pos, "there is no built-in rule %q to disable", fr.id)
		return
	case fr.decision == nil:
		fp.errorf(fr.pos, "rule %q needs a decision (allow, approve or deny)", fr.id)
		return
	case fr.match == nil && (base != nil || !contains(codeRules, fr.id)):
		fp.errorf(fr.pos, "rule %q needs a match (it is not a built-in rule)", fr.id)
		return
	}
	if fr.decision != nil {
		v.decision = *fr.decision
	}
	if fr.message != nil {
		v.message = *fr.message
	}
	if fr.hint != nil {
		v.hint = *fr.hint
	}
	if floor, ok := floors[fr.id]; ok && (v.disabled || v.decision < floor) {
		fp.errorf(fr.pos, "rule %q guards what bastion cannot check: it can be made stricter, but not %s or disabled", fr.id, floorWord(floor))
		return
	}
	if v.disabled && undisableable[fr.id] {
		fp.errorf(fr.pos, "rule %q is the fallback and cannot be disabled (change its decision instead)", fr.id)
		return
	}
	r := &rule{id: fr.id, seq: len(p.rules)}
	if old != nil {
		r.seq = old.seq
	}
	if old != nil && earlier != nil {
		// a second scoped override in the same file goes after the first
		r.variants = append(append(append(r.variants, old.variants[:len(old.variants)-1]...), v), old.variants[len(old.variants)-1])
	} else if old != nil {
		r.variants = append([]*variant{v}, old.variants...)
	} else {
		r.variants = []*variant{v}
	}
	p.rules[fr.id] = r
}

func floorWord(d policy.Decision) string {
	if d == policy.Deny {
		return "less than deny"
	}
	return "allow"
}

// index builds the by-command-name lookup of rules with a match, each list
// in definition order (rule.seq).
func (p *Policy) index() {
	p.byName = make(map[string][]*rule)
	p.anyName = nil
	inOrder := slices.SortedFunc(maps.Values(p.rules), func(a, b *rule) int { return cmp.Compare(a.seq, b.seq) })
	for _, r := range inOrder {
		names := map[string]bool{}
		wild := false
		for _, v := range r.variants {
			for _, m := range v.match {
				if len(m.commands) == 0 {
					wild = true
				}
				for _, c := range m.commands {
					if hasGlobMeta(c) {
						wild = true
					} else {
						names[c] = true
					}
				}
			}
		}
		if wild {
			p.anyName = append(p.anyName, r)
			continue
		}
		for n := range names {
			p.byName[n] = append(p.byName[n], r)
		}
	}
}

// read parses the YAML, the shell rules and the sql: section in it.
func (fp *fileParser) read(data []byte) ([]*fileRule, *fileSQL) {
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		fp.yamlError(err)
		return nil, nil
	}
	var body ast.Node
	for _, d := range f.Docs {
		if d.Body == nil {
			continue
		}
		if body != nil {
			fp.errorf(d.Body, "a policy file holds one YAML document")
			return nil, nil
		}
		body = d.Body
	}
	if body == nil {
		fp.errorf(nil, "empty policy file: want version: 1 and rules")
		return nil, nil
	}
	var rules []*fileRule
	var sql *fileSQL
	version := false
	fp.mapping(body, "the policy file", func(key string, k, v ast.Node) {
		switch key {
		case "version":
			if s, ok := fp.scalar(v); ok && s != "1" {
				fp.errorf(v, "unsupported version %q (want 1)", s)
			}
			version = true
		case "rules":
			fp.sequence(v, "rules", func(n ast.Node) {
				if r := fp.rule(n); r != nil {
					rules = append(rules, r)
				}
			})
		case "sql":
			sql = fp.sqlSection(v)
		default:
			fp.errorf(k, "unknown field %q (want version, rules or sql)", key)
		}
	})
	if !version && len(fp.errs) == 0 {
		fp.errorf(body, "missing version: 1")
	}
	return rules, sql
}

func (fp *fileParser) rule(n ast.Node) *fileRule {
	fr := &fileRule{pos: n}
	nerr := len(fp.errs)
	fp.mapping(n, "a rule", func(key string, k, v ast.Node) {
		if fp.headField(&fr.ruleHead, key, v, "", false) {
			if key == "id" && fr.idPos != nil {
				if !ruleIDRe.MatchString(fr.id) {
					fp.errorf(v, "rule id %q: use lower-case words joined by dashes", fr.id)
				}
				fr.pos = v
			}
			return
		}
		switch key {
		case "disabled":
			if s, ok := fp.scalar(v); ok {
				switch s {
				case "true":
					fr.disabled = true
				case "false":
				default:
					fp.errorf(v, "disabled: want true or false, not %q", s)
				}
			}
		case "match":
			if seq, ok := v.(*ast.SequenceNode); ok {
				if len(seq.Values) == 0 {
					fp.errorf(v, "match: empty list")
				}
				for _, e := range seq.Values {
					if m := fp.matcher(e); m != nil {
						fr.match = append(fr.match, m)
					}
				}
			} else if m := fp.matcher(v); m != nil {
				fr.match = []*matcher{m}
			}
		default:
			fp.errorf(k, "unknown field %q in rule (want id, match, decision, message, hint, principals, roles or disabled)", key)
		}
	})
	if fr.id == "" {
		if len(fp.errs) == nerr {
			fp.errorf(n, "rule without an id")
		}
		return nil
	}
	if len(fp.errs) > nerr {
		return nil
	}
	return fr
}

func (fp *fileParser) matcher(n ast.Node) *matcher {
	m := &matcher{}
	any := false
	fp.mapping(n, "a match", func(key string, k, v ast.Node) {
		any = true
		switch key {
		case "command":
			m.commands = fp.strings(v, key)
			for _, c := range m.commands {
				if _, err := path.Match(c, ""); err != nil || c == "" || strings.Contains(c, "/") {
					fp.errorf(v, "command: bad name or pattern %q", c)
				}
			}
		case "args":
			for _, a := range fp.strings(v, key) {
				var alts []argPattern
				for _, alt := range strings.Split(a, "|") {
					p, err := compileArg(alt)
					if err != nil || alt == "" {
						fp.errorf(v, "args: bad pattern %q", alt)
					}
					alts = append(alts, p)
				}
				m.args = append(m.args, alts)
			}
		case "args_regex":
			if s, ok := fp.scalar(v); ok {
				re, err := regexp.Compile(s)
				if err != nil {
					fp.errorf(v, "args_regex: %v", err)
				}
				m.argsRe = re
			}
		case "target_prefix":
			for _, t := range fp.strings(v, key) {
				if !strings.HasPrefix(t, "/") {
					fp.errorf(v, "target_prefix: %q is not an absolute path", t)
				}
				m.targets = append(m.targets, path.Clean(t))
			}
		default:
			fp.errorf(k, "unknown field %q in match (want command, args, args_regex or target_prefix)", key)
		}
	})
	if !any {
		fp.errorf(n, "empty match")
		return nil
	}
	return m
}

// yamlError reports an error of the YAML parser at its token.
func (fp *fileParser) yamlError(err error) {
	var ye yaml.Error
	if !errors.As(err, &ye) || ye.GetToken() == nil || ye.GetToken().Position == nil {
		fp.errorf(nil, "%v", err)
		return
	}
	pos := ye.GetToken().Position
	fp.errs = append(fp.errs, &ParseError{File: fp.name, Line: pos.Line, Col: pos.Column, Msg: ye.GetMessage()})
}

// mapping calls fn for each key of a YAML mapping, reporting duplicates.
func (fp *fileParser) mapping(n ast.Node, what string, fn func(key string, k, v ast.Node)) {
	var values []*ast.MappingValueNode
	switch m := n.(type) {
	case *ast.MappingNode:
		values = m.Values
	case *ast.MappingValueNode:
		values = []*ast.MappingValueNode{m}
	default:
		fp.errorf(n, "%s must be a mapping", what)
		return
	}
	seen := map[string]bool{}
	for _, mv := range values {
		key, ok := fp.scalar(mv.Key)
		if !ok {
			continue
		}
		if seen[key] {
			fp.errorf(mv.Key, "duplicate field %q", key)
			continue
		}
		seen[key] = true
		fn(key, mv.Key, mv.Value)
	}
}

func (fp *fileParser) sequence(n ast.Node, what string, fn func(ast.Node)) {
	seq, ok := n.(*ast.SequenceNode)
	if !ok {
		fp.errorf(n, "%s must be a list", what)
		return
	}
	for _, e := range seq.Values {
		fn(e)
	}
}

// strings reads a list of strings; a single string is a list of one.
func (fp *fileParser) strings(n ast.Node, what string) []string {
	out := []string{}
	if _, ok := n.(*ast.SequenceNode); !ok {
		if s, ok := fp.scalar(n); ok {
			out = append(out, s)
		}
		return out
	}
	fp.sequence(n, what, func(e ast.Node) {
		if s, ok := fp.scalar(e); ok {
			out = append(out, s)
		}
	})
	return out
}

// scalar reads a string, number or boolean as written.
func (fp *fileParser) scalar(n ast.Node) (string, bool) {
	switch v := n.(type) {
	case *ast.StringNode:
		return v.Value, true
	case *ast.LiteralNode:
		return strings.TrimSuffix(v.Value.Value, "\n"), true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode:
		return n.GetToken().Value, true
	case *ast.AnchorNode, *ast.AliasNode, *ast.TagNode:
		fp.errorf(n, "YAML anchors, aliases and tags are not supported here")
	case nil:
		fp.errorf(nil, "missing value")
	default:
		fp.errorf(n, "want a single value, not %s", strings.ToLower(n.Type().String()))
	}
	return "", false
}
