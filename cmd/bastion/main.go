// Command bastion is an SSH and shell-command bastion for AI agents: it issues
// short-lived SSH certificates from OIDC tokens, checks every command against a
// policy, masks secrets in output and records every session.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// commands holds the constructors of the top-level command groups. Each
// command group lives in its own file and registers itself from init, so
// adding a group never touches this file.
var commands []func() *cobra.Command

func register(f func() *cobra.Command) { commands = append(commands, f) }

// exitError carries a process exit code through cobra's error return.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

// withCode returns an error that makes main exit with code. A nil err means
// the command already printed what it had to say.
func withCode(code int, err error) error { return &exitError{code: code, err: err} }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "bastion",
		Short:         "SSH and shell-command bastion for AI agents",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	for _, f := range commands {
		root.AddCommand(f())
	}
	return root
}

func main() {
	os.Exit(run(os.Args[1:]))
}

// run executes the command line and returns the process exit code.
func run(args []string) int {
	root := newRootCmd()
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(os.Stderr, "bastion:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(os.Stderr, "bastion:", err)
	return 1
}
