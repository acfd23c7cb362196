package shellpolicy

import (
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/bastion-dev/bastion/shellpolicy/sqlpolicy"
)

// Which SQL rules of a policy file apply to an agent, as for shell rules:
// of the definitions of one id, the first in file order whose scope
// applies is used, sql.targets.<name>.rules before sql.rules, and the
// built-in (sqlpolicy's) when none applies. A classifier is compiled for
// each such choice (a view) once, when first asked for.

// sqlScopes holds a policy file's SQL rules and the classifiers compiled
// from them. It is safe for concurrent use.
type sqlScopes struct {
	shared   []sqlRule            // sql.rules
	own      map[string][]sqlRule // sql.targets.<name>.rules
	byPerson bool                 // some rule has principals or roles

	// views holds a classifier per choice of rules (viewKey). There are
	// at most (P+1)*(R+1) choices per target for P principals and R roles
	// named in the file, since a rule applies to one of those or to none;
	// each holds its own verdict caches (sqlpolicy, 2 MiB each at most).
	views sync.Map // string -> *sqlpolicy.Classifier
}

func newSQLScopes(shared []sqlRule, own map[string][]sqlRule) *sqlScopes {
	sc := &sqlScopes{shared: shared, own: own}
	byPerson := func(list []sqlRule) {
		for _, r := range list {
			sc.byPerson = sc.byPerson || r.principals != nil || r.roles != nil
		}
	}
	byPerson(shared)
	for _, list := range own {
		byPerson(list)
	}
	return sc
}

// classifier returns the classifier for the rules that apply to in, whose
// Target must be "" (SQL in shell commands, or a target without rules of
// its own) or a target with rules of its own.
func (sc *sqlScopes) classifier(in Input) *sqlpolicy.Classifier {
	shared, own := choose(sc.shared, in), choose(sc.own[in.Target], in)
	key := viewKey(in.Target, shared, own)
	if c, ok := sc.views.Load(key); ok {
		return c.(*sqlpolicy.Classifier)
	}
	rules := mergeSQL(pickSQL(sc.shared, shared), pickSQL(sc.own[in.Target], own))
	c, err := sqlpolicy.New(rules)
	if err != nil {
		// impossible: compileSQL checked each rule alone, and ids are
		// unique in a view, which is all sqlpolicy.New checks
		panic(fmt.Sprintf("shellpolicy: sql rules checked at load do not compile: %v", err))
	}
	got, _ := sc.views.LoadOrStore(key, c)
	return got.(*sqlpolicy.Classifier)
}

// choose returns the indexes in list of the rules that apply to in: for
// each id, the first whose scope applies.
func choose(list []sqlRule, in Input) []int {
	var out []int
	var taken map[string]bool
	for i, r := range list {
		if !r.appliesSQL(in) || taken[r.rule.ID] {
			continue
		}
		if taken == nil {
			taken = make(map[string]bool, len(list))
		}
		taken[r.rule.ID] = true
		out = append(out, i)
	}
	return out
}

func pickSQL(list []sqlRule, idx []int) []sqlpolicy.Rule {
	out := make([]sqlpolicy.Rule, len(idx))
	for i, j := range idx {
		out[i] = list[j].rule
	}
	return out
}

// viewKey names a choice of rules for a target.
func viewKey(target string, shared, own []int) string {
	var b strings.Builder
	b.WriteString(target)
	for _, list := range [][]int{shared, own} {
		b.WriteByte(0)
		for _, i := range list {
			b.WriteString(strconv.Itoa(i))
			b.WriteByte(',')
		}
	}
	return b.String()
}

// mergeSQL puts a target's rules over the rules for every target: a rule
// of over replaces the rule of base with the same id, in its place, and
// the others are added after.
func mergeSQL(base, over []sqlpolicy.Rule) []sqlpolicy.Rule {
	merged := append([]sqlpolicy.Rule(nil), base...)
	at := make(map[string]int, len(base))
	for i, r := range base {
		at[r.ID] = i
	}
	for _, r := range over {
		if i, ok := at[r.ID]; ok {
			merged[i] = r
			continue
		}
		merged = append(merged, r)
	}
	return merged
}

// SQLClassifierFor returns the SQL policy for the agent and database
// target of in: SQLClassifier(in.Target), with the rules the policy file
// scopes by principal or role (principals:, roles:) applied for in's
// principal and role. In.Target "" is for SQL found in shell commands. It
// never returns nil, and returns the same classifier for inputs that the
// same rules apply to.
func (p *Policy) SQLClassifierFor(in Input) *sqlpolicy.Classifier {
	if p == nil {
		p = defaultPolicy
	}
	if p.sqlScopes == nil {
		return p.SQLClassifier(in.Target)
	}
	if _, ok := p.sqlFor[in.Target]; !ok {
		in.Target = "" // no rules of its own: the rules for every target
	}
	return p.sqlScopes.classifier(in)
}
