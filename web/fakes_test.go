package web_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/web"
)

// Tokens the fake authenticator knows.
const (
	aliceToken = "alice-operator-token"
	bobToken   = "bob-operator-token"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeAuth maps bearer tokens to operators. Tokens can be revoked while a
// test runs, to see the UI go back to its sign-in prompt.
type fakeAuth struct {
	mu     sync.Mutex
	tokens map[string]web.Operator // guarded by mu
}

func newFakeAuth() *fakeAuth {
	return &fakeAuth{tokens: map[string]web.Operator{
		aliceToken: {Subject: "alice", Kind: "human"},
		bobToken:   {Subject: "bob", Kind: "human"},
	}}
}

func (a *fakeAuth) Authenticate(r *http.Request) (*web.Operator, error) {
	tok := web.BearerToken(r)
	if tok == "" {
		return nil, errors.New("no bearer token")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	op, ok := a.tokens[tok]
	if !ok {
		return nil, errors.New("unknown token")
	}
	return &op, nil
}

func (a *fakeAuth) revoke(tok string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.tokens, tok)
}

// fakeRecording is one session the fake store holds.
type fakeRecording struct {
	session  web.Session
	commands []web.Command
	cast     []byte
}

// fakeRecordings is an in-memory web.Recordings that remembers the
// filters it was asked for.
type fakeRecordings struct {
	recs map[string]fakeRecording
	err  error // when set, every call fails with it

	mu    sync.Mutex
	lists []string // guarded by mu; "subject|deniedOnly" per List call
}

func intp(i int) *int { return &i }

// newFakeRecordings holds two sessions: s-deploy, whose recording is
// testdata/session.cast (two commands, at 0.4 s and 40.1 s), and an older
// s-older with a denied command, whose subject is markup to show that it
// is never rendered as HTML.
func newFakeRecordings(t testing.TB) *fakeRecordings {
	cast, err := os.ReadFile("testdata/session.cast")
	if err != nil {
		t.Fatal(err)
	}
	return &fakeRecordings{recs: map[string]fakeRecording{
		"s-older": {
			session: web.Session{ID: "s-older", Subject: `<img src=x id=xss>`, Kind: "human", Principal: "ops",
				Source: "10.0.0.9", Started: t0.Add(-time.Hour), Ended: t0.Add(-time.Hour + time.Minute), Commands: 2, Denied: 1},
			commands: []web.Command{
				{N: 1, Offset: 0.5, Cmd: "uptime", Decision: "allow", Rule: "default-allow", Exit: intp(0)},
				{N: 2, Offset: 2.5, Cmd: "rm -rf /", Decision: "deny", Rule: "rm-root"},
			},
			cast: cast,
		},
		"s-deploy": {
			session: web.Session{ID: "s-deploy", Subject: "deploy-bot", Kind: "agent", Principal: "deploy",
				Source: "10.0.0.7", Started: t0, Ended: t0.Add(41 * time.Second), Commands: 2, Denied: 0},
			commands: []web.Command{
				{N: 1, Offset: 0.4, Cmd: "echo first-output", Decision: "allow", Rule: "default-allow", Exit: intp(0), Duration: 0.2},
				{N: 2, Offset: 40.1, Cmd: "cat /srv/app/VERSION", Decision: "allow", Rule: "read-app", Exit: intp(0), Duration: 0.2},
			},
			cast: cast,
		},
	}}
}

func (f *fakeRecordings) List(ctx context.Context, subject string, deniedOnly bool) ([]web.Session, error) {
	f.mu.Lock()
	f.lists = append(f.lists, fmt.Sprintf("%s|%t", subject, deniedOnly))
	f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	var out []web.Session
	for _, r := range f.recs { // map order: the handler must sort
		if strings.Contains(r.session.Subject, subject) && (!deniedOnly || r.session.Denied > 0) {
			out = append(out, r.session)
		}
	}
	return out, nil
}

func (f *fakeRecordings) listCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.lists)
}

func (f *fakeRecordings) Index(ctx context.Context, id string) (web.Session, []web.Command, error) {
	if f.err != nil {
		return web.Session{}, nil, f.err
	}
	r, ok := f.recs[id]
	if !ok {
		return web.Session{}, nil, fmt.Errorf("recording %q: %w", id, fs.ErrNotExist)
	}
	return r.session, r.commands, nil
}

func (f *fakeRecordings) Cast(ctx context.Context, id string) (io.ReadCloser, error) {
	if f.err != nil {
		return nil, f.err
	}
	r, ok := f.recs[id]
	if !ok {
		return nil, fmt.Errorf("open %s.cast: %w", id, fs.ErrNotExist)
	}
	return io.NopCloser(bytes.NewReader(r.cast)), nil
}

// decision is one Approve or Deny call the fake received.
type decision struct {
	Verb     string
	ID       string
	Approver web.Operator
	Comment  string
}

// fakeApprovals is an in-memory web.Approvals enforcing four-eyes: the
// requester cannot decide their own request.
type fakeApprovals struct {
	mu    sync.Mutex
	list  []web.Approval // guarded by mu
	calls []decision     // guarded by mu
	err   error          // guarded by mu; when set, Approve and Deny return it
}

func newFakeApprovals() *fakeApprovals {
	return &fakeApprovals{list: []web.Approval{
		{ID: "a-own", Status: "pending", Command: "systemctl restart nginx", Subject: "alice", Kind: "human",
			Rule: "systemctl-restart", Reason: "restarting a service needs approval", SessionID: "s-older",
			Created: t0.Add(-2 * time.Minute), Expires: t0.Add(3 * time.Minute)},
		{ID: "a-deploy", Status: "pending", Command: "kubectl delete pod web-0", Subject: "deploy-bot", Kind: "agent",
			Rule: "kubectl-delete", Reason: "deleting cluster objects needs approval", AgentReason: "pod is wedged after the deploy",
			SessionID: "s-deploy", Created: t0.Add(-5 * time.Minute), Expires: t0.Add(time.Minute)},
		{ID: "a-third", Status: "pending", Command: "git push --force origin main", Subject: "deploy-bot", Kind: "agent",
			Rule: "git-force-push", Reason: "force push rewrites history", SessionID: "s-deploy",
			Created: t0.Add(-time.Minute), Expires: t0.Add(4 * time.Minute)},
	}}
}

func (f *fakeApprovals) List(ctx context.Context) ([]web.Approval, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.list), nil
}

func (f *fakeApprovals) Approve(ctx context.Context, id string, approver web.Operator, comment string) error {
	return f.decide("approve", "approved", id, approver, comment)
}

func (f *fakeApprovals) Deny(ctx context.Context, id string, approver web.Operator, comment string) error {
	return f.decide("deny", "denied", id, approver, comment)
}

func (f *fakeApprovals) decide(verb, status, id string, approver web.Operator, comment string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, decision{verb, id, approver, comment})
	if f.err != nil {
		return f.err
	}
	i := slices.IndexFunc(f.list, func(a web.Approval) bool { return a.ID == id })
	if i < 0 {
		return fmt.Errorf("approval %q: %w", id, fs.ErrNotExist)
	}
	a := &f.list[i]
	if a.Subject == approver.Subject {
		return &web.Error{Status: http.StatusForbidden, Msg: "you cannot approve your own request"}
	}
	if a.Status != "pending" {
		return &web.Error{Status: http.StatusConflict, Msg: "request " + id + " is already " + a.Status}
	}
	a.Status = status
	return nil
}

func (f *fakeApprovals) decisions() []decision {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeApprovals) failWith(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}
