package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/bastion-dev/bastion/audit"
)

// auditHeadMigration keeps the audit log's head apart from the log: the
// sequence number and hash of its last durable event (audit.Head), which
// the log updates after its fsyncs and `bastion audit verify` checks the
// file against, so that a log cut short or rewritten is told from an
// intact one. One row per log, named, so that replicas sharing a store can
// each keep their own.
const auditHeadMigration = `CREATE TABLE audit_heads (
		log     TEXT PRIMARY KEY,
		seq     INTEGER NOT NULL,
		hash    TEXT NOT NULL,
		updated INTEGER NOT NULL
	);`

// auditLogName names the data directory's own audit log in audit_heads.
const auditLogName = "audit"

// SaveHead records the audit log's head (audit.HeadStore). It replaces
// the head whatever it was: the log saves only heads of durable events, so
// one that arrives late from another process is an older prefix of the
// same file, and after a log.tampered event the head must move back to
// the file.
func (s *Store) SaveHead(ctx context.Context, h audit.Head) error {
	if h.Seq > 1<<63-1 {
		return fmt.Errorf("save audit head: seq %d out of range", h.Seq)
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO audit_heads (log, seq, hash, updated) VALUES (?, ?, ?, ?)
		ON CONFLICT (log) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, updated = excluded.updated`,
		auditLogName, int64(h.Seq), h.Hash, unix(time.Now()))
	if err != nil {
		return fmt.Errorf("save audit head: %w", err)
	}
	return nil
}

// LoadHead returns the audit log's head, or the zero Head when none was
// saved (audit.HeadStore).
func (s *Store) LoadHead(ctx context.Context) (audit.Head, error) {
	var (
		seq  int64
		hash string
	)
	err := s.db.QueryRowContext(ctx, `SELECT seq, hash FROM audit_heads WHERE log = ?`, auditLogName).Scan(&seq, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return audit.Head{}, nil
	}
	if err != nil {
		return audit.Head{}, fmt.Errorf("load audit head: %w", err)
	}
	if seq < 0 {
		return audit.Head{}, fmt.Errorf("load audit head: seq %d out of range", seq)
	}
	return audit.Head{Seq: uint64(seq), Hash: hash}, nil
}

var _ audit.HeadStore = (*Store)(nil)
