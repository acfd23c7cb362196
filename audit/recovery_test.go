package audit

import (
	"bytes"
	"errors"
	"os"
	"testing"
)

func TestTornTailIsRecovered(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// tear edits the file content of a 4-event log.
		tear func(b []byte) []byte
		// recovered says whether a log.recovered event is expected.
		recovered bool
		// headAt is the stored head's event: the last one a crash can
		// have left whole (a head is saved after its event's fsync).
		headAt int
	}{
		{"cut mid-line", func(b []byte) []byte { return b[:len(b)-40] }, true, 3},
		{"zeros appended", func(b []byte) []byte { return append(b, 0, 0, 0, 0) }, true, 4},
		{"half a line appended", func(b []byte) []byte {
			ls := bytes.SplitAfter(b, []byte("\n"))
			return append(b, ls[1][:30]...)
		}, true, 4},
		{"lost final newline only", func(b []byte) []byte { return b[:len(b)-1] }, false, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := writeLog(t, sample(4))
			whole, _ := Tail(path, 4)
			heads := &memHeads{h: Head{uint64(tt.headAt), whole[tt.headAt-1].Hash}}
			b, _ := os.ReadFile(path)
			if err := os.WriteFile(path, tt.tear(b), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := verifyFile(t, path)
			if tt.recovered {
				var ve *VerifyError
				if !errors.As(err, &ve) || !errors.Is(err, ErrTornTail) {
					t.Fatalf("Verify of a torn log = %v, want ErrTornTail", err)
				}
			} else if err != nil {
				t.Fatalf("Verify = %v", err)
			}

			l, err := Open(path, Options{Key: testKey, Heads: heads})
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Record(Event{Type: ServerStart}); err != nil {
				t.Fatal(err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			f, _ := os.Open(path)
			defer f.Close()
			rep, err := VerifyWith(f, VerifyOptions{Key: testKey, Head: heads.get()})
			if err != nil || rep.Last != heads.get() || rep.Legacy != 0 {
				t.Fatalf("Verify after recovery: %+v, %v\n%s", rep, err, readAll(t, path))
			}
			evs, err := Search(path, Filter{Type: "log"})
			if err != nil {
				t.Fatal(err)
			}
			if got := len(evs) == 1; got != tt.recovered {
				t.Fatalf("log.recovered events: %d, want recovered=%v (%d events verified)", len(evs), tt.recovered, rep.Events)
			}
			// The recovery is keyed and numbered like any event.
			if tt.recovered && (evs[0].Type != LogRecovered || evs[0].Seq != uint64(rep.Events-1)) {
				t.Fatalf("recovery event %+v, want seq %d", evs[0], rep.Events-1)
			}
		})
	}
}

// A write that fails twice in a row (a full disk) leaves two torn pieces;
// one recovery covers both.
func TestRecoveryOfRepeatedTears(t *testing.T) {
	t.Parallel()
	path := writeLog(t, sample(3))
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"time":"2026-0`)    // torn write
	f.WriteString("\n" + `{"time":"20`) // torn recovery
	f.Close()
	l, err := Open(path, Options{Key: testKey})
	if err != nil {
		t.Fatal(err)
	}
	l.Record(Event{Type: ServerStart})
	l.Close()
	if n, err := verifyFile(t, path); err != nil || n != 5 {
		t.Fatalf("Verify = %d, %v\n%s", n, err, readAll(t, path))
	}
}

func readAll(t testing.TB, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestGarbageLineInTheMiddleIsTampering(t *testing.T) {
	t.Parallel()
	// Garbage followed by real events (no log.recovered naming it) is not a
	// crash: it is an edit.
	path := writeLog(t, sample(2))
	b, _ := os.ReadFile(path)
	ls := bytes.SplitAfter(b, []byte("\n"))
	bad := append(append(append([]byte{}, ls[0]...), "garbage\n"...), ls[1]...)
	os.WriteFile(path, bad, 0o600)
	_, err := verifyFile(t, path)
	var ve *VerifyError
	if !errors.As(err, &ve) || ve.Line != 2 || ve.Reason != "not valid JSON" {
		t.Fatalf("Verify = %v, want line 2: not valid JSON", err)
	}
}
