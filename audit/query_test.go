package audit

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestTailSearchFollow(t *testing.T) {
	t.Parallel()
	evs := sample(40)
	path := writeLog(t, evs)

	got, err := Tail(path, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[2].Type != evs[39].Type || got[0].Type != evs[37].Type {
		t.Fatalf("Tail(3) = %+v", got)
	}
	all, _ := Tail(path, 1000)
	if len(all) != 40 {
		t.Fatalf("Tail(1000) returned %d events", len(all))
	}
	if none, _ := Tail(path, 0); len(none) != 0 {
		t.Fatalf("Tail(0) = %v", none)
	}

	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		f    Filter
		want int
	}{
		{"all", Filter{}, 40},
		{"deny", Filter{Decision: "DENY"}, 10},
		{"subject", Filter{Subject: "alice"}, 10},
		{"full identity", Filter{Subject: "agent:deploy-bot@https://idp.example"}, 30},
		{"type prefix", Filter{Type: "cert"}, 10},
		{"type exact", Filter{Type: "command"}, 20},
		{"type is not a bare prefix", Filter{Type: "comm"}, 0},
		{"session", Filter{Session: "s2"}, 3},
		{"since", Filter{Since: start.Add(31 * time.Second)}, 10},
		{"until", Filter{Until: start.Add(11 * time.Second)}, 10},
		{"combined", Filter{Subject: "deploy-bot", Decision: "allow", Until: start.Add(20 * time.Second)}, 5},
	}
	for _, tt := range tests {
		got, err := Search(path, tt.f)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != tt.want {
			t.Errorf("%s: Search found %d events, want %d", tt.name, len(got), tt.want)
		}
	}

	// Follow: the last 2 events, then new ones as they land.
	ctx, cancel := context.WithCancel(t.Context())
	var mu sync.Mutex
	var seen []string
	done := make(chan error, 1)
	caughtUp := make(chan struct{}) // Follow delivered the existing tail
	go func() {
		done <- Follow(ctx, path, 2, 5*time.Millisecond, func(e Event) error {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, e.Type)
			switch len(seen) {
			case 2:
				close(caughtUp)
			case 4:
				cancel()
			}
			return nil
		})
	}()
	<-caughtUp
	l, err := Open(path, Options{Key: testKey})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, typ := range []string{ServerStart, ServerStop} {
		if err := l.Record(Event{Type: typ}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Follow = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Follow did not see the new events")
	}
	want := []string{evs[38].Type, evs[39].Type, ServerStart, ServerStop}
	if strings.Join(seen, ",") != strings.Join(want, ",") {
		t.Fatalf("Follow saw %v, want %v", seen, want)
	}
}

func TestFollowWaitsForCompleteLines(t *testing.T) {
	t.Parallel()
	path := writeLog(t, sample(1))
	line, _, _ := newChain(testKey).appendLine(nil, Event{Type: ServerStop, Seq: 2}, "x")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	got := make(chan string, 4)
	done := make(chan error, 1)
	go func() {
		done <- Follow(ctx, path, 0, 2*time.Millisecond, func(e Event) error { got <- e.Type; return nil })
	}()
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	defer f.Close()
	f.Write(line[:20])
	time.Sleep(30 * time.Millisecond)
	f.Write(line[20:])
	select {
	case typ := <-got:
		if typ != ServerStop {
			t.Fatalf("Follow delivered %q", typ)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Follow never delivered the line written in two parts")
	}
	cancel()
	<-done
}

func TestMirrorGetsRecoveryToo(t *testing.T) {
	t.Parallel()
	path := writeLog(t, sample(2))
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"ti`)
	f.Close()
	var m bytes.Buffer
	l, err := Open(path, Options{Mirror: &m, Key: testKey})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if !strings.HasPrefix(m.String(), `{"time":`) || !strings.Contains(m.String(), `"type":"log.recovered"`) {
		t.Fatalf("mirror = %q", m.String())
	}
}
