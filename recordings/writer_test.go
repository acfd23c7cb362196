package recordings

import (
	"bytes"
	"crypto"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// goldenOutput is everything the golden session writes as output, in the
// chunks it writes it: escapes, characters JSON must escape, a UTF-8
// sequence split across writes, invalid bytes, and an incomplete sequence
// left at Close.
var goldenOutput = [][]byte{
	[]byte("$ "),
	[]byte("a.txt  b.txt\r\n"),
	[]byte("\x1b[1;31mred\x1b[0m <&> \"quoted\" \\ tab\t\r\n"),
	[]byte("caf\xc3"),
	[]byte("\xa9 \u2028 \x7f \u0085 日本\r\n"),
	[]byte("bin\xff\xfeary\r\n"),
	[]byte("bastion: denied\r\n"),
	[]byte("\xe2\x82"),
}

// writeGolden writes the golden session into dir with a fake clock.
func writeGolden(t testing.TB, dir string, opt Options) *Writer {
	t.Helper()
	if opt.Clock == nil {
		opt.Clock = newClock(t0, 250*time.Millisecond).Now
	}
	w, err := Create(dir, header("s-golden"), opt)
	must(t, err)
	out := goldenOutput
	must(t, w.Output(out[0]))
	must(t, w.Input([]byte("ls\r")))
	ref, err := w.Command("ls", "allow", "default-allow")
	must(t, err)
	for _, p := range out[1:5] {
		must(t, w.Output(p))
	}
	must(t, w.CommandEnd(ref, 0))
	must(t, w.Resize(120, 40))
	must(t, w.Output(out[5]))
	must(t, w.Input([]byte("rm -rf /\r")))
	if _, err := w.Command("rm -rf /", "deny", "no-rm"); err != nil {
		t.Fatal(err)
	}
	must(t, w.Marker(`{"type":"approval","step":"requested","approver":"alice"}`))
	must(t, w.Output(out[6]))
	must(t, w.Output(out[7]))
	must(t, w.Sync())
	return w
}

func TestGolden(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w := writeGolden(t, dir, Options{Signer: testKey})
	must(t, w.Close(1))
	for _, name := range []string{"s-golden.cast", "s-golden.index.json"} {
		got := readFile(t, filepath.Join(dir, name))
		golden := filepath.Join("testdata", name)
		if *update {
			must(t, os.WriteFile(golden, got, 0o644))
		}
		want := readFile(t, golden)
		if d := cmp.Diff(string(want), string(got)); d != "" {
			t.Errorf("%s differs from %s (-want +got; go test -update rewrites it):\n%s", name, golden, d)
		}
	}
	fi, err := os.Stat(w.Path())
	must(t, err)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("recording mode %v, want 0600", fi.Mode().Perm())
	}
	if ix, _ := os.Stat(indexPath(dir, "s-golden")); ix.Mode().Perm() != 0o600 {
		t.Errorf("index mode %v, want 0600", ix.Mode().Perm())
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	f, err := os.Open(filepath.Join("testdata", "s-golden.cast"))
	must(t, err)
	defer f.Close()
	rd, err := Open(f)
	must(t, err)
	want := header("s-golden")
	want.Timestamp = t0.Unix() // filled in from the clock
	if d := cmp.Diff(want, rd.Header()); d != "" {
		t.Errorf("header (-want +got):\n%s", d)
	}
	var output, input []byte
	var codes []string
	skip := false
	prev := -1.0
	for {
		e, err := rd.Next()
		if err == io.EOF {
			break
		}
		must(t, err)
		if e.Time < prev {
			t.Errorf("line %d: time goes backwards", rd.Line())
		}
		prev = e.Time
		codes = append(codes, e.Type)
		switch e.Type {
		case CodeOutputBytes:
			output, skip = append(output, e.Bytes()...), true
		case CodeInput:
			input = append(input, e.Data...)
		case CodeOutput:
			if !utf8.ValidString(e.Data) {
				t.Errorf("line %d: output is not UTF-8", rd.Line())
			}
			if !skip {
				output = append(output, e.Data...)
			}
			skip = false
		}
	}
	if want := bytes.Join(goldenOutput, nil); !bytes.Equal(output, want) {
		t.Errorf("output bytes differ:\n got %q\nwant %q", output, want)
	}
	if string(input) != "ls\rrm -rf /\r" {
		t.Errorf("input = %q", input)
	}
	wantCodes := "o i m o o o o m r ob o i m m o ob o m m"
	if got := strings.Join(codes, " "); got != wantCodes {
		t.Errorf("event codes:\n got %s\nwant %s", got, wantCodes)
	}
}

func TestWriterIndex(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w := writeGolden(t, dir, Options{})
	ix := w.Index()
	if len(ix) != 2 || ix[0].Exit == nil || *ix[0].Exit != 0 || ix[1].Exit != nil || ix[1].Decision != "deny" {
		t.Fatalf("Index() = %+v", ix)
	}
	for _, n := range []int{1, 2} {
		if e, ok := w.Entry(CommandRef{N: n}); !ok || e.N != n || e.Cmd != ix[n-1].Cmd || e.Line != ix[n-1].Line {
			t.Errorf("Entry(%d) = %+v, %v; want %+v", n, e, ok, ix[n-1])
		}
	}
	for _, n := range []int{0, 3, -1} {
		if _, ok := w.Entry(CommandRef{N: n}); ok {
			t.Errorf("Entry(%d) found a command", n)
		}
	}
	// The index file was written at the first command's end, before Close.
	mid, err := readIndex(indexPath(dir, "s-golden"))
	must(t, err)
	if mid.Ended != nil || len(mid.Commands) != 1 || mid.Commands[0].Duration != 1.25 {
		t.Fatalf("index before close = %+v", mid)
	}
	must(t, w.Close(0))
	end, err := readIndex(indexPath(dir, "s-golden"))
	must(t, err)
	if end.Ended == nil || *end.Exit != 0 || len(end.Commands) != 2 || !end.Started.Equal(t0) {
		t.Fatalf("index after close = %+v", end)
	}
	// Line numbers point at the markers.
	ls := splitLines(readFile(t, w.Path()))
	for _, e := range end.Commands {
		if !strings.Contains(ls[e.Line-1], `\"type\":\"command\"`) {
			t.Errorf("command %d: line %d is %s", e.N, e.Line, ls[e.Line-1])
		}
	}
	if err := w.CommandEnd(CommandRef{N: 1}, 0); !errors.Is(err, ErrClosed) {
		t.Errorf("CommandEnd after Close = %v", err)
	}
}

func TestSplitUTF8IsNeverMangled(t *testing.T) {
	t.Parallel()
	text := []byte("aé€😀\u0085b\xffc")
	for cut := 0; cut <= len(text); cut++ {
		for _, chunks := range [][][]byte{{text[:cut], text[cut:]}, bytesOneByOne(text[:cut], text[cut:])} {
			dir := t.TempDir()
			w, err := Create(dir, header("s"), Options{Clock: newClock(t0, time.Millisecond).Now})
			must(t, err)
			for _, c := range chunks {
				must(t, w.Output(c))
			}
			must(t, w.Close(0))
			f, _ := os.Open(w.Path())
			var got []byte
			rd, _ := Open(f)
			skip := false
			for {
				e, err := rd.Next()
				if err != nil {
					break
				}
				switch e.Type {
				case CodeOutputBytes:
					got, skip = append(got, e.Bytes()...), true
				case CodeOutput:
					if !skip {
						got = append(got, e.Data...)
					}
					if !skip && strings.ContainsRune(e.Data, utf8.RuneError) {
						t.Errorf("cut %d: valid text written with U+FFFD: %q", cut, e.Data)
					}
					skip = false
				}
			}
			f.Close()
			if !bytes.Equal(got, text) {
				t.Errorf("cut %d (%d chunks): got %q, want %q", cut, len(chunks), got, text)
			}
		}
	}
}

func bytesOneByOne(parts ...[]byte) [][]byte {
	var out [][]byte
	for _, p := range parts {
		for i := range p {
			out = append(out, p[i:i+1])
		}
	}
	return out
}

func TestCreateRefuses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w, err := Create(dir, header("dup"), Options{})
	must(t, err)
	must(t, w.Output([]byte("first")))
	if _, err := Create(dir, header("dup"), Options{}); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second Create of one id = %v, want ErrExist", err)
	}
	must(t, w.Close(0))
	if _, err := VerifyFile(w.Path(), nil); err != nil {
		t.Errorf("the first recording was harmed: %v", err)
	}
	for _, id := range []string{"", "../x", "a/b", ".hidden", "a b"} {
		if _, err := Create(dir, header(id), Options{}); err == nil {
			t.Errorf("Create accepted session id %q", id)
		}
	}
	if _, err := Create(dir, header("rsa"), Options{Signer: fakeSigner{}}); err == nil {
		t.Error("Create accepted a non-ed25519 signer")
	}
}

func TestHeaderDefaults(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w, err := Create(dir, Header{Bastion: Meta{SessionID: "d"}}, Options{Clock: newClock(t0, time.Second).Now})
	must(t, err)
	must(t, w.Close(0))
	line := splitLines(readFile(t, w.Path()))[0]
	want := `{"version":2,"width":80,"height":24,"timestamp":1772366400,"bastion":{"session_id":"d","identity":{"kind":"","subject":""}}}`
	if line != want {
		t.Errorf("header:\n got %s\nwant %s", line, want)
	}
}

func TestErrorsAreSticky(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w, err := Create(dir, header("sticky"), Options{})
	must(t, err)
	must(t, w.Output([]byte("x")))
	w.f.Close() // the next write fails
	first := w.Output([]byte("y"))
	if first == nil {
		t.Fatal("Output to a closed file succeeded")
	}
	calls := map[string]error{
		"Output":     w.Output([]byte("z")),
		"Input":      w.Input([]byte("z")),
		"Resize":     w.Resize(1, 1),
		"Marker":     w.Marker("m"),
		"MarkerOut":  w.MarkerOutput("m", []byte("z")),
		"Sync":       w.Sync(),
		"CommandEnd": w.CommandEnd(CommandRef{N: 1}, 0),
		"Close":      w.Close(0),
	}
	_, calls["Command"] = w.Command("ls", "allow", "r")
	_, calls["OutputWriter"] = w.OutputWriter().Write([]byte("z"))
	for name, err := range calls {
		if name == "Close" {
			if err != first {
				t.Errorf("Close = %v, want the first error %v", err, first)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s after a write error succeeded", name)
		}
	}
	if _, err := VerifyFile(w.Path(), nil); !isNotSealed(err) {
		t.Errorf("Verify of a recording that failed = %v, want not sealed", err)
	}
}

func TestNilWriter(t *testing.T) {
	t.Parallel()
	var w *Writer
	ref, err := w.Command("ls", "allow", "r")
	for _, err := range []error{w.Output([]byte("x")), w.Input(nil), w.Resize(1, 2), w.Marker("m"), w.MarkerOutput("m", []byte("x")), err,
		w.CommandEnd(ref, 0), w.Sync(), w.Close(0)} {
		if err != nil {
			t.Errorf("nil Writer returned %v", err)
		}
	}
	if n, err := w.OutputWriter().Write([]byte("abc")); n != 3 || err != nil {
		t.Errorf("nil OutputWriter().Write = %d, %v", n, err)
	}
	if n, err := w.InputWriter().Write([]byte("abc")); n != 3 || err != nil {
		t.Errorf("nil InputWriter().Write = %d, %v", n, err)
	}
	if _, ok := w.Entry(CommandRef{N: 1}); ok || w.Index() != nil || w.Path() != "" {
		t.Error("nil Writer has an index or a path")
	}
}

func TestMarkerRefusesReservedTypes(t *testing.T) {
	t.Parallel()
	w, err := Create(t.TempDir(), header("m"), Options{})
	must(t, err)
	defer w.Close(0)
	for _, label := range []string{`{"type":"seal","lines":1,"sha256":"00"}`, `{"type":"command","cmd":"ls"}`, ` {"type":"end"}`,
		`{"TYPE" : "exit"}`, `{"type":"e\u006ed"}`, `{"\u0074ype":"seal"}`, `{"type":"query","type":"end"}`} {
		if err := w.Marker(label); err == nil {
			t.Errorf("Marker(%s) accepted", label)
		}
	}
	for _, label := range []string{"plain", `{"type":"approval"}`, `{"type":"seal"`, `{"type":"END","sql":"end"}`, `{"type":"query","sql":"SELECT 'end' -- seal"}`} {
		if err := w.Marker(label); err != nil {
			t.Errorf("Marker(%s) = %v", label, err)
		}
	}
	// A refused label is not a recording failure.
	must(t, w.Output([]byte("still recording")))
}

// TestMarkerOutput: MarkerOutput writes exactly what Marker then Output
// write (invalid UTF-8 as a raw event too, an incomplete tail held for the
// next Output), and the result verifies.
func TestMarkerOutput(t *testing.T) {
	t.Parallel()
	type step struct {
		label string
		out   []byte
	}
	steps := []step{
		{`{"type":"query","sql":"SELECT 1"}`, []byte("db=> SELECT 1\r\n")},
		{"plain", []byte("bytes \xff\xfe not UTF-8\r\n")},
		{"split", []byte("tail \xc3")}, // \xc3 starts é; the next step ends it
		{"next", []byte("\xa9 done\r\n")},
		{"empty", nil},
	}
	write := func(batched bool) []byte {
		dir := t.TempDir()
		w, err := Create(dir, header("mo"), Options{Clock: newClock(t0, time.Millisecond).Now, Signer: testKey})
		must(t, err)
		for _, st := range steps {
			if batched {
				must(t, w.MarkerOutput(st.label, st.out))
			} else {
				must(t, w.Marker(st.label))
				must(t, w.Output(st.out))
			}
		}
		must(t, w.Close(0))
		if _, err := VerifyFile(w.Path(), testPub); err != nil {
			t.Fatalf("batched=%v: %v", batched, err)
		}
		b, err := os.ReadFile(w.Path())
		must(t, err)
		return b
	}
	if one, two := write(true), write(false); !bytes.Equal(one, two) {
		t.Fatalf("MarkerOutput wrote\n%s\nMarker+Output wrote\n%s", one, two)
	}
	w, err := Create(t.TempDir(), header("mo2"), Options{})
	must(t, err)
	defer w.Close(0)
	if err := w.MarkerOutput(`{"type":"end"}`, []byte("x")); err == nil {
		t.Error("MarkerOutput took a reserved marker type")
	}
	must(t, w.Output([]byte("still recording")))
}

func TestConcurrentWrites(t *testing.T) {
	t.Parallel()
	w, err := Create(t.TempDir(), header("conc"), Options{Signer: testKey})
	must(t, err)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 50 {
				switch g {
				case 0:
					w.OutputWriter().Write([]byte("out é\r\n"))
				case 1:
					w.InputWriter().Write([]byte("in\r"))
				case 2:
					ref, _ := w.Command("c", "allow", "r")
					w.CommandEnd(ref, i)
				case 3:
					w.Resize(80+i, 24)
				}
			}
		})
	}
	wg.Wait()
	must(t, w.Close(0))
	rep, err := VerifyFile(w.Path(), testPub)
	if err != nil || rep.Commands != 50 || !rep.SignatureChecked {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sub", "recording_key")
	k1, err := LoadOrCreateKey(path)
	must(t, err)
	k2, err := LoadOrCreateKey(path)
	must(t, err)
	if !k1.Equal(k2) {
		t.Fatal("the second call made a new key")
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v", fi.Mode().Perm())
	}
	must(t, os.Chmod(path, 0o644))
	if _, err := LoadKey(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("LoadKey of a world-readable key = %v", err)
	}
	os.Chmod(path, 0o600)
	os.WriteFile(path, []byte("not pem"), 0o600)
	if _, err := LoadKey(path); err == nil {
		t.Error("LoadKey accepted garbage")
	}
}

// fakeSigner is a crypto.Signer with a non-ed25519 public key.
type fakeSigner struct{}

func (fakeSigner) Public() crypto.PublicKey { return "not a key" }
func (fakeSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("no")
}

// queryLabel records q with Writer.Query and returns its marker's label
// and the text of the output events after it.
func queryLabel(t testing.TB, q Query, out []byte) (label string, output []byte) {
	w, err := Create(t.TempDir(), header("q"), Options{Clock: newClock(t0, time.Millisecond).Now})
	must(t, err)
	must(t, w.Query(q, out))
	must(t, w.Close(0))
	f, err := os.Open(w.Path())
	must(t, err)
	defer f.Close()
	r, err := Open(f)
	must(t, err)
	for {
		ev, err := r.Next()
		if err != nil {
			t.Fatalf("no query marker: %v", err)
		}
		if ev.Type == CodeMarker && label == "" {
			label = ev.Data
			continue
		}
		if label != "" && ev.Type == CodeOutput {
			output = append(output, ev.Bytes()...)
		}
		if ev.Type == CodeMarker && strings.Contains(ev.Data, `"type":"end"`) {
			return label, output
		}
	}
}

// perByteUTF8 replaces each byte of s that is not UTF-8 with U+FFFD, as
// encoding/json reads it.
func perByteUTF8(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(r)
	}
	return b.String()
}

// checkQueryLabel: the label is a JSON object with exactly the fields of
// q (invalid UTF-8 read back as U+FFFD, as encoding/json reads it), and
// "type":"query" first.
func checkQueryLabel(t testing.TB, q Query, label string) {
	t.Helper()
	var got struct {
		Type, SQL, Decision, Rule, Error string
		Rows, MS                         int64
	}
	dec := json.NewDecoder(strings.NewReader(label))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("label %q: %v", label, err)
	}
	fix := perByteUTF8
	want := Query{SQL: fix(q.SQL), Decision: fix(q.Decision), Rule: fix(q.Rule), Error: fix(q.Error), Rows: q.Rows, MS: q.MS}
	if got.Type != "query" || (Query{SQL: got.SQL, Decision: got.Decision, Rule: got.Rule, Error: got.Error, Rows: got.Rows, MS: got.MS}) != want {
		t.Fatalf("label %q decodes to %+v, want %+v", label, got, want)
	}
	if !strings.HasPrefix(label, `{"type":"query",`) {
		t.Fatalf("label %q does not start with its type", label)
	}
}

// TestQuery: the statement marker decodes to the fields given, whatever
// the text holds, and the log line follows it as output.
func TestQuery(t *testing.T) {
	t.Parallel()
	for _, q := range []Query{
		{SQL: "SELECT 1", Decision: "allow", Rule: "sql-read", Rows: 1, MS: 0},
		{SQL: "select '\"quoted\" \\ back'\nfrom t\twhere x < 1 && y > 2", Decision: "deny", Rule: "sql-drop", Rows: -1, MS: 1 << 40, Error: "42501 refused"},
		{SQL: "bytes \xff\xfe \xc3 and \u2028 \u0085 \x7f \x00 \x1b[31m", Decision: "approve", Rule: "r\"ule", Error: "\xff"},
		{},
	} {
		line := []byte("db=> " + q.SQL + "\r\n")
		label, out := queryLabel(t, q, line)
		checkQueryLabel(t, q, label)
		if want := perByteUTF8(string(line)); string(out) != want {
			t.Fatalf("output after the marker: %q, want %q", out, want)
		}
	}
}

// FuzzQueryLabel: any statement, rule and error make a marker label that
// decodes to them.
func FuzzQueryLabel(f *testing.F) {
	f.Add("SELECT 1", "sql-read", "", int64(1), int64(0))
	f.Add("x\xff\"\\\n\u2028", "r", "e\x00", int64(-5), int64(99))
	f.Fuzz(func(t *testing.T, sql, rule, errMsg string, rows, ms int64) {
		q := Query{SQL: sql, Decision: "allow", Rule: rule, Error: errMsg, Rows: rows, MS: ms}
		label, _ := queryLabel(t, q, nil)
		checkQueryLabel(t, q, label)
	})
}
