package bastion_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/bastion"
	"github.com/bastion-dev/bastion/internal/client"
	"github.com/bastion-dev/bastion/internal/pgtest"
	"github.com/bastion-dev/bastion/internal/sshtest"
	"github.com/bastion-dev/bastion/pgproxy"
	"github.com/bastion-dev/bastion/store"
	"github.com/jackc/pgx/v5"
)

// tunnel runs the real `ssh -N -L` to target through bastion and returns
// the local port once it accepts connections.
func tunnel(t *testing.T, login *client.Result, target string) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command("ssh", "-F", login.SSHConfig, "-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes", "-N",
		"-L", fmt.Sprintf("127.0.0.1:%d:%s:5432", port, target), "bastion")
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; i < 200; i++ {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return port
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("tunnel never listened; ssh stderr %q", stderr.String())
	return 0
}

func TestE2EPostgresThroughSSHTunnel(t *testing.T) {
	pg := pgtest.Start(t)
	b := sshtest.Start(t, sshtest.Options{Configure: func(env *bastion.Env) {
		env.Databases = map[string]bastion.DBTarget{"appdb": {Target: pgproxy.Target{Name: "appdb", Addr: pg.Addr, Database: pg.Database, User: pg.User, Password: pg.Password}}}
		env.Approvals.Poll = 20 * time.Millisecond
	}})
	ctx := context.Background()
	up, err := pgx.Connect(ctx, pg.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close(ctx)
	ghToken := "ghp_" + strings.Repeat("Zx9Qw8Er7T", 3) + "y6U5i4"
	if _, err := up.Exec(ctx, `CREATE TABLE accounts (id int primary key, name text, password text, note text);
		INSERT INTO accounts VALUES (1, 'alice', 'hunter2-secret', '`+ghToken+`'), (2, 'bob', 'pw-bob-123', 'plain')`); err != nil {
		t.Fatal(err)
	}

	login := b.Login("agent-db")
	port := tunnel(t, login, "appdb")
	psql := func(args ...string) sshtest.Result {
		// The agent's client knows no password: bastion injects it upstream.
		return sshtest.Run(t, nil, pg.Bin("psql"), append([]string{"-X", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", fmt.Sprint(port), "-U", "agent", "-d", pg.Database}, args...)...)
	}
	if r := psql("-At", "-c", "select count(*) from accounts"); r.Code != 0 || strings.TrimSpace(r.Stdout) != "2" {
		t.Fatalf("select through tunnel: %+v", r)
	}
	if r := psql("-c", `\d accounts`); r.Code != 0 || !strings.Contains(r.Stdout, "password") {
		t.Fatalf(`\d: %+v`, r)
	}
	// Secrets and secret columns are masked.
	r := psql("-At", "-c", "select name, password, note from accounts order by id")
	if r.Code != 0 || strings.Contains(r.Stdout, "hunter2") || strings.Contains(r.Stdout, ghToken) || !strings.Contains(r.Stdout, "[MASKED:") {
		t.Fatalf("masking: %+v", r)
	}
	// The upstream password never reaches the agent.
	if r := psql("-At", "-c", "select '"+pg.Password+"'"); strings.Contains(r.Stdout, pg.Password) {
		t.Fatalf("upstream password leaked: %q", r.Stdout)
	}
	// DROP TABLE is denied with 42501 and the table survives.
	r = psql("-c", "drop table accounts")
	if r.Code == 0 || !strings.Contains(r.Stderr, "bastion: denied") {
		t.Fatalf("drop: %+v", r)
	}
	var n int
	if err := up.QueryRow(ctx, "select count(*) from accounts").Scan(&n); err != nil || n != 2 {
		t.Fatalf("table after denied drop: %d rows, %v", n, err)
	}
	// Each tunnelled connection is a session in the store, ended with
	// its exit code once psql has gone (bastion sees the channel close a
	// moment after psql exits): five psql runs and tunnel()'s probe.
	for try := 0; ; try++ {
		rows, err := b.Env.Store.Sessions(ctx, store.SessionFilter{Subject: "agent-db"})
		if err != nil {
			t.Fatal(err)
		}
		ended := 0
		for _, row := range rows {
			if row.Target != "appdb" || row.Recording == "" {
				t.Fatalf("store session %+v: want target appdb and its recording", row)
			}
			if row.Exit != nil && !row.Ended.IsZero() {
				ended++
			}
		}
		if ended == 6 && len(rows) == 6 {
			break
		}
		if try == 100 {
			t.Fatalf("store has %d ended tunnel sessions of %d; want 6", ended, len(rows))
		}
		time.Sleep(50 * time.Millisecond)
	}

	// DELETE without WHERE waits for a human, then runs once approved.
	held := exec.Command(pg.Bin("psql"), "-X", "-h", "127.0.0.1", "-p", fmt.Sprint(port), "-U", "agent", "-d", pg.Database, "-c", "delete from accounts")
	var out, errb syncBuffer
	held.Stdout, held.Stderr = &out, &errb
	if err := held.Start(); err != nil {
		t.Fatal(err)
	}
	defer held.Process.Kill()
	re := regexp.MustCompile(`waiting for approval (apr_[a-z0-9]+)`)
	var id string
	for i := 0; i < 400 && id == ""; i++ {
		if m := re.FindStringSubmatch(errb.String()); m != nil {
			id = m[1]
		}
		time.Sleep(25 * time.Millisecond)
	}
	if id == "" {
		t.Fatalf("no approval notice; psql stderr %q", errb.String())
	}
	if err := up.QueryRow(ctx, "select count(*) from accounts").Scan(&n); err != nil || n != 2 {
		t.Fatalf("rows deleted before approval: %d %v", n, err)
	}
	if r := bastionCLI(t, b, "approvals", "approve", id, "--as", "alice"); r.Code != 0 {
		t.Fatalf("approve: %+v", r)
	}
	if err := held.Wait(); err != nil {
		t.Fatalf("approved delete: %v; stderr %q", err, errb.String())
	}
	if err := up.QueryRow(ctx, "select count(*) from accounts").Scan(&n); err != nil || n != 0 {
		t.Fatalf("rows after approved delete: %d %v", n, err)
	}

	// A Go client on the extended protocol through the same tunnel.
	c, err := pgx.Connect(ctx, fmt.Sprintf("postgres://agent@127.0.0.1:%d/%s?sslmode=disable", port, pg.Database))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "insert into accounts values ($1, $2, $3, $4)", 3, "carol", "x", "y"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "truncate accounts"); err == nil || !strings.Contains(err.Error(), "42501") {
		t.Fatalf("truncate over extended protocol: %v", err)
	}

	// Every statement is in the session recording and the audit log.
	if !auditHas(t, b, func(e map[string]any) bool { return e["type"] == "query" && e["decision"] == "deny" }) {
		t.Error("no audit event for the denied statement")
	}
	entries, _ := os.ReadDir(b.Dir.Recordings())
	found := false
	for _, e := range entries {
		data, _ := os.ReadFile(b.Dir.Recordings() + "/" + e.Name())
		if strings.Contains(string(data), "drop table accounts") && strings.Contains(string(data), `\"type\":\"query\"`) {
			found = true
		}
	}
	if !found {
		t.Error("no recording holds the tunnel's statements")
	}
	// Anything that is not a configured target stays refused.
	if r := sshtest.SSH(t, login, nil, "-o", "ExitOnForwardFailure=yes", "-W", "otherdb:5432", "bastion"); r.Code != 255 {
		t.Fatalf("-W otherdb: %+v", r)
	}
}

// TestE2EPsqlInsideSession: psql run by an agent inside a bastion session
// reaches the target through the same proxy (per-session unix socket),
// with no password, and DROP is refused there too.
func TestE2EPsqlInsideSession(t *testing.T) {
	pg := pgtest.Start(t)
	b := sshtest.Start(t, sshtest.Options{Configure: func(env *bastion.Env) {
		env.Databases = map[string]bastion.DBTarget{"appdb": {Target: pgproxy.Target{Name: "appdb", Addr: pg.Addr, Database: pg.Database, User: pg.User, Password: pg.Password}}}
	}})
	ctx := context.Background()
	up, err := pgx.Connect(ctx, pg.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close(ctx)
	if _, err := up.Exec(ctx, "CREATE TABLE t (x int); INSERT INTO t VALUES (41)"); err != nil {
		t.Fatal(err)
	}
	login := b.Login("agent-insession")
	const psql = "psql" // Debian's wrapper on PATH
	r := sshtest.SSH(t, login, nil, "bastion", psql+" -X -At -c 'select x + 1 from t'")
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != "42" {
		t.Fatalf("psql in session: %+v", r)
	}
	r = sshtest.SSH(t, login, nil, "bastion", psql+" -X 'service=appdb' -At -c 'select count(*) from t'")
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != "1" {
		t.Fatalf("psql service=appdb: %+v", r)
	}
	// The shell policy refuses a DROP it can see (psql -c); the proxy
	// refuses one it cannot: SQL arriving on psql's stdin.
	r = sshtest.SSH(t, login, strings.NewReader("select 1;\ndrop table t;\n"), "bastion", psql+" -X")
	if !strings.Contains(r.Stderr, "bastion: denied") || !strings.Contains(r.Stderr, "42501") && !strings.Contains(r.Stderr, "DROP TABLE") {
		t.Fatalf("drop on stdin: %+v", r)
	}
	var n int
	if err := up.QueryRow(ctx, "select count(*) from t").Scan(&n); err != nil || n != 1 {
		t.Fatalf("table after refused drop: %d %v", n, err)
	}
}
