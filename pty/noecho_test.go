//go:build linux

package pty

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestNoEchoFilter(t *testing.T) {
	t.Parallel()
	type chunk struct {
		p    string
		echo bool
	}
	const m = NoEchoMarker
	for _, tc := range []struct {
		name   string
		chunks []chunk
		want   string
	}{
		{"echoed input is kept", []chunk{{"ls -l\r", true}}, "ls -l\r"},
		{"a hidden burst is one marker", []chunk{{"s3", false}, {"cr", false}, {"et\r", false}}, m},
		{"enter ends a burst", []chunk{{"new-pw\r", false}, {"new-pw\r", false}}, m + m},
		{"echo ends a burst", []chunk{{"pw", false}, {"x", true}, {"pw", false}}, m + "x" + m},
		{"around a prompt", []chunk{{"sudo -k true\r", true}, {"hunter2\r", false}, {"id\r", true}}, "sudo -k true\r" + m + "id\r"},
		{"several lines in one chunk", []chunk{{"one\rtwo\r", false}, {"three", false}}, m + m},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var n noEcho
			var got strings.Builder
			for _, c := range tc.chunks {
				got.Write(n.filter([]byte(c.p), c.echo))
			}
			if got.String() != tc.want {
				t.Fatalf("recorded %q, want %q", got.String(), tc.want)
			}
		})
	}
}

// TestProcMasksInputItDoesNotEcho runs bash scripts on a real PTY, types at
// their prompts once the terminal is in the prompt's mode, and checks what
// the recording of the input keeps: a marker for what a password prompt
// hid, the keystrokes themselves where the terminal or the program shows
// them.
func TestProcMasksInputItDoesNotEcho(t *testing.T) {
	t.Parallel()
	type step struct {
		prompt string // output to wait for
		hidden bool   // wait until the terminal hides input before typing
		send   string
	}
	for _, tc := range []struct {
		name   string
		script string
		steps  []step
		want   string // the recorded input
		output string // in the output at the end
	}{
		{"read -s then read",
			`read -s -p "Password: " pw; echo; echo "len=${#pw}"; read -p "Name: " n; echo "name=$n"`,
			[]step{{"Password: ", true, "s3cret-Pa55\r"}, {"Name: ", false, "alice\r"}},
			NoEchoMarker + "alice\r", "len=11"},
		{"two hidden prompts",
			`read -s -p "New: " a; echo; read -s -p "Again: " b; echo; [ "$a" = "$b" ] && echo same`,
			[]step{{"New: ", true, "n3w-Secret\r"}, {"Again: ", true, "n3w-Secret\r"}},
			NoEchoMarker + NoEchoMarker, "same"},
		{"stty -echo",
			`stty -echo; echo ready; read pw; stty echo; echo "len=${#pw}"`,
			[]step{{"ready", true, "t0ken-value\r"}},
			NoEchoMarker, "len=11"},
		{"raw mode draws its own echo",
			`stty -icanon -echo min 1; echo ready; x=$(head -c 5); stty icanon echo; echo "got=$x"`,
			[]step{{"ready", false, "hello"}},
			"hello", "got=hello"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cmd := shellCommand(t, agentDir(t))
			cmd.Args = append(cmd.Args, "-c", tc.script)
			p, err := Start(cmd, Size{Cols: 80, Rows: 24})
			if err != nil {
				t.Fatal(err)
			}
			inR, inW := io.Pipe()
			defer inW.Close()
			out, rec := newSyncBuffer(), newSyncBuffer()
			done := make(chan error, 1)
			go func() { done <- p.Wait(io.TeeReader(inR, p.MaskNoEcho(rec)), out) }()
			pos := 0
			for _, st := range tc.steps {
				pos = waitOutput(t, out, pos, st.prompt)
				if st.hidden {
					deadline := time.Now().Add(waitTimeout)
					for p.Echo() {
						if time.Now().After(deadline) {
							t.Fatalf("the terminal still echoes at %q", st.prompt)
						}
						time.Sleep(5 * time.Millisecond)
					}
				}
				if _, err := inW.Write([]byte(st.send)); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Wait: %v; output %q", err, out.String())
				}
			case <-time.After(waitTimeout):
				t.Fatalf("the script did not end; output %q", out.String())
			}
			if got := rec.String(); got != tc.want {
				t.Errorf("recorded input %q, want %q", got, tc.want)
			}
			if !strings.Contains(out.String(), tc.output) {
				t.Errorf("output %q lacks %q", out.String(), tc.output)
			}
			for _, st := range tc.steps {
				if st.hidden && strings.Contains(out.String(), strings.TrimSpace(st.send)) {
					t.Errorf("the terminal echoed hidden input: %q", out.String())
				}
			}
		})
	}
}

// TestFrontRecordsHiddenInputAsMarker types a password at a program's
// prompt in a shell session and checks what OnInput, the recording, got.
func TestFrontRecordsHiddenInputAsMarker(t *testing.T) {
	t.Parallel()
	h := startHarness(t, harnessConfig{})
	// The quotes keep the prompt and the result out of the echo of the
	// command line, so expect matches the program's output.
	h.send(`bash -c 'read -s -p "Pass""word: " pw; echo; echo "len=""${#pw}"'` + "\r")
	h.expect("Password: ")
	deadline := time.Now().Add(waitTimeout)
	for {
		h.f.mu.Lock()
		s := h.f.sess
		h.f.mu.Unlock()
		if hidden, err := hiddenInput(s.sh.master); err == nil && hidden {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the terminal still echoes; output %q", h.out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.send("s3cret-Pa55\r")
	h.expect("len=11")
	if r := h.exit(); r.code != 0 {
		t.Fatalf("exit %+v", r)
	}
	h.run("echo visible")
	h.mu.Lock()
	got := string(h.inputs)
	h.mu.Unlock()
	if strings.Contains(got, "s3cret") || strings.Count(got, NoEchoMarker) != 1 {
		t.Fatalf("recorded input %q: want one %s and no password", got, NoEchoMarker)
	}
	// What the line editor showed is recorded as typed.
	for _, typed := range []string{"read -s -p", "echo visible\r"} {
		if !strings.Contains(got, typed) {
			t.Errorf("recorded input %q lacks %q", got, typed)
		}
	}
	if strings.Contains(h.out.String(), "s3cret") {
		t.Errorf("the password was echoed: %q", h.out.String())
	}
}

// waitOutput waits until b contains s after offset pos and returns the
// offset past it.
func waitOutput(t *testing.T, b *syncBuffer, pos int, s string) int {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		all := b.String()
		if i := strings.Index(all[pos:], s); i >= 0 {
			return pos + i + len(s)
		}
		if time.Now().After(deadline) {
			t.Fatalf("output lacks %q after %d: %q", s, pos, all)
		}
		b.wait(50 * time.Millisecond)
	}
}
