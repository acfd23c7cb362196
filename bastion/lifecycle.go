package bastion

import (
	"github.com/bastion-dev/bastion/audit"
	"github.com/bastion-dev/bastion/recordings"
)

// lifecycle is one session's evidence from its start to its end: the
// recording, its rows in the store's session index, and the audit start
// and end events. Exec, shell and database sessions all open one before
// anything of theirs runs, and close it last.
//
// The fail-closed rule lives here: open writes all three or none (it
// unwinds what it wrote), and a session whose lifecycle did not open does
// not run. What a session does between the two (commands, lines,
// statements) is decided and recorded by the gate (gate.go).
type lifecycle struct {
	sess   *session
	target string // database sessions: repeated in the end event
}

// createRecording opens a session's recording. It is a variable only so
// that a benchmark can measure what recording costs (export_test.go);
// bastion itself never runs a session without one.
var createRecording = recordings.Create

// open creates sess's recording with header h, mirrors it in the store and
// audits start. An error (errRecordingFailed or errStoreFailed, for
// refuseUnrecorded) means the session must not run; open has already
// closed the recording and ended the store's row.
func (sess *session) open(h recordings.Header, start sessionStarted) (*lifecycle, error) {
	s := sess.srv
	sess.recStart = s.Clock()
	rec, err := createRecording(s.RecordingsDir, h, recordings.Options{Clock: s.Clock, Signer: s.RecordingKey})
	if err != nil {
		s.Logger.Error("recording unavailable", "session", sess.id, "err", err)
		return nil, errRecordingFailed
	}
	sess.rec = rec
	if err := sess.indexStart(h, sess.recStart); err != nil {
		rec.Close(ExitRecordingUnavailable)
		return nil, errStoreFailed
	}
	if err := s.audit(sess.event(audit.SessionStart, start)); err != nil {
		rec.Close(ExitRecordingUnavailable)
		sess.indexEnd(ExitRecordingUnavailable)
		return nil, errRecordingFailed
	}
	return &lifecycle{sess: sess, target: start.Target}, nil
}

// close seals the recording with the session's exit code, mirrors the end
// in the store and audits it with cause (nil: the session ended by
// itself). The session is over either way: failures are logged and
// audited, not returned.
func (l *lifecycle) close(code int, cause error) {
	sess := l.sess
	if err := sess.rec.Close(code); err != nil {
		sess.srv.Logger.Error("closing recording", "session", sess.id, "err", err)
	}
	sess.indexEnd(code)
	end := sessionEnded{Exit: code, Target: l.target}
	if cause != nil {
		end.Cause = cause.Error()
	}
	sess.srv.audit(sess.event(audit.SessionEnd, end))
}

// header is the recording header of an exec or shell session. The command
// is masked, as in its marker: a secret typed in it must not reach the
// recording.
func (sess *session) header() recordings.Header {
	s := sess.srv
	h := recordings.Header{Width: 80, Height: 24, Timestamp: s.Clock().Unix(), Command: s.Masker.String(sess.command),
		Env: map[string]string{"SHELL": s.cfg.Exec.Shell}, Title: "bastion session " + sess.id, Bastion: sess.meta("")}
	sess.mu.Lock()
	if p := sess.pty; p != nil {
		h.Width, h.Height, h.Env["TERM"] = p.win.cols, p.win.rows, p.term
	}
	sess.mu.Unlock()
	return h
}

// meta is what a recording header says of the session: who, from where,
// why, and the database target if any.
func (sess *session) meta(target string) recordings.Meta {
	id := sess.ident
	m := recordings.Meta{SessionID: sess.id, Identity: id.Provenance, CertSerial: id.Serial, KeyID: id.KeyID,
		Principal: id.Principal, Source: sess.source, Target: target}
	if target == "" {
		m.Reason = sess.agentReason()
	}
	return m
}

// startDetail is the audit detail of the session's start.
func (sess *session) startDetail() sessionStarted {
	d := sessionStarted{Kind: sess.kind, Principal: sess.ident.Principal, Serial: sess.ident.Serial, Reason: sess.agentReason()}
	if sess.kind == "exec" {
		d.Command = sess.srv.Masker.String(sess.command)
	}
	return d
}
