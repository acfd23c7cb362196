package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/bastion-dev/bastion/config"
	"github.com/bastion-dev/bastion/policy"
	"github.com/bastion-dev/bastion/shellpolicy"
	"github.com/spf13/cobra"
)

func init() { register(newPolicyCmd) }

// Exit codes of `bastion policy check` and `explain`: the decision, so a
// script can branch on it without parsing output. Other tools depend on them.
const (
	exitAllow   = 0  // the command or statement may run
	exitApprove = 1  // it needs a human approval
	exitDeny    = 2  // it is refused; also: lint found errors
	exitUsage   = 64 // bad flags or arguments, or a --policy file that cannot be read or has errors (EX_USAGE)
)

// maxJSONLine bounds one line of --jsonl input. Longer lines get an error
// object and the run goes on.
const maxJSONLine = 64 << 20

func decisionExit(d policy.Decision) int {
	switch d {
	case policy.Allow:
		return exitAllow
	case policy.Approve:
		return exitApprove
	}
	return exitDeny
}

func usageError(format string, args ...any) error {
	return withCode(exitUsage, fmt.Errorf(format, args...))
}

func newPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Check commands against the shell policy, explain decisions, lint policy files",
		Long: `The shell policy decides every command an agent sends: allow (run it),
approve (hold it for a human) or deny (refuse it). These commands run the
same engine offline, on a command line, on SQL, or on a stream of JSON lines.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError("unknown command %q for \"bastion policy\"", args[0])
			}
			return nil
		},
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return withCode(exitUsage, err) })
	cmd.AddCommand(newPolicyCheckCmd(), newPolicyExplainCmd(), newPolicyShowDefaultCmd(), newPolicyLintCmd())
	return cmd
}

// policyFlags are the flags check and explain share.
type policyFlags struct {
	command, sql, file string
	in                 shellpolicy.Input
}

func (pf *policyFlags) add(c *cobra.Command) {
	c.Flags().StringVarP(&pf.command, "command", "c", "", "the shell command line to check (one line or a whole script)")
	c.Flags().StringVar(&pf.sql, "sql", "", "an SQL string to check with the SQL policy")
	c.Flags().StringVar(&pf.file, "policy", "", "policy file applied over the built-in policy (default: built-in only)")
	c.Flags().StringVar(&pf.in.Principal, "principal", "", "principal the command runs as, for shell and SQL rules scoped by principal")
	c.Flags().StringVar(&pf.in.Role, "role", "", "role of the agent, for shell and SQL rules scoped by role")
	c.Flags().StringVar(&pf.in.Target, "target", "", "database target the SQL goes to, for the policy's sql.targets rules (default: the sql rules for every target)")
}

// load returns the policy: the built-in one, or --policy over it.
func (pf *policyFlags) load() (*shellpolicy.Policy, error) {
	if pf.file == "" {
		return shellpolicy.Default(), nil
	}
	p, err := shellpolicy.Load(pf.file)
	if err != nil {
		return nil, withCode(exitUsage, fmt.Errorf("--policy: %w", err))
	}
	return p, nil
}

func (pf *policyFlags) decide(p *shellpolicy.Policy, c *cobra.Command) shellpolicy.Outcome {
	if c.Flags().Changed("sql") {
		return p.DecideSQL(pf.sql, pf.in)
	}
	return p.Decide(pf.command, pf.in)
}

// oneInput checks that exactly one of -c and --sql was given.
func (pf *policyFlags) oneInput(c *cobra.Command, jsonl bool) error {
	n := 0
	for _, f := range []string{"command", "sql", "jsonl"} {
		if c.Flags().Changed(f) {
			n++
		}
	}
	switch {
	case n == 0 && jsonl:
		return usageError("give -c 'COMMAND', --sql 'SQL' or --jsonl")
	case n == 0:
		return usageError("give -c 'COMMAND' or --sql 'SQL'")
	case n > 1:
		return usageError("give only one of -c, --sql and --jsonl")
	}
	return nil
}

const exitCodesHelp = `Exit status:
  0   allow: the command may run
  1   approve: the command needs a human approval
  2   deny: the command is refused
  64  usage error: no or several of -c/--sql/--jsonl, unknown flags or
      arguments, or a --policy file that cannot be read or has errors`

func newPolicyCheckCmd() *cobra.Command {
	var (
		pf       policyFlags
		asJSON   bool
		jsonLine bool
	)
	c := &cobra.Command{
		Use:   "check (-c 'COMMAND' | --sql 'SQL' | --jsonl) [--policy FILE] [--principal P] [--role R] [--target T] [--json]",
		Short: "Decide a command line or SQL statement, or a stream of them as JSON lines",
		Long: `Decide a shell command line (-c) or an SQL string (--sql) and print

  <decision>: <reason> [rule <id>]

or, with --json, one object {"decision","rule","reason","hint"}. Nothing is
run: the command is only parsed and analysed.

With --jsonl, standard input holds one JSON object per line, each with a
"cmd" (a shell command line) or an "sql" (SQL) field. Standard output gets
exactly one JSON object per input line, in order: the input object with all
its fields and values kept as written, plus "decision" (allow, approve or
deny), "rule" and "reason" (replacing fields of those names). A line with
both "cmd" and "sql" gets the stricter of the two decisions. A line that is
not a JSON object, has neither field, has cmd, sql or target twice (JSON
readers disagree on which one counts), or whose cmd, sql or target is not a
string gets an "error" field instead (with the input fields when it was an object); a
blank line gives {"error":"empty line"}. The run goes on after such lines
and exits 0 once standard input ends (1 if reading or writing fails).
Lines may be up to 64 MiB long. Output is flushed whenever no more input
is waiting, so a program may send one line and read its answer.

SQL is judged with the policy file's SQL rules: sql.rules for every
database target, and over them sql.targets.<name>.rules for the target
named by --target or, with --jsonl, by a line's optional "target" field (a
string; it replaces --target for that line and is kept in the output like
any other field; a target without rules of its own gets sql.rules). SQL
inside a shell command (psql -c, here-documents) is judged with sql.rules
alone, as bastion's shell does; the target's rules apply again when the
statement reaches the database proxy. --principal and --role pick the
rules scoped to them (principals:, roles:), shell and SQL rules alike.

` + exitCodesHelp,
		Example: `  bastion policy check -c 'rm -rf /tmp/build'
  bastion policy check --json -c 'kubectl delete pod web-1'
  bastion policy check --sql 'DROP TABLE users'
  bastion policy check --policy policy.yaml --target prod --sql 'TRUNCATE tmp_import'
  printf '%s\n' '{"id":1,"cmd":"ls"}' '{"id":2,"sql":"TRUNCATE t","target":"prod"}' | bastion policy check --jsonl`,
		Args: noArgs,
	}
	pf.add(c)
	c.Flags().BoolVar(&asJSON, "json", false, "print one JSON object instead of a line of text")
	c.Flags().BoolVar(&jsonLine, "jsonl", false, "read JSON lines with cmd or sql fields from stdin, write one result per line")
	c.RunE = func(c *cobra.Command, _ []string) error {
		if err := pf.oneInput(c, true); err != nil {
			return err
		}
		if jsonLine && asJSON {
			return usageError("--json and --jsonl do not go together (--jsonl output is JSON already)")
		}
		p, err := pf.load()
		if err != nil {
			return err
		}
		if jsonLine {
			w := bufio.NewWriterSize(c.OutOrStdout(), 64<<10)
			if err := checkJSONL(p, pf.in, c.InOrStdin(), w, maxJSONLine); err != nil {
				return withCode(1, err)
			}
			return nil
		}
		out := pf.decide(p, c)
		if asJSON {
			err = writeJSON(c.OutOrStdout(), resultJSON(out.Result))
		} else {
			_, err = fmt.Fprintln(c.OutOrStdout(), resultLine(out.Result))
		}
		if err != nil {
			return withCode(1, fmt.Errorf("write stdout: %w", err))
		}
		return withCode(decisionExit(out.Decision), nil)
	}
	return c
}

func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError("unexpected argument %q (quote the command and pass it with -c)", args[0])
	}
	return nil
}

// resultLine is the text form: deny: rm would delete / [rule rm-root].
func resultLine(r policy.Result) string {
	return fmt.Sprintf("%s: %s [rule %s]", r.Decision, r.Reason, r.Rule)
}

type checkResult struct {
	Decision string `json:"decision"`
	Rule     string `json:"rule"`
	Reason   string `json:"reason"`
	Hint     string `json:"hint"`
}

func resultJSON(r policy.Result) checkResult {
	return checkResult{Decision: r.Decision.String(), Rule: r.Rule, Reason: r.Reason, Hint: r.Hint}
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// checkJSONL decides every line of in and writes one object per line to w.
// Output is flushed whenever the input buffer runs dry, so a caller may feed
// lines one at a time and read each answer before sending the next. A line
// longer than maxLine bytes gets an error object.
func checkJSONL(p *shellpolicy.Policy, who shellpolicy.Input, in io.Reader, w *bufio.Writer, maxLine int) error {
	r := bufio.NewReaderSize(in, 64<<10)
	for {
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return fmt.Errorf("write stdout: %w", err)
			}
		}
		line, tooLong, err := readLine(r, maxLine)
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read stdin: %w", err)
		}
		if errors.Is(err, io.EOF) && len(line) == 0 && !tooLong {
			break
		}
		var out []byte
		if tooLong {
			out = errorObject(nil, fmt.Sprintf("line longer than %d bytes", maxLine))
		} else {
			out = decideLine(p, who, line)
		}
		if _, werr := w.Write(out); werr != nil {
			return fmt.Errorf("write stdout: %w", werr)
		}
		if errors.Is(err, io.EOF) {
			break
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write stdout: %w", err)
	}
	return nil
}

// readLine reads one line without its line ending. A line longer than max
// is read to its end and dropped (tooLong). At the end of the input err is
// io.EOF, with the last line when it had no newline.
func readLine(r *bufio.Reader, max int) (line []byte, tooLong bool, err error) {
	for {
		chunk, err := r.ReadSlice('\n')
		if !tooLong {
			if len(line)+len(chunk) > max+2 { // room for "\r\n"
				tooLong, line = true, nil
			} else {
				line = append(line, chunk...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		line = bytes.TrimSuffix(line, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		return line, tooLong, err
	}
}

// jsonMember is one member of a JSON object as written.
type jsonMember struct {
	key    string          // decoded, to find cmd and sql
	rawKey []byte          // as written (escapes kept); nil for keys bastion adds
	value  json.RawMessage // as written
}

// decideLine decides one input line and returns the output line.
func decideLine(p *shellpolicy.Policy, who shellpolicy.Input, line []byte) []byte {
	if len(bytes.TrimSpace(line)) == 0 {
		return errorObject(nil, "empty line")
	}
	if !json.Valid(line) {
		var v any
		err := json.Unmarshal(line, &v)
		return errorObject(nil, "invalid JSON: "+strings.TrimPrefix(fmt.Sprint(err), "json: "))
	}
	members, ok := objectMembers(line)
	if !ok {
		return errorObject(nil, "not a JSON object")
	}
	var cmd, sql, target *string
	for _, m := range members {
		var dst **string
		switch m.key {
		case "cmd":
			dst = &cmd
		case "sql":
			dst = &sql
		case "target":
			dst = &target
		default:
			continue
		}
		var s string
		if err := json.Unmarshal(m.value, &s); err != nil || bytes.Equal(bytes.TrimSpace(m.value), []byte("null")) {
			return errorObject(members, fmt.Sprintf("%q must be a string", m.key))
		}
		if *dst != nil {
			// JSON readers differ on which of two values counts: refuse
			// rather than decide one and have the caller run the other
			return errorObject(members, fmt.Sprintf("%q is given twice", m.key))
		}
		*dst = &s
	}
	if target != nil {
		who.Target = *target
	}
	var res policy.Result
	switch {
	case cmd == nil && sql == nil:
		return errorObject(members, `want a "cmd" or an "sql" string field`)
	case cmd != nil:
		res = p.Decide(*cmd, who).Result
		if sql != nil {
			if r := p.DecideSQL(*sql, who).Result; r.Stricter(res) {
				res = r
			}
		}
	default:
		res = p.DecideSQL(*sql, who).Result
	}
	members = setMember(members, "decision", res.Decision.String())
	members = setMember(members, "rule", res.Rule)
	members = setMember(members, "reason", res.Reason)
	return encodeObject(members)
}

// objectMembers reads the members of a JSON object in the order written,
// all of them (a key given twice is kept twice). ok is false when data is
// not an object.
func objectMembers(data []byte) ([]jsonMember, bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, false
	}
	var members []jsonMember
	for dec.More() {
		start := dec.InputOffset()
		t, err := dec.Token()
		if err != nil {
			return nil, false
		}
		key, _ := t.(string)
		rawKey := bytes.TrimLeft(data[start:dec.InputOffset()], " \t\r\n,")
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		members = append(members, jsonMember{key: key, rawKey: rawKey, value: v})
	}
	return members, true
}

// setMember sets key to the string value: in the place of the first
// member of that name (later ones are dropped), or at the end.
func setMember(members []jsonMember, key, value string) []jsonMember {
	v := jsonString(value)
	found := false
	out := members[:0:0]
	for _, m := range members {
		if m.key == key {
			if found {
				continue
			}
			found, m.value = true, v
		}
		out = append(out, m)
	}
	if !found {
		out = append(out, jsonMember{key: key, value: v})
	}
	return out
}

// jsonString encodes s without HTML escapes: reasons quote shell, and
// "&&" reads better than "\u0026\u0026".
func jsonString(s string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func errorObject(members []jsonMember, msg string) []byte {
	return encodeObject(setMember(members, "error", msg))
}

// encodeObject writes members as one line of JSON. Values are written as
// they came (compacted), so numbers such as 1e400 keep their digits.
func encodeObject(members []jsonMember) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range members {
		if i > 0 {
			b.WriteByte(',')
		}
		if m.rawKey != nil {
			b.Write(m.rawKey)
		} else {
			b.Write(jsonString(m.key))
		}
		b.WriteByte(':')
		if err := json.Compact(&b, m.value); err != nil { // impossible: the line was valid JSON
			b.WriteString("null")
		}
	}
	b.WriteString("}\n")
	return b.Bytes()
}

func newPolicyExplainCmd() *cobra.Command {
	var pf policyFlags
	c := &cobra.Command{
		Use:   "explain (-c 'COMMAND' | --sql 'SQL') [--policy FILE] [--principal P] [--role R] [--target T]",
		Short: "Show each command found in a command line, where it is, and the rule that decided it",
		Long: `Show how a command line is decided: every simple command found in it (after
quoting, literal variables and wrappers such as sudo, env or bash -c are
resolved), at line:col of the input, with its decision and rule, and then
the verdict for the whole line, the strictest of them.

` + exitCodesHelp,
		Example: `  bastion policy explain -c 'X=rm; sudo $X -rf /var/lib/postgresql'`,
		Args:    noArgs,
	}
	pf.add(c)
	c.RunE = func(c *cobra.Command, _ []string) error {
		if err := pf.oneInput(c, false); err != nil {
			return err
		}
		p, err := pf.load()
		if err != nil {
			return err
		}
		out := pf.decide(p, c)
		var b strings.Builder
		for _, f := range out.Findings {
			fmt.Fprintf(&b, "%s\t%s\n", f.Pos, quoteArgv(f.Command))
			fmt.Fprintf(&b, "\t%s\n", resultLine(f.Result))
		}
		if len(out.Findings) == 0 {
			b.WriteString("no commands\n")
		}
		fmt.Fprintf(&b, "verdict: %s\n", resultLine(out.Result))
		if out.Hint != "" {
			fmt.Fprintf(&b, "hint: %s\n", out.Hint)
		}
		if _, err := io.WriteString(c.OutOrStdout(), b.String()); err != nil {
			return withCode(1, fmt.Errorf("write stdout: %w", err))
		}
		return withCode(decisionExit(out.Decision), nil)
	}
	return c
}

// quoteArgv shows a command's words, quoting those that need it.
func quoteArgv(argv []string) string {
	parts := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && !strings.ContainsAny(a, " \t\n'\"\\$`;&|<>(){}*?[]#~") {
			parts[i] = a
			continue
		}
		parts[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func newPolicyShowDefaultCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show-default",
		Short: "Print the built-in policy as a policy file",
		Long: `Print the built-in policy. It is a valid policy file: copy the rules you
want to change into your own file (a rule is overridden by its id).`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if _, err := c.OutOrStdout().Write(shellpolicy.DefaultYAML()); err != nil {
				return withCode(1, fmt.Errorf("write stdout: %w", err))
			}
			return nil
		},
	}
}

func newPolicyLintCmd() *cobra.Command {
	var configPath string
	c := &cobra.Command{
		Use:   "lint FILE [--config bastion.yaml]",
		Short: "Check a policy file",
		Long: `Check a policy file ("-" reads standard input). When it is valid, print a
one-line summary (and one for its sql: section, if any) and exit 0;
otherwise print each error as file:line:col: message and exit 2. A file
that cannot be read exits 64.

The sql: section holds SQL rules: sql.rules for every database target (and
for SQL in shell commands), sql.targets.<name>.rules for one target. With
--config, each sql.targets name must be a database target of that
configuration (databases:); one that is not is an error, as it is for
bastion serve, since its rules would apply nowhere. Without --config the
names are not checked and a warning says so on standard error.`,
		Example: `  bastion policy lint policy.yaml
  bastion policy lint --config /etc/bastion/bastion.yaml policy.yaml`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError("lint takes one policy file, got %d arguments", len(args))
			}
			return nil
		},
	}
	c.Flags().StringVar(&configPath, "config", "", "bastion.yaml whose databases the policy's sql.targets must name")
	c.RunE = func(c *cobra.Command, args []string) error {
		name := args[0]
		var data []byte
		var err error
		if name == "-" {
			name = "<stdin>"
			data, err = io.ReadAll(c.InOrStdin())
		} else {
			data, err = os.ReadFile(name)
		}
		if err != nil {
			return withCode(exitUsage, fmt.Errorf("lint: %w", err))
		}
		var databases []string
		if configPath != "" {
			cfg, err := config.Load(configPath)
			if err != nil {
				return withCode(exitUsage, fmt.Errorf("lint: --config: %w", err))
			}
			for _, d := range cfg.Databases {
				databases = append(databases, d.Name)
			}
		}
		p, err := shellpolicy.Parse(data, name)
		if err == nil && configPath != "" {
			err = p.CheckSQLTargets(databases)
		}
		out := c.OutOrStdout()
		var perrs shellpolicy.ParseErrors
		switch {
		case errors.As(err, &perrs):
			for _, e := range perrs {
				fmt.Fprintln(out, e)
			}
			return withCode(exitDeny, nil)
		case err != nil:
			fmt.Fprintln(out, err)
			return withCode(exitDeny, nil)
		}
		s := p.Summary()
		fmt.Fprintf(out, "%s: ok: %d rules in the file (%d override built-in rules), %d rules in effect\n",
			name, s.FileRules, s.Overrides, s.Rules)
		if targets := p.SQLTargets(); s.SQLRules > 0 || len(targets) > 0 {
			fmt.Fprintf(out, "%s: sql: %d rules for every database target, %d targets with rules of their own%s\n",
				name, s.SQLRules, len(targets), listSuffix(targets))
			if len(targets) > 0 && configPath == "" {
				fmt.Fprintf(c.ErrOrStderr(), "%s: warning: sql.targets names (%s) are not checked against the configured databases; pass --config to check them (bastion serve refuses unknown names)\n",
					name, strings.Join(targets, ", "))
			}
		}
		return nil
	}
	return c
}

// listSuffix is " (a, b)", or "" for no names.
func listSuffix(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return " (" + strings.Join(names, ", ") + ")"
}
