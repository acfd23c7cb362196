package attack

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/internal/client"
	"github.com/bastion-dev/bastion/internal/sshtest"
	"github.com/bastion-dev/bastion/pty"
)

// testAWSKey is a random access key ID in AWS's format, split so that
// secret scanners do not flag this file.
const testAWSKey = "AK" + "IAUJZDEGXDNCF32EPF"

// TestHiddenInputIsNotRecorded (#22 item 6e): a password typed at a prompt
// that does not echo (bash's read -s, as sudo, ssh and psql prompt) reaches
// the program but not the recording: the session's .cast holds
// [MASKED:no-echo] where the keystrokes were. Both ways a terminal session
// runs a program: an exec on its own PTY (ssh -tt bastion 'cmd') and a line
// of the interactive shell (ssh -tt bastion).
func TestHiddenInputIsNotRecorded(t *testing.T) {
	const secret = "s3cret-Pa55w0rd"
	for _, tc := range []struct {
		name    string
		command string // the exec command; empty: the shell, where line is typed
		line    string
	}{
		{name: "exec on a pty", command: `read -s -p "Password: " pw; echo; echo "len=${#pw}"`},
		// The quotes keep the prompt and the result out of the shell's echo
		// of the typed line, so the test waits for the program's output.
		{name: "shell line", line: `bash -c 'read -s -p "Pass""word: " pw; echo; echo "len=""${#pw}"'`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := start(t, sshtest.Options{})
			login := b.Login("agent-typist")
			args := []string{"-tt", "bastion"}
			if tc.command != "" {
				args = append(args, tc.command)
			}
			s := sshInteractive(t, login, args...)
			if tc.line != "" {
				s.expect(t, "$ ")
				s.send(t, tc.line+"\n")
			}
			s.expect(t, "Password: ")
			s.send(t, secret+"\n")
			s.expect(t, "len="+strconv.Itoa(len(secret)))
			s.close(t)
			if strings.Contains(s.out.String(), secret) {
				t.Errorf("the terminal echoed the password: %q", s.out.String())
			}
			cmd := waitAudit(t, b, func(e event) bool {
				return e.str("type") == "command" && strings.Contains(e.detail("command"), "read -s")
			})
			if cmd.str("decision") != "allow" {
				t.Fatalf("command event %v: want an allowed command", cmd)
			}
			evs := castEvents(t, b, cmd.str("session"))
			var in strings.Builder
			for _, e := range evs {
				if strings.Contains(e.data, secret) {
					t.Errorf("recording event %q holds the password: %q", e.kind, e.data)
				}
				if e.kind == "i" {
					in.WriteString(e.data)
				}
			}
			if !strings.Contains(in.String(), pty.NoEchoMarker) {
				t.Errorf("recorded input %q: want %s where the password was typed", in.String(), pty.NoEchoMarker)
			}
		})
	}
}

// TestEditorWrapDoesNotSplitSecret (#22 item 6d): a line typed into
// bastion's shell that is longer than the terminal wraps; a key typed
// across the wrap is masked whole in the echo the agent sees, in the
// recording and in the command's audit event, not passed on as two halves
// that no rule recognises.
func TestEditorWrapDoesNotSplitSecret(t *testing.T) {
	b := start(t, sshtest.Options{})
	login := b.Login("agent-wrap")
	s := sshInteractive(t, login, "-tt", "bastion")
	s.expect(t, "$ ")
	s.send(t, "stty size\n")
	s.expect(t, "$ ")
	var rows, cols int
	f := strings.Fields(s.out.String()[strings.LastIndex(s.out.String(), "stty size"):])
	for i := 0; i+1 < len(f); i++ {
		if r, err := strconv.Atoi(f[i]); err == nil {
			if c, err := strconv.Atoi(strings.TrimSuffix(f[i+1], "$")); err == nil {
				rows, cols = r, c
				break
			}
		}
	}
	if rows == 0 || cols < 20 {
		t.Fatalf("no terminal size in %q", s.out.String())
	}
	// "$ echo <pad> " puts the key's first byte 8 columns before the end
	// of the row: its echo wraps after "AKIAUJZD".
	pad := strings.Repeat("x", cols-8-len("$ echo  "))
	s.send(t, "echo "+pad+" "+testAWSKey+"\n")
	s.expect(t, "[MASKED:aws-access-key]")
	s.expect(t, "$ ")
	s.close(t)
	noPartOf := func(where, text string) {
		t.Helper()
		for i := 0; i+8 <= len(testAWSKey); i++ {
			if strings.Contains(text, testAWSKey[i:i+8]) {
				t.Errorf("%s holds %q of the key: %q", where, testAWSKey[i:i+8], text)
				return
			}
		}
	}
	noPartOf("the agent's terminal", s.out.String())
	cmd := waitAudit(t, b, func(e event) bool {
		return e.str("type") == "command" && strings.Contains(e.detail("command"), pad)
	})
	if !strings.Contains(cmd.detail("command"), "[MASKED:aws-access-key]") {
		t.Errorf("command event %v: want the key masked", cmd)
	}
	noPartOf("the command event", cmd.detail("command"))
	var out strings.Builder
	for _, e := range castEvents(t, b, cmd.str("session")) {
		noPartOf("recording event "+e.kind, e.data)
		if e.kind == "o" {
			out.WriteString(e.data)
		}
	}
	noPartOf("the recording's output", out.String())
	if got := strings.Count(out.String(), "[MASKED:aws-access-key]"); got != 2 {
		t.Errorf("recorded output masks the key %d times, want 2 (the echo and the command's output): %q", got, out.String())
	}
}

// interactive is the real ssh client with a pipe for its standard input, so
// that a test answers a prompt once it appears, as an agent would.
type interactive struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   syncBuffer
	errb  syncBuffer
	done  chan struct{}
	pos   int // output already matched by expect
}

func sshInteractive(t *testing.T, login *client.Result, args ...string) *interactive {
	t.Helper()
	s := &interactive{done: make(chan struct{})}
	s.cmd = exec.Command("ssh", append([]string{"-F", login.SSHConfig, "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"}, args...)...)
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.errb
	var err error
	if s.stdin, err = s.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() { s.cmd.Process.Kill(); <-s.done })
	return s
}

// expect waits until the output after the last match contains str.
func (s *interactive) expect(t *testing.T, str string) {
	t.Helper()
	if !within(20*time.Second, func() bool {
		all := s.out.String()
		if i := strings.Index(all[s.pos:], str); i >= 0 {
			s.pos += i + len(str)
			return true
		}
		return false
	}) {
		t.Fatalf("ssh output lacks %q after %d: %q; stderr %q", str, s.pos, s.out.String(), s.errb.String())
	}
}

func (s *interactive) send(t *testing.T, str string) {
	t.Helper()
	if _, err := io.WriteString(s.stdin, str); err != nil {
		t.Fatalf("write to ssh: %v", err)
	}
}

// close ends the input (the session ends once its command has) and waits
// for ssh to exit.
func (s *interactive) close(t *testing.T) {
	t.Helper()
	s.stdin.Close()
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("ssh did not exit after its input ended; output %q", s.out.String())
	}
}

// castEvent is one event line of an asciicast v2 recording.
type castEvent struct{ kind, data string }

// castEvents waits for the end of session id and returns the events of its
// recording.
func castEvents(t *testing.T, b *sshtest.Bastion, id string) []castEvent {
	t.Helper()
	waitAudit(t, b, func(e event) bool { return e.str("type") == "session.end" && e.str("session") == id })
	fh, err := os.Open(filepath.Join(b.Dir.Recordings(), id+".cast"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var evs []castEvent
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e []any
		if json.Unmarshal(sc.Bytes(), &e) != nil || len(e) < 3 {
			continue // the header, or a line of another shape
		}
		k, _ := e[1].(string)
		d, _ := e[2].(string)
		evs = append(evs, castEvent{k, d})
	}
	if len(evs) == 0 {
		t.Fatalf("recording of %s has no events", id)
	}
	return evs
}
