package sqlpolicy

import (
	"errors"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/google/go-cmp/cmp"

	"github.com/bastion-dev/bastion/policy"
)

func TestNewOverrides(t *testing.T) {
	t.Parallel()
	c, err := New([]Rule{
		// unscoped override: new decision, built-in message kept
		{ID: "sql-lock", Decision: policy.Allow, Hint: "locks are fine here"},
		// scoped override: TRUNCATE allowed for scratch tables only
		{ID: "sql-truncate", Tables: []string{"tmp_*", "scratch.*"}, Decision: policy.Allow, Message: "scratch tables may be emptied"},
		// scoped override by kind: CALL allowed, DO still needs approval
		{ID: "sql-opaque", Kinds: []string{"call"}, Decision: policy.Allow},
		// scoped override by function
		{ID: "sql-admin", Functions: []string{"pg_cancel_backend"}, Decision: policy.Allow},
		// tightening: writes to billing need approval, DROP of anything stays deny
		{ID: "billing-writes", Kinds: []string{"INSERT", "UPDATE", "DELETE"}, Tables: []string{"billing.*"}, Decision: policy.Approve, Message: "billing data is audited", Hint: "ask finance"},
		{ID: "no-sleep", Functions: []string{"pg_sleep*"}, Decision: policy.Deny, Message: "do not hold connections"},
		{ID: "audit-is-append-only", Tables: []string{"audit_log"}, Kinds: []string{"UPDATE", "DELETE"}, Decision: policy.Deny},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		sql    string
		want   policy.Decision
		rule   string
		reason string
		hint   string
	}{
		{"LOCK TABLE t", policy.Allow, "sql-lock", "LOCK TABLE t: an explicit lock can block other sessions", "locks are fine here"},
		{"TRUNCATE tmp_import", policy.Allow, "sql-truncate", "TRUNCATE tmp_import: scratch tables may be emptied", ""},
		{"TRUNCATE scratch.staging, tmp_a", policy.Allow, "sql-truncate", "", ""},
		{"TRUNCATE tmp_a, users", policy.Deny, "sql-truncate", "TRUNCATE tmp_a, users: TRUNCATE removes every row at once", ""},
		{"TRUNCATE staging", policy.Deny, "sql-truncate", "", ""},      // unqualified counts as public.staging
		{"TRUNCATE other.tmp_x", policy.Allow, "sql-truncate", "", ""}, // no dot in pattern: any schema
		{"CALL refresh()", policy.Allow, "sql-opaque", "", ""},
		{"DO $$ BEGIN NULL; END $$", policy.Approve, "sql-opaque", "", ""},
		{"SELECT pg_cancel_backend(1)", policy.Allow, "sql-admin", "", ""},
		{"SELECT pg_terminate_backend(1)", policy.Approve, "sql-admin", "", ""},
		{"INSERT INTO billing.invoices VALUES (1)", policy.Approve, "billing-writes", "INSERT touching billing.invoices: billing data is audited", "ask finance"},
		{"WITH x AS (UPDATE billing.plans SET p = 1 WHERE id = 2 RETURNING 1) SELECT * FROM x", policy.Approve, "billing-writes", "", ""},
		{"SELECT * FROM billing.invoices", policy.Allow, "sql-read", "", ""},
		{"INSERT INTO invoices VALUES (1)", policy.Allow, "sql-write", "", ""},
		{"DROP TABLE billing.invoices", policy.Deny, "sql-drop", "", ""},
		{"SELECT pg_sleep(10)", policy.Deny, "no-sleep", "SELECT calling pg_sleep(): do not hold connections", ""},
		{"DELETE FROM audit_log WHERE id = 1", policy.Deny, "audit-is-append-only", "", ""},
		{"INSERT INTO audit_log VALUES (1)", policy.Allow, "sql-write", "", ""},
	} {
		got := c.Classify(tc.sql)
		if got.Decision != tc.want || got.Rule != tc.rule {
			t.Errorf("%q: %v %s (%s), want %v %s", tc.sql, got.Decision, got.Rule, got.Reason, tc.want, tc.rule)
			continue
		}
		if tc.reason != "" && got.Reason != tc.reason {
			t.Errorf("%q: reason %q, want %q", tc.sql, got.Reason, tc.reason)
		}
		if tc.hint != "" && got.Hint != tc.hint {
			t.Errorf("%q: hint %q, want %q", tc.sql, got.Hint, tc.hint)
		}
	}
	// The default is untouched by New.
	if got := Classify("TRUNCATE tmp_import"); got.Decision != policy.Deny {
		t.Errorf("default policy changed: %+v", got)
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		rules []Rule
		want  string
	}{
		{"bad id", []Rule{{ID: "No Spaces", Kinds: []string{"DELETE"}, Decision: policy.Deny}}, "kebab-case"},
		{"empty id", []Rule{{Decision: policy.Deny, Kinds: []string{"DELETE"}}}, "kebab-case"},
		{"duplicate", []Rule{{ID: "sql-drop", Decision: policy.Approve}, {ID: "sql-drop", Decision: policy.Deny}}, "duplicate id"},
		{"new rule without matcher", []Rule{{ID: "strict", Decision: policy.Deny}}, "at least one of kinds, tables or functions"},
		{"new rule allowing", []Rule{{ID: "ok-tmp", Tables: []string{"tmp_*"}, Decision: policy.Allow}}, "only make statements stricter"},
		{"allow parse errors", []Rule{{ID: "sql-parse-error", Decision: policy.Allow}}, "cannot be allowed"},
		{"matcher on empty", []Rule{{ID: "sql-empty", Kinds: []string{"SELECT"}, Decision: policy.Deny}}, "no statement to match"},
		{"bad glob", []Rule{{ID: "x", Tables: []string{"["}, Decision: policy.Deny}}, "bad table pattern"},
		{"bad decision", []Rule{{ID: "x", Tables: []string{"t"}, Decision: policy.Decision(7)}}, "invalid decision"},
		{"empty kind", []Rule{{ID: "x", Kinds: []string{" "}, Decision: policy.Deny}}, "empty kind"},
	} {
		_, err := New(tc.rules)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to mention %q", tc.name, err, tc.want)
		}
	}
	// Each bad rule is reported, by position.
	_, err := New([]Rule{{ID: "a", Decision: policy.Deny}, {ID: "ok", Kinds: []string{"LOCK"}, Decision: policy.Deny}, {ID: "B"}})
	if err == nil || !strings.Contains(err.Error(), `sql rule 1 ("a")`) || !strings.Contains(err.Error(), `sql rule 3 ("B")`) {
		t.Errorf("err = %v, want rules 1 and 3 named", err)
	}
	// ... as one *RuleError each, so that a policy file can point at them.
	var got []int
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			var re *RuleError
			if errors.As(e, &re) {
				got = append(got, re.Index)
			}
		}
	}
	if diff := cmp.Diff([]int{0, 2}, got); diff != "" {
		t.Errorf("RuleError indexes (-want +got):\n%s", diff)
	}
}

func TestParseRules(t *testing.T) {
	t.Parallel()
	src := `
- id: sql-truncate
  tables: ["tmp_*"]
  decision: allow
- id: billing-writes
  kinds: [INSERT, UPDATE, DELETE]
  tables: [billing.*]
  decision: approve
  message: billing data is audited
  hint: ask finance
`
	rules, err := ParseRules([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := []Rule{
		{ID: "sql-truncate", Tables: []string{"tmp_*"}, Decision: policy.Allow},
		{ID: "billing-writes", Kinds: []string{"INSERT", "UPDATE", "DELETE"}, Tables: []string{"billing.*"},
			Decision: policy.Approve, Message: "billing data is audited", Hint: "ask finance"},
	}
	if diff := cmp.Diff(want, rules); diff != "" {
		t.Fatalf("ParseRules (-want +got):\n%s", diff)
	}
	if _, err := New(rules); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct{ name, src, want string }{
		// Forgetting the decision must not mean allow.
		{"missing decision", "- id: sql-drop\n  hint: ask a DBA\n", "decision is required"},
		{"unknown decision", "- id: sql-drop\n  decision: maybe\n", "unknown decision"},
		{"unknown field", "- id: sql-drop\n  decision: deny\n  tabels: [x]\n", "tabels"},
		{"not a list", "id: sql-drop\n", "sql policy"},
	} {
		_, err := ParseRules([]byte(tc.src))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to mention %q", tc.name, err, tc.want)
		}
	}
	_, err = ParseRules([]byte("- id: sql-drop\n  decision: deny\n  tabels: [x]\n"))
	if err == nil || !strings.Contains(err.Error(), "[3:3]") {
		t.Errorf("unknown field error %v does not give line 3 column 3", err)
	}
}

func TestMatchName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{"users", "users", true},
		{"users", "app.users", true},
		{"app.users", "users", false},
		{"public.users", "users", true},
		{"billing.*", "billing.invoices", true},
		{"billing.*", "invoices", false},
		{"tmp_*", "tmp_x", true},
		{"tmp_*", "x.tmp_y", true},
		{"*.secrets", "vault.secrets", true},
	} {
		if got := matchName(tc.pattern, tc.name); got != tc.want {
			t.Errorf("matchName(%q, %q) = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
	}
}

// TestRuleInsidePolicyFile decodes rules the way a policy file that embeds
// them does, without strict mode: a rule is still strict, and a missing
// decision is still an error with its position.
func TestRuleInsidePolicyFile(t *testing.T) {
	t.Parallel()
	var file struct {
		Targets map[string]struct {
			SQL []Rule `yaml:"sql"`
		} `yaml:"targets"`
	}
	good := "targets:\n  prod:\n    sql:\n      - id: sql-lock\n        decision: allow\n"
	if err := yaml.Unmarshal([]byte(good), &file); err != nil {
		t.Fatal(err)
	}
	if got := file.Targets["prod"].SQL; len(got) != 1 || got[0].ID != "sql-lock" || got[0].Decision != policy.Allow {
		t.Fatalf("decoded %+v", got)
	}
	for _, tc := range []struct{ src, want string }{
		{"targets:\n  prod:\n    sql:\n      - id: sql-drop\n        hint: x\n", "[4:11] sql rule \"sql-drop\": decision is required"},
		{"targets:\n  prod:\n    sql:\n      - id: sql-drop\n        decision: deny\n        decison: allow\n", "[6:9] unknown field \"decison\""},
		{"targets:\n  prod:\n    sql:\n      - id: sql-drop\n        decision: nope\n", "[5:19] sql rule \"sql-drop\": unknown decision"},
	} {
		err := yaml.Unmarshal([]byte(tc.src), &file)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v, want %q", err, tc.want)
		}
	}
}
