package bastion

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/audit"
	"github.com/bastion-dev/bastion/certs"
	"github.com/bastion-dev/bastion/identity"
	"github.com/bastion-dev/bastion/pgproxy"
	"github.com/bastion-dev/bastion/policy"
	"github.com/bastion-dev/bastion/recordings"
)

// The tunnel's log line, built with appends on the statement path, reads
// as the format it replaced.
func TestAppendStatementLine(t *testing.T) {
	allow := policy.Result{Decision: policy.Allow, Rule: "sql-read"}
	deny := policy.Result{Decision: policy.Deny, Rule: "sql-drop", Reason: "DROP destroys data"}
	for _, ev := range []pgproxy.StatementEvent{
		{Text: "select 1", Result: allow, Tag: "SELECT 1", Rows: 1, Duration: 1234567 * time.Nanosecond},
		{Text: "select\n  a,\n  b\nfrom t", Result: allow, Tag: "SELECT 0", Duration: 2 * time.Second},
		{Text: "\n", Result: allow, Tag: "", Rows: -1},
		{Text: "drop table t", Result: deny, Refused: true},
		{Text: "select * from nope", Result: allow, SQLState: "42P01", Error: `relation "nope" does not exist`},
		{Text: "", Result: policy.Result{Decision: policy.Approve, Rule: "sql-delete-all"}, Approved: true, Tag: "DELETE 3", Rows: 3, Duration: 90 * time.Millisecond},
	} {
		status := fmt.Sprintf("%s, %d rows, %s", ev.Tag, ev.Rows, ev.Duration.Round(time.Microsecond))
		if ev.Refused {
			status = "refused: " + ev.Result.Reason
		} else if ev.Error != "" {
			status = "error " + ev.SQLState + ": " + ev.Error
		}
		want := fmt.Sprintf("%s=> %s\r\n\x1b[2m   -- %s [%s %s]\x1b[0m\r\n", "db1", strings.ReplaceAll(ev.Text, "\n", "\r\n   "), status, ev.Result.Decision, ev.Result.Rule)
		if got := string(appendStatementLine([]byte("stale"), "db1", ev)[len("stale"):]); got != want {
			t.Errorf("appendStatementLine(%q):\n got %q\nwant %q", ev.Text, got, want)
		}
	}
}

// newTestTunnelLog is a tunnelLog over a real recording and audit log in
// a temporary directory, as serveTunnel makes it.
func newTestTunnelLog(tb testing.TB) (*tunnelLog, *session, *audit.Log) {
	tb.Helper()
	dir := tb.TempDir()
	alog, err := audit.Open(filepath.Join(dir, "audit", "audit.jsonl"), audit.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { alog.Close() })
	s := &Server{Audit: alog, Clock: time.Now, Logger: slog.New(slog.DiscardHandler)}
	ident := &certs.Identity{Provenance: identity.Provenance{Kind: "agent", Subject: "ci-bot", Issuer: "https://issuer.test", Role: "agent"}}
	ctx, cancel := context.WithCancelCause(context.Background())
	tb.Cleanup(func() { cancel(nil) })
	sess := &session{srv: s, id: "s-tunnel-log", ident: ident, source: "127.0.0.1", ctx: ctx, cancel: cancel}
	rec, err := recordings.Create(filepath.Join(dir, "recordings"), recordings.Header{Width: 120, Height: 30,
		Bastion: recordings.Meta{SessionID: sess.id, Target: "db1"}}, recordings.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { rec.Close(0) })
	return newTunnelLog(s, sess, rec, "db1"), sess, alog
}

// Each statement becomes a query marker in the recording and a query
// audit event, in order; an allowed one's event is durable by finish.
func TestTunnelLogStatement(t *testing.T) {
	tl, _, alog := newTestTunnelLog(t)
	allow := pgproxy.StatementEvent{Text: "select 1", Result: policy.Result{Decision: policy.Allow, Rule: "sql-read"}, Tag: "SELECT 1", Rows: 1}
	deny := pgproxy.StatementEvent{Text: "drop table t", Result: policy.Result{Decision: policy.Deny, Rule: "sql-drop", Reason: "DROP destroys data"}, Refused: true}
	failed := pgproxy.StatementEvent{Text: "select * from nope", Result: allow.Result, SQLState: "42P01", Error: "relation does not exist"}
	for _, ev := range []pgproxy.StatementEvent{allow, deny, failed} {
		if err := tl.statement(ev); err != nil {
			t.Fatalf("statement(%q): %v", ev.Text, err)
		}
	}
	if err := tl.finish(); err != nil {
		t.Fatal(err)
	}
	events, err := audit.Search(alog.Path(), audit.Filter{Type: audit.Query})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range events {
		got = append(got, fmt.Sprintf("%s %s %s %v %v", e.Decision, e.Rule, e.Detail["statement"], e.Detail["target"], e.Detail["error"]))
	}
	want := []string{"allow sql-read select 1 db1 <nil>", "deny sql-drop drop table t db1 <nil>", "allow sql-read select * from nope db1 42P01 relation does not exist"}
	if !slices.Equal(got, want) {
		t.Errorf("audit events:\n got %q\nwant %q", got, want)
	}
	f, err := os.Open(tl.rec.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := recordings.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	var sqls []string
	for {
		ev, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var m struct{ Type, SQL string }
		if ev.Type == recordings.CodeMarker && json.Unmarshal([]byte(ev.Data), &m) == nil && m.Type == "query" {
			sqls = append(sqls, m.SQL)
		}
	}
	if want := []string{"select 1", "drop table t", "select * from nope"}; !slices.Equal(sqls, want) {
		t.Errorf("query markers: got %q, want %q", sqls, want)
	}
}

// A statement the recording cannot take ends the tunnel; it ran all the
// same, so its audit event is still written, naming the failure.
func TestTunnelLogStatementUnrecorded(t *testing.T) {
	tl, sess, alog := newTestTunnelLog(t)
	tl.rec.Close(0)
	ev := pgproxy.StatementEvent{Text: "delete from t where id = 7", Result: policy.Result{Decision: policy.Allow, Rule: "sql-write"}, Tag: "DELETE 1", Rows: 1}
	if err := tl.statement(ev); err == nil {
		t.Fatal("a statement was recorded in a closed recording")
	}
	if cause := context.Cause(sess.ctx); !errors.Is(cause, errRecordingFailed) {
		t.Errorf("session cause = %v, want %v", cause, errRecordingFailed)
	}
	events, err := audit.Search(alog.Path(), audit.Filter{Type: audit.Query})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || events[0].Detail["statement"] != ev.Text || events[0].Detail["recording_error"] == nil {
		t.Fatalf("query events = %+v, want one for %q with its recording_error", events, ev.Text)
	}
}

// BenchmarkTunnelLogStatement is the cost bastion adds to each allowed
// tunnel statement after it ran: the recording's marker and log line (one
// write) and the enqueued audit event (encoded, written and fsynced in
// batches by the audit log, outside this loop's goroutine).
func BenchmarkTunnelLogStatement(b *testing.B) {
	tl, _, _ := newTestTunnelLog(b)
	ev := pgproxy.StatementEvent{Text: "SELECT abalance FROM pgbench_accounts WHERE aid = 4263;",
		Result: policy.Result{Decision: policy.Allow, Rule: "sql-read"}, Tag: "SELECT 1", Rows: 1, Duration: 41 * time.Microsecond}
	b.ReportAllocs()
	for b.Loop() {
		if err := tl.statement(ev); err != nil {
			b.Fatal(err)
		}
	}
	if err := tl.finish(); err != nil {
		b.Fatal(err)
	}
}
