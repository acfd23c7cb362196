package masking

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// splits returns every way to cut in into two writes, and one write per
// byte.
func splits(in string) [][]string {
	out := [][]string{{in}}
	for i := 1; i < len(in); i++ {
		out = append(out, []string{in[:i], in[i:]})
	}
	bytewise := make([]string, len(in))
	for i := range len(in) { // bytes, not runes
		bytewise[i] = in[i : i+1]
	}
	return append(out, bytewise)
}

// stream writes chunks through a Writer without idle flushing and returns
// what came out after Close.
func stream(m *Masker, chunks []string) string {
	m2 := *m
	m2.idle = -1
	var out bytes.Buffer
	w := m2.Writer(&out)
	for _, c := range chunks {
		if n, err := w.Write([]byte(c)); n != len(c) || err != nil {
			panic("write failed")
		}
	}
	if err := w.Close(); err != nil {
		panic(err)
	}
	return out.String()
}

func TestSplitEverywhere(t *testing.T) {
	t.Parallel()
	for _, tc := range append(ruleCases, kubeCases...) {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, chunks := range splits(tc.in) {
				if got := stream(Default(), chunks); got != tc.want {
					t.Fatalf("writes %q\n got %q\nwant %q", chunks, got, tc.want)
				}
			}
		})
	}
}

func TestANSI(t *testing.T) {
	t.Parallel()
	const red, reset = "\x1b[01;31m\x1b[K", "\x1b[m\x1b[K"
	cases := []maskCase{
		{"grep colours the match inside a token",
			"config.env:3:GITHUB_TOKEN=" + tGHP[:10] + red + tGHP[10:20] + reset + tGHP[20:] + "\n",
			"config.env:3:GITHUB_TOKEN=" + mk("github-token") + "\n"},
		{"escapes around a token stay",
			red + tGHP + reset + " x",
			red + mk("github-token") + reset + " x"},
		{"grep colours the key",
			red + "password" + reset + "=hunter2xyz\n",
			red + "password" + reset + "=" + mk("password") + "\n"},
		{"colour before the value stays",
			"password=" + red + "hunter2xyz" + reset,
			"password=" + red + mk("password") + reset},
		{"private key in colour",
			"\x1b[32m" + tRSA[:20] + "\x1b[0m" + tRSA[20:] + "\x1b[0m\n",
			"\x1b[32m" + mk("private-key") + "\x1b[0m\n"},
		{"osc hyperlink around a token",
			"\x1b]8;;https://example.com\x1b\\" + tGHP + "\x1b]8;;\x1b\\",
			"\x1b]8;;https://example.com\x1b\\" + mk("github-token") + "\x1b]8;;\x1b\\"},
		{"osc title with credentials",
			"\x1b]0;psql postgres://u:S3cretPw@db\x07$ ",
			"\x1b]0;psql postgres://u:" + mk("url-password") + "@db\x07$ "},
		{"charset and keypad escapes",
			"\x1b(B\x1b=password=\x1b7hunter2xyz\x1b8\n",
			"\x1b(B\x1b=password=\x1b7" + mk("password") + "\x1b8\n"},
		same("clean coloured ls", "\x1b[0m\x1b[01;34mdir\x1b[0m  \x1b[01;32mrun.sh\x1b[0m\n"),
		same("unfinished escape at the end", "text \x1b["),
		same("lone escape", "a\x1bb \x1b"),
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := maskBytes(t, tc.in); got != tc.want {
				t.Fatalf("Bytes\n got %q\nwant %q", got, tc.want)
			}
			for _, chunks := range splits(tc.in) {
				if got := stream(Default(), chunks); got != tc.want {
					t.Fatalf("writes %q\n got %q\nwant %q", chunks, got, tc.want)
				}
			}
		})
	}
}

func TestPEMAcrossWrites(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	var evs []Event
	m := New(Options{Idle: -1, OnMask: func(e Event) { evs = append(evs, e) }})
	w := m.Writer(&out)
	write := func(s string) {
		t.Helper()
		if _, err := w.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	write("before\n-----BEGIN OPENSSH PRIV")
	if got := out.String(); got != "before\n" {
		t.Fatalf("after a partial header: %q", got)
	}
	write("ATE KEY-----\n")
	write("b3BlbnNzaC1rZXktdjEAAAAA\n")
	if got := out.String(); got != "before\n"+mk("private-key") {
		t.Fatalf("marker not written once the key began: %q", got)
	}
	// The body is swallowed however it is cut, Flush included.
	for i := range 200 {
		write(strings.Repeat("QUJD", i%7+1) + "\n")
		if i%50 == 0 {
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	write("-----END OPENSSH PRIVATE")
	write(" KEY-----\nafter\n")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "before\n"+mk("private-key")+"\nafter\n"; got != want {
		t.Fatalf("got %q want %q", got, want)
	}
	if len(evs) != 1 || evs[0].Kind != "private-key" || evs[0].Offset != 7 {
		t.Fatalf("events %+v", evs)
	}
}

func TestPEMFailsClosed(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	var evs []Event
	m := New(Options{Idle: -1, OnMask: func(e Event) { evs = append(evs, e) }})
	w := m.Writer(&out)
	w.Write([]byte("x\n-----BEGIN RSA PRIVATE KEY-----\n" + tPEMBody))
	w.Flush()
	w.Write([]byte("ghp_ and password=hunter2 and everything else\n"))
	w.Flush()
	w.Close()
	if got, want := out.String(), "x\n"+mk("private-key"); got != want {
		t.Fatalf("got %q want %q", got, want)
	}
	if len(evs) != 1 || evs[0].Offset != 2 {
		t.Fatalf("events %+v", evs)
	}
	// A header followed by only a line break is taken for a key when
	// nothing more comes.
	if got := maskBytes(t, "-----BEGIN EC PRIVATE KEY-----\n"); got != mk("private-key") {
		t.Fatalf("header alone: %q", got)
	}
}

func TestPEMHeaderCutByPause(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ first, rest, want string }{
		{"x -----BEGIN RSA PRI", "VATE KEY-----\n" + tPEMBody + "-----END RSA PRIVATE KEY-----\ny", "x " + mk("private-key") + "\ny"},
		{"x -----BEG", "IN RSA PRIVATE KEY-----\n" + tPEMBody + "-----END RSA PRIVATE KEY-----\ny", "x " + mk("private-key") + "\ny"},
		{"x -----BEGIN CERT", "IFICATE-----\nMIIB\n", "x -----BEGIN CERTIFICATE-----\nMIIB\n"},
		{"table -----", "+----\n", "table -----+----\n"},
	} {
		var out bytes.Buffer
		w := New(Options{Idle: -1}).Writer(&out)
		w.Write([]byte(c.first))
		w.Flush() // an idle pause
		if strings.Contains(out.String(), "BEG") {
			t.Errorf("%q: a cut header was released by Flush: %q", c.first, out.String())
		}
		w.Write([]byte(c.rest))
		w.Close()
		if out.String() != c.want {
			t.Errorf("%q: got %q want %q", c.first, out.String(), c.want)
		}
	}
	// Close releases a cut header that never completes.
	var out bytes.Buffer
	w := New(Options{Idle: -1}).Writer(&out)
	w.Write([]byte("-----BEGIN RSA"))
	w.Flush()
	w.Close()
	if out.String() != "-----BEGIN RSA" {
		t.Errorf("Close: %q", out.String())
	}
}

func TestPassThroughExact(t *testing.T) {
	t.Parallel()
	// Binary input without secrets comes out byte for byte, with no
	// trailing newline added.
	in := make([]byte, 1<<16)
	x := uint32(1)
	for i := range in {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		in[i] = byte(x)
	}
	var out bytes.Buffer
	w := New(Options{Idle: -1}).Writer(&out)
	for i := 0; i < len(in); i += 1000 {
		w.Write(in[i:min(i+1000, len(in))])
	}
	w.Close()
	if want := Default().Bytes(in); !bytes.Equal(out.Bytes(), want) {
		t.Fatal("streaming differs from Bytes on binary input")
	}
	if !bytes.Equal(out.Bytes(), in) {
		t.Fatal("binary input changed")
	}
	text := corpus(1<<20, 1)
	out.Reset()
	w = New(Options{Idle: -1}).Writer(&out)
	for i := 0; i < len(text); i += 4093 {
		w.Write(text[i:min(i+4093, len(text))])
	}
	w.Close()
	if !bytes.Equal(out.Bytes(), text) {
		i := 0
		for i < out.Len() && out.Bytes()[i] == text[i] {
			i++
		}
		t.Fatalf("benchmark corpus changed at %d: %q", i, out.Bytes()[max(0, i-80):min(out.Len(), i+80)])
	}
}

func TestHoldBackIsMinimal(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, emitted string }{
		{"hello world\n", "hello world\n"},
		{"hello world", "hello "},
		{"$ ", "$ "},
		{"see " + tGHP[:10], "see "},
		{"password: ", "password"},
		{"x\npassword=hun", "x\n"},
		{"x -----BEGIN RSA", "x "},
		{"url postgres://u:p", "url postgres"},
		{"json {\"token\": \"abc", "json {\"token\""},
	}
	for _, c := range cases {
		var out bytes.Buffer
		w := New(Options{Idle: -1}).Writer(&out)
		w.Write([]byte(c.in))
		if out.String() != c.emitted {
			t.Errorf("Write(%q) emitted %q, want %q", c.in, out.String(), c.emitted)
		}
		w.Close()
		if out.String() != maskBytes(t, c.in) {
			t.Errorf("Close after %q: %q", c.in, out.String())
		}
	}
}

func TestHoldBackBounded(t *testing.T) {
	t.Parallel()
	// A value that never ends is decided once maxHold bytes are pending.
	var out bytes.Buffer
	w := New(Options{Idle: -1}).Writer(&out)
	w.Write([]byte("password: \""))
	chunk := bytes.Repeat([]byte("a"), 1024)
	for range 70 {
		w.Write(chunk)
	}
	if out.Len() == 0 {
		t.Fatal("nothing emitted after 70 KiB")
	}
	w.Close()
}

func TestIdleFlush(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var out bytes.Buffer
		get := func() string { mu.Lock(); defer mu.Unlock(); return out.String() }
		w := New(Options{}).Writer(writerFunc(func(p []byte) (int, error) {
			mu.Lock()
			defer mu.Unlock()
			return out.Write(p)
		}))
		w.Write([]byte("user@host:~$ ec"))
		if got := get(); got != "user@host:~$ " {
			t.Fatalf("before idle: %q", got)
		}
		time.Sleep(10 * time.Millisecond)
		w.Write([]byte("ho"))
		time.Sleep(15 * time.Millisecond)
		synctest.Wait()
		if got := get(); got != "user@host:~$ " {
			t.Fatalf("flushed before 20ms of idle: %q", got)
		}
		time.Sleep(10 * time.Millisecond)
		synctest.Wait()
		if got := get(); got != "user@host:~$ echo" {
			t.Fatalf("after idle: %q", got)
		}
		// A complete token of fixed length held at the end is masked
		// by the idle flush; one that may grow waits for its end.
		w.Write([]byte(" " + tAWS))
		time.Sleep(25 * time.Millisecond)
		synctest.Wait()
		if got := get(); got != "user@host:~$ echo "+mk("aws-access-key") {
			t.Fatalf("token at idle: %q", got)
		}
		w.Write([]byte(" " + tGHP))
		time.Sleep(time.Second)
		synctest.Wait()
		if got := get(); got != "user@host:~$ echo "+mk("aws-access-key")+" " {
			t.Fatalf("growing token at idle: %q", got)
		}
		w.Write([]byte("\n"))
		time.Sleep(25 * time.Millisecond)
		synctest.Wait()
		if got := get(); got != "user@host:~$ echo "+mk("aws-access-key")+" "+mk("github-token")+"\n" {
			t.Fatalf("token ended: %q", got)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte("x")); !errors.Is(err, ErrClosed) {
			t.Fatalf("Write after Close: %v", err)
		}
	})
}

func TestIdleDisabled(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var out bytes.Buffer
		w := New(Options{Idle: -1}).Writer(&out)
		w.Write([]byte("abc"))
		time.Sleep(time.Second)
		synctest.Wait()
		if out.Len() != 0 {
			t.Fatalf("flushed with the timer disabled: %q", out.String())
		}
		w.Flush()
		if out.String() != "abc" {
			t.Fatalf("Flush: %q", out.String())
		}
		w.Close()
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestConcurrentWriteAndFlush(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var out bytes.Buffer
	m := New(Options{Idle: time.Microsecond})
	w := m.Writer(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return out.Write(p)
	}))
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 2000 {
			w.Write([]byte("line " + string(rune('a'+i%26)) + " password=hunter2xyz\n"))
		}
	})
	wg.Go(func() {
		for range 200 {
			w.Flush()
		}
	})
	// Another Masker method on the shared Masker at the same time.
	wg.Go(func() {
		for range 200 {
			if m.String("token="+tGHP) != "token="+mk("github-token") {
				t.Error("concurrent String")
			}
		}
	})
	wg.Wait()
	w.Close()
	mu.Lock()
	defer mu.Unlock()
	if strings.Contains(out.String(), "hunter2xyz") {
		t.Fatal("secret leaked")
	}
	if got := strings.Count(out.String(), mk("password")); got != 2000 {
		t.Fatalf("%d maskings, want 2000", got)
	}
}

func TestWriterError(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	w := New(Options{Idle: -1}).Writer(writerFunc(func(p []byte) (int, error) { return 0, boom }))
	if _, err := w.Write([]byte("hello\n")); !errors.Is(err, boom) {
		t.Fatalf("Write: %v", err)
	}
	if _, err := w.Write([]byte("again\n")); !errors.Is(err, boom) {
		t.Fatalf("second Write: %v", err)
	}
	if err := w.Close(); !errors.Is(err, boom) {
		t.Fatalf("Close: %v", err)
	}
}

var _ io.Writer = (*Writer)(nil)
