package pgproxy

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/bastion-dev/bastion/internal/pgtest"
)

// cancels collects Hooks.Cancel events.
type cancels struct {
	mu  sync.Mutex
	evs []CancelEvent
}

func (c *cancels) hook(ev CancelEvent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.evs = append(c.evs, ev)
}

func (c *cancels) wait(t *testing.T, n int) []CancelEvent {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c.mu.Lock()
		evs := append([]CancelEvent(nil), c.evs...)
		c.mu.Unlock()
		if len(evs) >= n || time.Now().After(deadline) {
			return evs
		}
	}
}

// sendCancelTo sends a CancelRequest for key (pid, secret) on a new
// connection to addr, as libpq does, and waits for the proxy to close it.
// Like PostgreSQL, the proxy answers nothing: any byte fails the test.
func sendCancelTo(t *testing.T, addr string, pid uint32, secret []byte) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf, err := (&pgproto3.CancelRequest{ProcessID: pid, SecretKey: secret}).Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(buf); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b [1]byte
	if n, _ := c.Read(b[:]); n > 0 {
		t.Fatalf("a CancelRequest was answered with %q", b[:n])
	}
}

// One Proxy serves many connections, each with its own hooks and owner. A
// CancelRequest carrying the key bastion gave a client reaches the
// server only from a connection of the same owner, and each one is told
// to the hooks of the connection it came on.
func TestCancelAcrossConnections(t *testing.T) {
	srv := pgtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := &Proxy{Target: targetFor(srv)}
	seen := map[string]*cancels{"agent-a": {}, "agent-b": {}}
	owned := func(owner string) func() Conn {
		return func() Conn { return Conn{Owner: owner, Hooks: Hooks{Cancel: seen[owner].hook}} }
	}
	addrA := serveLocalConn(t, p, owned("agent-a"))
	addrB := serveLocalConn(t, p, owned("agent-b"))
	c, err := pgconn.Connect(ctx, clientDSN(addrA, srv.Database))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if c.PID() == 0 || len(c.SecretKey()) == 0 {
		t.Fatalf("no BackendKeyData: pid %d", c.PID())
	}

	// Another agent's connection with the right key: refused, told, and
	// the statement runs to its end.
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- c.Exec(ctx, "SELECT pg_sleep(1.5)").Close() }()
	time.Sleep(300 * time.Millisecond)
	sendCancelTo(t, addrB, c.PID(), c.SecretKey())
	if err := <-done; err != nil {
		t.Fatalf("a cancel from another owner stopped the statement: %v", err)
	}
	if d := time.Since(start); d < 1400*time.Millisecond {
		t.Fatalf("the statement ended after %v", d)
	}
	if evs := seen["agent-b"].wait(t, 1); len(evs) != 1 || evs[0].Outcome != CancelNotOwner {
		t.Fatalf("agent-b's cancel events = %+v, want one %s", evs, CancelNotOwner)
	}

	// The owner, on a new connection as libpq sends it: forwarded, and
	// the server cancels the statement.
	go func() {
		time.Sleep(300 * time.Millisecond)
		sendCancelTo(t, addrA, c.PID(), c.SecretKey())
	}()
	err = c.Exec(ctx, "SELECT pg_sleep(30)").Close()
	wantCode(t, err, "57014", "")
	if evs := seen["agent-a"].wait(t, 1); len(evs) != 1 || evs[0].Outcome != CancelForwarded || evs[0].Target != "test" {
		t.Fatalf("agent-a's cancel events = %+v, want one %s", evs, CancelForwarded)
	}
	// A key nobody holds is ignored, and told.
	sendCancelTo(t, addrA, c.PID()^1, c.SecretKey())
	if evs := seen["agent-a"].wait(t, 2); len(evs) != 2 || evs[1].Outcome != CancelUnknown {
		t.Fatalf("cancel events = %+v, want a second %s", evs, CancelUnknown)
	}
	if err := c.Exec(ctx, "SELECT 1").Close(); err != nil {
		t.Fatalf("connection unusable after cancels: %v", err)
	}
}

// A refused connection gets the server's own answer after the startup
// exchange (never a reset), and the upstream is not contacted; a
// CancelRequest on such a connection is still served.
func TestConnRefuse(t *testing.T) {
	t.Parallel()
	up := &fakeUpstream{}
	p := &Proxy{Target: Target{Name: "db1", Addr: "upstream:5432"}, dial: up.dial}
	refusal := &Refusal{Code: CodeTooManyConnections, Message: "bastion: too many database connections for agent (limit 2)", Hint: "close a connection and retry"}
	addr := serveLocalConn(t, p, func() Conn { return Conn{Owner: "agent", Refuse: refusal} })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := pgconn.Connect(ctx, clientDSN(addr, "app"))
	pgErr := wantCode(t, err, CodeTooManyConnections, refusal.Message)
	if pgErr.Severity != "FATAL" || pgErr.Hint != refusal.Hint {
		t.Fatalf("error = %+v", pgErr)
	}
	if got := up.received(); len(got) != 0 {
		t.Fatalf("the upstream got %v", got)
	}
	var key [4]byte
	binary.BigEndian.PutUint32(key[:], 1)
	sendCancelTo(t, addr, 12345, key[:]) // handled (unknown key), not refused
}

// A statement the parser rejects gets what PostgreSQL itself sends (it is
// the same parser): SQLSTATE, message and position, compared with the
// server directly; the session stays usable, in the simple and the
// extended protocol.
func TestSyntaxErrorsAsTheServerSends(t *testing.T) {
	srv := pgtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := &Proxy{Target: targetFor(srv)}
	proxied, err := pgconn.Connect(ctx, clientDSN(serveLocal(t, p), srv.Database))
	if err != nil {
		t.Fatal(err)
	}
	defer proxied.Close(ctx)
	direct, err := pgconn.Connect(ctx, srv.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close(ctx)
	for _, sql := range []string{"SELEC 1", "SELECT 1 FROM", "SELECT 'abc", "SELECT 1;\nSELECT * FORM t", "DROP TABLE"} {
		for _, extended := range []bool{false, true} {
			run := func(c *pgconn.PgConn) *pgconn.PgError {
				var err error
				if extended {
					err = c.ExecParams(ctx, sql, nil, nil, nil, nil).Read().Err
				} else {
					_, err = c.Exec(ctx, sql).ReadAll()
				}
				var pgErr *pgconn.PgError
				if !errors.As(err, &pgErr) {
					t.Fatalf("%q (extended %v): %v, want a server error", sql, extended, err)
				}
				return pgErr
			}
			want, got := run(direct), run(proxied)
			if got.Code != want.Code || got.Message != want.Message || got.Position != want.Position || got.Severity != want.Severity {
				t.Errorf("%q (extended %v): proxied %s %q at %d, direct %s %q at %d", sql, extended,
					got.Code, got.Message, got.Position, want.Code, want.Message, want.Position)
			}
			if err := proxied.Exec(ctx, "SELECT 1").Close(); err != nil {
				t.Fatalf("after %q: %v", sql, err)
			}
		}
	}
	// Executing a statement nobody prepared: the server's 26000.
	var want, got *pgconn.PgError
	errors.As(direct.ExecPrepared(ctx, "nosuch", nil, nil, nil).Read().Err, &want)
	errors.As(proxied.ExecPrepared(ctx, "nosuch", nil, nil, nil).Read().Err, &got)
	if want == nil || got == nil || got.Code != want.Code || got.Message != want.Message {
		t.Errorf("unknown prepared statement: proxied %+v, direct %+v", got, want)
	}
	if err := proxied.Exec(ctx, "SELECT 1").Close(); err != nil {
		t.Fatalf("after an unknown prepared statement: %v", err)
	}
}

// Startup parameters, given directly or in options, are settings: those
// the policy allows reach the server, one it would hold (a role change) is
// refused and recorded, and one the server does not know gets the server's
// own error, compared with a direct connection.
func TestStartupSettings(t *testing.T) {
	srv := pgtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ev := &events{}
	p := &Proxy{Target: targetFor(srv), Hooks: Hooks{Statement: ev.hook}}
	addr := serveLocal(t, p)
	connect := func(dsn string, params map[string]string) (*pgconn.PgConn, error) {
		cfg, err := pgconn.ParseConfig(dsn)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range params {
			cfg.RuntimeParams[k] = v
		}
		return pgconn.ConnectConfig(ctx, cfg)
	}
	setting := func(c *pgconn.PgConn, name string) string {
		res := c.ExecParams(ctx, "SELECT current_setting($1)", [][]byte{[]byte(name)}, nil, nil, nil).Read()
		if res.Err != nil || len(res.Rows) != 1 {
			t.Fatalf("current_setting(%s): %v", name, res.Err)
		}
		return string(res.Rows[0][0])
	}

	c, err := connect(clientDSN(addr, srv.Database), map[string]string{
		"datestyle": "ISO, DMY", "options": `-c search_path=app,public --statement-timeout=5s -c application_name=agent\ tool`})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"application_name": "agent tool", "search_path": "app,public", "statement_timeout": "5s", "DateStyle": "ISO, DMY"} {
		if got := setting(c, name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	c.Close(ctx)

	for _, params := range []map[string]string{{"options": "-c role=" + srv.User}, {"default_transaction_read_only": "off"}} {
		_, err = connect(clientDSN(addr, srv.Database), params)
		pgErr := wantCode(t, err, "42501", "bastion: startup parameter ")
		if pgErr.Severity != "FATAL" {
			t.Errorf("%v: severity %s", params, pgErr.Severity)
		}
	}
	if e, ok := ev.find("startup parameter role="); !ok || !e.Refused || e.Result.Rule != "sql-role" {
		t.Errorf("the refused role change was not recorded: %+v", e)
	}

	for _, params := range []map[string]string{{"bogus_param": "1"}, {"options": "-c work_mem=lots"}} {
		_, direct := connect(srv.DSN(), params)
		_, proxied := connect(clientDSN(addr, srv.Database), params)
		var want, got *pgconn.PgError
		if !errors.As(direct, &want) || !errors.As(proxied, &got) {
			t.Fatalf("%v: direct %v, proxied %v", params, direct, proxied)
		}
		if got.Code != want.Code || got.Message != want.Message || got.Severity != want.Severity {
			t.Errorf("%v: proxied %s %q, direct %s %q", params, got.Code, got.Message, want.Code, want.Message)
		}
	}

	_, err = connect(clientDSN(addr, srv.Database), map[string]string{"options": "-B 10"})
	wantCode(t, err, "0A000", `bastion: startup option "-B" is not supported`)
}

func TestParseOptions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want map[string]string
		code string
	}{
		{"-c a=1", map[string]string{"a": "1"}, ""},
		{"-ca=1   --b-c=x\\ y", map[string]string{"a": "1", "b_c": "x y"}, ""},
		{`-c search_path=a\,b`, map[string]string{"search_path": "a,b"}, ""},
		{"", map[string]string{}, ""},
		{"-c novalue", nil, "42601"},
		{"-B 10", nil, "0A000"},
		{"plain", nil, "0A000"},
	} {
		got, err := parseOptions(tc.in)
		var ue *userError
		switch {
		case tc.code != "":
			if !errors.As(err, &ue) || ue.code != tc.code {
				t.Errorf("parseOptions(%q) = %v, %v, want SQLSTATE %s", tc.in, got, err, tc.code)
			}
		case err != nil || len(got) != len(tc.want):
			t.Errorf("parseOptions(%q) = %v, %v, want %v", tc.in, got, err, tc.want)
		default:
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("parseOptions(%q)[%s] = %q, want %q", tc.in, k, got[k], v)
				}
			}
		}
	}
}
