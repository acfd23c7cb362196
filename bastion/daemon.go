package bastion

import (
	"context"
	"os"
	"strings"

	"errors"
	"fmt"
	"github.com/bastion-dev/bastion/approvals"
	"github.com/bastion-dev/bastion/web"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/bastion-dev/bastion/certs"
)

// ServeOptions configures Serve.
type ServeOptions struct {
	// Dev, when set, serves POST /dev/token from the development issuer.
	Dev    DevTokens
	Logger *slog.Logger // nil means slog.Default()
	// OperatorToken is a bootstrap operator token (dev mode makes one);
	// empty means operators.token_file from the config, if any.
	OperatorToken string
	// Ready is called once both listeners accept connections.
	Ready func(sshAddr, httpAddr string)
	// Sessions receives the mirror of sessions and their command index;
	// nil means the environment's store.
	Sessions SessionStore
}

// Serve runs the SSH server on sshLn and the HTTP API on httpLn until ctx
// is done, then shuts both down gracefully (sessions end with a cause).
func Serve(ctx context.Context, env *Env, sshLn, httpLn net.Listener, o ServeOptions) error {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	verifier, err := certs.NewVerifier(ctx, env.Config.OIDC.Issuers, nil)
	if err != nil {
		return err
	}
	hostCA := env.CAs.Host.PublicKey()
	opToken := o.OperatorToken
	if opToken == "" && env.Config.Operators.TokenFile != "" {
		b, err := os.ReadFile(env.Config.Operators.TokenFile)
		if err != nil {
			return fmt.Errorf("operators.token_file: %w", err)
		}
		opToken = strings.TrimSpace(string(b))
	}
	ops := &OperatorAuth{Token: opToken, Verifier: verifier, Roles: env.Config.Roles, Allowed: env.Config.Operators.Roles}
	// Requests left pending by a previous run can no longer run: their
	// sessions are gone (SQLite is one node's store).
	if n, err := env.Approvals.CancelOrphans(ctx, func(string) bool { return false }); err != nil {
		return fmt.Errorf("cancel orphaned approvals: %w", err)
	} else if n > 0 {
		log.Info("cancelled approval requests of sessions that ended with the last run", "count", n)
	}
	var hooks []*approvals.Webhook
	for _, w := range env.Config.Approvals.Webhooks {
		h := &approvals.Webhook{URL: w.URL, Slack: w.Slack, Audit: env.Audit, Logger: log}
		hooks = append(hooks, h)
		env.Approvals.Notifiers = append(env.Approvals.Notifiers, h)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, h := range hooks {
			h.Close(cctx)
		}
	}()
	api := &API{
		Exchanger: &certs.Exchanger{Verifier: verifier, Roles: env.Config.Roles, CA: env.CAs.User, HostCA: hostCA,
			Options: certs.Options{DefaultTTL: env.Config.Certs.DefaultTTL, MaxTTL: env.Config.Certs.MaxTTL}},
		Store: env.Store, Audit: env.Audit, Dev: o.Dev, DevAuthToken: opToken, Logger: log, SSHAddr: sshLn.Addr().String(),
		Extra: []func(*http.ServeMux){
			(&ApprovalsAPI{Service: env.Approvals, Authenticate: ops.Authenticate, Logger: log}).Register,
			(&web.Handler{Recordings: webRecordings{env.Dir.Recordings()}, Approvals: webApprovals{env.Approvals},
				Authenticate: ops.webOperator, Log: log}).Register,
		},
	}
	hs := &http.Server{Handler: api.Handler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	srv, err := env.SSHServer(log)
	if err != nil {
		return err
	}
	srv.Sessions = o.Sessions
	if srv.Sessions == nil {
		srv.Sessions = env.Store
	}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(sshLn) }()
	go func() {
		var err error
		if env.Config.HTTP.TLSCert != "" {
			err = hs.ServeTLS(httpLn, env.Config.HTTP.TLSCert, env.Config.HTTP.TLSKey)
		} else {
			err = hs.Serve(httpLn)
		}
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		errc <- err
	}()
	log.Info("bastion serving", "ssh", sshLn.Addr().String(), "http", httpLn.Addr().String())
	if o.Ready != nil {
		o.Ready(sshLn.Addr().String(), httpLn.Addr().String())
	}
	var first error
	select {
	case <-ctx.Done():
	case first = <-errc:
		if first != nil {
			first = fmt.Errorf("serve: %w", first)
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return errors.Join(first, hs.Shutdown(sctx), srv.Shutdown(sctx))
}

// Listen opens the SSH and HTTP listeners of cfg. Plain HTTP is refused on
// non-loopback addresses (Config.Validate).
func (e *Env) Listen(sshAddr, httpAddr string) (sshLn, httpLn net.Listener, err error) {
	if sshAddr == "" {
		sshAddr = e.Config.SSH.Listen
	}
	if httpAddr == "" {
		httpAddr = e.Config.HTTP.Listen
	}
	e.Config.SSH.Listen, e.Config.HTTP.Listen = sshAddr, httpAddr
	if err := e.Config.Validate(); err != nil {
		return nil, nil, err
	}
	if sshLn, err = net.Listen("tcp", sshAddr); err != nil {
		return nil, nil, fmt.Errorf("ssh listener: %w", err)
	}
	if httpLn, err = net.Listen("tcp", httpAddr); err != nil {
		sshLn.Close()
		return nil, nil, fmt.Errorf("http listener: %w", err)
	}
	return sshLn, httpLn, nil
}
