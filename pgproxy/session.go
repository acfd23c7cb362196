package pgproxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/bastion-dev/bastion/masking"
	"github.com/bastion-dev/bastion/policy"
	"github.com/bastion-dev/bastion/shellpolicy/sqlpolicy"
)

// A session is one client connection and its upstream connection. Two
// goroutines work on it: the client loop (readClient) reads client
// messages, decides, and writes allowed ones upstream; the relay loop
// (relay) reads upstream messages, masks, and writes them to the client.
//
// The two meet in the pending FIFO: for every message written upstream the
// client loop queues what answers it, in order, and the relay pops entries
// as the answers arrive. A refusal made by the proxy is queued the same way,
// so it reaches the client after the answers to everything the client sent
// before it, and the relay can tell which statement each CommandComplete or
// ErrorResponse belongs to.
type session struct {
	p          *Proxy
	hooks      Hooks  // the connection's (Conn.Hooks)
	owner      string // the connection's (Conn.Owner), for CancelRequest
	log        *slog.Logger
	ctx        context.Context
	cancel     context.CancelCauseFunc
	masker     *masking.Masker
	classifier *sqlpolicy.Classifier
	rules      []string

	client net.Conn
	be     *pgproto3.Backend // read by the client loop only
	rd     *readErr          // be's reader
	up     net.Conn
	fe     *pgproto3.Frontend // read by the relay loop only

	keyPID    uint32 // the key the client knows, set by Proxy.register
	keySecret []byte
	upPID     uint32 // the upstream backend's key
	upSecret  []byte

	// Client loop state.
	qmsg            pgproto3.Query      // the Query being forwarded
	ubuf            []byte              // encoded messages not yet written upstream
	upending        []*entry            // their FIFO entries, queued when ubuf is written
	stmts           map[string]stmtInfo // prepared statements by name
	portals         map[string]stmtInfo // portals by name
	discard         bool                // after a refused Parse: drop messages until Sync
	inBatch         bool                // extended-protocol messages since the last Sync
	sentBatch       bool                // part of the current batch went upstream
	refusal         *entry              // queued before the Sync when sentBatch
	hasDescribed    bool                // the previous message described describedPortal
	describedPortal string

	// Statement reports. The relay collects the statements the server
	// finished (reports, relay loop only) and records them once their
	// results are written to the client, so recording overlaps the
	// client's next round trip without a goroutine handoff; a refusal is
	// recorded by the client loop before the client sees it. hookMu keeps
	// Hooks.Statement calls one at a time.
	reports []report
	hookMu  sync.Mutex
	// queued and recorded count reports: nothing goes upstream until
	// every statement before it is recorded (writeUp waits on caughtUp).
	reportMu         sync.Mutex
	caughtUp         *sync.Cond // on reportMu
	queued, recorded int        // guarded by reportMu

	mu       sync.Mutex
	fifo     []*entry      // guarded by mu
	fifoArr  []*entry      // the array fifo starts over in once empty; guarded by mu
	cbuf     []byte        // messages for the client not yet written; guarded by mu
	txStatus byte          // the last ReadyForQuery status; guarded by mu
	batchErr bool          // an error was sent since the last ReadyForQuery; guarded by mu
	waiting  func()        // cancels the approval being waited for; guarded by mu
	werr     error         // the first client write error; guarded by mu
	idle     chan struct{} // closed when the FIFO empties; guarded by mu
	room     chan struct{} // closed when a full FIFO has room; guarded by mu

	// Column origins and planner estimates (see catalog, origin.go,
	// estimate.go). cat is shared with the target's other sessions.
	cat        *catalog
	oc         originCaches // relay loop only
	namedTexts []string     // texts that may DECLARE or PREPARE, newest last; guarded by mu
	// Set by the client loop as statements go upstream, read by both:
	// pathChanged, the session may have changed search_path; tempSeen, it
	// may have temporary relations; schemaDirty, its open transaction may
	// have changed the schema (cleared, and the catalog invalidated, at
	// the next ReadyForQuery outside a transaction).
	pathChanged, tempSeen, schemaDirty atomic.Bool

	// Relay loop state.
	cols         []column        // the current row description
	copyOut      *copyPlan       // the COPY TO STDOUT in progress, if it masks fields
	ruleSeen     map[string]bool // column name: a column rule matches it
	fatalRelayed bool            // the server sent a FATAL error

	terminated atomic.Bool // the client sent Terminate: upstream EOF is expected
	goodbye    sync.Once   // the final FATAL error is written once
}

// stmtInfo is what the proxy knows about a prepared statement or portal.
type stmtInfo struct {
	text     string
	res      policy.Result
	approved bool
	flags    textFlags
	est      *estPlan // what a planner estimate explains at Bind; nil: none
	oids     []uint32 // Parse's parameter types, for the estimate
}

// entryKind says what answers an entry in the FIFO.
type entryKind uint8

const (
	kQuery    entryKind = iota // a simple Query: done at ReadyForQuery
	kParse                     // ParseComplete
	kBind                      // BindComplete
	kDescribe                  // RowDescription or NoData (after ParameterDescription)
	kClose                     // CloseComplete
	kExecute                   // CommandComplete, EmptyQueryResponse or PortalSuspended
	kSync                      // ReadyForQuery
	kCopyEnd                   // CopyDone/CopyFail from the client: no answer
	kRefusal                   // an ErrorResponse made by the proxy
	kReady                     // a ReadyForQuery made by the proxy
)

type entry struct {
	kind   entryKind
	hidden bool // a Describe the proxy added: its answer is not relayed
	copyIn bool // the server entered COPY FROM STDIN for this Query/Execute

	// For kRefusal: the error, and whether to drop it when the server
	// already failed the batch (the client gets one error per batch).
	refusal       *pgproto3.ErrorResponse
	dropIfErrored bool

	// stmtIdx counts the statements of a Query the server finished, so a
	// RowDescription is matched with its statement.
	stmtIdx int

	// For events (kQuery, kExecute, and refusals of statements), and
	// for kDescribe, the statement described.
	report bool
	info   stmtInfo
	start  time.Time
	tag    string
	rows   int64
	masked int
	code   string
	errMsg string
}

func newSession(p *Proxy, ctx context.Context, client net.Conn, be *pgproto3.Backend, rd *readErr, hc *pgconn.HijackedConn, searchPath string) *session {
	m := p.Masker
	if m == nil {
		m = masking.Default()
	}
	m = m.WithValues(p.Target.Password)
	c := p.Classifier
	if c == nil {
		c = sqlpolicy.Default()
	}
	rules := p.ColumnRules
	if rules == nil {
		rules = DefaultColumnRules
	}
	s := &session{
		p: p, log: p.logger().With("target", p.Target.Name),
		masker: m, classifier: c, rules: lowerAll(rules),
		client: client, be: be, rd: rd, up: hc.Conn, fe: hc.Frontend,
		upPID: hc.PID, upSecret: hc.SecretKey,
		stmts: map[string]stmtInfo{}, portals: map[string]stmtInfo{},
		cat: p.catalog(searchPath),
	}
	s.ctx, s.cancel = context.WithCancelCause(ctx)
	return s
}

// errClientDone ends a session the client ended (Terminate or EOF).
var errClientDone = errors.New("client closed the connection")

// run finishes the greeting and proxies until the session ends.
func (s *session) run() error {
	defer s.cat.release()
	s.mu.Lock()
	s.send(&pgproto3.BackendKeyData{ProcessID: s.keyPID, SecretKey: s.keySecret})
	s.send(&pgproto3.ReadyForQuery{TxStatus: s.txStatus})
	s.flush()
	s.mu.Unlock()

	// Ending the session unblocks both loops: the client read by a
	// deadline (so the final error can still be written), the upstream by
	// closing it.
	stop := context.AfterFunc(s.ctx, func() {
		s.up.Close()
		if err := s.client.SetDeadline(time.Now()); err != nil {
			// No deadlines (an SSH channel): the blocked read ends only
			// with the connection, so the client is told why first.
			s.farewellNow()
			s.client.Close()
		}
	})
	defer stop()

	s.caughtUp = sync.NewCond(&s.reportMu)
	relayDone := make(chan struct{})
	go func() {
		defer close(relayDone)
		defer s.recordReports() // every statement is recorded before Serve returns
		s.relay()
	}()
	s.cancel(s.readClient())
	<-relayDone
	s.up.Close()

	cause := context.Cause(s.ctx)
	if errors.Is(cause, errClientDone) {
		return nil
	}
	s.client.SetDeadline(time.Time{})
	s.farewell(cause)
	s.log.Debug("pgproxy: session ended", "cause", cause)
	return cause
}

// farewell writes the FATAL error that tells the client why its session
// ends, once: the cause's own FATAL, or 57P01 naming why Serve's context
// ended (bastion's "certificate revoked: ..."). Nothing is written when
// the client ended it or has the server's own FATAL error.
func (s *session) farewell(cause error) {
	var ue *userError
	switch {
	case errors.Is(cause, errClientDone), errors.Is(cause, errUpstreamFatal):
		return
	case !errors.As(cause, &ue):
		msg := "bastion: terminating connection: the session ended"
		if cause != nil && !errors.Is(cause, context.Canceled) && !errors.Is(cause, context.DeadlineExceeded) {
			msg = "bastion: terminating connection: " + cause.Error()
		}
		ue = fatal(codeAdminShutdown, msg, cause)
	}
	if ue.severity != "FATAL" {
		return
	}
	s.goodbye.Do(func() {
		writeFatal(s.client, &userError{severity: ue.severity, code: ue.code, msg: s.masker.String(ue.msg), hint: ue.hint})
	})
}

// farewellNow is farewell while the relay may still be writing to the
// client: it waits for the relay's current message (mu), at most
// farewellWait, and gives up rather than corrupt the stream or block the
// close on a client that does not read.
func (s *session) farewellNow() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		deadline := time.Now().Add(farewellWait)
		for !s.mu.TryLock() {
			if time.Now().After(deadline) {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		defer s.mu.Unlock()
		s.flush()
		s.farewell(context.Cause(s.ctx))
	}()
	select {
	case <-done:
	case <-time.After(farewellWait):
	}
}

// farewellWait bounds farewellNow.
const farewellWait = 500 * time.Millisecond

// send encodes msg for the client. Caller holds mu.
func (s *session) send(msg pgproto3.BackendMessage) {
	b, err := msg.Encode(s.cbuf)
	if err != nil {
		// Only oversize fields fail to encode; drop the message rather
		// than the stream's framing.
		s.log.Error("pgproxy: encode message for client", "type", fmt.Sprintf("%T", msg), "err", err)
		return
	}
	s.cbuf = b
}

// flush writes what send queued. Caller holds mu. A write error ends the
// session. Once the session is ending nothing more is written: the client
// gets only the final error.
func (s *session) flush() {
	if len(s.cbuf) == 0 {
		return
	}
	if s.werr == nil && s.ctx.Err() == nil {
		if _, err := s.client.Write(s.cbuf); err != nil {
			s.werr = err
			s.cancel(errClientDone)
		}
	}
	if cap(s.cbuf) > 1<<20 {
		s.cbuf = nil
	} else {
		s.cbuf = s.cbuf[:0]
	}
}

// maxFIFOArr is the largest FIFO array kept for reuse: a burst of pipelined
// messages does not pin its size for the session.
const maxFIFOArr = 1024

// maxPending bounds the FIFO: a client that pipelines without reading is
// held back, as the server holds back a client that does not read.
const maxPending = 1 << 16

// queue appends entries to the FIFO and emits what the proxy itself
// answers, if it is now at the front. It waits while the FIFO is full.
func (s *session) queue(es ...*entry) {
	s.mu.Lock()
	for len(s.fifo) >= maxPending && s.ctx.Err() == nil {
		if s.room == nil {
			s.room = make(chan struct{})
		}
		room := s.room
		s.mu.Unlock()
		select {
		case <-room:
		case <-s.ctx.Done():
		}
		s.mu.Lock()
	}
	if len(s.fifo) == 0 {
		s.fifo = s.fifoArr[:0] // pop moved fifo along its array; start over
	}
	old := s.fifo
	s.fifo = append(s.fifo, es...)
	if len(s.fifo) > cap(old) { // append moved it to a new array
		clear(old) // pop clears entries in the new one only
		s.fifoArr = nil
		if cap(s.fifo) <= maxFIFOArr {
			s.fifoArr = s.fifo[:0]
		}
	}
	s.drain()
	s.flush()
	s.mu.Unlock()
}

// drain emits the proxy's own answers at the front of the FIFO. Caller
// holds mu.
func (s *session) drain() {
	for len(s.fifo) > 0 {
		e := s.fifo[0]
		switch e.kind {
		case kCopyEnd:
		case kRefusal:
			if !(e.dropIfErrored && s.batchErr) {
				s.send(e.refusal)
				s.batchErr = true
			}
		case kReady:
			s.send(&pgproto3.ReadyForQuery{TxStatus: s.txStatus})
			s.batchErr = false
		default:
			return
		}
		s.pop()
	}
}

// pop removes the FIFO's front entry. Caller holds mu.
func (s *session) pop() *entry {
	e := s.fifo[0]
	s.fifo[0] = nil
	s.fifo = s.fifo[1:]
	if s.room != nil && len(s.fifo) < maxPending/2 {
		close(s.room)
		s.room = nil
	}
	if len(s.fifo) == 0 {
		if s.idle != nil {
			close(s.idle)
			s.idle = nil
		}
	}
	return e
}

// notice sends a NoticeResponse now; it is the callback given to
// Hooks.Approve.
func (s *session) notice(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.send(&pgproto3.NoticeResponse{Severity: "NOTICE", SeverityUnlocalized: "NOTICE",
		Code: "00000", Message: s.masker.String(msg)})
	s.flush()
}

// cancelApproval stops a pending approval wait; it reports whether there
// was one.
func (s *session) cancelApproval() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.waiting == nil {
		return false
	}
	s.waiting()
	return true
}

// report is one finished statement on its way to Hooks.Statement; its
// text is masked when it is recorded, off the client's path.
type report struct {
	ev     StatementEvent
	errMsg string
}

// reportQueue bounds the statements the relay holds unrecorded while the
// server's output is still arriving.
const reportQueue = 256

// report hands a finished entry to Hooks.Statement. A refusal is recorded
// at once, after the statements that finished before it: the client sees
// it only after that. A statement that ran is recorded by the relay after
// its result is written to the client (see relay), and writeUp sends
// nothing upstream before it is recorded. An error ends the session. The
// relay calls report holding mu.
func (s *session) report(e *entry, refused bool) {
	if s.hooks.Statement == nil || !e.report {
		return
	}
	e.report = false // once: a refusal is reported when made, not again when popped
	r := report{ev: StatementEvent{
		Target: s.p.Target.Name, Text: e.info.text, Result: e.info.res,
		Approved: e.info.approved, Refused: refused, Start: e.start, Tag: e.tag, Rows: e.rows, Masked: e.masked,
		SQLState: e.code,
	}, errMsg: e.errMsg}
	if refused {
		// After every statement already finished: the relay may still
		// be recording them.
		s.waitRecorded()
		s.reportMu.Lock()
		s.queued++
		s.reportMu.Unlock()
		s.record(&r)
		return
	}
	s.reportMu.Lock()
	s.queued++
	s.reportMu.Unlock()
	r.ev.Duration = time.Since(e.start)
	s.reports = append(s.reports, r)
}

// recordReports records the statements the relay collected. Relay loop
// only, without mu.
func (s *session) recordReports() {
	for i := range s.reports {
		s.record(&s.reports[i])
		s.reports[i] = report{}
	}
	if cap(s.reports) > reportQueue {
		s.reports = nil
	} else {
		s.reports = s.reports[:0]
	}
}

// record calls Hooks.Statement for one report.
func (s *session) record(r *report) {
	r.ev.Text = s.masker.String(r.ev.Text)
	r.ev.Error = s.masker.String(r.errMsg)
	s.hookMu.Lock()
	err := s.hooks.Statement(r.ev)
	s.hookMu.Unlock()
	if err != nil {
		s.cancel(fatal(codeSystemError, "bastion: the statement could not be recorded; the session is closed", err))
	}
	s.reportMu.Lock()
	s.recorded++
	s.caughtUp.Broadcast()
	s.reportMu.Unlock()
}

// waitRecorded returns once every statement reported so far is recorded
// (or failed to be, which has ended the session).
func (s *session) waitRecorded() {
	s.reportMu.Lock()
	for s.recorded < s.queued {
		s.caughtUp.Wait()
	}
	s.reportMu.Unlock()
}
