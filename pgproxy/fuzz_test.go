package pgproxy

import (
	"context"
	"net"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/bastion-dev/bastion/policy"
	"github.com/bastion-dev/bastion/shellpolicy/sqlpolicy"
)

// fuzzSeeds are client conversations after the startup message.
func fuzzSeeds() [][]pgproto3.FrontendMessage {
	return [][]pgproto3.FrontendMessage{
		{&pgproto3.Query{String: "SELECT 1"}, &pgproto3.Terminate{}},
		{&pgproto3.Query{String: "DROP TABLE t"}, &pgproto3.Query{String: "select 1; delete from t"}},
		{&pgproto3.Parse{Name: "a", Query: "SELECT $1::int"}, &pgproto3.Describe{ObjectType: 'S', Name: "a"}, &pgproto3.Sync{},
			&pgproto3.Bind{PreparedStatement: "a", Parameters: [][]byte{[]byte("1")}}, &pgproto3.Describe{ObjectType: 'P'},
			&pgproto3.Execute{}, &pgproto3.Sync{}},
		{&pgproto3.Parse{Query: "INSERT INTO t VALUES (1)"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Flush{},
			&pgproto3.Parse{Query: "TRUNCATE t"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{}},
		{&pgproto3.Query{String: "COPY t FROM STDIN"}, &pgproto3.CopyData{Data: []byte("1\n")}, &pgproto3.CopyDone{},
			&pgproto3.Query{String: "COPY t FROM PROGRAM 'sh'"}, &pgproto3.CopyFail{Message: "x"}},
		{&pgproto3.Parse{Query: "COPY t FROM STDIN"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{},
			&pgproto3.CopyData{Data: []byte("1\n")}, &pgproto3.CopyDone{}, &pgproto3.Sync{}},
		{&pgproto3.FunctionCall{Function: 1}, &pgproto3.Close{ObjectType: 'S', Name: "a"}, &pgproto3.Sync{}},
		{&pgproto3.Query{String: "BEGIN; SELECT pg_read_file('/etc/passwd'); COMMIT"}},
	}
}

// FuzzServe feeds arbitrary client bytes after a valid startup message to a
// proxy with an in-memory upstream. It must not panic, must answer with
// well-formed protocol messages, and nothing may reach the upstream but
// statements the policy allows.
func FuzzServe(f *testing.F) {
	for _, seed := range fuzzSeeds() {
		f.Add(encodeAll(f, seed...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in := append(encodeAll(t, startupMsg("app")), data...)
		// A Statement hook turns on recording and the upstream barrier;
		// Serve must return (runScript bounds it) with every event made.
		var events atomic.Int64
		p := &Proxy{Hooks: Hooks{Statement: func(StatementEvent) error { events.Add(1); return nil }}}
		out, fake := runScript(t, p, in)
		if len(out) < 5 {
			t.Fatalf("no greeting: %s", kinds(out))
		}
		if n := events.Load(); n > int64(len(data)) {
			t.Fatalf("%d statement events from %d bytes of input", n, len(data))
		}
		for _, sql := range fake.statements() {
			if res := sqlpolicy.Default().Classify(sql); res.Decision != policy.Allow {
				t.Fatalf("upstream received %q, classified %v (%s)", sql, res.Decision, res.Rule)
			}
		}
	})
}

// BenchmarkClassifyAndRelay measures one simple Query round trip through
// the proxy (classification, forwarding, masking the row, ReadyForQuery)
// against an in-memory upstream; BenchmarkDirect is the same round trip
// without the proxy.
func BenchmarkClassifyAndRelay(b *testing.B) {
	fake := &fakeUpstream{noRecord: true}
	p := &Proxy{Target: Target{Name: "bench", Addr: "127.0.0.1:1", Database: "app", User: "app", Password: "pw-123456"}, dial: fake.dial}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client, server := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Serve(ctx, server)
	}()
	benchQueries(b, client, true)
	client.Close()
	<-done
}

func BenchmarkDirect(b *testing.B) {
	fake := &fakeUpstream{noRecord: true}
	c, _ := fake.dial(context.Background(), "", "")
	benchQueries(b, c, true)
	c.Close()
	fake.wg.Wait()
}

func benchQueries(b *testing.B, c net.Conn, startup bool) {
	fe := pgproto3.NewFrontend(c, c)
	untilReady := func() {
		for {
			m, err := fe.Receive()
			if err != nil {
				b.Fatal(err)
			}
			if _, ok := m.(*pgproto3.ReadyForQuery); ok {
				return
			}
		}
	}
	if startup {
		fe.Send(startupMsg("app"))
		if err := fe.Flush(); err != nil {
			b.Fatal(err)
		}
		untilReady()
	}
	q := &pgproto3.Query{String: "SELECT abalance FROM pgbench_accounts WHERE aid = 48213"}
	b.ReportAllocs()
	for b.Loop() {
		fe.Send(q)
		if err := fe.Flush(); err != nil {
			b.Fatal(err)
		}
		untilReady()
	}
}

// BenchmarkRelayPrepared measures an extended-protocol round trip of a
// prepared statement (Bind, Describe, Execute, Sync: no classification)
// through the proxy against an in-memory upstream.
func BenchmarkRelayPrepared(b *testing.B) {
	fake := &fakeUpstream{noRecord: true}
	p := &Proxy{Target: Target{Name: "bench", Addr: "127.0.0.1:1", Database: "app", User: "app", Password: "pw-123456"}, dial: fake.dial}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client, server := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Serve(ctx, server)
	}()
	fe := pgproto3.NewFrontend(client, client)
	untilReady := func() {
		for {
			m, err := fe.Receive()
			if err != nil {
				b.Fatal(err)
			}
			if _, ok := m.(*pgproto3.ReadyForQuery); ok {
				return
			}
		}
	}
	fe.Send(startupMsg("app"))
	fe.Send(&pgproto3.Parse{Name: "s", Query: "SELECT abalance FROM pgbench_accounts WHERE aid = $1"})
	fe.Send(&pgproto3.Sync{})
	if err := fe.Flush(); err != nil {
		b.Fatal(err)
	}
	untilReady()
	untilReady()
	b.ReportAllocs()
	for b.Loop() {
		fe.Send(&pgproto3.Bind{PreparedStatement: "s", Parameters: [][]byte{[]byte("48213")}})
		fe.Send(&pgproto3.Describe{ObjectType: 'P'})
		fe.Send(&pgproto3.Execute{})
		fe.Send(&pgproto3.Sync{})
		if err := fe.Flush(); err != nil {
			b.Fatal(err)
		}
		untilReady()
	}
	client.Close()
	<-done
}
