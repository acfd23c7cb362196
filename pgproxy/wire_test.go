package pgproxy

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/bastion-dev/bastion/masking"
)

// runScript serves one scripted client against a fake upstream and returns
// what the client received and what reached the upstream.
func runScript(t *testing.T, p *Proxy, in []byte) (out []pgproto3.BackendMessage, fake *fakeUpstream) {
	t.Helper()
	fake = &fakeUpstream{}
	p.dial = fake.dial
	if p.Target.Addr == "" {
		p.Target = Target{Name: "fake", Addr: "127.0.0.1:1", Database: "app", User: "app", Password: "upstream-pw-1234"}
	}
	c := newScriptConn(in)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p.Serve(ctx, c)
	fake.wg.Wait()
	return decodeAll(t, c.output()), fake
}

func TestRefusedStatementsNeverReachUpstream(t *testing.T) {
	t.Parallel()
	in := encodeAll(t,
		startupMsg("app"),
		&pgproto3.Query{String: "DROP TABLE t"},
		&pgproto3.Query{String: "SELECT 1"},
		&pgproto3.Query{String: "select 1; drop table t"},
		&pgproto3.Query{String: "DELETE FROM t"}, // approve, no hook
		&pgproto3.Query{String: "not sql at all"},
		// A refused Parse: error, discard until Sync, ReadyForQuery.
		&pgproto3.Parse{Name: "s1", Query: "DROP TABLE t"},
		&pgproto3.Bind{PreparedStatement: "s1"},
		&pgproto3.Execute{},
		&pgproto3.Sync{},
		// The allowed prefix of a refused batch is dropped with it.
		&pgproto3.Parse{Query: "INSERT INTO t VALUES (1)"},
		&pgproto3.Bind{},
		&pgproto3.Execute{},
		&pgproto3.Parse{Query: "TRUNCATE t"},
		&pgproto3.Bind{},
		&pgproto3.Execute{},
		&pgproto3.Sync{},
		&pgproto3.Parse{Query: "select 2"},
		&pgproto3.Bind{},
		&pgproto3.Execute{},
		&pgproto3.Sync{},
		&pgproto3.FunctionCall{Function: 764},
		// A statement prepared with SQL PREPARE is not bound.
		&pgproto3.Query{String: "PREPARE p1 AS SELECT 1"},
		&pgproto3.Bind{PreparedStatement: "p1"},
		&pgproto3.Execute{},
		&pgproto3.Sync{},
		&pgproto3.Terminate{},
	)
	out, fake := runScript(t, &Proxy{}, in)
	if got, want := fake.statements(), []string{"SELECT 1", "select 2", "PREPARE p1 AS SELECT 1"}; !slices.Equal(got, want) {
		t.Errorf("upstream got statements %q, want %q", got, want)
	}
	want := "R S S K Z " + // startup
		"E(42501) Z T D C Z E(42501) Z E(42501) Z E(42601) Z " + // simple queries; not SQL: the parser's own 42601
		"E(42501) Z E(42501) Z " + // refused batches
		"1 2 D C Z " + // the allowed batch (the added Describe is not relayed)
		"E(42501) Z " + // function call
		"T D C Z E(26000) Z" // PREPARE, then Bind refused as the server refuses an unknown name
	if got := kinds(out); got != want {
		t.Errorf("client got\n%s\nwant\n%s", got, want)
	}
	var msgs []string
	for _, m := range out {
		if e, ok := m.(*pgproto3.ErrorResponse); ok {
			msgs = append(msgs, e.Message)
		}
	}
	for i, prefix := range []string{
		"bastion: denied: ", "bastion: denied: ", "bastion: approval required: ", `syntax error at or near "not"`,
		"bastion: denied: ", "bastion: denied: ", "bastion: denied: ",
	} {
		if i >= len(msgs) || !strings.HasPrefix(msgs[i], prefix) {
			t.Errorf("error %d = %q, want prefix %q", i, msgs[i], prefix)
		}
	}
	if !strings.Contains(msgs[0], "[rule sql-drop]") {
		t.Errorf("denial %q does not name the rule", msgs[0])
	}
}

func TestProtocolViolations(t *testing.T) {
	t.Parallel()
	// An allowed statement waits in the batch buffer when the violation
	// comes: it must not be written upstream.
	prefix := func() []pgproto3.FrontendMessage {
		return []pgproto3.FrontendMessage{startupMsg("app"),
			&pgproto3.Parse{Query: "SELECT 1"}, &pgproto3.Bind{}, &pgproto3.Execute{}}
	}
	oversize := []byte{'Q', 0, 0, 0, 0}
	binary.BigEndian.PutUint32(oversize[1:], maxMessageLen+100)
	for _, tc := range []struct {
		name  string
		bytes []byte
	}{
		{"unknown type", []byte{'y', 0, 0, 0, 4}},
		{"bad length", []byte{'Q', 0, 0, 0, 2}},
		{"oversize", oversize},
		{"query without terminator", []byte{'Q', 0, 0, 0, 8, 's', 'e', 'l', 'x'}},
		{"parse truncated", []byte{'P', 0, 0, 0, 6, 'a', 0}},
		{"password after startup", []byte{'p', 0, 0, 0, 8, 'p', 'w', 'd', 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := append(encodeAll(t, prefix()...), tc.bytes...)
			// A valid Sync after the garbage must not flush the batch either.
			in = append(in, encodeAll(t, &pgproto3.Sync{})...)
			out, fake := runScript(t, &Proxy{}, in)
			if got := fake.received(); len(got) != 0 {
				t.Errorf("upstream received %v", got)
			}
			last, ok := out[len(out)-1].(*pgproto3.ErrorResponse)
			if !ok || last.Code != codeProtocolViolation || last.Severity != "FATAL" {
				t.Fatalf("client got %s, want a FATAL 08P01 last", kinds(out))
			}
		})
	}
}

func TestStartup(t *testing.T) {
	t.Parallel()
	ssl := encodeAll(t, &pgproto3.SSLRequest{}, &pgproto3.GSSEncRequest{})
	t.Run("encryption declined", func(t *testing.T) {
		in := append(ssl, encodeAll(t, startupMsg(""), &pgproto3.Terminate{})...)
		c := newScriptConn(in)
		fake := &fakeUpstream{}
		p := &Proxy{Target: Target{Addr: "127.0.0.1:1", Database: "app"}, dial: fake.dial}
		if err := p.Serve(context.Background(), c); err != nil {
			t.Fatalf("Serve: %v", err)
		}
		got := c.output()
		if string(got[:2]) != "NN" {
			t.Fatalf("answers to SSLRequest, GSSEncRequest = %q, want NN", got[:2])
		}
		if k := kinds(decodeAll(t, got[2:])); k != "R S S K Z" {
			t.Errorf("startup answer %s", k)
		}
	})
	t.Run("other database", func(t *testing.T) {
		out, fake := runScript(t, &Proxy{}, encodeAll(t, startupMsg("postgres")))
		e, ok := out[0].(*pgproto3.ErrorResponse)
		if len(out) != 1 || !ok || e.Code != codeInvalidDatabase || e.Severity != "FATAL" {
			t.Fatalf("client got %s, want FATAL 3D000", kinds(out))
		}
		if !strings.Contains(e.Message, `"postgres"`) {
			t.Errorf("message %q does not name the database", e.Message)
		}
		if fake.received() != nil {
			t.Errorf("upstream contacted: %v", fake.received())
		}
	})
	t.Run("replication", func(t *testing.T) {
		sm := startupMsg("app")
		sm.Parameters["replication"] = "database"
		out, _ := runScript(t, &Proxy{}, encodeAll(t, sm))
		if kinds(out) != "E(0A000)" {
			t.Fatalf("client got %s, want FATAL 0A000", kinds(out))
		}
	})
	t.Run("protocol 3.2", func(t *testing.T) {
		sm := startupMsg("app")
		sm.ProtocolVersion = pgproto3.ProtocolVersion32
		sm.Parameters["_pq_.future"] = "x"
		out, _ := runScript(t, &Proxy{}, encodeAll(t, sm, &pgproto3.Terminate{}))
		if k := kinds(out); k != "v R S S K Z" {
			t.Fatalf("client got %s", k)
		}
		n := out[0].(*pgproto3.NegotiateProtocolVersion)
		if n.NewestMinorProtocol != 0 || !slices.Equal(n.UnrecognizedOptions, []string{"_pq_.future"}) {
			t.Errorf("negotiation %+v", n)
		}
	})
}

func TestFlushedBatchRefusal(t *testing.T) {
	t.Parallel()
	// Part of the batch went upstream (Flush) before the refused Parse: the
	// Sync is forwarded to end it, and the error comes before its answer.
	in := encodeAll(t, startupMsg("app"),
		&pgproto3.Parse{Query: "SELECT 1"}, &pgproto3.Bind{}, &pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{}, &pgproto3.Flush{},
		&pgproto3.Parse{Query: "DROP TABLE t"}, &pgproto3.Bind{}, &pgproto3.Execute{},
		&pgproto3.Sync{},
		&pgproto3.Query{String: "SELECT 2"},
		&pgproto3.Terminate{})
	out, fake := runScript(t, &Proxy{}, in)
	if got, want := fake.statements(), []string{"SELECT 1", "SELECT 2"}; !slices.Equal(got, want) {
		t.Errorf("upstream got %q, want %q", got, want)
	}
	if got, want := kinds(out), "R S S K Z 1 2 T D C E(42501) Z T D C Z"; got != want {
		t.Errorf("client got\n%s\nwant\n%s", got, want)
	}
}

func TestColumnRulesAndMasking(t *testing.T) {
	t.Parallel()
	token := fakeGitHubToken
	in := encodeAll(t, startupMsg("app"), &pgproto3.Query{String: "SELECT 1"}, &pgproto3.Terminate{})
	fake := &fakeUpstream{rowText: "key " + token + " and upstream-pw-1234"}
	p := &Proxy{Target: Target{Addr: "127.0.0.1:1", Database: "app", Password: "upstream-pw-1234"}, dial: fake.dial}
	c := newScriptConn(in)
	p.Serve(context.Background(), c)
	fake.wg.Wait()
	raw := string(c.output())
	for _, secret := range []string{token, "upstream-pw-1234"} {
		if strings.Contains(raw, secret) {
			t.Errorf("client output contains %q", secret)
		}
	}
	if !strings.Contains(raw, "[MASKED:") {
		t.Errorf("no masking marker in %q", raw)
	}

	// Column rules, against a session's row handling directly.
	s := &session{masker: masking.Default(), rules: lowerAll(DefaultColumnRules), ctx: context.Background(), log: slog.New(slog.DiscardHandler)}
	ref := stmtRef{text: `SELECT 7 AS id, 'hunter2' AS "User_Password", 9 AS api_token, 'tok' AS note, '{}'::text[] AS blob`, ok: true}
	rd := &pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{
		{Name: []byte("id"), DataTypeOID: 23, Format: 1},
		{Name: []byte("User_Password"), DataTypeOID: 25},
		{Name: []byte("api_token"), DataTypeOID: 23, Format: 1},
		{Name: []byte("note"), DataTypeOID: 25, Format: 1},
		{Name: []byte("blob"), DataTypeOID: 1009, Format: 1},
	}}
	// The second time, the session answers from the matches it remembers.
	for round := range 2 {
		s.cols = s.describeColumns(rd, ref, s.cols[:0])
		s.maskNames(rd)
		intVal := []byte{0, 0, 0, 7}
		binText := []byte("tok " + token)
		binArr := []byte("\x00\x00\x00\x01" + token)
		row := &pgproto3.DataRow{Values: [][]byte{intVal, []byte("hunter2"), {0, 0, 0, 9}, binText, binArr}}
		s.maskRow(row)
		want := []string{"\x00\x00\x00\x07", "[MASKED:User_Password]", "[MASKED:api_token]", "", "\x00\x00\x00\x01" + token}
		for i, v := range row.Values {
			if i == 3 {
				if strings.Contains(string(v), token) {
					t.Errorf("round %d: binary text value not masked: %q", round, v)
				}
				continue
			}
			if string(v) != want[i] {
				t.Errorf("round %d: value %d = %q, want %q", round, i, v, want[i])
			}
		}
	}
	nullRow := &pgproto3.DataRow{Values: [][]byte{nil, nil, nil, nil, nil}}
	s.maskRow(nullRow)
	for i, v := range nullRow.Values {
		if v != nil {
			t.Errorf("NULL %d became %q", i, v)
		}
	}
}

func TestSessionEnds(t *testing.T) {
	t.Parallel()
	t.Run("upstream dies", func(t *testing.T) {
		in := encodeAll(t, startupMsg("app"), &pgproto3.Query{String: "SELECT 1"}, &pgproto3.Query{String: "SELECT die"})
		fake := &fakeUpstream{dieOn: "SELECT die"}
		p := &Proxy{Target: Target{Addr: "127.0.0.1:1", Database: "app"}, dial: fake.dial}
		// The scripted client would EOF at once; hold it open until the
		// proxy closes.
		a, b := net.Pipe()
		go func() {
			a.Write(in)
		}()
		errc := make(chan error, 1)
		go func() { errc <- p.Serve(context.Background(), b) }()
		out := readAll(t, a)
		if k := kinds(out); k != "R S S K Z T D C Z E(08006)" {
			t.Fatalf("client got %s", k)
		}
		if e := out[len(out)-1].(*pgproto3.ErrorResponse); e.Severity != "FATAL" {
			t.Errorf("severity %s", e.Severity)
		}
		if err := <-errc; err == nil {
			t.Error("Serve returned nil after losing the upstream")
		}
	})
	t.Run("context ends", func(t *testing.T) {
		fake := &fakeUpstream{}
		p := &Proxy{Target: Target{Addr: "127.0.0.1:1", Database: "app"}, dial: fake.dial}
		a, b := net.Pipe()
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- p.Serve(ctx, b) }()
		fe := pgproto3.NewFrontend(a, a)
		fe.Send(startupMsg("app"))
		fe.Flush()
		for {
			m, err := fe.Receive()
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := m.(*pgproto3.ReadyForQuery); ok {
				break
			}
		}
		cancel()
		out := readAll(t, a)
		if k := kinds(out); k != "E(57P01)" {
			t.Fatalf("client got %s", k)
		}
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Errorf("Serve = %v, want context.Canceled", err)
		}
		fake.wg.Wait()
	})
	t.Run("context ends with a cause, on a client without deadlines", func(t *testing.T) {
		// As an SSH channel: the proxy cannot interrupt its read, and
		// must still say why before it closes it, while a statement runs.
		fake := &fakeUpstream{slowOn: "SELECT slow"}
		p := &Proxy{Target: Target{Addr: "127.0.0.1:1", Database: "app"}, dial: fake.dial}
		a, b := net.Pipe()
		ctx, cancel := context.WithCancelCause(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- p.Serve(ctx, noDeadlines{b}) }()
		fe := pgproto3.NewFrontend(a, a)
		fe.Send(startupMsg("app"))
		fe.Flush()
		for {
			m, err := fe.Receive()
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := m.(*pgproto3.ReadyForQuery); ok {
				break
			}
		}
		fe.Send(&pgproto3.Query{String: "SELECT slow"})
		fe.Flush()
		cause := errors.New("certificate revoked: run bastion login")
		cancel(cause)
		out := readAll(t, a)
		if k := kinds(out); k != "E(57P01)" {
			t.Fatalf("client got %s", k)
		}
		if msg := out[0].(*pgproto3.ErrorResponse).Message; msg != "bastion: terminating connection: certificate revoked: run bastion login" {
			t.Errorf("FATAL message %q", msg)
		}
		if err := <-errc; !errors.Is(err, cause) {
			t.Errorf("Serve = %v, want the cause", err)
		}
		fake.wg.Wait()
	})
	t.Run("recording fails", func(t *testing.T) {
		fake := &fakeUpstream{}
		// The recording fails only once the client has sent its next
		// query, which must then never run.
		release := make(chan struct{})
		p := &Proxy{Target: Target{Addr: "127.0.0.1:1", Database: "app"}, dial: fake.dial,
			Hooks: Hooks{Statement: func(ev StatementEvent) error { <-release; return errors.New("disk full") }}}
		a, b := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			p.Serve(context.Background(), b)
		}()
		// A client that sends its next query as soon as the first one
		// completes: the first ran, but it cannot be recorded, so the
		// second must never reach the server.
		fe := pgproto3.NewFrontend(a, a)
		next := make(chan struct{})
		go func() { // the only writer: net.Pipe writes block until read
			fe.Send(startupMsg("app"))
			fe.Send(&pgproto3.Query{String: "SELECT 1"})
			fe.Flush()
			if _, ok := <-next; ok {
				fe.Send(&pgproto3.Query{String: "SELECT 2"})
				fe.Flush() // returns once the proxy has read it
			}
			close(release)
		}()
		defer close(next)
		a.SetReadDeadline(time.Now().Add(10 * time.Second))
		var out []pgproto3.BackendMessage
		ready := 0
		for {
			m, err := fe.Receive()
			if err != nil {
				break
			}
			out = append(out, m)
			if _, ok := m.(*pgproto3.ReadyForQuery); ok {
				if ready++; ready == 2 {
					next <- struct{}{}
				}
			}
		}
		<-done
		fake.wg.Wait()
		k := kinds(out)
		if k != "R S S K Z T D C Z E(58000)" {
			t.Fatalf("client got %s", k)
		}
		if got := fake.statements(); len(got) != 1 || got[0] != "SELECT 1" {
			t.Fatalf("upstream got %q; want only the first statement, before its recording failed", got)
		}
	})
}

// readAll reads messages until the proxy closes the connection.
func readAll(t *testing.T, c net.Conn) []pgproto3.BackendMessage {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	fe := pgproto3.NewFrontend(c, c)
	var out []pgproto3.BackendMessage
	for {
		m, err := fe.Receive()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("proxy did not close the connection; got %s", kinds(out))
			}
			return out
		}
		out = append(out, copyMessage(t, m))
	}
}

func TestPipelineBackpressure(t *testing.T) {
	t.Parallel()
	// More refused statements than the FIFO holds (each queues two
	// entries), pipelined behind a slow allowed one: the client loop waits
	// for room, and all are answered, in order.
	msgs := []pgproto3.FrontendMessage{startupMsg("app"), &pgproto3.Query{String: "SELECT slow"}}
	n := maxPending/2 + 100
	for range n {
		msgs = append(msgs, &pgproto3.Query{String: "DROP TABLE t"})
	}
	msgs = append(msgs, &pgproto3.Query{String: "SELECT 2"}, &pgproto3.Terminate{})
	fake := &fakeUpstream{slowOn: "SELECT slow"}
	p := &Proxy{Target: Target{Addr: "127.0.0.1:1", Database: "app"}, dial: fake.dial}
	c := newScriptConn(encodeAll(t, msgs...))
	p.Serve(context.Background(), c)
	fake.wg.Wait()
	if got := fake.statements(); !slices.Equal(got, []string{"SELECT slow", "SELECT 2"}) {
		t.Fatalf("upstream got %d statements", len(got))
	}
	out := decodeAll(t, c.output())
	want := "R S S K Z T D C Z " + strings.Repeat("E(42501) Z ", n) + "T D C Z"
	if got := kinds(out); got != want {
		t.Fatalf("client got %d messages, want %d", len(out), strings.Count(want, " ")+1)
	}
}

// Hooks.Admit refuses a statement, simple or prepared, and a new Bind of
// a statement admitted at Parse, once it returns an error: none of them
// reaches the server, and each refusal names rule certificate.
func TestAdmitRefusesStatements(t *testing.T) {
	t.Parallel()
	admits := 0 // Admit runs on the session's goroutine, in message order
	var events []StatementEvent
	p := &Proxy{Hooks: Hooks{
		Admit: func() error {
			if admits++; admits > 3 { // after SELECT 1, Parse s1 and its Bind
				return errors.New("certificate revoked: run bastion login")
			}
			return nil
		},
		Statement: func(ev StatementEvent) error { events = append(events, ev); return nil },
	}}
	in := encodeAll(t,
		startupMsg("app"),
		&pgproto3.Query{String: "SELECT 1"},
		&pgproto3.Parse{Name: "s1", Query: "SELECT 2"},
		&pgproto3.Bind{PreparedStatement: "s1"},
		&pgproto3.Execute{},
		&pgproto3.Sync{},
		&pgproto3.Query{String: "SELECT 3"},
		&pgproto3.Bind{PreparedStatement: "s1"},
		&pgproto3.Execute{},
		&pgproto3.Sync{},
		&pgproto3.Parse{Name: "s2", Query: "SELECT 4"},
		&pgproto3.Sync{},
		&pgproto3.Terminate{},
	)
	out, fake := runScript(t, p, in)
	if got, want := fake.statements(), []string{"SELECT 1", "SELECT 2"}; !slices.Equal(got, want) {
		t.Errorf("upstream got statements %q, want %q", got, want)
	}
	var msgs []string
	for _, m := range out {
		if e, ok := m.(*pgproto3.ErrorResponse); ok {
			msgs = append(msgs, e.Message)
		}
	}
	if len(msgs) != 3 {
		t.Fatalf("client got errors %q, want three refusals", msgs)
	}
	for _, m := range msgs {
		if m != "bastion: denied: certificate revoked: run bastion login [rule certificate]" {
			t.Errorf("refusal %q", m)
		}
	}
	refused := 0
	for _, ev := range events {
		if ev.Refused {
			refused++
			if ev.Result.Rule != RuleCertificate {
				t.Errorf("refused event %+v: rule %q", ev, ev.Result.Rule)
			}
		}
	}
	if refused != 3 {
		t.Errorf("%d refused events in %+v, want 3", refused, events)
	}
}

// noDeadlines is a connection without deadlines, as bastion's SSH channels.
type noDeadlines struct{ net.Conn }

func (noDeadlines) SetDeadline(time.Time) error      { return errors.New("no deadlines") }
func (noDeadlines) SetReadDeadline(time.Time) error  { return errors.New("no deadlines") }
func (noDeadlines) SetWriteDeadline(time.Time) error { return errors.New("no deadlines") }
