package bastion

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/audit"
	"github.com/bastion-dev/bastion/certs"
	"github.com/bastion-dev/bastion/identity"
	"github.com/bastion-dev/bastion/masking"
	"github.com/bastion-dev/bastion/recordings"
	"github.com/bastion-dev/bastion/shellpolicy"
	"golang.org/x/crypto/ssh"
)

// memSink is an audit sink in memory; fail, when set, refuses the events
// it returns true for.
type memSink struct {
	mu     sync.Mutex
	events []audit.Event
	fail   func(audit.Event) bool
}

func (m *memSink) Record(e audit.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil && m.fail(e) {
		return errors.New("disk full")
	}
	m.events = append(m.events, e)
	return nil
}

func (m *memSink) types() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, e := range m.events {
		out = append(out, e.Type)
	}
	return out
}

func (m *memSink) last(typ string) (audit.Event, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := len(m.events) - 1; i >= 0; i-- {
		if m.events[i].Type == typ {
			return m.events[i], true
		}
	}
	return audit.Event{}, false
}

// stageChannel is the session channel of a stage test: it keeps what is
// written to stderr; nothing else of it is used.
type stageChannel struct {
	ssh.Channel
	mu     sync.Mutex
	stderr strings.Builder
}

func (c *stageChannel) Stderr() io.ReadWriter { return stderrOf{c} }

type stderrOf struct{ c *stageChannel }

func (s stderrOf) Read([]byte) (int, error) { return 0, io.EOF }
func (s stderrOf) Write(p []byte) (int, error) {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	return s.c.stderr.Write(p)
}

// stageSession is an exec session with a real policy, masker, recording
// directory and liveness, and an audit sink in memory: what the gate and
// the lifecycle need, and no SSH connection.
func stageSession(t *testing.T, command string) (*session, *memSink, *stageChannel) {
	t.Helper()
	sink := &memSink{}
	s := &Server{Policy: shellpolicy.Default(), Masker: masking.Default(), Audit: sink, Clock: time.Now,
		Logger: slog.New(slog.DiscardHandler), RecordingsDir: filepath.Join(t.TempDir(), "recordings")}
	s.live = newLiveness(s, nil, 0)
	ctx, cancel := context.WithCancelCause(context.Background())
	t.Cleanup(func() { cancel(nil) })
	ch := &stageChannel{}
	sess := &session{srv: s, id: "s-stage", ch: ch, source: "127.0.0.1", ctx: ctx, cancel: cancel, env: map[string]string{},
		kind: "exec", command: command,
		ident: &certs.Identity{Principal: "agent", Serial: 7, KeyID: "agent:ci-bot",
			Provenance: identity.Provenance{Kind: identity.KindAgent, Subject: "ci-bot", Issuer: "https://issuer.test", Role: "agent"}}}
	return sess, sink, ch
}

func openStage(t *testing.T, sess *session) *lifecycle {
	t.Helper()
	life, err := sess.open(sess.header(), sess.startDetail())
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return life
}

// The gate's verdicts, and what each leaves in the audit log and the
// recording before the caller could run anything.
func TestGateVerdicts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, input  string
		run          bool
		code         int
		decision     string
		refusal      string // in the verdict's refusal text
		shown        string // written through show while the gate held it
		denied       bool
		revoke, fail bool
	}{
		{name: "allowed", input: "echo hello", run: true, decision: "allow"},
		{name: "denied", input: "rm -rf /", code: ExitDenied, decision: "deny", refusal: "bastion: denied: ", denied: true},
		{name: "held, no approvals configured", input: "kubectl delete pod web-1", code: ExitApprovalRequired, decision: "approve",
			shown: "bastion: approval required: "},
		{name: "revoked certificate", input: "echo hello", revoke: true, code: ExitCertificate, decision: "deny",
			refusal: "[rule certificate]", denied: true},
		{name: "audit log unavailable", input: "echo hello", fail: true, code: ExitRecordingUnavailable,
			refusal: `"bastion":"recording-unavailable"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sess, sink, _ := stageSession(t, tc.input)
			life := openStage(t, sess)
			defer life.close(0, nil)
			if tc.revoke {
				sess.srv.live.serials[sess.ident.Serial] = true
			}
			if tc.fail {
				sink.fail = func(e audit.Event) bool { return e.Type == audit.Command }
			}
			var shown strings.Builder
			v := sess.gate(sess.ctx, tc.input, func(s string) { shown.WriteString(s) })
			if v.run != tc.run || v.code != tc.code || v.denied != tc.denied {
				t.Fatalf("verdict %+v, want run=%v code=%d denied=%v", v, tc.run, tc.code, tc.denied)
			}
			if !strings.Contains(v.refusal, tc.refusal) || tc.refusal == "" && v.refusal != "" {
				t.Errorf("refusal %q, want it to contain %q", v.refusal, tc.refusal)
			}
			if !strings.Contains(shown.String(), tc.shown) || tc.shown == "" && shown.Len() > 0 {
				t.Errorf("shown %q, want it to contain %q", shown.String(), tc.shown)
			}
			e, ok := sink.last(audit.Command)
			if tc.fail {
				if ok {
					t.Fatalf("a refused audit write left an event: %+v", e)
				}
				return
			}
			if !ok || e.Decision != tc.decision || e.Detail["command"] != tc.input || e.Session != sess.id || e.Identity.Subject != "ci-bot" {
				t.Fatalf("command event %+v, want decision %s for %q", e, tc.decision, tc.input)
			}
			entry, ok := sess.rec.Entry(sess.cmdRef)
			if !ok || entry.Cmd != tc.input || entry.Decision != tc.decision {
				t.Fatalf("recording entry %+v, want %q decided %s", entry, tc.input, tc.decision)
			}
			// A held command that does not run has its end recorded; a
			// denied one's is the caller's; a running one's comes later.
			if ended := entry.Exit != nil; ended != (!tc.run && !tc.denied) {
				t.Errorf("recording entry exit %v for run=%v denied=%v", entry.Exit, tc.run, tc.denied)
			}
		})
	}
}

// A secret in the command is masked in every record the gate writes.
func TestGateMasksTheRecordedCommand(t *testing.T) {
	t.Parallel()
	cmd := "echo " + ghToken
	sess, sink, _ := stageSession(t, cmd)
	life := openStage(t, sess)
	defer life.close(0, nil)
	if v := sess.gate(sess.ctx, cmd, func(string) {}); !v.run {
		t.Fatalf("verdict %+v", v)
	}
	e, _ := sink.last(audit.Command)
	entry, _ := sess.rec.Entry(sess.cmdRef)
	for what, s := range map[string]any{"audit": e.Detail["command"], "recording": entry.Cmd} {
		if got, _ := s.(string); strings.Contains(got, ghToken) || !strings.Contains(got, "[MASKED:") {
			t.Errorf("%s has %q", what, got)
		}
	}
}

// The exec gate stage runs the next stage only when the gate lets it, and
// a denial's exit code becomes the command's.
func TestGatedStage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		input string
		ran   bool
		code  int
	}{
		{"echo hi", true, 0},
		{"rm -rf /", false, ExitDenied},
	} {
		sess, _, ch := stageSession(t, tc.input)
		life := openStage(t, sess)
		ran := false
		code := gated(func(*session) int { ran = true; return 0 })(sess)
		life.close(code, nil)
		if ran != tc.ran || code != tc.code {
			t.Fatalf("%q: ran=%v code=%d, want ran=%v code=%d", tc.input, ran, code, tc.ran, tc.code)
		}
		if !tc.ran {
			if !strings.HasPrefix(ch.stderr.String(), "bastion: denied: ") {
				t.Errorf("%q: stderr %q", tc.input, ch.stderr.String())
			}
			entry, _ := sess.rec.Entry(sess.cmdRef)
			if entry.Exit == nil || *entry.Exit != tc.code {
				t.Errorf("%q: recorded exit %v, want %d", tc.input, entry.Exit, tc.code)
			}
		}
	}
}

// open writes the recording, then the start event; a failure of either
// refuses the session and leaves no half-open evidence behind.
func TestLifecycleOpenFailsClosed(t *testing.T) {
	t.Parallel()
	t.Run("audit start refused", func(t *testing.T) {
		t.Parallel()
		sess, sink, _ := stageSession(t, "echo hi")
		sink.fail = func(e audit.Event) bool { return e.Type == audit.SessionStart }
		if _, err := sess.open(sess.header(), sess.startDetail()); !errors.Is(err, errRecordingFailed) {
			t.Fatalf("open = %v, want errRecordingFailed", err)
		}
		if _, ok := sess.rec.Sealed(); !ok {
			t.Error("the recording was left open")
		}
		if code := sess.refuseUnrecorded(errRecordingFailed); code != ExitRecordingUnavailable {
			t.Errorf("refuseUnrecorded = %d", code)
		}
	})
	t.Run("recordings directory unusable", func(t *testing.T) {
		t.Parallel()
		sess, sink, _ := stageSession(t, "echo hi")
		if err := os.WriteFile(sess.srv.RecordingsDir, []byte("not a directory"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := sess.open(sess.header(), sess.startDetail()); !errors.Is(err, errRecordingFailed) {
			t.Fatalf("open = %v, want errRecordingFailed", err)
		}
		if got := sink.types(); len(got) != 0 {
			t.Errorf("audit events %v for a session that never started", got)
		}
	})
}

// close seals the recording and audits the end with its cause; the start
// event carries the session's identity and the masked command.
func TestLifecycleEvents(t *testing.T) {
	t.Parallel()
	sess, sink, _ := stageSession(t, "echo "+ghToken)
	sess.env["BASTION_REASON"] = "rotate the key"
	life := openStage(t, sess)
	life.close(3, errClientGone)
	start, _ := sink.last(audit.SessionStart)
	end, _ := sink.last(audit.SessionEnd)
	if start.Detail["kind"] != "exec" || start.Detail["serial"] != "7" || start.Detail["reason"] != "rotate the key" ||
		strings.Contains(start.Detail["command"].(string), ghToken) {
		t.Errorf("start detail %v", start.Detail)
	}
	if end.Detail["exit"] != 3 || end.Detail["cause"] != errClientGone.Error() || end.Session != sess.id {
		t.Errorf("end %+v", end)
	}
	seal, ok := sess.rec.Sealed()
	if !ok || seal.Lines == 0 {
		t.Fatalf("recording not sealed: %+v", seal)
	}
	if r, err := recordings.VerifyFile(sess.rec.Path(), nil); err != nil || !r.Sealed || r.Header.Bastion.SessionID != sess.id {
		t.Errorf("recording does not verify: %+v, %v", r, err)
	}
}
