package main

import (
	"fmt"
	"time"

	"github.com/bastion-dev/bastion/audit"
	"github.com/bastion-dev/bastion/bastion"
	"github.com/bastion-dev/bastion/certs"
	"github.com/spf13/cobra"
	"golang.org/x/crypto/ssh"
)

func init() { register(newCACmd) }

func newCACmd() *cobra.Command {
	cmd := &cobra.Command{Use: "ca", Short: "Show, export and rotate the certificate authorities"}
	show := func(use, short string) *cobra.Command {
		var kind string
		c := &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs}
		dir := dataDirFlag(c)
		c.Flags().StringVar(&kind, "kind", "user", "which CA: user or host")
		c.RunE = func(c *cobra.Command, _ []string) error {
			cas, err := certs.LoadCAs(bastion.DataDir(*dir).CA())
			if err != nil {
				return err
			}
			var keys []ssh.PublicKey
			switch kind {
			case "user":
				keys = append(keys, cas.User.PublicKey())
				if cas.PrevUser != nil && use == "show" {
					keys = append(keys, cas.PrevUser.PublicKey())
				}
			case "host":
				keys = append(keys, cas.Host.PublicKey())
			default:
				return withCode(64, fmt.Errorf("--kind must be user or host, not %q", kind))
			}
			for i, k := range keys {
				if use == "export" {
					// The line for TrustedUserCAKeys (user) or, prefixed with
					// "@cert-authority *", for known_hosts (host).
					fmt.Fprint(c.OutOrStdout(), certs.AuthorizedKeyLine(k, "bastion-"+kind+"-ca"))
					continue
				}
				label := "current"
				if i == 1 {
					label = "previous (trusted until its certificates expire)"
				}
				fmt.Fprintf(c.OutOrStdout(), "%s CA (%s): %s\n  %s", kind, label, ssh.FingerprintSHA256(k), certs.AuthorizedKeyLine(k, "bastion-"+kind+"-ca"))
			}
			return nil
		}
		return c
	}
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Replace the user CA; the previous one stays trusted until its certificates expire",
		Long: `Replace the user CA with a new key. The previous user CA stays trusted, so
certificates it signed keep working until they expire (at most the max TTL).
Rotating again drops the oldest CA. Restart 'bastion serve' to pick it up.`,
		Args: cobra.NoArgs,
	}
	dir := dataDirFlag(rotate)
	rotate.RunE = func(c *cobra.Command, _ []string) error {
		env, err := openEnv(*dir)
		if err != nil {
			return err
		}
		defer env.Close()
		if err := certs.Rotate(env.Dir.CA()); err != nil {
			return err
		}
		cas, err := certs.LoadCAs(env.Dir.CA())
		if err != nil {
			return err
		}
		if err := env.Audit.Record(audit.Event{Time: time.Now(), Type: audit.CARotated, Detail: map[string]any{
			"new": ssh.FingerprintSHA256(cas.User.PublicKey()), "previous": ssh.FingerprintSHA256(cas.PrevUser.PublicKey())}}); err != nil {
			return err
		}
		fmt.Fprintf(c.OutOrStdout(), "new user CA %s; previous %s stays trusted until its certificates expire\n",
			ssh.FingerprintSHA256(cas.User.PublicKey()), ssh.FingerprintSHA256(cas.PrevUser.PublicKey()))
		return nil
	}
	cmd.AddCommand(show("show", "Print the CA public keys and fingerprints"),
		show("export", "Print the CA public key line (for TrustedUserCAKeys or known_hosts)"), rotate)
	return cmd
}
