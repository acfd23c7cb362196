package attack

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/internal/pgtest"
	"github.com/bastion-dev/bastion/internal/sshtest"
)

// TestSQLTextDenied (#22 item 4): SQL given as text to a function that runs
// it (ts_stat here, as in the attack run) is judged as the statement it is.
// Reading a server file through it and writing one with lo_export are
// refused with SQLSTATE 42501 and the reason naming the function inside
// the text; psql shows no file content; the refusal is audited with its
// rule. The lo_export target is a path in the test's own temp directory:
// harmless if the policy failed (and then the test sees the file).
func TestSQLTextDenied(t *testing.T) {
	pg, b := startDB(t, nil)
	login := b.Login("agent-texter")
	port := tunnel(t, login, "appdb")
	out := filepath.Join(shortTemp(t), "exported")
	for _, tc := range []struct {
		name, sql, reason string
	}{
		{"ts_stat reads a server file", "SELECT * FROM ts_stat('SELECT to_tsvector(pg_read_file(''/etc/passwd''))')",
			"pg_read_file() (in the query given to ts_stat()): reads or writes files on the database server [rule sql-server-file]"},
		{"ts_stat dollar-quoted", "SELECT * FROM ts_stat($q$SELECT to_tsvector(pg_read_file('/etc/passwd'))$q$)",
			"pg_read_file() (in the query given to ts_stat())"},
		{"ts_stat writes a server file", fmt.Sprintf("SELECT * FROM ts_stat('SELECT to_tsvector(lo_export(lo_from_bytea(0, ''x''), ''%s'')::text)')", out),
			"lo_export() (in the query given to ts_stat()): reads or writes files on the database server [rule sql-server-file]"},
		{"query_to_xml reads a server file", "SELECT query_to_xml('SELECT pg_read_file(''/etc/passwd'')', true, false, '')",
			"pg_read_file() (in the query given to query_to_xml())"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := agentPsql(t, pg, port, tc.sql)
			if r.Code == 0 {
				t.Fatalf("%s ran: %+v", tc.sql, r)
			}
			if want := "ERROR:  bastion: denied: " + tc.reason; !strings.Contains(r.Stderr, want) {
				t.Errorf("psql stderr %q, want %q", r.Stderr, want)
			}
			if strings.Contains(r.Stdout, "root") {
				t.Errorf("psql printed the file: %q", r.Stdout)
			}
			waitAudit(t, b, func(e event) bool {
				return e.str("type") == "query" && e.detail("statement") == tc.sql && e.str("decision") == "deny" &&
					e.str("rule") == "sql-server-file" && strings.HasPrefix(e.detail("error"), "42501 ")
			})
		})
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("lo_export wrote %s", out)
	}
}

// TestSQLTextHeld (#22 item 4): what needs approval outright needs it
// inside the text too: a backend signal, a logging setting, and a query
// text that is not a constant are held (psql is told it waits, the request
// is audited with the rule), and a human's deny reaches psql. The signal
// goes to PID 0, which is no backend, and the setting is the session's
// own: harmless if the policy failed. A harmless ts_stat still runs.
func TestSQLTextHeld(t *testing.T) {
	pg, b := startDB(t, nil)
	login := b.Login("agent-texter")
	port := tunnel(t, login, "appdb")
	waiting := regexp.MustCompile(`bastion: waiting for approval (apr_[a-z0-9]+) \(rule ([a-z-]+)\)`)
	for _, tc := range []struct {
		name, sql, rule string
	}{
		{"backend signal inside ts_stat", "SELECT * FROM ts_stat('SELECT to_tsvector(pg_terminate_backend(0)::text)')", "sql-admin"},
		{"logging setting inside ts_stat", "SELECT * FROM ts_stat('SELECT to_tsvector(set_config(''log_statement'', ''none'', false))')", "sql-setting"},
		{"query text not a constant", "SELECT * FROM ts_stat(current_setting('application_name'))", "sql-opaque"},
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
			id := m[1]
			if m[2] != tc.rule {
				t.Errorf("held under rule %s, want %s", m[2], tc.rule)
			}
			waitAudit(t, b, func(e event) bool {
				return e.str("type") == "approval" && e.detail("step") == "requested" && e.detail("id") == id &&
					e.detail("rule") == tc.rule && strings.Contains(e.detail("command"), tc.sql)
			})
			if r := cli(t, b, "approvals", "deny", id, "--as", "alice", "--comment", "run it yourself"); r.Code != 0 {
				t.Fatalf("approvals deny: %+v", r)
			}
			if code := p.Wait(15 * time.Second); code == 0 || code == -1 {
				t.Fatalf("psql after the deny: exit %d, stderr %q", code, p.Stderr())
			}
			if e := p.Stderr(); !strings.Contains(e, "ERROR:  bastion: not approved") || !strings.Contains(e, "run it yourself") || !strings.Contains(e, "[rule "+tc.rule+"]") {
				t.Errorf("psql stderr %q: want the refusal, the approver's comment and the rule", e)
			}
			waitAudit(t, b, func(e event) bool {
				return e.str("type") == "query" && e.detail("statement") == tc.sql && e.str("decision") == "approve" &&
					strings.HasPrefix(e.detail("error"), "42501 ")
			})
		})
	}
	sql := "SELECT string_agg(word, ' ' ORDER BY word COLLATE \"C\") FROM ts_stat('SELECT to_tsvector(''simple'', ''bastion checks the text'')')"
	r := agentPsql(t, pg, port, "-A", "-t", "-c", sql)
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != "bastion checks text the" {
		t.Errorf("a harmless ts_stat: %+v", r)
	}
	waitAudit(t, b, func(e event) bool {
		return e.str("type") == "query" && e.detail("statement") == sql && e.str("decision") == "allow" && e.detail("error") == ""
	})
}

// agentPsql runs the real psql through the tunnel with ON_ERROR_STOP, so
// that a refused statement is a failed run; a lone argument is -c SQL.
func agentPsql(t *testing.T, pg *pgtest.Server, port int, args ...string) sshtest.Result {
	t.Helper()
	if len(args) == 1 {
		args = []string{"-c", args[0]}
	}
	return sshtest.Run(t, nil, pg.Bin("psql"), append([]string{"-X", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", fmt.Sprint(port), "-U", "agent", "-d", pg.Database}, args...)...)
}
