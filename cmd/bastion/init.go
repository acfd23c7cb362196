package main

import (
	"fmt"

	"github.com/bastion-dev/bastion/bastion"
	"github.com/spf13/cobra"
)

func init() { register(newInitCmd) }

func newInitCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a data directory: CAs, host certificate, config, store",
		Long: `Create a bastion data directory: a user CA and a host CA (ed25519, mode 0600),
bastion's host key and host certificate, a commented default bastion.yaml, the
SQLite store, and the key that signs recordings. An existing CA is kept unless
--force is given (which replaces every key: issued certificates stop working).`,
		Args: cobra.NoArgs,
	}
	dir := dataDirFlag(cmd)
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing CA and host key")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := bastion.Init(bastion.DataDir(*dir), force); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "initialised %s\n", *dir)
		return nil
	}
	return cmd
}
