package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/bastion-dev/bastion/internal/client"
	"github.com/spf13/cobra"
)

func init() { register(newLoginCmd) }

func newLoginCmd() *cobra.Command {
	var (
		server, tokenFile, tokenEnv, tokenCmd, out, sshAddr, task, reason string
		ttl                                                               time.Duration
	)
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Exchange an OIDC token for a short-lived SSH certificate (agent side)",
		Long: `Exchange an OIDC ID token (workload identity: a CI job's token, a Kubernetes
service-account token, or a human's login) for a short-lived SSH certificate
on a fresh ed25519 key. Writes the key, key-cert.pub, a known_hosts line that
trusts bastion's host CA (no trust on first use) and an ssh_config with a
"Host bastion" entry, then prints the ssh command to use.`,
		Args: cobra.NoArgs,
	}
	f := cmd.Flags()
	f.StringVar(&server, "server", "", "bastion HTTP API URL, e.g. https://bastion.example.com (required)")
	f.StringVar(&tokenFile, "token-file", "", "read the token from this file")
	f.StringVar(&tokenEnv, "token-env", "", "read the token from this environment variable")
	f.StringVar(&tokenCmd, "token-command", "", "run this command (sh -c) and read the token from its stdout")
	f.StringVar(&out, "out", defaultClientDir(), "directory for key, certificate, known_hosts and ssh_config")
	f.StringVar(&sshAddr, "ssh-addr", "", "SSH address to connect to (default: what the server reports)")
	f.DurationVar(&ttl, "ttl", 0, "requested certificate lifetime (default: the role's)")
	f.StringVar(&task, "task", "", "task or ticket this work is for (recorded in the certificate)")
	f.StringVar(&reason, "reason", "", "why you need access (audited)")
	cmd.MarkFlagRequired("server")
	cmd.MarkFlagsOneRequired("token-file", "token-env", "token-command")
	cmd.MarkFlagsMutuallyExclusive("token-file", "token-env", "token-command")
	cmd.RunE = func(c *cobra.Command, _ []string) error {
		tok, err := readToken(c.Context(), tokenFile, tokenEnv, tokenCmd)
		if err != nil {
			return withCode(64, err)
		}
		res, err := client.Login(c.Context(), client.Options{Server: server, Token: tok, OutDir: out, SSHAddr: sshAddr, TTL: ttl, Task: task, Reason: reason})
		if err != nil {
			return withCode(1, err)
		}
		fmt.Fprintf(c.OutOrStdout(), "certificate %s for %s, valid until %s\nconnect with:\n  %s\n",
			res.Serial, res.User, res.ExpiresAt.Local().Format(time.RFC3339), res.SSHCommand)
		return nil
	}
	return cmd
}

func defaultClientDir() string {
	if h, err := os.UserHomeDir(); err == nil {
		return h + "/.bastion"
	}
	return ".bastion"
}

func readToken(ctx context.Context, file, env, command string) (string, error) {
	var tok string
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		tok = string(b)
	case env != "":
		tok = os.Getenv(env)
		if tok == "" {
			return "", fmt.Errorf("environment variable %s is empty", env)
		}
	case command != "":
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		b, err := exec.CommandContext(ctx, "sh", "-c", command).Output()
		if err != nil {
			return "", fmt.Errorf("--token-command: %w", err)
		}
		tok = string(b)
	}
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return "", errors.New("the token is empty")
	}
	return tok, nil
}
