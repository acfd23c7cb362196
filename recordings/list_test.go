package recordings

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/identity"
)

// session records a small session started at start, by subject, with the
// given commands (decision per command) and output.
func session(t *testing.T, dir, id string, start time.Time, who identity.Provenance, decisions []string, output []string, seal bool) {
	t.Helper()
	h := header(id)
	h.Bastion.Identity = who
	h.Timestamp = 0
	w, err := Create(dir, h, Options{Clock: newClock(start, time.Second).Now, Signer: testKey})
	must(t, err)
	for i, d := range decisions {
		ref, err := w.Command(fmt.Sprintf("cmd-%d %s", i+1, id), d, "rule-"+d)
		must(t, err)
		if d == "allow" {
			must(t, w.Output([]byte(output[i])))
			must(t, w.CommandEnd(ref, i))
		}
	}
	if seal {
		must(t, w.Close(0))
	} else {
		must(t, w.Sync())
	}
}

var alice = identity.Provenance{Kind: identity.KindHuman, Subject: "alice", Issuer: "https://idp.example"}

func TestListAndLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	session(t, dir, "s1", t0, agent, []string{"allow", "deny"}, []string{"one\r\n", ""}, true)
	session(t, dir, "s2", t0.Add(time.Hour), alice, []string{"allow"}, []string{"two\r\n"}, true)
	session(t, dir, "s3", t0.Add(2*time.Hour), agent, []string{"allow", "allow"}, []string{"a", "b"}, false) // live or crashed
	must(t, writeFileAtomic(filepath.Join(dir, "notes.txt"), []byte("not a recording")))
	must(t, writeFileAtomic(filepath.Join(dir, "broken.cast"), []byte("garbage\n")))

	all, err := List(dir, Filter{})
	must(t, err)
	var ids []string
	for _, s := range all {
		ids = append(ids, s.ID)
	}
	if strings.Join(ids, ",") != "s3,s2,s1" {
		t.Fatalf("List order = %v, want newest first", ids)
	}
	s1 := all[2]
	if s1.Subject != "deploy-bot" || s1.Kind != "agent" || s1.Principal != "deploy" || s1.Source != "10.0.0.7" ||
		s1.Commands != 2 || s1.Denied != 1 || !s1.Started.Equal(t0) || s1.Ended.IsZero() || s1.Exit == nil ||
		s1.Path != filepath.Join(dir, "s1.cast") {
		t.Errorf("s1 = %+v", s1)
	}
	if s3 := all[0]; !s3.Ended.IsZero() || s3.Commands != 2 || s3.Exit != nil {
		t.Errorf("unsealed s3 = %+v", s3)
	}

	tests := []struct {
		name string
		f    Filter
		want string
	}{
		{"subject", Filter{Subject: "alice"}, "s2"},
		{"full identity", Filter{Subject: "agent:deploy-bot@https://idp.example"}, "s3,s1"},
		{"since", Filter{Since: t0.Add(30 * time.Minute)}, "s3,s2"},
		{"until", Filter{Until: t0.Add(time.Hour)}, "s1"},
		{"deny", Filter{Decision: "DENY"}, "s1"},
		{"none", Filter{Subject: "mallory"}, ""},
	}
	for _, tt := range tests {
		got, err := List(dir, tt.f)
		must(t, err)
		var ids []string
		for _, s := range got {
			ids = append(ids, s.ID)
		}
		if strings.Join(ids, ",") != tt.want {
			t.Errorf("%s: List = %v, want %s", tt.name, ids, tt.want)
		}
	}

	// JSON: an empty list is [], an unsealed session has "ended": null.
	none, _ := List(dir, Filter{Subject: "mallory"})
	if b, _ := json.Marshal(none); string(b) != "[]" {
		t.Errorf("empty list encodes as %s", b)
	}
	missing, err := List(filepath.Join(dir, "nope"), Filter{})
	if err != nil || len(missing) != 0 {
		t.Errorf("List of a missing dir = %v, %v", missing, err)
	}
	b, _ := json.Marshal(all[0])
	var m map[string]any
	json.Unmarshal(b, &m)
	if m["id"] != "s3" || m["ended"] != nil || m["started"] != "2026-03-01T14:00:00Z" || m["commands"] != 2.0 || m["subject"] != "deploy-bot" {
		t.Errorf("summary JSON = %s", b)
	}

	d, err := Load(dir, "s1")
	must(t, err)
	if len(d.Index) != 2 || d.Index[0].Exit == nil || d.Index[1].Decision != "deny" || d.Header.Bastion.SessionID != "s1" {
		t.Errorf("Load(s1) = %+v", d)
	}
	db, _ := json.Marshal(d)
	if !strings.Contains(string(db), `"index":[{"n":1,`) || !strings.Contains(string(db), `"header":{"width":100`) || !strings.Contains(string(db), `"ended":"2026-03-01T12:00:`) {
		t.Errorf("details JSON = %s", db)
	}
	if _, err := Load(dir, "../s1"); err == nil {
		t.Error("Load accepted a path as an id")
	}
}

func TestSearch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	session(t, dir, "s1", t0, agent, []string{"allow", "allow"}, []string{"hello \x1b[1;31mSec", "\x1b[0mret\x1b]0;title\x07 world\r\n"}, true)
	session(t, dir, "s2", t0.Add(time.Hour), alice, []string{"allow"}, []string{"no match here, but cmd matches\r\n"}, true)

	got, err := Search(dir, "secret")
	must(t, err)
	if len(got) != 1 || got[0].ID != "s1" || got[0].Kind != "output" || got[0].Command != 2 || got[0].Text != "hello Secret world  " {
		t.Fatalf("Search(secret) = %+v", got)
	}
	got, err = Search(dir, "CMD-1")
	must(t, err)
	if len(got) != 2 || got[0].ID != "s2" || got[0].Kind != "command" || got[0].Text != "cmd-1 s2" || got[1].ID != "s1" {
		t.Fatalf("Search(CMD-1) = %+v", got)
	}
	if got, _ := Search(dir, "absent"); len(got) != 0 {
		t.Fatalf("Search(absent) = %+v", got)
	}
	if _, err := Search(dir, ""); err == nil {
		t.Fatal("Search of an empty text succeeded")
	}
}

func TestResolve(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	session(t, dir, "s1", t0, agent, nil, nil, true)
	if p, err := Resolve(dir, "s1"); err != nil || p != filepath.Join(dir, "s1.cast") {
		t.Errorf("Resolve(s1) = %q, %v", p, err)
	}
	if p, err := Resolve("elsewhere", filepath.Join(dir, "s1.cast")); err != nil || p != filepath.Join(dir, "s1.cast") {
		t.Errorf("Resolve(path) = %q, %v", p, err)
	}
	for _, arg := range []string{"s9", "../../etc/passwd", "/nonexistent.cast"} {
		if _, err := Resolve(dir, arg); err == nil {
			t.Errorf("Resolve(%q) succeeded", arg)
		}
	}
}
