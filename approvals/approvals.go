// Package approvals holds one command for a human decision: it stores the
// request durably, notifies approvers, waits (across processes) for an
// approval, a denial or the timeout, enforces the four-eyes rule, and binds
// an approval to the exact command and session it was given for, once.
//
// It takes values and returns values: the SSH session that holds the command
// and the CLI or HTTP API that decides it both talk to a Service.
package approvals

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bastion-dev/bastion/identity"
)

// Status is where a request is in its life. Only a pending request changes,
// and only once: every other status is final.
type Status string

const (
	Pending   Status = "pending"
	Approved  Status = "approved"
	Denied    Status = "denied"
	Expired   Status = "expired"   // no approver answered in time: fail closed
	Cancelled Status = "cancelled" // the agent went away (disconnect, Ctrl-C, restart)
)

// Final reports whether s can no longer change.
func (s Status) Final() bool { return s != Pending }

// Step names an audit event (audit.Approval, detail "step") or a
// notification. These names are a contract with log consumers.
type Step string

const (
	StepRequested Step = "requested"
	StepNotified  Step = "notified"
	StepApproved  Step = "approved"
	StepDenied    Step = "denied"
	StepExpired   Step = "expired"
	StepCancelled Step = "cancelled"
	StepExecuted  Step = "executed"
	// StepRefused: an approval was refused before anything changed (four
	// eyes, not a human, another command's sha256); the request stays
	// pending.
	StepRefused Step = "refused"
)

// stepOf is the step that leads to a final status.
func stepOf(s Status) Step {
	switch s {
	case Approved:
		return StepApproved
	case Denied:
		return StepDenied
	case Expired:
		return StepExpired
	case Cancelled:
		return StepCancelled
	}
	return StepRequested
}

// Request is one held command.
type Request struct {
	ID        string              `json:"id"`
	Status    Status              `json:"status"`
	Requester identity.Provenance `json:"requester"`
	SessionID string              `json:"session_id"`
	// Target is what the command runs against: the host, or a database
	// target for SQL statements.
	Target string `json:"target,omitempty"`
	// Command is the exact command or statement, already masked by the
	// caller: it is shown to approvers, written to the audit log and sent
	// to webhooks.
	Command string `json:"command"`
	// Rule and Reason are the policy rule that asked for approval and its
	// reason.
	Rule   string `json:"rule"`
	Reason string `json:"reason,omitempty"`
	// AgentReason is what the agent said it needs the command for
	// (BASTION_REASON).
	AgentReason string `json:"agent_reason,omitempty"`
	Task        string `json:"task,omitempty"`
	Cwd         string `json:"cwd,omitempty"`
	// Commands is the parsed argv of each simple command, when known.
	Commands [][]string `json:"commands,omitempty"`
	// Parts is every part of Command that needs the approval (a simple
	// command of a shell line, a statement of an SQL string) with every
	// rule that asked for it, in input order; Rule and Reason are the
	// first. Approvers are shown them all.
	Parts   []Part    `json:"parts,omitempty"`
	Created time.Time `json:"created"`
	// Expires is when a pending request expires (fail closed).
	Expires time.Time `json:"expires"`
	// Decider, Comment and Decided are set when the request leaves pending
	// by a human decision (Decider is nil for expiry and cancellation,
	// whose Comment says why).
	Decider *identity.Provenance `json:"decider,omitempty"`
	Comment string               `json:"comment,omitempty"`
	Decided time.Time            `json:"decided,omitzero"`
	// Used is set once the approved command has run: an approval is
	// consumed once.
	Used bool `json:"used"`
	// ForSession, when positive on an approved request, also grants the
	// rule to the session for that long after Decided.
	ForSession time.Duration `json:"-"`
}

// Part is one part of a held command that needs the approval, and one rule
// that asked for it.
type Part struct {
	Text   string `json:"text"` // as the policy read it: a command's resolved words, a statement
	Rule   string `json:"rule"`
	Reason string `json:"reason,omitempty"`
}

// Sum is the hex SHA-256 of the exact bytes of a command: what an approval
// binds to.
func Sum(command string) string {
	h := sha256.Sum256([]byte(command))
	return hex.EncodeToString(h[:])
}

// Sum is the hex SHA-256 of r.Command, the exact bytes the approver is
// shown (secrets already masked: a hash of the unmasked bytes would let
// whoever sees it test guesses of a secret offline). The runner checks
// that what it runs has this sum (see Binds).
func (r Request) Sum() string { return Sum(r.Command) }

// ShortSum is the first 12 hex digits of a sum, as people are shown it
// and may type it (approve --hash).
func ShortSum(sum string) string { return sum[:min(len(sum), 12)] }

// Binds checks that command, the masked bytes a runner is about to run
// under r, are the bytes r was approved for: a different command, even
// one that renders alike, fails with ErrMismatch.
func (r Request) Binds(command string) error {
	if Sum(command) != r.Sum() {
		return fmt.Errorf("approval %s: %w: it was given for sha256 %s, and this command is sha256 %s",
			r.ID, ErrMismatch, ShortSum(r.Sum()), ShortSum(Sum(command)))
	}
	return nil
}

// requestJSON carries ForSession as a Go duration string ("10m0s"), the
// requester's subject flat, for tools that filter on it, and the command's
// SHA-256 (derived from it: it is not read back).
type requestJSON struct {
	*requestAlias
	Subject    string `json:"subject"`
	SHA256     string `json:"sha256"`
	ForSession string `json:"for_session,omitempty"`
}

type requestAlias Request

// MarshalJSON writes ForSession as a duration string.
func (r Request) MarshalJSON() ([]byte, error) {
	j := requestJSON{requestAlias: (*requestAlias)(&r), Subject: r.Requester.Subject, SHA256: r.Sum()}
	if r.ForSession > 0 {
		j.ForSession = r.ForSession.String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON writes (subject comes from
// requester).
func (r *Request) UnmarshalJSON(b []byte) error {
	j := requestJSON{requestAlias: (*requestAlias)(r)}
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	r.ForSession = 0
	if j.ForSession != "" {
		d, err := time.ParseDuration(j.ForSession)
		if err != nil {
			return fmt.Errorf("for_session: %w", err)
		}
		r.ForSession = d
	}
	return nil
}

// MaxAgentReason bounds AgentReason, in bytes: the agent's reason is a
// sentence for a person, and every request, notification and audit event
// carries it.
const MaxAgentReason = 1024

// Errors. Callers test them with errors.Is; the messages are written for
// the person at the CLI or the HTTP client.
var (
	// ErrNotFound: no request has that id.
	ErrNotFound = errors.New("no such approval request")
	// ErrNotPending: the request was already decided, expired or
	// cancelled. The error is a *StateError that names the status.
	ErrNotPending = errors.New("approval request is not pending")
	// ErrSelfApproval: the four-eyes rule.
	ErrSelfApproval = errors.New("four-eyes rule: the requester cannot approve their own request; another approver must decide")
	// ErrNotHuman: approvals are given by people, never by an agent.
	ErrNotHuman = errors.New("only a human identity can approve")
	// ErrNotApproved: Consume on a request that was not approved.
	ErrNotApproved = errors.New("approval request was not approved")
	// ErrAlreadyUsed: the approval was already consumed.
	ErrAlreadyUsed = errors.New("approval already used: an approval runs its command once")
	// ErrMismatch: the approval was given for another command or session.
	ErrMismatch = errors.New("approval was given for another command or session")
	// ErrStaleHash: the approver named a sha256 that is not the request's
	// (approve --hash): they looked at another command.
	ErrStaleHash = errors.New("the request's command does not have that sha256: look at it again with bastion approvals show")
	// ErrInvalid: a request or decision is missing something it needs.
	ErrInvalid = errors.New("invalid approval")
)

// StateError says that a request is not in the status an operation needs.
// It matches ErrNotPending with errors.Is.
type StateError struct {
	ID     string
	Status Status
}

func (e *StateError) Error() string {
	return fmt.Sprintf("approval %s is %s, no longer pending", e.ID, e.Status)
}

func (e *StateError) Is(target error) bool { return target == ErrNotPending }

// Transition is a status change of a pending request, applied by the store
// as one compare-and-set.
type Transition struct {
	To Status
	// At is when the change happens; approvals and denials at or after the
	// request's Expires are refused, so a late approver cannot revive a
	// request that nobody waits for any more.
	At         time.Time
	Decider    *identity.Provenance
	Comment    string
	ForSession time.Duration
}

// Store keeps requests durably. *store.Store implements it with SQLite; a
// PostgreSQL store can implement it for several replicas.
type Store interface {
	// CreateApproval stores a new request.
	CreateApproval(ctx context.Context, r Request) error
	// Approval returns the request with the given id, or an error that
	// matches ErrNotFound.
	Approval(ctx context.Context, id string) (Request, error)
	// Approvals lists requests, newest first: only pending ones unless all.
	Approvals(ctx context.Context, all bool) ([]Request, error)
	// TransitionApproval moves a pending request to t.To in one
	// compare-and-set (so two racing approvers cannot both win) and returns
	// the changed request. An approval with t.ForSession > 0 also stores
	// the session grant, in the same transaction. It fails with a
	// *StateError when the request is not pending (or, for an approval or
	// a denial, is past its expiry), and with ErrNotFound.
	TransitionApproval(ctx context.Context, id string, t Transition) (Request, error)
	// ConsumeApproval marks an approved request used, once, if it was
	// given for exactly this session and command. It fails with
	// ErrNotFound, ErrNotApproved, ErrMismatch or ErrAlreadyUsed.
	ConsumeApproval(ctx context.Context, id, sessionID, command string) error
	// ApprovalGranted reports whether an approval granted rule to the
	// session for a period that includes at.
	ApprovalGranted(ctx context.Context, sessionID, rule string, at time.Time) (bool, error)
}

// Event is what notifiers receive: a step and the request as it stands
// after it.
type Event struct {
	Step    Step    `json:"step"`
	Request Request `json:"approval"`
}

// Notifier tells approvers about requests and decisions. Notify must not
// block: it queues the event and delivers it in the background (see
// Webhook). Delivery failures never change a decision.
type Notifier interface {
	Notify(ctx context.Context, ev Event)
}

// idAlphabet is Crockford's base32 in lower case: no i, l, o or u, so an
// id read aloud or copied by hand stays unambiguous.
const idAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"

// IDPrefix starts every request id.
const IDPrefix = "apr_"

// NewID returns a fresh request id: "apr_" and 10 random base32 characters
// (50 bits from crypto/rand).
func NewID() string {
	var b [10]byte
	rand.Read(b[:]) // never fails (crypto/rand panics on an unusable source)
	out := make([]byte, len(IDPrefix)+len(b))
	copy(out, IDPrefix)
	for i, c := range b {
		out[len(IDPrefix)+i] = idAlphabet[c&31]
	}
	return string(out)
}

// ValidID reports whether id has the shape of a request id.
func ValidID(id string) bool {
	rest, ok := strings.CutPrefix(id, IDPrefix)
	if !ok || len(rest) != 10 {
		return false
	}
	for i := range len(rest) {
		if strings.IndexByte(idAlphabet, rest[i]) < 0 {
			return false
		}
	}
	return true
}

// normID accepts an id typed in upper case or with stray spaces.
func normID(id string) string { return strings.ToLower(strings.TrimSpace(id)) }
