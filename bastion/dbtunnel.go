package bastion

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bastion-dev/bastion/audit"
	"github.com/bastion-dev/bastion/config"
	"github.com/bastion-dev/bastion/identity"
	"github.com/bastion-dev/bastion/pgproxy"
	"github.com/bastion-dev/bastion/policy"
	"github.com/bastion-dev/bastion/recordings"
	"github.com/bastion-dev/bastion/shellpolicy"
	gliderssh "github.com/gliderlabs/ssh"
	"golang.org/x/crypto/ssh"
)

// DBTarget is a configured database with its resolved credentials.
type DBTarget struct {
	pgproxy.Target
	Roles []string // empty: every role
}

// ResolveDatabases reads each target's password (file or environment) and
// TLS settings. A target whose password cannot be read is an error: bastion
// would otherwise start a proxy that cannot log in.
func ResolveDatabases(dbs []config.Database) (map[string]DBTarget, error) {
	out := map[string]DBTarget{}
	for _, d := range dbs {
		t := DBTarget{Target: pgproxy.Target{Name: d.Name, Addr: d.Addr, Database: d.Database, User: d.User}, Roles: d.Roles}
		switch {
		case d.PasswordFile != "":
			b, err := os.ReadFile(d.PasswordFile)
			if err != nil {
				return nil, fmt.Errorf("database %s: %w", d.Name, err)
			}
			t.Password = strings.TrimRight(string(b), "\r\n")
		case d.PasswordEnv != "":
			t.Password = os.Getenv(d.PasswordEnv)
			if t.Password == "" {
				return nil, fmt.Errorf("database %s: environment variable %s is empty", d.Name, d.PasswordEnv)
			}
		}
		host, _, _ := net.SplitHostPort(d.Addr)
		switch d.TLS {
		case "require":
			t.TLS = &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12} // encrypt only, as libpq's sslmode=require
		case "verify-full":
			t.TLS = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
			if d.CAFile != "" {
				pem, err := os.ReadFile(d.CAFile)
				if err != nil {
					return nil, fmt.Errorf("database %s: %w", d.Name, err)
				}
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM(pem) {
					return nil, fmt.Errorf("database %s: no certificates in %s", d.Name, d.CAFile)
				}
				t.TLS.RootCAs = pool
			}
		}
		out[d.Name] = t
	}
	return out, nil
}

// checkSQLTargets refuses a policy whose sql.targets names a database
// target that is not configured: the operator believes those rules apply,
// and they would apply nowhere (a typo, a renamed target). Fail closed.
func checkSQLTargets(pol *shellpolicy.Policy, dbs map[string]DBTarget) error {
	names := make([]string, 0, len(dbs))
	for name := range dbs {
		names = append(names, name)
	}
	if err := pol.CheckSQLTargets(names); err != nil {
		return fmt.Errorf("policy: sql rules for an unknown database target:\n%w", err)
	}
	return nil
}

// directTCPIP handles `ssh -L` (RFC 4254 7.2). Only a destination that names
// a configured database target is served, through the Postgres proxy; every
// other destination is refused and audited.
func (s *Server) directTCPIP(_ *gliderssh.Server, conn *ssh.ServerConn, newChan ssh.NewChannel, ctx gliderssh.Context) {
	var d struct {
		DestAddr   string
		DestPort   uint32
		OriginAddr string
		OriginPort uint32
	}
	_ = ssh.Unmarshal(newChan.ExtraData(), &d)
	id, ok := IdentityFrom(ctx)
	src := hostOf(conn.RemoteAddr())
	dest := net.JoinHostPort(d.DestAddr, fmt.Sprint(d.DestPort))
	refuse := func(reason, msg string) {
		s.audit(audit.Event{Type: audit.ChannelRefused, Identity: provOf(id), Source: src,
			Detail: map[string]any{"channel": "direct-tcpip", "dest": quoteBounded(dest, 256), "reason": reason}})
		newChan.Reject(ssh.Prohibited, msg)
	}
	t, known := s.Databases[d.DestAddr]
	switch {
	case !ok:
		newChan.Reject(ssh.Prohibited, "not authenticated")
		return
	case !known:
		refuse("not a configured database target", fmt.Sprintf("bastion: forwarding to %s is not allowed: only configured database targets can be reached", dest))
		return
	case len(t.Roles) > 0 && !slices.Contains(t.Roles, id.Provenance.Role):
		refuse("role may not use this target", fmt.Sprintf("bastion: role %q may not use database %s", id.Provenance.Role, t.Name))
		return
	}
	if err := s.live.admit(id); err != nil {
		refuse(err.Error(), "bastion: "+err.Error())
		return
	}
	probe := &session{srv: s, ident: id}
	if err := s.acquire(probe); err != nil {
		refuse(err.Error(), "bastion: "+err.Error())
		return
	}
	defer s.release(probe)
	ch, reqs, err := newChan.Accept()
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	sctx, cancel := context.WithCancelCause(ctx)
	sess := &session{srv: s, id: newSessionID(), ch: ch, ident: id, source: src, ctx: sctx, cancel: cancel,
		env: map[string]string{}, kind: "db", command: "postgres tunnel to " + t.Name}
	if err := s.track(sess); err != nil {
		ch.Close()
		return
	}
	defer s.untrack(sess)
	defer cancel(errClientGone)
	s.serveTunnel(sess, t, chanConn{Channel: ch, local: tunnelAddr(t.Name), remote: tunnelAddr(src)}, "")
}

// serveTunnel proxies one Postgres connection (an -L channel, or a socket
// inside a session whose id is parent), recorded as an asciicast whose
// output is a readable statement log.
func (s *Server) serveTunnel(sess *session, t DBTarget, conn net.Conn, parent string) {
	h := recordings.Header{Width: 120, Height: 30, Timestamp: s.Clock().Unix(), Command: sess.command, Title: "bastion " + sess.command,
		Env: map[string]string{"TERM": "xterm-256color"},
		Bastion: recordings.Meta{SessionID: sess.id, Identity: sess.ident.Provenance, CertSerial: sess.ident.Serial,
			KeyID: sess.ident.KeyID, Principal: sess.ident.Principal, Source: sess.source, Target: t.Name}}
	sess.recStart = s.Clock()
	rec, err := recordings.Create(s.RecordingsDir, h, recordings.Options{Clock: s.Clock, Signer: s.RecordingKey})
	if err != nil {
		s.Logger.Error("recording unavailable", "session", sess.id, "err", err)
		conn.Close() // fail closed: an unrecorded tunnel never opens
		return
	}
	sess.rec = rec
	// The store lists the tunnel with the shell sessions; its statements
	// are in the recording and the audit log, not in the command index.
	if err := sess.indexStart(h, sess.recStart); err != nil {
		rec.Close(ExitRecordingUnavailable)
		conn.Close()
		return
	}
	start := map[string]any{"kind": "db", "target": t.Name, "principal": sess.ident.Principal}
	if parent != "" {
		start["parent"] = parent
	}
	if err := s.audit(audit.Event{Type: audit.SessionStart, Identity: provOf(sess.ident), Session: sess.id, Source: sess.source, Detail: start}); err != nil {
		rec.Close(ExitRecordingUnavailable)
		sess.indexEnd(ExitRecordingUnavailable)
		conn.Close()
		return
	}
	tl := newTunnelLog(s, sess, rec, t.Name)
	// The first line proves the recording takes writes before any
	// statement can run; it never serves a tunnel it cannot record.
	if err := tl.line("\x1b[2m-- %s: postgres tunnel to %s as %s\x1b[0m\r\n", sess.id, t.Name, sess.ident.Provenance); err != nil {
		s.Logger.Error("recording unavailable", "session", sess.id, "err", err)
		rec.Close(ExitRecordingUnavailable)
		sess.indexEnd(ExitRecordingUnavailable)
		conn.Close()
		s.audit(audit.Event{Type: audit.SessionEnd, Identity: provOf(sess.ident), Session: sess.id, Source: sess.source,
			Detail: map[string]any{"exit": ExitRecordingUnavailable, "target": t.Name, "cause": errRecordingFailed.Error()}})
		return
	}
	// The target's own SQL rules (sql.targets.<name> in the policy file)
	// over the rules for every target, compiled once when the policy loaded.
	classifier := s.Policy.SQLClassifier(t.Name)
	maxRows := s.Policy.SQLMaxRows()
	if maxRows == 0 {
		maxRows = -1 // sql.max_rows: 0 asks for no estimate; pgproxy's 0 is its default
	}
	p := &pgproxy.Proxy{Target: t.Target, Classifier: classifier, Masker: s.Masker, Logger: s.Logger, MaxRows: maxRows, Hooks: pgproxy.Hooks{
		// Every statement checks the certificate, as every exec and shell
		// line does: a stale revocation list or an expired certificate
		// refuses it even before the connection is closed.
		Admit: func() error { return s.live.admit(sess.ident) },
		Approve: func(ctx context.Context, stmt string, res policy.Result, notice func(string)) (bool, string) {
			out, _ := sess.hold(ctx, stmt, s.Masker.String(stmt), res, sqlParts(s.Masker, classifier.Classify(stmt)), func(msg string) {
				// The waiting line (first line of msg) becomes a NoticeResponse.
				line, _, _ := strings.Cut(msg, "\n")
				notice(strings.TrimSpace(line))
			})
			if out == holdRun {
				return true, ""
			}
			return false, "not approved"
		},
		Statement: tl.statement,
	}}
	err = p.Serve(sess.ctx, conn)
	if serr := tl.finish(); serr != nil && err == nil {
		err = serr
		sess.cancel(errRecordingFailed)
	}
	code := 0
	if err != nil {
		code = 1
		if errors.Is(context.Cause(sess.ctx), errRecordingFailed) {
			code = ExitRecordingUnavailable
		}
	}
	rec.Close(code)
	sess.indexEnd(code)
	end := map[string]any{"exit": code, "target": t.Name}
	if err != nil {
		end["cause"] = err.Error()
	}
	s.audit(audit.Event{Type: audit.SessionEnd, Identity: provOf(sess.ident), Session: sess.id, Source: sess.source, Detail: end})
}

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
	// Shared by the statements' events, which only read them.
	prov       *identity.Provenance
	targetName any
	async      asyncSink // nil: every event waits for its fsync

	mu       sync.Mutex
	buf      []byte         // the log line being written; guarded by mu
	inflight []<-chan error // outcomes of enqueued events, oldest first; guarded by mu
}

func newTunnelLog(s *Server, sess *session, rec *recordings.Writer, target string) *tunnelLog {
	async, _ := s.Audit.(asyncSink)
	return &tunnelLog{srv: s, sess: sess, rec: rec, target: target, prov: provOf(sess.ident), targetName: target, async: async}
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
	detail := map[string]any{"target": l.targetName, "statement": ev.Text, "duration_ms": ev.Duration.Milliseconds(), "rows": ev.Rows}
	if ev.Error != "" {
		detail["error"] = ev.SQLState + " " + ev.Error
	}
	if ev.Approved {
		detail["approved"] = true
	}
	if ev.Masked > 0 {
		detail["masked"] = ev.Masked
	}
	if recErr != nil {
		detail["recording_error"] = recErr.Error()
	}
	// After a failure the statement ran (or was refused) all the same: its
	// event is still written, and waited for, so the audit log keeps who
	// ran what; then the tunnel ends.
	e := audit.Event{Time: l.srv.Clock(), Type: audit.Query, Identity: l.prov, Session: l.sess.id, Source: l.sess.source,
		Decision: ev.Result.Decision.String(), Rule: ev.Result.Rule, Detail: detail}
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

// asyncSink is an audit sink that can append without waiting for the
// fsync (*audit.Log).
type asyncSink interface {
	Enqueue(audit.Event) <-chan error
}

// chanConn presents an SSH channel as a net.Conn for the proxy. Channels
// have no deadlines: SetDeadline reports that, and the proxy then closes
// the channel instead of interrupting a read.
type chanConn struct {
	ssh.Channel
	local, remote net.Addr
}

var errNoDeadlines = errors.New("ssh channels have no deadlines")

func (c chanConn) LocalAddr() net.Addr              { return c.local }
func (c chanConn) RemoteAddr() net.Addr             { return c.remote }
func (c chanConn) SetDeadline(time.Time) error      { return errNoDeadlines }
func (c chanConn) SetReadDeadline(time.Time) error  { return errNoDeadlines }
func (c chanConn) SetWriteDeadline(time.Time) error { return errNoDeadlines }

type tunnelAddr string

func (a tunnelAddr) Network() string { return "ssh" }
func (a tunnelAddr) String() string  { return string(a) }
