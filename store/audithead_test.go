package store

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bastion-dev/bastion/audit"
)

func TestAuditHead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "bastion.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if h, err := s.LoadHead(ctx); err != nil || !h.IsZero() {
		t.Fatalf("head of a new store = %+v, %v; want none", h, err)
	}
	steps := []struct {
		name string
		h    audit.Head
	}{
		{"first", audit.Head{Seq: 1, Hash: strings.Repeat("a", 64)}},
		{"forward", audit.Head{Seq: 900, Hash: strings.Repeat("b", 64)}},
		// Back: after a log.tampered event the head follows the file.
		{"back", audit.Head{Seq: 12, Hash: strings.Repeat("c", 64)}},
		{"largest", audit.Head{Seq: 1<<63 - 1, Hash: strings.Repeat("d", 64)}},
	}
	for _, st := range steps {
		if err := s.SaveHead(ctx, st.h); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got, err := s.LoadHead(ctx); err != nil || got != st.h {
			t.Fatalf("%s: LoadHead = %+v, %v; want %+v", st.name, got, err, st.h)
		}
	}
	if err := s.SaveHead(ctx, audit.Head{Seq: 1 << 63, Hash: "x"}); err == nil {
		t.Fatal("a seq SQLite cannot hold was saved")
	}
	s.Close()
	// The head outlives the process.
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, err := s.LoadHead(ctx); err != nil || got != steps[len(steps)-1].h {
		t.Fatalf("after reopening: %+v, %v", got, err)
	}
}

// The store keeps the head of an audit log that bastion writes: the Log
// saves it after its fsyncs, and a log cut behind it is caught at Open.
func TestAuditHeadWithLog(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	key, _ := audit.DeriveKey([]byte("the recording key's seed, 32 bytes"))
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := audit.Open(path, audit.Options{Key: key, Heads: s})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := l.Record(audit.Event{Type: audit.ServerStart}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	last, _ := audit.Tail(path, 1)
	if h, err := s.LoadHead(context.Background()); err != nil || h != (audit.Head{Seq: 3, Hash: last[0].Hash}) {
		t.Fatalf("head = %+v, %v; want event 3", h, err)
	}
}
