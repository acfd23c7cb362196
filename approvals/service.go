package approvals

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bastion-dev/bastion/audit"
	"github.com/bastion-dev/bastion/identity"
	"github.com/bastion-dev/bastion/masking"
)

// Service creates, waits for, decides and consumes approval requests. Store
// is required; the zero value of every other field works. A Service is safe
// for concurrent use and must not be copied after first use.
type Service struct {
	Store Store
	// Audit receives an audit.Approval event for every step; nil means
	// audit.Discard (tests only: bastion always sets it).
	Audit audit.Sink
	// Notifiers are told about new requests and their outcome. Outcomes are
	// notified by the process that waits for the request (it holds the
	// session), whichever process decided it.
	Notifiers []Notifier
	// Clock stamps requests and decisions and tells Wait when a request
	// expires; nil means time.Now. Wait sleeps in real time (fake time
	// under testing/synctest), so a Clock must advance with it.
	Clock func() time.Time
	// Timeout is how long a request waits for a decision; 0 means 5 minutes.
	Timeout time.Duration
	// Poll is the PollWaker interval used when Waker is nil; 0 means 50ms.
	Poll time.Duration
	// Waker wakes Wait when another process may have decided; nil means a
	// PollWaker with Poll.
	Waker Waker

	local broadcast // wakes this process's waiters at once
}

// DefaultTimeout is how long a request waits when Service.Timeout is 0.
const DefaultTimeout = 5 * time.Minute

func (s *Service) now() time.Time {
	if s.Clock != nil {
		return s.Clock()
	}
	return time.Now()
}

func (s *Service) timeout() time.Duration {
	if s.Timeout > 0 {
		return s.Timeout
	}
	return DefaultTimeout
}

func (s *Service) waker() Waker {
	if s.Waker != nil {
		return s.Waker
	}
	return PollWaker{Interval: s.Poll}
}

// Create stores a new pending request and only then audits and notifies it.
// The caller fills in who asks, for what and why; Create sets ID, Status,
// Created and Expires (ID and Expires are kept when set). An error means
// the command must not run and nobody was asked.
func (s *Service) Create(ctx context.Context, r Request) (*Request, error) {
	if r.Command == "" || r.SessionID == "" || r.Requester.Subject == "" {
		return nil, fmt.Errorf("create approval: %w: need a command, a session and a requester", ErrInvalid)
	}
	if len(r.AgentReason) > MaxAgentReason {
		return nil, fmt.Errorf("create approval: %w: the agent's reason is longer than %d bytes", ErrInvalid, MaxAgentReason)
	}
	if r.ID == "" {
		r.ID = NewID()
	}
	r.ID = normID(r.ID)
	if !ValidID(r.ID) {
		return nil, fmt.Errorf("create approval: %w: bad id %q", ErrInvalid, r.ID)
	}
	now := s.now()
	r.Status, r.Created, r.Used = Pending, now, false
	r.Decider, r.Comment, r.Decided, r.ForSession = nil, "", time.Time{}, 0
	if r.Expires.IsZero() {
		r.Expires = now.Add(s.timeout())
	}
	if err := s.Store.CreateApproval(ctx, r); err != nil {
		return nil, fmt.Errorf("create approval: %w", err)
	}
	if err := s.record(r, StepRequested, &r.Requester, nil); err != nil {
		// Unaudited requests are not shown to approvers: cancel it.
		s.finish(ctx, r.ID, Transition{To: Cancelled, Comment: "the request could not be audited"})
		return nil, fmt.Errorf("create approval %s: %w", r.ID, err)
	}
	s.notify(ctx, StepRequested, r)
	return &r, nil
}

// Get returns a request.
func (s *Service) Get(ctx context.Context, id string) (*Request, error) {
	r, err := s.Store.Approval(ctx, normID(id))
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// List returns the pending requests, or all of them, newest first. Pending
// requests past their expiry (nobody waits for them any more, for example
// after a crash) are marked expired first, so that everything listed as
// pending can still be decided.
func (s *Service) List(ctx context.Context, all bool) ([]Request, error) {
	list, err := s.Store.Approvals(ctx, all)
	if err != nil {
		return nil, fmt.Errorf("list approvals: %w", err)
	}
	now := s.now()
	out := list[:0]
	for _, r := range list {
		if r.Status == Pending && !now.Before(r.Expires) {
			fin, err := s.finish(ctx, r.ID, Transition{To: Expired, Comment: "no approver answered in time"})
			if err != nil {
				return nil, fmt.Errorf("list approvals: %w", err)
			}
			r = *fin
			if !all {
				continue
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// Wait blocks until the request is approved, denied, expired or cancelled,
// and returns it in that final status; the error is for store failures only (the
// caller refuses the command). When ctx ends first (the agent disconnected
// or pressed Ctrl-C) the request is marked cancelled, with context.Cause as
// its comment. If a decision raced the cancellation, the request is
// returned as the store has it: the caller must not run anything once ctx
// is done. At its expiry a request is marked expired (fail closed).
//
// A decision written by this process wakes Wait at once; one written by
// another process (the CLI, another replica) is seen through the Waker.
func (s *Service) Wait(ctx context.Context, id string) (*Request, error) {
	id = normID(id)
	local, unsubscribe := s.local.subscribe(id)
	defer unsubscribe()
	remote, release := s.waker().Subscribe(ctx, id)
	defer release()
	// Since Go 1.23 Reset and Stop leave no stale tick behind, so the timer
	// needs no draining between rounds.
	timer := time.NewTimer(s.timeout())
	defer timer.Stop()
	for {
		r, err := s.Store.Approval(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return s.cancel(ctx, id)
			}
			return nil, fmt.Errorf("wait for approval %s: %w", id, err)
		}
		if r.Status.Final() {
			s.notify(ctx, stepOf(r.Status), r)
			return &r, nil
		}
		left := r.Expires.Sub(s.now())
		if left <= 0 {
			fin, err := s.finish(ctx, id, Transition{To: Expired, Comment: "no approver answered in time"})
			if err == nil {
				s.notify(ctx, stepOf(fin.Status), *fin)
			}
			return fin, err
		}
		timer.Reset(left)
		select {
		case <-ctx.Done():
			return s.cancel(ctx, id)
		case <-timer.C:
		case <-local:
		case <-remote:
		}
	}
}

func (s *Service) cancel(ctx context.Context, id string) (*Request, error) {
	why := "the agent went away"
	if c := context.Cause(ctx); c != nil && !errors.Is(c, context.Canceled) {
		why = c.Error()
	}
	fin, err := s.finish(ctx, id, Transition{To: Cancelled, Comment: why})
	if err == nil {
		s.notify(ctx, stepOf(fin.Status), *fin)
	}
	return fin, err
}

// Approve approves a pending request. approver must be a human other than
// the requester (four-eyes). forSession > 0 also grants the request's rule
// to its session for that long. Only a pending request can be approved: a
// decided, expired or cancelled one fails with a *StateError.
func (s *Service) Approve(ctx context.Context, id string, approver identity.Provenance, comment string, forSession time.Duration) (*Request, error) {
	return s.ApproveSum(ctx, id, "", approver, comment, forSession)
}

// MinSumPrefix is the fewest hex digits of a sum that ApproveSum takes.
const MinSumPrefix = 8

// ApproveSum is Approve bound to what the approver looked at: sum, the
// request's Sum or a prefix of it (at least MinSumPrefix hex digits, as
// ShortSum shows it; "sha256:" in front is accepted), must match the
// command's, or nothing is decided and the error matches ErrStaleHash.
// An empty sum checks nothing (Approve).
func (s *Service) ApproveSum(ctx context.Context, id, sum string, approver identity.Provenance, comment string, forSession time.Duration) (*Request, error) {
	if forSession < 0 {
		return nil, fmt.Errorf("approve %s: %w: negative --for-session %s", id, ErrInvalid, forSession)
	}
	sum = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(sum), "sha256:"))
	if sum != "" && (len(sum) < MinSumPrefix || len(sum) > 64 || strings.Trim(sum, "0123456789abcdef") != "") {
		return nil, fmt.Errorf("approve %s: %w: --hash wants at least %d hex digits of the command's sha256, as approvals show prints it", id, ErrInvalid, MinSumPrefix)
	}
	return s.decide(ctx, id, approver, Transition{To: Approved, Comment: comment, ForSession: forSession}, sum)
}

// Deny refuses a pending request. The comment, shown to the agent, is
// required: say why and what to do instead.
func (s *Service) Deny(ctx context.Context, id string, approver identity.Provenance, comment string) (*Request, error) {
	if comment == "" {
		return nil, fmt.Errorf("deny %s: %w: a comment is required (tell the agent why)", id, ErrInvalid)
	}
	return s.decide(ctx, id, approver, Transition{To: Denied, Comment: comment}, "")
}

// decide applies t for who; sum, when not empty, is the prefix of the
// command's sum an approver was shown (ApproveSum).
func (s *Service) decide(ctx context.Context, id string, who identity.Provenance, t Transition, sum string) (*Request, error) {
	id = normID(id)
	verb := "approve"
	if t.To == Denied {
		verb = "deny"
	}
	if who.Subject == "" {
		return nil, fmt.Errorf("%s %s: %w: the approver has no subject", verb, id, ErrInvalid)
	}
	r, err := s.Store.Approval(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", verb, id, err)
	}
	if t.To == Approved {
		if err := mayApprove(id, who, r, sum); err != nil {
			// A refused approval is audited: an attempt at self-approval
			// is worth knowing about. The refusal stands even if the
			// audit write fails.
			s.record(r, StepRefused, &who, map[string]any{"cause": err.Error()})
			return nil, err
		}
	}
	t.At, t.Decider = s.now(), &who
	fin, err := s.Store.TransitionApproval(ctx, id, t)
	if err != nil {
		if errors.Is(err, ErrNotPending) {
			if r, gerr := s.Store.Approval(ctx, id); gerr == nil && r.Status == Pending && !t.At.Before(r.Expires) {
				// Nobody waits for it any more: record that it expired.
				if fin, ferr := s.finish(ctx, id, Transition{To: Expired, Comment: "no approver answered in time"}); ferr == nil {
					return nil, fmt.Errorf("%s %s: %w", verb, id, &StateError{ID: id, Status: fin.Status})
				}
			}
		}
		return nil, fmt.Errorf("%s %s: %w", verb, id, err)
	}
	s.local.wake(id)
	if err := s.record(fin, stepOf(fin.Status), &who, nil); err != nil {
		return &fin, fmt.Errorf("%s %s: the decision is stored but could not be audited: %w", verb, id, err)
	}
	return &fin, nil
}

// mayApprove checks who may approve r, as an approver shown sum (a prefix
// of r's Sum, or ""): a human (denying one's own request is harmless,
// withdrawing it; approving it is what four eyes forbid), not the
// requester nor its sponsor, and the command they looked at.
func mayApprove(id string, who identity.Provenance, r Request, sum string) error {
	if who.Kind != identity.KindHuman {
		return fmt.Errorf("approve %s: %w, and %s is a %s", id, ErrNotHuman, masking.Display(who.Subject), masking.Display(string(who.Kind)))
	}
	if err := fourEyes(id, who, r.Requester); err != nil {
		return err
	}
	if sum != "" && !strings.HasPrefix(r.Sum(), sum) {
		return fmt.Errorf("approve %s: %w (you gave %s, the command is sha256 %s)", id, ErrStaleHash, sum, ShortSum(r.Sum()))
	}
	return nil
}

// finish moves a pending request to a final status on the system's behalf
// (expiry, cancellation). It runs even when ctx is done: marking a request
// cancelled is what a cancelled ctx asks for. When the request is no longer
// pending, it returns it as it is.
func (s *Service) finish(ctx context.Context, id string, t Transition) (*Request, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	t.At = s.now()
	fin, err := s.Store.TransitionApproval(ctx, id, t)
	if errors.Is(err, ErrNotPending) {
		r, gerr := s.Store.Approval(ctx, id)
		if gerr != nil {
			return nil, fmt.Errorf("approval %s: %w", id, gerr)
		}
		return &r, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mark approval %s %s: %w", id, t.To, err)
	}
	s.local.wake(id)
	if err := s.record(fin, stepOf(fin.Status), nil, map[string]any{"cause": t.Comment}); err != nil {
		return &fin, fmt.Errorf("mark approval %s %s: %w", id, t.To, err)
	}
	return &fin, nil
}

// Consume marks an approved request used just before its command runs: the
// approval must have been given for exactly this session and command, and
// it works once. It is audited as step "executed"; on any error the
// command must not run.
func (s *Service) Consume(ctx context.Context, id, sessionID, command string) error {
	id = normID(id)
	held, err := s.Store.Approval(ctx, id)
	if err != nil {
		return fmt.Errorf("use approval %s: %w", id, err)
	}
	// The store compares the command too; the sum is the binding the
	// approver was shown, checked here where it is explained.
	if err := held.Binds(command); err != nil {
		return fmt.Errorf("use approval %s: %w", id, err)
	}
	if err := s.Store.ConsumeApproval(ctx, id, sessionID, command); err != nil {
		return fmt.Errorf("use approval %s: %w", id, err)
	}
	r, err := s.Store.Approval(ctx, id)
	if err != nil {
		return fmt.Errorf("use approval %s: %w", id, err)
	}
	if err := s.record(r, StepExecuted, &r.Requester, nil); err != nil {
		return fmt.Errorf("use approval %s: %w", id, err)
	}
	return nil
}

// Granted reports whether an approval granted rule to the session (approve
// --for-session) and the grant still runs.
func (s *Service) Granted(ctx context.Context, sessionID, rule string) (bool, error) {
	if sessionID == "" || rule == "" {
		return false, nil
	}
	ok, err := s.Store.ApprovalGranted(ctx, sessionID, rule, s.now())
	if err != nil {
		return false, fmt.Errorf("approval grant for session %s: %w", sessionID, err)
	}
	return ok, nil
}

// CancelOrphans cancels the pending requests whose session is no longer
// live, typically at start-up after a restart killed the sessions that
// waited. It returns how many it cancelled.
func (s *Service) CancelOrphans(ctx context.Context, live func(sessionID string) bool) (int, error) {
	list, err := s.Store.Approvals(ctx, false)
	if err != nil {
		return 0, fmt.Errorf("cancel orphaned approvals: %w", err)
	}
	n := 0
	for _, r := range list {
		if r.Status != Pending || live(r.SessionID) {
			continue
		}
		fin, err := s.finish(ctx, r.ID, Transition{To: Cancelled, Comment: "the session that asked is gone"})
		if err != nil {
			return n, fmt.Errorf("cancel orphaned approvals: %w", err)
		}
		if fin.Status == Cancelled {
			n++
		}
	}
	return n, nil
}

// record writes the audit event of a step. who is the identity acting: the
// requester for requested and executed, the approver for decisions, nil
// for what bastion itself does (expiry, cancellation).
func (s *Service) record(r Request, step Step, who *identity.Provenance, extra map[string]any) error {
	sink := s.Audit
	if sink == nil {
		sink = audit.Discard
	}
	d := map[string]any{"step": string(step), "id": r.ID, "rule": r.Rule, "command": r.Command, "status": string(r.Status), "sha256": r.Sum()}
	if r.Target != "" {
		d["target"] = r.Target
	}
	switch step {
	case StepRequested:
		d["reason"], d["expires"] = r.Reason, r.Expires
		if r.AgentReason != "" {
			d["agent_reason"] = r.AgentReason
		}
		if r.Task != "" {
			d["task"] = r.Task
		}
		if r.Cwd != "" {
			d["cwd"] = r.Cwd
		}
		if len(r.Parts) > 1 {
			// Every rule the request needed, not only the first.
			rules := make([]string, 0, len(r.Parts))
			for _, p := range r.Parts {
				if !slices.Contains(rules, p.Rule) {
					rules = append(rules, p.Rule)
				}
			}
			d["rules"] = rules
		}
	case StepApproved, StepDenied:
		d["requester"] = r.Requester.String()
		if r.Comment != "" {
			d["comment"] = r.Comment
		}
		if r.ForSession > 0 {
			d["for_session"] = r.ForSession.String()
		}
	}
	for k, v := range extra {
		d[k] = v
	}
	return sink.Record(audit.Event{Time: s.now(), Type: audit.Approval, Identity: who, Session: r.SessionID, Rule: r.Rule, Detail: d})
}

func (s *Service) notify(ctx context.Context, step Step, r Request) {
	for _, n := range s.Notifiers {
		n.Notify(ctx, Event{Step: step, Request: r})
	}
}
