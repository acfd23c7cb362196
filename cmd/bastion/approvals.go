package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/bastion-dev/bastion/approvals"
	"github.com/bastion-dev/bastion/bastion"
	"github.com/bastion-dev/bastion/identity"
	"github.com/bastion-dev/bastion/masking"
	"github.com/spf13/cobra"
)

func init() { register(newApprovalsCmd) }

func newApprovalsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "approvals",
		Short: "List, show, approve and deny commands held for a human approval",
		Long: `Commands that the policy holds for approval wait here until a human decides.
These commands act on the data directory's store directly, so they work from
another process than the server that holds the command: the waiting session
sees the decision within a poll interval. Every decision is audited.

Four eyes: whoever asked for a command cannot approve it.`,
	}
	cmd.AddCommand(newApprovalsListCmd(), newApprovalsShowCmd(), newApprovalsApproveCmd(), newApprovalsDenyCmd(),
		newApprovalsRequestCmd(), newApprovalsWaitCmd())
	return cmd
}

// withApprovals opens the data directory and runs fn with an approvals
// service on its store and audit log.
func withApprovals(dir string, fn func(*approvals.Service) error) error {
	env, err := openEnv(dir)
	if err != nil {
		return err
	}
	defer env.Close()
	return fn(&approvals.Service{Store: env.Store, Audit: env.Audit})
}

// approvalID checks the shape of an id typed by a person.
func approvalID(arg string) (string, error) {
	id := strings.ToLower(strings.TrimSpace(arg))
	if !approvals.ValidID(id) {
		return "", withCode(64, fmt.Errorf("%q is not an approval id (they look like apr_7k2m9x4q1c)", arg))
	}
	return id, nil
}

// approver is who decides from this CLI: --as, else $USER, else
// "operator". Anyone who can open the data directory holds the CA keys,
// so the CLI takes the name it is given; the audit log records it.
func approver(as string) identity.Provenance {
	if as == "" {
		as = os.Getenv("USER")
	}
	if as == "" {
		as = "operator"
	}
	return identity.Provenance{Kind: identity.KindHuman, Subject: as, Issuer: "cli"}
}

// decisionError gives a refusal its exit code: 1, with the Service's words.
func decisionError(err error) error {
	if err == nil {
		return nil
	}
	return withCode(1, err)
}

func newApprovalsListCmd() *cobra.Command {
	var asJSON, all bool
	cmd := &cobra.Command{Use: "list", Short: "List pending approval requests (--all: every request), newest first", Args: cobra.NoArgs}
	dir := dataDirFlag(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	cmd.Flags().BoolVar(&all, "all", false, "include decided, expired and cancelled requests")
	cmd.RunE = func(c *cobra.Command, _ []string) error {
		return withApprovals(*dir, func(svc *approvals.Service) error {
			list, err := svc.List(c.Context(), all)
			if err != nil {
				return err
			}
			if asJSON {
				return writeIndentedJSON(c.OutOrStdout(), list)
			}
			if len(list) == 0 {
				if all {
					fmt.Fprintln(c.ErrOrStderr(), "no approval requests")
				} else {
					fmt.Fprintln(c.ErrOrStderr(), "no pending approval requests")
				}
				return nil
			}
			tw := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATUS\tCREATED\tREQUESTER\tRULE\tSHA256\tCOMMAND")
			for _, r := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, listStatus(r, time.Now()), r.Created.Local().Format(time.DateTime),
					masking.Display(r.Requester.String()), strings.Join(requestRules(r), ","), approvals.ShortSum(r.Sum()), oneLine(r.Command, 60))
			}
			return tw.Flush()
		})
	}
	return cmd
}

func listStatus(r approvals.Request, now time.Time) string {
	switch {
	case r.Status == approvals.Pending:
		return fmt.Sprintf("pending (%s left)", r.Expires.Sub(now).Round(time.Second))
	case r.Status == approvals.Approved && r.Used:
		return "approved, used"
	}
	return string(r.Status)
}

// oneLine shows agent text on one line, rendered by masking.Display (every
// control, escape sequence, bidi override and invisible rune written as an
// escape, newlines as \n), cut to about n runes: what is cut is the text,
// never an escape, and "…" says so.
func oneLine(s string, n int) string {
	out := masking.Display(s)
	if utf8.RuneCountInString(out) <= n {
		return out
	}
	// The longest prefix of s whose rendering fits.
	lo, hi := 0, len(s)
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if utf8.RuneCountInString(masking.Display(runePrefix(s, mid))) <= n-1 {
			lo = mid
		} else {
			hi = mid
		}
	}
	return masking.Display(runePrefix(s, lo)) + "…"
}

// runePrefix is s cut to at most n bytes without splitting a UTF-8
// sequence.
func runePrefix(s string, n int) string {
	for n > 0 && n < len(s) && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:min(n, len(s))]
}

// ruleList is "rule a" or "rules a, b".
func ruleList(r approvals.Request) string {
	rules := requestRules(r)
	if len(rules) == 1 {
		return "rule " + rules[0]
	}
	return "rules " + strings.Join(rules, ", ")
}

// requestRules is every rule a request needs, each once: the first, then
// those of its parts.
func requestRules(r approvals.Request) []string {
	rules := []string{masking.Display(r.Rule)}
	for _, p := range r.Parts {
		if d := masking.Display(p.Rule); !slices.Contains(rules, d) {
			rules = append(rules, d)
		}
	}
	return rules
}

func newApprovalsShowCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{Use: "show ID", Short: "Show one approval request", Args: cobra.ExactArgs(1)}
	dir := dataDirFlag(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.RunE = func(c *cobra.Command, args []string) error {
		id, err := approvalID(args[0])
		if err != nil {
			return err
		}
		return withApprovals(*dir, func(svc *approvals.Service) error {
			r, err := svc.Get(c.Context(), id)
			if err != nil {
				return decisionError(err)
			}
			if asJSON {
				return writeIndentedJSON(c.OutOrStdout(), r)
			}
			printRequest(c.OutOrStdout(), r)
			return nil
		})
	}
	return cmd
}

// printRequest shows a request to an approver. Every value that an agent
// or a policy message may have filled in goes through masking.Display, so
// no byte of it can move the cursor, conceal text, reorder the line or
// write the clipboard: the approver reads what the bytes are. The command
// is shown whole, a numbered line per line when it has several, with the
// SHA-256 that the approval binds to and every part that needs it.
func printRequest(w io.Writer, r *approvals.Request) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, masking.Display(v))
		}
	}
	line("ID", r.ID)
	line("Status", listStatus(*r, time.Now()))
	line("Requester", r.Requester.String())
	line("Sponsor", r.Requester.Sponsor)
	line("Session", r.SessionID)
	line("Target", r.Target)
	line("Cwd", r.Cwd)
	line("Rule", r.Rule)
	line("Reason", r.Reason)
	line("Agent's reason", r.AgentReason)
	line("Task", r.Task)
	line("Created", r.Created.Local().Format(time.RFC3339))
	line("Expires", r.Expires.Local().Format(time.RFC3339))
	if r.Decider != nil {
		line("Decided by", r.Decider.String())
	}
	if !r.Decided.IsZero() {
		line("Decided", r.Decided.Local().Format(time.RFC3339))
	}
	line("Comment", r.Comment)
	if r.ForSession > 0 {
		line("For session", fmt.Sprintf("rule %s granted to the session for %s", r.Rule, r.ForSession))
	}
	line("SHA256", r.Sum())
	tw.Flush()
	if len(r.Parts) > 0 {
		fmt.Fprintln(w, "Needs approval:")
		for _, p := range r.Parts {
			fmt.Fprintf(w, "    [rule %s] %s", masking.Display(p.Rule), masking.Display(p.Text))
			if p.Reason != "" {
				fmt.Fprintf(w, ": %s", masking.Display(p.Reason))
			}
			fmt.Fprintln(w)
		}
	}
	fmt.Fprintf(w, "Command (sha256 %s):\n", approvals.ShortSum(r.Sum()))
	writeCommand(w, r.Command)
}

// writeCommand writes a command indented, rendered by masking.Display. A
// command of several lines gets a numbered line per line: the numbers are
// the marker that the text cannot forge, since no rendered line holds a
// line break.
func writeCommand(w io.Writer, cmd string) {
	lines := masking.DisplayLines(cmd)
	if len(lines) == 1 {
		fmt.Fprintf(w, "    %s\n", lines[0])
		return
	}
	for i, l := range lines {
		fmt.Fprintf(w, "  %3d  %s\n", i+1, l)
	}
}

func newApprovalsApproveCmd() *cobra.Command {
	var (
		comment, as, sum string
		forSession       time.Duration
	)
	cmd := &cobra.Command{
		Use:   "approve ID [--hash SHA256]",
		Short: "Approve a pending request: its command runs once",
		Long: `Approve a pending request. The approval binds the exact command in the
requesting session, once: bastion runs it only if its bytes have the SHA-256
that 'approvals show' prints. With --hash, the first 8 or more hex digits
of that SHA-256 as you saw it, the approval is refused unless the request's
command has it: what you approve is what you looked at. With --for-session D
the request's rule is also granted to that session for D, so later commands
under the same rule run without asking (a command that another rule also
holds still asks). You cannot approve a request you made, nor one of an
agent you sponsor (four eyes); names are compared ignoring case and
invisible characters.`,
		Args: cobra.ExactArgs(1),
	}
	dir := dataDirFlag(cmd)
	cmd.Flags().StringVar(&sum, "hash", "", "the command's sha256 as 'approvals show' printed it (at least 8 hex digits): approve only that")
	cmd.Flags().StringVar(&comment, "comment", "", "why, for the audit log and the agent")
	cmd.Flags().DurationVar(&forSession, "for-session", 0, "also grant the rule to the session for this long (e.g. 10m)")
	cmd.Flags().StringVar(&as, "as", "", "approver subject (default: $USER, or operator)")
	cmd.RunE = func(c *cobra.Command, args []string) error {
		id, err := approvalID(args[0])
		if err != nil {
			return err
		}
		if forSession < 0 {
			return withCode(64, fmt.Errorf("--for-session must not be negative"))
		}
		return withApprovals(*dir, func(svc *approvals.Service) error {
			r, err := svc.ApproveSum(c.Context(), id, sum, approver(as), comment, forSession)
			if err != nil {
				return decisionError(err)
			}
			out := c.OutOrStdout()
			fmt.Fprintf(out, "approved %s (sha256 %s, %s): %s\n", r.ID, approvals.ShortSum(r.Sum()), ruleList(*r), oneLine(r.Command, 200))
			if r.ForSession > 0 {
				fmt.Fprintf(out, "rule %s granted to session %s for %s\n", masking.Display(r.Rule), masking.Display(r.SessionID), r.ForSession)
			}
			return nil
		})
	}
	return cmd
}

func newApprovalsDenyCmd() *cobra.Command {
	var comment, as string
	cmd := &cobra.Command{
		Use:   "deny ID --comment C",
		Short: "Deny a pending request, telling the agent why",
		Args:  cobra.ExactArgs(1),
	}
	dir := dataDirFlag(cmd)
	cmd.Flags().StringVar(&comment, "comment", "", "why, and what to do instead; the agent sees it (required)")
	cmd.Flags().StringVar(&as, "as", "", "approver subject (default: $USER, or operator)")
	cmd.RunE = func(c *cobra.Command, args []string) error {
		id, err := approvalID(args[0])
		if err != nil {
			return err
		}
		if strings.TrimSpace(comment) == "" {
			return withCode(64, errors.New("--comment is required: tell the agent why, and what to do instead"))
		}
		return withApprovals(*dir, func(svc *approvals.Service) error {
			r, err := svc.Deny(c.Context(), id, approver(as), comment)
			if err != nil {
				return decisionError(err)
			}
			fmt.Fprintf(c.OutOrStdout(), "denied %s (sha256 %s): %s\n", r.ID, approvals.ShortSum(r.Sum()), oneLine(r.Command, 200))
			return nil
		})
	}
	return cmd
}

// newApprovalsRequestCmd creates a request the way a session does, for
// demos and scripted tests of the approval flow. It grants nothing by
// itself: an approval is consumed only by the session that holds the
// request's id.
func newApprovalsRequestCmd() *cobra.Command {
	var (
		id, session, command, rule, reason, subject, kind string
		sponsor, agentReason                              string
		parts                                             []string
		timeout                                           time.Duration
	)
	cmd := &cobra.Command{
		Use:    "request --session S --command C --rule R --subject SUB",
		Short:  "Create a pending request as a session would (demos and tests)",
		Args:   cobra.NoArgs,
		Hidden: true,
	}
	dir := dataDirFlag(cmd)
	cmd.Flags().StringVar(&id, "id", "", "request id (default: a fresh one)")
	cmd.Flags().StringVar(&session, "session", "", "session id (required)")
	cmd.Flags().StringVar(&command, "command", "", "command held (required)")
	cmd.Flags().StringVar(&rule, "rule", "manual", "policy rule")
	cmd.Flags().StringVar(&reason, "reason", "", "policy reason")
	cmd.Flags().StringVar(&subject, "subject", "", "requester subject (required)")
	cmd.Flags().StringVar(&kind, "kind", "agent", "requester kind: agent or human")
	cmd.Flags().StringVar(&sponsor, "sponsor", "", "the human who sponsors the requesting agent")
	cmd.Flags().StringVar(&agentReason, "agent-reason", "", "the agent's stated reason (BASTION_REASON)")
	cmd.Flags().StringArrayVar(&parts, "part", nil, "RULE=TEXT: a part of the command that needs approval (repeatable)")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "how long it may wait (default 5m)")
	for _, f := range []string{"session", "command", "subject"} {
		cmd.MarkFlagRequired(f)
	}
	cmd.RunE = func(c *cobra.Command, _ []string) error {
		if kind != string(identity.KindAgent) && kind != string(identity.KindHuman) {
			return withCode(64, fmt.Errorf("--kind must be agent or human, not %q", kind))
		}
		req := approvals.Request{ID: id, SessionID: session, Command: command, Rule: rule, Reason: reason, AgentReason: agentReason,
			Requester: identity.Provenance{Kind: identity.Kind(kind), Subject: subject, Sponsor: sponsor}}
		for _, p := range parts {
			r, text, ok := strings.Cut(p, "=")
			if !ok || r == "" {
				return withCode(64, fmt.Errorf("--part wants RULE=TEXT, not %q", p))
			}
			req.Parts = append(req.Parts, approvals.Part{Text: text, Rule: r})
		}
		return withApprovals(*dir, func(svc *approvals.Service) error {
			svc.Timeout = timeout
			r, err := svc.Create(c.Context(), req)
			if err != nil {
				return withCode(1, err)
			}
			fmt.Fprintln(c.OutOrStdout(), r.ID)
			return nil
		})
	}
	return cmd
}

// newApprovalsWaitCmd waits for a decision like a held session does, with
// the session's exit codes: 0 approved, 212 denied, 213 expired or
// cancelled (Ctrl-C cancels the request).
func newApprovalsWaitCmd() *cobra.Command {
	var poll time.Duration
	cmd := &cobra.Command{
		Use:    "wait ID",
		Short:  "Wait for a request's decision (exit 0 approved, 212 denied, 213 expired or cancelled)",
		Args:   cobra.ExactArgs(1),
		Hidden: true,
	}
	dir := dataDirFlag(cmd)
	cmd.Flags().DurationVar(&poll, "poll", 20*time.Millisecond, "how often to look for a decision made elsewhere")
	cmd.RunE = func(c *cobra.Command, args []string) error {
		id, err := approvalID(args[0])
		if err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(c.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return withApprovals(*dir, func(svc *approvals.Service) error {
			svc.Poll = poll
			r, err := svc.Wait(ctx, id)
			if err != nil {
				return withCode(bastion.ExitInternal, err)
			}
			msg := fmt.Sprintf("%s %s", r.ID, r.Status)
			if r.Decider != nil {
				msg += " by " + masking.Display(r.Decider.Subject)
			}
			if r.Comment != "" {
				msg += ": " + masking.Display(r.Comment)
			}
			fmt.Fprintln(c.OutOrStdout(), msg)
			switch r.Status {
			case approvals.Approved:
				return nil
			case approvals.Denied:
				return withCode(bastion.ExitApprovalDenied, nil)
			}
			return withCode(bastion.ExitApprovalTimeout, nil)
		})
	}
	return cmd
}
