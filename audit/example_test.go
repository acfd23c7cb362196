package audit_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bastion-dev/bastion/audit"
	"github.com/bastion-dev/bastion/identity"
)

// Record returns once the event is on disk; a caller acts only then.
func ExampleLog_Record() {
	dir, _ := os.MkdirTemp("", "audit")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "audit.jsonl")
	clock := func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) }
	log, err := audit.Open(path, audit.Options{Clock: clock})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer log.Close()
	who := &identity.Provenance{Kind: identity.KindAgent, Subject: "deploy-bot"}
	err = log.Record(audit.Event{Type: audit.Command, Identity: who, Session: "3f2a9c",
		Decision: "deny", Rule: "no-rm", Detail: map[string]any{"command": "rm -rf /"}})
	if err != nil {
		fmt.Println("refuse the command:", err)
		return
	}
	evs, _ := audit.Search(path, audit.Filter{Decision: "deny"})
	fmt.Println(len(evs), evs[0].Time, evs[0].Detail["command"], len(evs[0].Hash))
	// Output: 1 2026-03-01 12:00:00 +0000 UTC rm -rf / 64
}

// Verify names the first line that breaks the chain.
func ExampleVerify() {
	dir, _ := os.MkdirTemp("", "audit")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "audit.jsonl")
	log, _ := audit.Open(path, audit.Options{})
	for _, d := range []string{"allow", "deny", "allow"} {
		log.Record(audit.Event{Type: audit.Command, Decision: d})
	}
	log.Close()

	b, _ := os.ReadFile(path)
	n, err := audit.Verify(strings.NewReader(string(b)))
	fmt.Println(n, err)
	edited := strings.Replace(string(b), `"deny"`, `"allow"`, 1)
	n, err = audit.Verify(strings.NewReader(edited))
	fmt.Println(n, err)
	// Output:
	// 3 <nil>
	// 1 line 2: hash mismatch
}

// A keyed log checked against its head: an event rewritten and re-hashed
// without the key fails its HMAC, and lines cut from the end fall short of
// the head kept apart from the file.
func ExampleVerifyWith() {
	dir, _ := os.MkdirTemp("", "audit")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "audit.jsonl")
	key, _ := audit.DeriveKey([]byte("the recording key's seed, 32 bytes"))
	heads := &oneHead{}
	log, _ := audit.Open(path, audit.Options{Key: key, Heads: heads})
	for _, d := range []string{"allow", "deny", "allow"} {
		log.Record(audit.Event{Type: audit.Command, Decision: d})
	}
	log.Close()

	b, _ := os.ReadFile(path)
	rep, err := audit.VerifyWith(strings.NewReader(string(b)), audit.VerifyOptions{Key: key, Head: heads.h})
	fmt.Println(rep.Events, rep.HeadMatched, err)
	lines := strings.SplitAfter(string(b), "\n")
	_, err = audit.VerifyWith(strings.NewReader(lines[0]+lines[1]), audit.VerifyOptions{Key: key, Head: heads.h})
	fmt.Println(err, audit.Tampering(err))
	// Output:
	// 3 true <nil>
	// line 3: the log ends at event 2, but the store's head is event 3: 1 event(s) were cut from its end true
}

// oneHead keeps a head in memory; bastion keeps it in its store.
type oneHead struct{ h audit.Head }

func (o *oneHead) SaveHead(_ context.Context, h audit.Head) error { o.h = h; return nil }
func (o *oneHead) LoadHead(context.Context) (audit.Head, error)   { return o.h, nil }
