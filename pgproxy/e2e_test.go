package pgproxy

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/internal/pgtest"
)

// pgClient runs a PostgreSQL client program (psql, pgbench) against
// host:port as user on srv.Database. Password may be empty: the proxy asks
// for none.
func pgClient(t testing.TB, srv *pgtest.Server, prog, addr, user, password string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	full := append([]string{"-h", host, "-p", port, "-U", user}, args...)
	cmd := exec.CommandContext(ctx, srv.Bin(prog), full...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), "LC_ALL=C", "PGCONNECT_TIMEOUT=10", "PGSSLMODE=prefer"}
	if password != "" {
		cmd.Env = append(cmd.Env, "PGPASSWORD="+password)
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

func TestE2EPsql(t *testing.T) {
	srv := pgtest.Start(t)
	direct := pgxConnect(t, srv.DSN())
	ctx := context.Background()
	if _, err := direct.Exec(ctx, "CREATE TABLE t (n int); INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	addr := serveLocal(t, &Proxy{Target: targetFor(srv)})
	psql := func(args ...string) (string, string, error) {
		// -X: no ~/.psqlrc; -w: never prompt for a password.
		return pgClient(t, srv, "psql", addr, "anything", "", append([]string{"-X", "-w", "-d", srv.Database}, args...)...)
	}

	t.Run("select", func(t *testing.T) {
		out, errOut, err := psql("-At", "-c", "select 40 + 2")
		if err != nil || strings.TrimSpace(out) != "42" {
			t.Fatalf("psql: %v\nstdout %q\nstderr %q", err, out, errOut)
		}
	})
	for _, meta := range []string{`\d`, `\dt`, `\d t`, `\l`, `\dn`} {
		t.Run(meta, func(t *testing.T) {
			out, errOut, err := psql("-c", meta)
			if err != nil {
				t.Fatalf("psql -c %s: %v\nstderr %s", meta, err, errOut)
			}
			if meta != `\dn` && meta != `\l` && !strings.Contains(out, "t") {
				t.Errorf("psql -c %s: %q", meta, out)
			}
		})
	}
	t.Run("drop denied", func(t *testing.T) {
		_, errOut, err := psql("-c", "drop table t")
		if err == nil {
			t.Fatal("psql exited 0")
		}
		if !strings.Contains(errOut, "ERROR:  bastion: denied:") {
			t.Errorf("stderr %q", errOut)
		}
	})
	t.Run("multi-statement denied whole", func(t *testing.T) {
		_, errOut, err := psql("-c", "insert into t values (2); drop table t")
		if err == nil || !strings.Contains(errOut, "ERROR:  bastion: denied:") {
			t.Fatalf("psql: %v %q", err, errOut)
		}
		if n := count(t, direct, "SELECT count(*) FROM t"); n != 1 {
			t.Fatalf("t has %d rows: part of the refused string ran", n)
		}
	})
	t.Run("an allow is not carried to a literal variant", func(t *testing.T) {
		// Same text but for literals: the first deletes nothing (1 = 2),
		// the second every row (1 = 1) and needs an approval this proxy
		// cannot get. Then the pgbench-like shape, allowed from its cache.
		out, errOut, err := psql("-qAt", "-c", "delete from t where 1 = 2", "-c", "delete from t where 1 = 1",
			"-c", "select n from t where n = 7", "-c", "select n from t where n = 1")
		if err != nil || !strings.Contains(errOut, "ERROR:  bastion: approval required") || out != "1\n" {
			t.Fatalf("psql: %v\nstdout %q\nstderr %q", err, out, errOut)
		}
		if n := count(t, direct, "SELECT count(*) FROM t"); n != 1 {
			t.Fatalf("t has %d rows, want 1", n)
		}
	})
	t.Run("script keeps going after a denial", func(t *testing.T) {
		out, errOut, err := psql("-At", "-c", "select 1", "-c", "drop table t", "-c", "select count(*) from t")
		if err != nil || !strings.Contains(errOut, "bastion: denied") || out != "1\n1\n" {
			t.Fatalf("psql: %v\nstdout %q\nstderr %q", err, out, errOut)
		}
	})
}

var tpsRE = regexp.MustCompile(`tps = ([0-9.]+)`)

// pgbench runs pgbench and returns its TPS, failing on errors.
func pgbench(t testing.TB, srv *pgtest.Server, addr, password string, args ...string) float64 {
	t.Helper()
	out, errOut, err := pgClient(t, srv, "pgbench", addr, srv.User, password, append(args, srv.Database)...)
	if err != nil {
		t.Fatalf("pgbench %v: %v\n%s\n%s", args, err, out, errOut)
	}
	if !strings.Contains(out, "number of failed transactions: 0 ") {
		t.Fatalf("pgbench %v reported failures:\n%s\n%s", args, out, errOut)
	}
	m := tpsRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no tps in pgbench output:\n%s", out)
	}
	tps, _ := strconv.ParseFloat(m[1], 64)
	return tps
}

func TestE2EPgbench(t *testing.T) {
	srv := pgtest.Start(t)
	// pgbench -i drops and truncates tables, which the policy denies: it
	// runs directly against the server; the workloads go through the proxy.
	if out, errOut, err := pgClient(t, srv, "pgbench", srv.Addr, srv.User, srv.Password, "-i", "-q", srv.Database); err != nil {
		t.Fatalf("pgbench -i: %v\n%s\n%s", err, out, errOut)
	}
	addr := serveLocal(t, &Proxy{Target: targetFor(srv)})
	for _, tc := range []struct {
		name string
		args []string
	}{
		// -n: no initial VACUUM/TRUNCATE (TRUNCATE is denied).
		{"select-only", []string{"-n", "-S", "-T", "3"}},
		{"default mix", []string{"-n", "-T", "3"}},
		{"default mix, 4 clients, prepared", []string{"-n", "-c", "4", "-j", "2", "-M", "prepared", "-T", "2"}},
		{"select-only, extended", []string{"-n", "-S", "-M", "extended", "-T", "2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tps := pgbench(t, srv, addr, "", tc.args...)
			if tps <= 0 {
				t.Fatalf("tps = %v", tps)
			}
			t.Logf("tps %.0f", tps)
		})
	}
}

// BenchmarkPgbench compares pgbench select-only TPS (8 clients, 2 threads)
// directly against the server, through a plain TCP relay (two io.Copy: the
// cost of any extra hop, the floor for an SSH -L tunnel), and through the
// proxy; in the simple protocol (every statement classified) and with
// prepared statements (classified once per connection). Set PGBENCH_TIME
// (seconds, default 20) to change the duration of each run.
func BenchmarkPgbench(b *testing.B) {
	secs := os.Getenv("PGBENCH_TIME")
	if secs == "" {
		secs = "20"
	}
	srv := pgtest.Start(b)
	if out, errOut, err := pgClient(b, srv, "pgbench", srv.Addr, srv.User, srv.Password, "-i", "-q", srv.Database); err != nil {
		b.Fatalf("pgbench -i: %v\n%s\n%s", err, out, errOut)
	}
	relay := tcpRelay(b, srv.Addr)
	addr := serveLocal(b, &Proxy{Target: targetFor(srv)})
	for _, mode := range []string{"simple", "prepared"} {
		b.Run(mode, func(b *testing.B) {
			args := []string{"-n", "-c", "8", "-j", "2", "-T", secs, "-S", "-M", mode}
			for b.Loop() {
				direct := pgbench(b, srv, srv.Addr, srv.Password, args...)
				relayed := pgbench(b, srv, relay, srv.Password, args...)
				proxied := pgbench(b, srv, addr, "", args...)
				b.ReportMetric(direct, "tps-direct")
				b.ReportMetric(relayed, "tps-relay")
				b.ReportMetric(proxied, "tps-proxy")
				b.ReportMetric(proxied/direct, "proxy/direct")
				b.ReportMetric(proxied/relayed, "proxy/relay")
			}
		})
	}
}

// tcpRelay forwards 127.0.0.1 connections to upstream byte for byte until
// the benchmark ends.
func tcpRelay(b *testing.B, upstream string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				u, err := net.Dial("tcp", upstream)
				if err != nil {
					return
				}
				defer u.Close()
				done := make(chan struct{})
				go func() {
					defer close(done)
					io.Copy(u, c)
					u.Close()
				}()
				io.Copy(c, u)
				c.Close()
				<-done
			}()
		}
	}()
	b.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}
