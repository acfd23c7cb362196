package pgproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/bastion-dev/bastion/policy"
	"github.com/bastion-dev/bastion/shellpolicy/sqlpolicy"
)

// startup reads the client's startup packets: SSLRequest and GSSEncRequest
// are declined with 'N' (the SSH channel is already encrypted), a
// CancelRequest is handled and yields (nil, nil), and a StartupMessage is
// returned.
func (p *Proxy) startup(be *pgproto3.Backend, rd *readErr, client net.Conn, c Conn) (*pgproto3.StartupMessage, error) {
	for i := 0; ; i++ {
		msg, err := be.ReceiveStartupMessage()
		if err != nil {
			if rd.err != nil {
				return nil, err
			}
			return nil, fatal(codeProtocolViolation, "bastion: invalid startup packet", err)
		}
		switch m := msg.(type) {
		case *pgproto3.SSLRequest, *pgproto3.GSSEncRequest:
			// libpq asks for GSS encryption, then TLS, then starts.
			if i >= 2 {
				return nil, fatal(codeProtocolViolation, "bastion: too many encryption requests", nil)
			}
			if _, err := client.Write([]byte{'N'}); err != nil {
				return nil, err
			}
		case *pgproto3.CancelRequest:
			p.cancel(m, c)
			return nil, nil
		case *pgproto3.StartupMessage:
			return m, nil
		default:
			return nil, fatal(codeProtocolViolation, "bastion: unexpected startup packet", fmt.Errorf("%T", msg))
		}
	}
}

// Startup parameters that are not settings: the login (the proxy logs in
// as the target), the protocol (replication is refused, _pq_.* options
// are negotiated away in greet), and options (parsed into settings).
var loginParams = map[string]bool{"user": true, "database": true, "replication": true, "options": true}

// startupSettings returns the settings the client's startup message asks
// for, each given as a parameter or as "-c name=value" / "--name=value"
// in options, once the policy allows each as the statement
// `SET name TO 'value'` would be (a role change or a safety setting at
// startup is refused: there is no one to approve it before the session
// exists; SET it after connecting). A refused one is reported through
// hooks.Statement, like a refused statement. An unknown setting is passed
// on: the server refuses it with its own error.
func (p *Proxy) startupSettings(sm *pgproto3.StartupMessage, c Conn) (map[string]string, error) {
	settings := map[string]string{}
	names := make([]string, 0, len(sm.Parameters))
	for k := range sm.Parameters {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := sm.Parameters[k]
		switch {
		case strings.HasPrefix(k, "_pq_."), loginParams[strings.ToLower(k)]:
		default:
			settings[k] = v
		}
	}
	if opts := sm.Parameters["options"]; opts != "" {
		parsed, err := parseOptions(opts)
		if err != nil {
			return nil, err
		}
		for k, v := range parsed {
			settings[k] = v
		}
	}
	classifier := c.Classifier
	if classifier == nil {
		classifier = p.Classifier
	}
	if classifier == nil {
		classifier = sqlpolicy.Default()
	}
	names = names[:0]
	for k := range settings {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		stmt := "SET " + quoteIdent(strings.ToLower(k)) + " TO " + quoteLiteral(settings[k])
		res := classifier.Classify(stmt).Result
		if res.Decision == policy.Allow {
			continue
		}
		text := "startup parameter " + k + "=" + settings[k]
		if c.Hooks.Statement != nil {
			ev := StatementEvent{Target: p.Target.Name, Text: text, Result: res, Refused: true, Start: time.Now(),
				SQLState: codeInsufficientPrivilege, Error: "refused at startup"}
			if err := c.Hooks.Statement(ev); err != nil {
				return nil, fatal(codeSystemError, "bastion: the connection could not be recorded", err)
			}
		}
		return nil, &userError{severity: "FATAL", code: codeInsufficientPrivilege,
			msg:  "bastion: " + text + " refused: " + describe(res),
			hint: "Connect without it and run the SET after connecting, where the policy can hold it for approval."}
	}
	return settings, nil
}

// parseOptions reads the options startup parameter as the server does
// (space-separated, backslash escapes the next character): "-c name=value",
// "-cname=value" and "--name=value" set a setting. Other backend switches
// are refused: they are not settings the policy can judge.
func parseOptions(opts string) (map[string]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(opts); i++ {
		switch ch := opts[i]; {
		case ch == '\\' && i+1 < len(opts):
			i++
			w.WriteByte(opts[i])
			inWord = true
		case ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteByte(ch)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	out := map[string]string{}
	for i := 0; i < len(words); i++ {
		var kv string
		switch word := words[i]; {
		case word == "-c" && i+1 < len(words):
			i++
			kv = words[i]
		case strings.HasPrefix(word, "-c") && len(word) > 2:
			kv = word[2:]
		case strings.HasPrefix(word, "--") && len(word) > 2:
			kv = word[2:]
		default:
			return nil, &userError{severity: "FATAL", code: codeFeatureNotSupported,
				msg:  fmt.Sprintf("bastion: startup option %q is not supported", word),
				hint: "Only settings can be given at startup: -c name=value."}
		}
		name, value, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			// The server's own wording (postgres.c, process_postgres_switches).
			what := "-c"
			if strings.HasPrefix(words[i], "--") {
				what = "--"
			}
			return nil, &userError{severity: "FATAL", code: codeSyntaxError, msg: fmt.Sprintf("%s %s requires a value", what, kv)}
		}
		out[strings.ReplaceAll(name, "-", "_")] = value
	}
	return out, nil
}

// quoteLiteral quotes a string constant (standard_conforming_strings).
func quoteLiteral(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }

// connect checks the client's startup message, logs in upstream with the
// target's credentials and greets the client, returning the session.
func (p *Proxy) connect(ctx context.Context, client net.Conn, be *pgproto3.Backend, rd *readErr, sm *pgproto3.StartupMessage, c Conn) (*session, error) {
	t := p.Target
	db := t.Database
	if db == "" {
		db = t.User
	}
	if want := sm.Parameters["database"]; want != "" && want != db {
		return nil, &userError{severity: "FATAL", code: codeInvalidDatabase,
			msg:  fmt.Sprintf("bastion: database %q is not available through this target; use %q", want, db),
			hint: "Connect with dbname=" + db + " or leave the database empty."}
	}
	if r := sm.Parameters["replication"]; r != "" && r != "false" && r != "0" && r != "off" {
		return nil, fatal(codeFeatureNotSupported, "bastion: replication connections are not allowed", nil)
	}

	params, err := p.startupSettings(sm, c)
	if err != nil {
		return nil, err
	}
	cfg, err := p.upstreamConfig(params)
	if err != nil {
		return nil, err
	}

	cctx, cancel := context.WithTimeout(ctx, p.dialTimeout())
	defer cancel()
	pc, err := pgconn.ConnectConfig(cctx, cfg)
	if err != nil {
		ue := fatal(codeConnectionFailure, fmt.Sprintf("bastion: cannot connect to database target %q", t.Name), err)
		var pgErr *pgconn.PgError
		// Server errors other than authentication (an invalid startup
		// setting, too many connections, shutting down) are the server's
		// own answer, passed on as it sent it; authentication failures
		// are the operator's business.
		if errors.As(err, &pgErr) && !strings.HasPrefix(pgErr.Code, "28") {
			ue.code, ue.msg, ue.hint = pgErr.Code, pgErr.Message, pgErr.Hint
		}
		return nil, ue
	}
	hc, err := pc.Hijack()
	if err != nil {
		pc.Close(context.Background())
		return nil, fatal(codeConnectionFailure, "bastion: cannot connect to database target", err)
	}
	hc.Conn.SetDeadline(time.Time{})

	s := newSession(p, ctx, client, be, rd, hc, startupSearchPath(params))
	s.greet(sm, hc.ParameterStatuses, hc.TxStatus)
	return s, nil
}

// greet finishes the client's startup: protocol negotiation if it asked
// for more than 3.0, AuthenticationOk (trust: the SSH session authenticated
// the agent), the upstream server's parameters, our own BackendKeyData and
// ReadyForQuery. The key is set by Proxy.register before the greeting is
// flushed, so greet only queues the messages.
func (s *session) greet(sm *pgproto3.StartupMessage, params map[string]string, tx byte) {
	var unknown []string
	for k := range sm.Parameters {
		if strings.HasPrefix(k, "_pq_.") {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	if sm.ProtocolVersion != pgproto3.ProtocolVersion30 || len(unknown) > 0 {
		s.send(&pgproto3.NegotiateProtocolVersion{NewestMinorProtocol: 0, UnrecognizedOptions: unknown})
	}
	s.send(&pgproto3.AuthenticationOk{})
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		s.send(&pgproto3.ParameterStatus{Name: k, Value: params[k]})
	}
	if tx == 0 {
		tx = 'I'
	}
	s.txStatus = tx
}

// upstreamConfig is how the proxy logs in as the target, with these
// startup parameters: for the client's connection and for side
// connections (see catalog).
func (p *Proxy) upstreamConfig(params map[string]string) (*pgconn.Config, error) {
	t := p.Target
	db := t.Database
	if db == "" {
		db = t.User
	}
	host, portStr, err := net.SplitHostPort(t.Addr)
	if err != nil {
		return nil, fatal(codeConnectionFailure, "bastion: the database target is misconfigured", fmt.Errorf("target %q address: %w", t.Name, err))
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fatal(codeConnectionFailure, "bastion: the database target is misconfigured", fmt.Errorf("target %q port: %w", t.Name, err))
	}
	// ParseConfig merges PG* environment variables and service files; every
	// field that could carry them is overwritten below, so only the target
	// decides where and how we log in.
	cfg, err := pgconn.ParseConfig("sslmode=disable")
	if err != nil {
		return nil, fatal(codeConnectionFailure, "bastion: the database target is misconfigured", err)
	}
	cfg.Host, cfg.Port = host, uint16(port)
	cfg.Database, cfg.User, cfg.Password = db, t.User, t.Password
	cfg.TLSConfig = t.TLS
	cfg.Fallbacks = nil
	cfg.SSLNegotiation, cfg.SSLCertMode, cfg.RequireAuth = "", "", ""
	cfg.ChannelBinding = "prefer"
	cfg.MinProtocolVersion, cfg.MaxProtocolVersion = "3.0", "3.0"
	cfg.ValidateConnect, cfg.AfterConnect, cfg.AfterNetConnect = nil, nil, nil
	cfg.OnNotice, cfg.OnNotification, cfg.OAuthTokenProvider = nil, nil, nil
	cfg.ConnectTimeout = p.dialTimeout()
	cfg.DialFunc = p.dialer()
	cfg.RuntimeParams = params
	return cfg, nil
}

// startupSearchPath is the search_path the client set at startup, which
// side connections must resolve names through too.
func startupSearchPath(params map[string]string) string {
	for k, v := range params {
		if strings.EqualFold(k, "search_path") {
			return v
		}
	}
	return ""
}
