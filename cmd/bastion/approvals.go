package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/bastion-dev/bastion/approvals"
	"github.com/bastion-dev/bastion/bastion"
	"github.com/bastion-dev/bastion/identity"
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
				return printJSON(c.OutOrStdout(), list)
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
			fmt.Fprintln(tw, "ID\tSTATUS\tCREATED\tREQUESTER\tRULE\tCOMMAND")
			for _, r := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, listStatus(r, time.Now()), r.Created.Local().Format(time.DateTime),
					r.Requester.String(), r.Rule, oneLine(r.Command, 60))
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

// oneLine shows a command on one table line: newlines escaped, long ones cut.
func oneLine(s string, n int) string {
	s = strings.NewReplacer("\n", `\n`, "\t", " ").Replace(s)
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
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
				return printJSON(c.OutOrStdout(), r)
			}
			printRequest(c.OutOrStdout(), r)
			return nil
		})
	}
	return cmd
}

func printRequest(w io.Writer, r *approvals.Request) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, v)
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
	tw.Flush()
	fmt.Fprintf(w, "Command:\n%s\n", indent(r.Command))
}

func indent(s string) string { return "    " + strings.ReplaceAll(s, "\n", "\n    ") }

func newApprovalsApproveCmd() *cobra.Command {
	var (
		comment, as string
		forSession  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "approve ID",
		Short: "Approve a pending request: its command runs once",
		Long: `Approve a pending request. The approval binds the exact command in the
requesting session, once. With --for-session D the request's rule is also
granted to that session for D, so later commands under the same rule run
without asking. You cannot approve a request you made (four eyes).`,
		Args: cobra.ExactArgs(1),
	}
	dir := dataDirFlag(cmd)
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
			r, err := svc.Approve(c.Context(), id, approver(as), comment, forSession)
			if err != nil {
				return decisionError(err)
			}
			fmt.Fprintf(c.OutOrStdout(), "approved %s: %s\n", r.ID, oneLine(r.Command, 200))
			if r.ForSession > 0 {
				fmt.Fprintf(c.OutOrStdout(), "rule %s granted to session %s for %s\n", r.Rule, r.SessionID, r.ForSession)
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
			fmt.Fprintf(c.OutOrStdout(), "denied %s: %s\n", r.ID, oneLine(r.Command, 200))
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
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "how long it may wait (default 5m)")
	for _, f := range []string{"session", "command", "subject"} {
		cmd.MarkFlagRequired(f)
	}
	cmd.RunE = func(c *cobra.Command, _ []string) error {
		if kind != string(identity.KindAgent) && kind != string(identity.KindHuman) {
			return withCode(64, fmt.Errorf("--kind must be agent or human, not %q", kind))
		}
		return withApprovals(*dir, func(svc *approvals.Service) error {
			svc.Timeout = timeout
			r, err := svc.Create(c.Context(), approvals.Request{ID: id, SessionID: session, Command: command, Rule: rule, Reason: reason,
				Requester: identity.Provenance{Kind: identity.Kind(kind), Subject: subject}})
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
				msg += " by " + r.Decider.Subject
			}
			if r.Comment != "" {
				msg += ": " + r.Comment
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
