package bastion_test

import (
	"bufio"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/audit"
	"github.com/bastion-dev/bastion/bastion"
	"github.com/bastion-dev/bastion/internal/sshtest"
	"golang.org/x/crypto/ssh"
)

// authFailed matches an auth.failed event from src with reason.
func authFailed(src, reason string) func(audit.Event) bool {
	return func(e audit.Event) bool {
		return e.Type == audit.AuthFailed && e.Source == src && e.Detail["reason"] == reason
	}
}

// TestInProcFailLimiter: a source past its failed-login limit is
// throttled (its attempt closes the connection, and only the first over
// the limit is audited as such), other sources are not, and a valid
// certificate from the throttled address still logs in (a noisy neighbour
// behind one NAT must not lock agents out).
func TestInProcFailLimiter(t *testing.T) {
	b := sshtest.StartInProc(t, sshtest.InProcOptions{Configure: func(s *bastion.Server) { s.Config.Limits.AuthFailuresPerMinute = 3 }})
	const noisy, other = "192.0.2.7", "192.0.2.8"
	plain := ssh.PublicKeys(sshtest.NewKey(t)) // a key with no certificate
	for i := range 6 {
		_, err := b.Handshake(noisy+":4000", "agent", plain)
		// Under the limit the server refuses the key; past it, it closes
		// the connection instead of answering.
		if refused := err != nil && strings.Contains(err.Error(), "unable to authenticate"); err == nil || refused != (i < 3) {
			t.Fatalf("plain key attempt %d: %v", i, err)
		}
	}
	if _, err := b.Handshake(other+":4000", "agent", plain); err == nil {
		t.Fatal("plain key from another source logged in")
	}
	if n := b.Audit.Count(authFailed(noisy, "rate-limited")); n != 1 {
		t.Errorf("%d rate-limited events, want 1", n)
	}
	if n := b.Audit.Count(authFailed(noisy, "not a certificate")); n != 3 {
		t.Errorf("%d refusals audited with their reason before the limit, want 3", n)
	}
	if n := b.Audit.Count(authFailed(other, "not a certificate")); n != 1 {
		t.Errorf("the other source: %d refusals with their reason, want 1 (not throttled)", n)
	}
	c := b.Dial(sshtest.Cert{Remote: noisy + ":4001"})
	if r := sshtest.Exec(t, c, "echo still-in"); r.Code != 0 || r.Stdout != "still-in\n" {
		t.Fatalf("valid certificate from a throttled address: %+v", r)
	}
}

// readVersion reads the server's version line (RFC 4253 4.2): the
// connection was admitted.
func readVersion(t *testing.T, c io.Reader) {
	t.Helper()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "SSH-2.0-bastion") {
		t.Fatalf("version line %q: %v", line, err)
	}
}

// TestInProcStartupCap: connections that have not authenticated are
// capped (as sshd's MaxStartups): one over the cap is closed before the
// version exchange and audited; once the idle ones are gone a client gets
// in again.
func TestInProcStartupCap(t *testing.T) {
	b := sshtest.StartInProc(t, sshtest.InProcOptions{Configure: func(s *bastion.Server) { s.Config.Limits.MaxStartups = 2 }})
	idle := []io.ReadCloser{b.Pipe(""), b.Pipe("")}
	for _, c := range idle {
		readVersion(t, c)
	}
	over := b.Pipe("198.51.100.9:5000")
	if n, err := over.Read(make([]byte, 64)); err != io.EOF {
		t.Fatalf("over the cap: read %d bytes, %v; want EOF before any version line", n, err)
	}
	e := b.Audit.Wait(t, "the refused connection", authFailed("198.51.100.9", "too-many-unauthenticated"))
	if e.Detail["limit"] != 2 {
		t.Errorf("refusal event %+v", e)
	}
	for _, c := range idle {
		c.Close()
	}
	// The server counts a connection down once HandleConn has seen it
	// close; a client may need a few tries, as with sshd.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := b.Handshake("", "agent", ssh.PublicKeys(b.Signer(sshtest.Cert{})))
		if err == nil {
			if r := sshtest.Exec(t, c, "echo in"); r.Stdout != "in\n" {
				t.Fatalf("after the idle connections closed: %+v", r)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no login after the idle connections closed: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestInProcLoginGrace: a connection that does not authenticate in the
// login grace time is closed and audited.
func TestInProcLoginGrace(t *testing.T) {
	b := sshtest.StartInProc(t, sshtest.InProcOptions{Configure: func(s *bastion.Server) { s.Config.Limits.LoginGraceTime = 200 * time.Millisecond }})
	c := b.Pipe("198.51.100.10:5000")
	readVersion(t, c)
	done := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, c); done <- err }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("an unauthenticated connection outlived the login grace time")
	}
	b.Audit.Wait(t, "the grace time", authFailed("198.51.100.10", "login-grace-time"))
}
