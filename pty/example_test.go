//go:build unix

package pty_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"github.com/bastion-dev/bastion/pty"
)

// Example wires a Front to an agent's channel: in the SSH server, ch is the
// session channel, and window-change requests call Resize.
func Example() {
	var ch io.ReadWriteCloser = os.Stdin // the SSH channel in the server
	var windowChanges <-chan pty.Size    // the channel's window-change requests

	shell := exec.Command("/bin/bash", "--noprofile", "--norc")
	shell.Dir = "/srv/agent"
	shell.Env = []string{"PATH=/usr/bin:/bin", "HOME=/srv/agent"}
	shell.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 1001, Gid: 1001}}

	f := &pty.Front{
		Shell: shell,
		In:    ch,
		Out:   ch, // wrapped by masking and recording in the server
		Check: func(ctx context.Context, input string) pty.Verdict {
			if strings.Contains(input, "rm ") {
				return pty.Verdict{Message: "bastion: denied: rm is not allowed [rule no-rm]\r\n"}
			}
			return pty.Verdict{Run: true}
		},
		OnExit: func(input string, code int) { slog.Info("command", "input", input, "status", code) },
		Size:   pty.Size{Cols: 120, Rows: 40},
		Term:   "xterm-256color",
	}
	go func() {
		for sz := range windowChanges {
			_ = f.Resize(sz)
		}
	}()
	code, err := f.Run(context.Background())
	_ = ch.Close() // ends Run's reader goroutine
	slog.Info("session ended", "status", code, "err", err)
}
