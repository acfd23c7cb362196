package sqlpolicy_test

import (
	"fmt"

	"github.com/bastion-dev/bastion/policy"
	"github.com/bastion-dev/bastion/shellpolicy/sqlpolicy"
)

func ExampleClassify() {
	r := sqlpolicy.Classify("DELETE FROM users WHERE 1 = 1")
	fmt.Println(r.Decision, r.Rule)
	fmt.Println(r.Reason)
	fmt.Println(r.Hint)
	// Output:
	// approve sql-unrestricted-delete
	// DELETE FROM users has a WHERE clause that holds for every row: deletes every row
	// add a WHERE clause on the rows to delete, or wait for a human to approve
}

func ExampleClassifier_Classify() {
	out := sqlpolicy.Default().Classify("BEGIN; UPDATE accounts SET balance = 0 WHERE id = 7; DROP TABLE audit; COMMIT")
	fmt.Println(out.Decision, out.Rule, "-", out.Reason)
	for _, s := range out.Statements {
		fmt.Printf("%-7s %-11s %-15s %s\n", s.Result.Decision, s.Kind, s.Result.Rule, s.Text)
	}
	// Output:
	// deny sql-drop - DROP TABLE audit: dropping destroys the object and everything in it
	// allow   BEGIN       sql-transaction BEGIN
	// allow   UPDATE      sql-write       UPDATE accounts SET balance = 0 WHERE id = 7
	// deny    DROP TABLE  sql-drop        DROP TABLE audit
	// allow   COMMIT      sql-transaction COMMIT
}

func ExampleNew() {
	c, err := sqlpolicy.New([]sqlpolicy.Rule{
		// Loosen a built-in for some tables only.
		{ID: "sql-truncate", Tables: []string{"tmp_*"}, Decision: policy.Allow},
		// Add a check.
		{ID: "billing-writes", Kinds: []string{"INSERT", "UPDATE", "DELETE"}, Tables: []string{"billing.*"},
			Decision: policy.Approve, Message: "billing data is audited"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, sql := range []string{"TRUNCATE tmp_import", "TRUNCATE users", "UPDATE billing.plans SET price = 0 WHERE id = 1"} {
		r := c.Classify(sql).Result
		fmt.Println(r.Decision, r.Rule)
	}
	// Output:
	// allow sql-truncate
	// deny sql-truncate
	// approve billing-writes
}

func ExampleParseRules() {
	rules, err := sqlpolicy.ParseRules([]byte(`
- id: sql-lock
  decision: allow
- id: no-pg-sleep
  functions: [pg_sleep*]
  decision: deny
  message: do not hold connections open
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	c, err := sqlpolicy.New(rules)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.Classify("SELECT pg_sleep(60)").Reason)
	_, err = sqlpolicy.ParseRules([]byte("- id: sql-drop\n  hint: ask a DBA\n"))
	fmt.Println(err != nil)
	// Output:
	// SELECT calling pg_sleep(): do not hold connections open
	// true
}

func ExampleDefaultRules() {
	for _, r := range sqlpolicy.DefaultRules()[:4] {
		fmt.Println(r.ID, r.Decision)
	}
	// Output:
	// sql-parse-error deny
	// sql-drop deny
	// sql-truncate deny
	// sql-copy-program deny
}

func ExampleClassifier_ClassifySetting() {
	// A client that asks for Shift-JIS in its startup message would have the
	// server read strings differently from bastion's parser.
	r := sqlpolicy.Default().ClassifySetting("client_encoding", "SJIS")
	fmt.Println(r.Decision, r.Rule)
	// Output:
	// deny sql-string-syntax
}
