package certs_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"time"

	"github.com/bastion-dev/bastion/certs"
	"github.com/bastion-dev/bastion/identity"
	"golang.org/x/crypto/ssh"
)

// signer makes a deterministic key for the examples; real CAs come from
// certs.InitCAs and agents' keys from the agents.
func signer(seed byte) ssh.Signer {
	s, err := ssh.NewSignerFromKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize)))
	if err != nil {
		return nil
	}
	return s
}

func ExampleSignUser() {
	ca, agentKey := signer(1), signer(2)
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

	cert, err := certs.SignUser(ca, certs.UserRequest{
		PublicKey: agentKey.PublicKey(),
		Provenance: identity.Provenance{
			Kind:    identity.KindAgent,
			Subject: "repo:acme/api:ref:refs/heads/main",
			Issuer:  "https://token.actions.githubusercontent.com",
			Sponsor: "octocat",
			Role:    "deploy-agent",
		},
		Principals: []string{"deploy"},
		TTL:        10 * time.Minute,
	}, certs.Options{Clock: func() time.Time { return now }})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("key id:    ", cert.KeyId)
	fmt.Println("principals:", cert.ValidPrincipals)
	fmt.Println("valid:     ", time.Unix(int64(cert.ValidAfter), 0).UTC().Format(time.TimeOnly),
		"to", time.Unix(int64(cert.ValidBefore), 0).UTC().Format(time.TimeOnly))
	fmt.Println("extensions:", slices.Sorted(maps.Keys(cert.Extensions)))
	fmt.Println("provenance:", cert.Extensions[certs.ExtensionIdentity])
	// Output:
	// key id:     agent:repo:acme/api:ref:refs/heads/main@https://token.actions.githubusercontent.com
	// principals: [deploy]
	// valid:      03:03:05 to 03:14:05
	// extensions: [identity@bastion permit-pty]
	// provenance: {"kind":"agent","subject":"repo:acme/api:ref:refs/heads/main","issuer":"https://token.actions.githubusercontent.com","sponsor":"octocat","role":"deploy-agent"}
}

func ExampleChecker_Check() {
	ca, agentKey := signer(1), signer(2)
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := func() time.Time { return now }

	cert, err := certs.SignUser(ca, certs.UserRequest{
		PublicKey:     agentKey.PublicKey(),
		Provenance:    identity.Provenance{Kind: identity.KindAgent, Subject: "system:serviceaccount:ci:builder", Issuer: "https://kubernetes.default.svc"},
		Principals:    []string{"ci"},
		SourceAddress: []string{"10.0.0.0/8"},
	}, certs.Options{Clock: clock})
	if err != nil {
		fmt.Println(err)
		return
	}

	checker := &certs.Checker{
		UserCAs:   func() []ssh.PublicKey { return []ssh.PublicKey{ca.PublicKey()} },
		IsRevoked: func(serial uint64, keyID string) (bool, error) { return false, nil },
		Clock:     clock,
	}
	from := &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 50000}

	id, err := checker.Check("ci", from, cert)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("accepted:", id.Provenance.String(), "as", id.Principal)

	// Refusals carry a stable reason for the audit log.
	for _, try := range []struct {
		user string
		from net.Addr
	}{
		{"root", from},
		{"ci", &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 50000}},
	} {
		_, err := checker.Check(try.user, try.from, cert)
		var refused *certs.RefusedError
		if errors.As(err, &refused) {
			fmt.Println("refused:", refused.Reason)
		}
	}
	// Output:
	// accepted: agent:system:serviceaccount:ci:builder@https://kubernetes.default.svc as ci
	// refused: principal not allowed
	// refused: source address not allowed
}
