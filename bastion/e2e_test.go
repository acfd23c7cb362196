package bastion_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/bastion"
	"github.com/bastion-dev/bastion/certs"
	"github.com/bastion-dev/bastion/identity"
	"github.com/bastion-dev/bastion/internal/sshtest"
	"golang.org/x/crypto/ssh"
)

// Every test here drives the real OpenSSH client against a real bastion on
// 127.0.0.1. Commands run as each session's own unprivileged uid when the
// tests run as root, and destructive probes only use forms that are
// harmless even if the policy failed (GNU rm refuses `rm -rf /`).

func TestE2EExecAllowed(t *testing.T) {
	b := sshtest.Start(t, sshtest.Options{})
	login := b.Login("agent-exec")
	r := sshtest.SSH(t, login, nil, "bastion", "echo hello; echo oops >&2; exit 3")
	if r.Stdout != "hello\n" || r.Stderr != "oops\n" || r.Code != 3 {
		t.Fatalf("got stdout %q stderr %q code %d; want hello, oops, 3", r.Stdout, r.Stderr, r.Code)
	}
	r = sshtest.SSH(t, login, nil, "bastion", "ls /")
	if r.Code != 0 || !strings.Contains(r.Stdout, "usr") {
		t.Fatalf("ls /: code %d stdout %q stderr %q", r.Code, r.Stdout, r.Stderr)
	}
}

func TestE2EStdinForwarded(t *testing.T) {
	b := sshtest.Start(t, sshtest.Options{})
	login := b.Login("agent-stdin")
	dir := sshtest.SandboxDir(t)
	target := filepath.Join(dir, "upload")
	payload := strings.Repeat("line of data\n", 5000)
	r := sshtest.SSH(t, login, strings.NewReader(payload), "bastion", "cat > "+target)
	if r.Code != 0 {
		t.Fatalf("cat > file: code %d stderr %q", r.Code, r.Stderr)
	}
	got, err := os.ReadFile(target)
	if err != nil || string(got) != payload {
		t.Fatalf("uploaded file: %d bytes, err %v; want %d bytes", len(got), err, len(payload))
	}
}

// denial is the JSON line a refusal ends with.
type denial struct {
	Bastion, Rule, Reason, Hint, Session string
}

func parseRefusal(t *testing.T, stderr string) (human string, d denial) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
	if len(lines) < 2 {
		t.Fatalf("refusal has %d lines, want a human line and a JSON line: %q", len(lines), stderr)
	}
	human = lines[len(lines)-2]
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &d); err != nil {
		t.Fatalf("last stderr line is not JSON: %v: %q", err, stderr)
	}
	return human, d
}

func TestE2EDeniedRunsNothing(t *testing.T) {
	b := sshtest.Start(t, sshtest.Options{})
	login := b.Login("agent-deny")
	dir := sshtest.SandboxDir(t)
	marker := filepath.Join(dir, "pwned")
	// If the policy ever failed, the touch would leave the marker and GNU rm
	// would refuse `rm -rf /` (--preserve-root), running as an unprivileged uid anyway.
	r := sshtest.SSH(t, login, nil, "bastion", "touch "+marker+"; rm -rf /")
	if r.Code != bastion.ExitDenied {
		t.Fatalf("exit code %d, want %d (stderr %q)", r.Code, bastion.ExitDenied, r.Stderr)
	}
	human, d := parseRefusal(t, r.Stderr)
	if !strings.HasPrefix(human, "bastion: denied: ") || !strings.Contains(human, "[rule "+d.Rule+"]") {
		t.Errorf("human line %q", human)
	}
	if d.Bastion != "denied" || d.Rule == "" || d.Reason == "" || d.Session == "" {
		t.Errorf("JSON line %+v", d)
	}
	if r.Stdout != "" {
		t.Errorf("stdout %q, want nothing", r.Stdout)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatalf("the denied script ran: %s exists (err %v)", marker, err)
	}
	// The decision is audited before anything could run.
	if !auditHas(t, b, func(e map[string]any) bool { return e["type"] == "command" && e["decision"] == "deny" }) {
		t.Error("no audit event for the denied command")
	}
}

// TestE2EApprovalRequiredTimesOut: a built-in approve rule holds the
// command; nobody answers, so it is refused when the request expires.
func TestE2EApprovalRequiredTimesOut(t *testing.T) {
	b := sshtest.Start(t, sshtest.Options{Configure: func(env *bastion.Env) { env.Approvals.Timeout = time.Second }})
	login := b.Login("agent-approve")
	r := sshtest.SSH(t, login, nil, "bastion", "kubectl delete pod web-1")
	if r.Code != bastion.ExitApprovalTimeout {
		t.Fatalf("exit code %d, want %d (stderr %q)", r.Code, bastion.ExitApprovalTimeout, r.Stderr)
	}
	if !strings.Contains(r.Stderr, "bastion: waiting for approval apr_") || !strings.Contains(r.Stderr, "(rule kubectl-delete)") {
		t.Errorf("no waiting line: %q", r.Stderr)
	}
	human, d := parseRefusal(t, r.Stderr)
	if !strings.HasPrefix(human, "bastion: approval timed out: ") || d.Bastion != "approval-timed-out" || d.Rule != "kubectl-delete" {
		t.Errorf("refusal %q %+v", human, d)
	}
}

func TestE2EEnvAllowList(t *testing.T) {
	b := sshtest.Start(t, sshtest.Options{})
	login := b.Login("agent-env")
	r := sshtest.SSH(t, login, nil, "-o", "SetEnv=LD_PRELOAD=/tmp/evil.so BASH_ENV=/tmp/x BASTION_REASON=incident-42", "bastion",
		`echo "${LD_PRELOAD:-none} ${BASH_ENV:-none} $BASTION_REASON"`)
	if r.Code != 0 || r.Stdout != "none none incident-42\n" {
		t.Fatalf("got %q (code %d, stderr %q)", r.Stdout, r.Code, r.Stderr)
	}
}

func TestE2ERefusedClients(t *testing.T) {
	b := sshtest.Start(t, sshtest.Options{})
	login := b.Login("agent-refused")

	// A plain key, never certified.
	plain := filepath.Join(t.TempDir(), "plain")
	sshtest.Run(t, nil, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", plain)
	wantRefused(t, "plain key", b.SSHAs(login, "agent", plain, "", "true"))
	// The same probe with the real certificate works, so the probes are sound.
	key := filepath.Join(login.Dir, "id_ed25519")
	if r := b.SSHAs(login, "agent", key, key+"-cert.pub", "true"); r.Code != 0 {
		t.Fatalf("control probe with the real certificate failed: %+v", r)
	}

	// The right certificate, the wrong login user.
	wantRefused(t, "wrong principal", b.SSHAs(login, "root", key, key+"-cert.pub", "true"))

	// An expired certificate from the right CA.
	expired := certFor(t, b, time.Now().Add(-2*time.Hour), "agent")
	wantRefused(t, "expired cert", b.SSHAs(login, "agent", expired, expired+"-cert.pub", "true"))

	// A certificate signed by another CA, for the right principal.
	tmp := t.TempDir()
	other, forged := filepath.Join(tmp, "other_ca"), filepath.Join(tmp, "forged")
	sshtest.Run(t, nil, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other)
	sshtest.Run(t, nil, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", forged)
	if r := sshtest.Run(t, nil, "ssh-keygen", "-q", "-s", other, "-I", "forged", "-n", "agent", "-V", "-5m:+10m", forged+".pub"); r.Code != 0 {
		t.Fatalf("ssh-keygen -s: %+v", r)
	}
	wantRefused(t, "cert from another CA", b.SSHAs(login, "agent", forged, forged+"-cert.pub", "true"))

	// A revoked certificate.
	fresh := b.Login("agent-revoked")
	if r := sshtest.SSH(t, fresh, nil, "bastion", "true"); r.Code != 0 {
		t.Fatalf("fresh login failed before revocation: %+v", r)
	}
	serial, _ := strconv.ParseUint(fresh.Serial, 10, 64)
	if err := b.Env.Store.Revoke(context.Background(), serial, "", "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	wantRefused(t, "revoked cert", sshtest.SSH(t, fresh, nil, "bastion", "true"))
}

func wantRefused(t *testing.T, what string, r sshtest.Result) {
	t.Helper()
	if r.Code != 255 || !strings.Contains(r.Stderr, "Permission denied") {
		t.Errorf("%s: code %d stderr %q; want ssh's 255 and Permission denied", what, r.Code, r.Stderr)
	}
}

// certFor signs a user certificate valid 15 minutes from start, written as
// a key pair in a temp dir; it returns the private key path.
func certFor(t *testing.T, b *sshtest.Bastion, start time.Time, principal string) string {
	t.Helper()
	key := filepath.Join(t.TempDir(), "id")
	sshtest.Run(t, nil, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key)
	data, _ := os.ReadFile(key + ".pub")
	pub, _, _, _, err := ssh.ParseAuthorizedKey(data)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := certs.SignUser(b.Env.CAs.User, certs.UserRequest{PublicKey: pub, Principals: []string{principal},
		Provenance: identity.Provenance{Kind: identity.KindAgent, Subject: "agent-old", Issuer: "test"}},
		certs.Options{Clock: func() time.Time { return start }})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key+"-cert.pub", []byte(certs.AuthorizedKeyLine(cert, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	return key
}

func TestE2EForwardingRefused(t *testing.T) {
	b := sshtest.Start(t, sshtest.Options{})
	login := b.Login("agent-fwd")

	// -W (direct-tcpip) to anything that is not a database target.
	r := sshtest.SSH(t, login, nil, "-W", "127.0.0.1:22", "bastion")
	if r.Code != 255 || !strings.Contains(r.Stderr, "prohibited") {
		t.Errorf("-W: code %d stderr %q", r.Code, r.Stderr)
	}
	// -R remote forwarding.
	// The command outlives the forwarding reply, so ssh sees the refusal.
	r = sshtest.SSH(t, login, nil, "-o", "ExitOnForwardFailure=yes", "-R", "0:127.0.0.1:9", "bastion", "sleep 10")
	if r.Code != 255 || !strings.Contains(r.Stderr, "forwarding failed") {
		t.Errorf("-R: code %d stderr %q", r.Code, r.Stderr)
	}
	// -A agent forwarding, with a running agent so ssh asks for it.
	agent := exec.Command("ssh-agent", "-D", "-a", filepath.Join(t.TempDir(), "agent.sock"))
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agent.Process.Kill(); agent.Wait() })
	sock := agent.Args[3]
	for i := 0; i < 50; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	os.Setenv("SSH_AUTH_SOCK", sock)
	defer os.Unsetenv("SSH_AUTH_SOCK")
	r = sshtest.SSH(t, login, nil, "-A", "bastion", `echo "agent=${SSH_AUTH_SOCK:-none}"`)
	if r.Code != 0 || r.Stdout != "agent=none\n" {
		t.Errorf("-A: code %d stdout %q stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	for _, want := range []string{"auth-agent-req@openssh.com", "tcpip-forward", "direct-tcpip"} {
		if !auditHas(t, b, func(e map[string]any) bool {
			d, _ := e["detail"].(map[string]any)
			return (e["type"] == "request.refused" && d["request"] == want) || (e["type"] == "channel.refused" && d["channel"] == want)
		}) {
			t.Errorf("no audit event for refused %s", want)
		}
	}
}

// auditHas reports whether an audit event satisfying f was written.
func auditHas(t *testing.T, b *sshtest.Bastion, f func(map[string]any) bool) bool {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		fh, err := os.Open(b.Dir.AuditLog())
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var e map[string]any
			if json.Unmarshal(sc.Bytes(), &e) == nil && f(e) {
				fh.Close()
				return true
			}
		}
		fh.Close()
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestE2EShellEscapesRefused: programs that spawn $SHELL (vim :!, less !)
// get a shell that refuses, since what it would run is never checked.
func TestE2EShellEscapesRefused(t *testing.T) {
	b := sshtest.Start(t, sshtest.Options{})
	login := b.Login("agent-escape")
	marker := filepath.Join(sshtest.SandboxDir(t), "escaped")
	// script(1) runs its -c command with $SHELL, as vim's :! and less's !
	// do; the policy sees an allowed touch of a temp file.
	r := sshtest.SSH(t, login, nil, "bastion", `script -qec "touch `+marker+`" /dev/null; echo "status=$?"`)
	if !strings.Contains(r.Stdout, "status=126") || !strings.Contains(r.Stdout+r.Stderr, "shell escapes from programs are refused") {
		t.Fatalf("got %+v", r)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatal("the shell escape ran")
	}
}

// TestE2EExecWithTerminal: `ssh -t bastion CMD` runs CMD on a terminal
// (top, vim and friends need one), still checked, masked and recorded.
func TestE2EExecWithTerminal(t *testing.T) {
	b := sshtest.Start(t, sshtest.Options{})
	login := b.Login("agent-tty")
	r := sshtest.SSH(t, login, nil, "-tt", "bastion", "tty; stty size; exit 4")
	if r.Code != 4 || !strings.Contains(r.Stdout, "/dev/pts/") || !strings.Contains(r.Stdout, "24 80") {
		t.Fatalf("got %+v", r)
	}
	r = sshtest.SSH(t, login, nil, "-tt", "bastion", "rm -rf /")
	if r.Code != bastion.ExitDenied {
		t.Fatalf("denied on a terminal: %+v", r)
	}
}

// TestE2ESessionLimit: an identity past its session limit is refused with
// a reason and the documented exit code; others are not affected.
func TestE2ESessionLimit(t *testing.T) {
	b := sshtest.Start(t, sshtest.Options{Configure: func(env *bastion.Env) { env.Config.Limits.MaxSessionsPerIdentity = 1 }})
	login := b.Login("agent-limit")
	busy := exec.Command("ssh", "-F", login.SSHConfig, "-o", "BatchMode=yes", "bastion", "echo ready; sleep 10")
	out := &syncBuffer{}
	busy.Stdout = out
	if err := busy.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { busy.Process.Kill(); busy.Wait() }()
	for i := 0; i < 200 && !strings.Contains(out.String(), "ready"); i++ {
		time.Sleep(25 * time.Millisecond)
	}
	r := sshtest.SSH(t, login, nil, "bastion", "true")
	if r.Code != bastion.ExitSessionLimit || !strings.Contains(r.Stderr, "limit 1") {
		t.Fatalf("second session: %+v", r)
	}
	if r := sshtest.SSH(t, b.Login("agent-other"), nil, "bastion", "true"); r.Code != 0 {
		t.Fatalf("another identity: %+v", r)
	}
}
