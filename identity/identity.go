// Package identity describes who is behind a session: the provenance bastion
// carries in certificates, audit events and recordings.
package identity

// Kind says whether an identity is a workload (agent) or a person (human).
type Kind string

const (
	KindAgent Kind = "agent"
	KindHuman Kind = "human"
)

// Provenance says who a certificate was issued to and on whose behalf. It is
// carried as JSON in the identity@bastion extension of every user
// certificate, and in every audit event and recording header.
type Provenance struct {
	Kind    Kind   `json:"kind"`
	Subject string `json:"subject"`
	Issuer  string `json:"issuer,omitempty"`
	// Sponsor is the human responsible for an agent, when the token names one.
	Sponsor string `json:"sponsor,omitempty"`
	// Task is the ticket or task the agent said it works on.
	Task string `json:"task,omitempty"`
	// Role is the bastion role the token's claims mapped to.
	Role string `json:"role,omitempty"`
}

// String names the identity the way key ids and logs do: "agent:sub@issuer".
func (p Provenance) String() string {
	s := string(p.Kind) + ":" + p.Subject
	if p.Issuer != "" {
		s += "@" + p.Issuer
	}
	return s
}
