package sshtest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/audit"
	"github.com/bastion-dev/bastion/bastion"
	"github.com/bastion-dev/bastion/certs"
	"github.com/bastion-dev/bastion/identity"
	"golang.org/x/crypto/ssh"
)

// InProc is a bastion SSH server for one test, served in memory: each
// connection is one end of a net.Pipe handed to Server.HandleConn, the
// other end an x/crypto client. There is no OpenSSH, TCP port or data
// directory: the CAs are in memory, the audit log is a slice (Audit) and
// recordings go to a t.TempDir. Commands still run for real, under bash,
// as each session's own uid when the tests run as root.
type InProc struct {
	T testing.TB
	// Server is the server under test; InProcOptions.Configure may change
	// it before its first connection.
	Server *bastion.Server
	// UserCA signs the clients' certificates; HostCA the host's.
	UserCA, HostCA ssh.Signer
	// Audit holds every event the server recorded.
	Audit *AuditLog

	logs  logBuffer
	port  atomic.Uint32 // the last client port handed out
	conns sync.WaitGroup
	mu    sync.Mutex
	errs  []error // guarded by mu: HandleConn's errors, reported at cleanup
}

// InProcOptions adjust the in-process server.
type InProcOptions struct {
	// Configure may change the server (Config, Policy, Databases,
	// Approvals, Sessions, Clock...) before its first connection.
	Configure func(s *bastion.Server)
}

// hostName is the name the host certificate is valid for; clients dial it.
const hostName = "bastion"

// StartInProc builds a bastion Server in memory with the default policy and
// configuration; the test's connections are served until it ends, when the
// server is shut down and every connection waited for.
func StartInProc(t testing.TB, o InProcOptions) *InProc {
	t.Helper()
	p := &InProc{T: t, UserCA: NewKey(t), HostCA: NewKey(t), Audit: &AuditLog{}}
	hostKey := NewKey(t)
	hc, err := certs.SignHost(p.HostCA, hostKey.PublicKey(), []string{hostName}, 0, certs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	hs, err := ssh.NewCertSigner(hc, hostKey)
	if err != nil {
		t.Fatal(err)
	}
	p.Server = &bastion.Server{
		HostSigner:    hs,
		Checker:       &certs.Checker{UserCAs: func() []ssh.PublicKey { return []ssh.PublicKey{p.UserCA.PublicKey()} }},
		Audit:         p.Audit,
		RecordingsDir: t.TempDir(),
		Logger:        slog.New(slog.NewTextHandler(&p.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if o.Configure != nil {
		o.Configure(p.Server)
	}
	t.Cleanup(p.stop)
	return p
}

// stop shuts the server down and waits for its connections.
func (p *InProc) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Server.Shutdown(ctx); err != nil {
		p.T.Errorf("bastion shutdown: %v", err)
	}
	done := make(chan struct{})
	go func() { p.conns.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		p.T.Errorf("a connection outlived the server's shutdown")
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, err := range p.errs {
		p.T.Errorf("HandleConn: %v", err)
	}
}

// Logs returns what the server has logged so far.
func (p *InProc) Logs() string { return p.logs.String() }

// Pipe serves one connection with HandleConn and returns its client end.
// The server sees the client at remote ("" means 127.0.0.1 and a port of
// its own). Closing the client end ends the connection; the test's
// cleanup closes it if the test did not.
func (p *InProc) Pipe(remote string) net.Conn {
	if remote == "" {
		remote = fmt.Sprintf("127.0.0.1:%d", 40000+p.port.Add(1))
	}
	srvEnd, cliEnd := net.Pipe()
	local := pipeAddr(hostName + ":22")
	p.conns.Add(1)
	go func() {
		defer p.conns.Done()
		err := p.Server.HandleConn(addrConn{Conn: srvEnd, local: local, remote: pipeAddr(remote)})
		if err != nil && !errors.Is(err, bastion.ErrServerClosed) {
			p.mu.Lock()
			p.errs = append(p.errs, err)
			p.mu.Unlock()
		}
	}()
	cli := addrConn{Conn: newQueuedConn(cliEnd), local: pipeAddr(remote), remote: local}
	p.T.Cleanup(func() { cli.Close() })
	return cli
}

// Cert describes the certificate a client logs in with. The zero value is
// an agent certificate for principal "agent", as the dev issuer's
// "agent*" subjects get.
type Cert struct {
	// Principal is the login name the certificate is valid for; default
	// "agent".
	Principal string
	// User is the login name the client asks for; default Principal.
	User string
	// Subject and Role go in the provenance; defaults "agent-inproc" and
	// Principal.
	Subject, Role string
	// Kind is the provenance's kind; default identity.KindAgent.
	Kind identity.Kind
	// NoPTY removes permit-pty, which every bastion certificate carries.
	NoPTY bool
	// Extensions are granted beyond permit-pty (certs.UserRequest).
	Extensions []string
	// Remote is the client address the server sees; "" as in Pipe.
	Remote string
}

func (c Cert) withDefaults() Cert {
	if c.Principal == "" {
		c.Principal = "agent"
	}
	if c.User == "" {
		c.User = c.Principal
	}
	if c.Subject == "" {
		c.Subject = "agent-inproc"
	}
	if c.Role == "" {
		c.Role = c.Principal
	}
	if c.Kind == "" {
		c.Kind = identity.KindAgent
	}
	return c
}

// Signer returns a fresh key holding a certificate from UserCA, valid for
// the next 15 minutes.
func (p *InProc) Signer(c Cert) ssh.Signer {
	p.T.Helper()
	c = c.withDefaults()
	key := NewKey(p.T)
	opt := certs.Options{}
	if c.NoPTY {
		opt.Modifiers = []certs.Modifier{func(cert *ssh.Certificate) error {
			delete(cert.Extensions, certs.ExtensionPermitPTY)
			return nil
		}}
	}
	cert, err := certs.SignUser(p.UserCA, certs.UserRequest{PublicKey: key.PublicKey(), Principals: []string{c.Principal},
		Extensions: c.Extensions, Provenance: identity.Provenance{Kind: c.Kind, Subject: c.Subject, Issuer: "inproc", Role: c.Role}}, opt)
	if err != nil {
		p.T.Fatal(err)
	}
	cs, err := ssh.NewCertSigner(cert, key)
	if err != nil {
		p.T.Fatal(err)
	}
	return cs
}

// Dial logs in with a fresh certificate for c and returns the client; the
// test's cleanup closes it.
func (p *InProc) Dial(c Cert) *ssh.Client {
	p.T.Helper()
	c = c.withDefaults()
	cl, err := p.Handshake(c.Remote, c.User, ssh.PublicKeys(p.Signer(c)))
	if err != nil {
		p.T.Fatalf("log in as %s: %v", c.User, err)
	}
	return cl
}

// Handshake connects as user from remote with the given authentication,
// verifying the host certificate against HostCA, and returns the client
// or the handshake's error (for probing what bastion refuses). On success
// the test's cleanup closes the client.
func (p *InProc) Handshake(remote, user string, auth ...ssh.AuthMethod) (*ssh.Client, error) {
	conn := p.Pipe(remote)
	hostCA := p.HostCA.PublicKey()
	hk := &ssh.CertChecker{IsHostAuthority: func(k ssh.PublicKey, _ string) bool { return bytes.Equal(k.Marshal(), hostCA.Marshal()) }}
	cfg := &ssh.ClientConfig{User: user, Auth: auth, HostKeyCallback: hk.CheckHostKey}
	c, chans, reqs, err := ssh.NewClientConn(conn, hostName+":22", cfg)
	if err != nil {
		conn.Close()
		return nil, err
	}
	cl := ssh.NewClient(c, chans, reqs)
	p.T.Cleanup(func() { cl.Close() })
	return cl, nil
}

// Exec runs cmd in a new session of c and returns its output and exit
// status; a session that ends without one fails the test.
func Exec(t testing.TB, c *ssh.Client, cmd string) Result {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out, errb bytes.Buffer
	s.Stdout, s.Stderr = &out, &errb
	err = s.Run(cmd)
	code := 0
	var ee *ssh.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitStatus()
	} else if err != nil {
		t.Fatalf("exec %q: %v (stderr %q)", cmd, err, errb.String())
	}
	return Result{Stdout: out.String(), Stderr: errb.String(), Code: code}
}

// AuditLog is an in-memory audit.Sink.
type AuditLog struct {
	// Err, if set, is asked about each event before it is kept; an error
	// refuses the event, as a failing audit log would.
	Err func(audit.Event) error

	mu     sync.Mutex
	events []audit.Event // guarded by mu
}

// Record keeps e, unless Err refuses it.
func (a *AuditLog) Record(e audit.Event) error {
	if a.Err != nil {
		if err := a.Err(e); err != nil {
			return err
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, e)
	return nil
}

// Events returns the events recorded so far, in order.
func (a *AuditLog) Events() []audit.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]audit.Event(nil), a.events...)
}

// Count returns how many recorded events satisfy f.
func (a *AuditLog) Count(f func(audit.Event) bool) int {
	n := 0
	for _, e := range a.Events() {
		if f(e) {
			n++
		}
	}
	return n
}

// Wait returns the first event satisfying f, waiting up to 5 seconds for
// it (a session's last events are written after its channel closed); it
// fails the test, naming what, if none comes.
func (a *AuditLog) Wait(t testing.TB, what string, f func(audit.Event) bool) audit.Event {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, e := range a.Events() {
			if f(e) {
				return e
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no audit event for %s in %d events", what, len(a.Events()))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Refused reports whether e is the refusal of the request or channel
// named what (request.refused or channel.refused).
func Refused(e audit.Event, what string) bool {
	return (e.Type == audit.RequestRefused && e.Detail["request"] == what) ||
		(e.Type == audit.ChannelRefused && e.Detail["channel"] == what)
}

// logBuffer collects the server's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer // guarded by mu
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// NewKey returns a fresh ed25519 key with no certificate.
func NewKey(t testing.TB) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
