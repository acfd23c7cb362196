package bastion

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/bastion-dev/bastion/audit"
	"github.com/bastion-dev/bastion/recordings"
	"github.com/bastion-dev/bastion/store"
)

// SessionStore is what the SSH server needs of the store: a mirror of each
// session and of its command index (the recording's <id>.index.json), so
// that sessions and commands can be found without reading every recording.
// *store.Store implements it.
type SessionStore interface {
	StartSession(ctx context.Context, s store.Session) error
	EndSession(ctx context.Context, id string, ended time.Time, exit int) error
	AddCommand(ctx context.Context, c store.Command) error
	EndCommand(ctx context.Context, sessionID string, n, exit int, duration float64) error
	SealRecording(ctx context.Context, seal store.RecordingSeal) error
}

// errStoreFailed ends a session whose index could not be written to the
// store: no command runs that the store does not know about.
var errStoreFailed = errors.New("the session index could not be written to the store")

// storeTimeout bounds one write to the store (SQLite itself waits up to
// 10s for a lock).
const storeTimeout = 15 * time.Second

// storeCtx is the context of a store write. It outlives the session's
// context, so that the end of a session whose client went away is still
// written.
func (sess *session) storeCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(sess.ctx), storeTimeout)
}

// indexStore is where the session's index is mirrored: nil when the
// server has no store, or when the session has no recording to mirror
// (only the benchmark of recording's cost runs one; see export_test.go).
func (sess *session) indexStore() SessionStore {
	if sess.rec == nil {
		return nil
	}
	return sess.srv.Sessions
}

// indexStart mirrors a session whose recording has just been created. On
// an error the session must not run.
func (sess *session) indexStart(h recordings.Header, started time.Time) error {
	st := sess.indexStore()
	if st == nil {
		return nil
	}
	path := sess.rec.Path()
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	m := h.Bastion
	// h.Command is masked, as in the recording's header.
	row := store.Session{ID: sess.id, Identity: m.Identity, CertSerial: m.CertSerial, KeyID: m.KeyID, Principal: m.Principal,
		Source: m.Source, Target: m.Target, Reason: m.Reason, Command: h.Command, Recording: path, Started: started.UTC()}
	ctx, cancel := sess.storeCtx()
	defer cancel()
	if err := st.StartSession(ctx, row); err != nil {
		sess.storeFailed(storeFailure{Op: "start session", Err: err})
		return err
	}
	return nil
}

// indexCommand mirrors the command the recording has just decided, before
// it runs. On an error the command must not run.
func (sess *session) indexCommand(ref recordings.CommandRef) error {
	st := sess.indexStore()
	if st == nil {
		return nil
	}
	e, ok := sess.rec.Entry(ref)
	if !ok {
		err := fmt.Errorf("the recording has no command %d", ref.N)
		sess.storeFailed(storeFailure{Op: "add command", Err: err, N: &ref.N})
		return err
	}
	ctx, cancel := sess.storeCtx()
	defer cancel()
	err := st.AddCommand(ctx, store.Command{SessionID: sess.id, N: e.N, Offset: e.Offset, Line: e.Line, Cmd: e.Cmd,
		Decision: e.Decision, Rule: e.Rule, Started: sess.recStart.Add(seconds(e.Offset)).UTC()})
	if err != nil {
		sess.storeFailed(storeFailure{Op: "add command", Err: err, N: &e.N, Command: e.Cmd})
		return err
	}
	return nil
}

// indexCommandEnd mirrors the end of a command. A failure is logged and
// audited, and ends the session: later commands would run unindexed.
func (sess *session) indexCommandEnd(ref recordings.CommandRef, code int) {
	st := sess.indexStore()
	if st == nil || sess.storeBroken() {
		return
	}
	// The recording's own duration, so that the store matches the index
	// file; the clock's if the recording could not record the end.
	e, ok := sess.rec.Entry(ref)
	dur := sess.srv.Clock().Sub(sess.recStart).Seconds() - e.Offset
	if ok && e.Exit != nil {
		dur = e.Duration
	}
	ctx, cancel := sess.storeCtx()
	defer cancel()
	if err := st.EndCommand(ctx, sess.id, ref.N, code, dur); err != nil {
		sess.storeFailed(storeFailure{Op: "end command", Err: err, N: &ref.N, Exit: &code})
		sess.cancel(errStoreFailed)
	}
}

// indexEnd mirrors the end of the session. A failure is logged and
// audited; the session is over either way.
func (sess *session) indexEnd(code int) {
	st := sess.indexStore()
	if st == nil {
		return
	}
	ctx, cancel := sess.storeCtx()
	defer cancel()
	if err := st.EndSession(ctx, sess.id, sess.srv.Clock().UTC(), code); err != nil {
		sess.storeFailed(storeFailure{Op: "end session", Err: err, Exit: &code})
	}
	// The seal, kept apart from the recording: found later without it, the
	// recording was cut, not ended abnormally (recordings.VerifySession).
	if seal, ok := sess.rec.Sealed(); ok {
		err := st.SealRecording(ctx, store.RecordingSeal{SessionID: sess.id, Lines: seal.Lines, SHA256: seal.SHA256, Sealed: sess.srv.Clock().UTC()})
		if err != nil {
			sess.storeFailed(storeFailure{Op: "seal recording", Err: err})
		}
	}
}

// storeFailed remembers the first failed store write of the session (no
// command is decided after it), logs it and audits it.
func (sess *session) storeFailed(f storeFailure) {
	sess.mu.Lock()
	if sess.storeErr == nil {
		sess.storeErr = f.Err
	}
	sess.mu.Unlock()
	sess.srv.Logger.Error("session store write failed", "session", sess.id, "op", f.Op, "err", f.Err)
	sess.srv.audit(sess.event(audit.StoreFailed, f))
}

// storeBroken reports whether a store write of this session has failed.
func (sess *session) storeBroken() bool {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.storeErr != nil
}

func seconds(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }
