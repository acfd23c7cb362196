package bastion

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// accounts hands each session its own unprivileged uid from a range, so
// that one agent's session cannot see another's environment
// (/proc/PID/environ), signal or ptrace its processes, read its files or
// connect to its database socket: the kernel refuses all of those between
// different uids. The uids have no passwd entry; their gid is the uid and
// they belong to no supplementary group.
//
// A uid is taken at random from the free part of the range and never
// handed out while a process of it still runs: release kills every process
// left with the uid (including ones that escaped the session's process
// group with setsid), removes the session's home and whatever the uid left
// in the world-writable temp directories, and only then frees it.
type accounts struct {
	lo, hi uint32 // inclusive range
	base   string // parent of the per-session homes, root-owned 0711

	mu    sync.Mutex
	inUse map[uint32]bool // guarded by mu
}

// account is one session's uid and home.
type account struct {
	uid  uint32
	home string
	tmp  string
}

// parseUIDRange parses "LO-HI".
func parseUIDRange(s string) (lo, hi uint32, err error) {
	a, b, ok := strings.Cut(s, "-")
	if ok {
		var l, h uint64
		if l, err = strconv.ParseUint(strings.TrimSpace(a), 10, 32); err == nil {
			if h, err = strconv.ParseUint(strings.TrimSpace(b), 10, 32); err == nil {
				lo, hi = uint32(l), uint32(h)
			}
		}
	}
	if !ok || err != nil || lo == 0 || hi < lo || hi >= 1<<31 {
		return 0, 0, fmt.Errorf("exec.uid_range %q: want LO-HI with 0 < LO <= HI < 2^31, e.g. 2000000-2099999", s)
	}
	if lo < 1000 {
		return 0, 0, fmt.Errorf("exec.uid_range %q: starts among system accounts (below 1000)", s)
	}
	return lo, hi, nil
}

func newAccounts(uidRange string) (*accounts, error) {
	lo, hi, err := parseUIDRange(uidRange)
	if err != nil {
		return nil, err
	}
	base, err := os.MkdirTemp("", "bastion-homes-")
	if err != nil {
		return nil, err
	}
	// Traversable, not listable: a session finds its own home by name but
	// cannot list the others'.
	if err := os.Chmod(base, 0o711); err != nil {
		os.RemoveAll(base)
		return nil, err
	}
	return &accounts{lo: lo, hi: hi, base: base, inUse: map[uint32]bool{}}, nil
}

// acquire takes a free uid and makes its home (0700, owned by the uid)
// with a private temp directory inside.
func (a *accounts) acquire(sessionID string) (*account, error) {
	uid, err := a.take()
	if err != nil {
		return nil, err
	}
	acc := &account{uid: uid, home: filepath.Join(a.base, "s-"+sessionID)}
	acc.tmp = filepath.Join(acc.home, "tmp")
	fail := func(err error) (*account, error) {
		a.release(acc)
		return nil, fmt.Errorf("session account: %w", err)
	}
	for _, d := range []string{acc.home, acc.tmp} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return fail(err)
		}
		if err := os.Chown(d, int(uid), int(uid)); err != nil {
			return fail(err)
		}
	}
	return acc, nil
}

func (a *accounts) take() (uint32, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := a.hi - a.lo + 1
	if uint32(len(a.inUse)) >= n {
		return 0, fmt.Errorf("all %d session uids of exec.uid_range are in use", n)
	}
	for range 64 {
		uid := a.lo + rand.Uint32N(n)
		if a.inUse[uid] || uidHasProcesses(uid) {
			continue
		}
		a.inUse[uid] = true
		return uid, nil
	}
	// A nearly full range: walk it from a random start.
	start := rand.Uint32N(n)
	for i := range n {
		uid := a.lo + (start+i)%n
		if !a.inUse[uid] && !uidHasProcesses(uid) {
			a.inUse[uid] = true
			return uid, nil
		}
	}
	return 0, errors.New("no free session uid in exec.uid_range")
}

// release ends everything the account left behind, then frees its uid. A
// uid that still has processes after repeated SIGKILLs (a process in
// uninterruptible sleep) stays taken.
func (a *accounts) release(acc *account) {
	if acc == nil {
		return
	}
	clean := killUID(acc.uid)
	os.RemoveAll(acc.home)
	for _, d := range []string{os.TempDir(), "/var/tmp", "/dev/shm"} {
		removeOwned(d, acc.uid)
	}
	if clean {
		a.mu.Lock()
		delete(a.inUse, acc.uid)
		a.mu.Unlock()
	}
}

// close removes the homes' parent directory.
func (a *accounts) close() {
	if a != nil {
		os.RemoveAll(a.base)
	}
}

// uidHasProcesses reports whether any process runs with uid as its real
// or effective uid.
func uidHasProcesses(uid uint32) bool {
	return len(processesOf(uid)) > 0
}

// processesOf lists the pids whose real, effective, saved or filesystem uid
// is uid, from /proc/PID/status.
func processesOf(uid uint32) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	want := strconv.FormatUint(uint64(uid), 10)
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/status")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f, ok := strings.CutPrefix(line, "Uid:"); ok {
				for _, u := range strings.Fields(f) {
					if u == want {
						out = append(out, pid)
						break
					}
				}
				break
			}
		}
	}
	return out
}

// killUID SIGKILLs every process of uid until none is left, for up to a
// second; it reports whether none is left.
func killUID(uid uint32) bool {
	deadline := time.Now().Add(time.Second)
	for {
		pids := processesOf(uid)
		if len(pids) == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// removeOwned removes the entries of dir (not below it: a directory the
// uid owns goes whole) that uid owns.
func removeOwned(dir string, uid uint32) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		var st syscall.Stat_t
		if syscall.Lstat(p, &st) == nil && st.Uid == uid {
			os.RemoveAll(p)
		}
	}
}
