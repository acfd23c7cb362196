package bastion_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/bastion-dev/bastion/bastion"
	"github.com/bastion-dev/bastion/internal/sshtest"
)

// mountOver mounts a tmpfs with opts over dir until the test ends: a real
// full (size=) or read-only (MS_RDONLY) filesystem for the recordings.
func mountOver(t *testing.T, dir string, flags uintptr, opts string) {
	t.Helper()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", flags, opts); err != nil {
		t.Fatalf("mount tmpfs (%s) on %s: %v: this test needs root with CAP_SYS_ADMIN", opts, dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
}

// A recording that fills its disk in the middle of a command's output ends
// the command with ExitRecordingUnavailable and a cause the agent sees;
// output past the failure never reaches the agent, and the next session is
// refused before anything runs.
func TestE2ERecordingDiskFull(t *testing.T) {
	b := sshtest.Start(t, sshtest.Options{})
	login := b.Login("agent-full")
	mountOver(t, b.Dir.Recordings(), 0, "size=1m")

	// About 20 MB of output into a 1 MiB filesystem.
	r := sshtest.SSH(t, login, nil, "bastion", "seq 1 3000000")
	if r.Code != bastion.ExitRecordingUnavailable || !strings.Contains(r.Stderr, "session ended") {
		t.Fatalf("exit %d, stderr %q; want %d and the cause", r.Code, r.Stderr, bastion.ExitRecordingUnavailable)
	}
	if len(r.Stdout) > 2<<20 {
		t.Fatalf("the agent got %d bytes of output, more than the 1 MiB recording could hold", len(r.Stdout))
	}
	// What the agent got is a prefix of the output: what was recorded
	// before the disk filled.
	var full strings.Builder
	for i := 1; full.Len() < len(r.Stdout); i++ {
		full.WriteString(strconv.Itoa(i) + "\n")
	}
	if r.Stdout == "" || !strings.HasPrefix(full.String(), r.Stdout) {
		t.Fatalf("the agent got %d bytes that are not the start of the output: %q...", len(r.Stdout), r.Stdout[:min(len(r.Stdout), 40)])
	}

	dir := sshtest.SandboxDir(t)
	marker := filepath.Join(dir, "ran")
	r = sshtest.SSH(t, login, nil, "bastion", "touch "+marker)
	if r.Code != bastion.ExitRecordingUnavailable {
		t.Fatalf("next session on a full disk: exit %d, stderr %q", r.Code, r.Stderr)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatalf("a command ran although its session could not be recorded (stat: %v)", err)
	}
}

// A read-only recordings directory refuses every session before anything
// runs, with the refusal line and its JSON.
func TestE2ERecordingReadOnly(t *testing.T) {
	b := sshtest.Start(t, sshtest.Options{})
	login := b.Login("agent-ro")
	mountOver(t, b.Dir.Recordings(), syscall.MS_RDONLY, "size=1m")

	dir := sshtest.SandboxDir(t)
	marker := filepath.Join(dir, "ran")
	r := sshtest.SSH(t, login, nil, "bastion", "touch "+marker)
	if r.Code != bastion.ExitRecordingUnavailable {
		t.Fatalf("exit %d, stderr %q; want %d", r.Code, r.Stderr, bastion.ExitRecordingUnavailable)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatalf("a command ran although its session could not be recorded (stat: %v)", err)
	}
	lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
	var d struct{ Bastion, Rule string }
	if len(lines) != 2 || json.Unmarshal([]byte(lines[1]), &d) != nil || d.Bastion != "recording-unavailable" {
		t.Fatalf("stderr %q: want the refusal line and its JSON", r.Stderr)
	}
}
