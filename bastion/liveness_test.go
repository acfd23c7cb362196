package bastion

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/certs"
	"github.com/bastion-dev/bastion/store"
)

// fakeFeed is a revocation list in memory that can fail on cue.
type fakeFeed struct {
	mu   sync.Mutex
	rows []store.Revocation
	err  error
}

func (f *fakeFeed) RevocationsSince(_ context.Context, after int64, limit int) ([]store.Revocation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	var out []store.Revocation
	for _, r := range f.rows {
		if r.Seq > after && len(out) < limit {
			out = append(out, r)
		}
	}
	return out, nil
}

func (f *fakeFeed) add(r store.Revocation) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r.Seq = int64(len(f.rows) + 1)
	f.rows = append(f.rows, r)
}

func TestLivenessAdmit(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	s := &Server{Clock: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler)}
	feed := &fakeFeed{}
	l := newLiveness(s, feed, time.Hour)
	ctx := context.Background()
	if err := l.load(ctx); err != nil {
		t.Fatal(err)
	}
	valid := &certs.Identity{Serial: 7, KeyID: "agent:a@iss", ValidBefore: now.Add(time.Minute)}
	other := &certs.Identity{Serial: 8, KeyID: "agent:b@iss", ValidBefore: now.Add(time.Minute)}
	expired := &certs.Identity{Serial: 9, KeyID: "agent:c@iss", ValidBefore: now}
	for _, tc := range []struct {
		name string
		id   *certs.Identity
		want error
	}{
		{"valid", valid, nil},
		{"at ValidBefore", expired, errCertExpired},
	} {
		if err := l.admit(tc.id); !errors.Is(err, tc.want) {
			t.Errorf("%s: admit = %v, want %v", tc.name, err, tc.want)
		}
	}
	// Revoked by serial, then by key id, as read from the feed.
	feed.add(store.Revocation{Serial: 7})
	feed.add(store.Revocation{KeyID: "agent:b@iss"})
	if err := l.read(ctx, false); err != nil {
		t.Fatal(err)
	}
	if err := l.admit(valid); !errors.Is(err, errCertRevoked) {
		t.Errorf("revoked serial: admit = %v", err)
	}
	if err := l.admit(other); !errors.Is(err, errCertRevoked) {
		t.Errorf("revoked key id: admit = %v", err)
	}
	// A full reload keeps them (the list only grows).
	if err := l.read(ctx, true); err != nil {
		t.Fatal(err)
	}
	if err := l.admit(valid); !errors.Is(err, errCertRevoked) {
		t.Errorf("after a full reload: admit = %v", err)
	}
}

// A revocation list that cannot be read for long refuses everything new:
// a stale list fails closed.
func TestLivenessStaleListRefuses(t *testing.T) {
	t.Parallel()
	s := &Server{Clock: time.Now, Logger: slog.New(slog.DiscardHandler)}
	feed := &fakeFeed{}
	l := newLiveness(s, feed, time.Hour)
	if err := l.load(context.Background()); err != nil {
		t.Fatal(err)
	}
	id := &certs.Identity{Serial: 1, ValidBefore: time.Now().Add(time.Hour)}
	if err := l.admit(id); err != nil {
		t.Fatalf("fresh list: %v", err)
	}
	feed.err = errors.New("database is locked")
	if err := l.read(context.Background(), false); err == nil {
		t.Fatal("a failing feed read no error")
	}
	l.mu.Lock()
	l.lastRead = time.Now().Add(-revocationStale - time.Second)
	l.mu.Unlock()
	if err := l.admit(id); !errors.Is(err, errRevocationsUnknown) {
		t.Fatalf("stale list: admit = %v, want %v", err, errRevocationsUnknown)
	}
	// Without a feed (revocation checked at login only) nothing is stale.
	if err := newLiveness(s, nil, 0).admit(id); err != nil {
		t.Fatalf("no feed: %v", err)
	}
}

func TestParseUIDRange(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in     string
		lo, hi uint32
		ok     bool
	}{
		{"2000000-2099999", 2000000, 2099999, true},
		{" 5000 - 5000 ", 5000, 5000, true},
		{"0-10", 0, 0, false},
		{"999-2000", 0, 0, false},
		{"3000-2000", 0, 0, false},
		{"2000", 0, 0, false},
		{"a-b", 0, 0, false},
		{"2000-4294967295", 0, 0, false},
	} {
		lo, hi, err := parseUIDRange(tc.in)
		if (err == nil) != tc.ok || lo != tc.lo || hi != tc.hi {
			t.Errorf("parseUIDRange(%q) = %d, %d, %v; want %d, %d, ok %v", tc.in, lo, hi, err, tc.lo, tc.hi, tc.ok)
		}
	}
}
