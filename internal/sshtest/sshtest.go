// Package sshtest starts bastion for tests, in one of two ways. StartInProc
// serves a Server in memory: each connection is a net.Pipe end given to
// HandleConn, the client x/crypto's with a freshly signed certificate, for
// fast protocol tests. Start runs a real bastion: a fresh data directory, a
// development OIDC issuer, the SSH server and HTTP API on 127.0.0.1, and
// helpers that log in identities and drive the real OpenSSH client.
package sshtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/bastion"
	"github.com/bastion-dev/bastion/certs"
	"github.com/bastion-dev/bastion/identity"
	"github.com/bastion-dev/bastion/internal/client"
	"github.com/bastion-dev/bastion/internal/devoidc"
)

// Bastion is a running bastion for one test.
type Bastion struct {
	T       testing.TB
	Dir     bastion.DataDir
	Env     *bastion.Env
	Issuer  *devoidc.Issuer
	SSHAddr string
	HTTPURL string
	LogBuf  *bytes.Buffer
	// OperatorToken authenticates operators (approvals API, web UI).
	OperatorToken string
	cancel        context.CancelFunc
	done          chan error
}

// Options adjust the bastion before it starts.
type Options struct {
	// Configure may change the environment (config, policy) before serving.
	Configure func(env *bastion.Env)
	// Sessions, if set, returns the store the SSH server mirrors sessions
	// into (a wrapper of env.Store that fails on cue, say); nil means
	// env.Store.
	Sessions func(env *bastion.Env) bastion.SessionStore
}

// Start initialises a data directory in t.TempDir and serves bastion on
// loopback ports until the test ends. The dev issuer's tokens map to role
// "agent" (principal agent) for subjects starting with "agent", and role
// "ops" (principal ops) for subjects starting with "ops".
func Start(t testing.TB, o Options) *Bastion {
	t.Helper()
	RequireTools(t, "ssh", "ssh-keygen")
	dir := bastion.DataDir(filepath.Join(t.TempDir(), "data"))
	if err := bastion.Init(dir, false); err != nil {
		t.Fatal(err)
	}
	iss, err := devoidc.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { iss.Close() })
	env, err := bastion.Open(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	env.Config.OIDC.Issuers = []certs.IssuerConfig{{URL: iss.URL(), Audience: []string{iss.ClientID()}, Kind: identity.KindAgent}}
	env.Config.Roles = []certs.RoleConfig{
		{Name: "agent", Principals: []string{"agent"}, Kind: identity.KindAgent, Match: certs.MatchConfig{Issuer: iss.URL(), Subject: "agent*"}},
		{Name: "ops", Principals: []string{"ops"}, Kind: identity.KindHuman, Match: certs.MatchConfig{Issuer: iss.URL(), Subject: "ops*"}},
	}
	if o.Configure != nil {
		o.Configure(env)
	}
	sshLn, httpLn, err := env.Listen("127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Bastion{T: t, Dir: dir, Env: env, Issuer: iss, SSHAddr: sshLn.Addr().String(), HTTPURL: "http://" + httpLn.Addr().String(),
		LogBuf: logs, cancel: cancel, done: make(chan error, 1), OperatorToken: rand.Text()}
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	so := bastion.ServeOptions{Dev: iss, Logger: log, OperatorToken: b.OperatorToken}
	if o.Sessions != nil {
		so.Sessions = o.Sessions(env)
	}
	go func() { b.done <- bastion.Serve(ctx, env, sshLn, httpLn, so) }()
	t.Cleanup(b.Stop)
	return b
}

// Stop shuts bastion down and closes its environment; Cleanup calls it.
func (b *Bastion) Stop() {
	if b.cancel == nil {
		return
	}
	b.cancel()
	b.cancel = nil
	select {
	case err := <-b.done:
		if err != nil {
			b.T.Errorf("bastion.Serve: %v", err)
		}
	case <-time.After(20 * time.Second):
		b.T.Errorf("bastion did not shut down in 20s")
	}
	b.Env.Close()
}

// Token mints an ID token for subject from the dev issuer.
func (b *Bastion) Token(subject string) string {
	b.T.Helper()
	tok, err := b.Issuer.Token(context.Background(), subject, nil)
	if err != nil {
		b.T.Fatal(err)
	}
	return tok
}

// Login exchanges a token for subject over the HTTP API and returns the
// client directory (ssh_config, key, certificate, known_hosts).
func (b *Bastion) Login(subject string) *client.Result {
	b.T.Helper()
	res, err := client.Login(context.Background(), client.Options{Server: b.HTTPURL, Token: b.Token(subject), OutDir: filepath.Join(b.T.TempDir(), "client-"+subject)})
	if err != nil {
		b.T.Fatal(err)
	}
	return res
}

// Result is one run of the OpenSSH client.
type Result struct {
	Stdout, Stderr string
	Code           int
}

// SSH runs the real ssh client with the login's ssh_config; args are
// ssh's own (options, the host "bastion", the remote command).
func SSH(t testing.TB, login *client.Result, stdin io.Reader, args ...string) Result {
	t.Helper()
	full := append([]string{"-F", login.SSHConfig, "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"}, args...)
	return Run(t, stdin, "ssh", full...)
}

// Run runs a program with a 60-second limit and returns its output and
// exit code.
func Run(t testing.TB, stdin io.Reader, name string, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr, cmd.Stdin = &out, &errb, stdin
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return Result{Stdout: out.String(), Stderr: errb.String(), Code: code}
}

// RequireTools fails the test (it does not skip) when a program the test
// drives is missing: `make test` installs them.
func RequireTools(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Fatalf("%s is not installed: run `make deps` (or `make test`, which installs it)", n)
		}
	}
}

// SandboxDir returns a temp directory that the unprivileged account agent
// commands run as (each session's own uid, when the tests run as root) can
// write to.
func SandboxDir(t testing.TB) string {
	t.Helper()
	d := t.TempDir()
	if err := os.Chmod(d, 0o777); err != nil {
		t.Fatal(err)
	}
	// t.TempDir's parent is 0700; the account needs to traverse it.
	if err := os.Chmod(filepath.Dir(d), 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// SSHAs runs the real ssh client without the login's ssh_config, with only
// the given key (and certificate, when cert is not empty) and login user,
// still verifying bastion's host certificate with the login's known_hosts.
// It is for probing what bastion refuses.
func (b *Bastion) SSHAs(login *client.Result, user, key, cert string, args ...string) Result {
	b.T.Helper()
	host, port, _ := strings.Cut(b.SSHAddr, ":")
	if cert == "" {
		cert = "none"
	}
	full := []string{"-F", "/dev/null", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "IdentitiesOnly=yes",
		"-o", "IdentityFile=" + key, "-o", "CertificateFile=" + cert, "-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile=" + filepath.Join(login.Dir, "known_hosts"), "-p", port, "-l", user, host}
	return Run(b.T, nil, "ssh", append(full, args...)...)
}
