package main

import (
	"os"

	"github.com/bastion-dev/bastion/bastion"
	"github.com/spf13/cobra"
)

// defaultDataDir is $BASTION_DATA_DIR, or ./bastion-data.
func defaultDataDir() string {
	if d := os.Getenv("BASTION_DATA_DIR"); d != "" {
		return d
	}
	return "bastion-data"
}

// dataDirFlag adds --data-dir to cmd and returns where its value lands.
func dataDirFlag(cmd *cobra.Command) *string {
	p := new(string)
	cmd.Flags().StringVar(p, "data-dir", defaultDataDir(), "bastion data directory (env BASTION_DATA_DIR)")
	return p
}

// openEnv opens the data directory for a command.
func openEnv(dir string) (*bastion.Env, error) {
	return bastion.Open(bastion.DataDir(dir), "")
}

func dataDirOf(dir string) bastion.DataDir { return bastion.DataDir(dir) }
