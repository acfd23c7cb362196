package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/identity"
)

// fakeClock advances by step on every call.
type fakeClock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), step: time.Second}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(c.step)
	return c.t
}

var agent = &identity.Provenance{Kind: identity.KindAgent, Subject: "deploy-bot", Issuer: "https://idp.example", Role: "ops"}

// sample returns n varied events.
func sample(n int) []Event {
	evs := make([]Event, n)
	for i := range evs {
		switch i % 4 {
		case 0:
			evs[i] = Event{Type: SessionStart, Identity: agent, Session: fmt.Sprintf("s%d", i/4), Source: "10.0.0.7"}
		case 1:
			evs[i] = Event{Type: Command, Identity: agent, Session: fmt.Sprintf("s%d", i/4), Decision: "allow", Rule: "default-allow",
				Detail: map[string]any{"command": "ls -la /tmp", "n": i}}
		case 2:
			evs[i] = Event{Type: Command, Identity: agent, Session: fmt.Sprintf("s%d", i/4), Decision: "deny", Rule: "no-rm",
				Detail: map[string]any{"command": "rm -rf / <&>", "reason": "destructive"}}
		case 3:
			evs[i] = Event{Type: CertIssued, Identity: &identity.Provenance{Kind: identity.KindHuman, Subject: "alice"},
				Detail: map[string]any{"serial": "18446744073709551615"}}
		}
	}
	return evs
}

// writeLog records evs in a new log and returns its path.
func writeLog(t testing.TB, evs []Event) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit", "audit.jsonl")
	l, err := Open(path, Options{Clock: newClock().Now, Key: testKey})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if err := l.Record(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func lines(t testing.TB, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func verifyFile(t testing.TB, path string) (int, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return verifyKeyed(f)
}

// testKey is the audit key of the tests' logs.
var testKey = []byte("bastion audit test key, 32 bytes")

// verifyKeyed verifies a log with testKey and no head.
func verifyKeyed(r io.Reader) (int, error) {
	rep, err := VerifyWith(r, VerifyOptions{Key: testKey})
	return rep.Events, err
}

func TestRecordWritesChainedLines(t *testing.T) {
	t.Parallel()
	var mirror bytes.Buffer
	path := filepath.Join(t.TempDir(), "a", "audit.jsonl")
	l, err := Open(path, Options{Clock: newClock().Now, Mirror: &mirror, Key: testKey})
	if err != nil {
		t.Fatal(err)
	}
	fixed := time.Date(2020, 1, 2, 3, 4, 5, 6, time.FixedZone("X", 3600))
	for _, e := range append(sample(3), Event{Type: CARotated, Time: fixed, Seq: 99, Prev: "bogus", Hash: "bogus"}) {
		if err := l.Record(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Record(Event{Type: Command}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Record after Close = %v, want ErrClosed", err)
	}

	ls := lines(t, path)
	if len(ls) != 4 {
		t.Fatalf("got %d lines, want 4", len(ls))
	}
	if got := mirror.String(); got != strings.Join(ls, "\n")+"\n" {
		t.Errorf("mirror differs from file:\n%s", got)
	}
	var prev string
	for i, line := range ls {
		var e Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if e.Prev != prev {
			t.Errorf("line %d: prev = %q, want %q", i+1, e.Prev, prev)
		}
		if len(e.Hash) != 64 {
			t.Errorf("line %d: hash = %q", i+1, e.Hash)
		}
		if e.Seq != uint64(i+1) {
			t.Errorf("line %d: seq = %d", i+1, e.Seq)
		}
		// The hash is the HMAC-SHA256, under the key, of the encoding
		// with Hash empty.
		c := e
		c.Hash = ""
		b, _ := json.Marshal(c)
		mac := hmac.New(sha256.New, testKey)
		mac.Write(b)
		if hex.EncodeToString(mac.Sum(nil)) != e.Hash || !strings.HasPrefix(line, string(b[:len(b)-1])) {
			t.Errorf("line %d: hash is not the HMAC of the canonical encoding", i+1)
		}
		prev = e.Hash
	}
	if !strings.Contains(ls[0], `"time":"2026-03-01T12:00:01Z"`) {
		t.Errorf("clock not used for a zero Time: %s", ls[0])
	}
	if !strings.Contains(ls[3], `"time":"2020-01-02T02:04:05.000000006Z"`) {
		t.Errorf("a given Time is kept (in UTC): %s", ls[3])
	}
	if n, err := verifyFile(t, path); err != nil || n != 4 {
		t.Fatalf("Verify = %d, %v", n, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	di, _ := os.Stat(filepath.Dir(path))
	if di.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v, want 0700", di.Mode().Perm())
	}
}

func TestRecordRefusesUnencodable(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(path, Options{Key: testKey})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Record(Event{Type: Command, Detail: map[string]any{"c": make(chan int)}}); err == nil {
		t.Fatal("an event that cannot be encoded was accepted")
	}
	if err := l.Record(Event{Type: Command}); err != nil {
		t.Fatal(err)
	}
	if n, err := verifyFile(t, path); err != nil || n != 1 {
		t.Fatalf("Verify = %d, %v", n, err)
	}
}

func TestReopenContinuesChain(t *testing.T) {
	t.Parallel()
	// Events larger than the chunks the tail is read back in.
	big := Event{Type: Command, Detail: map[string]any{"command": strings.Repeat("y", 150<<10)}}
	path := writeLog(t, append(sample(4), big))
	l, err := Open(path, Options{Key: testKey})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Record(Event{Type: ServerStart}); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if n, err := verifyFile(t, path); err != nil || n != 6 {
		t.Fatalf("Verify = %d, %v", n, err)
	}
	last, err := Tail(path, 2)
	if err != nil || len(last) != 2 || last[0].Detail["command"] != big.Detail["command"] || last[1].Type != ServerStart {
		t.Fatalf("Tail(2) after a big event: %d events, %v", len(last), err)
	}
}

// Two Logs on one file stand in for two processes (each has its own open
// file description, so the flock excludes them like separate processes):
// each picks up the other's appends before writing.
func TestTwoWritersShareOneChain(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	a, err := Open(path, Options{Key: testKey})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(path, Options{Key: testKey})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var wg sync.WaitGroup
	for _, l := range []*Log{a, b, a, b} {
		wg.Go(func() {
			for _, e := range sample(50) {
				if err := l.Record(e); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n, err := verifyFile(t, path); err != nil || n != 200 {
		t.Fatalf("Verify = %d, %v", n, err)
	}
}

func TestConcurrentRecord(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(path, Options{Key: testKey})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 25 {
				if err := l.Record(Event{Type: Command, Session: fmt.Sprintf("g%d", g), Detail: map[string]any{"i": i}}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	l.Close()
	if n, err := verifyFile(t, path); err != nil || n != 200 {
		t.Fatalf("Verify = %d, %v", n, err)
	}
	// Per session, events are in the order they were recorded.
	evs, _ := Search(path, Filter{Session: "g3"})
	for i, e := range evs {
		if e.Detail["i"].(float64) != float64(i) {
			t.Fatalf("g3 event %d has i=%v", i, e.Detail["i"])
		}
	}
}

func BenchmarkAuditRecord(b *testing.B) {
	path := filepath.Join(b.TempDir(), "audit.jsonl")
	l, err := Open(path, Options{Key: testKey})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	e := sample(2)[1]
	for b.Loop() {
		if err := l.Record(e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuditRecordParallel measures 16 sessions recording at once:
// group commit lets one fsync cover many events.
func BenchmarkAuditRecordParallel(b *testing.B) {
	path := filepath.Join(b.TempDir(), "audit.jsonl")
	l, err := Open(path, Options{Key: testKey})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	e := sample(2)[1]
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := l.Record(e); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := verifyKeyed(f); err != nil {
		b.Fatalf("chain after parallel records: %v", err)
	}
}

// TestEnqueueKeepsOrderAndReportsDurability mixes Enqueue and Record from
// many goroutines: every event lands, each goroutine's events in its call
// order, the chain verifies, and every Enqueue reports success.
func TestEnqueueKeepsOrderAndReportsDurability(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(path, Options{Key: testKey})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var pending []<-chan error
			for i := range 50 {
				e := Event{Type: "query", Session: fmt.Sprint(g), Detail: map[string]any{"i": i}}
				if i%10 == 9 {
					if err := l.Record(e); err != nil {
						t.Error(err)
					}
					continue
				}
				pending = append(pending, l.Enqueue(e))
			}
			for _, c := range pending {
				if err := <-c; err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if n, err := verifyKeyed(f); err != nil || n != 400 {
		t.Fatalf("Verify = %d, %v; want 400 events", n, err)
	}
	evs, err := Tail(path, 400)
	if err != nil {
		t.Fatal(err)
	}
	next := map[string]float64{}
	for _, e := range evs {
		i := e.Detail["i"].(float64)
		if i != next[e.Session] {
			t.Fatalf("session %s: event %v after %v", e.Session, i, next[e.Session]-1)
		}
		next[e.Session] = i + 1
	}
}

// Events that only were Enqueued (nobody waits on them) are still written
// by Close, and the log then holds all of them in order.
func TestEnqueueOnlyIsFlushedByClose(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(path, Options{Key: testKey})
	if err != nil {
		t.Fatal(err)
	}
	var pending []<-chan error
	for i := range 20 {
		pending = append(pending, l.Enqueue(Event{Type: "query", Detail: map[string]any{"i": i}}))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for i, c := range pending {
		select {
		case err := <-c:
			if err != nil {
				t.Fatalf("event %d: %v", i, err)
			}
		default:
			t.Fatalf("event %d has no outcome after Close", i)
		}
	}
	evs, err := Tail(path, 100)
	if err != nil || len(evs) != 20 {
		t.Fatalf("Tail = %d events, %v; want 20", len(evs), err)
	}
	for i, e := range evs {
		if e.Detail["i"].(float64) != float64(i) {
			t.Fatalf("event %d is %v", i, e.Detail["i"])
		}
	}
}

// BenchmarkAuditEnqueueParallel is a busy database tunnel: 8 sessions
// enqueue statement events and check the outcomes in the background.
func BenchmarkAuditEnqueueParallel(b *testing.B) {
	l, err := Open(filepath.Join(b.TempDir(), "audit.jsonl"), Options{Key: testKey})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	e := sample(2)[1]
	b.SetParallelism(4) // x GOMAXPROCS(2) = 8 sessions
	b.RunParallel(func(pb *testing.PB) {
		var inflight []<-chan error
		for pb.Next() {
			inflight = append(inflight, l.Enqueue(e))
			for len(inflight) > 0 {
				select {
				case err := <-inflight[0]:
					if err != nil {
						b.Error(err)
						return
					}
					inflight = inflight[1:]
					continue
				default:
				}
				break
			}
		}
		for _, c := range inflight {
			<-c
		}
	})
}

// An Enqueued event is in the file at once, before its fsync (a crash of
// bastion while the batch lingers loses none of it); the Mirror and the
// outcome wait for the fsync, which the next Record brings.
func TestEnqueueWritesBeforeLingering(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	var mirror lockedBuffer
	l, err := Open(path, Options{Mirror: &mirror, Key: testKey})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.linger = time.Hour // only the Record below ends it
	first := l.Enqueue(Event{Type: "query", Detail: map[string]any{"i": 0}})
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(`"query"`)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the Enqueued event was not written while its batch lingered")
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-first:
		t.Fatalf("outcome %v before any fsync", err)
	default:
	}
	if mirror.Len() != 0 {
		t.Fatalf("the Mirror got %q before the fsync", mirror.String())
	}
	if err := l.Record(Event{Type: "command"}); err != nil {
		t.Fatal(err)
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(mirror.String(), "\n"); n != 2 {
		t.Fatalf("the Mirror got %d lines after the fsync, want 2", n)
	}
}

// lockedBuffer is a Mirror the test reads while the log writes it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
