package approvals_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bastion-dev/bastion/approvals"
	"github.com/bastion-dev/bastion/audit"
	"github.com/google/go-cmp/cmp"
)

type waitResult struct {
	r   *approvals.Request
	err error
	at  time.Time
}

func waitAsync(ctx context.Context, svc *approvals.Service, id string) <-chan waitResult {
	ch := make(chan waitResult, 1)
	go func() {
		r, err := svc.Wait(ctx, id)
		ch <- waitResult{r, err, time.Now()}
	}()
	return ch
}

// The server waits; the CLI, another process with its own connection to
// the same database file, approves; the decision reaches the waiter.
func TestApproveFromAnotherProcess(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := dbPath(t)
	var evs events
	notes := &recvNotifier{}
	server := &approvals.Service{Store: openStore(t, path), Audit: &evs, Poll: 20 * time.Millisecond, Notifiers: []approvals.Notifier{notes}}
	cli := &approvals.Service{Store: openStore(t, path), Audit: &evs}

	req, err := server.Create(ctx, request("sess-1", "kubectl delete pod canary-1"))
	if err != nil {
		t.Fatal(err)
	}
	if req.Status != approvals.Pending || !approvals.ValidID(req.ID) || !req.Expires.Equal(req.Created.Add(approvals.DefaultTimeout)) {
		t.Fatalf("created %+v", req)
	}
	done := waitAsync(ctx, server, req.ID)
	time.Sleep(60 * time.Millisecond) // let the waiter block
	select {
	case w := <-done:
		t.Fatalf("Wait returned before any decision: %+v, %v", w.r, w.err)
	default:
	}
	// The CLI sees it pending, by id typed in upper case.
	list, err := cli.List(ctx, false)
	if err != nil || len(list) != 1 || list[0].ID != req.ID {
		t.Fatalf("List = %+v, %v", list, err)
	}
	got, err := cli.Approve(ctx, strings.ToUpper(req.ID), bob, "looks right", 0)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != approvals.Approved || got.Decider == nil || got.Decider.Subject != "bob" || got.Comment != "looks right" {
		t.Fatalf("Approve = %+v", got)
	}
	select {
	case w := <-done:
		if w.err != nil || w.r.Status != approvals.Approved || w.r.Decider.Subject != "bob" {
			t.Fatalf("Wait = %+v, %v", w.r, w.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not see the other process's approval")
	}
	if d := cmp.Diff([]string{"requested", "approved"}, evs.steps(req.ID)); d != "" {
		t.Errorf("audit steps (-want +got):\n%s", d)
	}
	ev, _ := evs.find(req.ID, "approved")
	if ev.Identity == nil || ev.Identity.Subject != "bob" || ev.Session != "sess-1" || ev.Rule != "kubectl-delete" || ev.Detail["comment"] != "looks right" {
		t.Errorf("approved event = %+v", ev)
	}
	ev, _ = evs.find(req.ID, "requested")
	if ev.Identity == nil || ev.Identity.Subject != agent.Subject || ev.Detail["command"] != "kubectl delete pod canary-1" || ev.Detail["agent_reason"] != "clean up the failed canary" {
		t.Errorf("requested event = %+v", ev)
	}
	// The waiting process notifies both the request and its outcome.
	if d := cmp.Diff([]approvals.Step{approvals.StepRequested, approvals.StepApproved}, notes.steps()); d != "" {
		t.Errorf("notifications (-want +got):\n%s", d)
	}
}

// A decision made in the waiting process wakes the waiter without a poll.
func TestApproveSameProcessWakesAtOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc := &approvals.Service{Store: openStore(t, dbPath(t)), Poll: time.Hour}
	req, err := svc.Create(ctx, request("s", "terraform apply"))
	if err != nil {
		t.Fatal(err)
	}
	done := waitAsync(ctx, svc, req.ID)
	time.Sleep(20 * time.Millisecond)
	if _, err := svc.Approve(ctx, req.ID, bob, "", 0); err != nil {
		t.Fatal(err)
	}
	select {
	case w := <-done:
		if w.err != nil || w.r.Status != approvals.Approved {
			t.Fatalf("Wait = %+v, %v", w.r, w.err)
		}
	case <-time.After(10 * time.Second): // the poll is an hour: only the broadcast can wake it
		t.Fatal("the in-process approval did not wake the waiter")
	}
}

func TestDenyWithComment(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := dbPath(t)
	var evs events
	server := &approvals.Service{Store: openStore(t, path), Audit: &evs, Poll: 20 * time.Millisecond}
	cli := &approvals.Service{Store: openStore(t, path), Audit: &evs}
	req, err := server.Create(ctx, request("s", "helm uninstall web"))
	if err != nil {
		t.Fatal(err)
	}
	done := waitAsync(ctx, server, req.ID)
	if _, err := cli.Deny(ctx, req.ID, bob, ""); !errors.Is(err, approvals.ErrInvalid) {
		t.Fatalf("Deny without a comment: %v, want ErrInvalid", err)
	}
	if _, err := cli.Deny(ctx, req.ID, bob, "use the staging cluster"); err != nil {
		t.Fatal(err)
	}
	w := <-done
	if w.err != nil || w.r.Status != approvals.Denied || w.r.Comment != "use the staging cluster" {
		t.Fatalf("Wait = %+v, %v", w.r, w.err)
	}
	if _, err := cli.Approve(ctx, req.ID, bob, "", 0); !errors.Is(err, approvals.ErrNotPending) || !strings.Contains(err.Error(), "denied") {
		t.Fatalf("Approve after Deny: %v, want ErrNotPending naming denied", err)
	}
	if d := cmp.Diff([]string{"requested", "denied"}, evs.steps(req.ID)); d != "" {
		t.Errorf("audit steps (-want +got):\n%s", d)
	}
}

// Nobody answers: at the timeout the request expires and Wait returns it
// expired (the caller refuses the command). Time is fake (synctest).
func TestWaitTimeoutExpires(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		var evs events
		notes := &recvNotifier{}
		// A long poll keeps the fake five minutes cheap in real time.
		svc := &approvals.Service{Store: openStore(t, dbPath(t)), Audit: &evs, Notifiers: []approvals.Notifier{notes}, Poll: 10 * time.Second}
		start := time.Now()
		req, err := svc.Create(ctx, request("s", "systemctl restart nginx"))
		if err != nil {
			t.Fatal(err)
		}
		r, err := svc.Wait(ctx, req.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != approvals.Expired || r.Decider != nil || r.Comment != "no approver answered in time" {
			t.Fatalf("Wait = %+v", r)
		}
		if waited := time.Since(start); waited != approvals.DefaultTimeout {
			t.Errorf("waited %v, want exactly %v", waited, approvals.DefaultTimeout)
		}
		if _, err := svc.Approve(ctx, req.ID, bob, "", 0); !errors.Is(err, approvals.ErrNotPending) {
			t.Fatalf("Approve after expiry: %v, want ErrNotPending", err)
		}
		if d := cmp.Diff([]string{"requested", "expired"}, evs.steps(req.ID)); d != "" {
			t.Errorf("audit steps (-want +got):\n%s", d)
		}
		if d := cmp.Diff([]approvals.Step{approvals.StepRequested, approvals.StepExpired}, notes.steps()); d != "" {
			t.Errorf("notifications (-want +got):\n%s", d)
		}
	})
}

// A configured Timeout applies, and an approval just before it wins.
func TestWaitTimeoutConfigured(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		svc := &approvals.Service{Store: openStore(t, dbPath(t)), Timeout: time.Minute, Poll: time.Second}
		late, err := svc.Create(ctx, request("s", "rm -rf /srv/app/cache"))
		if err != nil {
			t.Fatal(err)
		}
		onTime, err := svc.Create(ctx, request("s", "rm -rf /srv/app/tmp"))
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			time.Sleep(59 * time.Second)
			svc.Approve(ctx, onTime.ID, bob, "", 0)
		}()
		w1, w2 := waitAsync(ctx, svc, late.ID), waitAsync(ctx, svc, onTime.ID)
		if r := <-w2; r.err != nil || r.r.Status != approvals.Approved {
			t.Errorf("approved at 59s: %+v, %v", r.r, r.err)
		}
		if r := <-w1; r.err != nil || r.r.Status != approvals.Expired || r.at.Sub(late.Created) != time.Minute {
			t.Errorf("unanswered: %+v, %v after %v", r.r, r.err, r.at.Sub(late.Created))
		}
	})
}

// The agent disconnects or presses Ctrl-C: the request is cancelled, with
// the cause as its comment, and cannot be approved any more.
func TestWaitCancelled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var evs events
	svc := &approvals.Service{Store: openStore(t, dbPath(t)), Audit: &evs, Poll: 20 * time.Millisecond}
	req, err := svc.Create(ctx, request("s", "git push --force"))
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancelCause(ctx)
	done := waitAsync(wctx, svc, req.ID)
	time.Sleep(30 * time.Millisecond)
	cancel(errors.New("client disconnected"))
	w := <-done
	if w.err != nil || w.r.Status != approvals.Cancelled || w.r.Comment != "client disconnected" {
		t.Fatalf("Wait = %+v, %v", w.r, w.err)
	}
	if _, err := svc.Approve(ctx, req.ID, bob, "", 0); !errors.Is(err, approvals.ErrNotPending) {
		t.Fatalf("Approve after cancel: %v, want ErrNotPending", err)
	}
	ev, ok := evs.find(req.ID, "cancelled")
	if !ok || ev.Identity != nil || ev.Detail["cause"] != "client disconnected" {
		t.Errorf("cancelled event = %+v (found %v)", ev, ok)
	}
}

func TestFourEyes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc := &approvals.Service{Store: openStore(t, dbPath(t))}
	human := request("s", "kubectl delete ns staging")
	human.Requester = alice // a person at a bastion shell
	req, err := svc.Create(ctx, human)
	if err != nil {
		t.Fatal(err)
	}
	// Same subject, even through another issuer or tool: refused.
	self := alice
	self.Issuer = "cli"
	_, err = svc.Approve(ctx, req.ID, self, "", 0)
	if !errors.Is(err, approvals.ErrSelfApproval) || !strings.Contains(err.Error(), "alice") {
		t.Fatalf("self-approval: %v, want ErrSelfApproval naming alice", err)
	}
	// An agent never approves, not even another agent's request.
	_, err = svc.Approve(ctx, req.ID, agent, "", 0)
	if !errors.Is(err, approvals.ErrNotHuman) {
		t.Fatalf("agent approval: %v, want ErrNotHuman", err)
	}
	if r, _ := svc.Get(ctx, req.ID); r.Status != approvals.Pending {
		t.Fatalf("after refused approvals the request is %s", r.Status)
	}
	// Withdrawing one's own request is allowed.
	r, err := svc.Deny(ctx, req.ID, alice, "changed my mind")
	if err != nil || r.Status != approvals.Denied {
		t.Fatalf("self-deny = %+v, %v", r, err)
	}
}

func TestConsumeOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var evs events
	svc := &approvals.Service{Store: openStore(t, dbPath(t)), Audit: &evs}
	const cmd = "terraform apply -auto-approve"
	req, err := svc.Create(ctx, request("sess-7", cmd))
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Consume(ctx, req.ID, "sess-7", cmd); !errors.Is(err, approvals.ErrNotApproved) {
		t.Fatalf("Consume while pending: %v, want ErrNotApproved", err)
	}
	if _, err := svc.Approve(ctx, req.ID, bob, "", 0); err != nil {
		t.Fatal(err)
	}
	if err := svc.Consume(ctx, req.ID, "sess-7", cmd); err != nil {
		t.Fatal(err)
	}
	if err := svc.Consume(ctx, req.ID, "sess-7", cmd); !errors.Is(err, approvals.ErrAlreadyUsed) {
		t.Fatalf("second Consume: %v, want ErrAlreadyUsed", err)
	}
	if r, _ := svc.Get(ctx, req.ID); !r.Used {
		t.Error("request not marked used")
	}
	if d := cmp.Diff([]string{"requested", "approved", "executed"}, evs.steps(req.ID)); d != "" {
		t.Errorf("audit steps (-want +got):\n%s", d)
	}
}

func TestConsumeMismatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc := &approvals.Service{Store: openStore(t, dbPath(t))}
	const cmd = "docker rm -f web"
	req, err := svc.Create(ctx, request("sess-1", cmd))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Approve(ctx, req.ID, bob, "", 0); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, id, session, command string
		want                       error
	}{
		{"other session", req.ID, "sess-2", cmd, approvals.ErrMismatch},
		{"other command", req.ID, "sess-1", cmd + " db", approvals.ErrMismatch},
		{"trailing space", req.ID, "sess-1", cmd + " ", approvals.ErrMismatch},
		{"unknown id", approvals.NewID(), "sess-1", cmd, approvals.ErrNotFound},
	} {
		if err := svc.Consume(ctx, tc.id, tc.session, tc.command); !errors.Is(err, tc.want) {
			t.Errorf("%s: Consume = %v, want %v", tc.name, err, tc.want)
		}
	}
	// The mismatches did not use it up.
	if err := svc.Consume(ctx, req.ID, "sess-1", cmd); err != nil {
		t.Fatalf("Consume with the right session and command: %v", err)
	}
}

func TestForSessionGrant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := newClock()
	svc := &approvals.Service{Store: openStore(t, dbPath(t)), Clock: clk.Now}
	req, err := svc.Create(ctx, request("sess-1", "kubectl delete pod a"))
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := svc.Granted(ctx, "sess-1", "kubectl-delete"); ok || err != nil {
		t.Fatalf("Granted before any approval = %v, %v", ok, err)
	}
	if _, err := svc.Approve(ctx, req.ID, bob, "", -time.Minute); !errors.Is(err, approvals.ErrInvalid) {
		t.Fatalf("negative for-session: %v, want ErrInvalid", err)
	}
	r, err := svc.Approve(ctx, req.ID, bob, "canary clean-up", 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if r.ForSession != 10*time.Minute {
		t.Errorf("ForSession = %v", r.ForSession)
	}
	check := func(when, session, rule string, want bool) {
		t.Helper()
		if ok, err := svc.Granted(ctx, session, rule); ok != want || err != nil {
			t.Errorf("%s: Granted(%s, %s) = %v, %v; want %v", when, session, rule, ok, err, want)
		}
	}
	check("at once", "sess-1", "kubectl-delete", true)
	check("at once", "sess-2", "kubectl-delete", false)
	check("at once", "sess-1", "terraform-apply", false)
	clk.Add(9*time.Minute + 59*time.Second)
	check("9m59s later", "sess-1", "kubectl-delete", true)
	clk.Add(time.Second)
	check("10m later", "sess-1", "kubectl-delete", false)

	// A denial or a plain approval grants nothing beyond the command.
	plain, _ := svc.Create(ctx, request("sess-3", "kubectl delete pod b"))
	svc.Approve(ctx, plain.ID, bob, "", 0)
	check("plain approval", "sess-3", "kubectl-delete", false)
}

func TestCancelOrphans(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var evs events
	svc := &approvals.Service{Store: openStore(t, dbPath(t)), Audit: &evs}
	ids := map[string]string{}
	for _, s := range []string{"live", "gone-1", "gone-2", "decided"} {
		r, err := svc.Create(ctx, request(s, "helm uninstall "+s))
		if err != nil {
			t.Fatal(err)
		}
		ids[s] = r.ID
	}
	if _, err := svc.Approve(ctx, ids["decided"], bob, "", 0); err != nil {
		t.Fatal(err)
	}
	n, err := svc.CancelOrphans(ctx, func(s string) bool { return s == "live" })
	if err != nil || n != 2 {
		t.Fatalf("CancelOrphans = %d, %v; want 2", n, err)
	}
	want := map[string]approvals.Status{"live": approvals.Pending, "gone-1": approvals.Cancelled, "gone-2": approvals.Cancelled, "decided": approvals.Approved}
	for s, st := range want {
		if r, _ := svc.Get(ctx, ids[s]); r.Status != st {
			t.Errorf("%s: status %s, want %s", s, r.Status, st)
		}
	}
	if ev, ok := evs.find(ids["gone-1"], "cancelled"); !ok || ev.Detail["cause"] != "the session that asked is gone" {
		t.Errorf("cancelled event = %+v", ev)
	}
	if n, _ := svc.CancelOrphans(ctx, func(string) bool { return false }); n != 1 {
		t.Errorf("second CancelOrphans cancelled %d, want 1 (only live was left)", n)
	}
}

// Two approvers race on the same request, from two processes: exactly one
// wins, the other is told it is no longer pending.
func TestRacingDecisions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := dbPath(t)
	var evs events
	a := &approvals.Service{Store: openStore(t, path), Audit: &evs}
	b := &approvals.Service{Store: openStore(t, path), Audit: &evs}
	carol := bob
	carol.Subject = "carol"
	for i := range 20 {
		session := fmt.Sprintf("s%d", i)
		req, err := a.Create(ctx, request(session, "kubectl delete pod p"))
		if err != nil {
			t.Fatal(err)
		}
		var (
			wg   sync.WaitGroup
			errs [2]error
		)
		start := make(chan struct{})
		wg.Go(func() { <-start; _, errs[0] = a.Approve(ctx, req.ID, bob, "", 0) })
		wg.Go(func() {
			<-start
			if i%2 == 0 {
				_, errs[1] = b.Approve(ctx, req.ID, carol, "", 5*time.Minute)
			} else {
				_, errs[1] = b.Deny(ctx, req.ID, carol, "no")
			}
		})
		close(start)
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, approvals.ErrNotPending):
				t.Fatalf("round %d: unexpected error %v", i, err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d winners (%v)", i, won, errs)
		}
		steps := evs.steps(req.ID)
		if len(steps) != 2 {
			t.Fatalf("round %d: audit steps %v, want requested and one decision", i, steps)
		}
		r, _ := a.Get(ctx, req.ID)
		winner := "bob"
		if errs[0] != nil {
			winner = "carol"
		}
		if r.Decider == nil || r.Decider.Subject != winner {
			t.Fatalf("round %d: stored decider %+v, winner %s", i, r.Decider, winner)
		}
		// Carol's for-session grant exists exactly when she won.
		granted, _ := a.Granted(ctx, session, "kubectl-delete")
		if want := i%2 == 0 && winner == "carol"; granted != want {
			t.Fatalf("round %d: winner %s, session grant %v", i, winner, granted)
		}
	}
}

// A request nobody waits for any more (the server crashed) cannot be
// approved past its expiry, and List marks it expired.
func TestStalePendingExpires(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := newClock()
	var evs events
	svc := &approvals.Service{Store: openStore(t, dbPath(t)), Clock: clk.Now, Audit: &evs}
	a, _ := svc.Create(ctx, request("s", "rm -rf /srv/app/a"))
	b, _ := svc.Create(ctx, request("s", "rm -rf /srv/app/b"))
	clk.Add(approvals.DefaultTimeout)
	_, err := svc.Approve(ctx, a.ID, bob, "", 0)
	var se *approvals.StateError
	if !errors.As(err, &se) || se.Status != approvals.Expired {
		t.Fatalf("late Approve: %v, want a StateError saying expired", err)
	}
	if r, _ := svc.Get(ctx, a.ID); r.Status != approvals.Expired {
		t.Errorf("late approval left the request %s", r.Status)
	}
	list, err := svc.List(ctx, false)
	if err != nil || len(list) != 0 {
		t.Fatalf("pending list = %+v, %v; want empty", list, err)
	}
	all, err := svc.List(ctx, true)
	if err != nil || len(all) != 2 || all[0].Status != approvals.Expired || all[1].Status != approvals.Expired {
		t.Fatalf("full list = %+v, %v", all, err)
	}
	if d := cmp.Diff([]string{"requested", "expired"}, evs.steps(b.ID)); d != "" {
		t.Errorf("audit steps of b (-want +got):\n%s", d)
	}
}

func TestCreateValidates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc := &approvals.Service{Store: openStore(t, dbPath(t))}
	for name, mod := range map[string]func(*approvals.Request){
		"no command":   func(r *approvals.Request) { r.Command = "" },
		"no session":   func(r *approvals.Request) { r.SessionID = "" },
		"no requester": func(r *approvals.Request) { r.Requester.Subject = "" },
		"bad id":       func(r *approvals.Request) { r.ID = "apr_../../x" },
	} {
		r := request("s", "kubectl delete pod x")
		mod(&r)
		if _, err := svc.Create(ctx, r); !errors.Is(err, approvals.ErrInvalid) {
			t.Errorf("%s: Create = %v, want ErrInvalid", name, err)
		}
	}
	// The caller's status and decision fields are ignored.
	r := request("s", "kubectl delete pod x")
	r.Status, r.Decider, r.Used = approvals.Approved, &bob, true
	got, err := svc.Create(ctx, r)
	if err != nil || got.Status != approvals.Pending || got.Decider != nil || got.Used {
		t.Fatalf("Create = %+v, %v", got, err)
	}
	if _, err := svc.Get(ctx, approvals.NewID()); !errors.Is(err, approvals.ErrNotFound) {
		t.Errorf("Get unknown: %v, want ErrNotFound", err)
	}
}

// An approval that cannot be audited is not shown to approvers.
func TestCreateFailsClosedOnAudit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	broken := audit.SinkFunc(func(audit.Event) error { return errors.New("disk full") })
	svc := &approvals.Service{Store: openStore(t, dbPath(t)), Audit: broken}
	if _, err := svc.Create(ctx, request("s", "kubectl delete pod x")); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Create with a broken audit log: %v", err)
	}
	if list, _ := svc.List(ctx, false); len(list) != 0 {
		t.Fatalf("pending after a failed audit: %+v", list)
	}
}

func TestIDs(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 1000 {
		id := approvals.NewID()
		if !approvals.ValidID(id) || len(id) != 14 || seen[id] {
			t.Fatalf("NewID = %q (valid %v, seen %v)", id, approvals.ValidID(id), seen[id])
		}
		seen[id] = true
	}
	for _, bad := range []string{"", "apr_", "apr_0123456789a", "apr_012345678", "APR_0123456789", "apr_012345678i", "apr_012345678u", "xyz_0123456789", "apr_01234/6789"} {
		if approvals.ValidID(bad) {
			t.Errorf("ValidID(%q) = true", bad)
		}
	}
}

func TestRequestJSON(t *testing.T) {
	t.Parallel()
	r := request("s", "kubectl delete pod x")
	r.ID, r.Status, r.Decider, r.Comment, r.ForSession = approvals.NewID(), approvals.Approved, &bob, "ok", 15*time.Minute
	r.Created = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	r.Expires, r.Decided = r.Created.Add(5*time.Minute), r.Created.Add(time.Minute)
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"for_session":"15m0s"`) || !strings.Contains(string(b), `"session_id":"s"`) || !strings.Contains(string(b), `"subject":"ci-bot"`) {
		t.Errorf("JSON = %s", b)
	}
	var back approvals.Request
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(r, back); d != "" {
		t.Errorf("round trip (-want +got):\n%s", d)
	}
	pending, _ := json.Marshal(approvals.Request{ID: "apr_0123456789", Status: approvals.Pending})
	for _, absent := range []string{"for_session", "decided", "decider"} {
		if strings.Contains(string(pending), absent) {
			t.Errorf("a pending request's JSON has %s: %s", absent, pending)
		}
	}
}
