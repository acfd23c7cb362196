package bastion

import (
	"testing"
	"time"
)

// TestFailLimiter: a source is over its limit from the failure after the
// max-th within the window, only that first one is reported as first,
// sources are counted apart, and failures older than the window are
// forgotten.
func TestFailLimiter(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_000_000, 0)
	l := newFailLimiter(3, time.Minute, func() time.Time { return now })
	type want struct{ over, first bool }
	step := func(src string, w want) {
		t.Helper()
		if over, first := l.fail(src); over != w.over || first != w.first {
			t.Fatalf("fail(%s) at %s = over %v first %v, want %v %v", src, now.Format(time.TimeOnly), over, first, w.over, w.first)
		}
	}
	for range 3 {
		step("192.0.2.1", want{})
		now = now.Add(time.Second)
	}
	step("192.0.2.1", want{over: true, first: true})
	step("192.0.2.1", want{over: true})
	step("192.0.2.1", want{over: true})
	// Another source behind its own address is not affected.
	step("192.0.2.2", want{})

	// At exactly the window the first failure still counts; past it, it
	// is forgotten, but the later ones are not.
	now = time.Unix(1_000_000, 0).Add(time.Minute)
	step("192.0.2.1", want{over: true})
	// Every failure so far is past the window: the source starts afresh,
	// and its map entry was dropped on the way.
	now = now.Add(2 * time.Minute)
	step("192.0.2.1", want{})
	if n := len(l.fails["192.0.2.1"]); n != 1 {
		t.Errorf("%d failures kept, want 1", n)
	}
	l.prune("192.0.2.2", now)
	if _, ok := l.fails["192.0.2.2"]; ok {
		t.Error("a source whose failures all expired is still tracked")
	}
}

// TestFailLimiterConcurrent: failures from many goroutines are all
// counted, and exactly one is reported first over the limit.
func TestFailLimiterConcurrent(t *testing.T) {
	t.Parallel()
	l := newFailLimiter(10, time.Minute, time.Now)
	firsts := make(chan bool, 50)
	for range 50 {
		go func() { _, first := l.fail("198.51.100.7"); firsts <- first }()
	}
	n := 0
	for range 50 {
		if <-firsts {
			n++
		}
	}
	if n != 1 || len(l.fails["198.51.100.7"]) != 50 {
		t.Errorf("%d firsts and %d failures counted, want 1 and 50", n, len(l.fails["198.51.100.7"]))
	}
}
