package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/bastion-dev/bastion/identity"
)

// Cert is an issued certificate as the store keeps it: everything needed to
// audit and revoke it, never the private key.
type Cert struct {
	Serial      uint64              `json:"serial,string"`
	KeyID       string              `json:"key_id"`
	Provenance  identity.Provenance `json:"identity"`
	Principals  []string            `json:"principals"`
	Fingerprint string              `json:"fingerprint"`
	// Via says how it was issued: "oidc" (token exchange), "break-glass"
	// (bastion certs issue) or "dev".
	Via         string    `json:"via"`
	IssuedAt    time.Time `json:"issued_at"`
	ValidAfter  time.Time `json:"valid_after"`
	ValidBefore time.Time `json:"valid_before"`
	// Revoked and RevokeReason are filled in by the readers.
	Revoked      bool      `json:"revoked"`
	RevokedAt    time.Time `json:"revoked_at,omitzero"`
	RevokeReason string    `json:"revoke_reason,omitempty"`
}

// AddCert records an issued certificate.
func (s *Store) AddCert(ctx context.Context, c Cert) error {
	prov, err := json.Marshal(c.Provenance)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO certs
		(serial, key_id, kind, subject, issuer, role, principals, fingerprint, via, provenance, issued_at, valid_after, valid_before)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		strconv.FormatUint(c.Serial, 10), c.KeyID, string(c.Provenance.Kind), c.Provenance.Subject,
		c.Provenance.Issuer, c.Provenance.Role, strings.Join(c.Principals, ","), c.Fingerprint, c.Via,
		string(prov), unix(c.IssuedAt), unix(c.ValidAfter), unix(c.ValidBefore))
	if err != nil {
		return fmt.Errorf("record cert %d: %w", c.Serial, err)
	}
	return nil
}

const certColumns = `c.serial, c.key_id, c.principals, c.fingerprint, c.via, c.provenance, c.issued_at, c.valid_after, c.valid_before,
	r.revoked_at, r.reason`

// the join picks the earliest revocation by serial or key id.
const certFrom = ` FROM certs c LEFT JOIN (
		SELECT serial, key_id, MIN(revoked_at) AS revoked_at, reason FROM revocations GROUP BY serial, key_id
	) r ON (r.serial != '' AND r.serial = c.serial) OR (r.key_id != '' AND r.key_id = c.key_id)`

func scanCert(row interface{ Scan(...any) error }) (Cert, error) {
	var (
		c                    Cert
		serial, principals   string
		prov                 string
		issued, after, befor int64
		revokedAt            sql.NullInt64
		reason               sql.NullString
	)
	if err := row.Scan(&serial, &c.KeyID, &principals, &c.Fingerprint, &c.Via, &prov, &issued, &after, &befor, &revokedAt, &reason); err != nil {
		return c, err
	}
	var err error
	if c.Serial, err = strconv.ParseUint(serial, 10, 64); err != nil {
		return c, fmt.Errorf("bad serial %q in store: %w", serial, err)
	}
	if principals != "" {
		c.Principals = strings.Split(principals, ",")
	}
	if err := json.Unmarshal([]byte(prov), &c.Provenance); err != nil {
		return c, fmt.Errorf("bad provenance for serial %s: %w", serial, err)
	}
	c.IssuedAt, c.ValidAfter, c.ValidBefore = fromUnix(issued), fromUnix(after), fromUnix(befor)
	if revokedAt.Valid {
		c.Revoked, c.RevokedAt, c.RevokeReason = true, fromUnix(revokedAt.Int64), reason.String
	}
	return c, nil
}

// Cert returns the certificate with the given serial, or ErrNotFound.
func (s *Store) Cert(ctx context.Context, serial uint64) (Cert, error) {
	row := s.db.QueryRowContext(ctx, `SELECT `+certColumns+certFrom+` WHERE c.serial = ? LIMIT 1`, strconv.FormatUint(serial, 10))
	c, err := scanCert(row)
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("certificate %d: %w", serial, ErrNotFound)
	}
	return c, err
}

// Certs lists issued certificates, newest first.
func (s *Store) Certs(ctx context.Context) ([]Cert, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+certColumns+certFrom+` ORDER BY c.issued_at DESC`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Cert{}
	seen := map[uint64]bool{}
	for rows.Next() {
		c, err := scanCert(rows)
		if err != nil {
			return nil, err
		}
		if seen[c.Serial] { // revoked both by serial and by key id
			continue
		}
		seen[c.Serial] = true
		out = append(out, c)
	}
	return out, rows.Err()
}

// Revoke revokes by serial (non-zero) or by key id (non-empty), or both.
// Revoking a serial that was never issued is allowed: a certificate may have
// been issued by another replica or restored from a backup.
func (s *Store) Revoke(ctx context.Context, serial uint64, keyID, reason string, at time.Time) error {
	if serial == 0 && keyID == "" {
		return errors.New("revoke: need a serial or a key id")
	}
	ser := ""
	if serial != 0 {
		ser = strconv.FormatUint(serial, 10)
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO revocations (serial, key_id, reason, revoked_at) VALUES (?,?,?,?)`,
		ser, keyID, reason, unix(at))
	if err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	return nil
}

// IsRevoked reports whether a certificate is revoked by its serial or its
// key id. It is called on every authentication.
func (s *Store) IsRevoked(ctx context.Context, serial uint64, keyID string) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM revocations WHERE (serial != '' AND serial = ?) OR (key_id != '' AND key_id = ?)`,
		strconv.FormatUint(serial, 10), keyID).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("revocation lookup: %w", err)
	}
	return n > 0, nil
}

// Revocation is one row of the revocation list, in the order rows were
// added (Seq grows).
type Revocation struct {
	Seq    int64
	Serial uint64 // 0: by key id only
	KeyID  string // "": by serial only
	Reason string
	At     time.Time
}

// RevocationsSince returns the revocations added after sequence number
// after, oldest first, at most limit of them (limit <= 0: 1000). A running
// server polls it, so that a revocation made by another process (the CLI,
// another replica) closes live connections, not only the next login.
func (s *Store) RevocationsSince(ctx context.Context, after int64, limit int) ([]Revocation, error) {
	if limit <= 0 {
		limit = 1000
	}
	rows, err := s.db.QueryContext(ctx, `SELECT rowid, serial, key_id, reason, revoked_at FROM revocations WHERE rowid > ? ORDER BY rowid LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("read revocations: %w", err)
	}
	defer rows.Close()
	var out []Revocation
	for rows.Next() {
		var r Revocation
		var serial string
		var at int64
		if err := rows.Scan(&r.Seq, &serial, &r.KeyID, &r.Reason, &at); err != nil {
			return nil, fmt.Errorf("read revocations: %w", err)
		}
		if serial != "" {
			if r.Serial, err = strconv.ParseUint(serial, 10, 64); err != nil {
				return nil, fmt.Errorf("read revocations: serial %q: %w", serial, err)
			}
		}
		r.At = fromUnix(at)
		out = append(out, r)
	}
	return out, rows.Err()
}
