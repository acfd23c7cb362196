// Package attack is bastion's attack suite: each test performs one attack
// from issue #22 (and the ones that already held) the way a hostile agent or
// a careless operator would, with the real clients (OpenSSH ssh and its
// ControlMaster, psql, curl, the bastion CLI in its own process) against a
// real bastion on 127.0.0.1, and asserts the refusal, the message the user
// sees and the audit event.
//
// How to write one (helpers below):
//
//	b := start(t, sshtest.Options{})           // a real bastion, dev issuer, SQLite store, audit log
//	login := b.Login("agent-x")                // a real token exchange; ssh_config, key, cert
//	r := sshtest.SSH(t, login, nil, "bastion", "cmd")   // the real ssh client; r.Code, r.Stdout, r.Stderr
//	ev := waitAudit(t, b, func(e event) bool { return e.str("type") == "command" })
//	r = cli(t, b, "approvals", "list")       // the bastion binary, built once, with --data-dir
//	pg, b := startDB(t, nil)                   // PostgreSQL + a bastion with target "appdb"
//	port := tunnel(t, login, "appdb")          // ssh -N -L through bastion
//	r = psql(t, pg, port, "-c", "select 1")    // the real psql through that tunnel
//	r = curl(t, "-s", "-o", "/dev/null", "-w", "%{http_code}", b.HTTPURL+"/dev/token")
//	sock := controlMaster(t, login)            // ssh -M: later `sshtest.SSH(t, login, nil, "-S", sock, "bastion", cmd)`
//
// Agent commands run as unprivileged accounts when the suite runs as root,
// and every destructive probe must be harmless if the policy failed: use
// sshtest.SandboxDir for targets, never a system path.
package attack

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/bastion"
	"github.com/bastion-dev/bastion/internal/client"
	"github.com/bastion-dev/bastion/internal/pgtest"
	"github.com/bastion-dev/bastion/internal/sshtest"
	"github.com/bastion-dev/bastion/pgproxy"
)

var binPath string

// TestMain builds the bastion binary once: operator commands (certs
// revoke, approvals, audit verify) run in their own process, as an
// operator would run them next to a live server.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "bastion-attack-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "bastion")
	if out, err := exec.Command("go", "build", "-o", binPath, "github.com/bastion-dev/bastion/cmd/bastion").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v: %s\n", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// start runs a real bastion for one test (see sshtest.Start).
func start(t *testing.T, o sshtest.Options) *sshtest.Bastion {
	t.Helper()
	return sshtest.Start(t, o)
}

// startDB starts PostgreSQL and a bastion with one database target,
// "appdb", that logs in with the server's credentials (the agent never
// sees them). configure, if not nil, runs after the target is set.
func startDB(t *testing.T, configure func(env *bastion.Env)) (*pgtest.Server, *sshtest.Bastion) {
	t.Helper()
	pg := pgtest.Start(t)
	b := start(t, sshtest.Options{Configure: func(env *bastion.Env) {
		env.Databases = map[string]bastion.DBTarget{"appdb": {Target: pgproxy.Target{Name: "appdb", Addr: pg.Addr, Database: pg.Database, User: pg.User, Password: pg.Password}}}
		env.Approvals.Poll = 20 * time.Millisecond
		if configure != nil {
			configure(env)
		}
	}})
	return pg, b
}

// cli runs the bastion binary in its own process with the test's data
// directory.
func cli(t *testing.T, b *sshtest.Bastion, args ...string) sshtest.Result {
	t.Helper()
	return sshtest.Run(t, nil, binPath, append(args, "--data-dir", string(b.Dir))...)
}

// curl runs the real curl.
func curl(t *testing.T, args ...string) sshtest.Result {
	t.Helper()
	sshtest.RequireTools(t, "curl")
	return sshtest.Run(t, nil, "curl", append([]string{"-sS", "--max-time", "20"}, args...)...)
}

// tunnel runs the real `ssh -N -L` to target through bastion and returns
// the local port once it accepts connections; the ssh process lives until
// the test ends (or until bastion closes it: see tunnelProc).
func tunnel(t *testing.T, login *client.Result, target string) int {
	t.Helper()
	port, _ := tunnelProc(t, login, target)
	return port
}

// tunnelProc is tunnel that also returns the ssh process, so a test can
// watch it end.
func tunnelProc(t *testing.T, login *client.Result, target string) (int, *Proc) {
	t.Helper()
	port := freePort(t)
	p := startProc(t, "ssh", "-F", login.SSHConfig, "-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes", "-N",
		"-L", fmt.Sprintf("127.0.0.1:%d:%s:5432", port, target), "bastion")
	for i := 0; i < 400; i++ {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return port, p
		}
		if p.Exited() {
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("tunnel never listened; ssh stderr %q", p.Stderr())
	return 0, nil
}

// psql runs the real psql through a tunnel on port, as user "agent" with no
// password (bastion injects the upstream credentials).
func psql(t *testing.T, pg *pgtest.Server, port int, args ...string) sshtest.Result {
	t.Helper()
	return sshtest.Run(t, nil, pg.Bin("psql"), append([]string{"-X", "-h", "127.0.0.1", "-p", fmt.Sprint(port), "-U", "agent", "-d", pg.Database}, args...)...)
}

// controlMaster starts `ssh -M -N` with a control socket and returns the
// socket's path; `sshtest.SSH(t, login, nil, "-S", sock, "bastion", cmd)`
// then opens new sessions over the master's one connection, as
// ControlMaster users (and agents) do.
func controlMaster(t *testing.T, login *client.Result) (sock string, master *Proc) {
	t.Helper()
	sock = filepath.Join(shortTemp(t), "cm")
	master = startProc(t, "ssh", "-F", login.SSHConfig, "-o", "BatchMode=yes", "-M", "-S", sock, "-o", "ControlPersist=no", "-N", "bastion")
	for i := 0; i < 400; i++ {
		if sshtest.Run(t, nil, "ssh", "-F", login.SSHConfig, "-S", sock, "-O", "check", "bastion").Code == 0 {
			return sock, master
		}
		if master.Exited() {
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("control master never came up; stderr %q", master.Stderr())
	return "", nil
}

// shortTemp is a temp directory with a short path: unix socket paths are
// limited to 108 bytes and t.TempDir's can be longer.
func shortTemp(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "atk")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Proc is a client process that runs in the background until the test
// ends.
type Proc struct {
	cmd    *exec.Cmd
	stdout syncBuffer
	stderr syncBuffer
	done   chan struct{}
	err    error // set before done closes
}

// startProc starts a program in the background; it is killed when the test
// ends.
func startProc(t *testing.T, name string, args ...string) *Proc {
	t.Helper()
	p := &Proc{cmd: exec.Command(name, args...), done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.cmd.Process.Kill(); <-p.done })
	return p
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits up to d for the process to end and returns its exit code, or
// -1 if it is still running.
func (p *Proc) Wait(d time.Duration) int {
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		return -1
	}
}

func (p *Proc) Stdout() string { return p.stdout.String() }
func (p *Proc) Stderr() string { return p.stderr.String() }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// event is one audit log line, decoded.
type event map[string]any

// str returns a top-level string field ("" when absent).
func (e event) str(k string) string { s, _ := e[k].(string); return s }

// detail returns a field of the event's detail object, as a string.
func (e event) detail(k string) string {
	if d, ok := e["detail"].(map[string]any); ok {
		if v, ok := d[k]; ok {
			if s, ok := v.(string); ok {
				return s
			}
			b, _ := json.Marshal(v)
			return string(b)
		}
	}
	return ""
}

// auditEvents reads every event of the bastion's audit log.
func auditEvents(t *testing.T, b *sshtest.Bastion) []event {
	t.Helper()
	fh, err := os.Open(b.Dir.AuditLog())
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var out []event
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e event
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			out = append(out, e)
		}
	}
	return out
}

// waitAudit waits up to 10 s for an audit event that f accepts and returns
// it; it fails the test, listing the event types seen, when none comes.
func waitAudit(t *testing.T, b *sshtest.Bastion, f func(event) bool) event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs := auditEvents(t, b)
		for _, e := range evs {
			if f(e) {
				return e
			}
		}
		if time.Now().After(deadline) {
			var types []string
			for _, e := range evs {
				types = append(types, e.str("type"))
			}
			t.Fatalf("no matching audit event in 10s; saw %d events: %s", len(evs), strings.Join(types, " "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// within polls f every 20 ms until it is true or d passes; it reports
// whether f became true. It is for waiting on another process, not for
// asserting speed.
func within(d time.Duration, f func() bool) bool {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		if f() {
			return true
		}
		select {
		case <-ctx.Done():
			return f()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
