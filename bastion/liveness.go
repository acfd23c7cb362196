package bastion

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/bastion-dev/bastion/audit"
	"github.com/bastion-dev/bastion/certs"
	"github.com/bastion-dev/bastion/store"
	gliderssh "github.com/gliderlabs/ssh"
)

// Causes that end a certificate's sessions while they run; their text
// reaches the agent ("bastion: session ended: <cause>").
var (
	errCertRevoked = errors.New("certificate revoked: ask an operator why, then run bastion login for a new one")
	errCertExpired = errors.New("certificate expired: run bastion login for a new one")
	// errRevocationsUnknown: the revocation list has not been read for too
	// long (store unavailable), so no certificate can be trusted for a new
	// action. Fail closed.
	errRevocationsUnknown = errors.New("bastion cannot read its revocation list: retry later; tell the operator if it persists")
)

// RevocationFeed is what the server reads revocations from: the store, or
// a replica's shared store. Each poll asks for the rows after the last one
// seen.
type RevocationFeed interface {
	RevocationsSince(ctx context.Context, after int64, limit int) ([]store.Revocation, error)
}

// Defaults for liveness: how often the revocation list is read, how long a
// read may fail before nothing new is admitted, and how long a closed
// certificate's sessions may take to deliver their last words before the
// connection is cut.
const (
	defaultRevocationPoll = 250 * time.Millisecond
	revocationStale       = 10 * time.Second
	fullReloadEvery       = time.Minute
	closeWait             = 3 * time.Second
)

// liveness is the server's live view of certificates: which are revoked,
// and which connections hold which certificate. A revocation (read from
// the feed, so one made by the CLI or another replica counts) or a
// certificate's ValidBefore ends that certificate's sessions with a cause
// and closes its connections; admit refuses any new channel, command,
// shell line or statement of such a certificate meanwhile.
//
// Lock order: Server.mu before liveness.mu is never taken; liveness.mu is
// a leaf (sessions are cancelled after it is released).
type liveness struct {
	srv  *Server
	feed RevocationFeed // nil: only logins check revocation (Checker)
	poll time.Duration

	mu       sync.Mutex
	serials  map[uint64]bool          // guarded by mu
	keyIDs   map[string]bool          // guarded by mu
	after    int64                    // guarded by mu: last feed row applied
	lastRead time.Time                // guarded by mu: last successful read
	conns    map[*liveConn]struct{}   // guarded by mu
	preauth  int                      // guarded by mu: connections not yet authenticated
	refused  int                      // guarded by mu: connections refused since the last audit of it
	lastNote time.Time                // guarded by mu: when refused connections were last audited
	byIdent  map[*certs.Identity]bool // guarded by mu: identities already ended
}

// liveConn is one TCP connection: before authentication it counts against
// the startup cap and its login grace timer runs; after, it carries the
// identity whose revocation or expiry closes it.
type liveConn struct {
	net.Conn
	l      *liveness
	src    string
	once   sync.Once // Close
	mu     sync.Mutex
	closed bool            // guarded by mu
	ident  *certs.Identity // guarded by mu: nil until authenticated
	grace  *time.Timer     // guarded by mu: login grace, stopped once authenticated
	expiry *time.Timer     // guarded by mu: ValidBefore
}

var liveConnKey = &ctxKey{"liveconn"}

// eventConnClosed is the audit event of a connection bastion closed
// because its certificate was revoked or expired (a contract with log
// consumers, like the types in package audit).
const eventConnClosed = "connection.closed"

func newLiveness(s *Server, feed RevocationFeed, poll time.Duration) *liveness {
	if poll <= 0 {
		poll = defaultRevocationPoll
	}
	return &liveness{srv: s, feed: feed, poll: poll, serials: map[uint64]bool{}, keyIDs: map[string]bool{},
		conns: map[*liveConn]struct{}{}, byIdent: map[*certs.Identity]bool{}}
}

// load reads the whole revocation list; Serve calls it before accepting, so
// a server never admits a certificate revoked before it started.
func (l *liveness) load(ctx context.Context) error {
	if l.feed == nil {
		return nil
	}
	return l.read(ctx, true)
}

// read applies the feed's rows after the last one seen (all of them when
// full), then ends the sessions of newly revoked certificates.
func (l *liveness) read(ctx context.Context, full bool) error {
	l.mu.Lock()
	after := l.after
	l.mu.Unlock()
	if full {
		after = 0
	}
	serials, keyIDs := map[uint64]bool{}, map[string]bool{}
	last := after
	for {
		rows, err := l.feed.RevocationsSince(ctx, last, 1000)
		if err != nil {
			return err
		}
		for _, r := range rows {
			if r.Serial != 0 {
				serials[r.Serial] = true
			}
			if r.KeyID != "" {
				keyIDs[r.KeyID] = true
			}
			last = r.Seq
		}
		if len(rows) < 1000 {
			break
		}
	}
	l.mu.Lock()
	if full {
		// Sequence numbers are SQLite rowids, which a VACUUM may renumber:
		// a full read now and then replaces the set and the position.
		l.serials, l.keyIDs = serials, keyIDs
	} else {
		for k := range serials {
			l.serials[k] = true
		}
		for k := range keyIDs {
			l.keyIDs[k] = true
		}
	}
	l.after = last
	l.lastRead = time.Now() // real time: the poll runs on it, whatever Clock says
	var ended []*liveConn
	for c := range l.conns {
		if id := c.identity(); id != nil && (l.serials[id.Serial] || l.keyIDs[id.KeyID]) {
			ended = append(ended, c)
		}
	}
	l.mu.Unlock()
	for _, c := range ended {
		c.end(errCertRevoked, "revoked")
	}
	return nil
}

// run polls the feed until ctx ends. A failing read is logged; once reads
// have failed for revocationStale, admit refuses new actions.
func (l *liveness) run(ctx context.Context) {
	if l.feed == nil {
		return
	}
	t := time.NewTicker(l.poll)
	defer t.Stop()
	lastFull := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		full := time.Since(lastFull) > fullReloadEvery
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := l.read(rctx, full)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				l.srv.Logger.Warn("reading revocations failed", "err", err)
			}
			continue
		}
		if full {
			lastFull = time.Now()
		}
	}
}

// admit reports why id may not start anything new: revoked, past its
// ValidBefore, or the revocation list is stale. nil admits.
func (l *liveness) admit(id *certs.Identity) error {
	if id == nil {
		return errors.New("not authenticated")
	}
	now := l.srv.Clock()
	if !id.ValidBefore.IsZero() && !now.Before(id.ValidBefore) {
		return errCertExpired
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.serials[id.Serial] || l.keyIDs[id.KeyID] {
		return errCertRevoked
	}
	if l.feed != nil && time.Since(l.lastRead) > revocationStale {
		return errRevocationsUnknown
	}
	return nil
}

// accept is the server's ConnCallback: it refuses a connection over the
// startup cap, and starts its login grace timer.
func (l *liveness) accept(ctx gliderssh.Context, c net.Conn) net.Conn {
	s := l.srv
	lc := &liveConn{Conn: c, l: l, src: hostOf(c.RemoteAddr())}
	l.mu.Lock()
	if l.preauth >= s.cfg.Limits.MaxStartups {
		l.refused++
		note := l.srv.Clock().Sub(l.lastNote) > 10*time.Second
		n := l.refused
		if note {
			l.refused, l.lastNote = 0, l.srv.Clock()
		}
		l.mu.Unlock()
		// As sshd's MaxStartups: the connection is dropped before the
		// version exchange. One audit event per 10 s, counting the
		// others, so a flood cannot flood the audit log too.
		if note {
			s.audit(connEvent(audit.AuthFailed, nil, lc.src, fields{"reason": "too-many-unauthenticated",
				"limit": s.cfg.Limits.MaxStartups, "refused": n}))
		}
		s.Logger.Warn("refused a connection: too many unauthenticated connections", "source", lc.src, "limit", s.cfg.Limits.MaxStartups)
		c.Close()
		return nil
	}
	l.preauth++
	l.conns[lc] = struct{}{}
	l.mu.Unlock()
	// The timer can fire before AfterFunc returns on a loaded machine:
	// graceExpired and Close read lc.grace under lc.mu, so it is set
	// under it too.
	lc.mu.Lock()
	lc.grace = time.AfterFunc(s.cfg.Limits.LoginGraceTime, lc.graceExpired)
	lc.mu.Unlock()
	ctx.SetValue(liveConnKey, lc)
	return lc
}

// authenticated records the identity a connection authenticated as (the
// last accepted key wins, as the identity in the context does) and arms
// its expiry.
func (lc *liveConn) authenticated(id *certs.Identity) {
	lc.mu.Lock()
	if lc.closed {
		lc.mu.Unlock()
		return
	}
	first := lc.ident == nil
	lc.ident = id
	if lc.grace != nil {
		lc.grace.Stop()
	}
	if lc.expiry != nil {
		lc.expiry.Stop()
	}
	if !id.ValidBefore.IsZero() {
		lc.expiry = time.AfterFunc(time.Until(id.ValidBefore), func() { lc.end(errCertExpired, "expired") })
	}
	lc.mu.Unlock()
	if first {
		lc.l.mu.Lock()
		lc.l.preauth--
		lc.l.mu.Unlock()
	}
	// Revoked while the handshake ran: the next read or admit ends it.
}

func (lc *liveConn) identity() *certs.Identity {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return lc.ident
}

func (lc *liveConn) graceExpired() {
	if lc.identity() != nil {
		return
	}
	s := lc.l.srv
	s.Logger.Info("closing a connection that did not authenticate in time", "source", lc.src, "grace", s.cfg.Limits.LoginGraceTime)
	s.audit(connEvent(audit.AuthFailed, nil, lc.src, fields{"reason": "login-grace-time",
		"grace": s.cfg.Limits.LoginGraceTime.String()}))
	lc.Close()
}

// end ends every session of this connection's identity with cause, audits
// it, and closes the connection once the sessions have sent their last
// line and exit status (closeWait at most). It runs once per identity.
func (lc *liveConn) end(cause error, reason string) {
	id := lc.identity()
	if id == nil {
		return
	}
	l, s := lc.l, lc.l.srv
	l.mu.Lock()
	done := l.byIdent[id]
	l.byIdent[id] = true
	l.mu.Unlock()
	if done {
		return
	}
	s.mu.Lock()
	var ended []*session
	for sess := range s.sessions {
		if sess.ident == id {
			ended = append(ended, sess)
		}
	}
	s.mu.Unlock()
	for _, sess := range ended {
		sess.cancel(cause)
	}
	s.audit(connEvent(eventConnClosed, id, lc.src, fields{
		"reason": reason, "serial": fmt.Sprint(id.Serial), "sessions": len(ended), "valid_before": id.ValidBefore.UTC().Format(time.RFC3339)}))
	go func() {
		// The sessions were cancelled: each writes its last line, records
		// its end and sends its exit status, then closes its channel. The
		// connection closes once they all have (at once, usually), and
		// after closeWait at most: a loaded machine may take longer than
		// a fixed grace to record the end (the agent then saw exit 255, not
		// ExitCertificate).
		for deadline := time.Now().Add(closeWait); time.Now().Before(deadline) && s.tracked(ended); {
			time.Sleep(10 * time.Millisecond)
		}
		lc.Close()
	}()
}

// tracked reports whether any of sessions is still open.
func (s *Server) tracked(sessions []*session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sess := range sessions {
		if _, ok := s.sessions[sess]; ok {
			return true
		}
	}
	return false
}

// Close closes the connection once and forgets it.
func (lc *liveConn) Close() error {
	var err error
	lc.once.Do(func() {
		lc.mu.Lock()
		lc.closed = true
		authed := lc.ident != nil
		if lc.grace != nil {
			lc.grace.Stop()
		}
		if lc.expiry != nil {
			lc.expiry.Stop()
		}
		id := lc.ident
		lc.mu.Unlock()
		l := lc.l
		l.mu.Lock()
		delete(l.conns, lc)
		if !authed {
			l.preauth--
		}
		delete(l.byIdent, id)
		l.mu.Unlock()
		err = lc.Conn.Close()
	})
	return err
}

// liveConnOf returns the connection a gliderlabs context belongs to.
func liveConnOf(ctx gliderssh.Context) *liveConn {
	lc, _ := ctx.Value(liveConnKey).(*liveConn)
	return lc
}
