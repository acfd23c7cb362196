package pgproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/bastion-dev/bastion/internal/pgtest"
	"github.com/bastion-dev/bastion/policy"
)

// serveLocal serves p on a 127.0.0.1 listener until the test ends and
// returns the listener's address.
func serveLocal(t testing.TB, p *Proxy) string {
	t.Helper()
	return serveLocalConn(t, p, func() Conn { return Conn{Hooks: p.Hooks} })
}

// serveLocalConn is serveLocal with each connection's Conn from conn.
func serveLocalConn(t testing.TB, p *Proxy, conn func() Conn) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
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
				p.ServeConn(ctx, c, conn())
			}()
		}
	}()
	t.Cleanup(func() {
		cancel()
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

// targetFor is the target for srv's ordinary (SCRAM) user.
func targetFor(srv *pgtest.Server) Target {
	return Target{Name: "test", Addr: srv.Addr, Database: srv.Database, User: srv.User, Password: srv.Password}
}

// clientDSN is what an agent would use: any user, a wrong password, and
// sslmode=prefer so the SSLRequest decline is exercised.
func clientDSN(addr, db string) string {
	return "postgres://agent:not-the-password@" + addr + "/" + db + "?sslmode=prefer&connect_timeout=10"
}

// events collects Hooks.Statement events.
type events struct {
	mu  sync.Mutex
	evs []StatementEvent
}

func (e *events) hook(ev StatementEvent) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.evs = append(e.evs, ev)
	return nil
}

// find returns the last event whose text contains sub.
func (e *events) find(sub string) (StatementEvent, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := len(e.evs) - 1; i >= 0; i-- {
		if strings.Contains(e.evs[i].Text, sub) {
			return e.evs[i], true
		}
	}
	return StatementEvent{}, false
}

// fakeUpstream is an in-memory PostgreSQL server: it accepts any login and
// answers every statement with one row, recording the statements that
// reach it.
type fakeUpstream struct {
	mu       sync.Mutex
	stmts    []string // Query and Parse texts, in arrival order
	types    []string // every message received after startup
	wg       sync.WaitGroup
	rowText  string // the value of the row it returns
	noRecord bool   // do not record (benchmarks)
	dieOn    string // a Query that makes it drop the connection
	slowOn   string // a Query it answers after 300ms
}

func (f *fakeUpstream) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	a, b := net.Pipe()
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		defer b.Close()
		f.serve(b)
	}()
	return a, nil
}

func (f *fakeUpstream) statements() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.stmts...)
}

func (f *fakeUpstream) received() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.types...)
}

func (f *fakeUpstream) serve(c net.Conn) {
	be := pgproto3.NewBackend(c, c)
	if _, err := be.ReceiveStartupMessage(); err != nil {
		return
	}
	be.Send(&pgproto3.AuthenticationOk{})
	be.Send(&pgproto3.ParameterStatus{Name: "server_version", Value: "15.0"})
	be.Send(&pgproto3.ParameterStatus{Name: "client_encoding", Value: "UTF8"})
	be.Send(&pgproto3.BackendKeyData{ProcessID: 4242, SecretKey: []byte{1, 2, 3, 4}})
	be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	if be.Flush() != nil {
		return
	}
	row := f.rowText
	if row == "" {
		row = "1"
	}
	desc := &pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{{Name: []byte("v"), DataTypeOID: 25, DataTypeSize: -1, TypeModifier: -1}}}
	for {
		msg, err := be.Receive()
		if err != nil {
			return
		}
		if !f.noRecord {
			f.record(msg)
		}
		switch m := msg.(type) {
		case *pgproto3.Query:
			if f.dieOn != "" && m.String == f.dieOn {
				return
			}
			if f.slowOn != "" && m.String == f.slowOn {
				time.Sleep(300 * time.Millisecond)
			}
			be.Send(desc)
			be.Send(&pgproto3.DataRow{Values: [][]byte{[]byte(row)}})
			be.Send(&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")})
			be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
		case *pgproto3.Parse:
			be.Send(&pgproto3.ParseComplete{})
		case *pgproto3.Bind:
			be.Send(&pgproto3.BindComplete{})
		case *pgproto3.Describe:
			if m.ObjectType == 'S' {
				be.Send(&pgproto3.ParameterDescription{})
			}
			be.Send(desc)
		case *pgproto3.Execute:
			be.Send(&pgproto3.DataRow{Values: [][]byte{[]byte(row)}})
			be.Send(&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")})
		case *pgproto3.Close:
			be.Send(&pgproto3.CloseComplete{})
		case *pgproto3.Sync:
			be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
		case *pgproto3.Terminate:
			return
		}
		if be.Flush() != nil {
			return
		}
	}
}

func (f *fakeUpstream) record(msg pgproto3.FrontendMessage) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.types = append(f.types, typeName(msg))
	switch m := msg.(type) {
	case *pgproto3.Query:
		f.stmts = append(f.stmts, m.String)
	case *pgproto3.Parse:
		f.stmts = append(f.stmts, m.Query)
	}
}

func typeName(m any) string { return strings.TrimPrefix(fmt.Sprintf("%T", m), "*pgproto3.") }

// scriptConn is a client connection that sends a fixed byte string, then
// EOF, and records what the proxy writes.
type scriptConn struct {
	r   *bytes.Reader
	mu  sync.Mutex
	out bytes.Buffer
	dl  time.Time
}

func newScriptConn(in []byte) *scriptConn { return &scriptConn{r: bytes.NewReader(in)} }

func (c *scriptConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	dl := c.dl
	c.mu.Unlock()
	if !dl.IsZero() && !time.Now().Before(dl) {
		return 0, os.ErrDeadlineExceeded
	}
	return c.r.Read(p)
}

func (c *scriptConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.Write(p)
}

func (c *scriptConn) output() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.out.Bytes()...)
}

func (c *scriptConn) Close() error                      { return nil }
func (c *scriptConn) LocalAddr() net.Addr               { return &net.TCPAddr{} }
func (c *scriptConn) RemoteAddr() net.Addr              { return &net.TCPAddr{} }
func (c *scriptConn) SetReadDeadline(t time.Time) error { return c.SetDeadline(t) }
func (c *scriptConn) SetWriteDeadline(time.Time) error  { return nil }
func (c *scriptConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dl = t
	return nil
}

// encodeAll encodes client messages, startup message first if given.
func encodeAll(t testing.TB, msgs ...pgproto3.FrontendMessage) []byte {
	t.Helper()
	var b []byte
	for _, m := range msgs {
		var err error
		b, err = m.Encode(b)
		if err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func startupMsg(db string) *pgproto3.StartupMessage {
	return &pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30,
		Parameters: map[string]string{"user": "agent", "database": db}}
}

// decodeAll splits what the proxy sent a client into messages, after the
// 'N' answers to SSLRequest/GSSEncRequest if skip says how many.
func decodeAll(t testing.TB, b []byte) []pgproto3.BackendMessage {
	t.Helper()
	fe := pgproto3.NewFrontend(bytes.NewReader(b), io.Discard)
	var out []pgproto3.BackendMessage
	for {
		m, err := fe.Receive()
		if err != nil {
			if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
				t.Fatalf("decode proxy output: %v", err)
			}
			return out
		}
		out = append(out, copyMessage(t, m))
	}
}

// copyMessage detaches a received message from the reader's buffer.
func copyMessage(t testing.TB, m pgproto3.BackendMessage) pgproto3.BackendMessage {
	b, err := m.Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	fe := pgproto3.NewFrontend(bytes.NewReader(b), io.Discard)
	c, err := fe.Receive()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// kinds names messages compactly: "T D C Z" style, using the type byte.
func kinds(msgs []pgproto3.BackendMessage) string {
	var sb strings.Builder
	for i, m := range msgs {
		if i > 0 {
			sb.WriteByte(' ')
		}
		b, _ := m.Encode(nil)
		sb.WriteByte(b[0])
		if e, ok := m.(*pgproto3.ErrorResponse); ok {
			sb.WriteString("(" + e.Code + ")")
		}
	}
	return sb.String()
}

// fakeGitHubToken has the shape and entropy of a GitHub token.
const fakeGitHubToken = "gh" + "p_8rESQedUStPKR0CsTy4Qwb8DwkNhFdnXsiVp"

// allowAll is an Approve hook that approves everything at once.
func allowAll(ctx context.Context, stmt string, res policy.Result, notice func(string)) (bool, string) {
	return true, ""
}
