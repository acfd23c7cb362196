package recordings

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/identity"
)

// fakeClock advances by step on every call.
type fakeClock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func newClock(start time.Time, step time.Duration) *fakeClock {
	return &fakeClock{t: start, step: step}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.t
	c.t = c.t.Add(c.step)
	return t
}

var (
	t0      = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	testKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	testPub = testKey.Public().(ed25519.PublicKey)
	agent   = identity.Provenance{Kind: identity.KindAgent, Subject: "deploy-bot", Issuer: "https://idp.example", Task: "JIRA-1", Role: "ops"}
)

func header(id string) Header {
	return Header{Width: 100, Height: 30, Title: "bastion session " + id,
		Env: map[string]string{"SHELL": "/bin/bash", "TERM": "xterm-256color"},
		Bastion: Meta{SessionID: id, Identity: agent, CertSerial: 18446744073709551615, KeyID: "agent:deploy-bot@https://idp.example",
			Principal: "deploy", Source: "10.0.0.7", Target: "localhost", Reason: "deploy the fix"}}
}

// must fails the test on a non-nil error.
func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// splitLines splits a file's content into its lines, without newlines.
func splitLines(b []byte) []string {
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func joinLines(ls []string) []byte { return []byte(strings.Join(ls, "\n") + "\n") }

// mountTmpfs mounts a tmpfs on a fresh directory, unmounted when the test
// ends. It needs root with CAP_SYS_ADMIN, which CI has.
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

// TestMain lets the test binary re-execute itself as a helper process that
// records forever (RECORDINGS_HELPER=<dir>), for the SIGKILL test.
func TestMain(m *testing.M) {
	if dir := os.Getenv("RECORDINGS_HELPER"); dir != "" {
		if err := recordForever(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

func recordForever(dir string) error {
	w, err := Create(dir, header("killed"), Options{Signer: testKey})
	if err != nil {
		return err
	}
	chunk := bytes.Repeat([]byte("output é line\r\n"), 64)
	for i := 0; ; i++ {
		if err := w.Output(chunk); err != nil {
			return err
		}
		if i%10 == 0 {
			ref, err := w.Command(fmt.Sprintf("step %d", i), "allow", "r")
			if err != nil {
				return err
			}
			if err := w.CommandEnd(ref, 0); err != nil {
				return err
			}
			if i == 0 {
				fmt.Println("ready")
			}
		}
	}
}

func fileOf(t testing.TB, dir, id string) string {
	t.Helper()
	p, err := Path(dir, id)
	must(t, err)
	return p
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	must(t, err)
	return b
}

func isNotSealed(err error) bool {
	var ue *UnsealedError
	return errors.Is(err, ErrNotSealed) && errors.As(err, &ue)
}
