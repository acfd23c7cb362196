package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/bastion-dev/bastion/identity"
)

// sessionsMigration mirrors each session and its command index (the
// recording's <id>.index.json) so that sessions and commands can be found
// without reading every recording. The recording stays the record of truth.
//
// A session's command and denial counts are not columns: they are counted
// from commands when read, so they cannot disagree with them. Command text
// is searched through an FTS5 trigram index (commands_fts, kept in step by
// triggers), which answers substring queries of three characters or more
// without scanning every command; its integer key is commands.id, declared
// so that VACUUM cannot renumber it.
const sessionsMigration = `CREATE TABLE sessions (
		id          TEXT PRIMARY KEY,
		kind        TEXT NOT NULL,
		subject     TEXT NOT NULL,
		issuer      TEXT NOT NULL,
		identity    TEXT NOT NULL,
		provenance  TEXT NOT NULL,
		cert_serial TEXT NOT NULL,
		key_id      TEXT NOT NULL,
		principal   TEXT NOT NULL,
		source      TEXT NOT NULL,
		target      TEXT NOT NULL,
		reason      TEXT NOT NULL,
		command     TEXT NOT NULL,
		recording   TEXT NOT NULL,
		started     INTEGER NOT NULL,
		ended       INTEGER,
		exit        INTEGER
	);
	CREATE INDEX sessions_started ON sessions(started);
	CREATE INDEX sessions_subject ON sessions(subject, started);
	CREATE INDEX sessions_identity ON sessions(identity, started);
	CREATE TABLE commands (
		id         INTEGER PRIMARY KEY,
		session_id TEXT NOT NULL REFERENCES sessions(id),
		n          INTEGER NOT NULL,
		offset_s   REAL NOT NULL,
		line       INTEGER NOT NULL,
		cmd        TEXT NOT NULL,
		decision   TEXT NOT NULL COLLATE NOCASE,
		rule       TEXT NOT NULL,
		exit       INTEGER,
		duration   REAL,
		started    INTEGER NOT NULL,
		UNIQUE (session_id, n)
	);
	CREATE INDEX commands_decision ON commands(decision, started);
	CREATE INDEX commands_started ON commands(started);
	CREATE VIRTUAL TABLE commands_fts USING fts5(cmd, content='commands', content_rowid='id', tokenize='trigram case_sensitive 0');
	CREATE TRIGGER commands_fts_insert AFTER INSERT ON commands BEGIN
		INSERT INTO commands_fts(rowid, cmd) VALUES (new.id, new.cmd);
	END;
	CREATE TRIGGER commands_fts_delete AFTER DELETE ON commands BEGIN
		INSERT INTO commands_fts(commands_fts, rowid, cmd) VALUES ('delete', old.id, old.cmd);
	END;
	CREATE TRIGGER commands_fts_update AFTER UPDATE OF cmd ON commands WHEN old.cmd IS NOT new.cmd BEGIN
		INSERT INTO commands_fts(commands_fts, rowid, cmd) VALUES ('delete', old.id, old.cmd);
		INSERT INTO commands_fts(rowid, cmd) VALUES (new.id, new.cmd);
	END;`

// Session is a recorded session as the store mirrors it.
type Session struct {
	ID         string
	Identity   identity.Provenance
	CertSerial uint64
	KeyID      string
	Principal  string
	Source     string
	Target     string // the database target of a tunnel; empty otherwise
	Reason     string // the agent's BASTION_REASON
	Command    string // the exec command, masked; empty for a shell
	Recording  string // path of the .cast file
	Started    time.Time
	Ended      time.Time // zero while the session runs, or if it never ended cleanly
	Exit       *int      // the session's exit code; nil until it ends
	// Commands and Denied are counted from the session's commands by the
	// readers; writers ignore them.
	Commands int
	Denied   int
}

// Command is one command of a session's index.
type Command struct {
	SessionID string
	N         int     // 1-based number in the session
	Offset    float64 // seconds from the start of the recording
	Line      int     // line of the command marker in the recording
	Cmd       string  // masked, as recorded
	Decision  string  // allow, approve or deny
	Rule      string
	// Exit is nil until the command ends (or if it never did).
	Exit     *int
	Duration float64 // seconds; zero until the command ends
	Started  time.Time
}

// SessionFilter selects sessions (Sessions) or commands (SearchCommands).
// Zero fields match everything.
type SessionFilter struct {
	// Subject matches the identity's subject or its "kind:sub@issuer" form.
	Subject string
	// Since and Until bound the session's start for Sessions and the
	// command's time for SearchCommands: at or after Since, before Until.
	Since, Until time.Time
	// Decision (case-insensitive) selects, for Sessions, the sessions with
	// at least one command so decided; for SearchCommands, the commands.
	Decision string
}

// CommandMatch is a command found by SearchCommands, with its session.
type CommandMatch struct {
	Command
	Session Session
}

// StartSession records a session that has just started. Writing a session
// that is already there (rebuilt from its recording by Reindex meanwhile)
// updates it.
func (s *Store) StartSession(ctx context.Context, sess Session) error {
	if err := upsertSession(ctx, s.db, sess); err != nil {
		return fmt.Errorf("record session %s: %w", sess.ID, err)
	}
	return nil
}

// EndSession records a session's end and exit code.
func (s *Store) EndSession(ctx context.Context, id string, ended time.Time, exit int) error {
	res, err := s.db.ExecContext(ctx, `UPDATE sessions SET ended = ?, exit = ? WHERE id = ?`, unix(ended), exit, id)
	if err != nil {
		return fmt.Errorf("record end of session %s: %w", id, err)
	}
	return affectedOne(res, "session "+id)
}

// AddCommand records a decided command before it runs. The session must
// have been started.
func (s *Store) AddCommand(ctx context.Context, c Command) error {
	if err := upsertCommand(ctx, s.db, c); err != nil {
		return fmt.Errorf("record command %d of session %s: %w", c.N, c.SessionID, err)
	}
	return nil
}

// EndCommand records a command's exit code and duration in seconds.
func (s *Store) EndCommand(ctx context.Context, sessionID string, n, exit int, duration float64) error {
	res, err := s.db.ExecContext(ctx, `UPDATE commands SET exit = ?, duration = ? WHERE session_id = ? AND n = ?`,
		exit, duration, sessionID, n)
	if err != nil {
		return fmt.Errorf("record end of command %d of session %s: %w", n, sessionID, err)
	}
	return affectedOne(res, fmt.Sprintf("command %d of session %s", n, sessionID))
}

// PutSession writes a session and its commands as read from a recording,
// in one transaction; writing the same session again changes nothing.
// What the recording does not know yet (the end of a live session or
// command) never overwrites what the store knows.
func (s *Store) PutSession(ctx context.Context, sess Session, cmds []Command) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("index session %s: %w", sess.ID, err)
	}
	defer tx.Rollback()
	if err := upsertSession(ctx, tx, sess); err != nil {
		return fmt.Errorf("index session %s: %w", sess.ID, err)
	}
	for _, c := range cmds {
		if c.SessionID != sess.ID {
			return fmt.Errorf("index session %s: command %d belongs to session %q", sess.ID, c.N, c.SessionID)
		}
		if err := upsertCommand(ctx, tx, c); err != nil {
			return fmt.Errorf("index session %s: command %d: %w", sess.ID, c.N, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("index session %s: %w", sess.ID, err)
	}
	return nil
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func upsertSession(ctx context.Context, db execer, sess Session) error {
	if sess.ID == "" {
		return errors.New("empty session id")
	}
	prov, err := json.Marshal(sess.Identity)
	if err != nil {
		return err
	}
	var ended, exit sql.NullInt64
	if !sess.Ended.IsZero() {
		ended = sql.NullInt64{Int64: unix(sess.Ended), Valid: true}
	}
	if sess.Exit != nil {
		exit = sql.NullInt64{Int64: int64(*sess.Exit), Valid: true}
	}
	p := sess.Identity
	_, err = db.ExecContext(ctx, `INSERT INTO sessions
		(id, kind, subject, issuer, identity, provenance, cert_serial, key_id, principal, source, target, reason, command, recording, started, ended, exit)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT (id) DO UPDATE SET
			kind = excluded.kind, subject = excluded.subject, issuer = excluded.issuer, identity = excluded.identity,
			provenance = excluded.provenance, cert_serial = excluded.cert_serial, key_id = excluded.key_id,
			principal = excluded.principal, source = excluded.source, target = excluded.target, reason = excluded.reason,
			command = excluded.command, recording = excluded.recording, started = excluded.started,
			ended = COALESCE(excluded.ended, sessions.ended), exit = COALESCE(excluded.exit, sessions.exit)`,
		sess.ID, string(p.Kind), p.Subject, p.Issuer, p.String(), string(prov), strconv.FormatUint(sess.CertSerial, 10),
		sess.KeyID, sess.Principal, sess.Source, sess.Target, sess.Reason, sess.Command, sess.Recording,
		unix(sess.Started), ended, exit)
	return err
}

func upsertCommand(ctx context.Context, db execer, c Command) error {
	if c.N < 1 {
		return fmt.Errorf("command number %d, want 1 or more", c.N)
	}
	var exit sql.NullInt64
	var dur sql.NullFloat64
	if c.Exit != nil {
		exit = sql.NullInt64{Int64: int64(*c.Exit), Valid: true}
		dur = sql.NullFloat64{Float64: c.Duration, Valid: true}
	}
	_, err := db.ExecContext(ctx, `INSERT INTO commands
		(session_id, n, offset_s, line, cmd, decision, rule, exit, duration, started)
		VALUES (?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT (session_id, n) DO UPDATE SET
			offset_s = excluded.offset_s, line = excluded.line, cmd = excluded.cmd, decision = excluded.decision,
			rule = excluded.rule, started = excluded.started,
			exit = COALESCE(excluded.exit, commands.exit),
			duration = CASE WHEN excluded.exit IS NULL THEN commands.duration ELSE excluded.duration END`,
		c.SessionID, c.N, c.Offset, c.Line, c.Cmd, c.Decision, c.Rule, exit, dur, unix(c.Started))
	return err
}

func affectedOne(res sql.Result, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return nil
}

// sessionColumns ends with the session's command and denial counts; the
// unary + keeps the planner on the (session_id, n) index rather than
// walking every denied command of every session.
const sessionColumns = `s.id, s.provenance, s.cert_serial, s.key_id, s.principal, s.source, s.target, s.reason, s.command,
	s.recording, s.started, s.ended, s.exit,
	(SELECT COUNT(*) FROM commands k WHERE k.session_id = s.id),
	(SELECT COUNT(*) FROM commands k WHERE k.session_id = s.id AND +k.decision = 'deny')`

func scanSession(row scanner, extra ...any) (Session, error) {
	var (
		sess          Session
		prov, serial  string
		started       int64
		ended, exit   sql.NullInt64
		commands, den int
	)
	dst := append([]any{&sess.ID, &prov, &serial, &sess.KeyID, &sess.Principal, &sess.Source, &sess.Target, &sess.Reason,
		&sess.Command, &sess.Recording, &started, &ended, &exit, &commands, &den}, extra...)
	if err := row.Scan(dst...); err != nil {
		return sess, err
	}
	if err := json.Unmarshal([]byte(prov), &sess.Identity); err != nil {
		return sess, fmt.Errorf("bad identity for session %s: %w", sess.ID, err)
	}
	var err error
	if sess.CertSerial, err = strconv.ParseUint(serial, 10, 64); err != nil {
		return sess, fmt.Errorf("bad serial %q for session %s: %w", serial, sess.ID, err)
	}
	sess.Started = fromUnix(started)
	if ended.Valid {
		sess.Ended = fromUnix(ended.Int64)
	}
	if exit.Valid {
		x := int(exit.Int64)
		sess.Exit = &x
	}
	sess.Commands, sess.Denied = commands, den
	return sess, nil
}

// Session returns one session, or an error matching ErrNotFound.
func (s *Store) Session(ctx context.Context, id string) (Session, error) {
	sess, err := scanSession(s.db.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM sessions s WHERE s.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return sess, fmt.Errorf("session %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return sess, fmt.Errorf("session %s: %w", id, err)
	}
	return sess, nil
}

// Sessions lists the sessions that match f, newest first.
func (s *Store) Sessions(ctx context.Context, f SessionFilter) ([]Session, error) {
	where, args := f.sessionWhere("s.started")
	if f.Decision != "" {
		where = append(where, `EXISTS (SELECT 1 FROM commands k WHERE k.session_id = s.id AND k.decision = ?)`)
		args = append(args, f.Decision)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+sessionColumns+` FROM sessions s`+and(where)+` ORDER BY s.started DESC, s.id DESC`, args...)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	defer rows.Close()
	out := []Session{}
	for rows.Next() {
		sess, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("list sessions: %w", err)
		}
		out = append(out, sess)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	return out, nil
}

const commandColumns = `c.session_id, c.n, c.offset_s, c.line, c.cmd, c.decision, c.rule, c.exit, c.duration, c.started`

func commandDest(c *Command, exit *sql.NullInt64, dur *sql.NullFloat64, started *int64) []any {
	return []any{&c.SessionID, &c.N, &c.Offset, &c.Line, &c.Cmd, &c.Decision, &c.Rule, exit, dur, started}
}

func fillCommand(c *Command, exit sql.NullInt64, dur sql.NullFloat64, started int64) {
	if exit.Valid {
		x := int(exit.Int64)
		c.Exit = &x
	}
	c.Duration = dur.Float64
	c.Started = fromUnix(started)
}

// SessionCommands returns a session's commands in order; none (and no
// error) for a session the store does not have.
func (s *Store) SessionCommands(ctx context.Context, id string) ([]Command, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+commandColumns+` FROM commands c WHERE c.session_id = ? ORDER BY c.n`, id)
	if err != nil {
		return nil, fmt.Errorf("commands of session %s: %w", id, err)
	}
	defer rows.Close()
	out := []Command{}
	for rows.Next() {
		var (
			c       Command
			exit    sql.NullInt64
			dur     sql.NullFloat64
			started int64
		)
		if err := rows.Scan(commandDest(&c, &exit, &dur, &started)...); err != nil {
			return nil, fmt.Errorf("commands of session %s: %w", id, err)
		}
		fillCommand(&c, exit, dur, started)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("commands of session %s: %w", id, err)
	}
	return out, nil
}

// SearchCommands finds the commands that contain text, ignoring ASCII case
// (as recordings.Search does), newest session first and in order within a
// session.
func (s *Store) SearchCommands(ctx context.Context, text string, f SessionFilter) ([]CommandMatch, error) {
	if text == "" {
		return nil, errors.New("search commands: empty text")
	}
	// The trigram index narrows the candidates: LIKE on commands_fts uses
	// it for the runs of three characters or more in the pattern, but not
	// with an ESCAPE clause, so '%' and '_' in text become '_' (any one
	// character) and the candidates a superset. instr over lower() then
	// decides, which is ASCII case folding exactly.
	where, args := f.sessionWhere("c.started")
	where = append([]string{`c.id IN (SELECT rowid FROM commands_fts WHERE cmd LIKE ?)`,
		`instr(lower(c.cmd), lower(?)) > 0`}, where...)
	args = append([]any{"%" + likeWildcards.Replace(text) + "%", text}, args...)
	if f.Decision != "" {
		where = append(where, `c.decision = ?`)
		args = append(args, f.Decision)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+sessionColumns+`, `+commandColumns+`
		FROM commands c JOIN sessions s ON s.id = c.session_id`+and(where)+`
		ORDER BY s.started DESC, s.id DESC, c.n`, args...)
	if err != nil {
		return nil, fmt.Errorf("search commands: %w", err)
	}
	defer rows.Close()
	out := []CommandMatch{}
	for rows.Next() {
		var (
			m       CommandMatch
			exit    sql.NullInt64
			dur     sql.NullFloat64
			started int64
		)
		sess, err := scanSession(rows, commandDest(&m.Command, &exit, &dur, &started)...)
		if err != nil {
			return nil, fmt.Errorf("search commands: %w", err)
		}
		fillCommand(&m.Command, exit, dur, started)
		m.Session = sess
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("search commands: %w", err)
	}
	return out, nil
}

// sessionWhere returns the conditions on subject and time; timeCol is the
// column Since and Until bound.
func (f SessionFilter) sessionWhere(timeCol string) ([]string, []any) {
	var where []string
	var args []any
	if f.Subject != "" {
		where = append(where, `(s.subject = ? OR s.identity = ?)`)
		args = append(args, f.Subject, f.Subject)
	}
	if !f.Since.IsZero() {
		where = append(where, timeCol+` >= ?`)
		args = append(args, unix(f.Since))
	}
	if !f.Until.IsZero() {
		where = append(where, timeCol+` < ?`)
		args = append(args, unix(f.Until))
	}
	return where, args
}

func and(where []string) string {
	if len(where) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(where, " AND ")
}

// likeWildcards turns LIKE's wildcards into its any-one-character one.
var likeWildcards = strings.NewReplacer("%", "_")
