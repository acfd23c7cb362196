package certs

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/identity"
	"golang.org/x/crypto/ssh"
)

// t0 is the fixed "now" of signing and checking tests.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func clockAt(t time.Time) func() time.Time { return func() time.Time { return t } }

// seededSigner returns a deterministic ed25519 signer, so tests need no
// entropy and examples print stable output.
func seededSigner(t testing.TB, seed byte) ssh.Signer {
	t.Helper()
	s, err := ssh.NewSignerFromKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var agentProv = identity.Provenance{
	Kind:    identity.KindAgent,
	Subject: "repo:acme/api:ref:refs/heads/main",
	Issuer:  "https://token.actions.githubusercontent.com",
	Sponsor: "octocat",
	Task:    "JIRA-42",
	Role:    "deploy-agent",
}

func userReq(pub ssh.PublicKey) UserRequest {
	return UserRequest{PublicKey: pub, Provenance: agentProv, Principals: []string{"agent"}}
}

// mustSign signs a default user certificate at t0.
func mustSign(t testing.TB, ca ssh.Signer, req UserRequest) *ssh.Certificate {
	t.Helper()
	cert, err := SignUser(ca, req, Options{Clock: clockAt(t0)})
	if err != nil {
		t.Fatalf("SignUser: %v", err)
	}
	return cert
}

// resign changes a signed certificate and signs it again with ca: the way
// to build certificates SignUser refuses to make.
func resign(t testing.TB, ca ssh.Signer, cert *ssh.Certificate, mutate func(*ssh.Certificate)) *ssh.Certificate {
	t.Helper()
	c := *cert
	c.Permissions = ssh.Permissions{
		CriticalOptions: cloneMap(cert.CriticalOptions),
		Extensions:      cloneMap(cert.Extensions),
	}
	c.ValidPrincipals = append([]string(nil), cert.ValidPrincipals...)
	mutate(&c)
	// Sign by hand (PROTOCOL.certkeys: the signature covers everything
	// before it), since SignCert refuses some of what tests need, such as
	// an empty principal list.
	c.SignatureKey, c.Signature = ca.PublicKey(), nil
	c.Nonce = make([]byte, 32)
	if _, err := rand.Read(c.Nonce); err != nil {
		t.Fatal(err)
	}
	data := c.Marshal()
	sig, err := ca.Sign(rand.Reader, data[:len(data)-4]) // drop the empty signature's length
	if err != nil {
		t.Fatal(err)
	}
	c.Signature = sig
	return &c
}

func cloneMap(m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func tcpAddr(s string) net.Addr { return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s)) }

func refusedReason(err error) string {
	var re *RefusedError
	if errors.As(err, &re) {
		return re.Reason
	}
	return ""
}
