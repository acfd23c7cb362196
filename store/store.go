// Package store keeps bastion's durable state (issued certificates,
// revocations, sessions) in an embedded SQLite database (modernc.org/sqlite,
// no cgo). Callers declare the few methods they need as their own interfaces.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// ErrNotFound is returned when a looked-up record does not exist.
var ErrNotFound = errors.New("not found")

// Store is the SQLite store. It is safe for concurrent use.
type Store struct {
	db *sql.DB
}

// migrations are applied in order, each once; the applied count lives in
// PRAGMA user_version. Append only: never edit a migration that has shipped.
var migrations = []string{
	`CREATE TABLE certs (
		serial      TEXT PRIMARY KEY,
		key_id      TEXT NOT NULL,
		kind        TEXT NOT NULL,
		subject     TEXT NOT NULL,
		issuer      TEXT NOT NULL,
		role        TEXT NOT NULL,
		principals  TEXT NOT NULL,
		fingerprint TEXT NOT NULL,
		via         TEXT NOT NULL,
		provenance  TEXT NOT NULL,
		issued_at   INTEGER NOT NULL,
		valid_after INTEGER NOT NULL,
		valid_before INTEGER NOT NULL
	);
	CREATE INDEX certs_key_id ON certs(key_id);
	CREATE TABLE revocations (
		serial     TEXT NOT NULL DEFAULT '',
		key_id     TEXT NOT NULL DEFAULT '',
		reason     TEXT NOT NULL,
		revoked_at INTEGER NOT NULL
	);
	CREATE INDEX revocations_serial ON revocations(serial);
	CREATE INDEX revocations_key_id ON revocations(key_id);`,
	approvalsMigration,     // 2: approval requests and session grants (approvals.go)
	sessionsMigration,      // 3: sessions and their command index (sessions.go)
	auditHeadMigration,     // 4: the audit log's head (audithead.go)
	sealsMigration,         // 5: the seals of sealed recordings (seals.go)
	approvalPartsMigration, // 6: the parts of a held command that need approval (approvals.go)
}

// Open opens (creating if needed) the database at path and applies pending
// migrations.
func Open(path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=synchronous(FULL)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s := &Store{db: db}
	if err := s.migrate(context.Background()); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

func (s *Store) migrate(ctx context.Context) error {
	var version int
	if err := s.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this bastion (%d): upgrade bastion", version, len(migrations))
	}
	for i := version; i < len(migrations); i++ {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
		if _, err := tx.ExecContext(ctx, "PRAGMA user_version = "+strconv.Itoa(i+1)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
	}
	return nil
}

// Version reports the applied schema version.
func (s *Store) Version(ctx context.Context) (int, error) {
	var v int
	err := s.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
	return v, err
}

func unix(t time.Time) int64 { return t.UTC().UnixNano() }
func fromUnix(n int64) time.Time {
	return time.Unix(0, n).UTC()
}
