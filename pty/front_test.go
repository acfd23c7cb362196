//go:build linux

package pty

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

func TestCdPersists(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessConfig{})
	if r := h.run("cd /tmp"); r.code != 0 {
		t.Fatalf("cd: %+v", r)
	}
	r := h.run("pwd")
	if r != (exitRecord{"pwd", 0}) {
		t.Fatalf("pwd: %+v", r)
	}
	h.expect("pwd\r\n/tmp\r\n$ ")
}

func TestPlainBashWithHostileRCFile(t *testing.T) {
	t.Parallel()
	rc := strings.Join([]string{
		`echo "welcome from bashrc"`,
		`PS1='custom> '`,
		`PROMPT_COMMAND='echo from-prompt-command'`,
		`alias ls='echo aliased'`,
		`trap 'echo trapped' INT`,
		`set -o history; set -H`,
	}, "\n") + "\n"
	h := startHarness(t, harnessConfig{shell: func(dir string) *exec.Cmd {
		if err := os.WriteFile(filepath.Join(dir, ".bashrc"), []byte(rc), 0o644); err != nil {
			t.Fatal(err)
		}
		c := shellCommand(t, dir)
		c.Args = c.Args[:1] // plain bash: reads /etc/bash.bashrc and ~/.bashrc
		return c
	}})
	h.run("ls -d .")
	h.run("echo a!!")
	h.send("echo started; while :; do :; done\r")
	h.expect("\r\nstarted\r\n")
	h.send("\x03")
	if r := h.exit(); r.code != 130 {
		t.Fatalf("Ctrl-C: %+v", r)
	}
	out := h.out.String()
	for _, bad := range []string{"welcome from bashrc", "custom> ", "from-prompt-command", "aliased", "trapped"} {
		if strings.Contains(out, bad) {
			t.Errorf("output contains %q:\n%q", bad, out)
		}
	}
	if !strings.Contains(out, "\r\n.\r\n") || !strings.Contains(out, "\r\na!!\r\n") {
		t.Errorf("unexpected output:\n%q", out)
	}
}

func TestExportPersists(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessConfig{})
	h.run("export X=1")
	h.run("echo $X; printenv X")
	h.expect("echo $X; printenv X\r\n1\r\n1\r\n$ ")
	// declare at top level makes a global, as typed at a prompt.
	h.run("declare -A m=([k]=v); set -- a b")
	h.run(`echo "${m[k]} $# $1"`)
	h.expect("\r\nv 2 a\r\n$ ")
}

func TestMultiLineInputRunsOnceComplete(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessConfig{})
	h.send("for i in 1 2; do\r")
	h.expect("for i in 1 2; do\r\n> ")
	h.send("echo $i\r")
	h.expect("echo $i\r\n> ")
	if c := h.checked(); len(c) != 0 {
		t.Fatalf("Check called before the input was complete: %q", c)
	}
	h.send("done\r")
	want := "for i in 1 2; do\necho $i\ndone"
	if r := h.exit(); r != (exitRecord{want, 0}) {
		t.Fatalf("exit record %+v, want %q", r, want)
	}
	h.expect("done\r\n1\r\n2\r\n$ ")
	if c := h.checked(); len(c) != 1 || c[0] != want {
		t.Fatalf("Check saw %q, want exactly [%q]", c, want)
	}
}

func TestContinuationKinds(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessConfig{})
	for _, tc := range []struct{ lines []string }{
		{[]string{"echo 'a", "b'"}},
		{[]string{"echo a \\", "b"}},
		{[]string{"cat <<EOF", "here", "EOF"}},
		{[]string{"if true; then", "echo yes", "fi"}},
	} {
		for _, l := range tc.lines[:len(tc.lines)-1] {
			h.send(l + "\r")
			h.expect("\r\n> ")
		}
		r := h.run(tc.lines[len(tc.lines)-1])
		if want := strings.Join(tc.lines, "\n"); r != (exitRecord{want, 0}) {
			t.Fatalf("exit record %+v, want %q", r, want)
		}
	}
	out := h.out.String()
	for _, want := range []string{"a\r\nb\r\n", "a b\r\n", "here\r\n", "yes\r\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%q", want, out)
		}
	}
}

func TestDeniedInputDoesNotRun(t *testing.T) {
	t.Parallel()
	deny := func(_ context.Context, input string) Verdict {
		if strings.Contains(input, "touch") {
			return Verdict{Message: "bastion: denied: no touching [rule t]\r\n{\"bastion\":\"denied\"}\r\n"}
		}
		return Verdict{Run: true}
	}
	h := startHarness(t, harnessConfig{check: deny})
	target := filepath.Join(h.dir, "denied")
	h.send("touch " + target + "\r")
	h.expect("bastion: denied: no touching [rule t]\r\n{\"bastion\":\"denied\"}\r\n$ ")
	if r := h.run("echo sync"); r.input != "echo sync" {
		t.Fatalf("first exit record is %+v; the denied input must have none", r)
	}
	if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("denied command ran: stat %s: %v", target, err)
	}
}

func TestExitStatusReachesOnExit(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessConfig{})
	for _, tc := range []struct {
		line string
		code int
	}{
		{"true", 0},
		{"false", 1},
		{"(exit 7)", 7},
		{"sh -c 'kill -TERM $$'", 143},
		{"echo $?", 0}, // $? is the previous input's status
	} {
		if r := h.run(tc.line); r != (exitRecord{tc.line, tc.code}) {
			t.Errorf("%q: got %+v, want code %d", tc.line, r, tc.code)
		}
	}
	h.expect("echo $?\r\n143\r\n")
}

func TestCtrlCInterruptsCommand(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessConfig{})
	h.send("sleep 30\r")
	h.waitForeground("sleep")
	start := time.Now()
	h.send("\x03")
	r := h.exit()
	if r != (exitRecord{"sleep 30", 130}) {
		t.Fatalf("got %+v, want sleep 30 with 130", r)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Ctrl-C took %v", d)
	}
	h.run("echo after")
	h.expect("\r\nafter\r\n$ ")
}

func TestCtrlCInterruptsBuiltinLoop(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessConfig{})
	loop := "echo started; while :; do :; done"
	h.send(loop + "\r")
	h.expect("\r\nstarted\r\n")
	// A burst of Ctrl-C: one may land while bash prints the marker.
	for range 10 {
		h.send("\x03")
	}
	if r := h.exit(); r != (exitRecord{loop, 130}) {
		t.Fatalf("got %+v", r)
	}
	h.noExit(300 * time.Millisecond)
	if r := h.run("echo after"); r != (exitRecord{"echo after", 0}) {
		t.Fatalf("got %+v", r)
	}
	h.expect("\r\nafter\r\n$ ")
}

// TestLostMarkerIsRecovered drops the marker that ends an interrupted
// input, as a second ^C landing before the marker function ignores SIGINT
// would; bastion must notice that bash waits for a command and make it print
// the marker again.
func TestLostMarkerIsRecovered(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessConfig{})
	loop := "echo started; while :; do :; done"
	h.send(loop + "\r")
	h.expect("\r\nstarted\r\n")
	h.f.mu.Lock()
	h.f.sess.dropMarkers.Store(1)
	h.f.mu.Unlock()
	h.send("\x03")
	if r := h.exit(); r != (exitRecord{loop, 130}) {
		t.Fatalf("got %+v", r)
	}
	if r := h.run("echo $?"); r.code != 0 {
		t.Fatalf("got %+v", r)
	}
	h.expect("echo $?\r\n130\r\n$ ")
}

func TestCtrlDEndsSession(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessConfig{})
	h.run("false")
	h.send("\x04")
	r := h.wait()
	if r.err != nil || r.code != 1 {
		t.Fatalf("Run = (%d, %v), want the last status 1 and no error", r.code, r.err)
	}
}

func TestExitEndsSession(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessConfig{})
	h.send("exit 3\r")
	if r := h.exit(); r != (exitRecord{"exit 3", 3}) {
		t.Fatalf("got %+v", r)
	}
	if r := h.wait(); r.err != nil || r.code != 3 {
		t.Fatalf("Run = (%d, %v), want 3", r.code, r.err)
	}
}

func TestResizeReachesProgram(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessConfig{size: Size{Cols: 90, Rows: 30}})
	h.run("stty size")
	h.expect("\r\n30 90\r\n")
	if err := h.f.Resize(Size{Cols: 100, Rows: 40}); err != nil {
		t.Fatal(err)
	}
	h.run("stty size")
	h.expect("\r\n40 100\r\n")
	// The program in the foreground gets SIGWINCH.
	h.send(`bash -c 'trap "stty size; exit 0" WINCH; echo ready; while :; do sleep 0.05; done'` + "\r")
	h.expect("\r\nready\r\n")
	if err := h.f.Resize(Size{Cols: 120, Rows: 50}); err != nil {
		t.Fatal(err)
	}
	h.expect("50 120\r\n")
	if r := h.exit(); r.code != 0 {
		t.Fatalf("got %+v", r)
	}
}

func TestKeystrokesGoToRunningCommand(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessConfig{})
	h.send("cat\r")
	h.waitForeground("cat")
	h.send("hello\r")
	h.expect("hello\r\nhello\r\n")
	h.send("\x04")
	if r := h.exit(); r != (exitRecord{"cat", 0}) {
		t.Fatalf("got %+v", r)
	}
	if c := h.checked(); len(c) != 1 {
		t.Fatalf("Check saw %q; keystrokes typed into cat must not be checked as input", c)
	}
}

// TestTypeaheadNeverReachesShellUnchecked types a command while another one
// is ending. Whatever the timing, the typed line either goes to the running
// program, or is discarded, or goes through Check, which refuses it.
func TestTypeaheadNeverReachesShellUnchecked(t *testing.T) {
	t.Parallel()
	deny := func(_ context.Context, input string) Verdict {
		if strings.Contains(input, "pwned") {
			return Verdict{Message: "bastion: denied\r\n"}
		}
		return Verdict{Run: true}
	}
	h := startHarness(t, harnessConfig{check: deny})
	target := filepath.Join(h.dir, "pwned")
	for i, delay := range []time.Duration{0, 0, 50, 150, 190, 200, 210, 250} {
		h.send("sleep 0.2\r")
		if delay > 0 {
			time.Sleep(delay * time.Millisecond)
		}
		h.send("touch " + target + "\r")
		if r := h.exit(); r.input != "sleep 0.2" {
			t.Fatalf("round %d: got %+v", i, r)
		}
		// Let anything that was held reach the editor and Check.
		time.Sleep(100 * time.Millisecond)
		h.send("\x03")
		sync := fmt.Sprintf("echo sync%d", i)
		if r := h.run(sync); r.input != sync {
			t.Fatalf("round %d: got %+v, want %q", i, r, sync)
		}
		if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("round %d (delay %dms): typed command ran unchecked: %v", i, delay, err)
		}
	}
}

// TestInjectedInputNeverReachesShell uses TIOCSTI, which lets any process
// on a terminal push bytes into its input as if typed. A shell reading
// commands from the terminal would run them; bastion's shell does not read
// commands from the terminal at all.
func TestInjectedInputNeverReachesShell(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessConfig{})
	helper := installHelper(t, h.dir)
	target := filepath.Join(h.dir, "pwned")
	inject := fmt.Sprintf("BASTION_PTY_HELPER=inject %s 'touch %s\n'", helper, target)
	// Injected while the command runs, then while the shell is idle.
	h.run(inject + "; sleep 0.3")
	h.run("(sleep 0.3; " + inject + ") &")
	time.Sleep(time.Second)
	h.run("echo sync")
	out := h.out.String()
	if !strings.Contains(out, "tiocsti: injected") && !strings.Contains(out, "tiocsti: refused") {
		t.Fatalf("helper did not report:\n%q", out)
	}
	t.Logf("kernel TIOCSTI: injected=%v", strings.Contains(out, "tiocsti: injected"))
	if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("injected command ran: %v\n%q", err, out)
	}
	if c := h.checked(); len(c) != 3 {
		t.Fatalf("Check saw %q", c)
	}
}

// TestReplacedCommandInputEndsSession closes bash's saved copy of its
// command FIFO from inside an input, so that bash cannot restore it as stdin
// after the input's redirection and would read commands from the terminal.
// The marker function notices before bash reads anything, and the session
// ends; an injection into the terminal set up beforehand never runs.
func TestReplacedCommandInputEndsSession(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessConfig{})
	helper := installHelper(t, h.dir)
	target := filepath.Join(h.dir, "pwned")
	h.run(fmt.Sprintf("(sleep 0.5; BASTION_PTY_HELPER=inject %s 'touch %s\n') &", helper, target))
	h.send("exec 10<&- 11<&- 12<&- 13<&- 14<&- 15<&- 2>/dev/null\r")
	r := h.wait()
	if !errors.Is(r.err, ErrTampered) {
		t.Fatalf("Run = (%d, %v), want ErrTampered", r.code, r.err)
	}
	time.Sleep(time.Second)
	if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("injected command ran: %v", err)
	}
}

func TestMarkerInOutputIsNotEndOfCommand(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessConfig{})
	// Marker-shaped output with another nonce is just output.
	spoof := `printf '\033]7777;0123456789abcdef0123456789abcdef;%s;0\007' 99; sleep 0.3; echo real`
	h.send(spoof + "\r")
	h.expect("\x1b]7777;0123456789abcdef0123456789abcdef;99;0\x07")
	h.noExit(100 * time.Millisecond)
	if r := h.exit(); r.input != spoof || r.code != 0 {
		t.Fatalf("got %+v", r)
	}
	h.expect("real\r\n$ ")
}

func TestMarkerWithStolenNonceEndsSession(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessConfig{})
	// An agent can read the nonce out of the shell and print a marker with
	// the right command number while its command still runs.
	h.run(`declare -f __bastion_mark | grep -o '[0-9a-f]\{32\}' | head -n 1 > nonce`)
	spoof := `n='\#'; printf '\033]7777;%s;%s;0\007' "$(cat nonce)" "${n@P}"; sleep 2`
	h.send(spoof + "\r")
	r := h.wait()
	if !errors.Is(r.err, ErrTampered) {
		t.Fatalf("Run = (%d, %v), want ErrTampered", r.code, r.err)
	}
	select {
	case rec := <-h.exits:
		t.Fatalf("spoofed marker produced exit record %+v", rec)
	default:
	}
}

func TestShellFeaturesThatChangeTheCheckedTextAreOff(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessConfig{})
	h.run("echo first")
	// History expansion would turn !! into the previous command.
	h.run("echo hi!!")
	h.expect("\r\nhi!!\r\n")
	// Aliases would run something else than the checked word.
	h.run("alias e=echo")
	if r := h.run("e x"); r.code != 127 {
		t.Fatalf("alias expanded: %+v", r)
	}
}

func TestCtrlCCancelsCheck(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var cause error
	entered := make(chan struct{}, 1)
	wait := func(ctx context.Context, input string) Verdict {
		if input != "touch approved" {
			return Verdict{Run: true}
		}
		entered <- struct{}{}
		<-ctx.Done()
		mu.Lock()
		cause = ctx.Err()
		mu.Unlock()
		return Verdict{Run: true} // ignored: the agent interrupted
	}
	h := startHarness(t, harnessConfig{check: wait})
	h.send("touch approved\r")
	<-entered
	h.send("\x03")
	h.expect("^C\r\n$ ")
	h.run("echo after")
	mu.Lock()
	defer mu.Unlock()
	if cause == nil {
		t.Fatal("Check's context was not cancelled")
	}
	if _, err := os.Stat(filepath.Join(h.dir, "approved")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("interrupted input ran: %v", err)
	}
}

func TestHistoryRecall(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessConfig{})
	h.run("echo one")
	h.run("echo two")
	h.send("\x1b[A\x1b[A\r")
	if r := h.exit(); r.input != "echo one" {
		t.Fatalf("got %+v", r)
	}
}

func TestCancelKillsSession(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessConfig{})
	h.run("sleep 1000 & echo $! > bgpid")
	b, err := os.ReadFile(filepath.Join(h.dir, "bgpid"))
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	if _, err := fmt.Sscan(string(b), &pid); err != nil {
		t.Fatal(err)
	}
	h.send("sleep 1000\r")
	h.waitForeground("sleep")
	h.cancel(errors.New("session deadline"))
	r := h.wait()
	if r.err == nil || r.err.Error() != "session deadline" {
		t.Fatalf("Run error = %v, want the cause", r.err)
	}
	if alive(pid) {
		t.Fatalf("background job %d survived the session", pid)
	}
}

// alive reports whether pid runs (a zombie does not).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i >= 0 && !strings.HasPrefix(string(b[i+1:]), " Z") && !strings.HasPrefix(string(b[i+1:]), " X")
}

func TestMain(m *testing.M) {
	if os.Getenv("BASTION_PTY_HELPER") == "inject" {
		injectHelper(os.Args[1])
		return
	}
	os.Exit(m.Run())
}

// injectHelper pushes s into its terminal's input with TIOCSTI.
func injectHelper(s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, 0, syscall.TIOCSTI, uintptr(unsafe.Pointer(&c))); errno != 0 {
			fmt.Printf("tiocsti: refused: %v\n", errno)
			return
		}
	}
	fmt.Println("tiocsti: injected")
}

// installHelper copies the test binary where the shell's user can run it.
func installHelper(t *testing.T, dir string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "helper")
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}
