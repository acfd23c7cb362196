package attack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/audit"
	"github.com/bastion-dev/bastion/bastion"
	"github.com/bastion-dev/bastion/internal/client"
	"github.com/bastion-dev/bastion/internal/sshtest"
)

// #22 item 9: the audit log could be cut or rewritten undetected, and a
// sealed recording cut short passed for one that ended abnormally. Each
// test below does what an attacker who can write the data directory's
// files (but not read the recording key) would, after real ssh sessions,
// and runs `bastion audit verify` or `bastion recordings verify` as the
// operator would, in its own process next to the live server.

// allowAndDeny runs one allowed and one denied command through the real
// ssh client and returns the denied command's audit event; the denial is
// harmless if the policy failed (it clears a shell's in-memory history).
func allowAndDeny(t *testing.T, b *sshtest.Bastion, login *client.Result) event {
	t.Helper()
	if r := sshtest.SSH(t, login, nil, "bastion", "echo fine"); r.Code != 0 || r.Stdout != "fine\n" {
		t.Fatalf("allowed command: %+v", r)
	}
	r := sshtest.SSH(t, login, nil, "bastion", "history -c")
	if r.Code != bastion.ExitDenied || !strings.Contains(r.Stderr, "bastion: denied: wipes or disables shell history") {
		t.Fatalf("history -c: %+v; want exit %d and the denial", r, bastion.ExitDenied)
	}
	deny := waitAudit(t, b, func(e event) bool {
		return e.str("type") == "command" && e.str("decision") == "deny" && e.detail("command") == "history -c"
	})
	waitAudit(t, b, func(e event) bool { return e.str("type") == "session.end" && e.str("session") == deny.str("session") })
	return deny
}

// settledLog waits until the store's head names the log's last event (the
// head is saved after each group commit, in the background) and returns
// the log's lines: from then on, nothing an attacker cuts is in the
// window a crash could explain.
func settledLog(t *testing.T, b *sshtest.Bastion) []string {
	t.Helper()
	var ls []string
	if !within(10*time.Second, func() bool {
		raw, err := os.ReadFile(b.Dir.AuditLog())
		if err != nil {
			t.Fatal(err)
		}
		ls = strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
		var last audit.Event
		json.Unmarshal([]byte(ls[len(ls)-1]), &last)
		h, err := b.Env.Store.LoadHead(context.Background())
		return err == nil && h == audit.Head{Seq: last.Seq, Hash: last.Hash} && last.Seq == uint64(len(ls))
	}) {
		t.Fatal("the store's head never reached the log's last event")
	}
	return ls
}

// writeLines replaces the audit log with lines, as an attacker would.
func writeLines(t *testing.T, path string, ls []string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(ls, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// lineOf is the 0-based line of the event with hash h.
func lineOf(t *testing.T, ls []string, h string) int {
	t.Helper()
	for i, l := range ls {
		if strings.Contains(l, `"hash":"`+h+`"`) {
			return i
		}
	}
	t.Fatalf("no line with hash %s", h)
	return -1
}

// TestAuditLogCutIsTampering: the log's last lines (the denial and what
// followed) deleted: `audit verify` reports the cut as tampering, and the
// running bastion, at its next write, records a log.tampered event naming
// it, so the evidence stays in the keyed chain once the head moves on.
func TestAuditLogCutIsTampering(t *testing.T) {
	b := start(t, sshtest.Options{})
	login := b.Login("agent-auditcut")
	deny := allowAndDeny(t, b, login)
	ls := settledLog(t, b)
	if r := cli(t, b, "audit", "verify"); r.Code != 0 || !strings.Contains(r.Stdout, "keyed), chain intact; the store's head (event") {
		t.Fatalf("audit verify of the intact log: %+v", r)
	}

	at := lineOf(t, ls, deny.str("hash"))
	writeLines(t, b.Dir.AuditLog(), ls[:at])
	r := cli(t, b, "audit", "verify")
	if r.Code != 1 || !strings.Contains(r.Stderr, "bastion: tampering: ") ||
		!strings.Contains(r.Stderr, "event(s) were cut from its end") {
		t.Fatalf("audit verify of the cut log: %+v; want exit 1 and the cut named", r)
	}

	if r := sshtest.SSH(t, login, nil, "bastion", "true"); r.Code != 0 {
		t.Fatalf("a command after the cut: %+v", r)
	}
	ev := waitAudit(t, b, func(e event) bool { return e.str("type") == audit.LogTampered })
	if ev.detail("kind") != "truncated" || !strings.Contains(ev.detail("reason"), "but bastion's last write was event") {
		t.Fatalf("log.tampered event %v", ev)
	}
	r = cli(t, b, "audit", "verify")
	if r.Code != 1 || !strings.Contains(r.Stderr, "log.tampered: bastion found the file ended at event") {
		t.Fatalf("audit verify after bastion wrote again: %+v", r)
	}
}

// rechain rewrites lines: the denial as an allow, every event re-encoded
// the way the unkeyed chain did (json.Marshal, SHA-256), with or without
// its seq; what someone who knows the format but not the key can do.
func rechain(t *testing.T, ls []string, denyHash string, keepSeq bool) []string {
	t.Helper()
	out := make([]string, len(ls))
	prev := ""
	for i, l := range ls {
		var e audit.Event
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatal(err)
		}
		if e.Hash == denyHash {
			e.Decision = "allow"
		}
		if !keepSeq {
			e.Seq = 0
		}
		e.Prev, e.Hash = prev, ""
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		prev = hex.EncodeToString(sum[:])
		out[i] = string(bytes.TrimSuffix(b, []byte("}"))) + `,"hash":"` + prev + `"}`
	}
	return out
}

// TestAuditLogRewriteIsTampering: the denial rewritten as an allow and
// the whole chain recomputed with SHA-256, as the unkeyed chain was
// computed: the events fail their HMAC, and stripped of their seq to pass
// as a legacy log, the log no longer holds the head the store kept. Both
// are tampering; the running bastion records the rewrite at its next
// write.
func TestAuditLogRewriteIsTampering(t *testing.T) {
	b := start(t, sshtest.Options{})
	login := b.Login("agent-auditrewrite")
	deny := allowAndDeny(t, b, login)
	ls := settledLog(t, b)
	at := lineOf(t, ls, deny.str("hash"))

	writeLines(t, b.Dir.AuditLog(), rechain(t, ls, deny.str("hash"), true))
	r := cli(t, b, "audit", "verify")
	if r.Code != 1 || !strings.Contains(r.Stderr, "bastion: tampering: ") || !strings.Contains(r.Stderr, "line 1: hash mismatch") {
		t.Fatalf("audit verify of a log re-hashed with SHA-256: %+v", r)
	}

	legacy := rechain(t, ls, deny.str("hash"), false)
	if !strings.Contains(legacy[at], `"decision":"allow"`) {
		t.Fatalf("the rewrite did not turn the denial into an allow: %s", legacy[at])
	}
	writeLines(t, b.Dir.AuditLog(), legacy)
	r = cli(t, b, "audit", "verify")
	if r.Code != 1 || !strings.Contains(r.Stderr, "bastion: tampering: ") ||
		!strings.Contains(r.Stderr, "is not the one the store's head records") || !strings.Contains(r.Stderr, "the log was rewritten") {
		t.Fatalf("audit verify of a log rewritten as legacy: %+v", r)
	}

	if r := sshtest.SSH(t, login, nil, "bastion", "true"); r.Code != 0 {
		t.Fatalf("a command after the rewrite: %+v", r)
	}
	ev := waitAudit(t, b, func(e event) bool { return e.str("type") == audit.LogTampered })
	if ev.detail("kind") != "rewritten" {
		t.Fatalf("log.tampered event %v", ev)
	}
}

// TestSealedRecordingCutIsTampering: a session's recording, sealed when
// the session ended, cut back before its seal (and its index file
// removed): `recordings verify` says tampering, from the seal the store
// kept, not "ended abnormally".
func TestSealedRecordingCutIsTampering(t *testing.T) {
	b := start(t, sshtest.Options{})
	login := b.Login("agent-reccut")
	if r := sshtest.SSH(t, login, nil, "bastion", "echo recorded"); r.Code != 0 || r.Stdout != "recorded\n" {
		t.Fatalf("ssh: %+v", r)
	}
	st := waitAudit(t, b, func(e event) bool { return e.str("type") == "session.start" && e.detail("command") == "echo recorded" })
	id := st.str("session")
	waitAudit(t, b, func(e event) bool { return e.str("type") == "session.end" && e.str("session") == id })
	r := cli(t, b, "recordings", "verify", id)
	if r.Code != 0 || !strings.Contains(r.Stdout, "sealed, signature valid") || !strings.Contains(r.Stdout, "the store's seal and command index agree") {
		t.Fatalf("recordings verify of the intact recording: %+v", r)
	}

	path := filepath.Join(b.Dir.Recordings(), id+".cast")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ls := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	writeLines(t, path, ls[:len(ls)-2]) // the end marker and the seal
	os.Remove(filepath.Join(b.Dir.Recordings(), id+".index.json"))
	r = cli(t, b, "recordings", "verify", id)
	if r.Code != 1 || !strings.Contains(r.Stderr, "bastion: tampering: ") ||
		!strings.Contains(r.Stderr, "sealed recording cut short: the store recorded it sealed with") || strings.Contains(r.Stderr, "abnormally") {
		t.Fatalf("recordings verify of the cut recording: %+v; want exit 1 and tampering", r)
	}
}
