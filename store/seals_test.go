package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRecordingSeals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openTest(t)
	at := time.Date(2026, 3, 1, 12, 0, 4, 0, time.UTC)
	seal := RecordingSeal{SessionID: "s1", Lines: 20, SHA256: strings.Repeat("e", 64), Sealed: at}
	if _, err := s.RecordingSeal(ctx, "s1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("seal before sealing: %v", err)
	}
	if err := s.SealRecording(ctx, seal); err != nil {
		t.Fatal(err)
	}
	if err := s.SealRecording(ctx, seal); err != nil {
		t.Fatalf("the same seal again: %v", err)
	}
	got, err := s.RecordingSeal(ctx, "s1")
	if err != nil || got != seal {
		t.Fatalf("RecordingSeal = %+v, %v; want %+v", got, err, seal)
	}
	tests := []struct {
		name string
		seal RecordingSeal
		want string
	}{
		{"another seal", RecordingSeal{SessionID: "s1", Lines: 12, SHA256: strings.Repeat("f", 64), Sealed: at},
			"sealed already, with 20 lines"},
		{"no session", RecordingSeal{Lines: 1, SHA256: strings.Repeat("f", 64)}, "incomplete seal"},
		{"no lines", RecordingSeal{SessionID: "s2", SHA256: strings.Repeat("f", 64)}, "incomplete seal"},
		{"short hash", RecordingSeal{SessionID: "s2", Lines: 3, SHA256: "abc"}, "incomplete seal"},
	}
	for _, tt := range tests {
		if err := s.SealRecording(ctx, tt.seal); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: SealRecording = %v, want %q", tt.name, err, tt.want)
		}
	}
	if got, _ := s.RecordingSeal(ctx, "s1"); got != seal {
		t.Fatalf("the first seal was replaced: %+v", got)
	}
}
