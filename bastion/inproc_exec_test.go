package bastion_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/audit"
	"github.com/bastion-dev/bastion/bastion"
	"github.com/bastion-dev/bastion/internal/sshtest"
	"github.com/bastion-dev/bastion/shellpolicy"
	"golang.org/x/crypto/ssh"
)

// The tests in inproc_*_test.go drive bastion over net.Pipe with the
// x/crypto client (sshtest.StartInProc): the protocol and the gate without
// OpenSSH, a TCP port or a data directory. The e2e tests keep the real
// clients. Destructive probes only aim at a temp directory that the test's
// policy protects (protectedPolicy): harmless even if the policy failed.

// protectedPolicy is the default policy plus a rule that denies deleting or
// writing anything under dir.
func protectedPolicy(t *testing.T, dir string) *shellpolicy.Policy {
	t.Helper()
	yaml := fmt.Sprintf(`version: 1
rules:
  - id: protect-sandbox
    decision: deny
    message: "{cmd} would change the protected sandbox"
    match: {target_prefix: [%q]}
`, dir)
	p, err := shellpolicy.Parse([]byte(yaml), "inproc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// startProtected starts an in-process bastion whose policy protects a new
// sandbox directory, and returns both.
func startProtected(t *testing.T) (*sshtest.InProc, string) {
	t.Helper()
	dir := sshtest.SandboxDir(t)
	b := sshtest.StartInProc(t, sshtest.InProcOptions{Configure: func(s *bastion.Server) { s.Policy = protectedPolicy(t, dir) }})
	return b, dir
}

func TestInProcExecAllowed(t *testing.T) {
	b := sshtest.StartInProc(t, sshtest.InProcOptions{})
	c := b.Dial(sshtest.Cert{})
	r := sshtest.Exec(t, c, "echo hello; echo oops >&2; exit 3")
	if r.Stdout != "hello\n" || r.Stderr != "oops\n" || r.Code != 3 {
		t.Fatalf("got stdout %q stderr %q code %d; want hello, oops, 3", r.Stdout, r.Stderr, r.Code)
	}
	r = sshtest.Exec(t, c, "ls /")
	if r.Code != 0 || !strings.Contains(r.Stdout, "usr") {
		t.Fatalf("ls /: code %d stdout %q stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	e := b.Audit.Wait(t, "the allowed command", func(e audit.Event) bool { return e.Type == audit.Command && e.Decision == "allow" })
	if e.Identity == nil || e.Identity.Subject != "agent-inproc" || e.Source != "127.0.0.1" {
		t.Errorf("command event names %+v from %q", e.Identity, e.Source)
	}
}

func TestInProcExecDenied(t *testing.T) {
	b, dir := startProtected(t)
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(dir, "pwned")
	// If the policy failed, the touch would leave the marker; nothing
	// outside the sandbox is named.
	r := sshtest.Exec(t, b.Dial(sshtest.Cert{}), "touch "+marker+"; rm -f "+victim)
	if r.Code != bastion.ExitDenied {
		t.Fatalf("exit code %d, want %d (stderr %q)", r.Code, bastion.ExitDenied, r.Stderr)
	}
	lines := strings.Split(strings.TrimRight(r.Stderr, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("stderr has %d lines, want a human line and a JSON line: %q", len(lines), r.Stderr)
	}
	if want := "bastion: denied: "; !strings.HasPrefix(lines[0], want) || !strings.HasSuffix(lines[0], "[rule protect-sandbox]") {
		t.Errorf("human line %q, want %q...[rule protect-sandbox]", lines[0], want)
	}
	var d struct{ Bastion, Rule, Reason, Session string }
	if err := json.Unmarshal([]byte(lines[1]), &d); err != nil {
		t.Fatalf("second line is not JSON: %v: %q", err, lines[1])
	}
	if d.Bastion != "denied" || d.Rule != "protect-sandbox" || !strings.Contains(d.Reason, "protected sandbox") || d.Session == "" {
		t.Errorf("JSON line %+v", d)
	}
	if r.Stdout != "" {
		t.Errorf("stdout %q, want nothing", r.Stdout)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatalf("the denied script ran: %s exists (err %v)", marker, err)
	}
	if _, err := os.Stat(victim); err != nil {
		t.Fatalf("the protected file is gone: %v", err)
	}
	e := b.Audit.Wait(t, "the denied command", func(e audit.Event) bool { return e.Type == audit.Command && e.Decision == "deny" })
	if e.Rule != "protect-sandbox" || e.Session != d.Session {
		t.Errorf("deny event: rule %q session %q, want protect-sandbox %q", e.Rule, e.Session, d.Session)
	}
}

// TestInProcExitStatusBeforeEOFBeforeClose pins the order OpenSSH relies on
// to report a command's status (RFC 4254 6.10): exit-status, then EOF,
// then close; for a command's own status and for a denial.
func TestInProcExitStatusBeforeEOFBeforeClose(t *testing.T) {
	b, dir := startProtected(t)
	c := b.Dial(sshtest.Cert{})
	for _, tc := range []struct {
		cmd  string
		code uint32
	}{{"echo hi; exit 7", 7}, {"rm -rf " + dir, bastion.ExitDenied}} {
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
		// Requests are queued in arrival order before later data messages
		// are handled, so exit-status must already be waiting.
		select {
		case r := <-reqs:
			var st struct{ Status uint32 }
			if r.Type != "exit-status" || ssh.Unmarshal(r.Payload, &st) != nil || st.Status != tc.code {
				t.Fatalf("%q: first request after output is %s %v, want exit-status %d", tc.cmd, r.Type, r.Payload, tc.code)
			}
		default:
			t.Fatalf("%q: EOF arrived before exit-status", tc.cmd)
		}
		select {
		case _, open := <-reqs:
			if open {
				t.Fatalf("%q: unexpected request after exit-status", tc.cmd)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%q: channel not closed after EOF", tc.cmd)
		}
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("the protected sandbox is gone: %v", err)
	}
}

// TestInProcShutdown: Shutdown ends a running command with a cause the
// agent reads, and HandleConn refuses connections after it.
func TestInProcShutdown(t *testing.T) {
	b := sshtest.StartInProc(t, sshtest.InProcOptions{})
	c := b.Dial(sshtest.Cert{})
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out, _ := s.StdoutPipe()
	var errb strings.Builder
	s.Stderr = &errb
	if err := s.Start("echo ready; sleep 30"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := io.ReadFull(out, buf); err != nil || string(buf) != "ready\n" {
		t.Fatalf("read %q: %v", buf, err)
	}
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- b.Server.Shutdown(ctx)
	}()
	werr := s.Wait()
	if werr == nil || !strings.Contains(errb.String(), "bastion: session ended: bastion is shutting down") {
		t.Errorf("after Shutdown: wait %v, stderr %q", werr, errb.String())
	}
	c.Close() // Shutdown waits for the connection to go
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if _, err := b.Handshake("", "agent", ssh.PublicKeys(b.Signer(sshtest.Cert{}))); err == nil {
		t.Fatal("a connection was served after Shutdown")
	}
	srv, cli := net.Pipe()
	defer cli.Close()
	if err := b.Server.HandleConn(srv); err != bastion.ErrServerClosed {
		t.Fatalf("HandleConn after Shutdown: %v, want ErrServerClosed", err)
	}
}

// TestInProcFailClosed: when the audit log refuses the session's start
// (the lifecycle) or the command's decision (the gate), nothing runs and
// the agent gets the recording refusal and its exit code.
func TestInProcFailClosed(t *testing.T) {
	for _, refuse := range []string{audit.SessionStart, audit.Command} {
		t.Run(refuse, func(t *testing.T) {
			b := sshtest.StartInProc(t, sshtest.InProcOptions{})
			b.Audit.Err = func(e audit.Event) error {
				if e.Type == refuse {
					return errors.New("disk full")
				}
				return nil
			}
			marker := filepath.Join(sshtest.SandboxDir(t), "ran")
			r := sshtest.Exec(t, b.Dial(sshtest.Cert{}), "touch "+marker)
			if r.Code != bastion.ExitRecordingUnavailable || !strings.HasPrefix(r.Stderr, "bastion: recording-unavailable: ") {
				t.Errorf("code %d stderr %q, want %d and the recording refusal", r.Code, r.Stderr, bastion.ExitRecordingUnavailable)
			}
			if _, err := os.Stat(marker); !os.IsNotExist(err) {
				t.Fatalf("the command ran although %s could not be audited (err %v)", refuse, err)
			}
		})
	}
}
