package bastion_test

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/internal/client"
	"github.com/bastion-dev/bastion/internal/sshtest"
	"golang.org/x/crypto/ssh"
)

// dial connects with the x/crypto client using a login's key and
// certificate, verifying the host certificate against the host CA.
func dial(t *testing.T, b *sshtest.Bastion, login *client.Result, user string) *ssh.Client {
	t.Helper()
	keyPEM, err := os.ReadFile(filepath.Join(login.Dir, "id_ed25519"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	certLine, _ := os.ReadFile(filepath.Join(login.Dir, "id_ed25519-cert.pub"))
	pub, _, _, _, err := ssh.ParseAuthorizedKey(certLine)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := ssh.NewCertSigner(pub.(*ssh.Certificate), signer)
	if err != nil {
		t.Fatal(err)
	}
	hostCA := b.Env.CAs.Host.PublicKey()
	hk := &ssh.CertChecker{IsHostAuthority: func(k ssh.PublicKey, _ string) bool { return string(k.Marshal()) == string(hostCA.Marshal()) }}
	c, err := ssh.Dial("tcp", b.SSHAddr, &ssh.ClientConfig{User: user, Auth: []ssh.AuthMethod{ssh.PublicKeys(cs)},
		HostKeyCallback: hk.CheckHostKey, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestExitStatusBeforeEOFBeforeClose pins the order OpenSSH relies on to
// report a command's status (RFC 4254 6.10): exit-status, then EOF, then
// close.
func TestExitStatusBeforeEOFBeforeClose(t *testing.T) {
	b := sshtest.Start(t, sshtest.Options{})
	c := dial(t, b, b.Login("agent-order"), "agent")
	for _, tc := range []struct {
		cmd  string
		code uint32
	}{{"echo hi; exit 7", 7}, {"rm -rf /", 210}} {
		ch, reqs, err := c.OpenChannel("session", nil)
		if err != nil {
			t.Fatal(err)
		}
		ok, err := ch.SendRequest("exec", true, ssh.Marshal(struct{ Command string }{tc.cmd}))
		if !ok || err != nil {
			t.Fatalf("exec refused: %v", err)
		}
		go io.Copy(io.Discard, ch.Stderr())
		if _, err := io.ReadAll(ch); err != nil { // returns at EOF
			t.Fatal(err)
		}
		// Requests are queued in arrival order before later data messages are
		// handled, so exit-status must already be waiting.
		select {
		case r := <-reqs:
			var st struct{ Status uint32 }
			if r.Type != "exit-status" || ssh.Unmarshal(r.Payload, &st) != nil || st.Status != tc.code {
				t.Fatalf("%q: first request after output is %s %v, want exit-status %d", tc.cmd, r.Type, r.Payload, tc.code)
			}
		default:
			t.Fatalf("%q: EOF arrived before exit-status", tc.cmd)
		}
		// And then the channel closes.
		select {
		case _, open := <-reqs:
			if open {
				t.Fatalf("%q: unexpected request after exit-status", tc.cmd)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%q: channel not closed after EOF", tc.cmd)
		}
	}
}

// TestPasswordAuthNotOffered checks that only public keys are offered.
func TestPasswordAuthNotOffered(t *testing.T) {
	b := sshtest.Start(t, sshtest.Options{})
	_, err := ssh.Dial("tcp", b.SSHAddr, &ssh.ClientConfig{User: "agent", Auth: []ssh.AuthMethod{ssh.Password("x"),
		ssh.KeyboardInteractive(func(string, string, []string, []bool) ([]string, error) { return nil, nil })},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 5 * time.Second})
	if err == nil {
		t.Fatal("password login succeeded")
	}
}
