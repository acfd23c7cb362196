package attack

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bastion-dev/bastion/bastion"
	"github.com/bastion-dev/bastion/internal/sshtest"
	"github.com/bastion-dev/bastion/shellpolicy"
)

// TestSQLTrivialWhereHeld (#22 item 8): an UPDATE or DELETE whose WHERE is
// true for every row by construction (an IN over the same table, a
// self-join on the key, a OR NOT a), or one the planner expects to reach
// more than half the table (EXPLAIN on a side connection, never ANALYZE;
// rule sql-estimate), is held for approval through the tunnel like one
// without a WHERE: psql is told it waits, no row changes,
// the request is audited, and a human's deny reaches psql as SQLSTATE
// 42501. A restricting DELETE on the same connection path runs. The table
// is a scratch table of the test's own PostgreSQL: harmless if the policy
// failed.
func TestSQLTrivialWhereHeld(t *testing.T) {
	pg, b := startDB(t, nil)
	ctx := context.Background()
	up, err := pgx.Connect(ctx, pg.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close(ctx)
	if _, err := up.Exec(ctx, "CREATE TABLE victims (id int PRIMARY KEY, v text NOT NULL); INSERT INTO victims SELECT g, 'row' || g FROM generate_series(1, 50) g; ANALYZE victims"); err != nil {
		t.Fatal(err)
	}
	count := func() int {
		t.Helper()
		var n int
		if err := up.QueryRow(ctx, "SELECT count(*) FROM victims WHERE v LIKE 'row%'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	login := b.Login("agent-wiper")
	port := tunnel(t, login, "appdb")
	waiting := regexp.MustCompile(`bastion: waiting for approval (apr_[a-z0-9]+) \(rule (sql-unrestricted-(?:delete|update)|sql-estimate)\)`)
	for _, tc := range []struct {
		name, sql, rule string
	}{
		{"delete in a subquery of the same table", "DELETE FROM victims WHERE id IN (SELECT id FROM victims)", "sql-unrestricted-delete"},
		{"delete self-join on the key", "DELETE FROM victims USING victims v2 WHERE victims.id = v2.id", "sql-unrestricted-delete"},
		{"update self-join on the key", "UPDATE victims SET v = 'gone' FROM victims v2 WHERE victims.id = v2.id", "sql-unrestricted-update"},
		{"delete where a or not a", "DELETE FROM victims WHERE id = 3 OR NOT id = 3", "sql-unrestricted-delete"},
		{"delete the planner expects to reach every row", "DELETE FROM victims WHERE id > 0", "sql-estimate"},
		{"update the planner expects to reach most rows", "UPDATE victims SET v = 'gone' WHERE v <> 'row7'", "sql-estimate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startProc(t, pg.Bin("psql"), "-X", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", fmt.Sprint(port), "-U", "agent", "-d", pg.Database, "-c", tc.sql)
			var m []string
			if !within(15*time.Second, func() bool {
				m = waiting.FindStringSubmatch(p.Stderr())
				return m != nil || p.Exited()
			}) || m == nil {
				t.Fatalf("%s was not held for approval: exited %v, stdout %q, stderr %q", tc.sql, p.Exited(), p.Stdout(), p.Stderr())
			}
			id, rule := m[1], m[2]
			if rule != tc.rule {
				t.Errorf("held under rule %s, want %s", rule, tc.rule)
			}
			if n := count(); n != 50 {
				t.Fatalf("%d of 50 rows left while the statement waits for approval", n)
			}
			waitAudit(t, b, func(e event) bool {
				return e.str("type") == "approval" && e.detail("step") == "requested" && e.detail("id") == id &&
					e.detail("rule") == tc.rule && strings.Contains(e.detail("command"), tc.sql)
			})
			if r := cli(t, b, "approvals", "deny", id, "--as", "alice", "--comment", "name the rows you mean"); r.Code != 0 {
				t.Fatalf("approvals deny: %+v", r)
			}
			if code := p.Wait(15 * time.Second); code == 0 || code == -1 {
				t.Fatalf("psql after the deny: exit %d, stderr %q", code, p.Stderr())
			}
			if e := p.Stderr(); !strings.Contains(e, "ERROR:  bastion: not approved") || !strings.Contains(e, "name the rows you mean") || !strings.Contains(e, "[rule "+tc.rule+"]") {
				t.Errorf("psql stderr %q: want the refusal, the approver's comment and the rule", e)
			}
			if n := count(); n != 50 {
				t.Errorf("%d of 50 rows left after the deny", n)
			}
			waitAudit(t, b, func(e event) bool {
				return e.str("type") == "query" && e.detail("statement") == tc.sql && e.str("decision") == "approve" &&
					strings.HasPrefix(e.detail("error"), "42501 ")
			})
		})
	}
	// Ordinary restricting DELETEs run without a human.
	for _, sql := range []string{
		"DELETE FROM victims WHERE id = 5",
		"DELETE FROM victims WHERE id IN (1, 2)",
		"DELETE FROM victims WHERE id IN (SELECT id FROM victims WHERE id > 45)",
	} {
		r := sshtest.Run(t, nil, pg.Bin("psql"), "-X", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", fmt.Sprint(port), "-U", "agent", "-d", pg.Database, "-c", sql)
		if r.Code != 0 || strings.Contains(r.Stderr, "approval") {
			t.Errorf("%s: %+v", sql, r)
		}
		waitAudit(t, b, func(e event) bool {
			return e.str("type") == "query" && e.detail("statement") == sql && e.str("decision") == "allow" && e.detail("error") == ""
		})
	}
	if n := count(); n != 42 {
		t.Errorf("%d rows left after the restricting deletes, want 42", n)
	}
}

// TestSQLMaxRowsFromPolicy (#22 item 8): the policy file's sql.max_rows
// reaches the tunnel. With max_rows 10, a DELETE the planner expects to
// reach 20 of 100 rows (under half the table) is held under rule
// sql-estimate and nothing is deleted until a human decides; one expected
// to reach 5 runs.
func TestSQLMaxRowsFromPolicy(t *testing.T) {
	pol, err := shellpolicy.Parse([]byte("version: 1\nsql:\n  max_rows: 10\n"), "policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	pg, b := startDB(t, func(env *bastion.Env) { env.Policy = pol })
	ctx := context.Background()
	up, err := pgx.Connect(ctx, pg.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close(ctx)
	if _, err := up.Exec(ctx, "CREATE TABLE ledger (id int PRIMARY KEY); INSERT INTO ledger SELECT generate_series(1, 100); ANALYZE ledger"); err != nil {
		t.Fatal(err)
	}
	login := b.Login("agent-bulk")
	port := tunnel(t, login, "appdb")
	const sql = "DELETE FROM ledger WHERE id > 80"
	p := startProc(t, pg.Bin("psql"), "-X", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", fmt.Sprint(port), "-U", "agent", "-d", pg.Database, "-c", sql)
	waiting := regexp.MustCompile(`bastion: waiting for approval (apr_[a-z0-9]+) \(rule sql-estimate\)`)
	var m []string
	if !within(15*time.Second, func() bool { m = waiting.FindStringSubmatch(p.Stderr()); return m != nil || p.Exited() }) || m == nil {
		t.Fatalf("%s was not held under sql-estimate: exited %v, stderr %q", sql, p.Exited(), p.Stderr())
	}
	if r := cli(t, b, "approvals", "deny", m[1], "--as", "alice", "--comment", "in batches of ten"); r.Code != 0 {
		t.Fatalf("approvals deny: %+v", r)
	}
	if code := p.Wait(15 * time.Second); code == 0 || code == -1 {
		t.Fatalf("psql after the deny: exit %d, stderr %q", code, p.Stderr())
	}
	var n int
	if err := up.QueryRow(ctx, "SELECT count(*) FROM ledger").Scan(&n); err != nil || n != 100 {
		t.Fatalf("%d rows (%v) after the deny, want 100", n, err)
	}
	if r := agentPsql(t, pg, port, "DELETE FROM ledger WHERE id > 95"); r.Code != 0 || strings.Contains(r.Stderr, "approval") {
		t.Errorf("a DELETE of 5 rows: %+v", r)
	}
}
