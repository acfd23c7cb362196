package sqlpolicy

import (
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bastion-dev/bastion/policy"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	builtinIDs := map[string]bool{}
	for _, r := range DefaultRules() {
		builtinIDs[r.ID] = true
	}
	seen := map[string]bool{}
	for _, tc := range classifyCases {
		if seen[tc.name] {
			t.Fatalf("duplicate case name %q", tc.name)
		}
		seen[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := Default().Classify(tc.sql)
			if out.Decision != tc.want || out.Rule != tc.rule {
				t.Fatalf("Classify(%q) = %v %s (%s), want %v %s", tc.sql, out.Decision, out.Rule, out.Reason, tc.want, tc.rule)
			}
			if !strings.Contains(out.Reason, tc.reason) {
				t.Errorf("reason %q does not contain %q", out.Reason, tc.reason)
			}
			if out.Reason == "" || out.Hint == "" {
				t.Errorf("result %+v lacks a reason or hint", out.Result)
			}
			if !builtinIDs[out.Rule] {
				t.Errorf("rule %q is not a built-in rule", out.Rule)
			}
			if tc.kind != "" {
				if len(out.Statements) == 0 || out.Statements[0].Kind != tc.kind {
					t.Errorf("kind = %v, want %q", kinds(out), tc.kind)
				}
			}
			if got := Classify(tc.sql); got != out.Result {
				t.Errorf("package Classify = %+v, want %+v", got, out.Result)
			}
			// The outcome is the strictest statement, the first on a tie.
			if len(out.Statements) > 0 {
				want := out.Statements[0].Result
				for _, s := range out.Statements[1:] {
					if s.Result.Stricter(want) {
						want = s.Result
					}
				}
				if want != out.Result {
					t.Errorf("outcome %+v is not the strictest statement result %+v", out.Result, want)
				}
			}
		})
	}
}

func kinds(o Outcome) []string {
	var k []string
	for _, s := range o.Statements {
		k = append(k, s.Kind)
	}
	return k
}

func TestClassifyCaseCount(t *testing.T) {
	t.Parallel()
	if n := len(classifyCases); n < 150 {
		t.Errorf("%d table cases, want at least 150", n)
	}
}

// TestPsqlDescribeQueries runs the catalog queries psql really sends for
// its \d family (captured with psql -E) through the classifier: none of
// their catalog functions may look like a server file function.
func TestPsqlDescribeQueries(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("testdata/psql_describe.sql")
	if err != nil {
		t.Fatal(err)
	}
	var queries []string
	for _, q := range strings.Split(string(data), "\n----\n") {
		if q = strings.TrimSpace(q); q != "" && !strings.HasPrefix(q, "-- Catalog queries") {
			queries = append(queries, q)
		}
	}
	if len(queries) < 30 {
		t.Fatalf("only %d psql queries in testdata", len(queries))
	}
	for _, q := range queries {
		out := Default().Classify(q)
		if out.Decision != policy.Allow || out.Rule != "sql-read" {
			t.Errorf("psql query classified %v %s (%s):\n%s", out.Decision, out.Rule, out.Reason, q)
		}
	}
	// All of them at once, as psql -f of a script would send them.
	if out := Default().Classify(strings.Join(queries, ";\n")); out.Decision != policy.Allow {
		t.Errorf("all psql queries together: %v %s", out.Decision, out.Reason)
	}
}

func TestStatements(t *testing.T) {
	t.Parallel()
	sql := "BEGIN;\n  -- fix one row\n  UPDATE users SET name = 'a;b' WHERE id = 1;\nSELECT $x$;$x$ ; COMMIT"
	got := Default().Classify(sql)
	type row struct {
		Text          string
		Kind          string
		Decision      policy.Decision
		Rule          string
		Reads, Writes bool
	}
	var rows []row
	for _, s := range got.Statements {
		rows = append(rows, row{s.Text, s.Kind, s.Result.Decision, s.Result.Rule, s.Reads, s.Writes})
	}
	want := []row{
		{"BEGIN", "BEGIN", policy.Allow, "sql-transaction", false, false},
		{"-- fix one row\n  UPDATE users SET name = 'a;b' WHERE id = 1", "UPDATE", policy.Allow, "sql-write", false, true},
		{"SELECT $x$;$x$", "SELECT", policy.Allow, "sql-read", true, false},
		{"COMMIT", "COMMIT", policy.Allow, "sql-transaction", false, false},
	}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("statements (-want +got):\n%s", diff)
	}
	// On a tie the first statement speaks for the string.
	if got.Rule != "sql-transaction" || got.Reason != "BEGIN" {
		t.Errorf("outcome = %s %q, want sql-transaction \"BEGIN\"", got.Rule, got.Reason)
	}
}

func TestReadsWrites(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		sql           string
		reads, writes bool
	}{
		{"SELECT * FROM t", true, false},
		{"INSERT INTO t VALUES (1)", false, true},
		{"INSERT INTO t VALUES (1) RETURNING id", true, true},
		{"WITH d AS (DELETE FROM t WHERE id = 1 RETURNING *) SELECT * FROM d", true, true},
		{"COPY t TO STDOUT", true, false},
		{"COPY t FROM STDIN", false, true},
		{"DROP TABLE t", false, true},
		{"SET search_path = x", false, false},
		{"EXPLAIN DELETE FROM t", true, false},
		{"SELECT nextval('s')", true, true},
	} {
		st := Default().Classify(tc.sql).Statements[0]
		if st.Reads != tc.reads || st.Writes != tc.writes {
			t.Errorf("%q: reads=%v writes=%v, want %v %v", tc.sql, st.Reads, st.Writes, tc.reads, tc.writes)
		}
	}
}

func TestZeroClassifier(t *testing.T) {
	t.Parallel()
	var zero Classifier
	var nilc *Classifier
	for _, sql := range []string{"DROP TABLE x", "SELECT 1", "DELETE FROM t"} {
		want := Default().Classify(sql)
		if diff := cmp.Diff(want, zero.Classify(sql)); diff != "" {
			t.Errorf("zero Classifier on %q (-default +zero):\n%s", sql, diff)
		}
		if diff := cmp.Diff(want, nilc.Classify(sql)); diff != "" {
			t.Errorf("nil Classifier on %q (-default +nil):\n%s", sql, diff)
		}
	}
}

func TestDefaultRules(t *testing.T) {
	t.Parallel()
	ids := map[string]bool{}
	for _, r := range DefaultRules() {
		if !ruleID.MatchString(r.ID) || !strings.HasPrefix(r.ID, "sql-") {
			t.Errorf("rule id %q is not sql- kebab-case", r.ID)
		}
		if ids[r.ID] {
			t.Errorf("duplicate rule %q", r.ID)
		}
		ids[r.ID] = true
		if r.Hint == "" {
			t.Errorf("rule %q has no hint", r.ID)
		}
	}
	// Every rule the table produces is documented, and every built-in
	// rule is produced by some row (no dead rules).
	used := map[string]bool{}
	for _, tc := range classifyCases {
		used[tc.rule] = true
	}
	for id := range ids {
		if !used[id] {
			t.Errorf("built-in rule %q is not exercised by any table case", id)
		}
	}
	// DefaultRules returns a copy.
	DefaultRules()[0].Decision = policy.Allow
	if DefaultRules()[0].Decision != builtin[0].Decision {
		t.Error("DefaultRules exposes the built-in table")
	}
}

func TestConcurrentClassify(t *testing.T) {
	t.Parallel()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := g; i < len(classifyCases); i += 8 {
				tc := classifyCases[i]
				if got := Classify(tc.sql); got.Decision != tc.want || got.Rule != tc.rule {
					t.Errorf("%s: got %v %s concurrently", tc.name, got.Decision, got.Rule)
				}
			}
		}(g)
	}
	wg.Wait()
}

func TestRestricts(t *testing.T) {
	t.Parallel()
	// The WHERE analysis on its own, both ways round.
	for where, want := range map[string]bool{
		"id = 1":                              true,
		"id = 1 AND 1 = 1":                    true,
		"id = 1 OR 1 = 1":                     false,
		"NOT (id = id)":                       true,
		"id <> id":                            true,
		"NOT (NOT true)":                      false,
		"NOT (id IS NULL OR false)":           false,
		"(id IS NULL) IS NOT TRUE":            true,
		"coalesce(a, 0) = coalesce(a, 0)":     false,
		"lower(email) = 'x'":                  true,
		"random() < 0.5":                      false,
		"'b' > 'a'":                           false,
		"2 < 1":                               true,
		"1e3 = 1000":                          false,
		"9007199254740993 > 9007199254740992": false,
		"NULL":                                true,
		"id IN (SELECT user_id FROM orders)":  true,
		"EXISTS (SELECT 1)":                   false,
		"EXISTS (SELECT 1 FROM o WHERE o.t = t.id)": true,
		"t.id = $1":    true,
		"other.id = 1": false,
	} {
		out := Default().Classify("DELETE FROM t WHERE " + where)
		got := out.Rule == "sql-write"
		if got != want || out.Decision == policy.Deny {
			t.Errorf("WHERE %s: restricting = %v (%s), want %v", where, got, out.Rule, want)
		}
	}
}

func TestClassifySetting(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, value string
		want        policy.Decision
		rule        string
	}{
		{"client_encoding", "UTF8", policy.Allow, "sql-session"},
		{"application_name", "psql", policy.Allow, "sql-session"},
		{"Client_Encoding", "sjis", policy.Deny, "sql-string-syntax"},
		{"standard_conforming_strings", "off", policy.Deny, "sql-string-syntax"},
		{"standard_conforming_strings", "on", policy.Allow, "sql-session"},
		{"role", "postgres", policy.Approve, "sql-role"},
		{"session_replication_role", "replica", policy.Approve, "sql-setting"},
	} {
		got := Default().ClassifySetting(tc.name, tc.value)
		if got.Decision != tc.want || got.Rule != tc.rule || got.Reason == "" {
			t.Errorf("ClassifySetting(%q, %q) = %+v, want %v %s", tc.name, tc.value, got, tc.want, tc.rule)
		}
	}
	// Policy overrides apply here too.
	c, err := New([]Rule{{ID: "sql-setting", Decision: policy.Allow}})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.ClassifySetting("session_replication_role", "replica"); got.Decision != policy.Allow {
		t.Errorf("override not applied: %+v", got)
	}
}
