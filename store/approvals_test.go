package store

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/approvals"
	"github.com/bastion-dev/bastion/identity"
	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

func pendingApproval(id, session string, created time.Time) approvals.Request {
	return approvals.Request{
		ID: id, Status: approvals.Pending,
		Requester: identity.Provenance{Kind: identity.KindAgent, Subject: "bot", Issuer: "https://issuer", Task: "OPS-1"},
		SessionID: session, Target: "db-main", Command: "psql -c 'DELETE FROM jobs'", Rule: "sql-delete-all",
		Reason: "DELETE without WHERE", AgentReason: "purge the queue", Task: "OPS-1", Cwd: "/srv",
		Commands: [][]string{{"psql", "-c", "DELETE FROM jobs"}},
		Created:  created, Expires: created.Add(5 * time.Minute),
	}
}

func TestApprovalRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openTest(t)
	want := pendingApproval("apr_aaaaaaaaaa", "s1", t0)
	if err := s.CreateApproval(ctx, want); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateApproval(ctx, want); err == nil {
		t.Fatal("a second request with the same id was stored")
	}
	got, err := s.Approval(ctx, want.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("stored request (-want +got):\n%s", d)
	}
	_, err = s.Approval(ctx, "apr_zzzzzzzzzz")
	if !errors.Is(err, approvals.ErrNotFound) || !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown id: %v, want both not-found errors", err)
	}
}

func TestApprovalsListing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openTest(t)
	for i, id := range []string{"apr_1111111111", "apr_2222222222", "apr_3333333333"} {
		if err := s.CreateApproval(ctx, pendingApproval(id, "s", t0.Add(time.Duration(i)*time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.TransitionApproval(ctx, "apr_2222222222", approvals.Transition{To: approvals.Denied, At: t0, Comment: "no"}); err != nil {
		t.Fatal(err)
	}
	ids := func(all bool) []string {
		list, err := s.Approvals(ctx, all)
		if err != nil {
			t.Fatal(err)
		}
		out := []string{}
		for _, r := range list {
			out = append(out, r.ID)
		}
		return out
	}
	if d := cmp.Diff([]string{"apr_3333333333", "apr_1111111111"}, ids(false)); d != "" {
		t.Errorf("pending, newest first (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"apr_3333333333", "apr_2222222222", "apr_1111111111"}, ids(true)); d != "" {
		t.Errorf("all, newest first (-want +got):\n%s", d)
	}
}

func TestTransitionApproval(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openTest(t)
	approver := &identity.Provenance{Kind: identity.KindHuman, Subject: "bob"}
	for _, tc := range []struct {
		name    string
		first   *approvals.Transition // applied before, when set
		t       approvals.Transition
		wantErr approvals.Status // status named by the StateError; "" for success
	}{
		{name: "approve", t: approvals.Transition{To: approvals.Approved, At: t0.Add(time.Minute), Decider: approver, Comment: "ok", ForSession: time.Hour}},
		{name: "deny", t: approvals.Transition{To: approvals.Denied, At: t0.Add(time.Minute), Decider: approver, Comment: "no"}},
		{name: "approve at expiry", t: approvals.Transition{To: approvals.Approved, At: t0.Add(5 * time.Minute), Decider: approver}, wantErr: approvals.Expired},
		{name: "deny after expiry", t: approvals.Transition{To: approvals.Denied, At: t0.Add(time.Hour), Decider: approver}, wantErr: approvals.Expired},
		{name: "expire after expiry", t: approvals.Transition{To: approvals.Expired, At: t0.Add(time.Hour), Comment: "timeout"}},
		{name: "cancel", t: approvals.Transition{To: approvals.Cancelled, At: t0.Add(time.Second), Comment: "gone"}},
		{name: "approve denied", first: &approvals.Transition{To: approvals.Denied, At: t0, Decider: approver, Comment: "no"},
			t: approvals.Transition{To: approvals.Approved, At: t0, Decider: approver}, wantErr: approvals.Denied},
		{name: "expire approved", first: &approvals.Transition{To: approvals.Approved, At: t0, Decider: approver},
			t: approvals.Transition{To: approvals.Expired, At: t0.Add(time.Hour)}, wantErr: approvals.Approved},
		{name: "cancel cancelled", first: &approvals.Transition{To: approvals.Cancelled, At: t0},
			t: approvals.Transition{To: approvals.Cancelled, At: t0}, wantErr: approvals.Cancelled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := approvals.NewID()
			session := "sess-" + id
			if err := s.CreateApproval(ctx, pendingApproval(id, session, t0)); err != nil {
				t.Fatal(err)
			}
			if tc.first != nil {
				if _, err := s.TransitionApproval(ctx, id, *tc.first); err != nil {
					t.Fatal(err)
				}
			}
			before, _ := s.Approval(ctx, id)
			got, err := s.TransitionApproval(ctx, id, tc.t)
			if tc.wantErr != "" {
				var se *approvals.StateError
				if !errors.As(err, &se) || se.Status != tc.wantErr || !errors.Is(err, approvals.ErrNotPending) {
					t.Fatalf("err = %v, want a StateError %s", err, tc.wantErr)
				}
				after, _ := s.Approval(ctx, id)
				if d := cmp.Diff(before, after); d != "" {
					t.Errorf("a refused transition changed the row (-before +after):\n%s", d)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := before
			want.Status, want.Decider, want.Comment, want.Decided = tc.t.To, tc.t.Decider, tc.t.Comment, tc.t.At
			if tc.t.To == approvals.Approved {
				want.ForSession = tc.t.ForSession
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("transitioned (-want +got):\n%s", d)
			}
			stored, _ := s.Approval(ctx, id)
			if d := cmp.Diff(got, stored); d != "" {
				t.Errorf("returned and stored differ (-returned +stored):\n%s", d)
			}
			granted, err := s.ApprovalGranted(ctx, session, "sql-delete-all", tc.t.At)
			if err != nil || granted != (tc.t.ForSession > 0 && tc.t.To == approvals.Approved) {
				t.Errorf("grant = %v, %v", granted, err)
			}
		})
	}
	if _, err := s.TransitionApproval(ctx, "apr_zzzzzzzzzz", approvals.Transition{To: approvals.Cancelled, At: t0}); !errors.Is(err, approvals.ErrNotFound) {
		t.Errorf("unknown id: %v, want ErrNotFound", err)
	}
	if _, err := s.TransitionApproval(ctx, "apr_zzzzzzzzzz", approvals.Transition{To: approvals.Pending, At: t0}); err == nil {
		t.Error("a transition to pending was accepted")
	}
}

// Many connections (as many processes would) race to decide one request:
// exactly one compare-and-set changes it.
func TestTransitionApprovalRace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "b.db")
	var stores []*Store
	for range 4 {
		s, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores = append(stores, s)
	}
	if err := stores[0].CreateApproval(ctx, pendingApproval("apr_rrrrrrrrrr", "s", t0)); err != nil {
		t.Fatal(err)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins []string
	)
	start := make(chan struct{})
	for i, s := range stores {
		for j := range 2 {
			who := &identity.Provenance{Kind: identity.KindHuman, Subject: string(rune('a'+i)) + string(rune('0'+j))}
			wg.Go(func() {
				<-start
				to := approvals.Approved
				if j == 1 {
					to = approvals.Denied
				}
				_, err := s.TransitionApproval(ctx, "apr_rrrrrrrrrr", approvals.Transition{To: to, At: t0, Decider: who, ForSession: time.Hour})
				if err == nil {
					mu.Lock()
					wins = append(wins, who.Subject)
					mu.Unlock()
				} else if !errors.Is(err, approvals.ErrNotPending) {
					t.Errorf("%s: %v", who.Subject, err)
				}
			})
		}
	}
	close(start)
	wg.Wait()
	if len(wins) != 1 {
		t.Fatalf("winners %v, want exactly one", wins)
	}
	r, _ := stores[0].Approval(ctx, "apr_rrrrrrrrrr")
	if r.Decider == nil || r.Decider.Subject != wins[0] {
		t.Errorf("stored decider %+v, winner %s", r.Decider, wins[0])
	}
	var grants int
	stores[0].db.QueryRowContext(ctx, `SELECT COUNT(*) FROM approval_grants`).Scan(&grants)
	if want := map[bool]int{true: 1, false: 0}[r.Status == approvals.Approved]; grants != want {
		t.Errorf("%d grants stored for a %s request, want %d", grants, r.Status, want)
	}
}

func TestConsumeApproval(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openTest(t)
	r := pendingApproval("apr_cccccccccc", "s1", t0)
	if err := s.CreateApproval(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := s.ConsumeApproval(ctx, r.ID, "s1", r.Command); !errors.Is(err, approvals.ErrNotApproved) {
		t.Fatalf("pending: %v, want ErrNotApproved", err)
	}
	if _, err := s.TransitionApproval(ctx, r.ID, approvals.Transition{To: approvals.Approved, At: t0}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, id, session, command string
		want                       error
	}{
		{"unknown", "apr_zzzzzzzzzz", "s1", r.Command, approvals.ErrNotFound},
		{"session", r.ID, "s2", r.Command, approvals.ErrMismatch},
		{"command", r.ID, "s1", "psql -c 'DELETE FROM users'", approvals.ErrMismatch},
		{"first use", r.ID, "s1", r.Command, nil},
		{"second use", r.ID, "s1", r.Command, approvals.ErrAlreadyUsed},
	} {
		if err := s.ConsumeApproval(ctx, tc.id, tc.session, tc.command); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if got, _ := s.Approval(ctx, r.ID); !got.Used {
		t.Error("not marked used")
	}
}

func TestApprovalGrantWindow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openTest(t)
	r := pendingApproval("apr_gggggggggg", "s1", t0)
	if err := s.CreateApproval(ctx, r); err != nil {
		t.Fatal(err)
	}
	at := t0.Add(time.Minute)
	if _, err := s.TransitionApproval(ctx, r.ID, approvals.Transition{To: approvals.Approved, At: at, ForSession: 10 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, session, rule string
		at                  time.Time
		want                bool
	}{
		{"before the grant", "s1", r.Rule, at.Add(-time.Nanosecond), false},
		{"at the grant", "s1", r.Rule, at, true},
		{"last instant", "s1", r.Rule, at.Add(10*time.Minute - time.Nanosecond), true},
		{"at the end", "s1", r.Rule, at.Add(10 * time.Minute), false},
		{"other session", "s2", r.Rule, at, false},
		{"other rule", "s1", "kubectl-delete", at, false},
	} {
		if got, err := s.ApprovalGranted(ctx, tc.session, tc.rule, tc.at); got != tc.want || err != nil {
			t.Errorf("%s: %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
}
