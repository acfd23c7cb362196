package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// rechain re-encodes ls[from:] with key (nil: as an unkeyed, legacy
// chain, seq stripped), each chained to the line before, as someone who
// edits a log and recomputes its chain would.
func rechain(t testing.TB, ls []string, from int, key []byte, edit func(i int, e *Event)) []string {
	t.Helper()
	c := newChain(key)
	prev := ""
	if from > 0 {
		var e Event
		json.Unmarshal([]byte(ls[from-1]), &e)
		prev = e.Hash
	}
	for i := from; i < len(ls); i++ {
		var e Event
		if err := json.Unmarshal([]byte(ls[i]), &e); err != nil {
			t.Fatal(err)
		}
		if key == nil {
			e.Seq = 0
		}
		if edit != nil {
			edit(i, &e)
		}
		b, hash, err := c.appendLine(nil, e, prev)
		if err != nil {
			t.Fatal(err)
		}
		ls[i], prev = strings.TrimSuffix(string(b), "\n"), hash
	}
	return ls
}

// allowFirstDeny rewrites the first deny (line 3 of sample) as an allow.
func allowFirstDeny(i int, e *Event) {
	if i == 2 {
		e.Decision = "allow"
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	t.Parallel()
	path := writeLog(t, sample(12))
	orig := lines(t, path)
	var last Event
	json.Unmarshal([]byte(orig[11]), &last)
	head := Head{Seq: 12, Hash: last.Hash}
	// forged is a well-formed event chained to line 5, with a correct
	// hash of its own (made with the key): inserting it still breaks the
	// link of the line after.
	var e5 Event
	json.Unmarshal([]byte(orig[4]), &e5)
	forgedLine, _, _ := newChain(testKey).appendLine(nil, Event{Time: e5.Time, Type: Command, Decision: "allow", Seq: 6, Detail: map[string]any{"command": "true"}}, e5.Hash)
	forged := strings.TrimSuffix(string(forgedLine), "\n")
	otherKey := []byte("another data directory's key, 32b")

	tests := []struct {
		name string
		edit func(ls []string) []string
		// head says whether the store's head (event 12) is given.
		head bool
		want string // "" when Verify must accept the edit (what the head is for)
		err  error  // the VerifyError's Err
	}{
		{"edit one byte", func(ls []string) []string {
			ls[6] = strings.Replace(ls[6], "deny", "dony", 1)
			return ls
		}, false, "line 7: hash mismatch", nil},
		{"deny rewritten as allow, re-hashed without the key", func(ls []string) []string {
			var e Event
			json.Unmarshal([]byte(ls[2]), &e)
			e.Decision = "allow"
			l, _, _ := newChain(nil).appendLine(nil, e, e.Prev)
			ls[2] = strings.TrimSuffix(string(l), "\n")
			return ls
		}, false, "line 3: hash mismatch", nil},
		{"deny rewritten as allow, the chain recomputed unkeyed from there", func(ls []string) []string {
			return rechain(t, ls, 2, nil, allowFirstDeny)
		}, false, "line 3: unkeyed event after keyed ones: written without the audit key (forged, or the chain downgraded)", nil},
		{"deny rewritten as allow, the whole chain recomputed unkeyed", func(ls []string) []string {
			return rechain(t, ls, 0, nil, allowFirstDeny)
		}, true, "line 12: event 12 is not the one the store's head records (hash " + head.Hash + ", the file has ", ErrRewritten},
		{"whole log recomputed unkeyed, no head to check", func(ls []string) []string {
			return rechain(t, ls, 0, nil, allowFirstDeny)
		}, false, "", nil}, // a legacy log as far as the file can tell: Report.Legacy says so
		{"whole log recomputed with another key", func(ls []string) []string {
			return rechain(t, ls, 0, otherKey, allowFirstDeny)
		}, false, "line 1: hash mismatch (the event was edited, or the log was keyed with another audit key than this data directory's)", nil},
		{"deny rewritten as allow with the key (an insider)", func(ls []string) []string {
			var e Event
			json.Unmarshal([]byte(ls[6]), &e)
			e.Decision = "allow"
			l, _, _ := newChain(testKey).appendLine(nil, e, e.Prev)
			ls[6] = strings.TrimSuffix(string(l), "\n")
			return ls
		}, false, "line 8: prev does not match line 7", nil},
		{"last lines deleted", func(ls []string) []string { return ls[:9] }, true,
			"line 10: the log ends at event 9, but the store's head is event 12: 3 event(s) were cut from its end", ErrTruncated},
		{"last lines deleted, no head to check", func(ls []string) []string { return ls[:9] }, false, "", nil},
		{"last lines deleted, a torn piece left", func(ls []string) []string {
			return append(ls[:9], ls[9][:30])
		}, true, "line 10: the log ends at event 9, but the store's head is event 12: 3 event(s) were cut from its end", ErrTruncated},
		{"every line deleted", func(ls []string) []string { return nil }, true,
			"line 1: the log ends at event 0, but the store's head is event 12: 12 event(s) were cut from its end", ErrTruncated},
		{"delete a line", func(ls []string) []string {
			return append(ls[:4], ls[5:]...)
		}, false, "line 5: prev does not match line 4", nil},
		{"delete the first line", func(ls []string) []string { return ls[1:] }, false, "line 1: prev set on the first event (lines before it were removed)", nil},
		{"insert a forged line", func(ls []string) []string {
			return append(ls[:5], append([]string{forged}, ls[5:]...)...)
		}, false, "line 7: prev does not match line 6", nil},
		{"insert a line and renumber what follows, with the key", func(ls []string) []string {
			ls = append(ls[:5], append([]string{forged}, ls[5:]...)...)
			return rechain(t, ls, 6, testKey, func(i int, e *Event) { e.Seq = uint64(i + 1) })
		}, true, "line 12: event 12 is not the one the store's head records (hash " + head.Hash + ", the file has ", ErrRewritten},
		{"renumber an event, with the key", func(ls []string) []string {
			return rechain(t, ls, 4, testKey, func(i int, e *Event) { e.Seq += 100 })
		}, false, "line 5: seq 105, but it is event 5 of the file: events before it were removed or inserted", nil},
		{"duplicate a line", func(ls []string) []string {
			return append(ls[:3], append([]string{ls[2]}, ls[3:]...)...)
		}, false, "line 4: prev does not match line 3", nil},
		{"swap two lines", func(ls []string) []string {
			ls[8], ls[9] = ls[9], ls[8]
			return ls
		}, false, "line 9: prev does not match line 8", nil},
		{"not JSON", func(ls []string) []string {
			ls[6] = ls[6][:20] + "}"
			return ls
		}, false, "line 7: not valid JSON", nil},
		{"empty line", func(ls []string) []string {
			return append(ls[:2], append([]string{""}, ls[2:]...)...)
		}, false, "line 3: empty line", nil},
		{"hash removed", func(ls []string) []string {
			ls[1] = ls[1][:len(ls[1])-hashSuffixLen] + "}"
			return ls
		}, false, "line 2: hash field missing or not last", nil},
		{"JSON that is not an event", func(ls []string) []string {
			ls[1] = `[1,2,3]`
			return ls
		}, false, "line 2: not an audit event: json: cannot unmarshal array into Go value of type audit.Event", nil},
		{"prev removed", func(ls []string) []string {
			var e Event
			json.Unmarshal([]byte(ls[3]), &e)
			l, _, _ := newChain(testKey).appendLine(nil, e, "")
			ls[3] = strings.TrimSuffix(string(l), "\n")
			return ls
		}, false, "line 4: prev missing, line 3 comes before it", nil},
		{"a fake recovery", func(ls []string) []string {
			ls[3] = "torn"
			return ls // line 5 is no log.recovered event
		}, false, "line 4: not valid JSON", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ls := tt.edit(append([]string{}, orig...))
			text := strings.Join(ls, "\n") + "\n"
			if len(ls) == 0 {
				text = ""
			}
			opt := VerifyOptions{Key: testKey}
			if tt.head {
				opt.Head = head
			}
			rep, err := VerifyWith(strings.NewReader(text), opt)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Verify = %v, want it accepted", err)
				}
				if rep.Events != len(ls) || rep.HeadMatched {
					t.Fatalf("Verify = %+v", rep)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("Verify = %v, want %q", err, tt.want)
			}
			var ve *VerifyError
			if !errors.As(err, &ve) || !Tampering(err) || ve.Err != tt.err {
				t.Fatalf("Verify error %#v is not a tampering *VerifyError with Err %v", err, tt.err)
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

// A head the file reaches, at or before its end, matches; events after it
// are the ones written since it was saved.
func TestVerifyHead(t *testing.T) {
	t.Parallel()
	path := writeLog(t, sample(12))
	evs, _ := Tail(path, 12)
	b, _ := os.ReadFile(path)
	tests := []struct {
		name  string
		head  Head
		after int
		err   error
	}{
		{"at the end", Head{12, evs[11].Hash}, 0, nil},
		{"file ahead by one group commit", Head{8, evs[7].Hash}, 4, nil},
		{"first event", Head{1, evs[0].Hash}, 11, nil},
		{"no head", Head{}, 0, nil},
		{"head past the end", Head{13, evs[11].Hash}, 0, ErrTruncated},
		{"head on another event", Head{8, evs[8].Hash}, 0, ErrRewritten},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := VerifyWith(bytes.NewReader(b), VerifyOptions{Key: testKey, Head: tt.head})
			if !errors.Is(err, tt.err) || tt.err != nil && !Tampering(err) {
				t.Fatalf("Verify = %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			if rep.Events != 12 || rep.Legacy != 0 || rep.Last != (Head{12, evs[11].Hash}) ||
				rep.HeadMatched != !tt.head.IsZero() || rep.AfterHead != tt.after {
				t.Fatalf("Verify = %+v", rep)
			}
		})
	}
}

// Keyed events cannot be checked without the key: that is no verdict on
// the log, and not tampering either.
func TestVerifyKeyedNeedsTheKey(t *testing.T) {
	t.Parallel()
	f, _ := os.Open(writeLog(t, sample(3)))
	defer f.Close()
	n, err := Verify(f)
	if n != 0 || !errors.Is(err, ErrKeyRequired) || Tampering(err) || err.Error() != "line 1: keyed event: checking it needs the audit key" {
		t.Fatalf("Verify without the key = %d, %v", n, err)
	}
}

// A log written before the chain was keyed still verifies, as legacy; a
// keyed Log continues it with keyed events numbered after the legacy ones,
// and once keyed, it is never continued without the key.
func TestLegacyLogIsContinuedKeyed(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(path, Options{Clock: newClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range sample(5) {
		if err := l.Record(e); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	if evs, _ := Tail(path, 5); evs[4].Seq != 0 {
		t.Fatalf("a Log without a key wrote seq %d", evs[4].Seq)
	}
	if n, err := verifyFile(t, path); n != 5 || err != nil {
		t.Fatalf("Verify of the legacy log = %d, %v", n, err)
	}

	heads := &memHeads{}
	l, err = Open(path, Options{Key: testKey, Heads: heads})
	if err != nil {
		t.Fatal(err)
	}
	legacyLast, _ := Tail(path, 1)
	if got := heads.get(); got != (Head{5, legacyLast[0].Hash}) {
		t.Fatalf("head after opening the legacy log = %+v: Open pins it", got)
	}
	for _, e := range sample(3) {
		if err := l.Record(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	evs, _ := Tail(path, 8)
	for i, e := range evs {
		want := uint64(0) // the legacy events keep theirs
		if i >= 5 {
			want = uint64(i + 1)
		}
		if e.Seq != want {
			t.Fatalf("event %d has seq %d, want %d", i+1, e.Seq, want)
		}
	}
	f, _ := os.Open(path)
	defer f.Close()
	rep, err := VerifyWith(f, VerifyOptions{Key: testKey, Head: heads.get()})
	if err != nil || rep.Events != 8 || rep.Legacy != 5 || rep.Keyed() != 3 || !rep.HeadMatched || rep.Last != heads.get() {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
	if _, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), "can only be continued with the audit key") {
		t.Fatalf("Open of a keyed log without the key = %v", err)
	}
}

// FuzzVerify: Verify never panics, and whatever it accepts with its own
// head is a chain that Open, checking that head, continues without a word
// of tampering, the head then moving to the new last event.
func FuzzVerify(f *testing.F) {
	path := writeLog(f, sample(5))
	b, _ := os.ReadFile(path)
	f.Add(b)
	f.Add(b[:len(b)-7])
	f.Add(bytes.Replace(b, []byte("deny"), []byte("dent"), 1))
	f.Add([]byte("\n\n"))
	f.Add([]byte(`{"hash":"` + strings.Repeat("0", 64) + `"}`))
	legacy := filepath.Join(f.TempDir(), "legacy.jsonl")
	if l, err := Open(legacy, Options{}); err == nil {
		for _, e := range sample(3) {
			l.Record(e)
		}
		l.Close()
	}
	lb, _ := os.ReadFile(legacy)
	f.Add(lb)
	f.Add(append(append([]byte{}, lb...), b...))
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := VerifyWith(bytes.NewReader(data), VerifyOptions{Key: testKey})
		if err != nil || rep.Events == 0 {
			return
		}
		if again, err := VerifyWith(bytes.NewReader(data), VerifyOptions{Key: testKey, Head: rep.Last}); err != nil || !again.HeadMatched {
			t.Fatalf("Verify with its own head %+v: %+v, %v", rep.Last, again, err)
		}
		p := filepath.Join(t.TempDir(), "audit.jsonl")
		os.WriteFile(p, data, 0o600)
		heads := &memHeads{h: rep.Last}
		l, err := Open(p, Options{Key: testKey, Heads: heads})
		if err != nil {
			t.Fatalf("Open of a verified log: %v", err)
		}
		if err := l.Record(Event{Type: ServerStart}); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		out, _ := os.ReadFile(p)
		after, err := VerifyWith(bytes.NewReader(out), VerifyOptions{Key: testKey, Head: heads.get()})
		if err != nil || after.Events != rep.Events+1 || after.Last != heads.get() {
			t.Fatalf("after one more event: Verify = %+v, %v (was %d events), head %+v", after, err, rep.Events, heads.get())
		}
	})
}
