package pgtest_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/bastion-dev/bastion/internal/pgtest"
)

func TestStart(t *testing.T) {
	s := pgtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	if !strings.HasPrefix(s.Addr, "127.0.0.1:") {
		t.Fatalf("Addr = %q, want loopback", s.Addr)
	}
	for _, tc := range []struct {
		name, user, password string
	}{
		{"scram", s.User, s.Password},
		{"md5", s.MD5User, s.MD5Password},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := pgconn.Connect(ctx, s.DSNFor(tc.user, tc.password))
			if err != nil {
				t.Fatalf("connect as %s: %v", tc.user, err)
			}
			defer c.Close(ctx)
			res, err := c.Exec(ctx, "SELECT current_user, current_database(), "+
				"(SELECT left(rolpassword, 5) FROM pg_authid WHERE rolname = current_user)").ReadAll()
			// pg_authid is superuser-only: expect a permission error, which
			// proves the session is an ordinary user.
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
				t.Fatalf("pg_authid as %s: %v %v, want 42501", tc.user, res, err)
			}
			res, err = c.Exec(ctx, "SELECT current_user, current_database()").ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			row := res[0].Rows[0]
			if string(row[0]) != tc.user || string(row[1]) != s.Database {
				t.Errorf("got user %q db %q, want %q %q", row[0], row[1], tc.user, s.Database)
			}
			if _, err := pgconn.Connect(ctx, s.DSNFor(tc.user, "wrong-password")); err == nil {
				t.Errorf("%s connected with a wrong password", tc.user)
			}
		})
	}

	// The stored hashes are the kinds the tests rely on.
	su, err := pgconn.Connect(ctx, s.DSNFor(s.SuperUser, s.SuperPassword))
	if err != nil {
		t.Fatal(err)
	}
	defer su.Close(ctx)
	res, err := su.Exec(ctx, "SELECT rolname, left(rolpassword, 13) FROM pg_authid WHERE rolname IN ('"+
		s.User+"', '"+s.MD5User+"') ORDER BY rolname").ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range res[0].Rows {
		got[string(r[0])] = string(r[1])
	}
	if !strings.HasPrefix(got[s.User], "SCRAM-SHA-256") {
		t.Errorf("%s hash = %q, want SCRAM-SHA-256", s.User, got[s.User])
	}
	if !strings.HasPrefix(got[s.MD5User], "md5") {
		t.Errorf("%s hash = %q, want md5", s.MD5User, got[s.MD5User])
	}
}

func TestStartTLS(t *testing.T) {
	s := pgtest.Start(t, pgtest.TLS())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, err := pgconn.ParseConfig(s.DSN())
	if err != nil {
		t.Fatal(err)
	}
	cfg.TLSConfig = s.TLSConfig()
	c, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect with TLS: %v", err)
	}
	defer c.Close(ctx)
	res, err := c.Exec(ctx, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := string(res[0].Rows[0][0]); got != "t" {
		t.Fatalf("pg_stat_ssl.ssl = %q, want t", got)
	}
	if pgtest.Start(t).TLSConfig() != nil {
		t.Error("TLSConfig without the TLS option is not nil")
	}
}
