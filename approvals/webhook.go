package approvals

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/bastion-dev/bastion/audit"
	"github.com/bastion-dev/bastion/masking"
)

// Webhook posts each event as JSON to URL. Delivery runs in one background
// goroutine, in the order Notify was called, retried with exponential
// backoff; a slow or failing endpoint never blocks or fails a decision.
// The zero value (with URL set) works; Close waits for queued deliveries.
//
// The body is {"step": ..., "approval": {...}, "text": ...}, or with Slack
// a Slack-compatible message ({"text": ..., "blocks": [...]}) for an
// incoming webhook.
type Webhook struct {
	URL   string
	Slack bool
	// Header is added to every request (for example an Authorization
	// header the endpoint wants).
	Header http.Header
	Client *http.Client // nil means a client with a 10s timeout
	// Attempts bounds the tries of one event; 0 means 5.
	Attempts int
	// Backoff is the wait before the first retry, doubled after each; 0
	// means 500ms.
	Backoff time.Duration
	// MaxElapsed bounds the total time spent on one event; 0 means 1m.
	MaxElapsed time.Duration
	// QueueSize is how many events may wait; beyond it new events are
	// dropped (and logged). 0 means 256.
	QueueSize int
	// Audit receives a "notified" step per event: delivered or not, after
	// how many attempts. nil records nothing.
	Audit  audit.Sink
	Logger *slog.Logger     // nil means slog.Default()
	Clock  func() time.Time // nil means time.Now

	mu      sync.Mutex
	queue   chan Event         // guarded by mu; created by the first Notify
	closed  bool               // guarded by mu
	stop    context.CancelFunc // guarded by mu; cancels in-flight deliveries
	running sync.WaitGroup     // the delivery goroutine
}

// Notify queues ev for delivery and returns at once. ctx is not used for
// the delivery, which outlives the request that caused it.
func (w *Webhook) Notify(_ context.Context, ev Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		w.logger().Warn("approval webhook closed: event dropped", "id", ev.Request.ID, "step", ev.Step)
		return
	}
	if w.queue == nil {
		size := w.QueueSize
		if size <= 0 {
			size = 256
		}
		w.queue = make(chan Event, size)
		ctx, cancel := context.WithCancel(context.Background())
		w.stop = cancel
		w.running.Go(func() { w.deliverAll(ctx, w.queue) })
	}
	select {
	case w.queue <- ev:
	default:
		w.logger().Warn("approval webhook queue full: event dropped", "id", ev.Request.ID, "step", ev.Step, "endpoint", w.endpoint())
	}
}

// Close stops accepting events and waits until the queued ones are
// delivered or given up. When ctx ends first, in-flight deliveries are
// abandoned and Close returns ctx's error once the goroutine has stopped.
func (w *Webhook) Close(ctx context.Context) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	if w.queue == nil {
		w.mu.Unlock()
		return nil
	}
	close(w.queue)
	stop := w.stop
	w.mu.Unlock()
	done := make(chan struct{})
	go func() { w.running.Wait(); close(done) }()
	select {
	case <-done:
		stop()
		return nil
	case <-ctx.Done():
		stop()
		<-done
		return ctx.Err()
	}
}

func (w *Webhook) deliverAll(ctx context.Context, queue <-chan Event) {
	for ev := range queue {
		if ctx.Err() != nil {
			continue // abandoned by Close: drain quickly
		}
		attempts, status, err := w.deliver(ctx, ev)
		d := map[string]any{"step": string(StepNotified), "id": ev.Request.ID, "event": string(ev.Step),
			"endpoint": w.endpoint(), "attempts": attempts, "delivered": err == nil}
		if status != 0 {
			d["http_status"] = status
		}
		if err != nil {
			d["error"] = err.Error()
			w.logger().Warn("approval webhook failed", "id", ev.Request.ID, "step", ev.Step, "endpoint", w.endpoint(), "attempts", attempts, "err", err)
		}
		if w.Audit != nil {
			if aerr := w.Audit.Record(audit.Event{Time: w.now(), Type: audit.Approval, Session: ev.Request.SessionID, Rule: ev.Request.Rule, Detail: d}); aerr != nil {
				w.logger().Error("audit write failed", "type", audit.Approval, "err", aerr)
			}
		}
	}
}

// errPermanent marks a failure that a retry cannot fix (a 4xx answer other
// than 408 and 429).
var errPermanent = errors.New("permanent")

// deliver posts ev until it is accepted, the failure is permanent, or the
// attempts or the time run out. It returns the attempts made and the last
// HTTP status.
func (w *Webhook) deliver(ctx context.Context, ev Event) (attempts, status int, err error) {
	body, err := w.body(ev)
	if err != nil {
		return 0, 0, err
	}
	limit := w.Attempts
	if limit <= 0 {
		limit = 5
	}
	wait := w.Backoff
	if wait <= 0 {
		wait = 500 * time.Millisecond
	}
	total := w.MaxElapsed
	if total <= 0 {
		total = time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, total)
	defer cancel()
	for attempts = 1; ; attempts++ {
		status, err = w.post(ctx, body)
		if err == nil {
			return attempts, status, nil
		}
		if errors.Is(err, errPermanent) || attempts >= limit {
			return attempts, status, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return attempts, status, fmt.Errorf("%w (gave up: %w)", err, context.Cause(ctx))
		case <-t.C:
		}
		wait *= 2
	}
}

func (w *Webhook) post(ctx context.Context, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("%w: %w", errPermanent, err)
	}
	for k, vs := range w.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "bastion-approvals")
	client := w.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		// The URL may carry a secret (Slack webhook URLs do): say only
		// what went wrong, not where.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return resp.StatusCode, nil
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return resp.StatusCode, fmt.Errorf("endpoint answered %s", resp.Status)
	}
	return resp.StatusCode, fmt.Errorf("%w: endpoint answered %s", errPermanent, resp.Status)
}

// endpoint names the webhook in logs without its path, which may be the
// secret.
func (w *Webhook) endpoint() string {
	u, err := url.Parse(w.URL)
	if err != nil {
		return "(bad url)"
	}
	return u.Scheme + "://" + u.Host
}

func (w *Webhook) logger() *slog.Logger {
	if w.Logger != nil {
		return w.Logger
	}
	return slog.Default()
}

func (w *Webhook) now() time.Time {
	if w.Clock != nil {
		return w.Clock()
	}
	return time.Now()
}

func (w *Webhook) body(ev Event) ([]byte, error) {
	if w.Slack {
		return json.Marshal(slackMessage(ev))
	}
	return json.Marshal(struct {
		Event
		Text string `json:"text"`
	}{ev, Summary(ev)})
}

// Summary is a one-line description of an event for people. Agent text in
// it (the command, the subject, comments) goes through masking.Display, so
// that no byte of it can move the cursor, hide text or reorder the line,
// and the command comes last, so that nothing it says can pass for what
// follows it.
func Summary(ev Event) string {
	r := ev.Request
	who := masking.Display(r.Requester.String())
	sum := ShortSum(r.Sum())
	cmd := masking.Display(r.Command)
	switch ev.Step {
	case StepRequested:
		return fmt.Sprintf("%s asks to run a command (%s, sha256 %s); approve with `bastion approvals approve %s --hash %s` or deny with `bastion approvals deny %s --comment ...`: %s",
			who, rulesOf(r), sum, r.ID, sum, r.ID, cmd)
	case StepApproved, StepDenied:
		by := "?"
		if r.Decider != nil {
			by = masking.Display(r.Decider.String())
		}
		s := fmt.Sprintf("approval %s %s by %s for %s (sha256 %s)", r.ID, r.Status, by, who, sum)
		if r.Comment != "" {
			s += ", comment: " + masking.Display(r.Comment)
		}
		return s + ": " + cmd
	}
	s := fmt.Sprintf("approval %s %s for %s (sha256 %s)", r.ID, r.Status, who, sum)
	if r.Comment != "" {
		s += ", comment: " + masking.Display(r.Comment)
	}
	return s + ": " + cmd
}

// rulesOf names every rule the request needs: "rule a" or "rules a, b".
func rulesOf(r Request) string {
	rules := []string{r.Rule}
	for _, p := range r.Parts {
		if !slices.Contains(rules, p.Rule) {
			rules = append(rules, p.Rule)
		}
	}
	for i, id := range rules {
		rules[i] = masking.Display(id)
	}
	if len(rules) == 1 {
		return "rule " + rules[0]
	}
	return "rules " + strings.Join(rules, ", ")
}

// Slack's section text is limited to 3000 characters.
const slackTextMax = 2900

// slackMessage is a Slack incoming-webhook payload. Every text that comes
// from the agent is rendered by masking.Display and escaped (&, <, >), so
// a command can neither hide a part of itself nor mention @channel or
// plant a link.
func slackMessage(ev Event) map[string]any {
	r := ev.Request
	var head string
	switch ev.Step {
	case StepRequested:
		head = fmt.Sprintf(":raised_hand: *Approval %s*: %s asks to run (%s, sha256 `%s`)", r.ID, slackEscape(masking.Display(r.Requester.String())),
			slackEscape(rulesOf(r)), ShortSum(r.Sum()))
	case StepApproved:
		head = fmt.Sprintf(":white_check_mark: *Approval %s approved*%s", r.ID, slackBy(r))
	case StepDenied:
		head = fmt.Sprintf(":no_entry: *Approval %s denied*%s", r.ID, slackBy(r))
	default:
		head = fmt.Sprintf(":hourglass: *Approval %s %s*", r.ID, r.Status)
	}
	// A backtick inside the command would end the code block early: it
	// is escaped like any other rune that means something here.
	cmd := clipDisplay(r.Command, "`", slackTextMax)
	blocks := []map[string]any{
		{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": head}},
		{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": "```" + slackEscape(cmd) + "```"}},
	}
	if len(r.Parts) > 0 && ev.Step == StepRequested {
		var b strings.Builder
		b.WriteString("*Needs approval:*")
		for _, p := range r.Parts {
			fmt.Fprintf(&b, "\n• `%s` (rule `%s`): %s", clipDisplay(p.Text, "`", 300),
				masking.DisplayEscaping(p.Rule, "`"), clipDisplay(p.Reason, "", 300))
		}
		blocks = append(blocks, map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": slackEscape(clip(b.String(), slackTextMax))}})
	}
	var ctx []map[string]any
	add := func(label, v string) {
		if v != "" {
			ctx = append(ctx, map[string]any{"type": "mrkdwn", "text": "*" + label + ":* " + slackEscape(clipDisplay(v, "", 1000))})
		}
	}
	add("reason", r.Reason)
	add("agent says", r.AgentReason)
	add("task", r.Task)
	add("session", r.SessionID)
	add("comment", r.Comment)
	if ev.Step == StepRequested {
		add("decide", "bastion approvals approve "+r.ID+" --hash "+ShortSum(r.Sum())+"  |  bastion approvals deny "+r.ID+" --comment ...")
	}
	if len(ctx) > 0 {
		blocks = append(blocks, map[string]any{"type": "context", "elements": ctx})
	}
	return map[string]any{"text": slackEscape(clip(Summary(ev), slackTextMax)), "blocks": blocks}
}

// clip shortens s to at most n bytes without splitting a UTF-8 sequence.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// clipDisplay is the rendering (masking.DisplayEscaping with also) of the
// longest prefix of s whose rendering fits in n bytes, and "…" when s was
// cut: cutting the rendering instead could leave half an escape.
func clipDisplay(s, also string, n int) string {
	if out := masking.DisplayEscaping(s, also); len(out) <= n {
		return out
	}
	prefix := func(k int) string {
		for k > 0 && !utf8.RuneStart(s[k]) {
			k--
		}
		return s[:k]
	}
	lo, hi := 0, len(s) // the rendering of prefix(lo) fits, that of s does not
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if len(masking.DisplayEscaping(prefix(mid), also)) <= n {
			lo = mid
		} else {
			hi = mid
		}
	}
	return masking.DisplayEscaping(prefix(lo), also) + "…"
}

func slackBy(r Request) string {
	if r.Decider == nil {
		return ""
	}
	return " by " + slackEscape(masking.Display(r.Decider.String()))
}

// slackEscape escapes the three characters Slack's mrkdwn treats as control
// characters (https://api.slack.com/reference/surfaces/formatting#escaping).
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
