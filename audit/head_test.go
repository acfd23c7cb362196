package audit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// memHeads is a HeadStore in memory. saved, when non-nil, receives every
// head saved; block, when non-nil, holds every SaveHead until it is closed.
type memHeads struct {
	mu      sync.Mutex
	h       Head
	saved   chan Head
	block   chan struct{}
	saveErr error
	loadErr error
}

func (m *memHeads) SaveHead(_ context.Context, h Head) error {
	if m.block != nil {
		<-m.block
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.saveErr != nil {
		return m.saveErr
	}
	m.h = h
	if m.saved != nil {
		m.saved <- h
	}
	return nil
}

func (m *memHeads) LoadHead(context.Context) (Head, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.h, m.loadErr
}

func (m *memHeads) get() Head {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.h
}

// The head follows the file after every group commit, without Close.
func TestHeadFollowsGroupCommits(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	heads := &memHeads{saved: make(chan Head, 64)}
	l, err := Open(path, Options{Key: testKey, Heads: heads})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i, e := range sample(3) {
		if err := l.Record(e); err != nil {
			t.Fatal(err)
		}
		for h := range heads.saved {
			if h.Seq == uint64(i+1) {
				break
			}
		}
	}
	last, _ := Tail(path, 1)
	if got := heads.get(); got != (Head{3, last[0].Hash}) {
		t.Fatalf("head %+v, want event 3 %s", got, last[0].Hash)
	}
}

// No Record waits for the store: a store that hangs holds up only the
// head, which Close saves once it answers.
func TestRecordDoesNotWaitForTheHead(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	heads := &memHeads{block: make(chan struct{})}
	l, err := Open(path, Options{Key: testKey, Heads: heads})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range sample(20) {
		if err := l.Record(e); err != nil {
			t.Fatal(err)
		}
	}
	if heads.get() != (Head{}) {
		t.Fatal("a head was saved while the store hung")
	}
	close(heads.block)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	last, _ := Tail(path, 1)
	if got := heads.get(); got != (Head{20, last[0].Hash}) {
		t.Fatalf("head after Close %+v, want event 20", got)
	}
}

// Open checks the file against the stored head: a file cut or rewritten
// gets a log.tampered event that Verify reports from then on, with the
// head moved to the file; a torn tail after the head, or a file ahead of
// it, is no tampering.
func TestOpenReportsTampering(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// edit changes the file of a 6-event log whose head is event 6; it
		// may move the head back (as a crash before its save would).
		edit      func(t *testing.T, b []byte, heads *memHeads) []byte
		recovered bool
		tampered  string // the log.tampered event's reason, "" for none
		err       error
	}{
		{"last two events cut", func(t *testing.T, b []byte, _ *memHeads) []byte {
			return cutLines(b, 2)
		}, false, "the file ended at event 4, but the store's head was event 6: 2 event(s) were cut from its end", ErrTruncated},
		{"emptied", func(t *testing.T, b []byte, _ *memHeads) []byte { return nil },
			false, "the file ended at event 0, but the store's head was event 6: 6 event(s) were cut from its end", ErrTruncated},
		{"cut in the middle of the last event", func(t *testing.T, b []byte, _ *memHeads) []byte { return b[:len(b)-40] },
			true, "the file ended at event 5, but the store's head was event 6: 1 event(s) were cut from its end", ErrTruncated},
		{"last event rewritten with the key", func(t *testing.T, b []byte, _ *memHeads) []byte {
			ls := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
			ls = rechain(t, ls, 5, testKey, func(_ int, e *Event) { e.Source = "elsewhere" })
			return []byte(strings.Join(ls, "\n") + "\n")
		}, false, "the file's event 6 was not the store's head: the log was rewritten", ErrRewritten},
		{"torn after the head (a crash)", func(t *testing.T, b []byte, _ *memHeads) []byte {
			return append(b, `{"time":"2026-03-01T12:0`...)
		}, true, "", nil},
		{"ahead of a head that lags", func(t *testing.T, b []byte, heads *memHeads) []byte {
			evs, _ := Tail(writeLogBytes(t, b), 6)
			heads.SaveHead(t.Context(), Head{4, evs[3].Hash})
			return b
		}, false, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "audit.jsonl")
			heads := &memHeads{}
			l, err := Open(path, Options{Clock: newClock().Now, Key: testKey, Heads: heads})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range sample(6) {
				if err := l.Record(e); err != nil {
					t.Fatal(err)
				}
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(path)
			os.WriteFile(path, tt.edit(t, b, heads), 0o600)

			for range 2 { // reopened again, nothing more is reported
				l, err = Open(path, Options{Key: testKey, Heads: heads})
				if err != nil {
					t.Fatal(err)
				}
				if err := l.Record(Event{Type: ServerStart}); err != nil {
					t.Fatal(err)
				}
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
			}
			recovered, _ := Search(path, Filter{Type: LogRecovered})
			tampered, _ := Search(path, Filter{Type: LogTampered})
			if len(recovered) != map[bool]int{true: 1}[tt.recovered] || len(tampered) != map[bool]int{true: 1}[tt.tampered != ""] {
				t.Fatalf("%d log.recovered and %d log.tampered events\n%s", len(recovered), len(tampered), readAll(t, path))
			}
			f, _ := os.Open(path)
			defer f.Close()
			rep, err := VerifyWith(f, VerifyOptions{Key: testKey, Head: heads.get()})
			if tt.tampered == "" {
				if err != nil || rep.Last != heads.get() {
					t.Fatalf("Verify = %+v, %v; head %+v", rep, err, heads.get())
				}
				return
			}
			if !errors.Is(err, tt.err) || !Tampering(err) || !strings.HasSuffix(err.Error(), "log.tampered: bastion found "+tt.tampered) {
				t.Fatalf("Verify = %v, want %v: %s", err, tt.err, tt.tampered)
			}
		})
	}
}

// cutLines drops the last n lines of a log.
func cutLines(b []byte, n int) []byte {
	for range n {
		b = b[:strings.LastIndexByte(string(b[:len(b)-1]), '\n')+1]
	}
	return b
}

// writeLogBytes writes b to a file of its own, for Tail.
func writeLogBytes(t *testing.T, b []byte) string {
	p := filepath.Join(t.TempDir(), "copy.jsonl")
	os.WriteFile(p, b, 0o600)
	return p
}

func TestHeadStoreFailures(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	broken := errors.New("database is locked")
	if _, err := Open(filepath.Join(dir, "a.jsonl"), Options{Key: testKey, Heads: &memHeads{loadErr: broken}}); !errors.Is(err, broken) ||
		!strings.Contains(err.Error(), "load head") {
		t.Fatalf("Open with a head that cannot be loaded = %v", err)
	}
	if _, err := Open(filepath.Join(dir, "b.jsonl"), Options{Heads: &memHeads{}}); err == nil || !strings.Contains(err.Error(), "needs the audit key") {
		t.Fatalf("Open with heads but no key = %v", err)
	}
	heads := &memHeads{saveErr: broken}
	l, err := Open(filepath.Join(dir, "c.jsonl"), Options{Key: testKey, Heads: heads})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Record(Event{Type: ServerStart}); err != nil {
		t.Fatalf("Record while the head cannot be saved: %v", err)
	}
	if err := l.Close(); !errors.Is(err, broken) || !strings.Contains(err.Error(), "save head") {
		t.Fatalf("Close = %v, want the head's error", err)
	}
	// A log ahead of its head whose head cannot be saved is refused: the
	// next check would have nothing to go on.
	if _, err := Open(filepath.Join(dir, "c.jsonl"), Options{Key: testKey, Heads: heads}); !errors.Is(err, broken) {
		t.Fatalf("Open = %v, want the head's error", err)
	}
}

// A head that is saved late (another process, or the saver behind) never
// makes an intact log look cut: the head only ever names durable events.
func TestHeadLoadedBeforeTheTail(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	heads := &memHeads{}
	a, err := Open(path, Options{Key: testKey, Heads: heads})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, e := range sample(200) {
			if err := a.Record(e); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-done:
			return
		default:
		}
		b, err := Open(path, Options{Key: testKey, Heads: heads})
		if err != nil {
			t.Fatal(err)
		}
		b.Close()
		if evs, _ := Search(path, Filter{Type: LogTampered}); len(evs) > 0 {
			t.Fatalf("an intact log, written by another Log, was reported: %v", evs[0].Detail["reason"])
		}
		if time.Now().After(deadline) {
			t.Fatal("the writer did not finish")
		}
	}
}

// A file cut or rewritten under a running Log is caught at its next
// write, before the head moves on: the Log's own last write is a head too.
func TestLiveLogCutOrRewritten(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		edit   func(t *testing.T, b []byte) []byte
		reason string
		err    error
	}{
		{"last two events cut", func(t *testing.T, b []byte) []byte { return cutLines(b, 2) },
			"the file ended at event 4, but bastion's last write was event 6: 2 event(s) were cut from its end", ErrTruncated},
		{"rewritten unkeyed", func(t *testing.T, b []byte) []byte {
			ls := rechain(t, strings.Split(strings.TrimSuffix(string(b), "\n"), "\n"), 0, nil, allowFirstDeny)
			return []byte(strings.Join(ls, "\n") + "\n")
		}, "the file's event 6 was not bastion's last write: the log was rewritten", ErrRewritten},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "audit.jsonl")
			heads := &memHeads{}
			l, err := Open(path, Options{Clock: newClock().Now, Key: testKey, Heads: heads})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range sample(6) {
				if err := l.Record(e); err != nil {
					t.Fatal(err)
				}
			}
			b, _ := os.ReadFile(path)
			os.WriteFile(path, tt.edit(t, b), 0o600)
			if err := l.Record(Event{Type: ServerStop}); err != nil {
				t.Fatal(err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			f, _ := os.Open(path)
			defer f.Close()
			_, err = VerifyWith(f, VerifyOptions{Key: testKey, Head: heads.get()})
			if !errors.Is(err, tt.err) || !strings.HasSuffix(err.Error(), "log.tampered: bastion found "+tt.reason) {
				t.Fatalf("Verify = %v, want %v: %s", err, tt.err, tt.reason)
			}
		})
	}
}
