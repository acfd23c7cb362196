package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bastion-dev/bastion/audit"
	"github.com/bastion-dev/bastion/bastion"
	"github.com/bastion-dev/bastion/recordings"
	"github.com/spf13/cobra"
)

func init() { register(newAuditCmd) }

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Read, search and verify the keyed, hash-chained audit log"}
	cmd.AddCommand(newAuditTailCmd(), newAuditVerifyCmd(), newAuditSearchCmd())
	return cmd
}

func newAuditTailCmd() *cobra.Command {
	var (
		n              int
		follow, asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "tail",
		Short: "Print the last events of the audit log",
		Long: `Print the last N events of the audit log, one per line: time, type, identity,
decision, rule, then the event's details. --json prints the log's own JSON
lines. --follow keeps printing events as they are appended (Ctrl-C stops).`,
		Args: cobra.NoArgs,
	}
	dir := dataDirFlag(cmd)
	cmd.Flags().IntVarP(&n, "lines", "n", 20, "how many events to print")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new events")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON lines")
	cmd.RunE = func(c *cobra.Command, _ []string) error {
		path := bastion.DataDir(*dir).AuditLog()
		out := c.OutOrStdout()
		emit := func(e audit.Event) error { return printAuditEvent(out, e, asJSON) }
		if !follow {
			evs, err := audit.Tail(path, n)
			if err != nil {
				return err
			}
			for _, e := range evs {
				if err := emit(e); err != nil {
					return err
				}
			}
			return nil
		}
		ctx, stop := signal.NotifyContext(c.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		err := audit.Follow(ctx, path, n, 250*time.Millisecond, emit)
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	}
	return cmd
}

func newAuditVerifyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check the audit log's keyed hash chain and its head",
		Long: `Check every line of the audit log: its hash matches its content and its prev
is the hash of the event before. Each event's hash is an HMAC-SHA256 under the
audit key, which is derived from the data directory's recording_key (agents
cannot read it), so an event edited and re-hashed without the key is caught.
The log's head, the number and hash of its last event, is kept in the store
(bastion.db) as bastion writes: a log that ends before it was cut short, one
whose event there is another was rewritten. An edited, inserted, deleted or
moved line is reported with its line number. Events written before the chain
was keyed verify as legacy: their order is checked, not who wrote them.

Exit status: 0 the chain is intact; 1 tampering (an edit, a cut, a rewrite:
the message names the line), or keyed events and no key to check them; 2 the
last line is incomplete, which a crash in the middle of a write leaves and
which bastion repairs the next time it opens the log.`,
		Args: cobra.NoArgs,
	}
	dir := dataDirFlag(cmd)
	cmd.RunE = func(c *cobra.Command, _ []string) error {
		return verifyAudit(c, bastion.DataDir(*dir))
	}
	return cmd
}

// verifyAudit checks the audit log of d with its key and its head.
func verifyAudit(c *cobra.Command, d bastion.DataDir) error {
	path := d.AuditLog()
	var opt audit.VerifyOptions
	key, err := recordings.LoadKey(d.RecordingKey())
	switch {
	case err == nil:
		if opt.Key, err = audit.DeriveKey(key.Seed()); err != nil {
			return err
		}
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	// The head is read before the file: it only ever names events already
	// in the file, so a log written meanwhile is ahead of it, never behind.
	st, err := openStoreIfAny(d)
	if err != nil {
		return err
	}
	if st != nil {
		opt.Head, err = st.LoadHead(c.Context())
		st.Close()
		if err != nil {
			return err
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	rep, err := audit.VerifyWith(f, opt)
	switch {
	case errors.Is(err, audit.ErrTornTail):
		return withCode(2, fmt.Errorf("%s: %w (%d events intact before it)", path, err, rep.Events))
	case errors.Is(err, audit.ErrKeyRequired):
		return withCode(1, fmt.Errorf("%s: %w (the audit key is derived from %s, which is missing)", path, err, d.RecordingKey()))
	case audit.Tampering(err):
		return withCode(1, fmt.Errorf("tampering: %s: %w", path, err))
	case err != nil:
		return withCode(1, fmt.Errorf("%s: %w", path, err))
	}
	stderr := c.ErrOrStderr()
	if rep.Legacy > 0 {
		fmt.Fprintf(stderr, "bastion: %d event(s) were written before the audit chain was keyed: their order is checked, not who wrote them\n", rep.Legacy)
	}
	switch {
	case st == nil:
		fmt.Fprintf(stderr, "bastion: no store at %s: the log's head is not checked, so a log cut short would pass\n", d.DB())
	case opt.Head.IsZero() && rep.Events > 0:
		fmt.Fprintln(stderr, "bastion: the store has no head for this log: a log cut short would pass")
	}
	fmt.Fprintln(c.OutOrStdout(), auditVerified(rep, opt.Head))
	return nil
}

// auditVerified is the line audit verify prints for an intact log.
func auditVerified(rep audit.Report, head audit.Head) string {
	kinds := fmt.Sprintf("%d keyed", rep.Keyed())
	if rep.Legacy > 0 {
		kinds += fmt.Sprintf(", %d legacy", rep.Legacy)
	}
	var h string
	switch {
	case rep.HeadMatched && rep.AfterHead == 0:
		h = fmt.Sprintf("the store's head (event %d) matches", head.Seq)
	case rep.HeadMatched:
		h = fmt.Sprintf("the store's head (event %d) matches, %d event(s) written since", head.Seq, rep.AfterHead)
	default:
		h = "no head checked"
	}
	last := "(empty)"
	if rep.Events > 0 {
		last = rep.Last.Hash
	}
	return fmt.Sprintf("ok: %d events (%s), chain intact; %s; head %s", rep.Events, kinds, h, last)
}

func newAuditSearchCmd() *cobra.Command {
	var (
		f            audit.Filter
		since, until string
		asJSON       bool
	)
	cmd := &cobra.Command{
		Use:   "search",
		Short: "Print the audit events that match every filter given",
		Long: `Print the audit events that match every filter given, oldest first.
--since and --until take a duration back from now (90m, 24h, 7d), a date
(2026-03-01) or an RFC 3339 time. --type matches a type or its prefix
("cert" matches cert.issued and cert.revoked). --json prints JSON lines.`,
		Args: cobra.NoArgs,
	}
	dir := dataDirFlag(cmd)
	cmd.Flags().StringVar(&f.Subject, "subject", "", "identity subject (or kind:subject@issuer)")
	cmd.Flags().StringVar(&since, "since", "", "events at or after this time")
	cmd.Flags().StringVar(&until, "until", "", "events before this time")
	cmd.Flags().StringVar(&f.Decision, "decision", "", "decision: allow, deny, ...")
	cmd.Flags().StringVar(&f.Type, "type", "", "event type or type prefix")
	cmd.Flags().StringVar(&f.Session, "session", "", "session id")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON lines")
	cmd.RunE = func(c *cobra.Command, _ []string) error {
		var err error
		if f.Since, f.Until, err = parseWindow(since, until, time.Now()); err != nil {
			return withCode(64, err)
		}
		evs, err := audit.Search(bastion.DataDir(*dir).AuditLog(), f)
		if err != nil {
			return err
		}
		for _, e := range evs {
			if err := printAuditEvent(c.OutOrStdout(), e, asJSON); err != nil {
				return err
			}
		}
		return nil
	}
	return cmd
}

// printEvent writes one event: its JSON line, or a line for people.
func printAuditEvent(w io.Writer, e audit.Event, asJSON bool) error {
	if asJSON {
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	_, err := fmt.Fprintln(w, formatAuditEvent(e))
	return err
}

// formatEvent is "time type identity decision rule detail", with "-" for
// what an event lacks, the session and source first among the details.
func formatAuditEvent(e audit.Event) string {
	who := "-"
	if e.Identity != nil {
		who = e.Identity.String()
	}
	var details []string
	if e.Session != "" {
		details = append(details, "session="+e.Session)
	}
	if e.Source != "" {
		details = append(details, "source="+e.Source)
	}
	keys := make([]string, 0, len(e.Detail))
	for k := range e.Detail {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		details = append(details, k+"="+auditDetailValue(e.Detail[k]))
	}
	return fmt.Sprintf("%s  %-15s %-30s %-7s %-15s %s", e.Time.UTC().Format(time.RFC3339), e.Type, who,
		dashIfEmpty(e.Decision), dashIfEmpty(e.Rule), strings.Join(details, " "))
}

func auditDetailValue(v any) string {
	switch v := v.(type) {
	case string:
		if v == "" || strings.ContainsAny(v, " \t\n\"=") {
			return strconv.Quote(v)
		}
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// parseWindow parses --since and --until together.
func parseWindow(since, until string, now time.Time) (from, to time.Time, err error) {
	if from, err = parseWhen("--since", since, now); err != nil {
		return
	}
	to, err = parseWhen("--until", until, now)
	return
}

// parseWhen parses a --since/--until value: empty (no bound), a duration
// back from now ("90m", "24h", "7d"), a date ("2006-01-02", UTC) or an RFC
// 3339 time.
func parseWhen(flag, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.ParseFloat(days, 64); err == nil && n >= 0 {
			return now.Add(-time.Duration(n * 24 * float64(time.Hour))), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%s %q: want a duration back from now (90m, 24h, 7d), a date (2006-01-02) or an RFC 3339 time", flag, s)
}
