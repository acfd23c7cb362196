package bastion_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/approvals"
	"github.com/bastion-dev/bastion/bastion"
	"github.com/bastion-dev/bastion/internal/client"
	"github.com/bastion-dev/bastion/internal/sshtest"
	"github.com/bastion-dev/bastion/shellpolicy"
)

// approvalBastion starts bastion with a test rule that holds `touch` for
// approval: harmless, and its effect (a file) proves whether it ran.
func approvalBastion(t *testing.T, timeout time.Duration) *sshtest.Bastion {
	t.Helper()
	pol, err := shellpolicy.Parse([]byte(`version: 1
rules:
  - id: test-hold-touch
    match:
      command: [touch]
    decision: approve
    message: "touch needs a human in this test"
`), "test-policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return sshtest.Start(t, sshtest.Options{Configure: func(env *bastion.Env) {
		env.Policy = pol
		env.Approvals.Timeout = timeout
		env.Approvals.Poll = 20 * time.Millisecond
	}})
}

// heldCommand starts `ssh bastion CMD` and returns once bastion reports the
// approval id on stderr.
type heldCommand struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	id             string
}

func holdCommand(t *testing.T, login *client.Result, command string) *heldCommand {
	return holdCommandRule(t, login, command, "test-hold-touch")
}

func holdCommandRule(t *testing.T, login *client.Result, command, rule string) *heldCommand {
	t.Helper()
	h := &heldCommand{stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	h.cmd = exec.Command("ssh", "-F", login.SSHConfig, "-o", "BatchMode=yes", "-o", "SetEnv=BASTION_REASON=rotate-logs", "bastion", command)
	h.cmd.Stdout, h.cmd.Stderr = h.stdout, h.stderr
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.cmd.Process.Kill(); h.cmd.Wait() })
	re := regexp.MustCompile(`bastion: waiting for approval (apr_[a-z0-9]+) \(rule ` + regexp.QuoteMeta(rule) + `\)`)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(h.stderr.String()); m != nil {
			h.id = m[1]
			// The JSON line follows the human one.
			lines := strings.Split(strings.TrimSpace(h.stderr.String()), "\n")
			var js map[string]any
			if err := json.Unmarshal([]byte(lines[len(lines)-1]), &js); err != nil || js["bastion"] != "pending" || js["approval"] != h.id {
				t.Fatalf("pending JSON line: %v %q", err, lines[len(lines)-1])
			}
			return h
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no waiting line; stderr %q", h.stderr.String())
	return nil
}

func (h *heldCommand) wait(t *testing.T) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- h.cmd.Wait() }()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		return 0
	case <-time.After(20 * time.Second):
		t.Fatalf("ssh did not finish; stderr %q", h.stderr.String())
	}
	return -1
}

func TestE2EApprovalApprovedFromAnotherProcess(t *testing.T) {
	bastionBinary(t)
	b := approvalBastion(t, time.Minute)
	login := b.Login("agent-held")
	marker := filepath.Join(sshtest.SandboxDir(t), "approved")
	h := holdCommand(t, login, "touch "+marker)
	time.Sleep(300 * time.Millisecond)
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatal("the held command ran before approval")
	}
	// The requester cannot approve its own command (four-eyes), through
	// the CLI in another process.
	self := bastionCLI(t, b, "approvals", "approve", h.id, "--as", "agent-held")
	if self.Code == 0 || !strings.Contains(self.Stderr, "own") {
		t.Fatalf("self-approval: %+v", self)
	}
	start := time.Now()
	if r := bastionCLI(t, b, "approvals", "approve", h.id, "--as", "alice", "--comment", "ok for INC-42"); r.Code != 0 {
		t.Fatalf("approve: %+v", r)
	}
	if code := h.wait(t); code != 0 {
		t.Fatalf("approved command exit %d; stderr %q", code, h.stderr.String())
	}
	t.Logf("approve (CLI process exit) to command completion: %v", time.Since(start))
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("approved command did not run: %v", err)
	}
	// The approval was for that command, once: it cannot be consumed again.
	err := b.Env.Approvals.Consume(context.Background(), h.id, "any-session", "touch "+marker)
	if err == nil {
		t.Fatal("an approval was used twice")
	}
	req, _ := b.Env.Approvals.Get(context.Background(), h.id)
	if req.AgentReason != "rotate-logs" || req.Requester.Subject != "agent-held" {
		t.Errorf("request %+v", req)
	}
}

func TestE2EApprovalDeniedAndTimedOut(t *testing.T) {
	bastionBinary(t) // build the CLI first: the build must not eat the approval window
	b := approvalBastion(t, 6*time.Second)
	login := b.Login("agent-refused")
	dir := sshtest.SandboxDir(t)

	h := holdCommand(t, login, "touch "+filepath.Join(dir, "denied"))
	if r := bastionCLI(t, b, "approvals", "deny", h.id, "--as", "bob", "--comment", "not during the freeze"); r.Code != 0 {
		t.Fatalf("deny: %+v", r)
	}
	if code := h.wait(t); code != bastion.ExitApprovalDenied || !strings.Contains(h.stderr.String(), "not during the freeze") {
		t.Fatalf("denied: exit %d stderr %q", code, h.stderr.String())
	}

	h = holdCommand(t, login, "touch "+filepath.Join(dir, "expired"))
	if code := h.wait(t); code != bastion.ExitApprovalTimeout {
		t.Fatalf("timeout: exit %d stderr %q", code, h.stderr.String())
	}
	for _, f := range []string{"denied", "expired"} {
		if _, err := os.Stat(filepath.Join(dir, f)); !os.IsNotExist(err) {
			t.Errorf("%s command ran", f)
		}
	}
	req, err := b.Env.Approvals.Get(context.Background(), h.id)
	if err != nil || req.Status != approvals.Expired {
		t.Fatalf("timed-out request: %+v %v", req, err)
	}
}

func TestE2EApprovalOverHTTP(t *testing.T) {
	b := approvalBastion(t, time.Minute)
	login := b.Login("agent-http")
	marker := filepath.Join(sshtest.SandboxDir(t), "via-http")
	h := holdCommand(t, login, "touch "+marker)
	// No credentials: refused, never anonymous.
	if r := httpPost(t, b.HTTPURL+"/v1/approvals/"+h.id+"/approve", "", `{}`); r != 401 {
		t.Fatalf("anonymous approve: status %d", r)
	}
	if r := httpPost(t, b.HTTPURL+"/v1/approvals/"+h.id+"/approve", b.OperatorToken, `{"comment":"lgtm"}`); r != 200 {
		t.Fatalf("operator approve: status %d", r)
	}
	if code := h.wait(t); code != 0 {
		t.Fatalf("exit %d stderr %q", code, h.stderr.String())
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatal("approved command did not run")
	}
}

// bastionCLI runs the bastion CLI (built by go run's cache) against b's data dir.
func bastionCLI(t *testing.T, b *sshtest.Bastion, args ...string) sshtest.Result {
	t.Helper()
	return sshtest.Run(t, nil, bastionBinary(t), append(args, "--data-dir", string(b.Dir))...)
}

var binOnce struct {
	path string
	err  error
}

func bastionBinary(t *testing.T) string {
	t.Helper()
	if binOnce.path == "" && binOnce.err == nil {
		dir, _ := os.MkdirTemp("", "bastion-bin")
		binOnce.path = filepath.Join(dir, "bastion")
		out, err := exec.Command("go", "build", "-o", binOnce.path, "github.com/bastion-dev/bastion/cmd/bastion").CombinedOutput()
		if err != nil {
			binOnce.err = err
			t.Fatalf("go build: %v: %s", err, out)
		}
	}
	if binOnce.err != nil {
		t.Fatal(binOnce.err)
	}
	return binOnce.path
}

func httpPost(t *testing.T, url, token, body string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// syncBuffer is a bytes.Buffer safe for a writer goroutine and a reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// TestE2EApprovalWithOIDCOperator: an operator authenticates to the
// approvals API with an OIDC ID token from the (real, in-process) provider
// whose claims map to an operator role; an agent's token does not.
func TestE2EApprovalWithOIDCOperator(t *testing.T) {
	pol, err := shellpolicy.Parse([]byte("version: 1\nrules:\n  - id: test-hold-touch\n    match:\n      command: [touch]\n    decision: approve\n"), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b := sshtest.Start(t, sshtest.Options{Configure: func(env *bastion.Env) {
		env.Policy = pol
		env.Approvals.Poll = 20 * time.Millisecond
		env.Config.Operators.Roles = []string{"ops"} // sshtest maps subjects ops* to role ops (human)
	}})
	login := b.Login("agent-oidc")
	marker := filepath.Join(sshtest.SandboxDir(t), "oidc-approved")
	h := holdCommand(t, login, "touch "+marker)
	if code := httpPost(t, b.HTTPURL+"/v1/approvals/"+h.id+"/approve", b.Token("agent-other"), `{}`); code != 401 {
		t.Fatalf("an agent's token approved: status %d", code)
	}
	if code := httpPost(t, b.HTTPURL+"/v1/approvals/"+h.id+"/approve", b.Token("ops-carol"), `{"comment":"checked"}`); code != 200 {
		t.Fatalf("operator token: status %d", code)
	}
	if code := h.wait(t); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, h.stderr.String())
	}
	req, err := b.Env.Approvals.Get(context.Background(), h.id)
	if err != nil || req.Decider == nil || req.Decider.Subject != "ops-carol" {
		t.Fatalf("decider: %+v %v", req, err)
	}
}
