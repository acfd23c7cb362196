//go:build !linux

package pty

import (
	"context"
	"errors"
	"os"
	"os/exec"
)

// errUnsupported is returned by Run on systems without the /proc and ioctl
// interfaces that Front's guarantees rest on: it fails closed there.
var errUnsupported = errors.New("pty: the interactive front needs linux")

type shell struct{}

type session struct{}

func startShell(*exec.Cmd, Size, string) (*shell, error) { return nil, errUnsupported }

func newSession(*Front, *shell, Size) *session { return &session{} }

func (*session) run(context.Context) (int, error) { return -1, errUnsupported }

func (*session) resize(Size) error { return errUnsupported }

// hiddenInput cannot read a terminal's mode here: the caller fails closed.
func hiddenInput(*os.File) (bool, error) { return false, errUnsupported }
