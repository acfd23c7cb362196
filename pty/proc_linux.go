//go:build linux

package pty

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// control runs fn on the descriptor of f without switching f to blocking
// mode (which (*os.File).Fd would do).
func control(f *os.File, fn func(fd int) error) error {
	sc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := sc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// foreground returns the process group in the foreground of the terminal
// whose master is f (TIOCGPGRP on a master reports the slave's group).
func foreground(master *os.File) (int, error) {
	pgrp := 0
	err := control(master, func(fd int) error {
		var err error
		pgrp, err = unix.IoctlGetInt(fd, unix.TIOCGPGRP)
		return err
	})
	return pgrp, err
}

// flushInput discards keystrokes written to the terminal that no program
// has read yet (tcflush(TCIFLUSH) on the slave).
func flushInput(tty *os.File) error {
	return control(tty, func(fd int) error {
		return unix.IoctlSetInt(fd, unix.TCFLSH, unix.TCIFLUSH)
	})
}

// setUTF8 turns on IUTF8 so that the line discipline erases whole UTF-8
// characters, as OpenSSH's sshd does for a UTF-8 client.
func setUTF8(tty *os.File) error {
	return control(tty, func(fd int) error {
		t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
		if err != nil {
			return err
		}
		t.Iflag |= unix.IUTF8
		return unix.IoctlSetTermios(fd, unix.TCSETS, t)
	})
}

// growPipe asks for a pipe buffer of n bytes and returns the size granted.
func growPipe(f *os.File, n int) (int, error) {
	size := 0
	err := control(f, func(fd int) error {
		var err error
		size, err = unix.FcntlInt(uintptr(fd), unix.F_SETPIPE_SZ, n)
		if err != nil {
			size, err = unix.FcntlInt(uintptr(fd), unix.F_GETPIPE_SZ, 0)
		}
		return err
	})
	return size, err
}

// sigintIgnored reports whether process pid ignores SIGINT, from the SigIgn
// mask in /proc/<pid>/status. The kernel's view cannot be faked by the
// shell's own code, unlike anything the shell prints.
func sigintIgnored(pid int) (bool, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return false, err
	}
	_, rest, ok := strings.Cut(string(b), "\nSigIgn:")
	if !ok {
		return false, fmt.Errorf("no SigIgn in /proc/%d/status", pid)
	}
	v, _, _ := strings.Cut(rest, "\n")
	mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
	if err != nil {
		return false, fmt.Errorf("parse SigIgn of %d: %w", pid, err)
	}
	return mask&(1<<(unix.SIGINT-1)) != 0, nil
}

// killSession sends sig to every process in session sid: the shell, its
// jobs (each in its own process group) and whatever they started, unless
// they left the session with setsid.
func killSession(sid int, sig syscall.Signal) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if s, ok := sessionOf(pid); ok && s == sid {
			_ = unix.Kill(pid, sig)
		}
	}
}

// sessionOf reads the session id (field 6) of /proc/<pid>/stat.
func sessionOf(pid int) (int, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// The command name (field 2) is in parentheses and may contain spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); the session is field 6.
	if len(f) < 4 {
		return 0, false
	}
	sid, err := strconv.Atoi(f[3])
	return sid, err == nil
}
