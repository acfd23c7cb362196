package store

import (
	"context"
	"testing"
	"time"
)

func TestRevocationsSince(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	ctx := context.Background()
	if got, err := s.RevocationsSince(ctx, 0, 0); err != nil || len(got) != 0 {
		t.Fatalf("empty list: %v, %v", got, err)
	}
	at := time.Unix(1700000000, 0).UTC()
	if err := s.Revoke(ctx, 42, "", "leaked", at); err != nil {
		t.Fatal(err)
	}
	if err := s.Revoke(ctx, 0, "agent:x@iss", "offboarded", at); err != nil {
		t.Fatal(err)
	}
	all, err := s.RevocationsSince(ctx, 0, 0)
	if err != nil || len(all) != 2 {
		t.Fatalf("got %+v, %v; want 2 rows", all, err)
	}
	if r := all[0]; r.Serial != 42 || r.KeyID != "" || r.Reason != "leaked" || !r.At.Equal(at) {
		t.Errorf("first row %+v", r)
	}
	if r := all[1]; r.Serial != 0 || r.KeyID != "agent:x@iss" || r.Seq <= all[0].Seq {
		t.Errorf("second row %+v (after seq %d)", r, all[0].Seq)
	}
	rest, err := s.RevocationsSince(ctx, all[0].Seq, 0)
	if err != nil || len(rest) != 1 || rest[0].KeyID != "agent:x@iss" {
		t.Fatalf("since first: %+v, %v", rest, err)
	}
	if one, err := s.RevocationsSince(ctx, 0, 1); err != nil || len(one) != 1 || one[0].Serial != 42 {
		t.Fatalf("limit 1: %+v, %v", one, err)
	}
}
