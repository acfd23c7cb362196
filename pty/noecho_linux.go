//go:build linux

package pty

import (
	"os"

	"golang.org/x/sys/unix"
)

// hiddenInput reports whether the terminal whose master is f reads lines
// without showing them: ECHO off in canonical mode (ICANON on), the mode of
// getpass(3), readpassphrase(3), bash's read -s, sudo, ssh, passwd, PAM,
// Python's getpass, psql and Go's term.ReadPassword. On Linux TCGETS on a
// PTY master reports the slave's settings. Raw mode (ICANON off: vim, less,
// readline, top) also clears ECHO, but such programs draw what they read
// themselves, and their keystrokes (arrow keys, commands) are what a
// recording of the session should keep.
func hiddenInput(f *os.File) (bool, error) {
	var lflag uint32
	err := control(f, func(fd int) error {
		t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
		if err != nil {
			return err
		}
		lflag = t.Lflag
		return nil
	})
	if err != nil {
		return false, err
	}
	return lflag&unix.ECHO == 0 && lflag&unix.ICANON != 0, nil
}
