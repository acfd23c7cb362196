package sqlpolicy

import (
	"strconv"
	"strings"
	"testing"
)

// whereCases: conditions true for every row by construction (all: the
// statement needs approval like one without WHERE) and ordinary
// restricting ones (allowed). The name is the condition, or the statement
// after DELETE FROM when it is not a plain DELETE FROM t WHERE.
var whereCases = []struct {
	name, sql string
	all       bool
}{
	// true for every row: approve
	{"id IN (SELECT id FROM t)", "DELETE FROM t WHERE id IN (SELECT id FROM t)", true},
	{"t USING t t2 WHERE t.id = t2.id", "DELETE FROM t USING t t2 WHERE t.id = t2.id", true},
	{"id = ANY (SELECT id FROM t)", "DELETE FROM t WHERE id = ANY (SELECT id FROM t)", true},
	{"t.id IN (SELECT t.id FROM t)", "DELETE FROM t WHERE t.id IN (SELECT t.id FROM t)", true},
	{"id IN (SELECT x.id FROM t x)", "DELETE FROM t WHERE id IN (SELECT x.id FROM t x)", true},
	{"public.t WHERE id IN (SELECT id FROM t)", "DELETE FROM public.t WHERE id IN (SELECT id FROM t)", true},
	{"id IN (SELECT DISTINCT id FROM t)", "DELETE FROM t WHERE id IN (SELECT DISTINCT id FROM t)", true},
	{"id IN (SELECT id FROM t GROUP BY id)", "DELETE FROM t WHERE id IN (SELECT id FROM t GROUP BY id)", true},
	{"id IN (SELECT id FROM t WHERE true)", "DELETE FROM t WHERE id IN (SELECT id FROM t WHERE true)", true},
	{"id IN (SELECT id FROM t WHERE id = id)", "DELETE FROM t WHERE id IN (SELECT id FROM t WHERE id = id)", true},
	{"id IN (SELECT id FROM t ORDER BY id)", "DELETE FROM t WHERE id IN (SELECT id FROM t ORDER BY id)", true},
	{"id IN (SELECT id FROM t UNION SELECT 0)", "DELETE FROM t WHERE id IN (SELECT id FROM t UNION SELECT 0)", true},
	{"id IN (SELECT id FROM (SELECT id FROM t) s)", "DELETE FROM t WHERE id IN (SELECT id FROM (SELECT id FROM t) s)", true},
	{"id IN (SELECT s.id FROM (SELECT * FROM t) s)", "DELETE FROM t WHERE id IN (SELECT s.id FROM (SELECT * FROM t) s)", true},
	{"id IN (SELECT k FROM (SELECT id AS k FROM t) s)", "DELETE FROM t WHERE id IN (SELECT k FROM (SELECT id AS k FROM t) s)", true},
	{"WITH a AS (SELECT id FROM t) DELETE FROM t WHERE id IN (SELECT id FROM a)", "WITH a AS (SELECT id FROM t) DELETE FROM t WHERE id IN (SELECT id FROM a)", true},
	{"(a, b) IN (SELECT a, b FROM t)", "DELETE FROM t WHERE (a, b) IN (SELECT a, b FROM t)", true},
	{"id >= ANY (SELECT id FROM t)", "DELETE FROM t WHERE id >= ANY (SELECT id FROM t)", true},
	{"EXISTS (SELECT 1 FROM t t2 WHERE t2.id = t.id)", "DELETE FROM t WHERE EXISTS (SELECT 1 FROM t t2 WHERE t2.id = t.id)", true},
	{"EXISTS (SELECT 1 FROM t AS t2 WHERE t.id = t2.id AND t2.a = t.a)", "DELETE FROM t WHERE EXISTS (SELECT 1 FROM t AS t2 WHERE t.id = t2.id AND t2.a = t.a)", true},
	{"EXISTS (SELECT 1)", "DELETE FROM t WHERE EXISTS (SELECT 1)", true},
	{"EXISTS (SELECT 1 FROM t)", "DELETE FROM t WHERE EXISTS (SELECT 1 FROM t)", true},
	{"EXISTS (SELECT 1 FROM t t2 WHERE t2.id = t.id LIMIT 1)", "DELETE FROM t WHERE EXISTS (SELECT 1 FROM t t2 WHERE t2.id = t.id LIMIT 1)", true},
	{"NOT EXISTS (SELECT 1 WHERE false)", "DELETE FROM t WHERE NOT EXISTS (SELECT 1 WHERE false)", true},
	{"id NOT IN (SELECT id FROM t WHERE false)", "DELETE FROM t WHERE id NOT IN (SELECT id FROM t WHERE false)", true},
	{"t USING t AS t2 WHERE t2.id = t.id AND t2.a = t.a", "DELETE FROM t USING t AS t2 WHERE t2.id = t.id AND t2.a = t.a", true},
	{"t USING (SELECT id FROM t) s WHERE s.id = t.id", "DELETE FROM t USING (SELECT id FROM t) s WHERE s.id = t.id", true},
	{"t USING t t2, u WHERE t.id = t2.id AND u.flag", "DELETE FROM t USING t t2, u WHERE t.id = t2.id AND u.flag", true},
	{"UPDATE t SET a = 1 FROM t t2 WHERE t.id = t2.id", "UPDATE t SET a = 1 FROM t t2 WHERE t.id = t2.id", true},
	{"UPDATE t SET a = 1 WHERE id IN (SELECT id FROM t)", "UPDATE t SET a = 1 WHERE id IN (SELECT id FROM t)", true},
	{"MERGE INTO t USING t s ON t.id = s.id WHEN MATCHED THEN DELETE", "MERGE INTO t USING t s ON t.id = s.id WHEN MATCHED THEN DELETE", true},
	{"MERGE INTO t USING (SELECT * FROM t) s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = 1", "MERGE INTO t USING (SELECT * FROM t) s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = 1", true},
	{"x = x", "DELETE FROM t WHERE x = x", true},
	{"t.x = x", "DELETE FROM t WHERE t.x = x", true},
	{"x >= x", "DELETE FROM t WHERE x >= x", true},
	{"x <= x", "DELETE FROM t WHERE x <= x", true},
	{"NOT (x < x)", "DELETE FROM t WHERE NOT (x < x)", true},
	{"NOT (x <> x)", "DELETE FROM t WHERE NOT (x <> x)", true},
	{"x IS NOT DISTINCT FROM x", "DELETE FROM t WHERE x IS NOT DISTINCT FROM x", true},
	{"NOT (x IS DISTINCT FROM x)", "DELETE FROM t WHERE NOT (x IS DISTINCT FROM x)", true},
	{"a OR NOT a", "DELETE FROM t WHERE a OR NOT a", true},
	{"NOT a OR a", "DELETE FROM t WHERE NOT a OR a", true},
	{"NOT (a AND NOT a)", "DELETE FROM t WHERE NOT (a AND NOT a)", true},
	{"true", "DELETE FROM t WHERE true", true},
	{"1 = 1", "DELETE FROM t WHERE 1 = 1", true},
	{"NOT false", "DELETE FROM t WHERE NOT false", true},
	{"'a' = 'a'", "DELETE FROM t WHERE 'a' = 'a'", true},
	{"col IS NULL OR col IS NOT NULL", "DELETE FROM t WHERE col IS NULL OR col IS NOT NULL", true},
	{"col IS NOT NULL", "DELETE FROM t WHERE col IS NOT NULL", true},
	{"NOT (col IS NULL)", "DELETE FROM t WHERE NOT (col IS NULL)", true},
	{"name LIKE '%'", "DELETE FROM t WHERE name LIKE '%'", true},
	{"name ILIKE '%%'", "DELETE FROM t WHERE name ILIKE '%%'", true},
	{"name ~~ '%'", "DELETE FROM t WHERE name ~~ '%'", true},
	{"name ~ ''", "DELETE FROM t WHERE name ~ ''", true},
	{"name ~ '.*'", "DELETE FROM t WHERE name ~ '.*'", true},
	{"name SIMILAR TO '%'", "DELETE FROM t WHERE name SIMILAR TO '%'", true},
	{"NOT (name NOT LIKE '%')", "DELETE FROM t WHERE NOT (name NOT LIKE '%')", true},
	{"name LIKE 'a%' OR name NOT LIKE 'a%'", "DELETE FROM t WHERE name LIKE 'a%' OR name NOT LIKE 'a%'", true},
	{"id < 5 OR id >= 5", "DELETE FROM t WHERE id < 5 OR id >= 5", true},
	{"id > 5 OR id <= 5", "DELETE FROM t WHERE id > 5 OR id <= 5", true},
	{"id < 10 OR id > 3", "DELETE FROM t WHERE id < 10 OR id > 3", true},
	{"id < 5 OR id = 5 OR id > 5", "DELETE FROM t WHERE id < 5 OR id = 5 OR id > 5", true},
	{"5 > id OR id >= 5", "DELETE FROM t WHERE 5 > id OR id >= 5", true},
	{"id = 5 OR id <> 5", "DELETE FROM t WHERE id = 5 OR id <> 5", true},
	{"id <= 0 OR id BETWEEN 0 AND 9 OR id > 9", "DELETE FROM t WHERE id <= 0 OR id BETWEEN 0 AND 9 OR id > 9", true},
	{"id NOT BETWEEN 1 AND 5 OR id BETWEEN 1 AND 5", "DELETE FROM t WHERE id NOT BETWEEN 1 AND 5 OR id BETWEEN 1 AND 5", true},
	{"id IN (1, 2) OR id NOT IN (1, 2)", "DELETE FROM t WHERE id IN (1, 2) OR id NOT IN (1, 2)", true},
	{"id NOT IN (1, 2) OR id = 1 OR id = 2", "DELETE FROM t WHERE id NOT IN (1, 2) OR id = 1 OR id = 2", true},
	{"id < 1.5 OR id >= 1.5", "DELETE FROM t WHERE id < 1.5 OR id >= 1.5", true},
	{"created_at < '2020-01-01' OR created_at >= '2020-01-01'", "DELETE FROM t WHERE created_at < '2020-01-01' OR created_at >= '2020-01-01'", true},
	{"status = 'x' OR status <> 'x'", "DELETE FROM t WHERE status = 'x' OR status <> 'x'", true},
	{"status = 'x' OR NOT (status = 'x')", "DELETE FROM t WHERE status = 'x' OR NOT (status = 'x')", true},
	{"(a = 1 OR b = 2) OR NOT (a = 1 OR b = 2)", "DELETE FROM t WHERE (a = 1 OR b = 2) OR NOT (a = 1 OR b = 2)", true},
	{"id = 7 OR (id <> 7 AND true)", "DELETE FROM t WHERE id = 7 OR (id <> 7 AND true)", true},
	{"flag IS TRUE OR flag IS NOT TRUE", "DELETE FROM t WHERE flag IS TRUE OR flag IS NOT TRUE", true},
	{"x BETWEEN x AND x", "DELETE FROM t WHERE x BETWEEN x AND x", true},
	{"x IN (x)", "DELETE FROM t WHERE x IN (x)", true},
	{"x IN (1, x)", "DELETE FROM t WHERE x IN (1, x)", true},
	{"1 IN (1, 2)", "DELETE FROM t WHERE 1 IN (1, 2)", true},
	{"coalesce(x, 0) = coalesce(x, 0)", "DELETE FROM t WHERE coalesce(x, 0) = coalesce(x, 0)", true},
	{"coalesce(x = x, true)", "DELETE FROM t WHERE coalesce(x = x, true)", true},
	{"coalesce(NULL, true)", "DELETE FROM t WHERE coalesce(NULL, true)", true},
	{"CASE WHEN a > 1 THEN true ELSE true END", "DELETE FROM t WHERE CASE WHEN a > 1 THEN true ELSE true END", true},
	{"CASE WHEN a > 1 THEN x = x ELSE 1 = 1 END", "DELETE FROM t WHERE CASE WHEN a > 1 THEN x = x ELSE 1 = 1 END", true},
	{"lower(email) = lower(email)", "DELETE FROM t WHERE lower(email) = lower(email)", true},
	{"(a, b) = (a, b)", "DELETE FROM t WHERE (a, b) = (a, b)", true},
	{"id = 5 OR true", "DELETE FROM t WHERE id = 5 OR true", true},
	{"x = x AND y = y", "DELETE FROM t WHERE x = x AND y = y", true},
	{"$1", "DELETE FROM t WHERE $1", true},
	{"now() > '2020-01-01'", "DELETE FROM t WHERE now() > '2020-01-01'", true},
	{"x::text = x::text", "DELETE FROM t WHERE x::text = x::text", true},
	{"UPDATE t SET a = 1 WHERE a < 0 OR a >= 0", "UPDATE t SET a = 1 WHERE a < 0 OR a >= 0", true},
	{"UPDATE t SET a = 1 WHERE a IS NULL OR a IS NOT NULL", "UPDATE t SET a = 1 WHERE a IS NULL OR a IS NOT NULL", true},

	// restricting: allow
	{"id = 5", "DELETE FROM t WHERE id = 5", false},
	{"created_at < now() - interval '1 day'", "DELETE FROM t WHERE created_at < now() - interval '1 day'", false},
	{"id IN (1, 2, 3)", "DELETE FROM t WHERE id IN (1, 2, 3)", false},
	{"id IN (SELECT id FROM other WHERE banned)", "DELETE FROM t WHERE id IN (SELECT id FROM other WHERE banned)", false},
	{"id IN (SELECT id FROM other)", "DELETE FROM t WHERE id IN (SELECT id FROM other)", false},
	{"id IN (SELECT parent_id FROM t)", "DELETE FROM t WHERE id IN (SELECT parent_id FROM t)", false},
	{"id IN (SELECT id FROM t WHERE a > 5)", "DELETE FROM t WHERE id IN (SELECT id FROM t WHERE a > 5)", false},
	{"id IN (SELECT id FROM t LIMIT 10)", "DELETE FROM t WHERE id IN (SELECT id FROM t LIMIT 10)", false},
	{"id IN (SELECT id FROM t OFFSET 1)", "DELETE FROM t WHERE id IN (SELECT id FROM t OFFSET 1)", false},
	{"id IN (SELECT id FROM t ORDER BY id LIMIT 1)", "DELETE FROM t WHERE id IN (SELECT id FROM t ORDER BY id LIMIT 1)", false},
	{"id IN (SELECT max(id) FROM t)", "DELETE FROM t WHERE id IN (SELECT max(id) FROM t)", false},
	{"id IN (SELECT id FROM t GROUP BY id HAVING count(*) > 1)", "DELETE FROM t WHERE id IN (SELECT id FROM t GROUP BY id HAVING count(*) > 1)", false},
	{"id IN (SELECT id FROM ONLY t)", "DELETE FROM t WHERE id IN (SELECT id FROM ONLY t)", false},
	{"id IN (SELECT id FROM t TABLESAMPLE SYSTEM (10))", "DELETE FROM t WHERE id IN (SELECT id FROM t TABLESAMPLE SYSTEM (10))", false},
	{"id IN (SELECT t2.id FROM t t2 JOIN u ON u.id = t2.u_id)", "DELETE FROM t WHERE id IN (SELECT t2.id FROM t t2 JOIN u ON u.id = t2.u_id)", false},
	{"id IN (SELECT id FROM t INTERSECT SELECT id FROM u)", "DELETE FROM t WHERE id IN (SELECT id FROM t INTERSECT SELECT id FROM u)", false},
	{"id IN (SELECT id FROM t EXCEPT SELECT id FROM u)", "DELETE FROM t WHERE id IN (SELECT id FROM t EXCEPT SELECT id FROM u)", false},
	{"id IN (SELECT DISTINCT ON (a) id FROM t)", "DELETE FROM t WHERE id IN (SELECT DISTINCT ON (a) id FROM t)", false},
	{"id IN (WITH t AS (SELECT 1 AS id) SELECT id FROM t)", "DELETE FROM t WHERE id IN (WITH t AS (SELECT 1 AS id) SELECT id FROM t)", false},
	{"id IN (SELECT k FROM (SELECT id + 1 AS k FROM t) s)", "DELETE FROM t WHERE id IN (SELECT k FROM (SELECT id + 1 AS k FROM t) s)", false},
	{"id < ANY (SELECT id FROM t)", "DELETE FROM t WHERE id < ANY (SELECT id FROM t)", false},
	{"id <> ALL (SELECT id FROM u)", "DELETE FROM t WHERE id <> ALL (SELECT id FROM u)", false},
	{"NOT EXISTS (SELECT 1 FROM t t2 WHERE t2.id = t.id)", "DELETE FROM t WHERE NOT EXISTS (SELECT 1 FROM t t2 WHERE t2.id = t.id)", false},
	{"id NOT IN (SELECT id FROM t)", "DELETE FROM t WHERE id NOT IN (SELECT id FROM t)", false},
	{"EXISTS (SELECT 1 FROM t t2 WHERE t2.parent = t.id)", "DELETE FROM t WHERE EXISTS (SELECT 1 FROM t t2 WHERE t2.parent = t.id)", false},
	{"EXISTS (SELECT 1 FROM t t2 WHERE t2.id = t.id AND t2.a > 3)", "DELETE FROM t WHERE EXISTS (SELECT 1 FROM t t2 WHERE t2.id = t.id AND t2.a > 3)", false},
	{"EXISTS (SELECT 1 FROM t t2 WHERE t2.id = t.id OFFSET 1)", "DELETE FROM t WHERE EXISTS (SELECT 1 FROM t t2 WHERE t2.id = t.id OFFSET 1)", false},
	{"EXISTS (SELECT 1 FROM u WHERE u.id = t.u_id)", "DELETE FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.id = t.u_id)", false},
	{"EXISTS (SELECT 1 FROM t t2 WHERE t2.id = t.id AND EXISTS (SELECT 1 FROM u WHERE u.x = t2.x))", "DELETE FROM t WHERE EXISTS (SELECT 1 FROM t t2 WHERE t2.id = t.id AND EXISTS (SELECT 1 FROM u WHERE u.x = t2.x))", false},
	{"t USING t t2 WHERE t.id < t2.id AND t.email = t2.email", "DELETE FROM t USING t t2 WHERE t.id < t2.id AND t.email = t2.email", false},
	{"t USING t t2 WHERE t.parent = t2.id", "DELETE FROM t USING t t2 WHERE t.parent = t2.id", false},
	{"t USING u WHERE t.u_id = u.id", "DELETE FROM t USING u WHERE t.u_id = u.id", false},
	{"t USING (SELECT id, price * 2 AS p FROM t) s WHERE s.id = t.id AND s.p > 100", "DELETE FROM t USING (SELECT id, price * 2 AS p FROM t) s WHERE s.id = t.id AND s.p > 100", false},
	{"t USING (SELECT id FROM t WHERE a = 1) s WHERE s.id = t.id", "DELETE FROM t USING (SELECT id FROM t WHERE a = 1) s WHERE s.id = t.id", false},
	{"t USING t t2 WHERE t.id = t2.id AND t.a = 5", "DELETE FROM t USING t t2 WHERE t.id = t2.id AND t.a = 5", false},
	{"UPDATE t SET a = 1 FROM t t2 WHERE t.id = t2.parent", "UPDATE t SET a = 1 FROM t t2 WHERE t.id = t2.parent", false},
	{"MERGE INTO t USING u s ON t.id = s.id WHEN MATCHED THEN DELETE", "MERGE INTO t USING u s ON t.id = s.id WHEN MATCHED THEN DELETE", false},
	{"MERGE INTO t USING t s ON t.id = s.parent WHEN MATCHED THEN DELETE", "MERGE INTO t USING t s ON t.id = s.parent WHEN MATCHED THEN DELETE", false},
	{"x <> x", "DELETE FROM t WHERE x <> x", false},
	{"x < x", "DELETE FROM t WHERE x < x", false},
	{"a AND NOT a", "DELETE FROM t WHERE a AND NOT a", false},
	{"col IS NULL", "DELETE FROM t WHERE col IS NULL", false},
	{"name LIKE 'a%'", "DELETE FROM t WHERE name LIKE 'a%'", false},
	{"name NOT LIKE '%'", "DELETE FROM t WHERE name NOT LIKE '%'", false},
	{"name LIKE '_'", "DELETE FROM t WHERE name LIKE '_'", false},
	{"name ~ 'a'", "DELETE FROM t WHERE name ~ 'a'", false},
	{"name SIMILAR TO '_%'", "DELETE FROM t WHERE name SIMILAR TO '_%'", false},
	{"id < 5 OR id > 5", "DELETE FROM t WHERE id < 5 OR id > 5", false},
	{"id <= 4 OR id >= 5", "DELETE FROM t WHERE id <= 4 OR id >= 5", false},
	{"id < 5 OR id >= 6", "DELETE FROM t WHERE id < 5 OR id >= 6", false},
	{"id < 5 OR other >= 5", "DELETE FROM t WHERE id < 5 OR other >= 5", false},
	{"id BETWEEN 1 AND 5 OR id NOT BETWEEN 1 AND 6", "DELETE FROM t WHERE id BETWEEN 1 AND 5 OR id NOT BETWEEN 1 AND 6", false},
	{"id IN (1, 2) OR id NOT IN (1, 3)", "DELETE FROM t WHERE id IN (1, 2) OR id NOT IN (1, 3)", false},
	{"id NOT IN (1, NULL) OR id = 1", "DELETE FROM t WHERE id NOT IN (1, NULL) OR id = 1", false},
	{"created_at < '2020-01-01' OR created_at > '2020-01-01'", "DELETE FROM t WHERE created_at < '2020-01-01' OR created_at > '2020-01-01'", false},
	{"status = 'x' OR status <> 'y'", "DELETE FROM t WHERE status = 'x' OR status <> 'y'", false},
	{"x BETWEEN 1 AND 0", "DELETE FROM t WHERE x BETWEEN 1 AND 0", false},
	{"id > 0", "DELETE FROM t WHERE id > 0", false},
	{"coalesce(x = x, flag)", "DELETE FROM t WHERE coalesce(x = x, flag)", false},
	{"coalesce(flag, true)", "DELETE FROM t WHERE coalesce(flag, true)", false},
	{"CASE WHEN a > 1 THEN true ELSE false END", "DELETE FROM t WHERE CASE WHEN a > 1 THEN true ELSE false END", false},
	{"CASE WHEN a > 1 THEN true END", "DELETE FROM t WHERE CASE WHEN a > 1 THEN true END", false},
	{"lower(email) = 'x'", "DELETE FROM t WHERE lower(email) = 'x'", false},
	{"5 IN (6)", "DELETE FROM t WHERE 5 IN (6)", false},
	{"x = 1 AND (y = 2 OR y <> 2)", "DELETE FROM t WHERE x = 1 AND (y = 2 OR y <> 2)", false},
	{"(a = 1 OR b = 2) OR NOT (a = 1 OR b = 3)", "DELETE FROM t WHERE (a = 1 OR b = 2) OR NOT (a = 1 OR b = 3)", false},
	{"UPDATE t SET a = 1 WHERE id = 1", "UPDATE t SET a = 1 WHERE id = 1", false},
	{"UPDATE t SET a = 1 WHERE id IN (SELECT id FROM t WHERE a IS NULL)", "UPDATE t SET a = 1 WHERE id IN (SELECT id FROM t WHERE a IS NULL)", false},
}

func TestWhereEveryRow(t *testing.T) {
	t.Parallel()
	all, some := 0, 0
	for _, tc := range whereCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := Default().Classify(tc.sql)
			want := "sql-write"
			if tc.all {
				want = unrestrictedRule(tc.sql)
			}
			if out.Rule != want {
				t.Fatalf("Classify(%q) = %v %s (%s), want %s", tc.sql, out.Decision, out.Rule, out.Reason, want)
			}
		})
		if tc.all {
			all++
		} else {
			some++
		}
	}
	if all < 80 || some < 60 {
		t.Errorf("%d always-true and %d restricting rows, want at least 80 and 60", all, some)
	}
}

func unrestrictedRule(sql string) string {
	if strings.HasPrefix(sql, "UPDATE") || strings.Contains(sql, "THEN UPDATE") {
		return "sql-unrestricted-update"
	}
	return "sql-unrestricted-delete"
}

// The rows seed the fuzz targets and the shape-cache tests too.
func init() {
	for _, tc := range whereCases {
		c := classifyCase{name: "where: " + tc.name, sql: tc.sql, want: allow, rule: "sql-write"}
		if tc.all {
			c.want, c.rule = approve, unrestrictedRule(tc.sql)
		}
		classifyCases = append(classifyCases, c)
	}
}

// TestWhereTooComplex: a WHERE beyond what is checked (subqueries nested
// past maxWitnessDepth, an OR of more than maxOrArms arms, more work than
// maxWhereWork) does not count as restricting, so padding cannot hide a
// tautology; a long list of constants stays an ordinary restricting WHERE.
func TestWhereTooComplex(t *testing.T) {
	t.Parallel()
	nested := "SELECT id FROM t"
	for range maxWitnessDepth + 2 {
		nested = "SELECT id FROM t WHERE id IN (" + nested + ")"
	}
	arms := make([]string, maxOrArms+1)
	for i := range arms {
		arms[i] = "x = " + strconv.Itoa(i+1)
	}
	ids := make([]string, 50000)
	for i := range ids {
		ids[i] = strconv.Itoa(i)
	}
	for _, tc := range []struct {
		name, sql, rule, reason string
	}{
		{"subqueries nested too deep", "DELETE FROM t WHERE id IN (" + nested + ")", "sql-unrestricted-delete", "too complex to check"},
		{"too many arms", "DELETE FROM t WHERE " + strings.Join(arms, " OR ") + " OR x <> 1", "sql-unrestricted-delete", "too complex to check"},
		{"long IN list", "DELETE FROM t WHERE id IN (" + strings.Join(ids, ", ") + ")", "sql-write", "DELETE FROM t"},
		{"long IN list with itself", "UPDATE t SET a = 1 WHERE id IN (" + strings.Join(ids, ", ") + ", id)", "sql-unrestricted-update", "holds for every row"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := Default().Classify(tc.sql)
			if out.Rule != tc.rule || !strings.Contains(out.Reason, tc.reason) {
				t.Fatalf("%s: %v %s (%s), want %s with %q", tc.name, out.Decision, out.Rule, out.Reason, tc.rule, tc.reason)
			}
		})
	}
}
