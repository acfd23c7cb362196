package pgproxy

import (
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func TestScanAndTreeFlags(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		sql  string
		text textFlags // what the scan finds
		tree textFlags // what the parse tree confirms
	}{
		{"select", "SELECT abalance FROM pgbench_accounts WHERE aid = 1", 0, 0},
		{"update", "UPDATE t SET n = 1 WHERE id = 2", flagModify, flagModify},
		{"delete in any case", "dElEtE FROM t WHERE id = 2", flagModify, flagModify},
		{"word inside an identifier", "SELECT created_at, updated, deleted_by FROM t", 0, 0},
		{"set search_path", "SET search_path = other, public", flagPath, flagPath},
		{"set schema", "SET SCHEMA 'other'", flagPath, flagPath},
		{"unicode-escaped name", `SET U&"search\005fpath" TO other`, flagPath, flagPath},
		{"set_config", "SELECT set_config('search_path', 'x', false)", flagPath, flagPath},
		{"set_config of another setting", "SELECT set_config('work_mem', '8MB', false)", flagPath, 0},
		{"computed set_config name", "SELECT set_config('search' || '_path', 'x', false)", flagPath, flagPath},
		{"reset search_path", "RESET search_path", flagPath, 0},
		{"information_schema", "SELECT * FROM information_schema.tables", 0, 0},
		{"mentioned in a string", "SELECT 'search_path'", flagPath, 0},
		{"temporary table", "CREATE TEMP TABLE x (a int)", flagTemp | flagSchema, flagTemp | flagSchema},
		{"pg_temp", "CREATE TABLE pg_temp.x (a int)", flagTemp | flagSchema, flagTemp | flagSchema},
		{"temperature", "SELECT temp_c, temperature FROM w", 0, 0},
		{"create view", "CREATE VIEW v AS SELECT 1", flagSchema, flagSchema},
		{"alter rename", "ALTER TABLE t RENAME COLUMN a TO b", flagSchema, flagSchema},
		{"create in a string", "SELECT 'create'", flagSchema, 0},
		{"do block", "DO $$ BEGIN PERFORM 1; END $$", flagSchema | flagPath | flagTemp, flagSchema | flagPath | flagTemp},
		{"on conflict do nothing", "INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING", flagSchema | flagPath | flagTemp, 0},
		{"declare", "DECLARE c CURSOR FOR SELECT 1", flagNamed, flagNamed},
		{"prepare", "PREPARE p AS SELECT 1", flagNamed, flagNamed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := scanText(tc.sql)
			if got != tc.text {
				t.Errorf("scan %s: got %b, want %b", tc.sql, got, tc.text)
			}
			tree, err := pg_query.Parse(tc.sql)
			if err != nil {
				t.Fatal(err)
			}
			if tf := treeFlags(tree, got); tf != tc.tree {
				t.Errorf("tree %s: got %b, want %b", tc.sql, tf, tc.tree)
			}
		})
	}
}

func TestPlanEstimate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		sql     string
		explain []string // the statements explained; nil: no plan
		keyed   string   // the first statement's equality columns, "-" if not keyed
	}{
		{"delete", "DELETE FROM t WHERE id > 0", []string{"DELETE FROM t WHERE id > 0"}, "-"},
		{"without where", "DELETE FROM t", nil, ""},
		{"keyed update", "UPDATE t SET n = 1 WHERE id = 5 AND t.k = $1", []string{"UPDATE t SET n = 1 WHERE id = 5 AND t.k = $1"}, "id k"},
		{"keyed by alias", "DELETE FROM t AS x WHERE x.id = 5", []string{"DELETE FROM t AS x WHERE x.id = 5"}, "id"},
		{"null is no key", "DELETE FROM t WHERE id = NULL", []string{"DELETE FROM t WHERE id = NULL"}, "-"},
		{"or is no key", "DELETE FROM t WHERE id = 1 OR id = 2", []string{"DELETE FROM t WHERE id = 1 OR id = 2"}, "-"},
		{"several statements", "BEGIN; DELETE FROM a WHERE x > 1; SELECT 1; UPDATE b SET y = 2 WHERE y < 0; COMMIT",
			[]string{"DELETE FROM a WHERE x > 1", "UPDATE b SET y = 2 WHERE y < 0"}, "-"},
		{"cte", "WITH d AS (DELETE FROM t WHERE id > 0 RETURNING id) SELECT count(*) FROM d",
			[]string{"WITH d AS (DELETE FROM t WHERE id > 0 RETURNING id) SELECT count(*) FROM d"}, "-"},
		{"explain analyze", "EXPLAIN ANALYZE DELETE FROM t WHERE id > 0", []string{"DELETE FROM t WHERE id > 0"}, "-"},
		{"explain analyze false", "EXPLAIN (ANALYZE false) DELETE FROM t WHERE id > 0", nil, ""},
		{"explain alone runs nothing", "EXPLAIN DELETE FROM t WHERE id > 0", nil, ""},
		{"copy of a delete", "COPY (DELETE FROM t WHERE id > 0 RETURNING id) TO STDOUT", []string{"DELETE FROM t WHERE id > 0 RETURNING id"}, "-"},
		{"prepare runs nothing", "PREPARE p AS DELETE FROM t WHERE id > $1", nil, ""},
		{"select", "SELECT * FROM t WHERE id > 0", nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tree, err := pg_query.Parse(tc.sql)
			if err != nil {
				t.Fatal(err)
			}
			plan, err := planEstimate(tc.sql, tree)
			if err != nil {
				t.Fatal(err)
			}
			if tc.explain == nil {
				if plan != nil {
					t.Fatalf("plan %+v, want none", plan)
				}
				return
			}
			if plan == nil || len(plan.stmts) != len(tc.explain) {
				t.Fatalf("plan %+v, want %q", plan, tc.explain)
			}
			for i, st := range plan.stmts {
				if strings.TrimSpace(st.explain) != tc.explain[i] {
					t.Errorf("statement %d: %q, want %q", i, st.explain, tc.explain[i])
				}
			}
			keyed := "-"
			if plan.stmts[0].keyed {
				keyed = strings.Join(plan.stmts[0].eqCols, " ")
			}
			if keyed != tc.keyed {
				t.Errorf("keyed %q, want %q", keyed, tc.keyed)
			}
		})
	}
}

func TestModifyNodes(t *testing.T) {
	t.Parallel()
	js := `[{"Plan": {"Node Type": "ModifyTable", "Operation": "Delete", "Relation Name": "t", "Plan Rows": 0,
		"Plans": [{"Node Type": "Seq Scan", "Relation Name": "t", "Plan Rows": 5200}]}}]`
	mods, err := modifyNodes([]byte(js))
	if err != nil || len(mods) != 1 || mods[0].relation != "t" || mods[0].rows != 5200 {
		t.Fatalf("%+v %v", mods, err)
	}
	cte := `[{"Plan": {"Node Type": "Aggregate", "Plan Rows": 1, "Plans": [
		{"Node Type": "ModifyTable", "Operation": "Update", "Relation Name": "a", "Plan Rows": 30, "Plans": [{"Node Type": "Seq Scan", "Plan Rows": 30}]},
		{"Node Type": "ModifyTable", "Operation": "Insert", "Relation Name": "b", "Plan Rows": 9000}]}}]`
	mods, err = modifyNodes([]byte(cte))
	if err != nil || len(mods) != 1 || mods[0].relation != "a" || mods[0].rows != 30 {
		t.Fatalf("%+v %v", mods, err)
	}
	for _, bad := range []string{"", "[]", "{", `{"Plan": 1}`} {
		if _, err := modifyNodes([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
