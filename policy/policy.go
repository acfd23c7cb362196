// Package policy holds the decision vocabulary shared by the shell policy
// (shellpolicy) and the SQL policy (shellpolicy/sqlpolicy): allow, approve,
// deny, and the result that carries a decision with its rule and reason.
package policy

import "fmt"

// Decision is what bastion does with a command or statement. The order of the
// constants is the order of strictness: a compound input takes the Max of its
// parts.
type Decision int

const (
	Allow   Decision = iota // run it
	Approve                 // hold it for a human approval
	Deny                    // refuse it
)

func (d Decision) String() string {
	switch d {
	case Allow:
		return "allow"
	case Approve:
		return "approve"
	case Deny:
		return "deny"
	}
	return fmt.Sprintf("Decision(%d)", int(d))
}

// ParseDecision parses "allow", "approve" or "deny".
func ParseDecision(s string) (Decision, error) {
	switch s {
	case "allow":
		return Allow, nil
	case "approve":
		return Approve, nil
	case "deny":
		return Deny, nil
	}
	return Deny, fmt.Errorf("unknown decision %q (want allow, approve or deny)", s)
}

// MarshalText and UnmarshalText make a Decision a string in JSON and YAML.
func (d Decision) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

func (d *Decision) UnmarshalText(b []byte) error {
	v, err := ParseDecision(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Max returns the stricter of a and b.
func Max(a, b Decision) Decision {
	if b > a {
		return b
	}
	return a
}

// Result is a decision with the rule that made it and the words for the
// agent. Reason says what was found; Hint says what the agent can do next.
type Result struct {
	Decision Decision `json:"decision"`
	Rule     string   `json:"rule"`
	Reason   string   `json:"reason"`
	Hint     string   `json:"hint,omitempty"`
}

// Stricter reports whether r should replace cur when combining results: a
// stricter decision wins; on a tie the first result found is kept.
func (r Result) Stricter(cur Result) bool { return r.Decision > cur.Decision }
