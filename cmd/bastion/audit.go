package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bastion-dev/bastion/audit"
	"github.com/bastion-dev/bastion/bastion"
	"github.com/spf13/cobra"
)

func init() { register(newAuditCmd) }

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Read, search and verify the hash-chained audit log"}
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
		Short: "Check every link of the audit log's hash chain",
		Long: `Check every line of the audit log: its hash matches its content and its prev
is the hash of the event before. An edited, inserted, deleted or moved line
is reported with its line number.

Exit status: 0 the chain is intact; 1 the log is broken (the message names
the line); 2 the last line is incomplete, which a crash in the middle of a
write leaves and which bastion repairs the next time it opens the log.

The chain has no secret key: keep the printed head hash (or the mirrored
log) elsewhere to detect a log rewritten from scratch or cut short.`,
		Args: cobra.NoArgs,
	}
	dir := dataDirFlag(cmd)
	cmd.RunE = func(c *cobra.Command, _ []string) error {
		path := bastion.DataDir(*dir).AuditLog()
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		n, err := audit.Verify(f)
		if errors.Is(err, audit.ErrTornTail) {
			return withCode(2, fmt.Errorf("%s: %w (%d events intact before it)", path, err, n))
		}
		if err != nil {
			return withCode(1, fmt.Errorf("%s: %w", path, err))
		}
		head := "(empty)"
		if last, err := audit.Tail(path, 1); err == nil && len(last) == 1 {
			head = last[0].Hash
		}
		fmt.Fprintf(c.OutOrStdout(), "ok: %d events, chain intact; head %s\n", n, head)
		return nil
	}
	return cmd
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
