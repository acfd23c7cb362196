package main

import (
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/bastion-dev/bastion/bastion"
	"github.com/bastion-dev/bastion/masking"
	"github.com/bastion-dev/bastion/recordings"
	"github.com/spf13/cobra"
)

func init() { register(newRecordingsCmd) }

func newRecordingsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "recordings", Short: "List, show, search, export, verify and reindex session recordings"}
	cmd.AddCommand(newRecordingsListCmd(), newRecordingsShowCmd(), newRecordingsSearchCmd(),
		newRecordingsExportCmd(), newRecordingsVerifyCmd(), newRecordingsReindexCmd())
	return cmd
}

func newRecordingsListCmd() *cobra.Command {
	var (
		f            recordings.Filter
		since, until string
		asJSON       bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List recorded sessions, newest first",
		Long: `List recorded sessions, newest first. --since and --until select by start time
and take a duration back from now (90m, 24h, 7d), a date (2026-03-01) or an
RFC 3339 time. --decision deny lists the sessions with a denied command.
--json prints a JSON array.`,
		Args: cobra.NoArgs,
	}
	dir := dataDirFlag(cmd)
	cmd.Flags().StringVar(&f.Subject, "subject", "", "identity subject (or kind:subject@issuer)")
	cmd.Flags().StringVar(&since, "since", "", "sessions started at or after this time")
	cmd.Flags().StringVar(&until, "until", "", "sessions started before this time")
	cmd.Flags().StringVar(&f.Decision, "decision", "", "sessions with a command so decided (allow, deny, ...)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	cmd.RunE = func(c *cobra.Command, _ []string) error {
		var err error
		if f.Since, f.Until, err = parseWindow(since, until, time.Now()); err != nil {
			return withCode(64, err)
		}
		list, err := recordings.List(bastion.DataDir(*dir).Recordings(), f)
		if err != nil {
			return err
		}
		out := c.OutOrStdout()
		if asJSON {
			return writeIndentedJSON(out, list)
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTARTED\tDURATION\tIDENTITY\tPRINCIPAL\tSOURCE\tCMDS\tDENIED\tSTATUS")
		for _, s := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", masking.Display(s.ID), s.Started.UTC().Format("2006-01-02 15:04:05"),
				sessionDuration(s), masking.Display(s.Kind+":"+s.Subject), dashIfEmpty(masking.Display(s.Principal)), dashIfEmpty(masking.Display(s.Source)),
				s.Commands, s.Denied, sessionStatus(s))
		}
		return tw.Flush()
	}
	return cmd
}

func sessionDuration(s recordings.Summary) string {
	if s.Ended.IsZero() {
		return "-"
	}
	return s.Ended.Sub(s.Started).Round(time.Millisecond).String()
}

func sessionStatus(s recordings.Summary) string {
	if s.Ended.IsZero() {
		return "not sealed"
	}
	if s.Exit != nil {
		return "exit " + strconv.Itoa(*s.Exit)
	}
	return "ended"
}

func newRecordingsShowCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show a session's metadata and command index",
		Args:  cobra.ExactArgs(1),
	}
	dir := dataDirFlag(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.RunE = func(c *cobra.Command, args []string) error {
		d, err := recordings.Load(bastion.DataDir(*dir).Recordings(), args[0])
		if err != nil {
			return err
		}
		out := c.OutOrStdout()
		if asJSON {
			return writeIndentedJSON(out, d)
		}
		m := d.Header.Bastion
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		// Agent text (the command, BASTION_REASON, subjects, the index)
		// goes through masking.Display: a recording must not be able to
		// drive the terminal of whoever reviews it.
		row := func(k, v string) {
			if v != "" {
				fmt.Fprintf(tw, "%s\t%s\n", k, masking.Display(v))
			}
		}
		row("Session", d.ID)
		row("Identity", m.Identity.String())
		row("Sponsor", m.Identity.Sponsor)
		row("Task", m.Identity.Task)
		row("Role", m.Identity.Role)
		row("Principal", m.Principal)
		row("Source", m.Source)
		row("Target", m.Target)
		row("Key ID", m.KeyID)
		if m.CertSerial != 0 {
			row("Cert serial", strconv.FormatUint(m.CertSerial, 10))
		}
		row("Reason", m.Reason)
		row("Command", d.Header.Command)
		row("Started", d.Started.UTC().Format(time.RFC3339))
		if d.Ended.IsZero() {
			row("Ended", "not sealed (live, or ended abnormally)")
		} else {
			row("Ended", d.Ended.UTC().Format(time.RFC3339)+" ("+sessionStatus(d.Summary)+", "+sessionDuration(d.Summary)+")")
		}
		row("Terminal", fmt.Sprintf("%dx%d", d.Header.Width, d.Header.Height))
		row("File", d.Path)
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "#\tOFFSET\tDECISION\tRULE\tEXIT\tDURATION\tCOMMAND")
		for _, e := range d.Index {
			exit, dur := "-", "-"
			if e.Exit != nil {
				exit, dur = strconv.Itoa(*e.Exit), fmt.Sprintf("%.3fs", e.Duration)
			}
			fmt.Fprintf(tw, "%d\t%.3fs\t%s\t%s\t%s\t%s\t%s\n", e.N, e.Offset, masking.Display(e.Decision), dashIfEmpty(masking.Display(e.Rule)),
				exit, dur, masking.Display(e.Cmd))
		}
		return tw.Flush()
	}
	return cmd
}

func newRecordingsSearchCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "search TEXT",
		Short: "Find text in the commands and output of every recording",
		Long: `Find TEXT in the commands and the output of every recording, newest session
first. Matching ignores ASCII case and terminal escape sequences. Each match
shows the session, the time offset, the command it falls under and the text
around it. Commands are also looked up in the data directory's store, which
keeps the command index of sessions whose recording is no longer there
('bastion recordings reindex' fills it in from older recordings).`,
		Args: cobra.ExactArgs(1),
	}
	dir := dataDirFlag(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	cmd.RunE = func(c *cobra.Command, args []string) error {
		ms, err := searchRecordings(c.Context(), bastion.DataDir(*dir), args[0])
		if err != nil {
			return err
		}
		out := c.OutOrStdout()
		if asJSON {
			return writeIndentedJSON(out, ms)
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		for _, m := range ms {
			fmt.Fprintf(tw, "%s\t+%.3fs\t#%d\t%s\t%s\n", masking.Display(m.ID), m.Offset, m.Command, m.Kind, masking.Display(m.Text))
		}
		return tw.Flush()
	}
	return cmd
}

func newRecordingsExportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "export ID",
		Short: "Write a recording's asciicast v2 file to stdout",
		Long: `Write a recording, as stored (asciicast v2, seal included), to stdout:
asciinema play, the asciinema web player and 'bastion recordings verify'
all read it.`,
		Args: cobra.ExactArgs(1),
	}
	dir := dataDirFlag(cmd)
	cmd.RunE = func(c *cobra.Command, args []string) error {
		path, err := recordings.Path(bastion.DataDir(*dir).Recordings(), args[0])
		if err != nil {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(c.OutOrStdout(), f)
		return err
	}
	return cmd
}

func newRecordingsVerifyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "verify ID|FILE",
		Short: "Check a recording's hash chain, seal, signature and command index",
		Long: `Check that a recording is exactly as bastion wrote it: every line well-formed,
every checkpoint and the final seal matching the SHA-256 chain over the lines
before it, and, when the data directory has its recording_key, every
signature valid. A tampered recording is reported with the line where the
difference shows and the range of lines it lies in.

The recording is also held to what the data directory's store kept of its
session: a recording the store (or its index file) knows was sealed and that
has no seal now was cut short, which is tampering, not an abnormal end; and
every command of the store's index and of the index file must be a command
marker of the recording, with the same text, decision and rule, and the
other way round.

Exit status: 0 intact and sealed; 1 tampered, an index that disagrees with
the recording, or not a valid recording; 2 not sealed (the session is live,
or ended abnormally: bastion crashed or could not write), with how far the
recording holds.`,
		Args: cobra.ExactArgs(1),
	}
	dir := dataDirFlag(cmd)
	cmd.RunE = func(c *cobra.Command, args []string) error {
		d := bastion.DataDir(*dir)
		path, err := recordings.Resolve(d.Recordings(), args[0])
		if err != nil {
			return err
		}
		var pub crypto.PublicKey
		key, err := recordings.LoadKey(d.RecordingKey())
		switch {
		case err == nil:
			pub = key.Public()
		case errors.Is(err, fs.ErrNotExist):
			fmt.Fprintf(c.ErrOrStderr(), "bastion: no key at %s: signatures not checked\n", d.RecordingKey())
		default:
			return err
		}
		known, fromStore, err := knownSession(c.Context(), d, path)
		if err != nil {
			return err
		}
		rep, err := recordings.VerifySession(path, pub, known)
		var te *recordings.TamperError
		var ie *recordings.IndexError
		switch {
		case errors.Is(err, recordings.ErrNotSealed):
			return withCode(2, fmt.Errorf("%s: %w", path, err))
		case errors.As(err, &te):
			return withCode(1, fmt.Errorf("tampering: %s: %w", path, err))
		case errors.As(err, &ie):
			return withCode(1, fmt.Errorf("index mismatch: %s: %w", path, err))
		case err != nil:
			return withCode(1, fmt.Errorf("%s: %w", path, err))
		}
		sig := "unsigned"
		switch {
		case rep.SignatureChecked:
			sig = "signature valid"
		case rep.Signed:
			sig = "signed, signature not checked"
		}
		fmt.Fprintf(c.OutOrStdout(), "ok: %s: %d lines, %d commands, sealed, %s (%d checkpoints)%s\n",
			path, rep.Lines, rep.Commands, sig, rep.Checkpoints, fromStore)
		return nil
	}
	return cmd
}

// writeIndentedJSON writes v as JSON indented by two spaces, with a final
// newline: the --json output of the approvals and recordings commands.
func writeIndentedJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
