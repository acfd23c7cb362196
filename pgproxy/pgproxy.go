// Package pgproxy is a PostgreSQL wire-protocol (v3) proxy that checks every
// statement against the SQL policy before it reaches the database, injects
// the upstream credentials, and masks secrets in results.
//
// It works over any net.Conn, so an SSH direct-tcpip channel and a local
// listener share the code. The client is trusted (the SSH session is the
// authentication): its user and password are ignored, SSLRequest and
// GSSEncRequest are declined, and the proxy logs in upstream as the target
// (SCRAM-SHA-256, md5 or cleartext, optionally over TLS) with credentials
// the client never sees. The protocol is described in the PostgreSQL
// documentation, "Frontend/Backend Protocol".
//
// Each statement is classified where it enters the server: a simple Query
// (the whole string; its strictest statement decides) and an
// extended-protocol Parse. Bind only uses statements this connection's
// Parse classified. A refused statement never reaches the server: the
// client gets an ErrorResponse with SQLSTATE 42501 ("bastion: denied:
// <reason> [rule <id>]") and ReadyForQuery with the transaction status
// unchanged, so the session and any open transaction stay usable. In an
// extended-protocol batch a refused Parse fails the whole batch: what the
// proxy still holds of it is dropped, and messages up to Sync are
// discarded, as the server does after an error.
//
// Results are masked before the client sees them: DataRow values in text
// format, and binary values of textual types (text, varchar, json, jsonb,
// bytea, ...), pass through the masker, which knows password hashes
// (SCRAM verifiers, md5) among its secrets; binary arrays, records and the
// user's types are walked for their textual elements; other binary values
// (integers, timestamps) would only be corrupted by text substitution, so
// they get the column rules only. A column a column rule matches has every
// non-NULL value replaced with "[MASKED:<column>]". The rules follow where
// a column's values come from, not the name the client sees: the origin
// RowDescription gives (a table's or view's column, resolved on a side
// connection, see catalog), and for an expression the statement's parse
// tree (upper(password), a whole row of a table with a masked column, a
// subquery or CTE over one, a function defined outside the system
// schemas). COPY TO STDOUT rows are masked by the same judgement, field by
// field. Errors, notices and notification payloads pass through the
// masker.
//
// An UPDATE or DELETE with a WHERE that the classifier allows is explained
// on a side connection (never ANALYZE) where the target can be asked; an
// estimate above MaxRows rows, or above half its table, makes it approve
// (rule sql-estimate; see estimate.go).
//
// Limitations:
//   - Masking judges what a statement reads, not where data went before:
//     a masked column copied into another table under another name (CREATE
//     TABLE AS, INSERT ... SELECT) is that table's column. A function's or
//     procedure's body is not read: the results of functions defined
//     outside the system schemas are masked whole. Side connections see
//     committed state: a relation created in the client's open transaction,
//     and every view while that transaction changes the schema, is masked
//     whole.
//   - If the client sent part of a batch with Flush before a refused Parse,
//     that part has already run; the client's Sync then commits it when no
//     transaction block is open (the server would roll it back).
//   - An approval given at Parse covers every execution of that prepared
//     statement.
//   - A client that breaks the COPY sub-protocol (a Query in the middle of
//     COPY FROM STDIN) can confuse the proxy's bookkeeping of its own
//     session's answers, delaying refusals; what reaches the server is
//     still only what the policy allowed.
package pgproxy

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/bastion-dev/bastion/masking"
	"github.com/bastion-dev/bastion/policy"
	"github.com/bastion-dev/bastion/shellpolicy/sqlpolicy"
)

// Target is the upstream database a Proxy connects to.
type Target struct {
	Name     string // for logs and events
	Addr     string // host:port
	Database string // empty means the server's default (the user name)
	User     string
	Password string // injected upstream; always masked in what the client sees
	// TLS, if not nil, is required upstream. nil means no TLS upstream.
	TLS *tls.Config
}

// Hooks connect the proxy to approvals and recording.
type Hooks struct {
	// Admit is called before each statement is decided (each simple Query
	// and each Parse); a non-nil error refuses the statement with that
	// text (rule "certificate") and it does not reach the server. bastion
	// uses it to check the agent's certificate (revoked, expired) at every
	// statement, not only at login. nil admits every statement.
	Admit func() error

	// Approve is called for an approve decision; it blocks until a human
	// decides or ctx ends (the client cancelled, or the session ended). It
	// should call notice with the text for the agent, e.g. "bastion: waiting
	// for approval <id> (rule <id>)"; notice sends a NoticeResponse at once
	// and may be called from any goroutine. nil means approve-level
	// statements are refused ("approval required").
	//
	// An approval given at Parse covers the prepared statement, which the
	// client may then execute more than once.
	Approve func(ctx context.Context, stmt string, res policy.Result, notice func(msg string)) (ok bool, reason string)

	// Statement is called once per statement the proxy refused or the server
	// finished: each simple Query message and each Execute, one call at a
	// time per connection, in the order they finished or were refused. A
	// refusal reaches the client after its call returns; a statement the
	// server finished is reported once its result is written to the
	// client, and nothing more goes to the server until the call returns.
	// Serve returns only after every call.
	// Returning an error (the recording failed) ends the connection: fail
	// closed. nil: no events.
	Statement func(ev StatementEvent) error

	// Cancel is told of each CancelRequest that came on this connection,
	// once the proxy has acted on it. nil: not told.
	Cancel func(ev CancelEvent)
}

// CancelEvent is one CancelRequest and what the proxy did with it.
type CancelEvent struct {
	Target  string
	Outcome CancelOutcome
	Err     error // CancelFailed: why
}

// CancelOutcome is what a CancelRequest did.
type CancelOutcome string

const (
	CancelForwarded CancelOutcome = "forwarded" // sent upstream with the server's own key
	CancelApproval  CancelOutcome = "approval"  // stopped a statement waiting for approval
	CancelUnknown   CancelOutcome = "unknown"   // no session of this proxy has the key
	CancelNotOwner  CancelOutcome = "not-owner" // the session belongs to another owner
	CancelFailed    CancelOutcome = "failed"    // the server could not be reached
)

// StatementEvent describes one statement, for recording and audit.
type StatementEvent struct {
	Target   string
	Text     string        // the statement, masked
	Result   policy.Result // the policy verdict
	Approved bool          // an approver let an approve-level statement run
	Refused  bool          // the proxy refused it; it did not reach the server
	Start    time.Time
	Duration time.Duration
	Tag      string // the last command tag, e.g. "INSERT 0 3"; empty if none
	Rows     int64  // rows from the command tags
	// Masked counts the result values (and COPY rows) masking changed:
	// replaced whole by a column rule or with a secret masked inside.
	Masked   int
	SQLState string // set when the statement failed or was refused
	Error    string // the error message, masked
}

// DefaultColumnRules are used when Proxy.ColumnRules is nil.
// "*passwd*" covers pg_shadow.passwd, the password hash column of the
// system views that have one.
var DefaultColumnRules = []string{"*password*", "*passwd*", "*secret*", "*ssn*", "*token*"}

// Proxy serves client connections for one Target. Set its fields before the
// first Serve and do not change them after; a Proxy must not be copied after
// first use. Serve may be called concurrently.
type Proxy struct {
	Target Target
	// Classifier decides each statement. nil means sqlpolicy.Default().
	Classifier *sqlpolicy.Classifier
	// Masker masks result values, errors and notices. nil means
	// masking.Default(). The target password is always added with
	// WithValues.
	Masker *masking.Masker
	// ColumnRules are case-insensitive shell globs (path.Match) on result
	// column names; a matching column's non-NULL values are replaced whole
	// with "[MASKED:<column>]". nil means DefaultColumnRules; an empty
	// non-nil slice disables column rules.
	ColumnRules []string
	// MaxRows is the planner estimate above which an allowed UPDATE or
	// DELETE needs approval (so does more than half of its table's rows;
	// see estimate.go). Zero means DefaultMaxRows; negative turns planner
	// estimates off.
	MaxRows int
	Hooks   Hooks
	// Logger receives operational logs; nil discards them.
	Logger *slog.Logger
	// DialTimeout bounds connecting and logging in upstream. Zero means 15s.
	DialTimeout time.Duration

	// dial replaces net.Dialer in tests (an in-memory fake upstream).
	dial func(ctx context.Context, network, addr string) (net.Conn, error)

	mu       sync.Mutex
	sessions map[uint32]*session // by the process ID given to the client; guarded by mu
}

const (
	// maxMessageLen bounds a client message body; larger is a protocol
	// violation (PostgreSQL's own limit for most messages is 1 GB, far
	// more than an agent needs).
	maxMessageLen = 64 << 20
	// startupTimeout bounds the time from accepting a connection to its
	// startup message.
	startupTimeout = 30 * time.Second
	defaultDial    = 15 * time.Second
)

// Serve proxies one client connection with the Proxy's Hooks: ServeConn
// with Conn{Hooks: p.Hooks}.
func (p *Proxy) Serve(ctx context.Context, client net.Conn) error {
	return p.ServeConn(ctx, client, Conn{Hooks: p.Hooks})
}

// Conn is what one client connection brings to a Proxy shared by many: its
// own hooks (its recording and approvals), and whose it is.
type Conn struct {
	Hooks Hooks
	// Owner names the agent the connection belongs to. A CancelRequest
	// (which PostgreSQL clients send on a new connection) is honoured only
	// when it comes on a connection of the same Owner: one agent cannot
	// cancel another's statements even with its key.
	Owner string
	// Refuse, when set, refuses the connection after its startup message
	// with this FATAL error, as PostgreSQL refuses one over
	// max_connections; the server is not contacted. A CancelRequest on
	// such a connection is still handled: a client at its connection limit
	// must still be able to stop a runaway query.
	Refuse *Refusal
	// Classifier decides this connection's statements (the agent's own
	// scoped rules); nil means the Proxy's.
	Classifier *sqlpolicy.Classifier
}

// Refusal is a FATAL ErrorResponse for a refused connection.
type Refusal struct {
	Code    string // SQLSTATE, e.g. CodeTooManyConnections
	Message string
	Hint    string
}

// CodeTooManyConnections is SQLSTATE 53300, too_many_connections.
const CodeTooManyConnections = "53300"

// ServeConn proxies one client connection until either side closes, the
// client terminates, or ctx ends (the client then gets FATAL 57P01). It
// closes client. It returns nil when the client ended the session
// normally, or when the connection only carried a CancelRequest.
func (p *Proxy) ServeConn(ctx context.Context, client net.Conn, c Conn) error {
	defer client.Close()
	log := p.logger()
	rd := &readErr{r: client}
	be := pgproto3.NewBackend(rd, client)
	be.SetMaxBodyLen(maxMessageLen)

	stop := context.AfterFunc(ctx, func() { client.Close() })
	client.SetDeadline(time.Now().Add(startupTimeout))
	sm, err := p.startup(be, rd, client, c)
	client.SetDeadline(time.Time{})
	if !stop() {
		return context.Cause(ctx)
	}
	if err != nil {
		var ue *userError
		if errors.As(err, &ue) {
			writeFatal(client, ue)
		}
		log.Debug("pgproxy: startup", "err", err)
		return err
	}
	if sm == nil { // a CancelRequest, handled
		return nil
	}
	if r := c.Refuse; r != nil {
		ue := &userError{severity: "FATAL", code: r.Code, msg: r.Message, hint: r.Hint}
		writeFatal(client, ue)
		return ue
	}

	s, err := p.connect(ctx, client, be, rd, sm, c)
	if err != nil {
		var ue *userError
		if errors.As(err, &ue) {
			writeFatal(client, ue)
		}
		log.Warn("pgproxy: connect upstream", "target", p.Target.Name, "err", err)
		return err
	}
	s.hooks, s.owner = c.Hooks, c.Owner
	if c.Classifier != nil {
		s.classifier = c.Classifier
	}
	p.register(s)
	defer p.unregister(s)
	return s.run()
}

func (p *Proxy) logger() *slog.Logger {
	if p.Logger != nil {
		return p.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// register gives s a process ID and secret key for the client, unique
// among this proxy's sessions, for CancelRequest.
func (p *Proxy) register(s *session) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sessions == nil {
		p.sessions = make(map[uint32]*session)
	}
	var b [8]byte
	for {
		rand.Read(b[:])
		pid := binary.BigEndian.Uint32(b[:4]) & 0x7fffffff
		if _, dup := p.sessions[pid]; pid == 0 || dup {
			continue
		}
		s.keyPID, s.keySecret = pid, append([]byte(nil), b[4:]...)
		p.sessions[pid] = s
		return
	}
}

func (p *Proxy) unregister(s *session) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.sessions, s.keyPID)
}

// cancel handles a CancelRequest that came on a connection of from: a
// statement waiting for approval stops waiting; otherwise the request goes
// upstream with the real key. Like PostgreSQL, nothing is answered, and an
// unknown key is ignored; from's Hooks.Cancel is told either way.
func (p *Proxy) cancel(req *pgproto3.CancelRequest, from Conn) {
	p.mu.Lock()
	s := p.sessions[req.ProcessID]
	p.mu.Unlock()
	ev := CancelEvent{Target: p.Target.Name}
	defer func() {
		if from.Hooks.Cancel != nil {
			from.Hooks.Cancel(ev)
		}
	}()
	if s == nil || subtle.ConstantTimeCompare(s.keySecret, req.SecretKey) != 1 {
		ev.Outcome = CancelUnknown
		p.logger().Debug("pgproxy: cancel request for unknown session", "pid", req.ProcessID)
		return
	}
	if s.owner != from.Owner {
		ev.Outcome = CancelNotOwner
		p.logger().Warn("pgproxy: cancel request from another owner refused", "target", p.Target.Name)
		return
	}
	if s.cancelApproval() {
		ev.Outcome = CancelApproval
		return
	}
	ctx, done := context.WithTimeout(context.Background(), p.dialTimeout())
	defer done()
	if err := p.sendCancel(ctx, s.upPID, s.upSecret); err != nil {
		ev.Outcome, ev.Err = CancelFailed, err
		p.logger().Warn("pgproxy: forward cancel request", "target", p.Target.Name, "err", err)
		return
	}
	ev.Outcome = CancelForwarded
}

func (p *Proxy) dialTimeout() time.Duration {
	if p.DialTimeout > 0 {
		return p.DialTimeout
	}
	return defaultDial
}

func (p *Proxy) dialer() func(ctx context.Context, network, addr string) (net.Conn, error) {
	if p.dial != nil {
		return p.dial
	}
	d := &net.Dialer{Timeout: p.dialTimeout(), KeepAlive: 30 * time.Second}
	return d.DialContext
}

// sendCancel opens a new upstream connection (TLS when the target uses it)
// and sends the CancelRequest for the upstream backend.
func (p *Proxy) sendCancel(ctx context.Context, pid uint32, secret []byte) error {
	c, err := p.dialer()(ctx, "tcp", p.Target.Addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if p.Target.TLS != nil {
		req, err := (&pgproto3.SSLRequest{}).Encode(nil)
		if err != nil {
			return err
		}
		if _, err := c.Write(req); err != nil {
			return err
		}
		var b [1]byte
		if _, err := c.Read(b[:]); err != nil {
			return err
		}
		if b[0] != 'S' {
			return errors.New("server refused TLS for the cancel request")
		}
		tc := tls.Client(c, p.Target.TLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			return err
		}
		c = tc
	}
	buf, err := (&pgproto3.CancelRequest{ProcessID: pid, SecretKey: secret}).Encode(nil)
	if err != nil {
		return err
	}
	if _, err := c.Write(buf); err != nil {
		return err
	}
	// The server closes the connection when done; waiting for that keeps
	// the request from racing a statement the client sends next.
	var b [1]byte
	c.Read(b[:])
	return nil
}

// readErr remembers the error of the last read, which tells a broken
// connection from a malformed message: pgproto3 returns both as errors,
// and some decode errors are io.EOF.
type readErr struct {
	r   io.Reader
	err error // only read by the goroutine that reads
}

func (r *readErr) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil {
		r.err = err
	}
	return n, err
}

// userError is an error with the ErrorResponse the client sees; the
// wrapped err, for logs, never reaches the client.
type userError struct {
	severity string // "ERROR" or "FATAL"
	code     string // SQLSTATE
	msg      string
	hint     string
	position int32 // 1-based character position in the statement; 0: none
	err      error
}

func (e *userError) Error() string {
	if e.err != nil {
		return fmt.Sprintf("%s (%s): %v", e.msg, e.code, e.err)
	}
	return fmt.Sprintf("%s (%s)", e.msg, e.code)
}

func (e *userError) Unwrap() error { return e.err }

func (e *userError) response() *pgproto3.ErrorResponse {
	return &pgproto3.ErrorResponse{Severity: e.severity, SeverityUnlocalized: e.severity,
		Code: e.code, Message: e.msg, Hint: e.hint, Position: e.position}
}

// SQLSTATE codes the proxy sends (PostgreSQL Appendix A).
const (
	codeInsufficientPrivilege = "42501" // a refused statement
	codeSyntaxError           = "42601" // a statement the parser rejects
	codeInvalidStatementName  = "26000" // Bind of a statement this connection did not Parse
	codeQueryCanceled         = "57014"
	codeAdminShutdown         = "57P01"
	codeConnectionFailure     = "08006"
	codeProtocolViolation     = "08P01"
	codeInvalidDatabase       = "3D000"
	codeFeatureNotSupported   = "0A000"
	codeSystemError           = "58000" // recording failed
)

func fatal(code, msg string, err error) *userError {
	return &userError{severity: "FATAL", code: code, msg: msg, err: err}
}

// writeFatal sends one ErrorResponse on a connection nobody else writes to.
func writeFatal(c net.Conn, ue *userError) {
	buf, err := ue.response().Encode(nil)
	if err != nil {
		return
	}
	c.SetWriteDeadline(time.Now().Add(time.Second))
	c.Write(buf)
}
