package pgproxy

import (
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// fakeCatalog resolves a fixed schema for the analysis.
type fakeCatalog struct {
	rules  []string
	tables map[string][]string // qualified name: columns
	views  map[string][]col    // qualified name: judged columns
	funcs  map[string]bool
	texts  map[string]string // "c:name" or "p:name": query text
}

func testCatalog() *fakeCatalog {
	return &fakeCatalog{
		rules: lowerAll(DefaultColumnRules),
		tables: map[string][]string{
			"public.users":  {"id", "name", "password"},
			"public.orders": {"id", "user_id", "note"},
			"vault.keys":    {"id", "material"},
		},
		views: map[string][]col{"public.v": {{name: "id"}, {name: "x", taint: true}}},
		funcs: map[string]bool{"reveal": true},
		texts: map[string]string{
			"c:cur": "DECLARE cur CURSOR FOR SELECT id, upper(password) FROM users",
			"p:st":  "PREPARE st AS SELECT name, password FROM users WHERE id = $1",
		},
	}
}

func (f *fakeCatalog) relation(schema, name string) ([]col, string, bool) {
	if schema == "" {
		schema = "public"
	}
	q := schema + "." + name
	if v, ok := f.views[q]; ok {
		return v, q, true
	}
	cols, ok := f.tables[q]
	if !ok {
		return nil, "", false
	}
	out := make([]col, len(cols))
	for i, c := range cols {
		out[i] = col{name: c, taint: f.rule(q, c)}
	}
	return out, q, true
}

func (f *fakeCatalog) userFunc(schema, name string) bool {
	return schema != "" && schema != "pg_catalog" || f.funcs[name]
}

func (f *fakeCatalog) rule(rel, col string) bool { return matchColumn(f.rules, rel, col) }

func (f *fakeCatalog) named(cursor bool, name string) *pg_query.Node {
	key := "p:" + name
	if cursor {
		key = "c:" + name
	}
	text, ok := f.texts[key]
	if !ok {
		return nil
	}
	tree, err := pg_query.Parse(text)
	if err != nil {
		panic(err)
	}
	n := tree.Stmts[0].Stmt
	if d := n.GetDeclareCursorStmt(); d != nil {
		return d.Query
	}
	return n.GetPrepareStmt().Query
}

// shape writes analyzed columns as "0" (clean), "1" (tainted), "*0" or
// "*1" (an unexpanded star), space separated; "-" for none.
func shape(cols []col) string {
	if cols == nil {
		return "-"
	}
	var b []string
	for _, c := range cols {
		s := "0"
		if c.taint {
			s = "1"
		}
		if c.star {
			s = "*" + s
		}
		b = append(b, s)
	}
	return strings.Join(b, " ")
}

func TestStatementColumns(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, sql, want string
	}{
		{"plain", "SELECT id, password FROM users", "0 1"},
		{"alias", "SELECT password AS p FROM users", "1"},
		{"qualified", "SELECT u.password FROM users u", "1"},
		{"schema qualified", "SELECT public.users.password FROM public.users", "1"},
		{"functions and operators", "SELECT upper(password), password || 'x', substr(password, 1, 3), length(name) FROM users", "1 1 1 0"},
		{"cast", "SELECT password::bytea FROM users", "1"},
		{"case", "SELECT CASE WHEN id = 1 THEN password ELSE name END FROM users", "1"},
		{"scalar subquery", "SELECT (SELECT password FROM users LIMIT 1)", "1"},
		{"correlated subquery", "SELECT o.id, (SELECT u.password FROM users u WHERE u.id = o.user_id) FROM orders o", "0 1"},
		{"exists compares only", "SELECT EXISTS (SELECT 1 FROM users WHERE password = 'x')", "0"},
		{"where compares only", "SELECT id FROM users WHERE password = 'x'", "0"},
		{"row", "SELECT row(password) FROM users", "1"},
		{"whole row by alias", "SELECT json_agg(u) FROM users u", "1"},
		{"whole row by name", "SELECT users::text FROM users", "1"},
		{"whole row of a clean table", "SELECT o::text FROM orders o", "0"},
		{"star as a value", "SELECT row(u.*) FROM users u", "1"},
		{"indirection", "SELECT (u).id FROM users u", "1"},
		{"star", "SELECT * FROM users", "0 0 1"},
		{"star of one table", "SELECT o.*, u.id FROM orders o JOIN users u ON u.id = o.user_id", "0 0 0 0"},
		{"star of a join", "SELECT * FROM orders JOIN users ON users.id = orders.user_id", "0 0 0 0 0 1"},
		{"subquery", "SELECT x FROM (SELECT password AS x FROM users) s", "1"},
		{"subquery column alias", "SELECT y FROM (SELECT password FROM users) s(y)", "1"},
		{"expression over subquery", "SELECT upper(s.x), s.n FROM (SELECT password AS x, name AS n FROM users) s", "1 0"},
		{"star over subquery", "SELECT * FROM (SELECT id, upper(password) AS x FROM users) s", "0 1"},
		{"cte", "WITH c AS (SELECT password AS x, id FROM users) SELECT lower(x), id FROM c", "1 0"},
		{"cte column names", "WITH c(a, b) AS (SELECT id, password FROM users) SELECT b, a FROM c", "1 0"},
		{"recursive cte", "WITH RECURSIVE r(n, p) AS (SELECT 1, ''::text UNION ALL SELECT n + 1, (SELECT password FROM users LIMIT 1) FROM r WHERE n < 3) SELECT n, p FROM r", "0 1"},
		{"union", "SELECT name FROM users UNION SELECT password FROM users", "1"},
		{"union of clean", "SELECT name, id FROM users UNION SELECT note, id FROM orders", "0 0"},
		{"values", "SELECT * FROM (VALUES (1, 'a')) v(a, b)", "0 0"},
		{"values with a masked column", "VALUES (1, (SELECT password FROM users LIMIT 1))", "0 1"},
		{"lateral", "SELECT t.x FROM users u, LATERAL (SELECT u.password AS x) t", "1"},
		{"view", "SELECT x, id FROM v", "1 0"},
		{"expression over view", "SELECT upper(x) FROM v", "1"},
		{"user function", "SELECT reveal()", "1"},
		{"schema-qualified function", "SELECT app.helper(1)", "1"},
		{"builtin function", "SELECT now(), pg_catalog.upper('x')", "0 0"},
		{"set-returning builtin in FROM", "SELECT * FROM generate_series(1, 3) g", "*0"},
		{"user function in FROM", "SELECT * FROM reveal() r", "*1"},
		{"function of a masked column in FROM", "SELECT x FROM users u, unnest(ARRAY[u.password]) AS t(x)", "1"},
		{"unknown relation", "SELECT upper(a), count(*) FROM nosuch", "1 0"},
		{"unknown relation star", "SELECT * FROM nosuch", "*1"},
		{"unknown relation, whole row", "SELECT n::text FROM nosuch n", "1"},
		{"other schema", "SELECT k.material, k::text FROM vault.keys k", "0 0"},
		{"returning", "UPDATE users SET name = 'x' WHERE id = 1 RETURNING id, password AS p", "0 1"},
		{"delete returning star", "DELETE FROM users WHERE id = 1 RETURNING *", "0 0 1"},
		{"insert returning", "INSERT INTO users (id) VALUES (9) RETURNING upper(password)", "1"},
		{"update from", "UPDATE orders SET note = u.password FROM users u WHERE u.id = orders.user_id RETURNING note, u.password", "0 1"},
		{"no returning", "DELETE FROM users WHERE id = 1", "-"},
		{"fetch", "FETCH ALL FROM cur", "0 1"},
		{"execute", "EXECUTE st(1)", "0 1"},
		{"fetch of an unknown cursor", "FETCH ALL FROM other", "*1"},
		{"explain", "EXPLAIN SELECT password FROM users", "-"},
		{"show", "SHOW search_path", "-"},
		{"call", "CALL proc()", "*1"},
		{"constants", "SELECT 1, 'a', $1::int", "0 0 0"},
		{"masked output name", "SELECT 1 AS api_token", "0"}, // the name rule is the session's, not the tree's
		{"column named like a rule", "SELECT secret_code FROM orders", "1"},
	}
	cat := testCatalog()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tree, err := pg_query.Parse(tc.sql)
			if err != nil {
				t.Fatal(err)
			}
			a := &analyzer{r: cat}
			if got := shape(a.statementColumns(tree.Stmts[0].Stmt, nil)); got != tc.want {
				t.Errorf("%s\n got %s\nwant %s", tc.sql, got, tc.want)
			}
		})
	}
}

func TestMapColumns(t *testing.T) {
	t.Parallel()
	c := func(taint bool) col { return col{taint: taint} }
	star := func(taint bool) col { return col{star: true, taint: taint} }
	cases := []struct {
		name string
		cols []col
		n    int
		want string
	}{
		{"one to one", []col{c(false), c(true)}, 2, "01"},
		{"count differs, clean", []col{c(false)}, 3, "000"},
		{"count differs, tainted", []col{c(true)}, 3, "111"},
		{"one star in the middle", []col{c(true), star(false), c(false)}, 5, "10000"},
		{"tainted star", []col{c(false), star(true), c(false)}, 4, "0110"},
		{"two stars", []col{star(false), c(false), star(true)}, 4, "1111"},
		{"star wider than fields", []col{c(true), c(false), star(false), c(true)}, 2, "11"},
		{"empty star", []col{c(false), star(true)}, 1, "0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := make([]bool, tc.n)
			mapColumns(tc.cols, out)
			var b strings.Builder
			for _, v := range out {
				if v {
					b.WriteByte('1')
				} else {
					b.WriteByte('0')
				}
			}
			if b.String() != tc.want {
				t.Errorf("got %s, want %s", b.String(), tc.want)
			}
		})
	}
}

func TestMatchColumn(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		rules []string
		rel   string
		col   string
		want  bool
	}{
		{"name rule", []string{"*password*"}, "public.users", "Password", true},
		{"name rule ignores the table", []string{"*token*"}, "public.tokens", "id", false},
		{"table rule", []string{"*.ssn"}, "public.people", "ssn", true},
		{"table rule, short name", []string{"people.ssn"}, "hr.people", "ssn", true},
		{"table rule, qualified", []string{"hr.people.ssn"}, "hr.people", "ssn", true},
		{"table rule, other table", []string{"people.ssn"}, "hr.staff", "ssn", false},
		{"table rule, unknown table", []string{"people.ssn"}, "", "ssn", true},
		{"no rules", nil, "t", "password", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := matchColumn(lowerAll(tc.rules), tc.rel, tc.col); got != tc.want {
				t.Errorf("got %v", got)
			}
		})
	}
}

// FuzzStatementColumns analyzes arbitrary SQL against the test catalog:
// it must not panic, and a statement naming the password column in its
// select list is never judged clean.
func FuzzStatementColumns(f *testing.F) {
	for _, s := range []string{
		"SELECT password FROM users", "SELECT * FROM (SELECT upper(password) x FROM users) s",
		"WITH RECURSIVE r AS (SELECT 1 UNION SELECT n FROM r) SELECT * FROM r",
		"SELECT (SELECT (SELECT password FROM users))", "VALUES (1), (2, 3)",
	} {
		f.Add(s)
	}
	cat := testCatalog()
	f.Fuzz(func(t *testing.T, sql string) {
		tree, err := pg_query.Parse(sql)
		if err != nil {
			return
		}
		for _, raw := range tree.Stmts {
			a := &analyzer{r: cat}
			cols := a.statementColumns(raw.Stmt, nil)
			if sel := raw.Stmt.GetSelectStmt(); sel != nil && len(sel.TargetList) == 1 && len(sel.FromClause) == 1 {
				if cr := sel.TargetList[0].GetResTarget().GetVal().GetColumnRef(); cr != nil && lastString(cr.Fields) == "password" && !anyTaint(cols) {
					t.Errorf("%q: the password column judged clean", sql)
				}
			}
		}
	})
}
