package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/identity"
	"github.com/google/go-cmp/cmp"
)

func openTest(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "bastion.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestMigrationsIdempotent(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "b.db")
	for range 2 {
		s, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		v, err := s.Version(context.Background())
		if err != nil || v != len(migrations) {
			t.Fatalf("version = %d, %v; want %d", v, err, len(migrations))
		}
		s.Close()
	}
}

func TestCertsAndRevocation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openTest(t)
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	c := Cert{
		Serial:      1<<63 + 5, // above int64: stored as text
		KeyID:       "agent:ci@https://issuer",
		Provenance:  identity.Provenance{Kind: identity.KindAgent, Subject: "ci", Issuer: "https://issuer", Role: "deploy"},
		Principals:  []string{"agent", "deploy"},
		Fingerprint: "SHA256:abc",
		Via:         "oidc",
		IssuedAt:    now, ValidAfter: now.Add(-time.Minute), ValidBefore: now.Add(15 * time.Minute),
	}
	if err := s.AddCert(ctx, c); err != nil {
		t.Fatal(err)
	}
	got, err := s.Cert(ctx, c.Serial)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c, got); diff != "" {
		t.Fatalf("round trip (-want +got):\n%s", diff)
	}
	if _, err := s.Cert(ctx, 42); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing cert: err = %v, want ErrNotFound", err)
	}
	if r, err := s.IsRevoked(ctx, c.Serial, c.KeyID); err != nil || r {
		t.Fatalf("IsRevoked before = %v, %v", r, err)
	}
	if err := s.Revoke(ctx, 0, "", "x", now); err == nil {
		t.Fatal("revoke with neither serial nor key id succeeded")
	}
	// Revocation by key id covers every cert with that key id.
	if err := s.Revoke(ctx, 0, c.KeyID, "compromised", now); err != nil {
		t.Fatal(err)
	}
	if r, err := s.IsRevoked(ctx, c.Serial, c.KeyID); err != nil || !r {
		t.Fatalf("IsRevoked by key id = %v, %v", r, err)
	}
	if r, _ := s.IsRevoked(ctx, 7, "other"); r {
		t.Fatal("unrelated cert reported revoked")
	}
	if err := s.Revoke(ctx, 7, "", "by serial", now); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.IsRevoked(ctx, 7, "other"); !r {
		t.Fatal("revocation by serial not seen")
	}
	list, err := s.Certs(ctx)
	if err != nil || len(list) != 1 || !list[0].Revoked || list[0].RevokeReason != "compromised" {
		t.Fatalf("Certs = %+v, %v", list, err)
	}
}
