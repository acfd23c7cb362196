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
	"strings"
	"sync"
	"time"

	"github.com/bastion-dev/bastion/audit"
	"github.com/bastion-dev/bastion/config"
	"github.com/bastion-dev/bastion/pgproxy"
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
		s.audit(connEvent(audit.ChannelRefused, id, src, channelRefused{Channel: "direct-tcpip", Dest: quoteBounded(dest, 256), Reason: reason}))
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
// output is a readable statement log. The store lists the tunnel with the
// shell sessions; its statements are in the recording and the audit log,
// not in the command index.
func (s *Server) serveTunnel(sess *session, t DBTarget, conn net.Conn, parent string) {
	p := s.db.proxy(s, t)
	owner := sess.ident.Provenance.String()
	if err := s.db.acquire(owner, s.cfg.Limits.MaxDBConnectionsPerIdentity); err != nil {
		// Over the limit: the server's own answer after the startup
		// exchange, never a reset (a pool retries on 53300). A
		// CancelRequest on this connection is still served.
		s.audit(sess.event(audit.ChannelRefused, channelRefused{Channel: "postgres", Target: t.Name, Reason: err.Error()}))
		p.ServeConn(sess.ctx, conn, pgproxy.Conn{Owner: owner, Refuse: &pgproxy.Refusal{Code: pgproxy.CodeTooManyConnections,
			Message: "bastion: " + err.Error(), Hint: "close idle connections or lower the pool size, then retry"}})
		return
	}
	defer s.db.release(owner)
	h := recordings.Header{Width: 120, Height: 30, Timestamp: s.Clock().Unix(), Command: sess.command, Title: "bastion " + sess.command,
		Env: map[string]string{"TERM": "xterm-256color"}, Bastion: sess.meta(t.Name)}
	life, err := sess.open(h, sessionStarted{Kind: "db", Target: t.Name, Principal: sess.ident.Principal, Serial: sess.ident.Serial, Parent: parent})
	if err != nil {
		conn.Close() // fail closed: an unrecorded tunnel never opens
		return
	}
	tl := newTunnelLog(s, sess, sess.rec, t.Name)
	// The first line proves the recording takes writes before any
	// statement can run; it never serves a tunnel it cannot record.
	if err := tl.line("\x1b[2m-- %s: postgres tunnel to %s as %s\x1b[0m\r\n", sess.id, t.Name, sess.ident.Provenance); err != nil {
		s.Logger.Error("recording unavailable", "session", sess.id, "err", err)
		conn.Close()
		life.close(ExitRecordingUnavailable, errRecordingFailed)
		return
	}
	// The agent's own SQL rules: the target's (sql.targets.<name>) over
	// those for every target, each scoped by principal and role.
	classifier := s.Policy.SQLClassifierFor(shellpolicy.Input{Principal: sess.ident.Principal, Role: sess.ident.Provenance.Role, Target: t.Name})
	err = p.ServeConn(sess.ctx, conn, pgproxy.Conn{Owner: owner, Classifier: classifier, Hooks: sess.sqlGate(t, classifier, tl)})
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
	life.close(code, err)
}

// dbConns are the server's database connections: one proxy per target,
// shared by every connection to it (a CancelRequest comes on a connection
// of its own, and must find the session it cancels), and the count of
// each identity's connections against limits.max_db_connections_per_identity
// (a service's pool is not interactive sessions: these do not count
// against max_sessions_per_identity).
type dbConns struct {
	mu      sync.Mutex
	proxies map[string]*pgproxy.Proxy // by target name; guarded by mu
	perSubj map[string]int            // guarded by mu
}

// proxy is target t's proxy, made on first use.
func (d *dbConns) proxy(s *Server, t DBTarget) *pgproxy.Proxy {
	d.mu.Lock()
	defer d.mu.Unlock()
	if p := d.proxies[t.Name]; p != nil {
		return p
	}
	// The target's own SQL rules (sql.targets.<name> in the policy file)
	// over the rules for every target, compiled once when the policy loaded.
	maxRows := s.Policy.SQLMaxRows()
	if maxRows == 0 {
		maxRows = -1 // sql.max_rows: 0 asks for no estimate; pgproxy's 0 is its default
	}
	p := &pgproxy.Proxy{Target: t.Target, Classifier: s.Policy.SQLClassifier(t.Name), Masker: s.Masker, Logger: s.Logger, MaxRows: maxRows}
	if d.proxies == nil {
		d.proxies = map[string]*pgproxy.Proxy{}
	}
	d.proxies[t.Name] = p
	return p
}

// acquire counts a connection of subj against limit; release undoes it.
func (d *dbConns) acquire(subj string, limit int) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if n := d.perSubj[subj]; n >= limit {
		return fmt.Errorf("%s already has %d open database connections (limit %d)", subj, n, limit)
	}
	if d.perSubj == nil {
		d.perSubj = map[string]int{}
	}
	d.perSubj[subj]++
	return nil
}

func (d *dbConns) release(subj string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.perSubj[subj]--; d.perSubj[subj] <= 0 {
		delete(d.perSubj, subj)
	}
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
