package shellpolicy

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/bastion-dev/bastion/policy"
	"github.com/bastion-dev/bastion/shellpolicy/sqlpolicy"
)

// scopedSQLFile scopes SQL rules by role, principal and target, the way
// shell rules are scoped.
const scopedSQLFile = `version: 1
rules:
  - id: kubectl-delete
    decision: allow
    roles: [dba]
sql:
  rules:
    # the DBAs may drop scratch tables; everyone else keeps the built-in deny
    - id: sql-drop
      tables: [tmp_*]
      decision: approve
      roles: [dba]
    # one principal may truncate anything, and is told so
    - id: sql-truncate
      decision: allow
      principals: [migrator]
      message: the migrator empties tables
    # a new rule for the analysts, in one target only
    - id: no-pii
      tables: [people]
      decision: deny
      roles: [analyst]
      targets: [prod]
    # two definitions of one id: the first that applies is used
    - id: no-billing-writes
      kinds: [INSERT, UPDATE, DELETE]
      tables: ["billing.*"]
      decision: deny
      roles: [intern]
    - id: no-billing-writes
      kinds: [INSERT, UPDATE, DELETE]
      tables: ["billing.*"]
      decision: approve
  targets:
    prod:
      rules:
        # the target's rules come before sql.rules, scoped ones too
        - id: sql-truncate
          decision: deny
          principals: [migrator]
          message: not in prod
        - id: no-secrets
          tables: [secrets]
          decision: deny
    staging:
      rules:
        - id: sql-ddl
          decision: allow
          roles: [dba, dev]
`

func TestSQLRuleScopes(t *testing.T) {
	t.Parallel()
	p := mustParse(t, scopedSQLFile)
	dba, analyst, dev := Input{Role: "dba"}, Input{Role: "analyst"}, Input{Role: "dev"}
	mig, intern := Input{Principal: "migrator"}, Input{Role: "intern"}
	at := func(in Input, target string) Input { in.Target = target; return in }
	for _, tc := range []struct {
		name string
		in   Input
		sql  string
		want policy.Decision
		rule string
	}{
		{"role scope applies to its role", dba, "DROP TABLE tmp_x", approve, "sql-drop"},
		{"role scope keeps its matchers", dba, "DROP TABLE users", deny, "sql-drop"},
		{"role scope not for another role", analyst, "DROP TABLE tmp_x", deny, "sql-drop"},
		{"role scope not without a role", Input{}, "DROP TABLE tmp_x", deny, "sql-drop"},
		{"role scope with a principal of that name", Input{Principal: "dba"}, "DROP TABLE tmp_x", deny, "sql-drop"},
		{"principal scope", mig, "TRUNCATE users", allow, "sql-truncate"},
		{"principal scope not for another", Input{Principal: "alice"}, "TRUNCATE users", deny, "sql-truncate"},
		{"principal scope not for a role of that name", Input{Role: "migrator"}, "TRUNCATE users", deny, "sql-truncate"},
		{"principal and role", Input{Principal: "migrator", Role: "dba"}, "DROP TABLE tmp_x; TRUNCATE t", approve, "sql-drop"},
		{"new rule in its target, for its role", at(analyst, "prod"), "SELECT * FROM people", deny, "no-pii"},
		{"new rule in its target, not for another role", at(dev, "prod"), "SELECT * FROM people", allow, "sql-read"},
		{"new rule not in another target", at(analyst, "staging"), "SELECT * FROM people", allow, "sql-read"},
		{"new rule with targets not for shell SQL", analyst, "SELECT * FROM people", allow, "sql-read"},
		{"new rule not in a target without rules", at(analyst, "other"), "SELECT * FROM people", allow, "sql-read"},
		{"first definition that applies", intern, "DELETE FROM billing.x WHERE id = 1", deny, "no-billing-writes"},
		{"later definition for the others", dev, "DELETE FROM billing.x WHERE id = 1", approve, "no-billing-writes"},
		{"later definition without a role", Input{}, "DELETE FROM billing.x WHERE id = 1", approve, "no-billing-writes"},
		{"target rule before sql.rules", at(mig, "prod"), "TRUNCATE users", deny, "sql-truncate"},
		{"sql.rules in another target", at(mig, "staging"), "TRUNCATE users", allow, "sql-truncate"},
		{"target rule for everyone", at(dev, "prod"), "SELECT * FROM secrets", deny, "no-secrets"},
		{"target rule scoped to two roles", at(dev, "staging"), "ALTER TABLE t ADD COLUMN c int", allow, "sql-ddl"},
		{"target rule scoped to two roles, other", at(analyst, "staging"), "ALTER TABLE t ADD COLUMN c int", approve, "sql-ddl"},
		{"target rule scoped, not elsewhere", at(dev, "prod"), "ALTER TABLE t ADD COLUMN c int", approve, "sql-ddl"},
		{"built-in rules stay", at(dba, "prod"), "DROP TABLE users", deny, "sql-drop"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := p.DecideSQL(tc.sql, tc.in)
			if out.Decision != tc.want || out.Rule != tc.rule {
				t.Errorf("DecideSQL(%q, %+v) = %s [rule %s] (%s), want %s [rule %s]",
					tc.sql, tc.in, out.Decision, out.Rule, out.Reason, tc.want, tc.rule)
			}
			if got := p.SQLClassifierFor(tc.in).Classify(tc.sql).Result; got.Rule != out.Rule || got.Decision != out.Decision {
				t.Errorf("SQLClassifierFor(%+v) = %s [rule %s], DecideSQL %s [rule %s]", tc.in, got.Decision, got.Rule, out.Decision, out.Rule)
			}
		})
	}
	if out := p.DecideSQL("TRUNCATE users", mig); out.Reason != "TRUNCATE users: the migrator empties tables" {
		t.Errorf("principal-scoped message: %q", out.Reason)
	}
	// Shell rules keep their scopes beside the SQL ones.
	if out := p.Decide("kubectl delete pod x", dba); out.Decision != allow {
		t.Errorf("shell rule scoped to dba: %s [rule %s]", out.Decision, out.Rule)
	}
	if got, want := p.SQLTargets(), []string{"prod", "staging"}; !slices.Equal(got, want) {
		t.Errorf("SQLTargets() = %v, want %v", got, want)
	}
}

// SQLClassifier, the API without an agent, gets the rules for everyone;
// the classifier of one choice of rules is compiled once.
func TestSQLClassifierFor(t *testing.T) {
	t.Parallel()
	p := mustParse(t, scopedSQLFile)
	for _, target := range []string{"", "prod", "staging", "nope"} {
		if p.SQLClassifier(target) != p.SQLClassifierFor(Input{Target: target}) {
			t.Errorf("target %q: SQLClassifier differs from SQLClassifierFor with no principal or role", target)
		}
		if p.SQLClassifierFor(Input{Role: "nobody", Principal: "x", Target: target}) != p.SQLClassifier(target) {
			t.Errorf("target %q: an agent no rule is scoped to gets another classifier", target)
		}
	}
	if p.SQLClassifierFor(Input{Role: "dba"}) == p.SQLClassifier("") {
		t.Error("role dba: the classifier for everyone")
	}
	if got := p.SQLClassifier("").Classify("DROP TABLE tmp_x").Rule; got != "sql-drop" {
		t.Errorf("SQLClassifier: %s", got)
	}
	if p.SQLClassifierFor(Input{Role: "dba"}) != p.SQLClassifierFor(Input{Role: "dba", Principal: "alice"}) {
		t.Error("the same rules compile twice")
	}
	// Policies without SQL scopes: the classifiers of SQLClassifier.
	for name, q := range map[string]*Policy{"nil": nil, "default": Default(), "targets": mustParse(t, sqlFile)} {
		for _, target := range []string{"", "prod", "nope"} {
			if q.SQLClassifierFor(Input{Principal: "a", Role: "b", Target: target}) != q.SQLClassifier(target) {
				t.Errorf("%s, target %q: SQLClassifierFor differs from SQLClassifier", name, target)
			}
		}
	}
	// Safe for concurrent use (run with -race).
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			in := Input{Role: []string{"dba", "dev", "analyst", "intern"}[i%4], Principal: "migrator", Target: "prod"}
			if got := p.SQLClassifierFor(in).Classify("TRUNCATE users").Rule; got != "sql-truncate" {
				t.Errorf("%+v: %s", in, got)
			}
		})
	}
	wg.Wait()
}

// Rules of sql.rules with targets behave like rules of those targets.
func TestSQLRuleTargets(t *testing.T) {
	t.Parallel()
	p := mustParse(t, `version: 1
sql:
  rules:
    - id: no-secrets
      tables: [secrets]
      decision: deny
      targets: [prod, reports]
    - id: sql-truncate
      decision: allow
      targets: [scratch]
  targets:
    prod:
      rules:
        - id: no-secrets
          tables: [secrets]
          decision: approve
`)
	for _, tc := range []struct {
		target, sql string
		want        policy.Decision
		rule        string
	}{
		{"reports", "SELECT * FROM secrets", deny, "no-secrets"},
		{"prod", "SELECT * FROM secrets", approve, "no-secrets"}, // the target's own rule first
		{"", "SELECT * FROM secrets", allow, "sql-read"},
		{"other", "SELECT * FROM secrets", allow, "sql-read"},
		{"scratch", "TRUNCATE t", allow, "sql-truncate"},
		{"reports", "TRUNCATE t", deny, "sql-truncate"},
	} {
		if out := p.DecideSQL(tc.sql, Input{Target: tc.target}); out.Decision != tc.want || out.Rule != tc.rule {
			t.Errorf("target %q: DecideSQL(%q) = %s [rule %s], want %s [rule %s]", tc.target, tc.sql, out.Decision, out.Rule, tc.want, tc.rule)
		}
	}
	if got, want := p.SQLTargets(), []string{"prod", "reports", "scratch"}; !slices.Equal(got, want) {
		t.Errorf("SQLTargets() = %v, want %v", got, want)
	}
	err := p.CheckSQLTargets([]string{"prod"})
	want := []string{
		`p.yaml:7:16: sql target "reports" is not a configured database target (configured: prod)`,
		`p.yaml:10:16: sql target "scratch" is not a configured database target (configured: prod)`,
	}
	if err == nil || !slices.Equal(strings.Split(err.Error(), "\n"), want) {
		t.Errorf("CheckSQLTargets:\n got %v\nwant %q", err, want)
	}
	if p.Summary().SQLTargets != 3 {
		t.Errorf("Summary() = %+v", p.Summary())
	}
}

func TestSQLScopeErrors(t *testing.T) {
	t.Parallel()
	const head = "version: 1\nsql:\n  rules:\n" // line 4 is the first line given
	for _, tc := range []struct {
		name string
		file string
		want []string
	}{
		{"unknown field", "    - {id: sql-drop, decision: deny, role: [dba]}\n",
			[]string{`4:38: unknown field "role" in sql rule (want id, kinds, tables, functions, decision, message or hint)`}},
		{"bad decision beside a scope", "    - {id: sql-drop, decision: maybe, roles: [dba]}\n",
			[]string{`4:32: sql rule "sql-drop": unknown decision "maybe"`}},
		{"decision null", "    - id: sql-drop\n      decision:\n      roles: [dba]\n",
			[]string{`5:16: sql rule "sql-drop": decision is required`}},
		{"empty roles", "    - {id: sql-drop, decision: approve, roles: []}\n",
			[]string{`4:48: roles: empty list: the rule would apply to none`}},
		{"roles null", "    - id: sql-drop\n      decision: approve\n      roles:\n",
			[]string{`6:14: roles: no value`}},
		{"empty role name", "    - {id: sql-drop, decision: approve, roles: [\"\"]}\n",
			[]string{`4:48: roles: "" is not a role name`}},
		{"role name with spaces", "    - {id: sql-drop, decision: approve, roles: [\" dba\"]}\n",
			[]string{`4:48: roles: " dba" is not a role name`}},
		{"role name with a control character", "    - {id: sql-drop, decision: approve, roles: [\"d\\tba\"]}\n",
			[]string{`4:48: roles: "d\tba" is not a role name`}},
		{"role a mapping", "    - {id: sql-drop, decision: approve, roles: {dba: 1}}\n",
			[]string{`4:48: want a single value, not mapping`}},
		{"bad principal", "    - {id: sql-drop, decision: approve, principals: [\"alice smith\"]}\n",
			[]string{`4:53: principals: "alice smith" is not a principal`}},
		{"principal starting with a dash", "    - {id: sql-drop, decision: approve, principals: [-x]}\n",
			[]string{`4:53: principals: "-x" is not a principal`}},
		{"principal pattern", "    - {id: sql-drop, decision: approve, principals: [\"ci-*\"]}\n",
			[]string{`4:53: principals: "ci-*" is not a principal`}},
		{"empty targets", "    - {id: sql-drop, decision: approve, targets: []}\n",
			[]string{`4:50: targets: empty list`}},
		{"scoped after one for everyone", "    - {id: sql-drop, decision: approve}\n    - {id: sql-drop, decision: allow, roles: [dba]}\n",
			[]string{`5:12: sql rule "sql-drop": duplicate id: a rule above with this id applies to everyone`}},
		{"two for everyone after a scoped one", "    - {id: sql-drop, decision: allow, roles: [dba]}\n    - {id: sql-drop, decision: approve}\n    - {id: sql-drop, decision: deny}\n",
			[]string{`6:12: sql rule "sql-drop": duplicate id`}},
		{"scoped rules are checked too", "    - {id: mine, decision: allow, tables: [t], roles: [dba]}\n",
			[]string{`4:12: sql rule "mine": a new rule can only make statements stricter`}},
		{"targets in a target's rules", "    []\n  targets:\n    prod:\n      rules:\n        - {id: x, tables: [t], decision: deny, targets: [prod]}\n",
			[]string{`8:48: sql rule "x": targets: a rule of sql.targets.<name>.rules is for that target already`}},
		{"a scope error and an unknown field", "    - {id: sql-drop, decision: approve, roles: [], tabls: [x]}\n",
			[]string{`4:48: roles: empty list`, `4:52: unknown field "tabls"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			checkParseErrors(t, head+tc.file, tc.want)
		})
	}
}

// Shell rules are read by the same decoder: their scopes are checked the
// same way.
func TestShellScopeErrors(t *testing.T) {
	t.Parallel()
	const head = "version: 1\nrules:\n" // line 3 is the first line given
	for _, tc := range []struct {
		name string
		file string
		want []string
	}{
		{"empty principals", "  - {id: terraform-apply, principals: []}\n", []string{`3:39: principals: empty list`}},
		{"bad principal", "  - {id: terraform-apply, principals: [\"a b\"]}\n", []string{`3:39: principals: "a b" is not a principal`}},
		{"empty role", "  - {id: terraform-apply, roles: [\"\"]}\n", []string{`3:34: roles: "" is not a role name`}},
		{"null roles", "  - id: terraform-apply\n    roles: ~\n", []string{`4:12: roles: no value`}},
		{"targets are not a shell rule's", "  - {id: terraform-apply, targets: [prod]}\n", []string{`3:27: unknown field "targets" in rule`}},
		{"null decision", "  - id: terraform-apply\n    decision:\n", []string{`4:15: decision is required`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			checkParseErrors(t, head+tc.file, tc.want)
		})
	}
	// A null message or hint is as if not given, for both kinds of rule.
	p := mustParse(t, "version: 1\nrules:\n  - id: kubectl-delete\n    hint: ~\nsql:\n  rules:\n    - {id: sql-drop, decision: approve, message: null}\n")
	if out := p.Decide("kubectl delete pod x", Input{}); out.Hint == "" {
		t.Error("hint: ~ dropped the built-in hint")
	}
	if out := p.DecideSQL("DROP TABLE t", Input{}); out.Decision != approve || !strings.Contains(out.Reason, "destroys") {
		t.Errorf("message: null: %s %q", out.Decision, out.Reason)
	}
}

func checkParseErrors(t *testing.T, file string, want []string) {
	t.Helper()
	_, err := Parse([]byte(file), "p.yaml")
	var errs ParseErrors
	if !errors.As(err, &errs) {
		t.Fatalf("Parse: got %v (%T), want ParseErrors", err, err)
	}
	if len(errs) != len(want) {
		t.Fatalf("Parse: got %d errors, want %d:\n%v", len(errs), len(want), err)
	}
	for i, e := range errs {
		if got := e.Error(); !strings.HasPrefix(got, "p.yaml:"+want[i]) {
			t.Errorf("error %d = %q, want p.yaml:%s...", i, got, want[i])
		}
	}
}

// The tie-break both engines use when several rules decide one input:
// sqlpolicy.Replaces, which the shell's better calls with default-allow as
// the fallback.
func TestTieBreak(t *testing.T) {
	t.Parallel()
	res := func(d policy.Decision, rule string) policy.Result { return policy.Result{Decision: d, Rule: rule} }
	da := ruleDefaultAllow
	for _, tc := range []struct {
		name         string
		r, cur       policy.Result
		rFall, cFall bool
		want         bool
	}{
		{"stricter wins", res(deny, "a"), res(approve, "b"), false, false, true},
		{"looser loses", res(allow, "a"), res(approve, "b"), false, false, false},
		{"tie keeps the first", res(approve, "a"), res(approve, "b"), false, false, false},
		{"tie replaces the fallback", res(allow, "rm-temp"), res(allow, da), false, true, true},
		{"the fallback does not replace a rule", res(allow, da), res(allow, "rm-temp"), true, false, false},
		{"fallback after fallback", res(allow, da), res(allow, da), true, true, false},
		{"a stricter fallback wins", res(approve, da), res(allow, "rm-temp"), true, false, true},
		{"a looser rule does not replace the fallback", res(allow, "rm-temp"), res(approve, da), false, true, false},
		{"sql: a finding replaces the baseline", res(allow, "sql-explain"), res(allow, "sql-read"), false, true, true},
		{"sql: the baseline does not replace a finding", res(allow, "sql-read"), res(allow, "sql-explain"), true, false, false},
		{"sql: two findings, the first kept", res(approve, "sql-lock"), res(approve, "sql-ddl"), false, false, false},
	} {
		if got := sqlpolicy.Replaces(tc.r, tc.rFall, tc.cur, tc.cFall); got != tc.want {
			t.Errorf("%s: Replaces = %v, want %v", tc.name, got, tc.want)
		}
		if tc.rFall == (tc.r.Rule == da) && tc.cFall == (tc.cur.Rule == da) {
			if got := better(tc.r, tc.cur); got != tc.want {
				t.Errorf("%s: better = %v, want %v", tc.name, got, tc.want)
			}
		}
	}
}
