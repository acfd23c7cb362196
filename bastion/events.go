package bastion

import (
	"fmt"
	"time"

	"github.com/bastion-dev/bastion/audit"
	"github.com/bastion-dev/bastion/certs"
	"github.com/bastion-dev/bastion/identity"
)

// The audit events of agent sessions are built here, in one place: an
// event's identity, session and source come from one constructor, and its
// detail from a typed value whose fields() is the exact set of keys the
// log has always carried (consumers parse them; never rename one). The
// wire format stays audit.Event's map, so that one encoder writes every
// event and logs written before keep verifying byte for byte.

// detail is an audit event's own fields.
type detail interface{ fields() map[string]any }

// event is an audit event about sess: its identity, session and source.
func (sess *session) event(typ string, d detail) audit.Event {
	e := audit.Event{Type: typ, Identity: provOf(sess.ident), Session: sess.id, Source: sess.source}
	if d != nil {
		e.Detail = d.fields()
	}
	return e
}

// connEvent is an audit event about a connection that has no session:
// id may be nil (not authenticated).
func connEvent(typ string, id *certs.Identity, src string, d detail) audit.Event {
	return httpEvent(typ, provOf(id), src, d)
}

// httpEvent is an audit event of the HTTP side, whose callers know a
// provenance (from a token, or the operator) rather than a certificate;
// who may be nil.
func httpEvent(typ string, who *identity.Provenance, src string, d detail) audit.Event {
	e := audit.Event{Type: typ, Identity: who, Source: src}
	if d != nil {
		e.Detail = d.fields()
	}
	return e
}

// eventDevToken is the audit event of a token the dev issuer minted (a
// contract with log consumers, like the types in package audit).
const eventDevToken = "dev.token"

// sessionStarted is the detail of audit.SessionStart.
type sessionStarted struct {
	Kind      string // exec, shell or db
	Principal string
	Serial    uint64
	Command   string // exec: the command, masked
	Reason    string // the agent's BASTION_REASON, masked
	Target    string // db: the database target
	Parent    string // db inside a session: that session's id
}

func (d sessionStarted) fields() map[string]any {
	m := map[string]any{"kind": d.Kind, "principal": d.Principal, "serial": fmt.Sprint(d.Serial)}
	putString(m, "command", d.Command)
	putString(m, "reason", d.Reason)
	putString(m, "target", d.Target)
	putString(m, "parent", d.Parent)
	return m
}

// sessionEnded is the detail of audit.SessionEnd.
type sessionEnded struct {
	Exit   int
	Target string // db sessions
	Cause  string // why it ended, when something ended it
}

func (d sessionEnded) fields() map[string]any {
	m := map[string]any{"exit": d.Exit}
	putString(m, "target", d.Target)
	putString(m, "cause", d.Cause)
	return m
}

// commandDecided is the detail of audit.Command (the decision and rule are
// the event's own fields).
type commandDecided struct {
	Command string // masked
	Reason  string
}

func (d commandDecided) fields() map[string]any {
	return map[string]any{"command": d.Command, "reason": d.Reason}
}

// commandExited is the detail of audit.CommandExit.
type commandExited struct {
	Exit     int
	Duration time.Duration
}

func (d commandExited) fields() map[string]any {
	return map[string]any{"exit": d.Exit, "duration_ms": d.Duration.Milliseconds()}
}

// requestRefused is the detail of audit.RequestRefused.
type requestRefused struct {
	Request string // the SSH request type, or the session kind
	Reason  string
}

func (d requestRefused) fields() map[string]any {
	return map[string]any{"request": d.Request, "reason": d.Reason}
}

// channelRefused is the detail of audit.ChannelRefused.
type channelRefused struct {
	Channel string // session, direct-tcpip, postgres-socket
	Dest    string // direct-tcpip: the destination asked for, quoted
	Target  string // postgres-socket: the database target
	Reason  string
}

func (d channelRefused) fields() map[string]any {
	m := map[string]any{"channel": d.Channel, "reason": d.Reason}
	putString(m, "dest", d.Dest)
	putString(m, "target", d.Target)
	return m
}

// storeFailure is the detail of audit.StoreFailed. N and Exit are set when
// the failed write concerns a command or an exit.
type storeFailure struct {
	Op      string
	Err     error
	N       *int
	Exit    *int
	Command string
}

func (d storeFailure) fields() map[string]any {
	m := map[string]any{"op": d.Op, "error": d.Err.Error()}
	if d.N != nil {
		m["n"] = *d.N
	}
	if d.Exit != nil {
		m["exit"] = *d.Exit
	}
	putString(m, "command", d.Command)
	return m
}

// statementRan is the detail of audit.Query, one tunnel statement.
type statementRan struct {
	Target         any    // the target's name, boxed once per tunnel (tunnelLog)
	Statement      string // masked by pgproxy
	Duration       time.Duration
	Rows           int64
	Error          string // SQLSTATE and message
	Approved       bool
	Masked         int // values the masker replaced in its result
	RecordingError string
}

func (d statementRan) fields() map[string]any {
	m := map[string]any{"target": d.Target, "statement": d.Statement, "duration_ms": d.Duration.Milliseconds(), "rows": d.Rows}
	putString(m, "error", d.Error)
	if d.Approved {
		m["approved"] = true
	}
	if d.Masked > 0 {
		m["masked"] = d.Masked
	}
	putString(m, "recording_error", d.RecordingError)
	return m
}

// eventQueryCancel is the audit event of a CancelRequest through a
// database tunnel (a contract with log consumers, like the types in
// package audit).
const eventQueryCancel = "query.cancel"

// statementCancelled is the detail of eventQueryCancel.
type statementCancelled struct {
	Target  string
	Outcome string // pgproxy.CancelOutcome
	Error   string
}

func (d statementCancelled) fields() map[string]any {
	m := map[string]any{"target": d.Target, "outcome": d.Outcome}
	putString(m, "error", d.Error)
	return m
}

// fields is a detail whose keys vary (connection-level events that carry
// a limit or a count); prefer a typed detail for anything about a session.
type fields map[string]any

func (f fields) fields() map[string]any { return f }

func putString(m map[string]any, k, v string) {
	if v != "" {
		m[k] = v
	}
}
