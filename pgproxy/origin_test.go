package pgproxy

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bastion-dev/bastion/internal/pgtest"
	"github.com/bastion-dev/bastion/policy"
)

const hunter = "hunter2-correct-horse"

// rawRow runs sql and returns the first row's raw values.
func rawRow(t *testing.T, c *pgx.Conn, sql string, mode pgx.QueryExecMode) [][]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rows, err := c.Query(ctx, sql, mode)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	defer rows.Close()
	if !rows.Next() {
		t.Fatalf("%s: no row (%v)", sql, rows.Err())
	}
	var out [][]byte
	for _, v := range rows.RawValues() {
		out = append(out, bytes.Clone(v))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

// wantMasked checks which values are replaced whole, and that no value
// shows the password.
func wantMasked(t *testing.T, sql string, vals [][]byte, masked []bool) {
	t.Helper()
	if len(vals) != len(masked) {
		t.Fatalf("%s: %d columns, want %d", sql, len(vals), len(masked))
	}
	for i, v := range vals {
		if got := bytes.HasPrefix(v, []byte("[MASKED:")); got != masked[i] {
			t.Errorf("%s: column %d = %q, masked %v, want %v", sql, i, v, got, masked[i])
		}
		if bytes.Contains(v, []byte(hunter)) {
			t.Errorf("%s: column %d shows the password: %q", sql, i, v)
		}
	}
}

func TestColumnOrigins(t *testing.T) {
	srv := pgtest.Start(t)
	ctx := context.Background()
	direct := pgxConnect(t, srv.DSN())
	if _, err := direct.Exec(ctx, `
		CREATE TABLE users (id int PRIMARY KEY, name text, password text, ssn text);
		INSERT INTO users VALUES (1, 'alice', '`+hunter+`', '078-05-1120');
		CREATE VIEW shouting AS SELECT id, upper(password) AS shout FROM users;
		CREATE VIEW plain AS SELECT id, name AS x FROM users;
		CREATE VIEW nested AS SELECT shout AS y FROM shouting;
		CREATE FUNCTION reveal() RETURNS text LANGUAGE sql AS 'SELECT password FROM users LIMIT 1';
		CREATE SCHEMA vault;
		CREATE TABLE notes (id int, body text);
		INSERT INTO notes VALUES (1, 'hello');
		CREATE TABLE vault.notes (id int, api_token text);
		INSERT INTO vault.notes VALUES (1, '`+hunter+`');`); err != nil {
		t.Fatal(err)
	}
	ev := &events{}
	addr := serveLocal(t, &Proxy{Target: targetFor(srv), Hooks: Hooks{Statement: ev.hook}})
	conn := pgxConnect(t, clientDSN(addr, srv.Database))

	cases := []struct {
		name   string
		sql    string
		masked []bool
	}{
		{"plain column", "SELECT password FROM users", []bool{true}},
		{"alias", "SELECT password AS p FROM users", []bool{true}},
		{"upper", "SELECT upper(password) FROM users", []bool{true}},
		{"concatenation", "SELECT password || '' AS x FROM users", []bool{true}},
		{"substr", "SELECT substr(password, 1, 3) FROM users", []bool{true}},
		{"scalar subquery", "SELECT (SELECT password FROM users LIMIT 1) AS x", []bool{true}},
		{"row", "SELECT row(password) AS x FROM users", []bool{true}},
		{"json_agg of rows", "SELECT json_agg(u) FROM users u", []bool{true}},
		{"whole-row cast", "SELECT u::text AS x FROM users u", []bool{true}},
		{"whole row by table name", "SELECT to_jsonb(users) AS x FROM users", []bool{true}},
		{"whole-row star", "SELECT row(u.*)::text AS x FROM users u", []bool{true}},
		{"subquery column", "SELECT x FROM (SELECT password AS x FROM users) s", []bool{true}},
		{"expression over subquery column", "SELECT upper(x) AS y FROM (SELECT password AS x FROM users) s", []bool{true}},
		{"cte", "WITH c AS (SELECT password AS x FROM users) SELECT lower(x) AS y FROM c", []bool{true}},
		{"union", "SELECT name AS x FROM users UNION ALL SELECT password FROM users", []bool{true}},
		{"lateral", "SELECT t.x FROM users u, LATERAL (SELECT u.password AS x) t", []bool{true}},
		{"case", "SELECT CASE WHEN id > 0 THEN password END AS x FROM users", []bool{true}},
		{"array", "SELECT ARRAY[password] AS x FROM users", []bool{true}},
		{"row_to_json of a star subquery", "SELECT row_to_json(t) AS x FROM (SELECT * FROM users) t", []bool{true}},
		{"view over an expression", "SELECT shout AS x FROM shouting", []bool{true}},
		{"star over a view", "SELECT * FROM shouting", []bool{false, true}},
		{"view over a view", "SELECT lower(y) AS z FROM nested", []bool{true}},
		{"user function", "SELECT reveal() AS x", []bool{true}},
		{"returning", "UPDATE users SET name = name WHERE id = 1 RETURNING id, password AS p", []bool{false, true}},
		{"star", "SELECT * FROM users", []bool{false, false, true, true}},
		{"ordinary columns", "SELECT id, name FROM users", []bool{false, false}},
		{"ordinary expressions", "SELECT id + 1 AS a, upper(name) AS b FROM users", []bool{false, false}},
		{"compared only", "SELECT count(*) FROM users WHERE password = 'x'", []bool{false}},
		{"exists", "SELECT EXISTS (SELECT 1 FROM users WHERE password = 'x') AS e", []bool{false}},
		{"view over an ordinary column", "SELECT x FROM plain", []bool{false}},
		{"constant", "SELECT 1 AS one", []bool{false}},
		{"other schema, qualified", "SELECT n.api_token AS x FROM vault.notes n", []bool{true}},
		{"other schema, whole row", "SELECT n::text AS x FROM vault.notes n", []bool{true}},
	}
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		for _, tc := range cases {
			t.Run(mode.String()+"/"+tc.name, func(t *testing.T) {
				wantMasked(t, tc.sql, rawRow(t, conn, tc.sql, mode), tc.masked)
			})
		}
	}

	t.Run("events count masked values", func(t *testing.T) {
		for sql, want := range map[string]int{"SELECT * FROM users": 2, "SELECT id, name FROM users": 0} {
			if e, ok := ev.find(sql); !ok || e.Masked != want {
				t.Errorf("%s: event %+v, want %d masked", sql, e, want)
			}
		}
	})

	t.Run("cursor", func(t *testing.T) {
		c := pgxConnect(t, clientDSN(addr, srv.Database))
		for _, sql := range []string{"BEGIN", "DECLARE cur CURSOR FOR SELECT id, upper(password) AS x FROM users"} {
			if _, err := c.Exec(ctx, sql); err != nil {
				t.Fatal(err)
			}
		}
		sql := "FETCH NEXT FROM cur"
		wantMasked(t, sql, rawRow(t, c, sql, pgx.QueryExecModeSimpleProtocol), []bool{false, true})
		if _, err := c.Exec(ctx, "ROLLBACK"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("view created in the open transaction", func(t *testing.T) {
		c := pgxConnect(t, clientDSN(addr, srv.Database))
		tx, err := c.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, "CREATE VIEW fresh AS SELECT upper(password) AS y FROM users"); err != nil {
			t.Fatal(err)
		}
		sql := "SELECT y FROM fresh"
		wantMasked(t, sql, rawRow(t, c, sql, pgx.QueryExecModeSimpleProtocol), []bool{true})
	})

	t.Run("view replaced in the open transaction", func(t *testing.T) {
		// The side connection cannot read the new definition (it waits
		// for the view's lock and gives up, or would read the old one):
		// the view is masked until the transaction ends either way.
		// CREATE OR REPLACE needs approval: an approver that says yes.
		approving := serveLocal(t, &Proxy{Target: targetFor(srv), Hooks: Hooks{
			Approve: func(context.Context, string, policy.Result, func(string)) (bool, string) { return true, "" }}})
		c := pgxConnect(t, clientDSN(approving, srv.Database))
		sql := "SELECT x FROM plain"
		wantMasked(t, sql, rawRow(t, c, sql, pgx.QueryExecModeSimpleProtocol), []bool{false})
		tx, err := c.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "CREATE OR REPLACE VIEW plain AS SELECT id, password AS x FROM users"); err != nil {
			t.Fatal(err)
		}
		wantMasked(t, sql, rawRow(t, c, sql, pgx.QueryExecModeSimpleProtocol), []bool{true})
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		wantMasked(t, sql, rawRow(t, c, sql, pgx.QueryExecModeSimpleProtocol), []bool{false})
	})

	t.Run("changed search_path", func(t *testing.T) {
		// The side connection would resolve notes to public.notes; the
		// client's session sees vault.notes.
		c := pgxConnect(t, clientDSN(addr, srv.Database))
		if _, err := c.Exec(ctx, "SET search_path = vault"); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			sql    string
			masked []bool
		}{
			{"SELECT n::text AS x FROM notes n", []bool{true}},
			{"SELECT api_token AS x FROM notes", []bool{true}},
			{"SELECT id FROM notes", []bool{false}},
		} {
			wantMasked(t, tc.sql, rawRow(t, c, tc.sql, pgx.QueryExecModeSimpleProtocol), tc.masked)
		}
	})
}

func TestPasswordHashes(t *testing.T) {
	srv := pgtest.Start(t)
	ctx := context.Background()
	// pg_shadow and pg_authid are for superusers: a target that logs in
	// as one shows its own verifier.
	tgt := Target{Name: "super", Addr: srv.Addr, Database: srv.Database, User: srv.SuperUser, Password: srv.SuperPassword}
	addr := serveLocal(t, &Proxy{Target: tgt})
	conn := pgxConnect(t, clientDSN(addr, srv.Database))
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		for _, sql := range []string{
			"SELECT passwd FROM pg_shadow WHERE usename = current_user",
			"SELECT passwd AS p FROM pg_shadow WHERE usename = current_user",
			"SELECT upper(passwd) AS p FROM pg_shadow WHERE usename = current_user",
			"SELECT rolpassword FROM pg_authid WHERE rolname = current_user",
			"SELECT s::text AS p FROM pg_shadow s WHERE usename = current_user",
			"SELECT array_agg(passwd) AS p FROM pg_shadow",
			"SELECT row(rolname, rolpassword) AS p FROM pg_authid WHERE rolname = current_user",
		} {
			t.Run(mode.String()+"/"+sql, func(t *testing.T) {
				vals := rawRow(t, conn, sql, mode)
				for _, v := range vals {
					if bytes.Contains(v, []byte("SCRAM-SHA-256$")) {
						t.Errorf("the verifier is shown: %q", v)
					}
				}
			})
		}
	}
	// A verifier that reaches a result by any other path is masked by
	// value, inside a binary text[] too (pgx asks for arrays in binary).
	verifier := "SCRAM-SHA-256" + "$4096:qkhmYrzvDazH/2xvYC0YWA==$LE8KBN6ukt1/ExCr6A6vAhSL1dKdxwk3s5HxUmpA7Zw=:zZRDC7SDv2mgBYOhUsdcAexiRRgyPBR1SRVKVj1JgbU="
	var got []*string
	if err := conn.QueryRow(ctx, "SELECT ARRAY['a', '"+verifier+"', NULL, 'md5"+strings.Repeat("0f", 16)+"']").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 || got[0] == nil || *got[0] != "a" || got[1] == nil || got[2] != nil || got[3] == nil {
		t.Fatalf("array came back as %v", got)
	}
	for _, h := range []string{*got[1], *got[3]} {
		if strings.Contains(h, "SCRAM-SHA-256$") || strings.Contains(h, "0f0f0f0f") || !strings.HasPrefix(h, "[MASKED:") {
			t.Errorf("binary array element shows a hash: %q", h)
		}
	}
}
