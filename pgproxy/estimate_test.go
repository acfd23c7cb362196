package pgproxy

import (
	"bytes"
	"context"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/bastion-dev/bastion/internal/pgtest"
	"github.com/bastion-dev/bastion/policy"
)

// asker is an Approve hook that records what it was asked and refuses.
type asker struct {
	mu    sync.Mutex
	asked []policy.Result
	stmts []string
	yes   bool
}

func (a *asker) approve(_ context.Context, stmt string, res policy.Result, notice func(string)) (bool, string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.asked = append(a.asked, res)
	a.stmts = append(a.stmts, stmt)
	notice("bastion: waiting for approval (rule " + res.Rule + ")")
	return a.yes, "refused by the test"
}

func (a *asker) last() (policy.Result, string, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.asked) == 0 {
		return policy.Result{}, "", 0
	}
	return a.asked[len(a.asked)-1], a.stmts[len(a.stmts)-1], len(a.asked)
}

// syncBuf is a log destination tests read.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestPlannerEstimate(t *testing.T) {
	srv := pgtest.Start(t)
	ctx := context.Background()
	direct := pgxConnect(t, srv.DSN())
	if _, err := direct.Exec(ctx, `
		CREATE TABLE big (id int PRIMARY KEY, n int);
		INSERT INTO big SELECT g, g FROM generate_series(1, 5000) g;
		CREATE TABLE small (id int PRIMARY KEY, n int);
		INSERT INTO small SELECT g, g FROM generate_series(1, 10) g;
		ANALYZE big; ANALYZE small;`); err != nil {
		t.Fatal(err)
	}
	var logs syncBuf
	ask := &asker{}
	p := &Proxy{Target: targetFor(srv), Hooks: Hooks{Approve: ask.approve},
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	addr := serveLocal(t, p)
	conn := pgxConnect(t, clientDSN(addr, srv.Database))
	limitReason := regexp.MustCompile(`^planner estimates \d+ rows \(limit 1000\): an operator must approve$`)
	halfReason := regexp.MustCompile(`^planner estimates \d+ rows, more than half of the 10 rows of small: an operator must approve$`)

	cases := []struct {
		name   string
		sql    string
		args   []any
		reason *regexp.Regexp // nil: runs without approval
	}{
		{"delete of every row by a condition", "DELETE FROM big WHERE id > 0", nil, limitReason},
		{"update of every row", "UPDATE big SET n = n WHERE n >= 0", nil, limitReason},
		{"parameter values are used", "DELETE FROM big WHERE id > $1", []any{0}, limitReason},
		{"a data-modifying CTE", "WITH d AS (DELETE FROM big WHERE id > 0 RETURNING id) SELECT count(*) FROM d", nil, limitReason},
		{"EXPLAIN ANALYZE runs its statement", "EXPLAIN ANALYZE DELETE FROM big WHERE id > 0", nil, limitReason},
		{"more than half of a small table", "DELETE FROM small WHERE id > 2", nil, halfReason},
		{"a few rows", "UPDATE big SET n = n WHERE id < 10", nil, nil},
		{"a few rows by parameter", "UPDATE big SET n = n WHERE id > $1", []any{4990}, nil},
		{"one row by key", "UPDATE big SET n = n WHERE id = 5", nil, nil},
		{"the one row of a tiny table by key", "UPDATE small SET n = n WHERE id = 1", nil, nil},
	}
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		for _, tc := range cases {
			if tc.args != nil && mode == pgx.QueryExecModeSimpleProtocol {
				continue
			}
			t.Run(mode.String()+"/"+tc.name, func(t *testing.T) {
				_, _, before := ask.last()
				_, err := conn.Exec(ctx, tc.sql, append([]any{mode}, tc.args...)...)
				res, stmt, after := ask.last()
				if tc.reason == nil {
					if err != nil || after != before {
						t.Fatalf("err %v, approvals asked %d -> %d (%+v)", err, before, after, res)
					}
					return
				}
				e := wantCode(t, err, "42501", "bastion: not approved: refused by the test")
				if !strings.Contains(e.Message, "[rule sql-estimate]") {
					t.Errorf("message %q", e.Message)
				}
				if after != before+1 || res.Rule != "sql-estimate" || res.Decision != policy.Approve || !tc.reason.MatchString(res.Reason) || stmt != tc.sql {
					t.Errorf("asked %d -> %d: %+v for %q", before, after, res, stmt)
				}
			})
		}
	}
	if n := count(t, direct, "SELECT count(*) FROM big"); n != 5000 {
		t.Fatalf("big has %d rows: a held statement ran", n)
	}

	t.Run("no approver", func(t *testing.T) {
		c := pgxConnect(t, clientDSN(serveLocal(t, &Proxy{Target: targetFor(srv)}), srv.Database))
		_, err := c.Exec(ctx, "DELETE FROM big WHERE id > 0")
		wantCode(t, err, "42501", "bastion: approval required: planner estimates ")
	})

	t.Run("MaxRows", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			max  int
			held bool
		}{
			{"default", 0, true},
			{"raised", 5000, false}, // 2000 rows: under the limit and under half
			{"off", -1, false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c := pgxConnect(t, clientDSN(serveLocal(t, &Proxy{Target: targetFor(srv), MaxRows: tc.max}), srv.Database))
				_, err := c.Exec(ctx, "UPDATE big SET n = n WHERE id <= 2000")
				if tc.held {
					wantCode(t, err, "42501", "bastion: approval required: planner estimates ")
				} else if err != nil {
					t.Fatal(err)
				}
			})
		}
	})

	t.Run("approved", func(t *testing.T) {
		ev := &events{}
		yes := &asker{yes: true}
		c := pgxConnect(t, clientDSN(serveLocal(t, &Proxy{Target: targetFor(srv), Hooks: Hooks{Approve: yes.approve, Statement: ev.hook}}), srv.Database))
		tag, err := c.Exec(ctx, "UPDATE big SET n = n + 1 WHERE id > 0")
		if err != nil || tag.RowsAffected() != 5000 {
			t.Fatalf("%v %v", tag, err)
		}
		e, ok := ev.find("UPDATE big SET n = n + 1")
		if !ok || !e.Approved || e.Result.Rule != "sql-estimate" || e.Rows != 5000 {
			t.Errorf("event %+v", e)
		}
	})

	t.Run("changed search_path", func(t *testing.T) {
		c := pgxConnect(t, clientDSN(addr, srv.Database))
		if _, err := c.Exec(ctx, "SET search_path = public"); err != nil {
			t.Fatal(err)
		}
		_, err := c.Exec(ctx, "UPDATE big SET n = n WHERE id < 10")
		wantCode(t, err, "42501", "bastion: not approved: ")
		if res, _, _ := ask.last(); !strings.HasPrefix(res.Reason, "the session changed search_path") {
			t.Errorf("reason %q", res.Reason)
		}
		if _, err := c.Exec(ctx, "UPDATE public.big SET n = n WHERE id < 10"); err != nil {
			t.Errorf("a qualified table: %v", err)
		}
	})

	t.Run("table created in the open transaction", func(t *testing.T) {
		// The side connection cannot see it: the static verdict stands,
		// and the log says so.
		c := pgxConnect(t, clientDSN(addr, srv.Database))
		tx, err := c.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, "CREATE TABLE fresh AS SELECT g AS id FROM generate_series(1, 3000) g"); err != nil {
			t.Fatal(err)
		}
		tag, err := tx.Exec(ctx, "DELETE FROM fresh WHERE id > 0")
		if err != nil || tag.RowsAffected() != 3000 {
			t.Fatalf("%v %v", tag, err)
		}
		if !strings.Contains(logs.String(), "no planner estimate; the static verdict stands") {
			t.Errorf("log:\n%s", logs.String())
		}
	})
}
