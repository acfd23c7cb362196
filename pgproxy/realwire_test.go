package pgproxy

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/bastion-dev/bastion/internal/pgtest"
)

// wireClient speaks the protocol by hand, to send exactly the message
// sequences real drivers send (pipelines, libpq's COPY) and check the
// exact answers.
type wireClient struct {
	t  *testing.T
	c  net.Conn
	fe *pgproto3.Frontend
}

func dialWire(t *testing.T, addr, db string) *wireClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	w := &wireClient{t: t, c: c, fe: pgproto3.NewFrontend(c, c)}
	w.send(startupMsg(db))
	w.until(1)
	return w
}

func (w *wireClient) send(msgs ...pgproto3.FrontendMessage) {
	w.t.Helper()
	for _, m := range msgs {
		w.fe.Send(m)
	}
	if err := w.fe.Flush(); err != nil {
		w.t.Fatal(err)
	}
}

// until reads until n ReadyForQuery (or, with n == 0, one message of the
// type of stop) and returns the messages' kinds.
func (w *wireClient) until(n int, stop ...byte) string {
	w.t.Helper()
	w.c.SetReadDeadline(time.Now().Add(15 * time.Second))
	defer w.c.SetReadDeadline(time.Time{})
	var out []pgproto3.BackendMessage
	for {
		m, err := w.fe.Receive()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				w.t.Fatalf("no answer: the proxy is stuck after %s", kinds(out))
			}
			w.t.Fatalf("receive after %s: %v", kinds(out), err)
		}
		out = append(out, copyMessage(w.t, m))
		b, _ := m.Encode(nil)
		if b[0] == 'Z' {
			n--
			if n == 0 {
				return kinds(out)
			}
		}
		if len(stop) > 0 && b[0] == stop[0] {
			return kinds(out)
		}
	}
}

func TestRealWire(t *testing.T) {
	srv := pgtest.Start(t)
	direct := pgxConnect(t, srv.DSN())
	ctx := context.Background()
	if _, err := direct.Exec(ctx, "CREATE TABLE t (n int)"); err != nil {
		t.Fatal(err)
	}
	ev := &events{}
	addr := serveLocal(t, &Proxy{Target: targetFor(srv), Hooks: Hooks{Statement: ev.hook}})
	w := dialWire(t, addr, srv.Database)
	denied := func() {
		t.Helper()
		w.send(&pgproto3.Query{String: "DROP TABLE t"})
		if k := w.until(1); k != "E(42501) Z" {
			t.Fatalf("denial answered %s", k)
		}
	}

	t.Run("pipelined queries keep their order", func(t *testing.T) {
		w.send(&pgproto3.Query{String: "SELECT pg_sleep(0.2)"}, &pgproto3.Query{String: "DROP TABLE t"}, &pgproto3.Query{String: "SELECT 2"})
		if k := w.until(3); k != "T D C Z E(42501) Z T D C Z" {
			t.Fatalf("got %s", k)
		}
	})

	t.Run("libpq-style COPY with Sync behind Execute", func(t *testing.T) {
		// libpq sends Sync right after Execute; the server ignores it in
		// copy-in mode. The proxy must not wait for its answer.
		w.send(&pgproto3.Parse{Query: "COPY t FROM STDIN"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{})
		if k := w.until(0, 'G'); k != "1 2 G" {
			t.Fatalf("got %s", k)
		}
		w.send(&pgproto3.CopyData{Data: []byte("1\n2\n")}, &pgproto3.CopyDone{}, &pgproto3.Sync{})
		if k := w.until(1); k != "C Z" {
			t.Fatalf("got %s", k)
		}
		denied()
		if n := count(t, direct, "SELECT count(*) FROM t"); n != 2 {
			t.Fatalf("t has %d rows", n)
		}
	})

	t.Run("COPY failing midway", func(t *testing.T) {
		w.send(&pgproto3.Parse{Query: "COPY t FROM STDIN"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{})
		w.until(0, 'G')
		w.send(&pgproto3.CopyData{Data: []byte("x\n")}, &pgproto3.CopyDone{}, &pgproto3.Sync{})
		if k := w.until(1); k != "E(22P02) Z" {
			t.Fatalf("got %s", k)
		}
		denied()
		w.send(&pgproto3.Query{String: "COPY t FROM STDIN"})
		w.until(0, 'G')
		w.send(&pgproto3.CopyFail{Message: "changed my mind"})
		if k := w.until(1); k != "E(57014) Z" {
			t.Fatalf("got %s", k)
		}
		denied()
	})

	t.Run("extended batch with an allowed and a refused statement", func(t *testing.T) {
		w.send(&pgproto3.Parse{Query: "INSERT INTO t VALUES (10)"}, &pgproto3.Bind{}, &pgproto3.Execute{},
			&pgproto3.Parse{Query: "DELETE FROM t"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{},
			&pgproto3.Query{String: "SELECT count(*) FROM t"})
		if k := w.until(2); k != "E(42501) Z T D C Z" {
			t.Fatalf("got %s", k)
		}
		if n := count(t, direct, "SELECT count(*) FROM t WHERE n = 10"); n != 0 {
			t.Fatal("the allowed half of a refused batch ran")
		}
	})

	t.Run("server error in a batch", func(t *testing.T) {
		w.send(&pgproto3.Parse{Query: "SELECT 1/0"}, &pgproto3.Bind{}, &pgproto3.Execute{},
			&pgproto3.Parse{Query: "SELECT 1"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{})
		if k := w.until(1); k != "1 E(22012) Z" { // 1/0 is folded at Bind
			t.Fatalf("got %s", k)
		}
		denied()
		e, ok := ev.find("SELECT 1/0")
		if !ok || e.SQLState != "22012" {
			t.Errorf("event %+v", e)
		}
	})

	t.Run("notification payload masked", func(t *testing.T) {
		w.send(&pgproto3.Query{String: "LISTEN ch"})
		w.until(1)
		if _, err := direct.Exec(ctx, "SELECT pg_notify('ch', $1)", "token "+fakeGitHubToken); err != nil {
			t.Fatal(err)
		}
		w.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		m, err := w.fe.Receive()
		w.c.SetReadDeadline(time.Time{})
		n, ok := m.(*pgproto3.NotificationResponse)
		if err != nil || !ok || n.Channel != "ch" || !strings.HasPrefix(n.Payload, "token [MASKED:") {
			t.Fatalf("got %T %+v %v", m, m, err)
		}
	})

	t.Run("server terminates the backend", func(t *testing.T) {
		w2 := dialWire(t, addr, srv.Database)
		w2.send(&pgproto3.Query{String: "SELECT pg_backend_pid()"})
		w2.until(1)
		if _, err := direct.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid() AND query = 'SELECT pg_backend_pid()'", srv.User); err != nil {
			t.Fatal(err)
		}
		out := readAll(t, w2.c)
		// The server's own FATAL reaches the client, and nothing after it.
		if k := kinds(out); k != "E(57P01)" {
			t.Fatalf("got %s", k)
		}
	})
}
