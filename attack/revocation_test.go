package attack

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/bastion"
	"github.com/bastion-dev/bastion/internal/client"
	"github.com/bastion-dev/bastion/internal/sshtest"
)

// TestRevokeClosesLiveConnections (#22 item 1): after `bastion certs
// revoke`, run by an operator in another process, a ControlMaster
// connection opened before the revoke can open no new session, the command
// it was running ends with a line the agent can act on, a psql through an
// -L tunnel opened before the revoke stops, and every connection of the
// certificate is closed, each with an audit event.
func TestRevokeClosesLiveConnections(t *testing.T) {
	pg, b := startDB(t, nil)
	login := b.Login("agent-revoked")
	sock, master := controlMaster(t, login)
	if r := sshtest.SSH(t, login, nil, "-S", sock, "bastion", "echo before"); r.Code != 0 || r.Stdout != "before\n" {
		t.Fatalf("exec over the master before the revoke: %+v", r)
	}
	port, tun := tunnelProc(t, login, "appdb")
	if r := psql(t, pg, port, "-At", "-c", "select 41+1"); r.Code != 0 || strings.TrimSpace(r.Stdout) != "42" {
		t.Fatalf("psql before the revoke: %+v", r)
	}
	// A long command over the master, and a psql session held open.
	long := startProc(t, "ssh", "-F", login.SSHConfig, "-o", "BatchMode=yes", "-S", sock, "bastion", "echo started; sleep 60")
	held := startProc(t, pg.Bin("psql"), "-X", "-h", "127.0.0.1", "-p", fmt.Sprint(port), "-U", "agent", "-d", pg.Database,
		"-c", "select pg_sleep(60)")
	if !within(10*time.Second, func() bool { return strings.Contains(long.Stdout(), "started") }) {
		t.Fatalf("long command never started: %q", long.Stderr())
	}
	waitAudit(t, b, func(e event) bool {
		return e.str("type") == "query" || e.str("type") == "session.start" && e.detail("kind") == "db"
	})

	if r := cli(t, b, "certs", "revoke", login.Serial, "--reason", "leaked in a CI log"); r.Code != 0 {
		t.Fatalf("certs revoke: %+v", r)
	}
	revoked := time.Now()

	// The running command ends with the cause and its own exit code.
	if code := long.Wait(10 * time.Second); code != bastion.ExitCertificate {
		t.Fatalf("long command: exit %d, want %d; stderr %q", code, bastion.ExitCertificate, long.Stderr())
	}
	if !strings.Contains(long.Stderr(), "bastion: session ended: certificate revoked") {
		t.Errorf("long command stderr %q: want the revocation named", long.Stderr())
	}
	// The psql session ends too, told why.
	if code := held.Wait(10 * time.Second); code == 0 || code == -1 {
		t.Fatalf("held psql: exit %d; stderr %q", code, held.Stderr())
	}
	if !strings.Contains(held.Stderr(), "FATAL:  bastion: terminating connection: certificate revoked") {
		t.Errorf("held psql stderr %q", held.Stderr())
	}
	// Both connections are closed: the master and the tunnel's ssh exit.
	if master.Wait(10*time.Second) == -1 || tun.Wait(10*time.Second) == -1 {
		t.Fatalf("connections still open after the revoke: master exited %v, tunnel exited %v", master.Exited(), tun.Exited())
	}
	t.Logf("revoke to both connections closed: %v", time.Since(revoked).Round(time.Millisecond))
	// Nothing new runs: a fresh login with the revoked certificate fails.
	if r := sshtest.SSH(t, login, nil, "bastion", "echo after"); r.Code != 255 || r.Stdout != "" {
		t.Fatalf("exec after the revoke: %+v", r)
	}
	ev := waitAudit(t, b, func(e event) bool { return e.str("type") == "connection.closed" && e.detail("reason") == "revoked" })
	if ev.detail("serial") != login.Serial {
		t.Errorf("connection.closed event %v: want serial %s", ev, login.Serial)
	}
	waitAudit(t, b, func(e event) bool {
		return e.str("type") == "session.end" && strings.Contains(e.detail("cause"), "certificate revoked")
	})
}

// TestExpiredCertificateEndsSession (#22 item 1): a connection does not
// outlive its certificate. A session opened on a certificate with a few
// seconds left is ended at ValidBefore, with "certificate expired: run
// bastion login" and exit 217, and its connection closed.
func TestExpiredCertificateEndsSession(t *testing.T) {
	b := start(t, sshtest.Options{})
	res, err := loginTTL(b, "agent-expiring", 4*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	sock, master := controlMaster(t, res)
	long := startProc(t, "ssh", "-F", res.SSHConfig, "-o", "BatchMode=yes", "-S", sock, "bastion", "echo started; sleep 60")
	if code := long.Wait(20 * time.Second); code != bastion.ExitCertificate {
		t.Fatalf("session past ValidBefore: exit %d, want %d; stdout %q stderr %q", code, bastion.ExitCertificate, long.Stdout(), long.Stderr())
	}
	if !strings.Contains(long.Stderr(), "certificate expired: run bastion login") {
		t.Errorf("stderr %q", long.Stderr())
	}
	if master.Wait(10*time.Second) == -1 {
		t.Fatal("the expired certificate's connection is still open")
	}
	waitAudit(t, b, func(e event) bool { return e.str("type") == "connection.closed" && e.detail("reason") == "expired" })
}

// TestRevokedByKeyID: revoking a key id (every certificate of an identity)
// ends its live connection as a serial does.
func TestRevokedByKeyID(t *testing.T) {
	b := start(t, sshtest.Options{})
	login := b.Login("agent-keyid")
	sock, master := controlMaster(t, login)
	long := startProc(t, "ssh", "-F", login.SSHConfig, "-o", "BatchMode=yes", "-S", sock, "bastion", "echo started; sleep 60")
	if !within(10*time.Second, func() bool { return strings.Contains(long.Stdout(), "started") }) {
		t.Fatalf("long command never started: %q", long.Stderr())
	}
	if r := cli(t, b, "certs", "revoke", "--key-id", login.KeyID); r.Code != 0 {
		t.Fatalf("certs revoke --key-id: %+v", r)
	}
	if code := long.Wait(10 * time.Second); code != bastion.ExitCertificate {
		t.Fatalf("exit %d, want %d; stderr %q", code, bastion.ExitCertificate, long.Stderr())
	}
	if master.Wait(10*time.Second) == -1 {
		t.Fatal("connection still open after the key id was revoked")
	}
}

func loginTTL(b *sshtest.Bastion, subject string, ttl time.Duration) (*client.Result, error) {
	return client.Login(b.T.Context(), client.Options{Server: b.HTTPURL, Token: b.Token(subject), TTL: ttl,
		OutDir: b.T.TempDir() + "/client-" + subject})
}
