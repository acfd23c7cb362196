package certs

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	ca, prevCA, otherCA := seededSigner(t, 1), seededSigner(t, 5), seededSigner(t, 6)
	user := seededSigner(t, 2)
	valid := mustSign(t, ca, userReq(user.PublicKey()))
	fromPrev := mustSign(t, prevCA, userReq(user.PublicKey()))
	fromOther := mustSign(t, otherCA, userReq(user.PublicKey()))

	withSource := userReq(user.PublicKey())
	withSource.SourceAddress = []string{"10.0.0.0/8", "2001:db8::/32", "192.168.1.7"}
	sourceCert := mustSign(t, ca, withSource)

	hostCert, err := SignHost(ca, user.PublicKey(), []string{"agent"}, time.Hour, Options{Clock: clockAt(t0)})
	if err != nil {
		t.Fatal(err)
	}
	tampered := *valid
	tampered.KeyId = "human:root@https://evil.example"

	errStore := errors.New("revocation store unreachable")
	addr := tcpAddr("127.0.0.1:40000")
	validBefore := time.Unix(int64(valid.ValidBefore), 0)
	validAfter := time.Unix(int64(valid.ValidAfter), 0)

	tests := []struct {
		name      string
		key       ssh.PublicKey
		user      string // "": agent, unless emptyUser
		emptyUser bool
		remote    net.Addr // nil: 127.0.0.1, unless noRemote
		noRemote  bool
		clock     time.Time
		cas       []ssh.PublicKey // nil: the current CA
		noCAs     bool
		revoked   func(uint64, string) (bool, error)
		reason    string // "" means accepted
	}{
		{name: "valid", key: valid},
		{name: "one second before expiry", key: valid, clock: validBefore.Add(-time.Second)},
		{name: "at valid-after (skew)", key: valid, clock: validAfter},
		{name: "expired", key: valid, clock: validBefore, reason: ReasonExpired},
		{name: "long expired", key: valid, clock: validBefore.Add(24 * time.Hour), reason: ReasonExpired},
		{name: "not yet valid", key: valid, clock: validAfter.Add(-time.Second), reason: ReasonNotYetValid},
		{name: "wrong CA", key: fromOther, reason: ReasonUnknownAuthority},
		{name: "previous CA trusted after rotation", key: fromPrev, cas: []ssh.PublicKey{ca.PublicKey(), prevCA.PublicKey()}},
		{name: "previous CA dropped", key: fromPrev, reason: ReasonUnknownAuthority},
		{name: "no CA configured", key: valid, noCAs: true, reason: ReasonNoAuthority},
		{name: "revoked", key: valid, revoked: func(s uint64, id string) (bool, error) {
			return s == valid.Serial && id == valid.KeyId, nil
		}, reason: ReasonRevoked},
		{name: "another serial revoked", key: valid, revoked: func(s uint64, _ string) (bool, error) { return s == valid.Serial+1, nil }},
		{name: "revocation lookup fails closed", key: valid, revoked: func(uint64, string) (bool, error) { return false, errStore }, reason: ReasonRevocationUnchecked},
		{name: "wrong principal", key: valid, user: "root", reason: ReasonWrongPrincipal},
		{name: "empty user", key: valid, emptyUser: true, reason: ReasonWrongPrincipal},
		{name: "no principals", key: resign(t, ca, valid, func(c *ssh.Certificate) { c.ValidPrincipals = nil }), reason: ReasonNoPrincipals},
		{name: "host cert as user cert", key: hostCert, reason: ReasonNotUserCert},
		{name: "plain key", key: user.PublicKey(), reason: ReasonNotCertificate},
		{name: "source address inside", key: sourceCert, remote: tcpAddr("10.1.2.3:1234")},
		{name: "source address single ip", key: sourceCert, remote: tcpAddr("192.168.1.7:1234")},
		{name: "source address ipv6 inside", key: sourceCert, remote: tcpAddr("[2001:db8::5]:22")},
		{name: "source address v4-mapped inside", key: sourceCert, remote: tcpAddr("[::ffff:10.9.9.9]:22")},
		{name: "source address outside", key: sourceCert, remote: tcpAddr("192.168.1.8:1234"), reason: ReasonSourceAddress},
		{name: "source address loopback outside", key: sourceCert, remote: tcpAddr("127.0.0.1:1234"), reason: ReasonSourceAddress},
		{name: "source address no remote", key: sourceCert, noRemote: true, reason: ReasonSourceAddress},
		{name: "source address malformed", key: resign(t, ca, valid, func(c *ssh.Certificate) {
			c.CriticalOptions = map[string]string{OptionSourceAddress: "10.0.0.0/99"}
		}), remote: tcpAddr("10.0.0.1:1"), reason: ReasonSourceAddress},
		{name: "unknown critical option", key: resign(t, ca, valid, func(c *ssh.Certificate) {
			c.CriticalOptions = map[string]string{"force-command": "/bin/true"}
		}), reason: ReasonUnknownOption},
		{name: "tampered after signing", key: &tampered, reason: ReasonBadSignature},
		{name: "no provenance", key: resign(t, ca, valid, func(c *ssh.Certificate) { delete(c.Extensions, ExtensionIdentity) }), reason: ReasonBadProvenance},
		{name: "key id disagrees with provenance", key: resign(t, ca, valid, func(c *ssh.Certificate) {
			c.KeyId = "human:" + agentProv.Subject + "@" + agentProv.Issuer
		}), reason: ReasonBadProvenance},
		{name: "provenance with duplicate kind", key: resign(t, ca, valid, func(c *ssh.Certificate) {
			c.Extensions[ExtensionIdentity] = `{"kind":"agent","subject":"x","kind":"human"}`
			c.KeyId = "human:x"
		}), reason: ReasonBadProvenance},
		{name: "unbounded validity", key: resign(t, ca, valid, func(c *ssh.Certificate) { c.ValidBefore = ssh.CertTimeInfinity }), reason: ReasonUnbounded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cas := tt.cas
			if cas == nil {
				cas = []ssh.PublicKey{ca.PublicKey()}
			}
			c := &Checker{IsRevoked: tt.revoked, Clock: clockAt(t0)}
			if !tt.noCAs {
				c.UserCAs = func() []ssh.PublicKey { return cas }
			}
			if !tt.clock.IsZero() {
				c.Clock = clockAt(tt.clock)
			}
			u := tt.user
			if u == "" && !tt.emptyUser {
				u = "agent"
			}
			remote := tt.remote
			if remote == nil && !tt.noRemote {
				remote = addr
			}
			id, err := c.Check(u, remote, tt.key)
			if got := refusedReason(err); got != tt.reason {
				t.Fatalf("reason = %q, want %q (err %v)", got, tt.reason, err)
			}
			if tt.reason != "" {
				if id != nil {
					t.Fatal("identity returned with a refusal")
				}
				if !strings.Contains(err.Error(), tt.reason) {
					t.Errorf("error %q does not name the reason", err)
				}
				return
			}
			cert := tt.key.(*ssh.Certificate)
			if id.Serial != cert.Serial || id.KeyID != cert.KeyId || id.Principal != u || id.Cert != cert {
				t.Errorf("identity = %+v", id)
			}
			if !id.ValidBefore.Equal(time.Unix(int64(cert.ValidBefore), 0)) {
				t.Errorf("ValidBefore = %s", id.ValidBefore)
			}
			if d := cmp.Diff(agentProv, id.Provenance); d != "" {
				t.Errorf("provenance (-want +got):\n%s", d)
			}
			if _, ok := id.Extensions[ExtensionPermitPTY]; !ok {
				t.Error("permit-pty missing from identity extensions")
			}
		})
	}
}

func TestCheckRevocationCauseIsKept(t *testing.T) {
	t.Parallel()
	ca, user := seededSigner(t, 1), seededSigner(t, 2)
	cert := mustSign(t, ca, userReq(user.PublicKey()))
	errStore := errors.New("store down")
	c := &Checker{
		UserCAs:   func() []ssh.PublicKey { return []ssh.PublicKey{ca.PublicKey()} },
		IsRevoked: func(uint64, string) (bool, error) { return false, errStore },
		Clock:     clockAt(t0),
	}
	_, err := c.Check("agent", tcpAddr("127.0.0.1:1"), cert)
	if !errors.Is(err, errStore) {
		t.Fatalf("err = %v, want it to wrap the store error for the log", err)
	}
}

func TestCheckIdentityExtensionsAreACopy(t *testing.T) {
	t.Parallel()
	ca, user := seededSigner(t, 1), seededSigner(t, 2)
	cert := mustSign(t, ca, userReq(user.PublicKey()))
	c := &Checker{UserCAs: func() []ssh.PublicKey { return []ssh.PublicKey{ca.PublicKey()} }, Clock: clockAt(t0)}
	id, err := c.Check("agent", tcpAddr("127.0.0.1:1"), cert)
	if err != nil {
		t.Fatal(err)
	}
	id.Extensions[ExtensionPermitPortForwarding] = ""
	if _, ok := cert.Extensions[ExtensionPermitPortForwarding]; ok {
		t.Fatal("changing the identity's extensions changed the certificate")
	}
}
