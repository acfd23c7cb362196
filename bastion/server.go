package bastion

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"github.com/bastion-dev/bastion/approvals"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/bastion-dev/bastion/audit"
	"github.com/bastion-dev/bastion/certs"
	"github.com/bastion-dev/bastion/config"
	"github.com/bastion-dev/bastion/identity"
	"github.com/bastion-dev/bastion/masking"
	"github.com/bastion-dev/bastion/shellpolicy"
	gliderssh "github.com/gliderlabs/ssh"
	"golang.org/x/crypto/ssh"
)

// Server is bastion's SSH server. Fill in the fields, then call Serve. The
// zero values of the optional fields are documented on each.
type Server struct {
	// Config holds listen addresses, exec settings and limits; its zero
	// fields are read through WithDefaults.
	Config config.Config
	// HostSigner is the host key with its host certificate
	// (ssh.NewCertSigner), so clients verify it with @cert-authority.
	HostSigner ssh.Signer
	// Checker authenticates user certificates.
	Checker *certs.Checker
	// Policy decides every command; nil means shellpolicy.Default().
	Policy *shellpolicy.Policy
	// Masker masks secrets in output; nil means masking.Default().
	Masker *masking.Masker
	// Audit receives every audit event; required. A failing Audit refuses
	// the action it was asked to record.
	Audit audit.Sink
	// RecordingsDir holds one asciicast file per session; required.
	RecordingsDir string
	// RecordingKey signs each recording's seal; nil leaves seals unsigned.
	RecordingKey crypto.Signer
	// Sessions mirrors each session and its command index, for search; nil
	// keeps them in the recordings only. A command runs only once its row
	// is written: a failing store refuses it (ExitRecordingUnavailable).
	Sessions SessionStore
	// Approvals holds commands the policy sends for approval; nil refuses
	// them with ExitApprovalRequired.
	Approvals *approvals.Service
	// Databases are the targets `ssh -L` may reach, by name; nil: none.
	Databases map[string]DBTarget
	// Logger receives operational logs; nil means slog.Default().
	Logger *slog.Logger
	// Clock is the time source; nil means time.Now.
	Clock func() time.Time
	// Revocations is read every RevocationPoll, so a certificate revoked
	// anywhere (the CLI, another replica) ends its live connections, not
	// only its next login; nil leaves revocation to Checker at login.
	Revocations RevocationFeed
	// RevocationPoll is how often Revocations is read; 0 means 250ms.
	RevocationPoll time.Duration

	once     sync.Once
	initErr  error
	noShell  string // path of the refusing $SHELL
	cleanup  func()
	cfg      config.Config
	srv      *gliderssh.Server
	limiter  *failLimiter
	live     *liveness
	accts    *accounts // per-session uids; nil unless bastion runs as root
	stopLive context.CancelFunc
	liveDone chan struct{}
	mu       sync.Mutex
	sessions map[*session]struct{} // guarded by mu
	perSubj  map[string]int        // guarded by mu: live sessions per subject
	wg       sync.WaitGroup        // session goroutines
	closing  bool                  // guarded by mu
	startMu  sync.Mutex            // serialises start (Serve, HandleConn)
	started  bool                  // guarded by startMu: start succeeded
	db       dbConns               // database connections and their proxies
}

// ctxKey types keep context values private to this package.
type ctxKey struct{ name string }

var identityKey = &ctxKey{"identity"}

// IdentityFrom returns the authenticated identity of a connection.
func IdentityFrom(ctx context.Context) (*certs.Identity, bool) {
	id, ok := ctx.Value(identityKey).(*certs.Identity)
	return id, ok
}

func (s *Server) init() {
	s.once.Do(func() {
		s.cfg = s.Config.WithDefaults()
		if s.Policy == nil {
			s.Policy = shellpolicy.Default()
		}
		if s.Masker == nil {
			s.Masker = masking.Default()
		}
		if s.Logger == nil {
			s.Logger = slog.Default()
		}
		if s.Clock == nil {
			s.Clock = time.Now
		}
		s.noShell, s.cleanup, s.initErr = makeNoShell()
		if s.initErr == nil && os.Geteuid() == 0 {
			if s.accts, s.initErr = newAccounts(s.cfg.Exec.UIDRange); s.initErr == nil {
				clean := s.cleanup
				s.cleanup = func() { clean(); s.accts.close() }
			}
		}
		s.sessions = map[*session]struct{}{}
		s.perSubj = map[string]int{}
		s.limiter = newFailLimiter(s.cfg.Limits.AuthFailuresPerMinute, time.Minute, s.Clock)
		s.live = newLiveness(s, s.Revocations, s.RevocationPoll)
		s.srv = &gliderssh.Server{
			HostSigners:      []gliderssh.Signer{s.HostSigner},
			Version:          "bastion",
			PublicKeyHandler: s.authenticate,
			// No password or keyboard-interactive handler: those methods
			// are not offered at all.
			ChannelHandlers: map[string]gliderssh.ChannelHandler{
				"session":      s.handleSessionChannel,
				"direct-tcpip": s.directTCPIP,
			},
			RequestHandlers: map[string]gliderssh.RequestHandler{
				"tcpip-forward":                   s.refuseGlobal,
				"cancel-tcpip-forward":            s.refuseGlobal,
				"streamlocal-forward@openssh.com": s.refuseGlobal,
			},
			ServerConfigCallback: func(gliderssh.Context) *ssh.ServerConfig {
				cfg := &ssh.ServerConfig{}
				// AES-GCM by default (config.SSH.Ciphers): OpenSSH clients
				// prefer chacha20-poly1305, which x/crypto runs without
				// assembly on amd64 (a third of exec's CPU), then aes128-ctr,
				// whose HMAC costs another SHA-256 pass; AES-GCM uses AES-NI.
				cfg.Ciphers = s.cfg.SSH.Ciphers
				cfg.MACs = []string{ssh.HMACSHA256ETM, "hmac-sha2-512-etm@openssh.com"}
				return cfg
			},
			ConnCallback: s.live.accept,
			IdleTimeout:  s.cfg.Limits.IdleTimeout,
			MaxTimeout:   s.cfg.Limits.MaxSessionDuration,
			ConnectionFailedCallback: func(c net.Conn, err error) {
				s.Logger.Debug("ssh handshake failed", "remote", c.RemoteAddr().String(), "err", err)
			},
		}
	})
}

// Serve accepts SSH connections on ln until Shutdown, serving each as
// HandleConn does.
func (s *Server) Serve(ln net.Listener) error {
	if err := s.start(); err != nil {
		return err
	}
	err := s.srv.Serve(ln)
	if errors.Is(err, gliderssh.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections, ends every session with a
// user-visible cause, and waits for them until ctx is done.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.mu.Lock()
	s.closing = true
	for sess := range s.sessions {
		sess.cancel(errShutdown)
	}
	stopLive, liveDone := s.stopLive, s.liveDone
	s.mu.Unlock()
	if stopLive != nil {
		stopLive()
		<-liveDone
	}
	err := s.srv.Shutdown(ctx)
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if s.cleanup != nil {
		s.cleanup()
	}
	if errors.Is(err, gliderssh.ErrServerClosed) {
		return nil
	}
	return err
}

// authenticate is the public-key callback: the key must be a user
// certificate the checker accepts for the login user.
func (s *Server) authenticate(ctx gliderssh.Context, key gliderssh.PublicKey) bool {
	src := hostOf(ctx.RemoteAddr())
	id, err := s.Checker.Check(ctx.User(), ctx.RemoteAddr(), key)
	if err == nil {
		err = s.live.admit(id) // revoked since the store was read by Check's caller, or stale
	}
	if err != nil {
		// Past the limit a failing source is throttled: its attempt closes
		// the connection, and only the first over the limit is audited. A
		// valid certificate is never throttled (it is checked first), so
		// a noisy neighbour behind the same address cannot lock it out.
		over, first := s.limiter.fail(src)
		if over {
			if first {
				s.audit(connEvent(audit.AuthFailed, nil, src, fields{"user": ctx.User(), "reason": "rate-limited",
					"limit_per_minute": s.cfg.Limits.AuthFailuresPerMinute}))
			}
			if lc := liveConnOf(ctx); lc != nil {
				lc.Close()
			}
			return false
		}
		reason := "refused"
		var re *certs.RefusedError
		if errors.As(err, &re) {
			reason = re.Reason
		} else if errors.Is(err, errCertRevoked) {
			reason = certs.ReasonRevoked
		}
		// No identity: nothing presented is verified.
		detail := fields{"user": ctx.User(), "reason": reason, "key_type": key.Type()}
		if c, ok := key.(*ssh.Certificate); ok {
			// Presented, not verified: for an unknown authority these are the
			// client's own words, so they are quoted and bounded.
			detail["presented_serial"] = fmt.Sprint(c.Serial)
			detail["presented_key_id"] = quoteBounded(c.KeyId, 128)
		}
		s.audit(connEvent(audit.AuthFailed, nil, src, detail))
		return false
	}
	ctx.SetValue(identityKey, id)
	if lc := liveConnOf(ctx); lc != nil {
		lc.authenticated(id)
	}
	return true
}

// audit records e, filling in the time. It returns the sink's error so that
// callers that must fail closed can.
func (s *Server) audit(e audit.Event) error {
	if e.Time.IsZero() {
		e.Time = s.Clock()
	}
	err := s.Audit.Record(e)
	if err != nil {
		s.Logger.Error("audit write failed", "type", e.Type, "err", err)
	}
	return err
}

// quoteBounded renders untrusted text as a Go-quoted string of at most n
// runes, so control characters cannot forge lines in a human view of the log.
func quoteBounded(s string, n int) string {
	if r := []rune(s); len(r) > n {
		s = string(r[:n]) + "…"
	}
	return strconv.Quote(s)
}

// hostOf is the host part of a connection's remote address: the source
// that audit events name and the fail limiter counts. nil is "".
func hostOf(a net.Addr) string {
	if a == nil {
		return ""
	}
	return hostOfString(a.String())
}

// hostOfString is hostOf for an address as text ("host:port",
// "[v6]:port", as net/http's Request.RemoteAddr); an address without a
// port (net.Pipe's "pipe") is returned whole.
func hostOfString(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

func (s *Server) refuseGlobal(ctx gliderssh.Context, _ *gliderssh.Server, req *ssh.Request) (bool, []byte) {
	id, _ := IdentityFrom(ctx)
	s.audit(connEvent(audit.RequestRefused, id, hostOf(ctx.RemoteAddr()), requestRefused{Request: req.Type, Reason: "remote forwarding is not allowed"}))
	return false, nil
}

func provOf(id *certs.Identity) *identity.Provenance {
	if id == nil {
		return nil
	}
	p := id.Provenance
	return &p
}

// failLimiter counts failed authentications per source address in a
// sliding window.
type failLimiter struct {
	max    int
	window time.Duration
	clock  func() time.Time
	mu     sync.Mutex
	fails  map[string][]time.Time // guarded by mu
}

func newFailLimiter(max int, window time.Duration, clock func() time.Time) *failLimiter {
	return &failLimiter{max: max, window: window, clock: clock, fails: map[string][]time.Time{}}
}

func (l *failLimiter) prune(src string, now time.Time) []time.Time {
	f := l.fails[src]
	i := 0
	for i < len(f) && now.Sub(f[i]) > l.window {
		i++
	}
	f = f[i:]
	if len(f) == 0 {
		delete(l.fails, src)
	} else {
		l.fails[src] = f
	}
	return f
}

// fail counts a failed authentication from src. over reports whether src
// is past the limit; first, whether this is the first failure past it in
// the current window (the one worth auditing).
func (l *failLimiter) fail(src string) (over, first bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock()
	f := append(l.prune(src, now), now)
	l.fails[src] = f
	return len(f) > l.max, len(f) == l.max+1
}
