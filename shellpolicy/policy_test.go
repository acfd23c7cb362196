package shellpolicy

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/bastion-dev/bastion/policy"
)

func TestDefaultYAMLParsesToTheBuiltInPolicy(t *testing.T) {
	t.Parallel()
	p, err := Parse(DefaultYAML(), "default.yaml")
	if err != nil {
		t.Fatalf("Parse(DefaultYAML()): %v", err)
	}
	if got, want := p.RuleIDs(), Default().RuleIDs(); !slices.Equal(got, want) {
		t.Fatalf("rule ids differ:\n got %v\nwant %v", got, want)
	}
	s := p.Summary()
	if s.FileRules != s.Rules || s.Overrides != s.Rules || s.Rules != len(Default().RuleIDs()) {
		t.Errorf("Summary() = %+v, want every rule defined by the file and overriding a built-in one", s)
	}
	// The file compiled over the built-in policy decides exactly like it,
	// findings and words included.
	for _, tc := range decideCases {
		got, want := p.Decide(tc.cmd, Input{}), Default().Decide(tc.cmd, Input{})
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: Decide(%q)\n got %+v\nwant %+v", tc.name, tc.cmd, got, want)
		}
	}
}

func TestDefaultYAMLIsACopy(t *testing.T) {
	t.Parallel()
	b := DefaultYAML()
	b[0] = 'X'
	if DefaultYAML()[0] == 'X' {
		t.Fatal("DefaultYAML returns the package's own slice")
	}
}

func TestBuiltInRules(t *testing.T) {
	t.Parallel()
	ids := Default().RuleIDs()
	for _, id := range codeRules {
		if !slices.Contains(ids, id) {
			t.Errorf("rule %q used by the analysis is missing from default.yaml", id)
		}
	}
	for _, id := range ids {
		v := Default().rules[id].variants
		if len(v) != 1 || v[0].message == "" {
			t.Errorf("rule %q: want one definition with a message, got %d definitions", id, len(v))
		}
		if !ruleIDRe.MatchString(id) {
			t.Errorf("rule id %q is not lower-case words joined by dashes", id)
		}
	}
	// every rule id a case expects exists (SQL rules come from sqlpolicy)
	for _, tc := range decideCases {
		if !slices.Contains(ids, tc.rule) && !strings.HasPrefix(tc.rule, "sql-") {
			t.Errorf("%s: rule %q does not exist", tc.name, tc.rule)
		}
	}
}

func TestNilPolicyIsTheDefault(t *testing.T) {
	t.Parallel()
	var p *Policy
	if got := p.Decide("rm -rf /", Input{}); got.Decision != deny || got.Rule != "rm-root" {
		t.Errorf("nil policy: got %s [rule %s], want deny [rule rm-root]", got.Decision, got.Rule)
	}
	if !slices.Equal(p.RuleIDs(), Default().RuleIDs()) {
		t.Error("nil policy: RuleIDs differ from Default")
	}
}

// overrideFile is a policy file exercising every kind of override.
const overrideFile = `version: 1
rules:
  # stricter: kubectl delete is refused outright
  - id: kubectl-delete
    decision: deny
    message: "no deletes in this cluster ({arg})"
    hint: "scale to zero instead"
  # off: force pushes are fine here
  - id: git-force-push
    disabled: true
  # scoped: the deploy bot may apply, everyone else still waits
  - id: terraform-apply
    decision: allow
    principals: [deploy-bot]
  # scoped by role, twice
  - id: service-stop
    decision: allow
    roles: [operator]
  - id: service-stop
    decision: deny
    roles: [readonly]
  # an analysis rule: deleting temp files needs approval for agents
  - id: rm-temp
    decision: approve
    roles: [agent]
  # new rules
  - id: no-npm-publish
    decision: deny
    message: "{cmd} publish is not allowed here"
    match: {command: [npm, pnpm, yarn], args: ["publish"]}
  - id: prod-context
    decision: approve
    message: "touches the production cluster"
    match:
      - {command: [kubectl], args_regex: "--context[= ]prod"}
  - id: protect-app-data
    decision: deny
    message: "{cmd} would delete {arg}"
    match: {target_prefix: [/srv/app/data]}
  - id: curl-pattern
    decision: approve
    match: {command: ["wg*"], args: ["*.sh|*.bash"]}
`

func TestPolicyFileOverrides(t *testing.T) {
	t.Parallel()
	p, err := Parse([]byte(overrideFile), "override.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if s := p.Summary(); s.FileRules != 9 || s.Overrides != 5 || s.Rules != len(Default().RuleIDs())+4 {
		t.Errorf("Summary() = %+v, want 9 file rules, 5 overrides, %d rules", s, len(Default().RuleIDs())+4)
	}
	bot := Input{Principal: "deploy-bot"}
	tests := []struct {
		name   string
		cmd    string
		in     Input
		want   policy.Decision
		rule   string
		reason string // a substring of the reason
		hint   string
	}{
		{"stricter with own words", "kubectl delete pod web-1", Input{}, deny, "kubectl-delete", "no deletes in this cluster (delete)", "scale to zero instead"},
		{"disabled", "git push --force origin main", Input{}, allow, "default-allow", "no rule restricts", ""},
		{"scoped to principal", "terraform apply", bot, allow, "terraform-apply", "terraform apply changes infrastructure", ""},
		{"scoped elsewhere keeps built-in", "terraform apply", Input{Principal: "alice"}, approve, "terraform-apply", "", ""},
		{"scope does not leak to other rules", "terraform destroy", bot, approve, "terraform-destroy", "", ""},
		{"role operator", "systemctl restart nginx", Input{Role: "operator"}, allow, "service-stop", "", ""},
		{"role readonly", "systemctl restart nginx", Input{Role: "readonly"}, deny, "service-stop", "", ""},
		{"no role keeps built-in", "systemctl restart nginx", Input{}, approve, "service-stop", "", ""},
		{"analysis rule scoped", "rm -rf /tmp/x", Input{Role: "agent"}, approve, "rm-temp", "a temporary path", ""},
		{"analysis rule other role", "rm -rf /tmp/x", Input{Role: "operator"}, allow, "rm-temp", "", ""},
		{"new rule", "npm publish", Input{}, deny, "no-npm-publish", "npm publish is not allowed here", ""},
		{"new rule other name", "sudo yarn publish --access public", Input{}, deny, "no-npm-publish", "yarn publish", ""},
		{"new rule no hit", "npm install", Input{}, allow, "default-allow", "", ""},
		{"new rule through obfuscation", `X=npm; "$X" pub''lish`, Input{}, deny, "no-npm-publish", "", ""},
		{"new rule dynamic argument", `npm "$CMD"`, Input{}, approve, "no-npm-publish", "arguments are not known", ""},
		{"args regex", "kubectl --context prod get pods", Input{}, approve, "prod-context", "production", ""},
		{"args regex equals", "kubectl get pods --context=prod", Input{}, approve, "prod-context", "", ""},
		{"args regex no hit", "kubectl --context staging get pods", Input{}, allow, "default-allow", "", ""},
		{"target prefix", "rm -rf /srv/app/data/uploads", Input{}, deny, "protect-app-data", "rm would delete", ""},
		{"target prefix via cd", "cd /srv/app && rm -rf data", Input{}, deny, "protect-app-data", "", ""},
		{"target prefix write", "echo x > /srv/app/data/f", Input{}, deny, "protect-app-data", "", ""},
		{"target prefix sibling", "rm -rf /srv/app/database", Input{}, approve, "rm-app-path", "", ""},
		// a path that may be under the prefix holds the command, without denying it
		{"target prefix dynamic", "rm -rf /srv/app/$X", Input{}, approve, "rm-dynamic-target", "", ""},
		{"target prefix dynamic write", "echo x > /srv/app/$X", Input{}, approve, "protect-app-data", "arguments are not known", ""},
		{"target prefix unknown cwd", "rm -rf data", Input{}, approve, "rm-app-path", "", ""},
		{"command pattern", "wget https://x/install.sh", Input{}, approve, "curl-pattern", "", ""},
		{"command pattern no hit", "wget https://x/file.tgz", Input{}, allow, "default-allow", "", ""},
		{"built-in untouched", "rm -rf /", Input{}, deny, "rm-root", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := p.Decide(tc.cmd, tc.in)
			if out.Decision != tc.want || out.Rule != tc.rule || !strings.Contains(out.Reason, tc.reason) || !strings.Contains(out.Hint, tc.hint) {
				t.Errorf("Decide(%q, %+v) = %s [rule %s] %q hint %q\nwant %s [rule %s] reason containing %q, hint containing %q",
					tc.cmd, tc.in, out.Decision, out.Rule, out.Reason, out.Hint, tc.want, tc.rule, tc.reason, tc.hint)
			}
		})
	}
	// the default policy is not changed by parsing a file over it
	if got := Default().Decide("git push --force", Input{}); got.Rule != "git-force-push" {
		t.Errorf("Default() changed: %+v", got)
	}
}

func TestPolicyFileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		file string
		want []string // "line:col: substring of the message", in order
	}{
		{"yaml syntax", "version: 1\nrules:\n  - id: x\n    decision: [deny\n", []string{"4:15: sequence end token"}},
		{"tab indent", "version: 1\nrules:\n\t- id: x\n", []string{"3:1: "}},
		{"unknown top field", "version: 1\nrule: []\n", []string{`2:1: unknown field "rule"`}},
		{"unknown rule field", "version: 1\nrules:\n  - id: x\n    decison: deny\n", []string{`4:5: unknown field "decison" in rule`}},
		{"unknown match field", "version: 1\nrules:\n  - id: m\n    decision: deny\n    match: {commandx: x}\n", []string{`5:13: unknown field "commandx" in match`}},
		{"bad decision", "version: 1\nrules:\n  - id: kubectl-delete\n    decision: maybe\n", []string{`4:15: unknown decision "maybe"`}},
		{"bad version", "version: 2\nrules: []\n", []string{`1:10: unsupported version "2"`}},
		{"missing version", "rules: []\n", []string{"1:1: missing version"}},
		{"empty file", "", []string{"1:1: empty policy file"}},
		{"two documents", "version: 1\n---\nversion: 1\n", []string{"3:1: a policy file holds one YAML document"}},
		{"rules not a list", "version: 1\nrules: {id: x}\n", []string{"2:8: rules must be a list"}},
		{"rule not a mapping", "version: 1\nrules:\n  - just-a-string\n", []string{"3:5: a rule must be a mapping"}},
		{"bad id", "version: 1\nrules:\n  - id: Bad_Id\n    decision: deny\n", []string{`3:9: rule id "Bad_Id"`}},
		{"no id", "version: 1\nrules:\n  - decision: deny\n", []string{"3:5: rule without an id"}},
		{"duplicate id", "version: 1\nrules:\n  - id: kubectl-delete\n    decision: deny\n  - id: kubectl-delete\n    decision: allow\n", []string{`5:9: rule "kubectl-delete" is already defined`}},
		{"duplicate field", "version: 1\nrules:\n  - id: x\n    id: y\n", []string{`4:5: mapping key "id" already defined`}},
		{"disable unknown", "version: 1\nrules:\n  - id: nope\n    disabled: true\n", []string{`3:9: there is no built-in rule "nope"`}},
		{"disabled not bool", "version: 1\nrules:\n  - id: rm-temp\n    disabled: yes please\n", []string{"4:15: disabled: want true or false"}},
		{"new rule without decision", "version: 1\nrules:\n  - id: newr\n    match: {command: x}\n", []string{`3:9: rule "newr" needs a decision`}},
		{"new rule without match", "version: 1\nrules:\n  - id: newr\n    decision: deny\n", []string{`3:9: rule "newr" needs a match`}},
		{"floor allow", "version: 1\nrules:\n  - id: dynamic-command\n    decision: allow\n", []string{`3:9: rule "dynamic-command" guards what bastion cannot check`}},
		{"floor disabled", "version: 1\nrules:\n  - id: parse-error\n    disabled: true\n", []string{`3:9: rule "parse-error" guards`}},
		{"floor allow scoped", "version: 1\nrules:\n  - id: remote-code\n    decision: allow\n    roles: [ci]\n", []string{`3:9: rule "remote-code" guards`}},
		{"fallback disabled", "version: 1\nrules:\n  - id: default-allow\n    disabled: true\n", []string{`3:9: rule "default-allow" is the fallback`}},
		{"relative target", "version: 1\nrules:\n  - id: t\n    decision: deny\n    match: {target_prefix: [relative]}\n", []string{`5:28: target_prefix: "relative" is not an absolute path`}},
		{"bad regex", "version: 1\nrules:\n  - id: t\n    decision: deny\n    match: {args_regex: \"(\"}\n", []string{"5:25: args_regex: error parsing regexp"}},
		{"bad command pattern", "version: 1\nrules:\n  - id: t\n    decision: deny\n    match: {command: [\"a[\"]}\n", []string{`5:22: command: bad name or pattern "a["`}},
		{"command with slash", "version: 1\nrules:\n  - id: t\n    decision: deny\n    match: {command: /bin/rm}\n", []string{`5:22: command: bad name or pattern "/bin/rm"`}},
		{"empty match", "version: 1\nrules:\n  - id: t\n    decision: deny\n    match: {}\n", []string{"5:12: empty match"}},
		{"empty match list", "version: 1\nrules:\n  - id: t\n    decision: deny\n    match: []\n", []string{"5:12: match: empty list"}},
		{"anchor", "version: 1\nrules:\n  - id: t\n    decision: &d deny\n", []string{"4:15: YAML anchors"}},
		{"every error reported, in order", "version: 1\nrules:\n  - id: dynamic-command\n    decision: allow\n  - id: Bad\n    decision: deny\n  - id: newr\n    decision: deny\nfoo: 1\n",
			[]string{`3:9: rule "dynamic-command" guards`, `5:9: rule id "Bad"`, `7:9: rule "newr" needs a match`, `9:1: unknown field "foo"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tc.file), "p.yaml")
			var errs ParseErrors
			if !errors.As(err, &errs) {
				t.Fatalf("Parse: got %v (%T), want ParseErrors", err, err)
			}
			if len(errs) != len(tc.want) {
				t.Fatalf("Parse: got %d errors, want %d:\n%v", len(errs), len(tc.want), err)
			}
			for i, e := range errs {
				got := e.Error()
				if e.File != "p.yaml" || !strings.HasPrefix(got, "p.yaml:") || !strings.Contains(got, tc.want[i]) {
					t.Errorf("error %d = %q, want p.yaml:%s...", i, got, tc.want[i])
				}
			}
		})
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte(overrideFile), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := Load(good)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Decide("npm publish", Input{}); got.Rule != "no-npm-publish" {
		t.Errorf("loaded policy: got rule %q, want no-npm-publish", got.Rule)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("version: 1\nrules:\n  - id: x\n    decison: deny\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(bad)
	var errs ParseErrors
	if !errors.As(err, &errs) || errs[0].File != bad || errs[0].Line != 4 || errs[0].Col != 5 {
		t.Errorf("Load(bad) = %v, want a ParseError at %s:4:5", err, bad)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want fs.ErrNotExist", err)
	}
}

func TestFindings(t *testing.T) {
	t.Parallel()
	out := Default().Decide("ls -la\nX=rm; sudo $X -rf /var/lib/postgresql && echo ok\nbash -c 'kubectl delete pod x'", Input{})
	want := []struct {
		pos  string
		argv []string
		rule string
	}{
		{"1:1", []string{"ls", "-la"}, "default-allow"},
		{"2:7", []string{"rm", "-rf", "/var/lib/postgresql"}, "rm-database-dir"},
		{"2:42", []string{"echo", "ok"}, "default-allow"},
		{"3:1", []string{"kubectl", "delete", "pod", "x"}, "kubectl-delete"}, // nested code reports the outer position
	}
	if len(out.Findings) != len(want) {
		t.Fatalf("got %d findings, want %d: %+v", len(out.Findings), len(want), out.Findings)
	}
	for i, w := range want {
		f := out.Findings[i]
		if f.Pos != w.pos || !slices.Equal(f.Command, w.argv) || f.Result.Rule != w.rule {
			t.Errorf("finding %d = %s %q %s, want %s %q %s", i, f.Pos, f.Command, f.Result.Rule, w.pos, w.argv, w.rule)
		}
	}
	if out.Decision != deny || out.Rule != "rm-database-dir" {
		t.Errorf("verdict %s [rule %s], want the strictest finding", out.Decision, out.Rule)
	}

	pe := Default().Decide("ls\necho 'x", Input{})
	if len(pe.Findings) != 1 || pe.Findings[0].Pos != "2:6" || pe.Rule != "parse-error" || !strings.Contains(pe.Reason, "2:6") {
		t.Errorf("parse error finding: %+v", pe)
	}
}

func TestReasonsAreOneReadableLine(t *testing.T) {
	t.Parallel()
	for _, cmd := range []string{
		"bash <<< \"$X\"",
		"rm -rf \"$(mktemp -d)\"/../..",
		"cd ~ && rm -rf *",
		"psql <<'SQL'\nDROP\n  TABLE\n  users;\nSQL",
		"bash -c '" + strings.Repeat("x", 2000) + " $Y'",
		":(){ :|:& };:",
		"eval \"$A\n$B\"",
	} {
		out := Default().Decide(cmd, Input{})
		if strings.ContainsAny(out.Reason, "\n\r"+sAny+sTok) {
			t.Errorf("Decide(%q): reason %q holds a line break or an internal marker", cmd, out.Reason)
		}
		for _, f := range out.Findings {
			for _, s := range f.Command {
				if strings.ContainsAny(s, sAny+sTok) {
					t.Errorf("Decide(%q): finding %q holds an internal marker", cmd, f.Command)
				}
			}
		}
		if len(out.Reason) > maxReason+len("…") {
			t.Errorf("Decide(%q): reason is %d bytes long", cmd, len(out.Reason))
		}
	}
}

func TestDecideSQL(t *testing.T) {
	t.Parallel()
	out := Default().DecideSQL("select 1;\n  drop table x;", Input{Principal: "p"})
	if out.Decision != deny || out.Rule != "sql-drop" {
		t.Errorf("DecideSQL: %s [rule %s]", out.Decision, out.Rule)
	}
	if len(out.Findings) != 2 || out.Findings[1].Pos != "2:3" || out.Findings[1].Command[0] != "drop table x" {
		t.Errorf("DecideSQL findings: %+v", out.Findings)
	}
	if bad := Default().DecideSQL("selec", Input{}); bad.Decision != deny || len(bad.Findings) != 1 {
		t.Errorf("DecideSQL(selec) = %+v, want one deny finding", bad)
	}
}

func TestInputIsNotExecuted(t *testing.T) {
	t.Parallel()
	// The analysis is static: a command that would create a file does not.
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	for _, cmd := range []string{"touch " + marker, "echo x > " + marker, "bash -c 'touch " + marker + "'", "$(touch " + marker + ")"} {
		Default().Decide(cmd, Input{})
	}
	if _, err := os.Stat(marker); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a command was executed: %v", err)
	}
}

// Two rules with a match and the same decision hit one command: the first
// defined wins, every time (the rules were once indexed in map order).
func TestEqualRulesTieInDefinitionOrder(t *testing.T) {
	t.Parallel()
	const file = "version: 1\nrules:\n  - id: service-stop\n    decision: deny\n    roles: [readonly]\n" +
		"  - id: no-nginx-stop\n    decision: deny\n    match: {command: [systemctl], args: [stop, nginx]}\n"
	for range 20 {
		p := mustParse(t, file) // a new map each time
		for _, tc := range []struct{ cmd, rule string }{
			{"systemctl stop auditd", "disable-audit"}, // default.yaml defines it before service-stop
			{"systemctl stop nginx", "service-stop"},   // a file's new rule comes after the built-in ones
		} {
			if out := p.Decide(tc.cmd, Input{Role: "readonly"}); out.Decision != deny || out.Rule != tc.rule {
				t.Fatalf("Decide(%q) = %s [rule %s], want deny [rule %s]", tc.cmd, out.Decision, out.Rule, tc.rule)
			}
		}
	}
}
