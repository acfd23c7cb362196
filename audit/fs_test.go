package audit

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mountTmpfs mounts a tmpfs with the given options on a fresh directory and
// unmounts it when the test ends. Tests that need a real full or read-only
// filesystem use it; they need root (CAP_SYS_ADMIN), which CI has.
func mountTmpfs(t *testing.T, flags uintptr, opts string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", flags, opts); err != nil {
		t.Fatalf("mount tmpfs (%s) on %s: %v: this test needs root with CAP_SYS_ADMIN to create a real full or read-only filesystem", opts, dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fill writes to a file in dir until the filesystem is full.
func fill(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1024)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v", dir, err)
			}
			return p
		}
	}
}

// On a full disk Record fails (the caller refuses the action) and keeps
// failing; once space is back, the next Record repairs what the failed
// writes left and the chain verifies.
func TestRecordOnFullDisk(t *testing.T) {
	t.Parallel()
	dir := mountTmpfs(t, 0, "size=64k")
	path := filepath.Join(dir, "audit.jsonl")
	l, err := Open(path, Options{Key: testKey})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, e := range sample(3) {
		if err := l.Record(e); err != nil {
			t.Fatal(err)
		}
	}
	filler := fill(t, dir)
	// Leave a few bytes so that the next write is torn half-way.
	f, _ := os.OpenFile(filler, os.O_RDWR, 0)
	fi, _ := f.Stat()
	f.Truncate(fi.Size() - 4096 + 100)
	f.Close()
	big := Event{Type: Command, Detail: map[string]any{"command": strings.Repeat("x", 8000)}}
	for i := range 3 {
		err := l.Record(big)
		if !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("Record %d on a full disk = %v, want ENOSPC", i, err)
		}
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := l.Record(Event{Type: ServerStop}); err != nil {
		t.Fatalf("Record once space is back: %v", err)
	}
	n, err := verifyFile(t, path)
	if err != nil {
		t.Fatalf("Verify: %v\n%s", err, readAll(t, path))
	}
	evs, _ := Search(path, Filter{})
	// The first failed write was torn half-way: the repair names it.
	if rec, _ := Search(path, Filter{Type: "log"}); len(rec) != 1 {
		t.Errorf("%d log.recovered events, want 1", len(rec))
	}
	if last := evs[len(evs)-1]; last.Type != ServerStop || n != len(evs) {
		t.Fatalf("last event %s, %d verified of %d", last.Type, n, len(evs))
	}
}

func TestOpenOnReadOnlyFilesystem(t *testing.T) {
	t.Parallel()
	dir := mountTmpfs(t, syscall.MS_RDONLY, "size=64k")
	_, err := Open(filepath.Join(dir, "audit.jsonl"), Options{Key: testKey})
	if !errors.Is(err, syscall.EROFS) {
		t.Fatalf("Open on a read-only tmpfs = %v, want EROFS", err)
	}
}

func TestRecordAfterRemountReadOnly(t *testing.T) {
	t.Parallel()
	dir := mountTmpfs(t, 0, "size=64k")
	path := filepath.Join(dir, "audit.jsonl")
	l, err := Open(path, Options{Key: testKey})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Record(Event{Type: ServerStart}); err != nil {
		t.Fatal(err)
	}
	// A remount read-only refuses while a file is open for writing, so
	// close, remount, and reopen: the open itself must fail.
	l.Close()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT|syscall.MS_RDONLY, "size=64k"); err != nil {
		t.Fatalf("remount read-only: %v", err)
	}
	if _, err := Open(path, Options{Key: testKey}); !errors.Is(err, syscall.EROFS) {
		t.Fatalf("Open = %v, want EROFS", err)
	}
}

// Processes: the test binary re-executes itself as a helper that appends
// to a log (AUDIT_HELPER=record:N or record:forever).
func TestMain(m *testing.M) {
	if h := os.Getenv("AUDIT_HELPER"); h != "" {
		os.Exit(helper(h, os.Getenv("AUDIT_PATH")))
	}
	os.Exit(m.Run())
}

func helper(mode, path string) int {
	l, err := Open(path, Options{Key: testKey})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	n := -1
	if c, ok := strings.CutPrefix(mode, "record:"); ok && c != "forever" {
		n, _ = strconv.Atoi(c)
	}
	for i := 0; n < 0 || i < n; i++ {
		if err := l.Record(Event{Type: Command, Session: strconv.Itoa(os.Getpid()), Detail: map[string]any{"i": i}}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if i == 0 {
			fmt.Println("ready")
		}
	}
	return 0
}

func startHelper(t *testing.T, mode, path string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "AUDIT_HELPER="+mode, "AUDIT_PATH="+path)
	cmd.Stderr = os.Stderr
	return cmd
}

func TestProcessesAppendToOneChain(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	var cmds []*exec.Cmd
	for range 3 {
		c := startHelper(t, "record:100", path)
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, c)
	}
	l, err := Open(path, Options{Key: testKey})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if err := l.Record(Event{Type: Command, Session: "parent", Detail: map[string]any{"i": i}}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	for _, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := verifyFile(t, path); err != nil || n != 400 {
		t.Fatalf("Verify = %d, %v", n, err)
	}
}

func TestKilledWriterLeavesVerifiableLog(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	c := startHelper(t, "record:forever", path)
	out, _ := c.StdoutPipe()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := out.Read(buf); err != nil || string(buf) != "ready\n" {
		t.Fatalf("helper said %q, %v", buf, err)
	}
	time.Sleep(50 * time.Millisecond)
	c.Process.Kill() // SIGKILL
	c.Wait()
	n, err := verifyFile(t, path)
	if err != nil && !errors.Is(err, ErrTornTail) {
		t.Fatalf("Verify after SIGKILL: %v", err)
	}
	if n < 1 {
		t.Fatalf("only %d events survived", n)
	}
	l, err := Open(path, Options{Key: testKey})
	if err != nil {
		t.Fatal(err)
	}
	l.Record(Event{Type: ServerStart})
	l.Close()
	if m, err := verifyFile(t, path); err != nil || m < n+1 {
		t.Fatalf("Verify after reopening: %d, %v (was %d)", m, err, n)
	}
}
