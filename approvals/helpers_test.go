package approvals_test

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/approvals"
	"github.com/bastion-dev/bastion/audit"
	"github.com/bastion-dev/bastion/identity"
	"github.com/bastion-dev/bastion/store"
)

var (
	agent = identity.Provenance{Kind: identity.KindAgent, Subject: "ci-bot", Issuer: "https://issuer", Sponsor: "alice"}
	alice = identity.Provenance{Kind: identity.KindHuman, Subject: "alice", Issuer: "https://issuer"}
	bob   = identity.Provenance{Kind: identity.KindHuman, Subject: "bob", Issuer: "https://issuer"}
)

// dbPath is a fresh database file; opening it twice simulates two
// processes (the server that waits and the CLI that decides).
func dbPath(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "bastion.db")
}

func openStore(t testing.TB, path string) *store.Store {
	t.Helper()
	st, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// events is an audit sink that keeps what it receives.
type events struct {
	mu  sync.Mutex
	evs []audit.Event // guarded by mu
}

func (e *events) Record(ev audit.Event) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.evs = append(e.evs, ev)
	return nil
}

// steps lists the approval steps recorded for id, in order.
func (e *events) steps(id string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, ev := range e.evs {
		if ev.Type == audit.Approval && ev.Detail["id"] == id {
			out = append(out, ev.Detail["step"].(string))
		}
	}
	return out
}

func (e *events) find(id, step string) (audit.Event, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	i := slices.IndexFunc(e.evs, func(ev audit.Event) bool { return ev.Detail["id"] == id && ev.Detail["step"] == step })
	if i < 0 {
		return audit.Event{}, false
	}
	return e.evs[i], true
}

// clock is a settable clock for tests that do not wait.
type clock struct {
	mu sync.Mutex
	t  time.Time // guarded by mu
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func request(session, command string) approvals.Request {
	return approvals.Request{
		Requester: agent, SessionID: session, Target: "prod-1", Command: command,
		Rule: "kubectl-delete", Reason: "deletes cluster resources", AgentReason: "clean up the failed canary",
		Task: "OPS-42", Cwd: "/srv/app", Commands: [][]string{{"kubectl", "delete", "pod", "canary-1"}},
	}
}

// recvNotifier collects notifications; Notify never blocks.
type recvNotifier struct {
	mu  sync.Mutex
	evs []approvals.Event // guarded by mu
}

func (n *recvNotifier) Notify(_ context.Context, ev approvals.Event) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.evs = append(n.evs, ev)
}

func (n *recvNotifier) steps() []approvals.Step {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []approvals.Step
	for _, ev := range n.evs {
		out = append(out, ev.Step)
	}
	return out
}
