//go:build linux

package pty

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const waitTimeout = 15 * time.Second

// agentUID is the unprivileged account the tests' shells run as when the
// tests run as root, so that a bug cannot damage the machine (nobody).
const agentUID = 65534

// harness drives a Front through pipes, as the SSH layer would.
type harness struct {
	t      testing.TB
	f      *Front
	dir    string // the shell's working directory, writable by it
	in     *io.PipeWriter
	out    *syncBuffer
	pos    int // output already matched by expect
	exits  chan exitRecord
	result chan runResult
	cancel context.CancelCauseFunc

	mu     sync.Mutex
	checks []string // guarded by mu
	inputs []byte   // guarded by mu; what OnInput saw
}

type exitRecord struct {
	input string
	code  int
}

type runResult struct {
	code int
	err  error
}

type harnessConfig struct {
	// check decides inputs; nil lets everything run.
	check func(ctx context.Context, input string) Verdict
	size  Size
	// shell, if set, replaces the default bash --noprofile --norc.
	shell func(dir string) *exec.Cmd
}

// shellCommand returns a bash for tests: no rc files, a clean environment,
// the given directory, and an unprivileged user when the test runs as root.
func shellCommand(t testing.TB, dir string) *exec.Cmd {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatalf("bash is required: %v", err)
	}
	c := exec.Command(bash, "--noprofile", "--norc")
	c.Dir = dir
	c.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + dir, "LANG=C.UTF-8"}
	if os.Geteuid() == 0 {
		c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: agentUID, Gid: agentUID}}
	}
	return c
}

// agentDir returns a temporary directory the test's shell can write to.
func agentDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	// t.TempDir's parent is private to the test's user; the shell's user
	// needs to pass through it.
	if err := os.Chmod(filepath.Dir(dir), 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return dir
}

func startHarness(t testing.TB, cfg harnessConfig) *harness {
	t.Helper()
	dir := agentDir(t)
	inR, inW := io.Pipe()
	h := &harness{
		t:      t,
		dir:    dir,
		in:     inW,
		out:    newSyncBuffer(),
		exits:  make(chan exitRecord, 100),
		result: make(chan runResult, 1),
	}
	check := cfg.check
	if check == nil {
		check = func(context.Context, string) Verdict { return Verdict{Run: true} }
	}
	shell := shellCommand(t, dir)
	if cfg.shell != nil {
		shell = cfg.shell(dir)
	}
	h.f = &Front{
		Shell: shell,
		In:    inR,
		Out:   h.out,
		Check: func(ctx context.Context, input string) Verdict {
			h.mu.Lock()
			h.checks = append(h.checks, input)
			h.mu.Unlock()
			return check(ctx, input)
		},
		OnInput: func(p []byte) {
			h.mu.Lock()
			h.inputs = append(h.inputs, p...)
			h.mu.Unlock()
		},
		OnExit: func(input string, code int) { h.exits <- exitRecord{input, code} },
		Size:   cfg.size,
		Term:   "xterm",
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	h.cancel = cancel
	go func() {
		code, err := h.f.Run(ctx)
		h.result <- runResult{code, err}
	}()
	t.Cleanup(func() {
		cancel(context.Canceled)
		_ = inR.Close()
		select {
		case <-h.result:
		case <-time.After(waitTimeout):
			t.Errorf("Run did not return after cancel")
		}
	})
	h.expect("$ ")
	return h
}

func (h *harness) send(s string) {
	h.t.Helper()
	if _, err := h.in.Write([]byte(s)); err != nil {
		h.t.Fatalf("write keystrokes: %v", err)
	}
}

// run types a line and waits for its exit record.
func (h *harness) run(line string) exitRecord {
	h.t.Helper()
	h.send(line + "\r")
	return h.exit()
}

func (h *harness) exit() exitRecord {
	h.t.Helper()
	select {
	case r := <-h.exits:
		return r
	case <-time.After(waitTimeout):
		h.t.Fatalf("no exit record; output so far:\n%q", h.out.String())
	}
	return exitRecord{}
}

// noExit asserts that no input finishes within d.
func (h *harness) noExit(d time.Duration) {
	h.t.Helper()
	select {
	case r := <-h.exits:
		h.t.Fatalf("unexpected exit record %+v", r)
	case <-time.After(d):
	}
}

// expect waits until the output after the last match contains s.
func (h *harness) expect(s string) {
	h.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		all := h.out.String()
		if i := strings.Index(all[h.pos:], s); i >= 0 {
			h.pos += i + len(s)
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("output does not contain %q after offset %d:\n%q", s, h.pos, all)
		}
		select {
		case r := <-h.result:
			h.result <- r
			if !strings.Contains(h.out.String()[h.pos:], s) {
				h.t.Fatalf("Run returned (%d, %v) before the output contained %q:\n%q", r.code, r.err, s, h.out.String())
			}
		default:
		}
		h.out.wait(50 * time.Millisecond)
	}
}

func (h *harness) wait() runResult {
	h.t.Helper()
	select {
	case r := <-h.result:
		h.result <- r // for Cleanup
		return r
	case <-time.After(waitTimeout):
		h.t.Fatalf("Run did not return; output:\n%q", h.out.String())
	}
	return runResult{}
}

func (h *harness) checked() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.checks...)
}

// waitForeground waits until the program named comm holds the terminal's
// foreground, past its exec: a ^C sent while the forked shell has not yet
// exec'd the program can be lost, as in any terminal.
func (h *harness) waitForeground(comm string) {
	h.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for time.Now().Before(deadline) {
		h.f.mu.Lock()
		s := h.f.sess
		h.f.mu.Unlock()
		if s != nil {
			if fg, err := foreground(s.sh.master); err == nil && fg > 0 && fg != s.sh.pid {
				b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", fg))
				if strings.TrimSpace(string(b)) == comm {
					return
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.t.Fatalf("%s did not come to the foreground; output:\n%q", comm, h.out.String())
}

// syncBuffer is an io.Writer that tests can read while Front writes.
type syncBuffer struct {
	mu   sync.Mutex
	b    bytes.Buffer
	note chan struct{}
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{note: make(chan struct{}, 1)} }

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	b.b.Write(p)
	b.mu.Unlock()
	select {
	case b.note <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func (b *syncBuffer) wait(d time.Duration) {
	select {
	case <-b.note:
	case <-time.After(d):
	}
}
