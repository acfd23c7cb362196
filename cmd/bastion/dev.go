package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/bastion-dev/bastion/bastion"
	"github.com/bastion-dev/bastion/certs"
	"github.com/bastion-dev/bastion/identity"
	"github.com/bastion-dev/bastion/internal/client"
	"github.com/bastion-dev/bastion/internal/devoidc"
	"github.com/bastion-dev/bastion/internal/loopback"
	"github.com/bastion-dev/bastion/pgproxy"
	"github.com/spf13/cobra"
)

func init() { register(newDevCmd) }

const devSubject = "demo-agent"

func newDevCmd() *cobra.Command {
	var sshAddr, httpAddr, issuerAddr string
	var dbTargets []string
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run bastion on loopback with an embedded OIDC issuer and a logged-in demo agent",
		Long: `Run the whole flow on this machine with no identity provider: initialise the
data directory if needed, start an embedded OIDC issuer (a real OIDC provider,
loopback only), the SSH server and the HTTP API on loopback, log in a demo
agent, and write DATA_DIR/client/ssh_config once the servers accept
connections (scripts can wait for that file). Port 0 picks a free port; the
client config holds the real one.`,
		Args: cobra.NoArgs,
	}
	dir := dataDirFlag(cmd)
	cmd.Flags().StringVar(&sshAddr, "ssh-addr", "127.0.0.1:2222", "SSH listen address (loopback only)")
	cmd.Flags().StringVar(&httpAddr, "http-addr", "127.0.0.1:8080", "HTTP listen address (loopback only)")
	cmd.Flags().StringVar(&issuerAddr, "issuer-addr", "127.0.0.1:0", "dev OIDC issuer address (loopback only)")
	cmd.Flags().StringArrayVar(&dbTargets, "db-target", nil, "add a Postgres target: NAME=postgres://USER:PASSWORD@HOST:PORT/DB (repeatable); reach it with ssh -L 5432:NAME:5432")
	cmd.RunE = func(c *cobra.Command, _ []string) error {
		for _, a := range []string{sshAddr, httpAddr} {
			if err := loopback.Require(a); err != nil {
				return withCode(64, fmt.Errorf("dev mode %w", err))
			}
		}
		d := bastion.DataDir(*dir)
		if !d.Initialized() {
			if err := bastion.Init(d, false); err != nil {
				return err
			}
		}
		targets, err := parseDBTargets(dbTargets)
		if err != nil {
			return withCode(64, err)
		}
		iss, err := devoidc.Start(issuerAddr)
		if err != nil {
			return err
		}
		defer iss.Close()
		env, err := bastion.Open(d, "")
		if err != nil {
			return err
		}
		defer env.Close()
		for name, t := range targets {
			env.Databases[name] = t
		}
		env.Config.OIDC.Issuers = append(env.Config.OIDC.Issuers, certs.IssuerConfig{URL: iss.URL(), Audience: []string{iss.ClientID()}, Kind: identity.KindAgent})
		env.Config.Roles = append(env.Config.Roles, certs.RoleConfig{Name: "dev-agent", Principals: []string{"agent"}, Kind: identity.KindAgent,
			Match: certs.MatchConfig{Issuer: iss.URL(), Subject: "*"}})
		sshLn, httpLn, err := env.Listen(sshAddr, httpAddr)
		if err != nil {
			return err
		}
		// A stale client config must not be mistaken for this run's.
		os.Remove(filepath.Join(d.Client(), "ssh_config"))
		opToken := rand.Text()
		if err := os.MkdirAll(d.Client(), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(d.Client(), "operator_token"), []byte(opToken+"\n"), 0o600); err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(c.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		out := c.OutOrStdout()
		self := os.Args[0] // how the user ran bastion, for the hints
		ready := func(sshA, httpA string) {
			go func() {
				server := "http://" + httpA
				tok, err := iss.Token(ctx, devSubject, []string{"agents"})
				if err == nil {
					err = os.MkdirAll(d.Client(), 0o700)
				}
				if err == nil {
					err = os.WriteFile(filepath.Join(d.Client(), "server"), []byte(server+"\n"), 0o600)
				}
				var res *client.Result
				if err == nil {
					res, err = client.Login(ctx, client.Options{Server: server, Token: tok, OutDir: d.Client()})
				}
				if err != nil {
					fmt.Fprintf(os.Stderr, "bastion dev: demo login failed: %v\n", err)
					stop()
					return
				}
				fmt.Fprintf(out, `bastion dev is running (Ctrl-C to stop)
  SSH        %s
  HTTP API   %s
  OIDC       %s (dev issuer, loopback only)
  data dir   %s
The demo agent %q is logged in (certificate valid until %s). Try:
  %s 'ls /'
  %s 'rm -rf /'            # denied, with a reason and rule id
  %s                       # interactive shell, every line checked
  %s 'kubectl delete pod web-1'   # held for approval; then in another terminal:
  %s approvals list --data-dir %s
  %s approvals approve <id> --data-dir %s --as alice
  %s dev token --data-dir %s --subject another-agent   # a token for another identity
Operator web UI: %s/ui/  (operator token in %s)
`, sshA, server, iss.URL(), d, devSubject, res.ExpiresAt.Local().Format(time.Kitchen), res.SSHCommand, res.SSHCommand,
					strings.Replace(res.SSHCommand, "ssh ", "ssh -t ", 1), res.SSHCommand, self, d, self, d, self, d, server, filepath.Join(d.Client(), "operator_token"))
			}()
		}
		return bastion.Serve(ctx, env, sshLn, httpLn, bastion.ServeOptions{Dev: iss, Logger: log, Ready: ready, OperatorToken: opToken})
	}
	cmd.AddCommand(newDevTokenCmd())
	return cmd
}

func newDevTokenCmd() *cobra.Command {
	var subject string
	var groups []string
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Print an ID token from the running dev issuer, for trying other identities",
		Long: `Print an OIDC ID token for SUBJECT, minted by the issuer of a running
'bastion dev'. Use it with 'bastion login --token-file'. The issuer answers
only the operator: this reads the operator token bastion dev wrote to
DATA_DIR/client/operator_token, so run it as the user who started bastion dev.`,
		Args: cobra.NoArgs,
	}
	dir := dataDirFlag(cmd)
	cmd.Flags().StringVar(&subject, "subject", devSubject, "the token's subject")
	cmd.Flags().StringSliceVar(&groups, "group", nil, "groups claim (repeatable)")
	cmd.RunE = func(c *cobra.Command, _ []string) error {
		clientDir := bastion.DataDir(*dir).Client()
		b, err := os.ReadFile(filepath.Join(clientDir, "server"))
		if err != nil {
			return withCode(1, errors.New("no running 'bastion dev' found for this data dir (start it first)"))
		}
		// The endpoint answers only the operator: agents share this host.
		opPath := filepath.Join(clientDir, "operator_token")
		op, err := os.ReadFile(opPath)
		if err != nil || strings.TrimSpace(string(op)) == "" {
			return withCode(1, fmt.Errorf("dev token: cannot read the operator token %s (written by 'bastion dev'; run this as the user who started it): %v", opPath, orEmpty(err)))
		}
		body, _ := json.Marshal(map[string]any{"subject": subject, "groups": groups})
		ctx, cancel := context.WithTimeout(c.Context(), 30*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSpace(string(b))+"/dev/token", bytes.NewReader(body))
		if err != nil {
			return withCode(1, fmt.Errorf("dev token: bad server address in %s: %w", filepath.Join(clientDir, "server"), err))
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(op)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return withCode(1, fmt.Errorf("dev token: %w (is 'bastion dev' running?)", err))
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var r struct {
			IDToken string `json:"id_token"`
			Error   string `json:"error"`
		}
		if err := json.Unmarshal(data, &r); err != nil || r.IDToken == "" {
			return withCode(1, fmt.Errorf("dev token: %s: %s", resp.Status, strings.TrimPrefix(r.Error, "dev token: ")))
		}
		fmt.Fprintln(c.OutOrStdout(), r.IDToken)
		return nil
	}
	return cmd
}

// orEmpty is err's message, or "empty file" when reading succeeded.
func orEmpty(err error) string {
	if err == nil {
		return "empty file"
	}
	return err.Error()
}

// parseDBTargets parses --db-target NAME=postgres://USER:PASSWORD@HOST:PORT/DB.
func parseDBTargets(specs []string) (map[string]bastion.DBTarget, error) {
	out := map[string]bastion.DBTarget{}
	for _, spec := range specs {
		name, raw, ok := strings.Cut(spec, "=")
		u, err := url.Parse(raw)
		if !ok || name == "" || err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.User == nil || u.Host == "" {
			return nil, fmt.Errorf("--db-target %q: want NAME=postgres://USER:PASSWORD@HOST:PORT/DB", redactURL(spec))
		}
		pw, _ := u.User.Password()
		host := u.Host
		if u.Port() == "" {
			host += ":5432"
		}
		out[name] = bastion.DBTarget{Target: pgproxy.Target{Name: name, Addr: host, Database: strings.TrimPrefix(u.Path, "/"), User: u.User.Username(), Password: pw}}
	}
	return out, nil
}

// redactURL hides a password in an error message.
func redactURL(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		if j := strings.IndexByte(s[i+3:], '@'); j >= 0 {
			if k := strings.IndexByte(s[i+3:i+3+j], ':'); k >= 0 {
				return s[:i+3+k+1] + "xxxxx" + s[i+3+j:]
			}
		}
	}
	return s
}
