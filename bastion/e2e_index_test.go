package bastion_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/bastion"
	"github.com/bastion-dev/bastion/internal/sshtest"
	"github.com/bastion-dev/bastion/recordings"
	"github.com/bastion-dev/bastion/store"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"
)

// storeSessions returns the store's sessions of subject, newest first.
func storeSessions(t *testing.T, b *sshtest.Bastion, subject string) []store.Session {
	t.Helper()
	list, err := b.Env.Store.Sessions(context.Background(), store.SessionFilter{Subject: subject})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// readIndex reads a session's <id>.index.json.
func readIndex(t *testing.T, b *sshtest.Bastion, id string) recordings.Index {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(b.Dir.Recordings(), id+".index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ix recordings.Index
	if err := json.Unmarshal(data, &ix); err != nil {
		t.Fatal(err)
	}
	return ix
}

// indexAsStored is what the store must hold for an index file's commands.
func indexAsStored(ix recordings.Index) []store.Command {
	out := []store.Command{}
	for _, e := range ix.Commands {
		out = append(out, store.Command{SessionID: ix.SessionID, N: e.N, Offset: e.Offset, Line: e.Line, Cmd: e.Cmd,
			Decision: e.Decision, Rule: e.Rule, Exit: e.Exit, Duration: e.Duration})
	}
	return out
}

// checkMirror compares the store's copy of a session with its index file.
func checkMirror(t *testing.T, b *sshtest.Bastion, sess store.Session) recordings.Index {
	t.Helper()
	ix := readIndex(t, b, sess.ID)
	if ix.Ended == nil || ix.Exit == nil {
		t.Fatalf("session %s: index not sealed: %+v", sess.ID, ix)
	}
	if sess.Exit == nil || *sess.Exit != *ix.Exit || sess.Ended.IsZero() {
		t.Errorf("session %s: store has exit %v ended %v; index has exit %d", sess.ID, sess.Exit, sess.Ended, *ix.Exit)
	}
	if d := sess.Started.Sub(ix.Started); d < -time.Second || d > time.Second {
		t.Errorf("session %s: store started %v, index %v", sess.ID, sess.Started, ix.Started)
	}
	if want := filepath.Join(b.Dir.Recordings(), sess.ID+".cast"); sess.Recording != want {
		t.Errorf("session %s: recording %q, want %q", sess.ID, sess.Recording, want)
	}
	cmds, err := b.Env.Store.SessionCommands(context.Background(), sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	for i := range cmds {
		cmds[i].Started = time.Time{} // the index file keeps only offsets
	}
	if diff := cmp.Diff(indexAsStored(ix), cmds); diff != "" {
		t.Errorf("session %s: store's commands differ from the index file (-index +store):\n%s", sess.ID, diff)
	}
	if sess.Commands != len(ix.Commands) {
		t.Errorf("session %s: store counts %d commands, index has %d", sess.ID, sess.Commands, len(ix.Commands))
	}
	return ix
}

// TestE2ESessionIndexInStore: exec sessions and an interactive shell are
// mirrored into the store, row for row as in their .index.json.
func TestE2ESessionIndexInStore(t *testing.T) {
	b := sshtest.Start(t, sshtest.Options{})

	login := b.Login("agent-index")
	if r := sshtest.SSH(t, login, nil, "bastion", "echo hello; exit 3"); r.Code != 3 {
		t.Fatalf("allowed command: %+v", r)
	}
	if r := sshtest.SSH(t, login, nil, "bastion", "rm -rf /"); r.Code != bastion.ExitDenied {
		t.Fatalf("denied command: %+v", r)
	}
	list := storeSessions(t, b, "agent-index")
	if len(list) != 2 {
		t.Fatalf("store has %d sessions of agent-index, want 2: %+v", len(list), list)
	}
	for i, want := range []struct {
		cmd, decision string
		exit          int
	}{{"rm -rf /", "deny", bastion.ExitDenied}, {"echo hello; exit 3", "allow", 3}} {
		sess := list[i]
		if sess.Command != want.cmd || sess.Identity.Subject != "agent-index" || sess.Principal != "agent" {
			t.Errorf("session %d: %+v", i, sess)
		}
		ix := checkMirror(t, b, sess)
		if len(ix.Commands) != 1 || ix.Commands[0].Cmd != want.cmd || ix.Commands[0].Decision != want.decision ||
			ix.Commands[0].Rule == "" || ix.Commands[0].Exit == nil || *ix.Commands[0].Exit != want.exit {
			t.Errorf("index of %q: %+v", want.cmd, ix.Commands)
		}
	}

	// An interactive shell: three lines in one session, the last denied.
	c := dial(t, b, b.Login("agent-index-shell"), "agent")
	stdin, out, done := startShell(t, c)
	io.WriteString(stdin, "echo one\nfalse\nrm -rf /\n")
	// The lines run one after the other; closing stdin ends the session
	// once the current one is done, so wait for the third decision first.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if l := storeSessions(t, b, "agent-index-shell"); len(l) == 1 && l[0].Commands == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the store never had the shell's three commands; output %q", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	stdin.Close()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the shell session did not end after stdin closed")
	}
	list = storeSessions(t, b, "agent-index-shell")
	if len(list) != 1 || list[0].Command != "" || list[0].Denied != 1 {
		t.Fatalf("shell session in the store: %+v", list)
	}
	ix := checkMirror(t, b, list[0])
	var got []string
	for _, e := range ix.Commands {
		exit := "-"
		if e.Exit != nil {
			exit = strconv.Itoa(*e.Exit)
		}
		got = append(got, e.Cmd+" "+e.Decision+" "+exit)
	}
	if diff := cmp.Diff([]string{"echo one allow 0", "false allow 1", "rm -rf / deny -"}, got); diff != "" {
		t.Errorf("shell index (-want +got):\n%s", diff)
	}
}

var errInjected = errors.New("injected store failure")

// failingStore is the real store, except for one method that fails.
type failingStore struct {
	bastion.SessionStore
	fail string
}

func (f failingStore) StartSession(ctx context.Context, s store.Session) error {
	if f.fail == "StartSession" {
		return errInjected
	}
	return f.SessionStore.StartSession(ctx, s)
}

func (f failingStore) AddCommand(ctx context.Context, c store.Command) error {
	if f.fail == "AddCommand" {
		return errInjected
	}
	return f.SessionStore.AddCommand(ctx, c)
}

func (f failingStore) EndCommand(ctx context.Context, id string, n, exit int, d float64) error {
	if f.fail == "EndCommand" {
		return errInjected
	}
	return f.SessionStore.EndCommand(ctx, id, n, exit, d)
}

func (f failingStore) EndSession(ctx context.Context, id string, ended time.Time, exit int) error {
	if f.fail == "EndSession" {
		return errInjected
	}
	return f.SessionStore.EndSession(ctx, id, ended, exit)
}

func startFailing(t *testing.T, fail string) *sshtest.Bastion {
	return sshtest.Start(t, sshtest.Options{Sessions: func(env *bastion.Env) bastion.SessionStore {
		return failingStore{SessionStore: env.Store, fail: fail}
	}})
}

// TestE2EStoreFailureRefusesCommand: when the store cannot record the
// session or the command, the command does not run: the agent gets the
// recording refusal (exit 214) with a reason naming the store, and the
// failure is audited.
func TestE2EStoreFailureRefusesCommand(t *testing.T) {
	for _, fail := range []string{"StartSession", "AddCommand"} {
		t.Run(fail, func(t *testing.T) {
			b := startFailing(t, fail)
			login := b.Login("agent-store-" + strings.ToLower(fail))
			marker := filepath.Join(sshtest.SandboxDir(t), "marker")
			r := sshtest.SSH(t, login, nil, "bastion", "touch "+marker)
			if r.Code != bastion.ExitRecordingUnavailable {
				t.Fatalf("exit %d, want %d; stderr %q", r.Code, bastion.ExitRecordingUnavailable, r.Stderr)
			}
			if _, err := os.Stat(marker); !os.IsNotExist(err) {
				t.Fatalf("the command ran although the store failed: %s exists (err %v)", marker, err)
			}
			human, d := parseRefusal(t, r.Stderr)
			if !strings.Contains(human, "session store") || d.Bastion != "recording-unavailable" || d.Rule != "recording" {
				t.Errorf("refusal %q %+v", human, d)
			}
			if strings.Contains(r.Stderr, errInjected.Error()) {
				t.Errorf("the internal error reached the agent: %q", r.Stderr)
			}
			if !auditHas(t, b, func(e map[string]any) bool {
				det, _ := e["detail"].(map[string]any)
				return e["type"] == "store.failed" && det["error"] == errInjected.Error() && e["session"] == d.Session
			}) {
				t.Error("the store failure was not audited")
			}
			if fail == "AddCommand" {
				// The recording shows the command decided, then refused.
				ix := readIndex(t, b, d.Session)
				if len(ix.Commands) != 1 || ix.Commands[0].Decision != "allow" || ix.Commands[0].Exit == nil ||
					*ix.Commands[0].Exit != bastion.ExitRecordingUnavailable {
					t.Errorf("index: %+v", ix.Commands)
				}
			}
		})
	}
}

// TestE2EStoreEndFailureEndsShell: the same two lines in an interactive
// shell run both with a working store; when the store cannot record the
// end of the first, the session ends and the second never runs.
func TestE2EStoreEndFailureEndsShell(t *testing.T) {
	for _, tc := range []struct {
		fail     string
		wantCode int
		secondOK bool
	}{
		{fail: "", wantCode: 0, secondOK: true},
		{fail: "EndCommand", wantCode: bastion.ExitRecordingUnavailable, secondOK: false},
	} {
		t.Run("fail="+tc.fail, func(t *testing.T) {
			b := startFailing(t, tc.fail)
			c := dial(t, b, b.Login("agent-store-shell"), "agent")
			dir := sshtest.SandboxDir(t)
			first, second := filepath.Join(dir, "first"), filepath.Join(dir, "second")
			stdin, out, done := startShell(t, c)
			io.WriteString(stdin, "touch "+first+"\ntouch "+second+"\n")
			if tc.secondOK {
				deadline := time.Now().Add(20 * time.Second)
				for {
					if _, err := os.Stat(second); err == nil {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("the second line never ran; output %q", out.String())
					}
					time.Sleep(50 * time.Millisecond)
				}
				stdin.Close()
			}
			var err2 error
			select {
			case err2 = <-done:
			case <-time.After(30 * time.Second):
				t.Fatalf("the session did not end; output %q", out.String())
			}
			code := 0
			var ee *ssh.ExitError
			if errors.As(err2, &ee) {
				code = ee.ExitStatus()
			} else if err2 != nil {
				t.Fatalf("wait: %v", err2)
			}
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d; output %q", code, tc.wantCode, out.String())
			}
			if _, err := os.Stat(first); err != nil {
				t.Fatalf("the first line did not run: %v", err)
			}
			_, err := os.Stat(second)
			if ran := err == nil; ran != tc.secondOK {
				t.Fatalf("second line ran: %v, want %v; output %q", ran, tc.secondOK, out.String())
			}
			if !tc.secondOK && !strings.Contains(out.String(), "bastion: session ended: the session index could not be written to the store") {
				t.Errorf("the agent was not told why the session ended: %q", out.String())
			}
		})
	}
}

// TestE2ESecretInCommandMasked: a secret typed in an exec command reaches
// neither the recording (header, marker, index) nor the store.
func TestE2ESecretInCommandMasked(t *testing.T) {
	b := sshtest.Start(t, sshtest.Options{})
	login := b.Login("agent-secret-cmd")
	const secret = "AKIAZ3MPLE7QR2ST4UVW"
	if r := sshtest.SSH(t, login, nil, "bastion", "echo "+secret+" >/dev/null"); r.Code != 0 {
		t.Fatalf("%+v", r)
	}
	list := storeSessions(t, b, "agent-secret-cmd")
	if len(list) != 1 {
		t.Fatalf("store has %d sessions, want 1", len(list))
	}
	sess := list[0]
	cmds, err := b.Env.Store.SessionCommands(context.Background(), sess.ID)
	if err != nil || len(cmds) != 1 {
		t.Fatalf("commands %+v, %v", cmds, err)
	}
	if !strings.Contains(sess.Command, "[MASKED") || !strings.Contains(cmds[0].Cmd, "[MASKED") {
		t.Errorf("store: session command %q, command %q; want them masked", sess.Command, cmds[0].Cmd)
	}
	for _, name := range []string{sess.ID + ".cast", sess.ID + ".index.json"} {
		data, err := os.ReadFile(filepath.Join(b.Dir.Recordings(), name))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), secret) {
			t.Errorf("%s holds the secret:\n%s", name, data)
		}
	}
}

// TestE2EStoreEndSessionFailureAudited: a session whose end cannot be
// written to the store keeps its command's exit code (the command ran and
// ended); the failure is logged and audited.
func TestE2EStoreEndSessionFailureAudited(t *testing.T) {
	b := startFailing(t, "EndSession")
	login := b.Login("agent-store-end")
	marker := filepath.Join(sshtest.SandboxDir(t), "ran")
	r := sshtest.SSH(t, login, nil, "bastion", "touch "+marker+"; exit 5")
	if r.Code != 5 {
		t.Fatalf("exit %d, want 5; stderr %q", r.Code, r.Stderr)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("the command did not run: %v", err)
	}
	if !auditHas(t, b, func(e map[string]any) bool {
		det, _ := e["detail"].(map[string]any)
		return e["type"] == "store.failed" && det["op"] == "end session" && det["exit"] == float64(5)
	}) {
		t.Error("the failed end of session was not audited")
	}
	list := storeSessions(t, b, "agent-store-end")
	if len(list) != 1 || list[0].Exit != nil || !list[0].Ended.IsZero() || list[0].Commands != 1 {
		t.Fatalf("store: %+v", list)
	}
	b.Stop() // nothing logs after this, so the log can be read
	if !strings.Contains(b.LogBuf.String(), "session store write failed") {
		t.Error("the failed end of session was not logged")
	}
}

// startShell opens a shell session without a terminal on c: lines written
// to stdin go to the line front; out collects stdout and stderr; done gets
// the session's end.
func startShell(t *testing.T, c *ssh.Client) (stdin io.WriteCloser, out *syncBuffer, done <-chan error) {
	t.Helper()
	sh, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if stdin, err = sh.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out = &syncBuffer{}
	sh.Stdout, sh.Stderr = out, out
	if err := sh.Shell(); err != nil {
		t.Fatal(err)
	}
	d := make(chan error, 1)
	go func() { d <- sh.Wait() }()
	return stdin, out, d
}
