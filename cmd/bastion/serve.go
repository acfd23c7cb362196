package main

import (
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/bastion-dev/bastion/bastion"
	"github.com/spf13/cobra"
)

func init() { register(newServeCmd) }

func newServeCmd() *cobra.Command {
	var configPath, sshAddr, httpAddr string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the SSH server and the HTTP API",
		Long: `Run bastion: the SSH server (certificate authentication, policy-checked exec
and shell sessions, recordings) and the HTTP API (OIDC token exchange).
SIGINT or SIGTERM shut it down gracefully.`,
		Args: cobra.NoArgs,
	}
	dir := dataDirFlag(cmd)
	cmd.Flags().StringVar(&configPath, "config", "", "configuration file (default DATA_DIR/bastion.yaml)")
	cmd.Flags().StringVar(&sshAddr, "ssh-addr", "", "SSH listen address (default from config: 127.0.0.1:2222)")
	cmd.Flags().StringVar(&httpAddr, "http-addr", "", "HTTP listen address (default from config: 127.0.0.1:8080)")
	cmd.RunE = func(c *cobra.Command, _ []string) error {
		env, err := bastion.Open(bastion.DataDir(*dir), configPath)
		if err != nil {
			return err
		}
		defer env.Close()
		sshLn, httpLn, err := env.Listen(sshAddr, httpAddr)
		if err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(c.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		log := slog.New(slog.NewTextHandler(os.Stderr, nil))
		return bastion.Serve(ctx, env, sshLn, httpLn, bastion.ServeOptions{Logger: log})
	}
	return cmd
}
