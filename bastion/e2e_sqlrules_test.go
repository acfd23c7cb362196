package bastion_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bastion-dev/bastion/bastion"
	"github.com/bastion-dev/bastion/internal/pgtest"
	"github.com/bastion-dev/bastion/internal/sshtest"
	"github.com/bastion-dev/bastion/pgproxy"
	"github.com/bastion-dev/bastion/shellpolicy"
	"github.com/jackc/pgx/v5"
)

// sqlTargetsPolicy has rules for every target (no deletes from audit_log)
// and rules for appdb only: scratch tables may be truncated there, and the
// secrets table may not be read.
const sqlTargetsPolicy = `version: 1
sql:
  rules:
    - id: audit-append-only
      kinds: [DELETE]
      tables: [audit_log]
      decision: deny
      message: the audit log is append-only
  targets:
    appdb:
      rules:
        - id: sql-truncate
          tables: [tmp_*]
          decision: allow
        - id: no-secrets
          tables: [secrets]
          decision: deny
          message: secrets stay behind bastion
`

// TestE2ESQLRulesPerTarget: two targets on the same PostgreSQL database,
// one with rules of its own in the policy file. The same statements are
// decided differently through the real `ssh -L` tunnels and through the
// sockets inside a session.
func TestE2ESQLRulesPerTarget(t *testing.T) {
	pg := pgtest.Start(t)
	pol, err := shellpolicy.Parse([]byte(sqlTargetsPolicy), "policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	target := func(name string) bastion.DBTarget {
		return bastion.DBTarget{Target: pgproxy.Target{Name: name, Addr: pg.Addr, Database: pg.Database, User: pg.User, Password: pg.Password}}
	}
	b := sshtest.Start(t, sshtest.Options{Configure: func(env *bastion.Env) {
		env.Policy = pol
		env.Databases = map[string]bastion.DBTarget{"appdb": target("appdb"), "reports": target("reports")}
	}})
	ctx := context.Background()
	up, err := pgx.Connect(ctx, pg.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close(ctx)
	if _, err := up.Exec(ctx, `CREATE TABLE secrets (k text); INSERT INTO secrets VALUES ('launch-code');
		CREATE TABLE tmp_import (x int); CREATE TABLE audit_log (id int)`); err != nil {
		t.Fatal(err)
	}
	fill := func() {
		t.Helper()
		if _, err := up.Exec(ctx, "DELETE FROM tmp_import; INSERT INTO tmp_import VALUES (1), (2); DELETE FROM audit_log; INSERT INTO audit_log VALUES (1)"); err != nil {
			t.Fatal(err)
		}
	}
	count := func(table string) int {
		t.Helper()
		var n int
		if err := up.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	login := b.Login("agent-sqlrules")
	ports := map[string]int{"appdb": tunnel(t, login, "appdb"), "reports": tunnel(t, login, "reports")}
	psql := func(name, sql string) sshtest.Result {
		return sshtest.Run(t, nil, pg.Bin("psql"), "-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
			"-p", fmt.Sprint(ports[name]), "-U", "agent", "-d", pg.Database, "-c", sql)
	}
	denied := func(r sshtest.Result, reason string) bool {
		return r.Code != 0 && strings.Contains(r.Stderr, "bastion: denied") && strings.Contains(r.Stderr, reason)
	}

	// appdb's own rule denies the read; reports has no such rule.
	if r := psql("appdb", "SELECT k FROM secrets"); !denied(r, "secrets stay behind bastion") || strings.Contains(r.Stdout, "launch-code") {
		t.Errorf("appdb: SELECT from secrets: %+v", r)
	}
	if r := psql("reports", "SELECT k FROM secrets"); r.Code != 0 || strings.TrimSpace(r.Stdout) != "launch-code" {
		t.Errorf("reports: SELECT from secrets: %+v", r)
	}
	// appdb's loosening of sql-truncate lets scratch tables be emptied
	// there; reports keeps the built-in deny.
	fill()
	if r := psql("reports", "TRUNCATE tmp_import"); !denied(r, "TRUNCATE removes every row") || count("tmp_import") != 2 {
		t.Errorf("reports: TRUNCATE tmp_import: %+v; %d rows left", r, count("tmp_import"))
	}
	if r := psql("appdb", "TRUNCATE tmp_import"); r.Code != 0 || count("tmp_import") != 0 {
		t.Errorf("appdb: TRUNCATE tmp_import: %+v; %d rows left", r, count("tmp_import"))
	}
	// ... for scratch tables only.
	if r := psql("appdb", "TRUNCATE audit_log"); !denied(r, "TRUNCATE") || count("audit_log") != 1 {
		t.Errorf("appdb: TRUNCATE audit_log: %+v", r)
	}
	// The rules for every target apply to both.
	for _, name := range []string{"appdb", "reports"} {
		if r := psql(name, "DELETE FROM audit_log WHERE id = 1"); !denied(r, "the audit log is append-only") || count("audit_log") != 1 {
			t.Errorf("%s: DELETE FROM audit_log: %+v", name, r)
		}
	}
	if !auditHas(t, b, func(e map[string]any) bool {
		d, _ := e["detail"].(map[string]any)
		return e["type"] == "query" && e["decision"] == "deny" && e["rule"] == "no-secrets" && d["target"] == "appdb"
	}) {
		t.Error("no audit event for the statement appdb's rule denied")
	}

	// Inside a session, psql reaches each target through its socket and
	// the same rules. The shell policy sees psql -c with the rules for
	// every target (it allows the read); appdb's proxy denies it.
	r := sshtest.SSH(t, login, nil, "bastion", "psql -X 'service=appdb' -At -c 'SELECT k FROM secrets'")
	if r.Code == 0 || !strings.Contains(r.Stderr, "secrets stay behind bastion") || strings.Contains(r.Stdout, "launch-code") {
		t.Errorf("in session, appdb: %+v", r)
	}
	r = sshtest.SSH(t, login, strings.NewReader("SELECT k FROM secrets;\n"), "bastion", "psql -X 'service=reports' -At")
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != "launch-code" {
		t.Errorf("in session, reports: %+v", r)
	}
	fill()
	r = sshtest.SSH(t, login, strings.NewReader("TRUNCATE tmp_import;\n"), "bastion", "psql -X -v ON_ERROR_STOP=1 'service=appdb'")
	if r.Code != 0 || count("tmp_import") != 0 {
		t.Errorf("in session, appdb: TRUNCATE tmp_import on stdin: %+v; %d rows left", r, count("tmp_import"))
	}
}

// TestSQLRulesForAnUnknownTarget: a policy whose sql.targets names a
// database target that is not configured stops bastion from serving, with
// the name's position in the file.
func TestSQLRulesForAnUnknownTarget(t *testing.T) {
	dir := bastion.DataDir(filepath.Join(t.TempDir(), "data"))
	if err := bastion.Init(dir, false); err != nil {
		t.Fatal(err)
	}
	env, err := bastion.Open(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	pol, err := shellpolicy.Parse([]byte(sqlTargetsPolicy), "policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	env.Policy = pol
	env.Databases = map[string]bastion.DBTarget{"app-db": {Target: pgproxy.Target{Name: "app-db", Addr: "127.0.0.1:1", User: "u"}}}
	const want = `policy.yaml:10:5: sql target "appdb" is not a configured database target (configured: app-db)`

	if _, err := env.SSHServer(slog.Default()); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Env.SSHServer: %v, want an error with %q", err, want)
	}
	sshLn, httpLn, err := env.Listen("127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sshLn.Close()
	defer httpLn.Close()
	if err := bastion.Serve(context.Background(), env, sshLn, httpLn, bastion.ServeOptions{}); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("bastion.Serve: %v, want an error with %q", err, want)
	}
	// A Server built by hand checks too.
	srv := &bastion.Server{HostSigner: env.CAs.HostKey, Checker: env.Checker(), Audit: env.Audit, RecordingsDir: dir.Recordings(),
		Policy: pol, Databases: env.Databases}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := srv.Serve(ln); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Server.Serve: %v, want an error with %q", err, want)
	}
	// With the target configured, the server is built.
	env.Databases["appdb"] = env.Databases["app-db"]
	if _, err := env.SSHServer(slog.Default()); err != nil {
		t.Errorf("Env.SSHServer with every target configured: %v", err)
	}
}

// sqlRolesPolicy scopes an SQL rule by role: agents may not read the
// secrets table, operators may.
const sqlRolesPolicy = `version: 1
sql:
  rules:
    - id: no-secrets-for-agents
      tables: [secrets]
      decision: deny
      message: agents do not read secrets
      roles: [agent]
`

// TestE2ESQLRulesByRole: the same statement through the real `ssh -L`
// tunnel is denied for one role and allowed for another: the tunnel
// decides with the agent's own scoped rules.
func TestE2ESQLRulesByRole(t *testing.T) {
	pg := pgtest.Start(t)
	pol, err := shellpolicy.Parse([]byte(sqlRolesPolicy), "policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b := sshtest.Start(t, sshtest.Options{Configure: func(env *bastion.Env) {
		env.Policy = pol
		env.Databases = map[string]bastion.DBTarget{"appdb": {Target: pgproxy.Target{Name: "appdb", Addr: pg.Addr, Database: pg.Database, User: pg.User, Password: pg.Password}}}
	}})
	ctx := context.Background()
	up, err := pgx.Connect(ctx, pg.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close(ctx)
	if _, err := up.Exec(ctx, `CREATE TABLE secrets (k text); INSERT INTO secrets VALUES ('launch-code')`); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		subject string
		denied  bool
	}{{"agent-reader", true}, {"ops-reader", false}} {
		port := tunnel(t, b.Login(tc.subject), "appdb")
		c, err := pgx.Connect(ctx, fmt.Sprintf("postgres://x:unused@127.0.0.1:%d/%s?sslmode=disable", port, pg.Database))
		if err != nil {
			t.Fatal(err)
		}
		var k string
		err = c.QueryRow(ctx, "SELECT k FROM secrets").Scan(&k)
		c.Close(ctx)
		switch {
		case tc.denied && (err == nil || !strings.Contains(err.Error(), "agents do not read secrets") || !strings.Contains(err.Error(), "42501")):
			t.Errorf("%s: %q, %v, want the role's denial", tc.subject, k, err)
		case !tc.denied && (err != nil || k != "launch-code"):
			t.Errorf("%s: %q, %v, want the row", tc.subject, k, err)
		}
	}
}
