package store

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/identity"
	"github.com/google/go-cmp/cmp"
)

func intp(i int) *int { return &i }

// seedSessions writes three sessions: s1 (an agent, ended, three commands
// of which one denied), s2 (a human, live, one command not ended) and s3
// (an agent with no command).
func seedSessions(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	agent := identity.Provenance{Kind: identity.KindAgent, Subject: "deploy-bot", Issuer: "https://idp", Role: "ops", Task: "JIRA-1"}
	human := identity.Provenance{Kind: identity.KindHuman, Subject: "alice", Issuer: "https://idp"}
	for _, sess := range []Session{
		{ID: "s1", Identity: agent, CertSerial: 1<<63 + 9, KeyID: "agent:deploy-bot@https://idp", Principal: "deploy",
			Source: "10.0.0.7", Reason: "deploy the fix", Recording: "/data/recordings/s1.cast", Started: t0},
		{ID: "s2", Identity: human, Principal: "ops", Source: "10.0.0.8", Command: "tail -f /var/log/syslog",
			Recording: "/data/recordings/s2.cast", Started: t0.Add(time.Hour)},
		{ID: "s3", Identity: agent, Principal: "deploy", Target: "orders", Recording: "/data/recordings/s3.cast", Started: t0.Add(2 * time.Hour)},
	} {
		if err := s.StartSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []Command{
		{SessionID: "s1", N: 1, Offset: 0.75, Line: 4, Cmd: "ls -la /srv/App_1", Decision: "allow", Rule: "default-allow", Started: t0.Add(750 * time.Millisecond)},
		{SessionID: "s1", N: 2, Offset: 3, Line: 13, Cmd: "rm -rf /", Decision: "deny", Rule: "no-rm", Started: t0.Add(3 * time.Second)},
		{SessionID: "s1", N: 3, Offset: 5, Line: 20, Cmd: `echo 100% done \o/ café`, Decision: "allow", Rule: "default-allow", Started: t0.Add(5 * time.Second)},
		{SessionID: "s2", N: 1, Offset: 1, Line: 3, Cmd: "tail -f /var/log/syslog", Decision: "allow", Started: t0.Add(time.Hour + time.Second)},
	} {
		if err := s.AddCommand(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range []struct {
		n, exit int
		d       float64
	}{{1, 0, 1.25}, {2, 210, 0}, {3, 0, 0.5}} {
		if err := s.EndCommand(ctx, "s1", e.n, e.exit, e.d); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.EndSession(ctx, "s1", t0.Add(6*time.Second), 1); err != nil {
		t.Fatal(err)
	}
}

func TestSessionRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openTest(t)
	seedSessions(t, s)
	got, err := s.Session(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	want := Session{ID: "s1", Identity: identity.Provenance{Kind: identity.KindAgent, Subject: "deploy-bot", Issuer: "https://idp", Role: "ops", Task: "JIRA-1"},
		CertSerial: 1<<63 + 9, KeyID: "agent:deploy-bot@https://idp", Principal: "deploy", Source: "10.0.0.7", Reason: "deploy the fix",
		Recording: "/data/recordings/s1.cast", Started: t0, Ended: t0.Add(6 * time.Second), Exit: intp(1), Commands: 3, Denied: 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("session (-want +got):\n%s", diff)
	}
	live, err := s.Session(ctx, "s2")
	if err != nil || !live.Ended.IsZero() || live.Exit != nil || live.Commands != 1 || live.Denied != 0 {
		t.Fatalf("live session = %+v, %v", live, err)
	}
	cmds, err := s.SessionCommands(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	wantCmds := []Command{
		{SessionID: "s1", N: 1, Offset: 0.75, Line: 4, Cmd: "ls -la /srv/App_1", Decision: "allow", Rule: "default-allow", Exit: intp(0), Duration: 1.25, Started: t0.Add(750 * time.Millisecond)},
		{SessionID: "s1", N: 2, Offset: 3, Line: 13, Cmd: "rm -rf /", Decision: "deny", Rule: "no-rm", Exit: intp(210), Started: t0.Add(3 * time.Second)},
		{SessionID: "s1", N: 3, Offset: 5, Line: 20, Cmd: `echo 100% done \o/ café`, Decision: "allow", Rule: "default-allow", Exit: intp(0), Duration: 0.5, Started: t0.Add(5 * time.Second)},
	}
	if diff := cmp.Diff(wantCmds, cmds); diff != "" {
		t.Fatalf("commands (-want +got):\n%s", diff)
	}
	if cmds, err := s.SessionCommands(ctx, "nope"); err != nil || len(cmds) != 0 {
		t.Fatalf("commands of an unknown session = %v, %v", cmds, err)
	}
	if _, err := s.Session(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown session: err = %v, want ErrNotFound", err)
	}
}

func TestSessionsFilter(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	seedSessions(t, s)
	for _, tc := range []struct {
		name string
		f    SessionFilter
		want []string
	}{
		{"all, newest first", SessionFilter{}, []string{"s3", "s2", "s1"}},
		{"subject", SessionFilter{Subject: "deploy-bot"}, []string{"s3", "s1"}},
		{"identity form", SessionFilter{Subject: "human:alice@https://idp"}, []string{"s2"}},
		{"unknown subject", SessionFilter{Subject: "nobody"}, []string{}},
		{"since", SessionFilter{Since: t0.Add(time.Hour)}, []string{"s3", "s2"}},
		{"until is exclusive", SessionFilter{Until: t0.Add(time.Hour)}, []string{"s1"}},
		{"window", SessionFilter{Since: t0.Add(time.Minute), Until: t0.Add(90 * time.Minute)}, []string{"s2"}},
		{"decision, any case", SessionFilter{Decision: "DENY"}, []string{"s1"}},
		{"decision allow", SessionFilter{Decision: "allow"}, []string{"s2", "s1"}},
		{"decision and subject", SessionFilter{Decision: "allow", Subject: "alice"}, []string{"s2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			list, err := s.Sessions(context.Background(), tc.f)
			if err != nil {
				t.Fatal(err)
			}
			got := []string{}
			for _, sess := range list {
				got = append(got, sess.ID)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestSearchCommands(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	seedSessions(t, s)
	for _, tc := range []struct {
		name string
		text string
		f    SessionFilter
		want []string // session/n
	}{
		{"substring", "rf /", SessionFilter{}, []string{"s1/2"}},
		{"ASCII case ignored", "LS -LA /SRV/app", SessionFilter{}, []string{"s1/1"}},
		{"newest session first", "-", SessionFilter{}, []string{"s2/1", "s1/1", "s1/2"}},
		{"two characters", "rm", SessionFilter{}, []string{"s1/2"}},
		{"one character", "/", SessionFilter{}, []string{"s2/1", "s1/1", "s1/2", "s1/3"}},
		{"percent is literal", "100%", SessionFilter{}, []string{"s1/3"}},
		{"lone percent", "%", SessionFilter{}, []string{"s1/3"}},
		{"underscore is literal", "p_1", SessionFilter{}, []string{"s1/1"}},
		{"underscore matches no other character", "ls_", SessionFilter{}, []string{}},
		{"backslash is literal", `\o/`, SessionFilter{}, []string{"s1/3"}},
		{"non-ASCII matches exactly", "café", SessionFilter{}, []string{"s1/3"}},
		{"non-ASCII case is not folded", "CAFÉ", SessionFilter{}, []string{}},
		{"no match", "shutdown", SessionFilter{}, []string{}},
		{"decision", "/", SessionFilter{Decision: "Deny"}, []string{"s1/2"}},
		{"subject", "/", SessionFilter{Subject: "alice"}, []string{"s2/1"}},
		{"command time", "/", SessionFilter{Since: t0.Add(2 * time.Second), Until: t0.Add(time.Hour)}, []string{"s1/2", "s1/3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := s.SearchCommands(context.Background(), tc.text, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			got := []string{}
			for _, m := range ms {
				if m.Session.ID != m.SessionID {
					t.Errorf("match of session %s carries session %s", m.SessionID, m.Session.ID)
				}
				got = append(got, m.SessionID+"/"+string(rune('0'+m.N)))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
	ms, err := s.SearchCommands(context.Background(), "rm -rf", SessionFilter{})
	if err != nil || len(ms) != 1 {
		t.Fatalf("rm -rf: %v, %v", ms, err)
	}
	m := ms[0]
	if m.Line != 13 || m.Offset != 3 || m.Rule != "no-rm" || m.Exit == nil || *m.Exit != 210 ||
		m.Session.Principal != "deploy" || m.Session.Commands != 3 || !m.Session.Started.Equal(t0) {
		t.Fatalf("match = %+v", m)
	}
	if _, err := s.SearchCommands(context.Background(), "", SessionFilter{}); err == nil {
		t.Fatal("searching for an empty text succeeded")
	}
}

// TestPutSession: rebuilding from a recording is idempotent, fills in what
// the store lacks, and never erases an end the store already knows.
func TestPutSession(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openTest(t)
	sess := Session{ID: "r1", Identity: identity.Provenance{Kind: identity.KindAgent, Subject: "ci"}, Recording: "/r/r1.cast", Started: t0,
		Ended: t0.Add(time.Minute), Exit: intp(0)}
	cmds := []Command{
		{SessionID: "r1", N: 1, Offset: 1, Line: 3, Cmd: "make test", Decision: "allow", Exit: intp(0), Duration: 40, Started: t0.Add(time.Second)},
		{SessionID: "r1", N: 2, Offset: 50, Line: 9, Cmd: "git push --force", Decision: "deny", Rule: "no-force-push", Exit: intp(210), Started: t0.Add(50 * time.Second)},
	}
	for range 2 {
		if err := s.PutSession(ctx, sess, cmds); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.SessionCommands(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(cmds, got); diff != "" {
		t.Fatalf("after two writes (-want +got):\n%s", diff)
	}
	if ms, err := s.SearchCommands(ctx, "make", SessionFilter{}); err != nil || len(ms) != 1 {
		t.Fatalf("search after two writes: %d matches, %v; want 1", len(ms), err)
	}

	// A copy read from the recording while the session was live knows
	// neither its end nor the second command's.
	early := sess
	early.Ended, early.Exit = time.Time{}, nil
	earlyCmds := append([]Command{}, cmds...)
	earlyCmds[1].Exit, earlyCmds[1].Duration = nil, 0
	if err := s.PutSession(ctx, early, earlyCmds); err != nil {
		t.Fatal(err)
	}
	gotSess, err := s.Session(ctx, "r1")
	if err != nil || !gotSess.Ended.Equal(sess.Ended) || gotSess.Exit == nil || *gotSess.Exit != 0 {
		t.Fatalf("session end erased: %+v, %v", gotSess, err)
	}
	if got, _ := s.SessionCommands(ctx, "r1"); got[1].Exit == nil || *got[1].Exit != 210 {
		t.Fatalf("command end erased: %+v", got[1])
	}

	// A changed command text is what search finds afterwards.
	changed := append([]Command{}, cmds...)
	changed[0].Cmd = "make lint"
	if err := s.PutSession(ctx, sess, changed); err != nil {
		t.Fatal(err)
	}
	if ms, _ := s.SearchCommands(ctx, "make test", SessionFilter{}); len(ms) != 0 {
		t.Fatalf("old text still found: %+v", ms)
	}
	if ms, _ := s.SearchCommands(ctx, "make lint", SessionFilter{}); len(ms) != 1 {
		t.Fatalf("new text not found: %+v", ms)
	}

	// A command of another session is refused, and nothing is written.
	bad := []Command{{SessionID: "other", N: 1, Cmd: "x", Decision: "allow"}}
	if err := s.PutSession(ctx, Session{ID: "r2", Started: t0}, bad); err == nil {
		t.Fatal("a command of another session was accepted")
	}
	if _, err := s.Session(ctx, "r2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a refused PutSession left its session: %v", err)
	}
}

// TestSessionWriteErrors: writes that cannot apply say so.
func TestSessionWriteErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openTest(t)
	seedSessions(t, s)
	for _, tc := range []struct {
		name     string
		err      error
		notFound bool
	}{
		{"end of an unknown session", s.EndSession(ctx, "nope", t0, 0), true},
		{"end of an unknown command", s.EndCommand(ctx, "s1", 9, 0, 1), true},
		{"end of a command of an unknown session", s.EndCommand(ctx, "nope", 1, 0, 1), true},
		{"command of an unknown session", s.AddCommand(ctx, Command{SessionID: "nope", N: 1, Cmd: "ls", Decision: "allow"}), false},
		{"command number 0", s.AddCommand(ctx, Command{SessionID: "s1", N: 0, Cmd: "ls", Decision: "allow"}), false},
		{"session without an id", s.StartSession(ctx, Session{Started: t0}), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.err == nil {
				t.Fatal("no error")
			}
			if errors.Is(tc.err, ErrNotFound) != tc.notFound {
				t.Fatalf("err = %v; matches ErrNotFound: %v, want %v", tc.err, !tc.notFound, tc.notFound)
			}
		})
	}
}

// TestClosedStore: every session method on a closed database returns its
// error rather than pretending to have written or found nothing.
func TestClosedStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := Open(filepath.Join(t.TempDir(), "closed.db"))
	if err != nil {
		t.Fatal(err)
	}
	seedSessions(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"StartSession", func() error { return s.StartSession(ctx, Session{ID: "x", Started: t0}) }},
		{"EndSession", func() error { return s.EndSession(ctx, "s1", t0, 0) }},
		{"AddCommand", func() error { return s.AddCommand(ctx, Command{SessionID: "s1", N: 4, Cmd: "ls", Decision: "allow"}) }},
		{"EndCommand", func() error { return s.EndCommand(ctx, "s1", 1, 0, 1) }},
		{"PutSession", func() error { return s.PutSession(ctx, Session{ID: "x", Started: t0}, nil) }},
		{"Session", func() error { _, err := s.Session(ctx, "s1"); return err }},
		{"Sessions", func() error { _, err := s.Sessions(ctx, SessionFilter{}); return err }},
		{"SessionCommands", func() error { _, err := s.SessionCommands(ctx, "s1"); return err }},
		{"SearchCommands", func() error { _, err := s.SearchCommands(ctx, "ls", SessionFilter{}); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if err == nil {
				t.Fatal("no error from a closed store")
			}
			if errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "closed") {
				t.Fatalf("err = %v, want the database's closed error", err)
			}
		})
	}
}

// TestMigrationToSessions: a store at schema 2, with data, gains the
// session tables and keeps its certificates.
func TestMigrationToSessions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range migrations[:2] {
		if _, err := db.Exec(m); err != nil {
			t.Fatalf("migration %d: %v", i+1, err)
		}
	}
	if _, err := db.Exec(`PRAGMA user_version = 2`); err != nil {
		t.Fatal(err)
	}
	if err := (&Store{db: db}).AddCert(ctx, Cert{Serial: 7, KeyID: "k", IssuedAt: t0, ValidAfter: t0, ValidBefore: t0}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := s.Version(ctx); err != nil || v != len(migrations) {
		t.Fatalf("version = %d, %v; want %d", v, err, len(migrations))
	}
	if _, err := s.Cert(ctx, 7); err != nil {
		t.Fatalf("certificate lost in the migration: %v", err)
	}
	seedSessions(t, s)
	if ms, err := s.SearchCommands(ctx, "rm -rf", SessionFilter{}); err != nil || len(ms) != 1 {
		t.Fatalf("search after migrating: %v, %v", ms, err)
	}
}
