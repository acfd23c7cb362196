package pgproxy

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// clientFlushSize is how much relayed output is gathered before a write
// while more upstream input is already buffered.
const clientFlushSize = 32 << 10

// errUpstreamFatal ends a session after the server's own FATAL error was
// relayed: the client has been told.
var errUpstreamFatal = errors.New("the server ended the connection with a fatal error")

// relay is the relay loop: it reads upstream messages, masks them, pops
// the FIFO and writes to the client.
func (s *session) relay() {
	for {
		msg, err := s.fe.Receive()
		if err != nil {
			if s.ctx.Err() != nil || s.terminated.Load() {
				return
			}
			s.mu.Lock()
			relayed := s.fatalRelayed
			s.flush()
			s.mu.Unlock()
			if relayed {
				s.cancel(errUpstreamFatal)
			} else {
				s.cancel(fatal(codeConnectionFailure, "bastion: lost the connection to the database", err))
			}
			return
		}
		// Outside mu: these may wait for the catalog.
		switch m := msg.(type) {
		case *pgproto3.RowDescription:
			s.cols = s.describeColumns(m, s.describedStatement(), s.cols[:0])
		case *pgproto3.CopyOutResponse:
			s.copyOut = s.describeCopy(m, s.describedStatement())
		}
		s.mu.Lock()
		s.relayMessage(msg)
		s.drain()
		// Gather what the server already sent into one write, then
		// record the statements it finished while the client reads it.
		flushed := s.fe.ReadBufferLen() == 0 || len(s.cbuf) >= clientFlushSize
		if flushed {
			s.flush()
		}
		s.mu.Unlock()
		if flushed || len(s.reports) >= reportQueue {
			s.recordReports()
		}
		if s.ctx.Err() != nil {
			return
		}
	}
}

// relayMessage handles one upstream message. Caller holds mu.
func (s *session) relayMessage(msg pgproto3.BackendMessage) {
	switch m := msg.(type) {
	case *pgproto3.DataRow:
		s.countMasked(s.maskRow(m))
	case *pgproto3.CopyData:
		// COPY TO STDOUT sends one row per message: masked fields first
		// (see copy.go), then the masker.
		v := m.Data
		if s.copyOut != nil {
			m.Data = s.copyOut.maskCopyRow(m.Data)
		}
		m.Data = s.masker.Bytes(m.Data)
		if changed(v, m.Data) {
			s.countMasked(1)
		}
	case *pgproto3.CopyDone:
		s.copyOut = nil
	case *pgproto3.ParseComplete:
		s.answered(kParse)
	case *pgproto3.BindComplete:
		s.answered(kBind)
	case *pgproto3.CloseComplete:
		s.answered(kClose)
	case *pgproto3.RowDescription:
		s.maskNames(m)
		if s.describeAnswered() {
			return
		}
	case *pgproto3.NoData:
		s.cols = s.cols[:0]
		if s.describeAnswered() {
			return
		}
	case *pgproto3.CommandComplete:
		if e := s.head(); e != nil && (e.kind == kQuery || e.kind == kExecute) {
			e.tag = string(m.CommandTag)
			e.rows += pgconn.NewCommandTag(e.tag).RowsAffected()
			if e.kind == kExecute {
				s.done()
			} else {
				e.stmtIdx++
			}
		}
	case *pgproto3.EmptyQueryResponse, *pgproto3.PortalSuspended:
		if e := s.head(); e != nil && e.kind == kExecute {
			s.done()
		}
	case *pgproto3.CopyInResponse:
		if e := s.head(); e != nil && (e.kind == kQuery || e.kind == kExecute) {
			e.copyIn = true
		}
	case *pgproto3.ErrorResponse:
		s.copyOut = nil
		s.maskNotice(m)
		s.failed(m)
		if m.SeverityUnlocalized == "FATAL" || m.SeverityUnlocalized == "PANIC" ||
			m.Severity == "FATAL" || m.Severity == "PANIC" {
			s.fatalRelayed = true
		}
	case *pgproto3.ReadyForQuery:
		s.ready()
		s.txStatus = m.TxStatus
		s.batchErr = false
		if m.TxStatus == 'I' && s.schemaDirty.Load() {
			// What the transaction changed is committed (or gone): the
			// side connections see what the client sees again.
			s.schemaDirty.Store(false)
			s.cat.invalidate()
		}
	case *pgproto3.NoticeResponse:
		s.maskNotice((*pgproto3.ErrorResponse)(m))
	case *pgproto3.NotificationResponse:
		m.Payload = s.masker.String(m.Payload)
	case *pgproto3.ParameterDescription, *pgproto3.ParameterStatus, *pgproto3.CopyOutResponse,
		*pgproto3.FunctionCallResponse:
	default:
		// BackendKeyData, authentication and protocol negotiation belong
		// to the upstream login, never to the client; CopyBothResponse
		// needs a replication connection, which is not allowed.
		s.log.Warn("pgproxy: dropped unexpected message from the server", "type", fmt.Sprintf("%T", msg))
		return
	}
	s.send(msg)
}

// describedStatement names the statement whose RowDescription (or
// CopyOutResponse) comes next: the Query at the FIFO's front (the
// statements it finished so far tell which of its statements), or the
// Describe's statement or portal, or the Execute's.
func (s *session) describedStatement() stmtRef {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.head()
	switch {
	case e == nil:
		return stmtRef{}
	case e.kind == kQuery:
		return stmtRef{text: e.info.text, index: e.stmtIdx, ok: true}
	case e.kind == kDescribe, e.kind == kExecute:
		return stmtRef{text: e.info.text, ok: e.info.text != ""}
	}
	return stmtRef{}
}

// countMasked adds masked values to the running statement's count.
// Caller holds mu.
func (s *session) countMasked(n int) {
	if e := s.head(); n > 0 && e != nil && (e.kind == kQuery || e.kind == kExecute) {
		e.masked += n
	}
}

func (s *session) head() *entry {
	if len(s.fifo) == 0 {
		return nil
	}
	return s.fifo[0]
}

// answered pops the front entry if the message answers it. A mismatch
// means the proxy and the server disagree about the conversation; it is
// logged, and the message relayed all the same.
func (s *session) answered(k entryKind) {
	if e := s.head(); e != nil && e.kind == k {
		s.done()
		return
	}
	s.log.Warn("pgproxy: answer does not match the pending message", "want", k, "fifo", len(s.fifo))
}

// describeAnswered pops a Describe answered by RowDescription or NoData and
// reports whether the proxy added it (its answer is not relayed). A
// RowDescription that answers a Query is not a Describe's.
func (s *session) describeAnswered() (hidden bool) {
	e := s.head()
	if e == nil || e.kind != kDescribe {
		return false
	}
	s.done()
	return e.hidden
}

// done pops the front entry, which the server has finished. After a
// COPY FROM STDIN the Syncs the client sent right behind the statement
// were ignored by the server (it ignores Sync in copy-in mode), so they
// get no answer and go too.
//
// A finished statement is recorded before anything more goes upstream
// (writeUp waits for it): if the recording fails, nothing the client sends
// after it runs.
func (s *session) done() {
	e := s.pop()
	if e.report {
		s.report(e, false)
	}
	if e.copyIn {
		for len(s.fifo) > 0 && s.fifo[0].kind == kSync {
			s.pop()
		}
	}
}

// failed handles an ErrorResponse. In a simple Query it belongs to the
// Query. In a batch the server skips to the next Sync: the messages before
// it get no answer and are popped, a proxy refusal among them is dropped
// (the client gets the server's error instead).
func (s *session) failed(m *pgproto3.ErrorResponse) {
	s.batchErr = true
	first := true
	for len(s.fifo) > 0 {
		e := s.fifo[0]
		switch e.kind {
		case kQuery:
			if e.code == "" {
				e.code, e.errMsg = m.Code, m.Message
			}
			return
		case kSync, kReady:
			return
		case kRefusal:
			if !e.dropIfErrored {
				return
			}
			s.pop()
			continue
		case kExecute:
			if first {
				e.code, e.errMsg = m.Code, m.Message
			} else {
				e.code, e.errMsg = m.Code, "not executed: an earlier statement in the batch failed"
			}
			first = false
		}
		s.done()
	}
}

// ready handles ReadyForQuery: it answers the first pending Sync or Query.
func (s *session) ready() {
	for i, e := range s.fifo {
		if e.kind != kSync && e.kind != kQuery {
			continue
		}
		if i > 0 {
			s.log.Warn("pgproxy: ReadyForQuery skipped pending messages", "n", i)
		}
		for range i {
			s.done()
		}
		s.done()
		return
	}
	s.log.Warn("pgproxy: ReadyForQuery with no pending Sync or Query")
}
