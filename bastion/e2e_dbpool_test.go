package bastion_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/bastion"
	"github.com/bastion-dev/bastion/identity"
	"github.com/bastion-dev/bastion/internal/pgtest"
	"github.com/bastion-dev/bastion/internal/sshtest"
	"github.com/bastion-dev/bastion/pgproxy"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Issue #23 items 1, 2 and 5, with the real OpenSSH -L tunnel and pgx: a
// pool opens more connections than max_sessions_per_identity; the one over
// max_db_connections_per_identity gets FATAL 53300 after the startup
// exchange; a CancelRequest (sent on a new connection, as every driver
// does) stops a running query; a held statement names its database target
// and tells the client how to approve it.
func TestE2EDatabasePoolsCancelAndHolds(t *testing.T) {
	pg := pgtest.Start(t)
	b := sshtest.Start(t, sshtest.Options{Configure: func(env *bastion.Env) {
		env.Databases = map[string]bastion.DBTarget{"appdb": {Target: pgproxy.Target{Name: "appdb", Addr: pg.Addr, Database: pg.Database, User: pg.User, Password: pg.Password}}}
		env.Config.Limits.MaxSessionsPerIdentity = 2
		env.Config.Limits.MaxDBConnectionsPerIdentity = 6
		env.Approvals.Poll = 20 * time.Millisecond
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	login := b.Login("agent-pool")
	port := tunnel(t, login, "appdb")
	dsn := fmt.Sprintf("postgres://agent:unused@127.0.0.1:%d/%s?sslmode=disable", port, pg.Database)

	t.Run("a pool is not interactive sessions", func(t *testing.T) {
		cfg, err := pgxpool.ParseConfig(dsn)
		if err != nil {
			t.Fatal(err)
		}
		cfg.MaxConns = 6
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		// Six connections at once: three times max_sessions_per_identity.
		var conns []*pgxpool.Conn
		for i := 0; i < 6; i++ {
			c, err := pool.Acquire(ctx)
			if err != nil {
				t.Fatalf("connection %d: %v", i+1, err)
			}
			conns = append(conns, c)
		}
		var wg sync.WaitGroup
		for i, c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var n int
				if err := c.QueryRow(ctx, "SELECT $1::int", i).Scan(&n); err != nil || n != i {
					t.Errorf("connection %d: %d, %v", i+1, n, err)
				}
			}()
		}
		wg.Wait()
		// The seventh gets the server's own answer, not a reset.
		_, err = pgconn.Connect(ctx, dsn)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "53300" || pgErr.Severity != "FATAL" ||
			!strings.Contains(pgErr.Message, "limit 6") {
			t.Fatalf("seventh connection: %v, want FATAL 53300 naming the limit", err)
		}
		for _, c := range conns {
			c.Release()
		}
	})

	t.Run("a cancel request stops a running query", func(t *testing.T) {
		cfg, err := pgconn.ParseConfig(dsn)
		if err != nil {
			t.Fatal(err)
		}
		c := connectOnceFreed(t, ctx, cfg)
		defer c.Close(ctx)
		go func() {
			time.Sleep(500 * time.Millisecond)
			if err := c.CancelRequest(ctx); err != nil {
				t.Errorf("cancel request: %v", err)
			}
		}()
		start := time.Now()
		err = c.Exec(ctx, "SELECT pg_sleep(30)").Close()
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "57014" {
			t.Fatalf("pg_sleep(30) after a cancel: %v, want 57014", err)
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Fatalf("the cancel took %v", d)
		}
		if err := c.Exec(ctx, "SELECT 1").Close(); err != nil {
			t.Fatalf("connection unusable after the cancel: %v", err)
		}
		waitForAudit(t, b, `"type":"query.cancel"`, `"outcome":"forwarded"`)
	})

	t.Run("a held statement names its target and how to approve it", func(t *testing.T) {
		cfg, err := pgconn.ParseConfig(dsn)
		if err != nil {
			t.Fatal(err)
		}
		notices := make(chan string, 4)
		cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { notices <- n.Message }
		c := connectOnceFreed(t, ctx, cfg)
		defer c.Close(ctx)
		if err := c.Exec(ctx, "CREATE TABLE IF NOT EXISTS held_t (n int)").Close(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- c.Exec(ctx, "DELETE FROM held_t").Close() }()
		var notice string
		select {
		case notice = <-notices:
		case <-time.After(20 * time.Second):
			t.Fatal("no notice while the statement waited")
		}
		if !strings.Contains(notice, "waiting for approval apr_") || !strings.Contains(notice, "bastion approvals approve apr_") {
			t.Fatalf("notice %q does not say it waits, or how to approve it", notice)
		}
		pending, err := b.Env.Approvals.List(ctx, false)
		if err != nil || len(pending) != 1 {
			t.Fatalf("pending approvals %v, %v", pending, err)
		}
		if r := pending[0]; r.Target != "appdb" || r.Cwd != "" || r.Command != "DELETE FROM held_t" {
			t.Fatalf("request target %q cwd %q command %q, want appdb, no cwd, the statement", r.Target, r.Cwd, r.Command)
		}
		ops := identity.Provenance{Kind: identity.KindHuman, Subject: "ops-oncall", Issuer: "test"}
		if _, err := b.Env.Approvals.Approve(ctx, pending[0].ID, ops, "ok", 0); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("approved statement: %v", err)
		}
	})
}

// connectOnceFreed connects, waiting while the pool's closed connections
// still count against the limit (their tunnels end after the client
// closes them).
func connectOnceFreed(t *testing.T, ctx context.Context, cfg *pgconn.Config) *pgconn.PgConn {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		c, err := pgconn.ConnectConfig(ctx, cfg)
		var pgErr *pgconn.PgError
		if err == nil {
			return c
		}
		if !errors.As(err, &pgErr) || pgErr.Code != "53300" || time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
}

// waitForAudit waits until a line of b's audit log contains every one of
// subs.
func waitForAudit(t *testing.T, b *sshtest.Bastion, subs ...string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		raw, _ := os.ReadFile(b.Dir.AuditLog())
		for _, line := range strings.Split(string(raw), "\n") {
			all := true
			for _, s := range subs {
				all = all && strings.Contains(line, s)
			}
			if all {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no audit event with %q", subs)
		}
	}
}
