package shellpolicy

import (
	"testing"

	"github.com/bastion-dev/bastion/policy"
)

// SQL inside a shell command (psql -c) is decided with the agent's own
// scoped SQL rules, as a statement through the tunnel is.
func TestEmbeddedSQLUsesScopedRules(t *testing.T) {
	t.Parallel()
	p, err := Parse([]byte(`version: 1
sql:
  rules:
    - id: no-secrets-for-agents
      tables: [secrets]
      decision: deny
      message: agents do not read secrets
      roles: [agent]
`), "policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const cmd = `psql -c 'SELECT k FROM secrets'`
	for _, tc := range []struct {
		role string
		want policy.Decision
	}{{"agent", policy.Deny}, {"ops", policy.Allow}} {
		got := p.Decide(cmd, Input{Principal: tc.role, Role: tc.role}).Result
		if got.Decision != tc.want || tc.want == policy.Deny && got.Rule != "no-secrets-for-agents" {
			t.Errorf("role %s: %s [rule %s], want %s", tc.role, got.Decision, got.Rule, tc.want)
		}
	}
}
