package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/bastion-dev/bastion/approvals"
	"github.com/bastion-dev/bastion/identity"
)

// Store implements approvals.Store.
var _ approvals.Store = (*Store)(nil)

// approvalsMigration creates the approval requests and the session grants
// that "approve --for-session" gives. Status changes are compare-and-set
// updates on status, so the CHECK keeps the column to the known values.
const approvalsMigration = `CREATE TABLE approvals (
		id           TEXT PRIMARY KEY,
		status       TEXT NOT NULL CHECK (status IN ('pending','approved','denied','expired','cancelled')),
		subject      TEXT NOT NULL,
		requester    TEXT NOT NULL,
		session_id   TEXT NOT NULL,
		target       TEXT NOT NULL,
		command      TEXT NOT NULL,
		commands     TEXT NOT NULL,
		rule         TEXT NOT NULL,
		reason       TEXT NOT NULL,
		agent_reason TEXT NOT NULL,
		task         TEXT NOT NULL,
		cwd          TEXT NOT NULL,
		created      INTEGER NOT NULL,
		expires      INTEGER NOT NULL,
		decider      TEXT,
		comment      TEXT NOT NULL DEFAULT '',
		decided      INTEGER,
		for_session  INTEGER NOT NULL DEFAULT 0,
		used         INTEGER NOT NULL DEFAULT 0,
		used_at      INTEGER
	);
	CREATE INDEX approvals_status ON approvals(status, created);
	CREATE TABLE approval_grants (
		approval_id TEXT NOT NULL REFERENCES approvals(id),
		session_id  TEXT NOT NULL,
		rule        TEXT NOT NULL,
		granted_at  INTEGER NOT NULL,
		expires     INTEGER NOT NULL
	);
	CREATE INDEX approval_grants_session ON approval_grants(session_id, rule, expires);`

// approvalPartsMigration keeps every part of a held command that needs
// the approval, with its rule (approvals.Part, as a JSON array), so that
// an approver in another process is shown them all.
const approvalPartsMigration = `ALTER TABLE approvals ADD COLUMN parts TEXT NOT NULL DEFAULT '[]';`

// CreateApproval stores a new request.
func (s *Store) CreateApproval(ctx context.Context, r approvals.Request) error {
	req, err := json.Marshal(r.Requester)
	if err != nil {
		return err
	}
	cmds, err := json.Marshal(r.Commands)
	if err != nil {
		return err
	}
	parts, err := json.Marshal(r.Parts)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO approvals
		(id, status, subject, requester, session_id, target, command, commands, rule, reason, agent_reason, task, cwd, created, expires, parts)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		r.ID, string(r.Status), r.Requester.Subject, string(req), r.SessionID, r.Target, r.Command, string(cmds),
		r.Rule, r.Reason, r.AgentReason, r.Task, r.Cwd, unix(r.Created), unix(r.Expires), string(parts))
	if err != nil {
		return fmt.Errorf("store approval %s: %w", r.ID, err)
	}
	return nil
}

const approvalColumns = `id, status, requester, session_id, target, command, commands, rule, reason, agent_reason, task, cwd,
	created, expires, decider, comment, decided, for_session, used, parts`

type scanner interface{ Scan(...any) error }

func scanApproval(row scanner) (approvals.Request, error) {
	var (
		r                 approvals.Request
		status, req, cmds string
		parts             string
		created, expires  int64
		decider           sql.NullString
		decided           sql.NullInt64
		forSession        int64
	)
	err := row.Scan(&r.ID, &status, &req, &r.SessionID, &r.Target, &r.Command, &cmds, &r.Rule, &r.Reason, &r.AgentReason,
		&r.Task, &r.Cwd, &created, &expires, &decider, &r.Comment, &decided, &forSession, &r.Used, &parts)
	if err != nil {
		return r, err
	}
	r.Status, r.Created, r.Expires, r.ForSession = approvals.Status(status), fromUnix(created), fromUnix(expires), time.Duration(forSession)
	if err := json.Unmarshal([]byte(req), &r.Requester); err != nil {
		return r, fmt.Errorf("bad requester for approval %s: %w", r.ID, err)
	}
	if err := json.Unmarshal([]byte(cmds), &r.Commands); err != nil {
		return r, fmt.Errorf("bad commands for approval %s: %w", r.ID, err)
	}
	if err := json.Unmarshal([]byte(parts), &r.Parts); err != nil {
		return r, fmt.Errorf("bad parts for approval %s: %w", r.ID, err)
	}
	if decider.Valid {
		r.Decider = new(identity.Provenance)
		if err := json.Unmarshal([]byte(decider.String), r.Decider); err != nil {
			return r, fmt.Errorf("bad decider for approval %s: %w", r.ID, err)
		}
	}
	if decided.Valid {
		r.Decided = fromUnix(decided.Int64)
	}
	return r, nil
}

// Approval returns a request, or an error that matches
// approvals.ErrNotFound and ErrNotFound.
func (s *Store) Approval(ctx context.Context, id string) (approvals.Request, error) {
	return approvalIn(ctx, s.db, id)
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func approvalIn(ctx context.Context, q querier, id string) (approvals.Request, error) {
	r, err := scanApproval(q.QueryRowContext(ctx, `SELECT `+approvalColumns+` FROM approvals WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, &notFoundError{id}
	}
	return r, err
}

// notFoundError matches both approvals.ErrNotFound and this package's
// ErrNotFound.
type notFoundError struct{ id string }

func (e *notFoundError) Error() string {
	return fmt.Sprintf("approval %s: %s", e.id, approvals.ErrNotFound)
}

func (e *notFoundError) Is(target error) bool {
	return target == approvals.ErrNotFound || target == ErrNotFound
}

// Approvals lists requests, newest first: only pending ones unless all.
func (s *Store) Approvals(ctx context.Context, all bool) ([]approvals.Request, error) {
	q := `SELECT ` + approvalColumns + ` FROM approvals`
	if !all {
		q += ` WHERE status = 'pending'`
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY created DESC, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []approvals.Request{}
	for rows.Next() {
		r, err := scanApproval(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// TransitionApproval implements approvals.Store: one UPDATE ... WHERE
// status = 'pending', so of two racing deciders exactly one changes the
// row, and the grant of an approval for the session in the same
// transaction.
func (s *Store) TransitionApproval(ctx context.Context, id string, t approvals.Transition) (approvals.Request, error) {
	if !t.To.Final() {
		return approvals.Request{}, fmt.Errorf("approval %s: cannot move back to %s", id, t.To)
	}
	var decider sql.NullString
	if t.Decider != nil {
		b, err := json.Marshal(t.Decider)
		if err != nil {
			return approvals.Request{}, err
		}
		decider = sql.NullString{String: string(b), Valid: true}
	}
	forSession := int64(0)
	if t.To == approvals.Approved && t.ForSession > 0 {
		forSession = int64(t.ForSession)
	}
	// Human decisions must come before the expiry; bastion's own
	// transitions (expired, cancelled) apply whenever.
	expiresAfter := int64(math.MinInt64)
	if t.To == approvals.Approved || t.To == approvals.Denied {
		expiresAfter = unix(t.At)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return approvals.Request{}, fmt.Errorf("approval %s: %w", id, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE approvals SET status = ?, decider = ?, comment = ?, decided = ?, for_session = ?
		WHERE id = ? AND status = 'pending' AND expires > ?`,
		string(t.To), decider, t.Comment, unix(t.At), forSession, id, expiresAfter)
	if err != nil {
		return approvals.Request{}, fmt.Errorf("approval %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return approvals.Request{}, fmt.Errorf("approval %s: %w", id, err)
	}
	r, err := approvalIn(ctx, tx, id)
	if err != nil {
		return r, err
	}
	if n == 0 {
		st := r.Status
		if st == approvals.Pending { // past its expiry, not yet marked
			st = approvals.Expired
		}
		return r, &approvals.StateError{ID: id, Status: st}
	}
	if forSession > 0 {
		_, err := tx.ExecContext(ctx, `INSERT INTO approval_grants (approval_id, session_id, rule, granted_at, expires) VALUES (?,?,?,?,?)`,
			id, r.SessionID, r.Rule, unix(t.At), unix(t.At.Add(t.ForSession)))
		if err != nil {
			return r, fmt.Errorf("approval %s: grant for session: %w", id, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return r, fmt.Errorf("approval %s: %w", id, err)
	}
	return r, nil
}

// ConsumeApproval implements approvals.Store with one compare-and-set on
// used, bound to the session and the exact command.
func (s *Store) ConsumeApproval(ctx context.Context, id, sessionID, command string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE approvals SET used = 1, used_at = ?
		WHERE id = ? AND status = 'approved' AND used = 0 AND session_id = ? AND command = ?`,
		unix(time.Now()), id, sessionID, command)
	if err != nil {
		return fmt.Errorf("approval %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("approval %s: %w", id, err)
	} else if n == 1 {
		return nil
	}
	// Say why it failed; the UPDATE already decided that it did.
	r, err := s.Approval(ctx, id)
	switch {
	case err != nil:
		return err
	case r.Status != approvals.Approved:
		return fmt.Errorf("%w (it is %s)", approvals.ErrNotApproved, r.Status)
	case r.SessionID != sessionID || r.Command != command:
		return approvals.ErrMismatch
	}
	return approvals.ErrAlreadyUsed
}

// ApprovalGranted implements approvals.Store.
func (s *Store) ApprovalGranted(ctx context.Context, sessionID, rule string, at time.Time) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM approval_grants
		WHERE session_id = ? AND rule = ? AND granted_at <= ? AND expires > ?`,
		sessionID, rule, unix(at), unix(at)).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("approval grants: %w", err)
	}
	return n > 0, nil
}
