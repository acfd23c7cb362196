// Package audit defines bastion's audit events and a tamper-evident,
// append-only JSON-lines log of them: each event carries its sequence number
// and is chained to the previous one by an HMAC-SHA256 under a key that
// agents cannot read, and the log's head (the sequence number and hash of
// its last durable event) is kept apart, in bastion's store, so that a log
// cut short or rewritten is told from an intact one.
//
// Logs written before the chain was keyed hold unkeyed events (no seq,
// plain SHA-256): they still verify, as legacy, and a keyed Log continues
// them with keyed events. Once a log has a keyed event, every later one
// must be keyed.
package audit

import (
	"time"

	"github.com/bastion-dev/bastion/identity"
)

// Event types. The set is open, but these names are a contract with log
// consumers: never rename one.
const (
	CertIssued     = "cert.issued"
	CertRefused    = "cert.refused"
	CertRevoked    = "cert.revoked"
	AuthFailed     = "auth.failed"
	AuthAccepted   = "auth.accepted"
	SessionStart   = "session.start"
	SessionEnd     = "session.end"
	ChannelRefused = "channel.refused"
	RequestRefused = "request.refused"
	Command        = "command"
	CommandExit    = "command.exit"
	Approval       = "approval"
	Masked         = "mask"
	Query          = "query"
	CARotated      = "ca.rotated"
	ServerStart    = "server.start"
	ServerStop     = "server.stop"
	// StoreFailed: a session or command could not be written to the store's
	// session index; the command it concerns did not run, or the session
	// ended.
	StoreFailed = "store.failed"
	// LogRecovered is written by the Log itself when it finds a torn last
	// line (a crash or a full disk in the middle of a write). Its detail
	// names the torn bytes (torn_bytes, torn_sha256) so Verify can tell a
	// repaired crash from an edit.
	LogRecovered = "log.recovered"
	// LogTampered is written by the Log itself when it opens a file that
	// is behind the head kept in the store (events were cut from its end)
	// or whose last event is not the head's (rewritten). Its detail names
	// the head and the file's last event, so that the evidence stays in
	// the keyed chain once the store's head moves on; Verify reports it as
	// tampering.
	LogTampered = "log.tampered"
)

// Event is one audit record. Seq, Prev and Hash are filled in by the Log
// that writes it; callers leave them empty.
type Event struct {
	Time     time.Time            `json:"time"`
	Type     string               `json:"type"`
	Identity *identity.Provenance `json:"identity,omitempty"`
	Session  string               `json:"session,omitempty"`
	Source   string               `json:"source,omitempty"`
	// Decision and Rule are set on command and query events.
	Decision string `json:"decision,omitempty"`
	Rule     string `json:"rule,omitempty"`
	// Detail holds the event's own fields (command text, serial, reason...).
	Detail map[string]any `json:"detail,omitempty"`
	// Seq is the event's 1-based number in its file, legacy (unkeyed)
	// events before it included; zero on a legacy event. A non-zero Seq
	// marks the event as keyed.
	Seq uint64 `json:"seq,omitempty"`
	// Prev is the Hash of the event on the line before; empty on the first.
	Prev string `json:"prev,omitempty"`
	// Hash is the hex HMAC-SHA256, under the audit key, of the event's JSON
	// encoding without Hash (plain SHA-256 on a legacy event).
	// It must stay the last field: the encoding with Hash is the encoding
	// without it plus `,"hash":"..."` before the final brace, which is what
	// lets Verify check a line byte for byte without re-encoding it.
	Hash string `json:"hash,omitempty"`
}

// Sink receives audit events. Record must return only once the event is
// durable: callers act on the success (a command runs only after its decision
// is recorded) and refuse the action on an error.
type Sink interface {
	Record(Event) error
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(Event) error

func (f SinkFunc) Record(e Event) error { return f(e) }

// Discard is a Sink that drops every event; for tests and tools only.
var Discard Sink = SinkFunc(func(Event) error { return nil })
