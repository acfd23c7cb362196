package bastion

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bastion-dev/bastion/audit"
	"github.com/bastion-dev/bastion/pgproxy"
	"github.com/bastion-dev/bastion/policy"
	"github.com/bastion-dev/bastion/recordings"
)

// tunnelLog records a tunnel's statements: a marker and a readable log
// line in the recording, in one write, then a query audit event. Events of
// allowed statements are appended to the audit log in order at once and
// made durable by its next group fsync; the result is not held for it.
// Denials and approvals wait for their own. A failed write or fsync ends
// the tunnel at the next statement, or at its end.
type tunnelLog struct {
	srv    *Server
	sess   *session
	rec    *recordings.Writer
	target string
	async  asyncSink // nil: every event waits for its fsync
	// event is the statements' audit event without its own fields, built
	// once: its identity (a copy of the provenance) and the boxed target
	// name are shared by every statement's event, which only read them
	// (three allocations fewer per statement on the tunnel's hot path).
	event     audit.Event
	targetAny any

	mu       sync.Mutex
	buf      []byte         // the log line being written; guarded by mu
	inflight []<-chan error // outcomes of enqueued events, oldest first; guarded by mu
}

func newTunnelLog(s *Server, sess *session, rec *recordings.Writer, target string) *tunnelLog {
	async, _ := s.Audit.(asyncSink)
	return &tunnelLog{srv: s, sess: sess, rec: rec, target: target, async: async, event: sess.event(audit.Query, nil), targetAny: target}
}

// line writes a line of the statement log.
func (l *tunnelLog) line(format string, a ...any) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rec.Output([]byte(fmt.Sprintf(format, a...)))
}

// statement records one statement (pgproxy's Statement hook). A non-nil
// error ends the tunnel: nothing more goes upstream.
func (l *tunnelLog) statement(ev pgproxy.StatementEvent) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = appendStatementLine(l.buf[:0], l.target, ev)
	recErr := l.rec.Query(recordings.Query{SQL: ev.Text, Decision: ev.Result.Decision.String(), Rule: ev.Result.Rule,
		Rows: ev.Rows, MS: ev.Duration.Milliseconds(), Error: ev.Error}, l.buf)
	if cap(l.buf) > 1<<20 {
		l.buf = nil // one huge statement does not pin its size for the tunnel
	}
	err := recErr // or an earlier enqueued event's failure in the audit log
	if err == nil {
		err = l.settled(false)
	}
	d := statementRan{Target: l.targetAny, Statement: ev.Text, Duration: ev.Duration, Rows: ev.Rows, Approved: ev.Approved, Masked: ev.Masked}
	if ev.Error != "" {
		d.Error = ev.SQLState + " " + ev.Error
	}
	if recErr != nil {
		d.RecordingError = recErr.Error()
	}
	// After a failure the statement ran (or was refused) all the same: its
	// event is still written, and waited for, so the audit log keeps who
	// ran what; then the tunnel ends.
	e := l.event
	e.Time, e.Decision, e.Rule, e.Detail = l.srv.Clock(), ev.Result.Decision.String(), ev.Result.Rule, d.fields()
	if err == nil && l.async != nil && ev.Result.Decision == policy.Allow && !ev.Refused {
		l.inflight = append(l.inflight, l.async.Enqueue(e))
	} else if aerr := l.srv.audit(e); err == nil {
		err = aerr
	}
	if err != nil {
		l.sess.cancel(errRecordingFailed)
	}
	return err
}

// settled returns the first failure among the enqueued events that have
// an outcome, waiting for all of them if wait. Caller holds mu.
func (l *tunnelLog) settled(wait bool) error {
	for len(l.inflight) > 0 {
		var err error
		if wait {
			err = <-l.inflight[0]
		} else {
			select {
			case err = <-l.inflight[0]:
			default:
				return nil
			}
		}
		l.inflight = l.inflight[1:]
		if err != nil {
			return err
		}
	}
	return nil
}

// finish waits for every enqueued event's outcome.
func (l *tunnelLog) finish() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.settled(true)
}

// appendStatementLine appends the recording's log line for one tunnel
// statement: the statement as psql echoes it, then a dim status line.
func appendStatementLine(b []byte, target string, ev pgproxy.StatementEvent) []byte {
	b = append(b, target...)
	b = append(b, "=> "...)
	for text := ev.Text; ; {
		line, rest, more := strings.Cut(text, "\n")
		b = append(b, line...)
		if !more {
			break
		}
		b = append(b, "\r\n   "...)
		text = rest
	}
	b = append(b, "\r\n\x1b[2m   -- "...)
	switch {
	case ev.Refused:
		b = append(b, "refused: "...)
		b = append(b, ev.Result.Reason...)
	case ev.Error != "":
		b = append(b, "error "...)
		b = append(b, ev.SQLState...)
		b = append(b, ": "...)
		b = append(b, ev.Error...)
	default:
		b = append(b, ev.Tag...)
		b = append(b, ", "...)
		b = strconv.AppendInt(b, ev.Rows, 10)
		b = append(b, " rows, "...)
		b = append(b, ev.Duration.Round(time.Microsecond).String()...)
	}
	b = append(b, " ["...)
	b = append(b, ev.Result.Decision.String()...)
	b = append(b, ' ')
	b = append(b, ev.Result.Rule...)
	return append(b, "]\x1b[0m\r\n"...)
}
