package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/bastion-dev/bastion/bastion"
	"github.com/bastion-dev/bastion/recordings"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

func init() { register(newPlayCmd) }

func newPlayCmd() *cobra.Command {
	var (
		speed, idle float64
		from        int
	)
	cmd := &cobra.Command{
		Use:   "play ID|FILE",
		Short: "Play a recorded session in the terminal",
		Long: `Play a recorded session in real time. On a terminal, space pauses and
resumes, q or Ctrl-C stops. --from-command N starts at the Nth command
(as numbered by 'bastion recordings show'), with the screen as it was then.
Play does not verify the recording: 'bastion recordings verify' does.`,
		Args: cobra.ExactArgs(1),
	}
	dir := dataDirFlag(cmd)
	cmd.Flags().Float64Var(&speed, "speed", 1, "playback speed factor")
	cmd.Flags().Float64Var(&idle, "idle-limit", 0, "cap pauses without output at this many seconds (0: as recorded)")
	cmd.Flags().IntVar(&from, "from-command", 0, "start at this command (1-based)")
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if speed <= 0 || idle < 0 || from < 0 {
			return withCode(64, fmt.Errorf("--speed must be positive, --idle-limit and --from-command not negative"))
		}
		path, err := recordings.Resolve(bastion.DataDir(*dir).Recordings(), args[0])
		if err != nil {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		ctx, stop := signal.NotifyContext(c.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		keys, restore, err := rawKeys()
		if err != nil {
			return err
		}
		defer restore()
		return recordings.Play(ctx, f, c.OutOrStdout(), keys, recordings.PlayOptions{
			Speed: speed, IdleLimit: time.Duration(idle * float64(time.Second)), FromCommand: from})
	}
	return cmd
}

// rawKeys puts a terminal stdin into raw mode (keeping output processing,
// so recordings of commands run without a PTY, with bare "\n", still show
// as lines) and returns a non-blocking duplicate of it to read keys from,
// which Play can unblock when it ends. Without a terminal there are no
// keys.
func rawKeys() (keys io.Reader, restore func(), err error) {
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return nil, func() {}, nil
	}
	old, err := term.MakeRaw(fd)
	if err != nil {
		return nil, nil, fmt.Errorf("play: raw mode: %w", err)
	}
	undo := []func(){func() { term.Restore(fd, old) }}
	restore = func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	if t, err := unix.IoctlGetTermios(fd, unix.TCGETS); err == nil {
		t.Oflag |= unix.OPOST | unix.ONLCR
		unix.IoctlSetTermios(fd, unix.TCSETS, t)
	}
	dup, err := unix.Dup(fd)
	if err != nil {
		restore()
		return nil, nil, fmt.Errorf("play: %w", err)
	}
	// O_NONBLOCK is shared with stdin (a dup shares the open file), so it
	// is undone before the terminal is handed back.
	if err := unix.SetNonblock(dup, true); err != nil {
		unix.Close(dup)
		restore()
		return nil, nil, fmt.Errorf("play: %w", err)
	}
	kf := os.NewFile(uintptr(dup), "keys")
	undo = append(undo, func() { unix.SetNonblock(fd, false) }, func() { kf.Close() })
	return kf, restore, nil
}
