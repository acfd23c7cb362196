package bastion

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/pgproxy"
	"github.com/bastion-dev/bastion/policy"
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
