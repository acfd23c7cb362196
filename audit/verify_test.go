package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestVerifyDetectsTampering(t *testing.T) {
	t.Parallel()
	path := writeLog(t, sample(12))
	orig := lines(t, path)
	// forged is a well-formed event chained to line 5, with a correct hash
	// of its own: inserting it still breaks the link of the line after.
	var e5 Event
	json.Unmarshal([]byte(orig[4]), &e5)
	forgedLine, _, _ := encode(Event{Time: e5.Time, Type: Command, Decision: "allow", Detail: map[string]any{"command": "true"}}, e5.Hash)
	forged := strings.TrimSuffix(string(forgedLine), "\n")

	tests := []struct {
		name string
		edit func(ls []string) []string
		want string
	}{
		{"edit one byte", func(ls []string) []string {
			ls[6] = strings.Replace(ls[6], "deny", "dony", 1)
			return ls
		}, "line 7: hash mismatch"},
		{"edit a decision and fix its hash", func(ls []string) []string {
			var e Event
			json.Unmarshal([]byte(ls[6]), &e)
			e.Decision = "allow"
			l, _, _ := encode(e, e.Prev)
			ls[6] = strings.TrimSuffix(string(l), "\n")
			return ls
		}, "line 8: prev does not match line 7"},
		{"delete a line", func(ls []string) []string {
			return append(ls[:4], ls[5:]...)
		}, "line 5: prev does not match line 4"},
		{"delete the first line", func(ls []string) []string { return ls[1:] }, "line 1: prev set on the first event (lines before it were removed)"},
		{"insert a forged line", func(ls []string) []string {
			return append(ls[:5], append([]string{forged}, ls[5:]...)...)
		}, "line 7: prev does not match line 6"},
		{"duplicate a line", func(ls []string) []string {
			return append(ls[:3], append([]string{ls[2]}, ls[3:]...)...)
		}, "line 4: prev does not match line 3"},
		{"swap two lines", func(ls []string) []string {
			ls[8], ls[9] = ls[9], ls[8]
			return ls
		}, "line 9: prev does not match line 8"},
		{"not JSON", func(ls []string) []string {
			ls[6] = ls[6][:20] + "}"
			return ls
		}, "line 7: not valid JSON"},
		{"empty line", func(ls []string) []string {
			return append(ls[:2], append([]string{""}, ls[2:]...)...)
		}, "line 3: empty line"},
		{"hash removed", func(ls []string) []string {
			ls[1] = ls[1][:len(ls[1])-hashSuffixLen] + "}"
			return ls
		}, "line 2: hash field missing or not last"},
		{"JSON that is not an event", func(ls []string) []string {
			ls[1] = `[1,2,3]`
			return ls
		}, "line 2: not an audit event: json: cannot unmarshal array into Go value of type audit.Event"},
		{"prev removed", func(ls []string) []string {
			var e Event
			json.Unmarshal([]byte(ls[3]), &e)
			l, _, _ := encode(e, "")
			ls[3] = strings.TrimSuffix(string(l), "\n")
			return ls
		}, "line 4: prev missing, line 3 comes before it"},
		{"a fake recovery", func(ls []string) []string {
			ls[3] = "torn"
			return ls // line 5 is no log.recovered event
		}, "line 4: not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ls := tt.edit(append([]string{}, orig...))
			_, err := Verify(strings.NewReader(strings.Join(ls, "\n") + "\n"))
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Verify = %v, want %q", err, tt.want)
			}
			var ve *VerifyError
			if !errors.As(err, &ve) || errors.Is(err, ErrTornTail) {
				t.Fatalf("Verify error %#v is not a tampering *VerifyError", err)
			}
		})
	}
}

func TestVerifyEmptyLog(t *testing.T) {
	t.Parallel()
	if n, err := Verify(strings.NewReader("")); n != 0 || err != nil {
		t.Fatalf("Verify(empty) = %d, %v", n, err)
	}
}

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
	l, err := Open(path, Options{})
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
	line, _, _ := encode(Event{Type: ServerStop}, "x")
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
	l, err := Open(path, Options{Mirror: &m})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if !strings.HasPrefix(m.String(), `{"time":`) || !strings.Contains(m.String(), `"type":"log.recovered"`) {
		t.Fatalf("mirror = %q", m.String())
	}
}

// FuzzVerify: Verify never panics, and whatever it accepts is a chain
// that Open continues without error.
func FuzzVerify(f *testing.F) {
	path := writeLog(f, sample(5))
	b, _ := os.ReadFile(path)
	f.Add(b)
	f.Add(b[:len(b)-7])
	f.Add(bytes.Replace(b, []byte("deny"), []byte("dent"), 1))
	f.Add([]byte("\n\n"))
	f.Add([]byte(`{"hash":"` + strings.Repeat("0", 64) + `"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := Verify(bytes.NewReader(data))
		if err != nil || n == 0 {
			return
		}
		p := filepath.Join(t.TempDir(), "audit.jsonl")
		os.WriteFile(p, data, 0o600)
		l, err := Open(p, Options{})
		if err != nil {
			t.Fatalf("Open of a verified log: %v", err)
		}
		if err := l.Record(Event{Type: ServerStart}); err != nil {
			t.Fatal(err)
		}
		l.Close()
		out, _ := os.ReadFile(p)
		if m, err := Verify(bytes.NewReader(out)); err != nil || m != n+1 {
			t.Fatalf("after one more event: Verify = %d, %v (was %d)", m, err, n)
		}
	})
}
