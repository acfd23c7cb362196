package recordings

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzReader: no input makes the Reader or Verify panic, the Reader always
// ends, and Verify's verdict is one of its kinds.
func FuzzReader(f *testing.F) {
	golden, err := os.ReadFile(filepath.Join("testdata", "s-golden.cast"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden)
	f.Add(golden[:len(golden)/2])
	f.Add([]byte(playCast))
	f.Add([]byte(`{"version":2,"width":1,"height":1}` + "\n[1e400, \"o\", 1]\n"))
	f.Add([]byte(`{"version":2,"width":1,"height":1}` + "\n[0, \"m\", \"{\\\"type\\\":\\\"seal\\\",\\\"lines\\\":1,\\\"sha256\\\":\\\"\\\"}\"]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if rd, err := Open(bytes.NewReader(data)); err == nil {
			for i := 0; ; i++ {
				_, err := rd.Next()
				if err != nil {
					var fe *FormatError
					if err != io.EOF && err != io.ErrUnexpectedEOF && !errors.As(err, &fe) {
						t.Fatalf("Next: unexpected error %T %v", err, err)
					}
					if _, again := rd.Next(); again != err {
						t.Fatalf("Next after %v returned %v", err, again)
					}
					break
				}
				if i > len(data) {
					t.Fatal("more events than bytes")
				}
			}
		}
		// No key: ed25519 under the fuzzer's coverage instrumentation is
		// slow enough to stall it, and signatures are tested elsewhere.
		rep, err := Verify(bytes.NewReader(data), nil)
		var te *TamperError
		var fe *FormatError
		switch {
		case err == nil:
			if !rep.Sealed || rep.Checked != rep.Lines {
				t.Fatalf("accepted without a checked seal: %+v", rep)
			}
			if len(rep.Index) != rep.Commands {
				t.Fatalf("%d command markers, %d in the index", rep.Commands, len(rep.Index))
			}
			// Held to its own seal and index, a sealed recording agrees.
			p := filepath.Join(t.TempDir(), "f.cast")
			os.WriteFile(p, data, 0o600)
			if _, err := VerifySession(p, nil, Known{Seal: &Seal{Lines: rep.Lines, SHA256: rep.SHA256}, Index: rep.Index}); err != nil && uniqueCommands(rep.Index) {
				t.Fatalf("VerifySession with its own seal and index: %v", err)
			}
		case errors.Is(err, ErrNotSealed), errors.As(err, &te), errors.As(err, &fe):
		default:
			t.Fatalf("Verify: unexpected error %T %v", err, err)
		}
	})
}

// FuzzOutputRoundTrip: whatever bytes are written as output, in whatever
// pieces, the recording gives them back exactly, in valid UTF-8 "o"
// events, and verifies.
func FuzzOutputRoundTrip(f *testing.F) {
	for _, p := range goldenOutput {
		f.Add(p, uint8(1))
	}
	f.Add([]byte("日本語\xff\xe2\x82"), uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, piece uint8) {
		dir := t.TempDir()
		w, err := Create(dir, header("f"), Options{Clock: newClock(t0, time.Millisecond).Now})
		if err != nil {
			t.Fatal(err)
		}
		n := int(piece%16) + 1
		for i := 0; i < len(data); i += n {
			if err := w.Output(data[i:min(i+n, len(data))]); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(0); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(w.Path())
		if _, err := Verify(bytes.NewReader(b), nil); err != nil {
			t.Fatalf("Verify: %v", err)
		}
		rd, err := Open(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		var got []byte
		skip := false
		for {
			e, err := rd.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			switch e.Type {
			case CodeOutputBytes:
				got, skip = append(got, e.Bytes()...), true
			case CodeOutput:
				if !skip {
					got = append(got, e.Data...)
				}
				skip = false
			}
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("got %q, want %q", got, data)
		}
	})
}

func BenchmarkWriterOutput(b *testing.B) {
	w, err := Create(b.TempDir(), header("bench"), Options{Signer: testKey})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close(0)
	// Terminal output: text, escapes, some multi-byte UTF-8, line ends.
	line := []byte("0123456789abcdef\x1b[0m é\r\n")
	chunk := bytes.Repeat(line, 4096/len(line)+1)[:4096]
	chunk = chunk[:4096-incompleteTail(chunk)] // whole characters only
	b.SetBytes(int64(len(chunk)))
	for b.Loop() {
		if err := w.Output(chunk); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriterOutputLog is exec output: 32 KiB reads of log text.
func BenchmarkWriterOutputLog(b *testing.B) {
	w, err := Create(b.TempDir(), header("bench"), Options{Signer: testKey})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close(0)
	chunk := logText(32 << 10)
	b.SetBytes(int64(len(chunk)))
	for b.Loop() {
		if err := w.Output(chunk); err != nil {
			b.Fatal(err)
		}
	}
}

// uniqueCommands says no two commands of index share a number, as in every
// recording bastion writes.
func uniqueCommands(index []Entry) bool {
	seen := map[int]bool{}
	for _, e := range index {
		if seen[e.N] {
			return false
		}
		seen[e.N] = true
	}
	return true
}
