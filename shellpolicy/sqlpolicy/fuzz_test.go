package sqlpolicy

import (
	"os"
	"reflect"
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/bastion-dev/bastion/policy"
)

// FuzzClassify checks, for any input: no panic; a verdict with a rule and
// a reason; SQL the parser rejects is never allowed; the cached verdict is
// the uncached one; and "A; B" is at least as strict as A and as B when
// each parses alone.
func FuzzClassify(f *testing.F) {
	for i, tc := range classifyCases {
		next := classifyCases[(i+1)%len(classifyCases)]
		f.Add(tc.sql, next.sql)
	}
	if data, err := os.ReadFile("testdata/psql_describe.sql"); err == nil {
		for _, q := range strings.Split(string(data), "\n----\n")[1:4] {
			f.Add(q, "DELETE FROM t WHERE true")
		}
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		oa := checkOne(t, a)
		ob := checkOne(t, b)
		if !parses(a) || !parses(b) {
			return
		}
		both := Default().Classify(a + "\n;\n" + b)
		if max := policy.Max(oa.Decision, ob.Decision); both.Decision < max {
			t.Fatalf("Classify(A;B) = %v (%s), weaker than %v\nA=%q -> %v %s\nB=%q -> %v %s",
				both.Decision, both.Reason, max, a, oa.Decision, oa.Rule, b, ob.Decision, ob.Rule)
		}
	})
}

func parses(sql string) bool {
	if strings.IndexByte(sql, 0) >= 0 {
		return false
	}
	_, err := pg_query.Parse(sql)
	return err == nil
}

func checkOne(t *testing.T, sql string) Outcome {
	t.Helper()
	out := Default().Classify(sql)
	if again, fresh := Default().Classify(sql), Default().classify(sql); !reflect.DeepEqual(again, fresh) || !reflect.DeepEqual(out, fresh) {
		t.Fatalf("Classify(%q): first %+v, cached %+v, uncached %+v", sql, out, again, fresh)
	}
	if out.Decision < policy.Allow || out.Decision > policy.Deny || out.Rule == "" || out.Reason == "" {
		t.Fatalf("Classify(%q) = %+v: incomplete result", sql, out.Result)
	}
	if !parses(sql) {
		if out.Decision != policy.Deny || out.Rule != "sql-parse-error" {
			t.Fatalf("unparseable %q: %v %s, want deny sql-parse-error", sql, out.Decision, out.Rule)
		}
		return out
	}
	for _, s := range out.Statements {
		if s.Result.Stricter(out.Result) {
			t.Fatalf("Classify(%q): statement %q (%v) stricter than the outcome %v", sql, s.Text, s.Result.Decision, out.Decision)
		}
		if s.Kind == "" || s.Result.Rule == "" {
			t.Fatalf("Classify(%q): statement %+v lacks a kind or rule", sql, s)
		}
	}
	return out
}
