package pgproxy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	pg_query "github.com/pganalyze/pg_query_go/v6"
	pgparser "github.com/pganalyze/pg_query_go/v6/parser"

	"github.com/bastion-dev/bastion/policy"
)

const (
	// batchBufferSize bounds an extended-protocol batch held back before
	// its Sync. Holding the batch lets a refusal drop it whole, like the
	// implicit transaction the server would roll back; a larger batch is
	// written as it comes.
	batchBufferSize = 1 << 20
	// copyBufferSize is how much COPY FROM STDIN data is gathered per
	// upstream write.
	copyBufferSize = 64 << 10
)

// readClient is the client loop. It returns why the session ends.
func (s *session) readClient() error {
	for {
		msg, err := s.be.Receive()
		if err != nil {
			if s.ctx.Err() != nil {
				return context.Cause(s.ctx)
			}
			if s.rd.err != nil {
				// Like the server, answer what came before the end; a
				// batch without its Sync is dropped (the server would roll
				// it back).
				s.waitIdle()
				return errClientDone
			}
			var tooLong *pgproto3.ExceededMaxBodyLenErr
			if errors.As(err, &tooLong) {
				return fatal(codeProtocolViolation, fmt.Sprintf("bastion: message longer than %d MiB", maxMessageLen>>20), err)
			}
			return fatal(codeProtocolViolation, "bastion: invalid message from the client", err)
		}
		if err := s.handle(msg); err != nil {
			return err
		}
	}
}

// handle acts on one client message. While discarding (after a refused
// Parse) everything but Sync and Terminate is dropped, as the server does
// after an error in an extended-protocol batch.
func (s *session) handle(msg pgproto3.FrontendMessage) error {
	switch msg.(type) {
	case *pgproto3.Sync, *pgproto3.Terminate:
	default:
		if s.discard {
			return nil
		}
	}
	switch m := msg.(type) {
	case *pgproto3.Query:
		return s.query(m.String)
	case *pgproto3.Parse:
		return s.parse(m)
	case *pgproto3.Bind:
		info, ok := s.stmts[m.PreparedStatement]
		if !ok {
			// SQL PREPARE shares the server's namespace with Parse; bind
			// only what this connection's Parse classified.
			res := policy.Result{Decision: policy.Deny, Rule: "sql-unknown-statement",
				Reason: fmt.Sprintf("prepared statement %q was not prepared with Parse on this connection", m.PreparedStatement),
				Hint:   "Send Parse for the statement first; EXECUTE runs SQL-prepared statements."}
			// The server's own answer to a name it does not know (26000),
			// which drivers branch on; bastion's reason is the hint.
			ue := &userError{severity: "ERROR", code: codeInvalidStatementName,
				msg:  fmt.Sprintf("prepared statement %q does not exist", m.PreparedStatement),
				hint: "bastion: " + res.Reason + ". " + res.Hint}
			return s.refuseParse(stmtInfo{text: "<bind " + m.PreparedStatement + ">", res: res}, ue)
		}
		if admit := s.hooks.Admit; admit != nil {
			// A prepared statement runs again at each Bind: the
			// certificate is checked again too.
			if err := admit(); err != nil {
				info.res = policy.Result{Decision: policy.Deny, Rule: RuleCertificate, Reason: err.Error()}
				return s.refuseParse(info, s.refusalFor(info.res))
			}
		}
		if info.est != nil && !info.approved && info.res.Decision == policy.Allow {
			ps := &params{values: m.Parameters, formats: m.ParameterFormatCodes, oids: info.oids}
			if res, ok := s.estimate(info.est, ps, info.flags&flagPath != 0); ok {
				held := info
				held.res = res
				ue, err := s.decide(&held)
				if err != nil {
					return err
				}
				if ue != nil {
					return s.refuseParse(held, ue)
				}
				info = held // this portal only: the next Bind is estimated again
			}
		}
		s.applyFlags(info.flags, info.text)
		s.portals[m.DestinationPortal] = info
		s.hasDescribed = false
		return s.forward(m, &entry{kind: kBind})
	case *pgproto3.Describe:
		info := s.portals[m.Name]
		if m.ObjectType == 'S' {
			info = s.stmts[m.Name]
		}
		err := s.forward(m, &entry{kind: kDescribe, info: info})
		s.hasDescribed, s.describedPortal = m.ObjectType == 'P', m.Name
		return err
	case *pgproto3.Execute:
		// The relay needs the portal's row description to apply column
		// rules; clients that described the statement earlier (or not at
		// all) get a Describe added, whose answer they do not see.
		if !s.hasDescribed || s.describedPortal != m.Portal {
			d := &pgproto3.Describe{ObjectType: 'P', Name: m.Portal}
			if err := s.forward(d, &entry{kind: kDescribe, hidden: true, info: s.portals[m.Portal]}); err != nil {
				return err
			}
		}
		s.hasDescribed = false
		return s.forward(m, &entry{kind: kExecute, report: true, info: s.portals[m.Portal], start: time.Now()})
	case *pgproto3.Close:
		if m.ObjectType == 'S' {
			delete(s.stmts, m.Name)
		} else {
			delete(s.portals, m.Name)
		}
		s.hasDescribed = false
		return s.forward(m, &entry{kind: kClose})
	case *pgproto3.Sync:
		return s.sync()
	case *pgproto3.Flush:
		s.encode(m)
		return s.writeUp()
	case *pgproto3.CopyData:
		s.encode(m)
		if len(s.ubuf) >= copyBufferSize {
			return s.writeUp()
		}
		return nil
	case *pgproto3.CopyDone, *pgproto3.CopyFail:
		if err := s.forward(m, &entry{kind: kCopyEnd}); err != nil {
			return err
		}
		return s.writeUp()
	case *pgproto3.FunctionCall:
		// The fast-path interface calls a function by OID with no SQL to
		// classify (lo_export writes server files): refuse it.
		res := policy.Result{Decision: policy.Deny, Rule: "sql-function-call",
			Reason: "the fast-path function call interface is not allowed", Hint: "Call the function with SELECT."}
		return s.refuseQuery(stmtInfo{text: fmt.Sprintf("<function call oid %d>", m.Function), res: res}, s.refusalFor(res))
	case *pgproto3.Terminate:
		s.ubuf, s.upending = s.ubuf[:0], nil
		s.waitIdle()
		s.terminated.Store(true)
		s.encode(m)
		s.writeUp()
		return errClientDone
	default:
		return fatal(codeProtocolViolation, "bastion: unexpected message from the client", fmt.Errorf("%T", msg))
	}
}

// waitIdle waits until every answer the client is owed has been relayed,
// or the session ends.
func (s *session) waitIdle() {
	for {
		s.mu.Lock()
		if len(s.fifo) == 0 {
			s.mu.Unlock()
			return
		}
		if s.idle == nil {
			s.idle = make(chan struct{})
		}
		idle := s.idle
		s.mu.Unlock()
		select {
		case <-idle:
		case <-s.ctx.Done():
			return
		}
	}
}

// query handles a simple Query: the whole string is classified, its
// strictest statement decides.
func (s *session) query(sql string) error {
	if err := s.writeUp(); err != nil {
		return err
	}
	info := stmtInfo{text: sql, res: s.classifier.Verdict(sql)}
	s.inspect(&info)
	if info.est != nil {
		if res, ok := s.estimate(info.est, nil, info.flags&flagPath != 0); ok {
			info.res = res
		}
		info.est = nil
	}
	ue, err := s.decide(&info)
	if err != nil {
		return err
	}
	if ue != nil {
		return s.refuseQuery(info, ue)
	}
	s.applyFlags(info.flags, sql)
	s.qmsg.String = sql // forward encodes it; nothing keeps it
	if err := s.forward(&s.qmsg, &entry{kind: kQuery, report: true, info: info, start: time.Now()}); err != nil {
		return err
	}
	return s.writeUp()
}

// refuseQuery answers a Query (or FunctionCall) with an error and
// ReadyForQuery, queued after the answers to what came before it.
func (s *session) refuseQuery(info stmtInfo, ue *userError) error {
	e := s.refusalEntry(info, ue)
	s.report(e, true)
	s.queue(e, &entry{kind: kReady})
	return s.ctx.Err()
}

// parse classifies an extended-protocol statement where it enters the
// server.
func (s *session) parse(m *pgproto3.Parse) error {
	info := stmtInfo{text: m.Query, res: s.classifier.Verdict(m.Query), oids: m.ParameterOIDs}
	s.inspect(&info)
	ue, err := s.decide(&info)
	if err != nil {
		return err
	}
	if ue != nil {
		return s.refuseParse(info, ue)
	}
	if info.approved {
		info.est = nil // the approval covers the prepared statement
	}
	if len(info.oids) > 0 {
		info.oids = append([]uint32(nil), info.oids...) // the message is reused
	}
	s.stmts[m.Name] = info
	return s.forward(m, &entry{kind: kParse})
}

// refuseParse answers a refused Parse like the server answers a failed one:
// an error, then nothing until Sync, then ReadyForQuery. The part of the
// batch not yet written upstream is dropped, so the batch fails whole. If
// part of it went upstream already (the client sent Flush), the client's
// Sync is forwarded to end it and the error is placed before its answer.
func (s *session) refuseParse(info stmtInfo, ue *userError) error {
	s.ubuf, s.upending = s.ubuf[:0], nil
	s.discard = true
	e := s.refusalEntry(info, ue)
	s.report(e, true)
	if s.sentBatch {
		e.dropIfErrored = true
		s.refusal = e
		return s.ctx.Err()
	}
	s.queue(e)
	return s.ctx.Err()
}

// sync ends an extended-protocol batch.
func (s *session) sync() error {
	defer func() {
		s.discard, s.inBatch, s.sentBatch, s.hasDescribed, s.refusal = false, false, false, false, nil
	}()
	if s.discard && s.refusal == nil {
		// Nothing of this batch reached the server.
		s.queue(&entry{kind: kReady})
		return s.ctx.Err()
	}
	if s.refusal != nil {
		s.upending = append(s.upending, s.refusal)
	}
	if err := s.forward(&pgproto3.Sync{}, &entry{kind: kSync}); err != nil {
		return err
	}
	return s.writeUp()
}

// decide applies the policy verdict in info.res: nil to forward, or the
// error to refuse with. It asks Hooks.Approve for an approve verdict. The
// error return is the session's end.
func (s *session) decide(info *stmtInfo) (*userError, error) {
	if admit := s.hooks.Admit; admit != nil {
		if err := admit(); err != nil {
			info.res = policy.Result{Decision: policy.Deny, Rule: RuleCertificate, Reason: err.Error()}
		}
	}
	switch info.res.Decision {
	case policy.Allow:
		return nil, nil
	case policy.Approve:
	default:
		if info.res.Rule == ruleParseError {
			if ue := s.syntaxError(info.text); ue != nil {
				return ue, nil
			}
		}
		return s.refusalFor(info.res), nil
	}
	approve := s.hooks.Approve
	if approve == nil {
		return &userError{severity: "ERROR", code: codeInsufficientPrivilege,
			msg: "bastion: approval required: " + describe(info.res), hint: info.res.Hint}, nil
	}
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	s.mu.Lock()
	s.waiting = cancel
	s.mu.Unlock()
	ok, reason := approve(ctx, info.text, info.res, s.notice)
	s.mu.Lock()
	s.waiting = nil
	s.mu.Unlock()
	switch {
	case s.ctx.Err() != nil:
		return nil, context.Cause(s.ctx)
	case ctx.Err() != nil:
		// The client's CancelRequest stopped the wait.
		return &userError{severity: "ERROR", code: codeQueryCanceled,
			msg: "bastion: canceling statement due to user request while it waited for approval"}, nil
	case ok:
		info.approved = true
		return nil, nil
	}
	if reason == "" {
		reason = "no reason given"
	}
	msg := "bastion: not approved: " + reason
	if info.res.Rule != "" {
		msg += " [rule " + info.res.Rule + "]"
	}
	return &userError{severity: "ERROR", code: codeInsufficientPrivilege, msg: msg, hint: info.res.Hint}, nil
}

// RuleCertificate is the rule of a statement Hooks.Admit refused.
const RuleCertificate = "certificate"

// ruleParseError is sqlpolicy's rule for a statement its parser (the
// server's own) rejects.
const ruleParseError = "sql-parse-error"

// syntaxError is the server's own answer to a statement its parser
// rejects, as drivers and ORMs branch on it: SQLSTATE 42601 with the
// parser's message and position (PostgreSQL sends the same, the parser
// being the same), masked like every error. The statement was not sent;
// nil when text parses (the rule came from elsewhere).
func (s *session) syntaxError(text string) *userError {
	_, err := pg_query.Parse(text)
	var pe *pgparser.Error
	if !errors.As(err, &pe) {
		return nil
	}
	return &userError{severity: "ERROR", code: codeSyntaxError, msg: s.masker.String(pe.Message), position: int32(pe.Cursorpos)}
}

func (s *session) refusalFor(res policy.Result) *userError {
	return &userError{severity: "ERROR", code: codeInsufficientPrivilege,
		msg: "bastion: denied: " + describe(res), hint: res.Hint}
}

// describe is "<reason> [rule <id>]".
func describe(res policy.Result) string {
	r := res.Reason
	if r == "" {
		r = res.Decision.String()
	}
	if res.Rule != "" {
		r += " [rule " + res.Rule + "]"
	}
	return r
}

func (s *session) refusalEntry(info stmtInfo, ue *userError) *entry {
	resp := ue.response()
	resp.Message, resp.Hint = s.masker.String(resp.Message), s.masker.String(resp.Hint)
	return &entry{kind: kRefusal, refusal: resp, report: true, info: info,
		start: time.Now(), code: resp.Code, errMsg: resp.Message}
}

// forward queues msg for upstream with the entry its answer pops.
func (s *session) forward(msg pgproto3.FrontendMessage, e *entry) error {
	s.encode(msg)
	s.upending = append(s.upending, e)
	if len(s.ubuf) >= batchBufferSize {
		return s.writeUp()
	}
	return nil
}

func (s *session) encode(msg pgproto3.FrontendMessage) {
	b, err := msg.Encode(s.ubuf)
	if err != nil {
		// Decoded messages re-encode; only impossible sizes fail.
		s.log.Error("pgproxy: encode message for upstream", "type", fmt.Sprintf("%T", msg), "err", err)
		return
	}
	s.ubuf = b
	switch msg.(type) {
	case *pgproto3.Parse, *pgproto3.Bind, *pgproto3.Describe, *pgproto3.Execute, *pgproto3.Close:
		s.inBatch = true
	case *pgproto3.Sync:
		s.inBatch = false
	}
}

// writeUp writes the queued messages upstream, their FIFO entries first so
// the relay can match the answers.
func (s *session) writeUp() error {
	if len(s.ubuf) == 0 {
		return nil
	}
	// Fail closed: no statement runs while an earlier one may yet turn
	// out unrecordable (its failure ends the session, checked below).
	s.waitRecorded()
	if s.ctx.Err() != nil {
		return context.Cause(s.ctx)
	}
	s.queue(s.upending...)
	s.upending = s.upending[:0]
	if s.inBatch {
		s.sentBatch = true
	}
	_, err := s.up.Write(s.ubuf)
	if cap(s.ubuf) > 4*batchBufferSize {
		s.ubuf = nil
	} else {
		s.ubuf = s.ubuf[:0]
	}
	if err != nil {
		if s.ctx.Err() != nil {
			return context.Cause(s.ctx)
		}
		return fatal(codeConnectionFailure, "bastion: lost the connection to the database", err)
	}
	return nil
}

// inspect reads what a statement's text tells beyond its verdict: the
// flags its parse tree confirms (see treeFlags) and, for an allowed text
// that may update or delete, what a planner estimate explains. Texts
// without a flag word are not parsed.
func (s *session) inspect(info *stmtInfo) {
	f := scanText(info.text)
	estimate := f&flagModify != 0 && info.res.Decision == policy.Allow && s.p.estimating()
	if f&(flagPath|flagTemp|flagSchema) == 0 && !estimate {
		info.flags = f
		return
	}
	tree, err := pg_query.Parse(info.text)
	if err != nil {
		info.flags = f // the classifier did not allow it
		return
	}
	info.flags = treeFlags(tree, f)
	if estimate {
		if info.est, err = planEstimate(info.text, tree); err != nil {
			s.log.Info("pgproxy: no planner estimate; the static verdict stands", "err", err)
		}
	}
}

// applyFlags records what a statement going upstream may change.
func (s *session) applyFlags(f textFlags, sql string) {
	if f&flagPath != 0 {
		s.pathChanged.Store(true)
	}
	if f&flagTemp != 0 {
		s.tempSeen.Store(true)
	}
	if f&flagSchema != 0 {
		s.schemaDirty.Store(true)
		s.cat.invalidate()
	}
	if f&flagNamed != 0 {
		s.noteNamed(sql)
	}
}
