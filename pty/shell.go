//go:build linux

package pty

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	creackpty "github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// shell is a bash process on a PTY that reads its commands from a FIFO only
// bastion writes to. See the package documentation for the protocol.
type shell struct {
	cmd    *exec.Cmd
	pid    int
	master *os.File // pollable; read by the output pump, written with keystrokes
	tty    *os.File // bastion's own descriptor of the slave, for tcflush
	cmds   *os.File // write end of bash's stdin, the command FIFO: plumbing lines only
	inputs *os.File // write end of the input pipe: checked inputs, NUL-terminated

	fifoDir  string // holds the command FIFO; removed by cleanup
	fifo     string // the command FIFO's path, which the marker function checks
	nonce    string
	inputFD  int // descriptor numbers in bash
	ttyFD    int
	maxInput int // bytes an input may have (the input pipe's size, less the NUL)
}

// startShell starts c on a new PTY as an interactive bash wired to
// bastion's plumbing. It overrides c's standard descriptors, appends two
// ExtraFiles and makes the process a session leader with the PTY as its
// controlling terminal.
func startShell(c *exec.Cmd, size Size, term string) (_ *shell, err error) {
	if c.Path == "" || len(c.Args) == 0 {
		return nil, errors.New("pty: Shell has no program")
	}
	if err := checkArgs(c.Args[1:]); err != nil {
		return nil, err
	}
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("pty: nonce: %w", err)
	}
	s := &shell{cmd: c, nonce: hex.EncodeToString(nonce)}
	var closers []*os.File
	defer func() {
		if err != nil {
			for _, f := range closers {
				_ = f.Close()
			}
			s.cleanup()
		}
	}()

	ptm, tty, err := creackpty.Open()
	if err != nil {
		return nil, fmt.Errorf("pty: open: %w", err)
	}
	closers = append(closers, ptm, tty)
	if err := creackpty.Setsize(ptm, winsize(size)); err != nil {
		return nil, fmt.Errorf("pty: set size: %w", err)
	}
	if err := setUTF8(tty); err != nil {
		return nil, fmt.Errorf("pty: termios: %w", err)
	}
	// creack/pty leaves the master in blocking mode; a pollable copy lets
	// Close interrupt the output pump's Read.
	s.master, err = pollable(ptm)
	if err != nil {
		return nil, err
	}
	closers = append(closers, s.master)
	s.tty = tty

	cmdR, err := s.makeFIFO()
	if err != nil {
		return nil, err
	}
	closers = append(closers, cmdR, s.cmds)
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("pty: pipe: %w", err)
	}
	closers = append(closers, inR, inW)
	s.inputs = inW
	// Inputs are written whole before bash reads them, so the pipe must
	// hold the largest input.
	pipeSize, err := growPipe(inW, 1<<20)
	if err != nil {
		return nil, fmt.Errorf("pty: pipe size: %w", err)
	}
	s.maxInput = pipeSize - 1

	// --noediting: no readline, whose echo and prompts would go to the PTY;
	// -i: interactive (job control, PROMPT_COMMAND) although stdin is a FIFO.
	args := []string{c.Args[0], "--noediting"}
	args = append(args, c.Args[1:]...)
	c.Args = append(args, "-i")
	c.Stdin, c.Stdout, c.Stderr = cmdR, tty, tty
	s.inputFD = 3 + len(c.ExtraFiles)
	s.ttyFD = s.inputFD + 1
	c.ExtraFiles = append(c.ExtraFiles, inR, tty)
	if term != "" {
		if c.Env == nil {
			c.Env = os.Environ()
		}
		c.Env = append(c.Env, "TERM="+term)
	}
	if c.SysProcAttr == nil {
		c.SysProcAttr = &syscall.SysProcAttr{}
	}
	a := c.SysProcAttr
	a.Setsid, a.Setctty, a.Ctty = true, true, 1 // Ctty is the child's fd 1, the PTY
	a.Setpgid, a.Foreground, a.Noctty = false, false, false

	if err := c.Start(); err != nil {
		return nil, fmt.Errorf("pty: start shell: %w", err)
	}
	s.pid = c.Process.Pid
	_ = cmdR.Close()
	_ = inR.Close()
	return s, nil
}

// makeFIFO creates the command FIFO in a new directory that others may pass
// through but not list, opens both ends and then takes all permissions off
// the FIFO: bash inherits the read end, nobody but root can open it again
// (not even through /proc/<pid>/fd), yet anyone can stat it, which is how
// the marker function checks that its standard input is still this FIFO.
func (s *shell) makeFIFO() (_ *os.File, err error) {
	s.fifoDir, err = os.MkdirTemp("", "bastion-pty-")
	if err != nil {
		return nil, fmt.Errorf("pty: fifo dir: %w", err)
	}
	defer func() {
		if err != nil {
			s.cleanup()
		}
	}()
	if err := os.Chmod(s.fifoDir, 0o711); err != nil {
		return nil, fmt.Errorf("pty: fifo dir: %w", err)
	}
	s.fifo = filepath.Join(s.fifoDir, "commands")
	if err := unix.Mkfifo(s.fifo, 0o600); err != nil {
		return nil, fmt.Errorf("pty: mkfifo: %w", err)
	}
	// Opening the read end first, without waiting for a writer, lets the
	// write end open at once.
	r, err := os.OpenFile(s.fifo, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("pty: open fifo: %w", err)
	}
	w, err := os.OpenFile(s.fifo, os.O_WRONLY, 0)
	if err != nil {
		_ = r.Close()
		return nil, fmt.Errorf("pty: open fifo: %w", err)
	}
	s.cmds = w
	err = control(r, func(fd int) error { return unix.SetNonblock(fd, false) })
	if err == nil {
		err = os.Chmod(s.fifo, 0)
	}
	if err != nil {
		_ = r.Close()
		_ = w.Close()
		return nil, fmt.Errorf("pty: fifo: %w", err)
	}
	return r, nil
}

// cleanup removes the FIFO's directory.
func (s *shell) cleanup() {
	if s.fifoDir != "" {
		_ = os.RemoveAll(s.fifoDir)
	}
}

// checkArgs refuses arguments that would make bash run a command or a script
// instead of reading the command FIFO.
func checkArgs(args []string) error {
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "--rcfile" || a == "--init-file" || a == "-o" || a == "+o" || a == "-O" || a == "+O":
			i++ // the option's value
		case a == "-c" || a == "--" || a == "-" || !(strings.HasPrefix(a, "-") || strings.HasPrefix(a, "+")):
			return fmt.Errorf("pty: Shell must be bash without a command or script; got argument %q", a)
		case !strings.HasPrefix(a, "--") && strings.ContainsRune(a, 'c'):
			return fmt.Errorf("pty: Shell must be bash without a command or script; got argument %q", a)
		}
	}
	return nil
}

func winsize(sz Size) *creackpty.Winsize {
	if sz.Cols <= 0 || sz.Rows <= 0 {
		sz = Size{Cols: 80, Rows: 24}
	}
	return &creackpty.Winsize{Cols: uint16(min(sz.Cols, 0xffff)), Rows: uint16(min(sz.Rows, 0xffff))}
}

// pollable returns a non-blocking, poller-registered copy of f and closes f.
func pollable(f *os.File) (*os.File, error) {
	var dup int
	err := control(f, func(fd int) error {
		var err error
		dup, err = unix.Dup(fd)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("pty: dup master: %w", err)
	}
	unix.CloseOnExec(dup)
	if err := unix.SetNonblock(dup, true); err != nil {
		_ = unix.Close(dup)
		return nil, fmt.Errorf("pty: master nonblock: %w", err)
	}
	_ = f.Close()
	return os.NewFile(uintptr(dup), "/dev/ptmx"), nil
}

// initScript configures bash once, before any input of the agent exists.
// Each line is a separate command; bash reads them from the command FIFO.
func (s *shell) initScript() string {
	var b strings.Builder
	// Without job control every command would share bash's process group
	// and keystrokes could never reach it.
	b.WriteString("[[ $- == *m* ]] || builtin exit 125\n")
	// History expansion (!!, !$) and aliases would make bash run something
	// other than the text that was checked; history is bastion's own.
	b.WriteString("builtin set +o history +o histexpand +o ignoreeof +o functrace +o errtrace 2>/dev/null\n")
	b.WriteString("builtin shopt -u expand_aliases; builtin unalias -a 2>/dev/null\n")
	b.WriteString("builtin trap - DEBUG RETURN ERR INT\n")
	b.WriteString("builtin unset PROMPT_COMMAND TMOUT 2>/dev/null; PS0= PS1= PS2= __bastion_last=0\n")
	// The marker function runs before bash reads each command. It first
	// checks that bash's stdin is still the command FIFO (an input could
	// have broken the restoring of fd 0 after a redirection, for instance by
	// closing bash's saved copy), and otherwise reports and exits before
	// reading anything from the terminal. Then it ignores SIGINT, so that a
	// ^C cannot cut the next plumbing line, and prints the marker: the
	// command number (\#) and status. $? is kept for the next input.
	fmt.Fprintf(&b, "__bastion_mark() { local s=$? n='\\#'; "+
		"if ! [[ /dev/fd/0 -ef %s ]]; then builtin printf '\\033]7777;%%s;0;0\\007' %s; builtin exit 125; fi; "+
		"builtin trap '' INT; __bastion_last=$s; "+
		"builtin printf '\\033]7777;%%s;%%s;%%d\\007' %s \"${n@P}\" \"$s\"; return \"$s\"; }\n",
		shellQuote(s.fifo), s.nonce, s.nonce)
	b.WriteString("__bastion_status() { return \"${__bastion_last:-0}\"; }\n")
	b.WriteString("builtin readonly -f __bastion_mark __bastion_status\n")
	b.WriteString("builtin readonly PROMPT_COMMAND=__bastion_mark\n")
	return b.String()
}

// runLine is the only multi-character line bastion writes after start-up.
// It reads one input whole while SIGINT is still ignored, then lets ^C
// through and runs the input at top level (not in a function, so declare,
// local, return and set -- behave as typed) with the terminal as stdin and
// the plumbing descriptors closed.
func (s *shell) runLine() string {
	in, tty := strconv.Itoa(s.inputFD), strconv.Itoa(s.ttyFD)
	return "if IFS= builtin read -r -d '' -u " + in + " __bastion_input; then builtin trap - INT; __bastion_status; " +
		"builtin eval \"$__bastion_input\" 0<&" + tty + " " + in + "<&- " + tty + "<&-; fi\n"
}

// writeTimeout bounds writes to the FIFO and the pipe, which bash drains
// whenever it waits for a command; a full one means bash is stuck.
const writeTimeout = 5 * time.Second

func write(f *os.File, s string) error {
	if err := f.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return err
	}
	_, err := f.WriteString(s)
	return err
}

// writeInit sends the start-up configuration.
func (s *shell) writeInit() error {
	return write(s.cmds, s.initScript())
}

// run hands a checked input to bash: the fixed line first (so bash starts
// reading the input pipe), then the input.
func (s *shell) run(input string) error {
	if len(input) > s.maxInput || strings.IndexByte(input, 0) >= 0 {
		return errors.New("pty: input too long or contains NUL")
	}
	if err := write(s.cmds, s.runLine()); err != nil {
		return err
	}
	return write(s.inputs, input+"\x00")
}

// nudge sends an empty line: bash runs PROMPT_COMMAND again, which prints
// the marker that a second ^C may have interrupted. An empty line cannot be
// cut in two.
func (s *shell) nudge() error {
	return write(s.cmds, "\n")
}

// shellQuote quotes p for bash.
func shellQuote(p string) string {
	return "'" + strings.ReplaceAll(p, "'", `'\''`) + "'"
}
