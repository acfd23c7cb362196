package main

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/bastion-dev/bastion/shellpolicy"
)

// A caller that writes a line and waits for its answer gets it: output is
// flushed whenever no more input is buffered.
func TestCheckJSONLAnswersEachLineAsItComes(t *testing.T) {
	t.Parallel()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- checkJSONL(shellpolicy.Default(), shellpolicy.Input{}, inR, bufio.NewWriter(outW), maxJSONLine)
		outW.Close()
	}()
	answers := bufio.NewReader(outR)
	for _, tc := range []struct{ in, want string }{
		{`{"cmd":"ls"}`, `"rule":"default-allow"`},
		{`{"cmd":"rm -rf /"}`, `"rule":"rm-root"`},
		{`{"sql":"DROP TABLE t"}`, `"rule":"sql-drop"`},
	} {
		if _, err := io.WriteString(inW, tc.in+"\n"); err != nil {
			t.Fatal(err)
		}
		line, err := answers.ReadString('\n')
		if err != nil || !strings.Contains(line, tc.want) {
			t.Fatalf("answer to %s: %q, %v; want %s", tc.in, line, err, tc.want)
		}
	}
	inW.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if rest, _ := io.ReadAll(answers); len(rest) != 0 {
		t.Errorf("output after the last answer: %q", rest)
	}
}

func TestCheckJSONLTooLongLine(t *testing.T) {
	t.Parallel()
	in := `{"n":1,"cmd":"ls"}` + "\n" + `{"n":2,"cmd":"echo ` + strings.Repeat("x", 300) + `"}` + "\n" + `{"n":3,"cmd":"rm -rf /"}`
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	// a reader smaller than the line, so the line arrives in pieces
	if err := checkJSONL(shellpolicy.Default(), shellpolicy.Input{}, iotestHalf{strings.NewReader(in)}, w, 100); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	want := []string{`"n":1,`, `{"error":"line longer than 100 bytes"}`, `"rule":"rm-root"`}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), out.String())
	}
	for i := range want {
		if !strings.Contains(lines[i], want[i]) {
			t.Errorf("line %d = %s, want it to contain %s", i+1, lines[i], want[i])
		}
	}
}

// iotestHalf returns at most 7 bytes per Read.
type iotestHalf struct{ r io.Reader }

func (h iotestHalf) Read(p []byte) (int, error) {
	if len(p) > 7 {
		p = p[:7]
	}
	return h.r.Read(p)
}

func TestQuoteArgv(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		argv []string
		want string
	}{
		{[]string{"ls", "-la"}, "[ls -la]"},
		{[]string{"rm", "-rf", "/tmp/a b"}, "[rm -rf '/tmp/a b']"},
		{[]string{"echo", "it's"}, `[echo 'it'\''s']`},
		{[]string{"echo", "", "$HOME *.go"}, "[echo '' '$HOME *.go']"},
	} {
		if got := quoteArgv(tc.argv); got != tc.want {
			t.Errorf("quoteArgv(%q) = %s, want %s", tc.argv, got, tc.want)
		}
	}
}
