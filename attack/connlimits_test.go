package attack

import (
	"bufio"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/bastion"
	"github.com/bastion-dev/bastion/internal/sshtest"
)

// TestUnauthenticatedConnectionsCapped (#22 item 10): connections that
// never authenticate are capped (as sshd's MaxStartups) and closed after
// the login grace time, and the refusal is audited; once they are gone the
// real client gets in again.
func TestUnauthenticatedConnectionsCapped(t *testing.T) {
	b := start(t, sshtest.Options{Configure: func(env *bastion.Env) {
		env.Config.Limits.MaxStartups = 4
		env.Config.Limits.LoginGraceTime = 2 * time.Second
	}})
	login := b.Login("agent-flood")
	var idle []net.Conn
	for range 4 {
		c, err := net.Dial("tcp", b.SSHAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// Read the server's version line, so the connection is surely
		// counted before the next one.
		if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
			t.Fatalf("idle connection: %v", err)
		}
		idle = append(idle, c)
	}
	r := sshtest.SSH(t, login, nil, "bastion", "echo in")
	if r.Code != 255 || r.Stdout != "" {
		t.Fatalf("ssh over the startup cap: %+v", r)
	}
	waitAudit(t, b, func(e event) bool {
		return e.str("type") == "auth.failed" && e.detail("reason") == "too-many-unauthenticated"
	})
	// The login grace time closes the idle ones...
	for _, c := range idle {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 1)
		for {
			if _, err := c.Read(buf); err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Fatal("an unauthenticated connection outlived the login grace time")
				}
				break
			}
		}
	}
	waitAudit(t, b, func(e event) bool { return e.str("type") == "auth.failed" && e.detail("reason") == "login-grace-time" })
	// ...and the real client gets in again.
	if r := sshtest.SSH(t, login, nil, "bastion", "echo in"); r.Code != 0 || r.Stdout != "in\n" {
		t.Fatalf("ssh after the idle connections closed: %+v", r)
	}
}

// TestThrottleSparesValidCertificates (#22 item 10): a source past its
// failed-login limit is throttled, but a valid certificate from the same
// address still logs in (a noisy neighbour behind one NAT must not lock
// agents out).
func TestThrottleSparesValidCertificates(t *testing.T) {
	b := start(t, sshtest.Options{Configure: func(env *bastion.Env) { env.Config.Limits.AuthFailuresPerMinute = 3 }})
	login := b.Login("agent-neighbour")
	plain := filepath.Join(t.TempDir(), "plain")
	sshtest.Run(t, nil, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", plain)
	for i := range 6 {
		if r := b.SSHAs(login, "agent", plain, "", "true"); r.Code != 255 {
			t.Fatalf("plain key attempt %d: %+v", i, r)
		}
	}
	waitAudit(t, b, func(e event) bool { return e.str("type") == "auth.failed" && e.detail("reason") == "rate-limited" })
	if r := sshtest.SSH(t, login, nil, "bastion", "echo still-in"); r.Code != 0 || strings.TrimSpace(r.Stdout) != "still-in" {
		t.Fatalf("valid certificate from a throttled address: %+v", r)
	}
	// Only the first failure past the limit is audited as such.
	n := 0
	for _, e := range auditEvents(t, b) {
		if e.str("type") == "auth.failed" && e.detail("reason") == "rate-limited" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d rate-limited events, want 1", n)
	}
}
