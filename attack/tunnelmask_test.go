package attack

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bastion-dev/bastion/bastion"
	"github.com/bastion-dev/bastion/internal/pgtest"
	"github.com/bastion-dev/bastion/internal/sshtest"
	"github.com/bastion-dev/bastion/pgproxy"
)

// superQuery runs sql on the server directly, as its superuser: the
// test's own view of what the tunnel must not show.
func superQuery(t *testing.T, pg *pgtest.Server, sql string, args ...any) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dsn := fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", pg.SuperUser, pg.SuperPassword, pg.Addr, pg.Database)
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect as superuser: %v", err)
	}
	defer c.Close(ctx)
	rows, err := c.Query(ctx, sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	var out []string
	for rows.Next() {
		var s *string
		if err := rows.Scan(&s); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		if s != nil {
			out = append(out, *s)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

// maskedQuery runs one statement with the real psql through the tunnel:
// it must succeed, print a masking marker and none of secrets, and its
// audit event must count the values masking changed.
func maskedQuery(t *testing.T, b *sshtest.Bastion, pg *pgtest.Server, port int, sql string, secrets ...string) {
	t.Helper()
	r := agentPsql(t, pg, port, "-At", "-c", sql)
	if r.Code != 0 {
		t.Fatalf("%s: psql %+v", sql, r)
	}
	for _, s := range secrets {
		if strings.Contains(r.Stdout, s) {
			t.Errorf("%s: psql printed the secret %q: %q", sql, s, r.Stdout)
		}
	}
	if !strings.Contains(r.Stdout, "[MASKED:") {
		t.Errorf("%s: psql printed %q, want a masking marker", sql, r.Stdout)
	}
	waitAudit(t, b, func(e event) bool {
		return e.str("type") == "query" && e.detail("statement") == sql && e.str("decision") == "allow" &&
			e.detail("masked") != "" && e.detail("masked") != "0"
	})
}

// startSuperDB is startDB with a target that logs in as the server's
// superuser, as the attacked deployment's did.
func startSuperDB(t *testing.T) (*pgtest.Server, *sshtest.Bastion) {
	t.Helper()
	pg := pgtest.Start(t)
	b := start(t, sshtest.Options{Configure: func(env *bastion.Env) {
		env.Databases = map[string]bastion.DBTarget{"appdb": {Target: pgproxy.Target{Name: "appdb", Addr: pg.Addr,
			Database: pg.Database, User: pg.SuperUser, Password: pg.SuperPassword}}}
	}})
	return pg, b
}

// TestTunnelMasksPasswordHashes (#22 item 7): through an `ssh -L` tunnel
// whose target logs in as the server's superuser, the real psql asks
// pg_shadow and pg_authid for the accounts' SCRAM verifiers and md5
// hashes, by the column, an alias, an expression over it and the whole
// row: every answer is masked, and each query's audit event counts the
// masked values.
func TestTunnelMasksPasswordHashes(t *testing.T) {
	pg, b := startSuperDB(t)
	hashes := superQuery(t, pg, "SELECT passwd FROM pg_shadow WHERE passwd IS NOT NULL")
	if len(hashes) < 3 {
		t.Fatalf("pg_shadow holds %d password hashes, want the superuser's, the SCRAM user's and the md5 user's", len(hashes))
	}
	var secrets []string
	for _, h := range hashes {
		// A verifier's salt and keys, each long enough to be the secret.
		for _, part := range strings.FieldsFunc(h, func(r rune) bool { return r == '$' || r == ':' }) {
			if len(part) >= 16 {
				secrets = append(secrets, part, strings.ToUpper(part))
			}
		}
	}
	login := b.Login("agent-hashes")
	port := tunnel(t, login, "appdb")
	for _, sql := range []string{
		"SELECT passwd FROM pg_shadow",
		"SELECT usename, passwd AS p FROM pg_shadow",
		"SELECT rolname, rolpassword FROM pg_authid",
		"SELECT upper(passwd) FROM pg_shadow",
		"SELECT s FROM pg_shadow s",
		"SELECT x.h FROM (SELECT passwd AS h FROM pg_shadow) x",
		"WITH c AS (SELECT rolpassword AS h FROM pg_authid) SELECT h || '' FROM c",
		fmt.Sprintf("SELECT passwd FROM pg_shadow WHERE usename = '%s'", pg.MD5User),
	} {
		t.Run(sql, func(t *testing.T) { maskedQuery(t, b, pg, port, sql, secrets...) })
	}
}

// TestTunnelMasksByOrigin (#22 item 7): a users table's password column is
// masked however the real psql names it through the tunnel: an alias,
// an expression, a subquery, a CTE, a view and the whole row.
func TestTunnelMasksByOrigin(t *testing.T) {
	pg, b := startDB(t, nil)
	const secret = "hunter2-correct-horse-battery"
	for _, sql := range []string{
		"CREATE TABLE users (id int, name text, password text)",
		"INSERT INTO users VALUES (1, 'alice', '" + secret + "')",
		"CREATE VIEW accounts AS SELECT id, password AS credential FROM users",
		"GRANT ALL ON users, accounts TO " + pg.User,
	} {
		superQuery(t, pg, sql)
	}
	login := b.Login("agent-origin")
	port := tunnel(t, login, "appdb")
	for _, sql := range []string{
		"SELECT password AS p FROM users",
		"SELECT upper(password) AS shout FROM users",
		"SELECT name || ':' || password AS line FROM users",
		"SELECT u FROM users u",
		"SELECT q.x FROM (SELECT password AS x FROM users) q",
		"WITH c AS (SELECT password AS x FROM users) SELECT x FROM c",
		"SELECT credential FROM accounts",
	} {
		t.Run(sql, func(t *testing.T) { maskedQuery(t, b, pg, port, sql, secret, strings.ToUpper(secret)) })
	}
	// The table's other columns pass. (A column the client sees named
	// like a masked one is masked too, whatever its origin: the rules
	// match both names.)
	r := agentPsql(t, pg, port, "-At", "-c", "SELECT id, name AS who FROM users")
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != "1|alice" {
		t.Errorf("the unmasked columns: psql %+v, want 1|alice", r)
	}
}
