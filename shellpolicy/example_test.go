package shellpolicy_test

import (
	"fmt"

	"github.com/bastion-dev/bastion/shellpolicy"
)

func ExamplePolicy_Decide() {
	p := shellpolicy.Default()
	for _, cmd := range []string{
		"ls -la /var/log",
		"rm -rf /tmp/build",
		"kubectl delete pod web-1",
		"X=rm; sudo $X -rf /",
		"echo 'rm -rf /'",
		"$(curl -s https://x) --now",
	} {
		out := p.Decide(cmd, shellpolicy.Input{Principal: "deploy"})
		fmt.Printf("%-7s %-17s %s\n", out.Decision, out.Rule, cmd)
	}
	// Output:
	// allow   default-allow     ls -la /var/log
	// allow   rm-temp           rm -rf /tmp/build
	// approve kubectl-delete    kubectl delete pod web-1
	// deny    rm-root           X=rm; sudo $X -rf /
	// allow   default-allow     echo 'rm -rf /'
	// approve dynamic-command   $(curl -s https://x) --now
}

func ExamplePolicy_Decide_explain() {
	out := shellpolicy.Default().Decide("cd /srv/app && git pull\nsudo systemctl restart app", shellpolicy.Input{})
	for _, f := range out.Findings {
		fmt.Println(f.Pos, f.Command, f.Result.Decision, f.Result.Rule)
	}
	fmt.Println(out.Decision, out.Reason)
	// Output:
	// 1:1 [cd /srv/app] allow default-allow
	// 1:16 [git pull] allow default-allow
	// 2:1 [systemctl restart app] approve service-stop
	// approve stops, restarts or disables a service
}

func ExampleParse() {
	file := []byte(`version: 1
rules:
  - id: kubectl-delete      # a built-in rule, made stricter for everyone
    decision: deny
  - id: service-stop        # ... and looser for one principal
    decision: allow
    principals: [deploy-bot]
  - id: no-npm-publish      # a new rule
    decision: deny
    message: "{cmd} publish is not allowed here"
    match: {command: [npm, pnpm], args: [publish]}
`)
	p, err := shellpolicy.Parse(file, "policy.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range []struct{ cmd, who string }{
		{"kubectl delete pod web-1", ""},
		{"systemctl restart app", "deploy-bot"},
		{"systemctl restart app", "alice"},
		{"pnpm publish", ""},
	} {
		out := p.Decide(c.cmd, shellpolicy.Input{Principal: c.who})
		fmt.Printf("%s: %s [rule %s]\n", c.cmd, out.Decision, out.Rule)
	}

	_, err = shellpolicy.Parse([]byte("version: 1\nrules:\n  - id: kubectl-delete\n    decision: never\n"), "bad.yaml")
	fmt.Println(err)
	// Output:
	// kubectl delete pod web-1: deny [rule kubectl-delete]
	// systemctl restart app: allow [rule service-stop]
	// systemctl restart app: approve [rule service-stop]
	// pnpm publish: deny [rule no-npm-publish]
	// bad.yaml:4:15: unknown decision "never" (want allow, approve or deny)
}

func ExamplePolicy_SQLClassifier() {
	file := []byte(`version: 1
sql:
  rules:                    # every database target, and psql -c in shell commands
    - id: sql-truncate      # a built-in SQL rule, loosened for scratch tables
      tables: [tmp_*]
      decision: allow
  targets:
    prod:                   # a database target of bastion.yaml
      rules:
        - id: no-secrets    # a new rule, for prod only
          tables: [secrets]
          decision: deny
          message: secrets stay in prod
`)
	p, err := shellpolicy.Parse(file, "policy.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range []struct{ target, sql string }{
		{"", "TRUNCATE tmp_import"},
		{"prod", "TRUNCATE tmp_import"},
		{"", "SELECT * FROM secrets"},
		{"prod", "SELECT * FROM secrets"},
	} {
		out := p.SQLClassifier(c.target).Classify(c.sql)
		fmt.Printf("%-5s %-22s %s [rule %s]\n", c.target, c.sql, out.Decision, out.Rule)
	}
	fmt.Println(p.CheckSQLTargets([]string{"staging"}))
	// Output:
	//       TRUNCATE tmp_import    allow [rule sql-truncate]
	// prod  TRUNCATE tmp_import    allow [rule sql-truncate]
	//       SELECT * FROM secrets  allow [rule sql-read]
	// prod  SELECT * FROM secrets  deny [rule no-secrets]
	// policy.yaml:8:5: sql target "prod" is not a configured database target (configured: staging)
}
