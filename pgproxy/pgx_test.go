package pgproxy

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/bastion-dev/bastion/internal/pgtest"
	"github.com/bastion-dev/bastion/policy"
)

func pgxConnect(t *testing.T, dsn string, tweak ...func(*pgx.ConnConfig)) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range tweak {
		f(cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect %s: %v", cfg.Host, err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func wantCode(t *testing.T, err error, code, msgPrefix string) *pgconn.PgError {
	t.Helper()
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		t.Fatalf("error = %v, want SQLSTATE %s", err, code)
	}
	if pgErr.Code != code || !strings.HasPrefix(pgErr.Message, msgPrefix) {
		t.Fatalf("error = %s %q, want %s %q...", pgErr.Code, pgErr.Message, code, msgPrefix)
	}
	return pgErr
}

func count(t *testing.T, c *pgx.Conn, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := c.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func TestPgx(t *testing.T) {
	srv := pgtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	direct := pgxConnect(t, srv.DSN())
	if _, err := direct.Exec(ctx, `
		CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL, password text, note text);
		CREATE TABLE scratch (n int);
		CREATE TABLE copytest (id int, name text);
		GRANT SELECT ON items TO `+srv.MD5User); err != nil {
		t.Fatal(err)
	}
	ev := &events{}
	p := &Proxy{Target: targetFor(srv), Hooks: Hooks{Statement: ev.hook}}
	addr := serveLocal(t, p)
	dsn := clientDSN(addr, srv.Database)
	conn := pgxConnect(t, dsn)

	t.Run("select with parameters", func(t *testing.T) {
		if n := count(t, conn, "SELECT $1::int + 1", 41); n != 42 {
			t.Fatalf("got %d", n)
		}
	})

	t.Run("insert with parameters", func(t *testing.T) {
		tag, err := conn.Exec(ctx, "INSERT INTO items (name, note) VALUES ($1, $2), ($3, $4)", "a", "first", "b", "second")
		if err != nil || tag.RowsAffected() != 2 {
			t.Fatalf("insert: %v %v", tag, err)
		}
		if n := count(t, direct, "SELECT count(*) FROM items WHERE name IN ('a', 'b')"); n != 2 {
			t.Fatalf("upstream has %d rows", n)
		}
	})

	t.Run("drop denied", func(t *testing.T) {
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol} {
			_, err := conn.Exec(ctx, "DROP TABLE items", mode)
			e := wantCode(t, err, "42501", "bastion: denied: ")
			if !strings.Contains(e.Message, "[rule sql-drop]") || e.Severity != "ERROR" {
				t.Errorf("mode %v: %s %q", mode, e.Severity, e.Message)
			}
			if n := count(t, direct, "SELECT count(*) FROM pg_tables WHERE tablename = 'items'"); n != 1 {
				t.Fatal("table items is gone")
			}
			if n := count(t, conn, "SELECT 7"); n != 7 {
				t.Fatalf("session unusable after denial (mode %v)", mode)
			}
		}
	})

	t.Run("denial inside a transaction", func(t *testing.T) {
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO scratch VALUES (1), (2)"); err != nil {
			t.Fatal(err)
		}
		_, err = tx.Exec(ctx, "DROP TABLE scratch")
		wantCode(t, err, "42501", "bastion: denied: ")
		if conn.PgConn().TxStatus() != 'T' {
			t.Errorf("transaction status after denial = %c, want T", conn.PgConn().TxStatus())
		}
		var n int
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM scratch").Scan(&n); err != nil || n != 2 {
			t.Fatalf("transaction unusable after denial: %d %v", n, err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if n := count(t, direct, "SELECT count(*) FROM scratch"); n != 2 {
			t.Fatalf("upstream has %d rows after commit", n)
		}
	})

	t.Run("delete without where needs approval", func(t *testing.T) {
		_, err := conn.Exec(ctx, "DELETE FROM scratch")
		wantCode(t, err, "42501", "bastion: approval required: ")
		if n := count(t, direct, "SELECT count(*) FROM scratch"); n != 2 {
			t.Fatalf("rows deleted without approval: %d left", n)
		}
	})

	t.Run("approved delete", func(t *testing.T) {
		var asked []string
		var mu sync.Mutex
		ap := &Proxy{Target: targetFor(srv), Hooks: Hooks{
			Statement: ev.hook,
			Approve: func(ctx context.Context, stmt string, res policy.Result, notice func(string)) (bool, string) {
				mu.Lock()
				asked = append(asked, stmt)
				mu.Unlock()
				notice("bastion: waiting for approval ap-1 (rule " + res.Rule + ")")
				return true, ""
			},
		}}
		var notices []string
		c := pgxConnect(t, clientDSN(serveLocal(t, ap), srv.Database), func(cfg *pgx.ConnConfig) {
			cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
				mu.Lock()
				notices = append(notices, n.Message)
				mu.Unlock()
			}
		})
		tag, err := c.Exec(ctx, "DELETE FROM scratch")
		if err != nil || tag.RowsAffected() != 2 {
			t.Fatalf("approved delete: %v %v", tag, err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(asked) != 1 || asked[0] != "DELETE FROM scratch" {
			t.Errorf("approver asked %q", asked)
		}
		if len(notices) != 1 || notices[0] != "bastion: waiting for approval ap-1 (rule sql-unrestricted-delete)" {
			t.Errorf("client notices %q", notices)
		}
		if n := count(t, direct, "SELECT count(*) FROM scratch"); n != 0 {
			t.Fatalf("%d rows left", n)
		}
		if e, ok := ev.find("DELETE FROM scratch"); !ok || !e.Approved || e.Rows != 2 {
			t.Errorf("event %+v", e)
		}
	})

	t.Run("approval refused", func(t *testing.T) {
		ap := &Proxy{Target: targetFor(srv), Hooks: Hooks{
			Approve: func(ctx context.Context, stmt string, res policy.Result, notice func(string)) (bool, string) {
				return false, "not during business hours"
			},
		}}
		c := pgxConnect(t, clientDSN(serveLocal(t, ap), srv.Database))
		_, err := c.Exec(ctx, "DELETE FROM items")
		e := wantCode(t, err, "42501", "bastion: not approved: not during business hours")
		if !strings.Contains(e.Message, "[rule sql-unrestricted-delete]") {
			t.Errorf("message %q", e.Message)
		}
		if n := count(t, direct, "SELECT count(*) FROM items"); n == 0 {
			t.Fatal("refused delete ran")
		}
	})

	t.Run("cancel during approval", func(t *testing.T) {
		waiting := make(chan struct{})
		ap := &Proxy{Target: targetFor(srv), Hooks: Hooks{
			Approve: func(ctx context.Context, stmt string, res policy.Result, notice func(string)) (bool, string) {
				close(waiting)
				<-ctx.Done()
				return false, "cancelled"
			},
		}}
		c := pgxConnect(t, clientDSN(serveLocal(t, ap), srv.Database))
		go func() {
			<-waiting
			c.PgConn().CancelRequest(ctx)
		}()
		_, err := c.Exec(ctx, "DELETE FROM items")
		wantCode(t, err, "57014", "bastion: canceling statement")
		if n := count(t, c, "SELECT 3"); n != 3 {
			t.Fatal("session unusable after cancelled approval")
		}
	})

	t.Run("masking", func(t *testing.T) {
		if _, err := direct.Exec(ctx, "INSERT INTO items (name, password, note) VALUES ('m1', 'hunter2hunter2', $1), ('m2', NULL, 'plain')",
			"deploy key "+fakeGitHubToken); err != nil {
			t.Fatal(err)
		}
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeSimpleProtocol} {
			rows, err := conn.Query(ctx, "SELECT name, password, note FROM items WHERE name IN ('m1', 'm2') ORDER BY name", mode)
			if err != nil {
				t.Fatal(err)
			}
			type row struct {
				name     string
				password *string
				note     string
			}
			var got []row
			for rows.Next() {
				var r row
				if err := rows.Scan(&r.name, &r.password, &r.note); err != nil {
					t.Fatal(err)
				}
				got = append(got, r)
			}
			if rows.Err() != nil || len(got) != 2 {
				t.Fatalf("rows %v %v", got, rows.Err())
			}
			if got[0].password == nil || *got[0].password != "[MASKED:password]" {
				t.Errorf("password column = %v", got[0].password)
			}
			if got[1].password != nil {
				t.Errorf("NULL password became %q", *got[1].password)
			}
			if strings.Contains(got[0].note, fakeGitHubToken) || !strings.HasPrefix(got[0].note, "deploy key [MASKED:") {
				t.Errorf("note = %q", got[0].note)
			}
		}
		// An alias is matched by the name the client sees.
		var s string
		if err := conn.QueryRow(ctx, "SELECT 'x' AS api_token").Scan(&s); err != nil || s != "[MASKED:api_token]" {
			t.Errorf("aliased token column = %q %v", s, err)
		}
	})

	t.Run("copy", func(t *testing.T) {
		pc := conn.PgConn()
		tag, err := pc.CopyFrom(ctx, strings.NewReader("1\tfoo\n2\tbar\n3\t"+fakeGitHubToken+"\n"), "COPY copytest (id, name) FROM STDIN")
		if err != nil || tag.RowsAffected() != 3 {
			t.Fatalf("copy from: %v %v", tag, err)
		}
		if n := count(t, direct, "SELECT count(*) FROM copytest"); n != 3 {
			t.Fatalf("upstream has %d rows", n)
		}
		var buf bytes.Buffer
		tag, err = pc.CopyTo(ctx, &buf, "COPY copytest TO STDOUT")
		if err != nil || tag.RowsAffected() != 3 {
			t.Fatalf("copy to: %v %v", tag, err)
		}
		if !strings.HasPrefix(buf.String(), "1\tfoo\n2\tbar\n3\t[MASKED:") || strings.Contains(buf.String(), fakeGitHubToken) {
			t.Errorf("copy out = %q", buf.String())
		}
		// A failed COPY leaves the session usable.
		_, err = pc.CopyFrom(ctx, strings.NewReader("not-a-number\tx\n"), "COPY copytest FROM STDIN (FORMAT text)")
		wantCode(t, err, "22P02", "")
		_, err = pc.CopyFrom(ctx, strings.NewReader(""), "COPY copytest FROM PROGRAM 'id'")
		wantCode(t, err, "42501", "bastion: denied: ")
		if n := count(t, conn, "SELECT count(*) FROM copytest"); n != 3 {
			t.Fatalf("count after failed copies = %d", n)
		}
	})

	t.Run("cancel", func(t *testing.T) {
		c := pgxConnect(t, dsn)
		go func() {
			time.Sleep(300 * time.Millisecond)
			if err := c.PgConn().CancelRequest(ctx); err != nil {
				t.Errorf("cancel request: %v", err)
			}
		}()
		start := time.Now()
		_, err := c.Exec(ctx, "SELECT pg_sleep(30)")
		wantCode(t, err, "57014", "")
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("cancel took %v", d)
		}
		if n := count(t, c, "SELECT 5"); n != 5 {
			t.Fatal("session unusable after cancel")
		}
	})

	t.Run("credential injection", func(t *testing.T) {
		for _, tc := range []struct{ name, user, password string }{
			{"scram", srv.User, srv.Password},
			{"md5", srv.MD5User, srv.MD5Password},
		} {
			t.Run(tc.name, func(t *testing.T) {
				tp := &Proxy{Target: Target{Name: tc.name, Addr: srv.Addr, Database: srv.Database, User: tc.user, Password: tc.password}}
				a := serveLocal(t, tp)
				for _, client := range []string{
					"postgres://agent@" + a + "/" + srv.Database + "?sslmode=disable",
					"postgres://" + tc.user + ":wrong@" + a + "/?sslmode=disable",
				} {
					c := pgxConnect(t, client)
					var user string
					if err := c.QueryRow(ctx, "SELECT current_user").Scan(&user); err != nil || user != tc.user {
						t.Errorf("current_user = %q %v, want %q", user, err, tc.user)
					}
				}
			})
		}
	})

	t.Run("upstream password never reaches the client", func(t *testing.T) {
		var rec recorder
		c := pgxConnect(t, dsn, func(cfg *pgx.ConnConfig) {
			d := &net.Dialer{}
			cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
				nc, err := d.DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return &recordingConn{Conn: nc, rec: &rec}, nil
			}
		})
		var s string
		if err := c.QueryRow(ctx, "SELECT '"+srv.Password+"'", pgx.QueryExecModeSimpleProtocol).Scan(&s); err != nil {
			t.Fatal(err)
		}
		if s != "[MASKED:injected-secret]" {
			t.Errorf("password came back as %q", s)
		}
		if err := c.QueryRow(ctx, "SELECT $1::text || 'x'", srv.Password).Scan(&s); err != nil || strings.Contains(s, srv.Password) {
			t.Errorf("extended: %q %v", s, err)
		}
		_, err := c.Exec(ctx, "SELECT nosuchcolumn_"+srv.Password)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42703" {
			t.Fatalf("error = %v", err)
		}
		if rec.contains(srv.Password) {
			t.Fatal("the upstream password reached the client")
		}
	})

	t.Run("batch fails whole", func(t *testing.T) {
		before := count(t, direct, "SELECT count(*) FROM scratch")
		b := &pgx.Batch{}
		b.Queue("INSERT INTO scratch VALUES (100)")
		b.Queue("TRUNCATE scratch")
		b.Queue("INSERT INTO scratch VALUES (101)")
		err := conn.SendBatch(ctx, b).Close()
		wantCode(t, err, "42501", "bastion: denied: ")
		if n := count(t, direct, "SELECT count(*) FROM scratch"); n != before {
			t.Fatalf("rows %d -> %d: part of the refused batch ran", before, n)
		}
		if n := count(t, conn, "SELECT 11"); n != 11 {
			t.Fatal("session unusable after refused batch")
		}
	})

	t.Run("other database refused", func(t *testing.T) {
		_, err := pgx.Connect(ctx, clientDSN(addr, "postgres"))
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "3D000" {
			t.Fatalf("connect to another database: %v", err)
		}
	})

	t.Run("statement events", func(t *testing.T) {
		e, ok := ev.find("DROP TABLE items")
		if !ok || !e.Refused || e.SQLState != "42501" || e.Result.Decision != policy.Deny || e.Result.Rule != "sql-drop" {
			t.Errorf("drop event %+v", e)
		}
		e, ok = ev.find("INSERT INTO items (name, note)")
		if !ok || e.Refused || e.Rows != 2 || e.Tag != "INSERT 0 2" || e.Duration <= 0 {
			t.Errorf("insert event %+v", e)
		}
		e, ok = ev.find("pg_sleep")
		if !ok || e.SQLState != "57014" || e.Refused || e.Duration < 200*time.Millisecond {
			t.Errorf("cancelled statement event %+v", e)
		}
		e, ok = ev.find("COPY copytest (id, name) FROM STDIN")
		if !ok || e.Rows != 3 || e.Tag != "COPY 3" || e.SQLState != "" {
			t.Errorf("copy event %+v", e)
		}
		e, ok = ev.find("COPY copytest FROM STDIN (FORMAT text)")
		if !ok || e.SQLState != "22P02" || e.Refused {
			t.Errorf("failed copy event %+v", e)
		}
	})

	t.Run("a refusal is recorded after what finished before it", func(t *testing.T) {
		// A batch's statements finish together (the server answers at
		// Sync) and the relay records them one by one after relaying
		// the answer; a slow recording leaves the client free to send a
		// refused statement meanwhile. Its event must still come last.
		var mu sync.Mutex
		var order []string
		slow := &Proxy{Target: targetFor(srv), Hooks: Hooks{Statement: func(ev StatementEvent) error {
			if !ev.Refused {
				time.Sleep(5 * time.Millisecond) // longer than Go's mutex handoff threshold (1 ms)
			}
			mu.Lock()
			order = append(order, ev.Text)
			mu.Unlock()
			return nil
		}}}
		c := pgxConnect(t, clientDSN(serveLocal(t, slow), srv.Database))
		b := &pgx.Batch{}
		for i := range 4 {
			b.Queue("SELECT $1::int", i)
		}
		if err := c.SendBatch(ctx, b).Close(); err != nil {
			t.Fatal(err)
		}
		_, err := c.Exec(ctx, "DROP TABLE items", pgx.QueryExecModeSimpleProtocol)
		wantCode(t, err, "42501", "bastion: denied: ")
		c.Close(ctx)
		mu.Lock()
		defer mu.Unlock()
		if len(order) < 5 || order[len(order)-1] != "DROP TABLE items" {
			t.Fatalf("events in the order %q; want the refused DROP last", order)
		}
	})
}

// recorder keeps every byte a client received.
type recorder struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (r *recorder) contains(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Contains(r.buf.Bytes(), []byte(s))
}

type recordingConn struct {
	net.Conn
	rec *recorder
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.rec.mu.Lock()
	c.rec.buf.Write(p[:n])
	c.rec.mu.Unlock()
	return n, err
}
