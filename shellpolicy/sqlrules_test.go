package shellpolicy

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/bastion-dev/bastion/policy"
	"github.com/bastion-dev/bastion/shellpolicy/sqlpolicy"
)

// sqlFile loosens TRUNCATE of scratch tables for every target, keeps
// secrets from prod, lets staging truncate anything, and adds a rule for
// analytics that replaces the global one of the same id.
const sqlFile = `version: 1
rules:
  - id: kubectl-delete
    decision: deny
sql:
  rules:
    - id: sql-truncate
      tables: [tmp_*]
      decision: allow
      message: scratch tables may be emptied
    - id: no-billing-writes
      kinds: [INSERT, UPDATE, DELETE]
      tables: ["billing.*"]
      decision: approve
  targets:
    prod:
      rules:
        - id: no-secrets
          tables: [secrets]
          decision: deny
          message: secrets stay in prod
          hint: ask the security team
    staging:
      rules:
        - id: sql-truncate
          decision: allow
    analytics:
      rules:
        - id: no-billing-writes
          tables: ["billing.*"]
          decision: deny
    empty: {}
`

func TestSQLRulesPerTarget(t *testing.T) {
	t.Parallel()
	p, err := Parse([]byte(sqlFile), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, target, sql string
		want              policy.Decision
		rule              string
	}{
		{"global loosening", "", "TRUNCATE tmp_import", allow, "sql-truncate"},
		{"global loosening is scoped", "", "TRUNCATE users", deny, "sql-truncate"},
		{"global tightening", "", "INSERT INTO billing.invoices VALUES (1)", approve, "no-billing-writes"},
		{"secrets readable without the prod rule", "", "SELECT * FROM secrets", allow, "sql-read"},
		{"prod denies secrets", "prod", "SELECT * FROM secrets", deny, "no-secrets"},
		{"prod denies secrets in a subquery", "prod", "SELECT 1 WHERE EXISTS (SELECT 1 FROM public.secrets)", deny, "no-secrets"},
		{"prod keeps global rules", "prod", "TRUNCATE tmp_import", allow, "sql-truncate"},
		{"prod keeps global tightening", "prod", "DELETE FROM billing.invoices WHERE id = 1", approve, "no-billing-writes"},
		{"staging replaces the global override", "staging", "TRUNCATE users", allow, "sql-truncate"},
		{"staging reads secrets", "staging", "SELECT * FROM secrets", allow, "sql-read"},
		{"analytics replaces the global rule by id", "analytics", "SELECT * FROM billing.invoices", deny, "no-billing-writes"},
		{"a target with no rules gets the global ones", "empty", "TRUNCATE users", deny, "sql-truncate"},
		{"an unknown target gets the global ones", "nope", "SELECT * FROM secrets", allow, "sql-read"},
		{"built-in rules stay", "prod", "DROP TABLE users", deny, "sql-drop"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := p.DecideSQL(tc.sql, Input{Target: tc.target})
			if out.Decision != tc.want || out.Rule != tc.rule {
				t.Errorf("DecideSQL(%q, target %q) = %s [rule %s] (%s), want %s [rule %s]",
					tc.sql, tc.target, out.Decision, out.Rule, out.Reason, tc.want, tc.rule)
			}
			if got := p.SQLClassifier(tc.target).Classify(tc.sql).Result; got.Decision != out.Decision || got.Rule != out.Rule {
				t.Errorf("SQLClassifier(%q) = %s [rule %s], DecideSQL %s [rule %s]", tc.target, got.Decision, got.Rule, out.Decision, out.Rule)
			}
		})
	}
	out := p.DecideSQL("SELECT * FROM secrets", Input{Target: "prod"})
	if out.Reason != "SELECT touching secrets: secrets stay in prod" || out.Hint != "ask the security team" {
		t.Errorf("prod reason %q hint %q", out.Reason, out.Hint)
	}
	if got, want := p.SQLTargets(), []string{"analytics", "empty", "prod", "staging"}; !slices.Equal(got, want) {
		t.Errorf("SQLTargets() = %v, want %v", got, want)
	}
	if s := p.Summary(); s.SQLRules != 2 || s.SQLTargets != 4 || s.FileRules != 1 {
		t.Errorf("Summary() = %+v", s)
	}
	// Compiled once: the same classifier every time.
	if p.SQLClassifier("prod") != p.SQLClassifier("prod") || p.SQLClassifier("") != p.SQLClassifier("nope") {
		t.Error("SQLClassifier compiles per call")
	}
}

// SQL in shell commands is judged with the rules for every target.
func TestSQLRulesInShellCommands(t *testing.T) {
	t.Parallel()
	p, err := Parse([]byte(sqlFile), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cmd  string
		want policy.Decision
		rule string
	}{
		{`psql -c 'TRUNCATE tmp_import'`, allow, "sql-truncate"},
		{`psql -c 'TRUNCATE users'`, deny, "sql-truncate"},
		{"psql <<'SQL'\nINSERT INTO billing.invoices VALUES (1);\nSQL", approve, "no-billing-writes"},
		{`psql -c "TRUNCATE tmp_$X"`, approve, "sql-opaque"}, // partly unknown: never allow
		// per-target rules are not the shell's: the proxy applies them
		{`psql service=prod -c 'SELECT * FROM secrets'`, allow, "sql-read"},
		{`kubectl delete pod x`, deny, "kubectl-delete"},
	} {
		out := p.Decide(tc.cmd, Input{Target: "prod"})
		if out.Decision != tc.want || out.Rule != tc.rule {
			t.Errorf("Decide(%q) = %s [rule %s] (%s), want %s [rule %s]", tc.cmd, out.Decision, out.Rule, out.Reason, tc.want, tc.rule)
		}
	}
	// The built-in policy is untouched.
	if out := Default().Decide(`psql -c 'TRUNCATE tmp_import'`, Input{}); out.Decision != deny {
		t.Errorf("default policy: %s [rule %s]", out.Decision, out.Rule)
	}
}

func TestSQLClassifierDefaults(t *testing.T) {
	t.Parallel()
	var nilPolicy *Policy
	for name, p := range map[string]*Policy{"nil": nilPolicy, "default": Default(), "shell rules only": mustParse(t, "version: 1\nrules: []\n")} {
		if c := p.SQLClassifier("prod"); c != sqlpolicy.Default() {
			t.Errorf("%s: SQLClassifier = %p, want sqlpolicy.Default()", name, c)
		}
		if got := p.SQLTargets(); len(got) != 0 {
			t.Errorf("%s: SQLTargets = %v", name, got)
		}
		if err := p.CheckSQLTargets(nil); err != nil {
			t.Errorf("%s: CheckSQLTargets = %v", name, err)
		}
	}
}

func mustParse(t *testing.T, src string) *Policy {
	t.Helper()
	p, err := Parse([]byte(src), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheckSQLTargets(t *testing.T) {
	t.Parallel()
	p := mustParse(t, sqlFile)
	if err := p.CheckSQLTargets([]string{"staging", "prod", "analytics", "empty", "other"}); err != nil {
		t.Fatalf("every target configured: %v", err)
	}
	err := p.CheckSQLTargets([]string{"prod", "staging"})
	var errs ParseErrors
	if !errors.As(err, &errs) {
		t.Fatalf("CheckSQLTargets: %v (%T), want ParseErrors", err, err)
	}
	want := []string{
		`p.yaml:27:5: sql target "analytics" is not a configured database target (configured: prod, staging)`,
		`p.yaml:32:5: sql target "empty" is not a configured database target (configured: prod, staging)`,
	}
	if got := strings.Split(err.Error(), "\n"); !slices.Equal(got, want) {
		t.Errorf("CheckSQLTargets:\n got %q\nwant %q", got, want)
	}
	err = p.CheckSQLTargets(nil)
	if err == nil || !strings.Contains(err.Error(), `p.yaml:16:5: sql target "prod" is not a configured database target (no database targets are configured)`) {
		t.Errorf("no targets configured: %v", err)
	}
}

func TestSQLRuleErrors(t *testing.T) {
	t.Parallel()
	const head = "version: 1\nsql:\n"
	tests := []struct {
		name string
		file string // after head, so line 3 is the first line given
		want []string
	}{
		{"sql not a mapping", "  - id: x\n", []string{"3:3: sql must be a mapping"}},
		{"unknown sql field", "  rulez: []\n", []string{`3:3: unknown field "rulez" in sql (want max_rows, rules or targets)`}},
		{"rules not a list", "  rules: {id: x}\n", []string{"3:10: sql.rules must be a list"}},
		{"rule not a mapping", "  rules:\n    - sql-drop\n", []string{"4:7: sql.rules: each rule must be a mapping"}},
		{"unknown rule field", "  rules:\n    - id: sql-drop\n      tabels: [x]\n      decision: deny\n",
			[]string{`5:7: unknown field "tabels" in sql rule (want id, kinds, tables, functions, decision, message or hint)`}},
		{"bad decision", "  rules:\n    - id: sql-lock\n      decision: maybe\n", []string{`5:17: sql rule "sql-lock": unknown decision "maybe"`}},
		{"missing decision", "  rules:\n    - id: sql-lock\n      hint: ask\n", []string{`4:7: sql rule "sql-lock": decision is required`}},
		{"kinds not a list", "  rules:\n    - id: x\n      kinds: {a: 1}\n      decision: deny\n", []string{"5:14: mapping was used where sequence is expected"}},
		{"new rule without matcher", "  rules:\n    - id: strict\n      decision: deny\n",
			[]string{`4:11: sql rule "strict": a new rule needs at least one of kinds, tables or functions`}},
		{"allow on a new id", "  rules:\n    - id: ok-tmp\n      tables: [tmp_*]\n      decision: allow\n",
			[]string{`4:11: sql rule "ok-tmp": a new rule can only make statements stricter`}},
		{"bad id", "  rules:\n    - id: Bad_Id\n      kinds: [DELETE]\n      decision: deny\n", []string{`4:11: sql rule "Bad_Id": id must be kebab-case`}},
		{"no id", "  rules:\n    - kinds: [DELETE]\n      decision: deny\n", []string{`4:7: sql rule "": id must be kebab-case`}},
		{"duplicate id", "  rules:\n    - id: sql-drop\n      decision: deny\n    - id: sql-drop\n      decision: approve\n", []string{`6:11: sql rule "sql-drop": duplicate id`}},
		{"duplicate field", "  rules:\n    - id: sql-drop\n      decision: deny\n      decision: allow\n", []string{`6:7: mapping key "decision" already defined`}},
		{"allow parse errors", "  rules:\n    - id: sql-parse-error\n      decision: allow\n", []string{`4:11: sql rule "sql-parse-error": unparseable SQL cannot be allowed`}},
		{"bad glob", "  rules:\n    - id: x\n      tables: [\"[\"]\n      decision: deny\n", []string{`4:11: sql rule "x": bad table pattern "["`}},
		{"alias", "  rules:\n    - &r {id: x, kinds: [DELETE], decision: deny}\n", []string{"4:7: YAML anchors, aliases and tags are not supported here"}},
		{"targets not a mapping", "  targets: [prod]\n", []string{"3:12: sql.targets must be a mapping"}},
		{"target not a mapping", "  targets:\n    prod: [x]\n", []string{`4:11: sql target "prod" must be a mapping`}},
		{"empty target name", "  targets:\n    \"\": {rules: []}\n", []string{"4:5: sql.targets: empty target name"}},
		{"unknown target field", "  targets:\n    prod:\n      rule: []\n", []string{`5:7: unknown field "rule" in sql target "prod" (want rules)`}},
		{"target rule error", "  targets:\n    prod:\n      rules:\n        - id: secrets\n          decision: deny\n",
			[]string{`6:15: sql rule "secrets": a new rule needs at least one of kinds, tables or functions`}},
		{"target duplicate id", "  targets:\n    prod:\n      rules:\n        - {id: a, kinds: [LOCK], decision: deny}\n        - {id: a, kinds: [DELETE], decision: deny}\n",
			[]string{`7:16: sql rule "a": duplicate id`}},
		{"target allow on a new id", "  targets:\n    prod:\n      rules:\n        - {id: ok, tables: [t], decision: allow}\n",
			[]string{`6:16: sql rule "ok": a new rule can only make statements stricter`}},
		{"a global error is reported once, not per target",
			"  rules:\n    - id: strict\n      decision: deny\n  targets:\n    a: {rules: []}\n    b: {rules: [{id: x, decision: deny}]}\n",
			[]string{`4:11: sql rule "strict": a new rule needs`, `8:22: sql rule "x": a new rule needs`}},
		{"same id in a target replaces the global rule",
			"  rules:\n    - {id: sql-drop, decision: approve}\n  targets:\n    a:\n      rules:\n        - {id: sql-drop, decision: approve}\n        - {id: sql-drop, decision: deny}\n",
			[]string{`9:16: sql rule "sql-drop": duplicate id`}},
		{"with shell rule errors, in file order", "  rules:\n    - id: strict\n      decision: deny\nrules:\n  - id: newr\n    decision: deny\n",
			[]string{`4:11: sql rule "strict"`, `7:9: rule "newr" needs a match`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(head+tc.file), "p.yaml")
			var errs ParseErrors
			if !errors.As(err, &errs) {
				t.Fatalf("Parse: got %v (%T), want ParseErrors", err, err)
			}
			if len(errs) != len(tc.want) {
				t.Fatalf("Parse: got %d errors, want %d:\n%v", len(errs), len(tc.want), err)
			}
			for i, e := range errs {
				if got := e.Error(); e.File != "p.yaml" || !strings.HasPrefix(got, "p.yaml:"+tc.want[i]) {
					t.Errorf("error %d = %q, want p.yaml:%s...", i, got, tc.want[i])
				}
			}
		})
	}
}
