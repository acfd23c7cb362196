package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// sealsMigration keeps the seal of every recording that was
// sealed when its session ended: how many lines it has and the SHA-256
// chain over all of them. A recording the store knows as sealed that is
// found without its seal was cut short, which `bastion recordings verify`
// reports as tampering rather than as a session that ended abnormally.
const sealsMigration = `CREATE TABLE recording_seals (
		session_id TEXT PRIMARY KEY,
		lines      INTEGER NOT NULL,
		sha256     TEXT NOT NULL,
		sealed     INTEGER NOT NULL
	);`

// RecordingSeal is a sealed recording as the store remembers it.
type RecordingSeal struct {
	SessionID string
	Lines     int    // the recording's lines, its seal included
	SHA256    string // hex SHA-256 chain over those lines (see package recordings)
	Sealed    time.Time
}

// SealRecording records that a session's recording was sealed. A recording
// is sealed once: writing the same seal again changes nothing, and another
// seal for the same session is refused.
func (s *Store) SealRecording(ctx context.Context, seal RecordingSeal) error {
	if seal.SessionID == "" || seal.Lines < 1 || len(seal.SHA256) != 64 {
		return fmt.Errorf("record seal of session %q: incomplete seal", seal.SessionID)
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO recording_seals (session_id, lines, sha256, sealed) VALUES (?, ?, ?, ?)
		ON CONFLICT (session_id) DO NOTHING`, seal.SessionID, seal.Lines, seal.SHA256, unix(seal.Sealed))
	if err != nil {
		return fmt.Errorf("record seal of session %s: %w", seal.SessionID, err)
	}
	got, err := s.RecordingSeal(ctx, seal.SessionID)
	if err != nil {
		return fmt.Errorf("record seal of session %s: %w", seal.SessionID, err)
	}
	if got.Lines != seal.Lines || got.SHA256 != seal.SHA256 {
		return fmt.Errorf("record seal of session %s: sealed already, with %d lines (sha256 %s)", seal.SessionID, got.Lines, got.SHA256)
	}
	return nil
}

// RecordingSeal returns the seal of a session's recording, or an error
// matching ErrNotFound when the store knows of none.
func (s *Store) RecordingSeal(ctx context.Context, sessionID string) (RecordingSeal, error) {
	seal := RecordingSeal{SessionID: sessionID}
	var sealed int64
	err := s.db.QueryRowContext(ctx, `SELECT lines, sha256, sealed FROM recording_seals WHERE session_id = ?`, sessionID).
		Scan(&seal.Lines, &seal.SHA256, &sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return seal, fmt.Errorf("seal of session %s: %w", sessionID, ErrNotFound)
	}
	if err != nil {
		return seal, fmt.Errorf("seal of session %s: %w", sessionID, err)
	}
	seal.Sealed = fromUnix(sealed)
	return seal, nil
}
