package pgproxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/bastion-dev/bastion/internal/pgtest"
)

func TestTLSUpstream(t *testing.T) {
	srv := pgtest.Start(t, pgtest.TLS())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	target := targetFor(srv)
	target.TLS = srv.TLSConfig()
	addr := serveLocal(t, &Proxy{Target: target})
	c := pgxConnect(t, clientDSN(addr, srv.Database))

	var ssl bool
	if err := c.QueryRow(ctx, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl); err != nil || !ssl {
		t.Fatalf("upstream session TLS = %v %v", ssl, err)
	}

	// The cancel request goes upstream over TLS too.
	go func() {
		time.Sleep(300 * time.Millisecond)
		c.PgConn().CancelRequest(ctx)
	}()
	_, err := c.Exec(ctx, "SELECT pg_sleep(30)")
	wantCode(t, err, "57014", "")

	t.Run("untrusted certificate", func(t *testing.T) {
		bad := targetFor(srv)
		bad.TLS = &tls.Config{RootCAs: x509.NewCertPool(), ServerName: "127.0.0.1"}
		a := serveLocal(t, &Proxy{Target: bad})
		_, err := pgx.Connect(ctx, "postgres://agent@"+a+"/"+srv.Database+"?sslmode=disable")
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "08006" || pgErr.Severity != "FATAL" ||
			!strings.HasPrefix(pgErr.Message, "bastion: cannot connect to database target") {
			t.Fatalf("connect through a proxy that cannot verify upstream: %v", err)
		}
		if strings.Contains(pgErr.Message, "x509") {
			t.Errorf("internal error text reached the client: %q", pgErr.Message)
		}
	})
}
