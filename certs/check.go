package certs

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/bastion-dev/bastion/identity"
	"golang.org/x/crypto/ssh"
)

// Reasons a [Checker] refuses a key. They are stable, contain no secret and
// no client-chosen text, and are meant for audit events and metrics.
const (
	ReasonNotCertificate      = "not a certificate"
	ReasonNotUserCert         = "not a user certificate"
	ReasonNoAuthority         = "no user CA configured"
	ReasonUnknownAuthority    = "unknown authority"
	ReasonUnknownOption       = "unknown critical option"
	ReasonNoPrincipals        = "no principals"
	ReasonWrongPrincipal      = "principal not allowed"
	ReasonNotYetValid         = "not yet valid"
	ReasonExpired             = "expired"
	ReasonUnbounded           = "unbounded validity"
	ReasonBadSignature        = "bad signature"
	ReasonSourceAddress       = "source address not allowed"
	ReasonRevoked             = "revoked"
	ReasonRevocationUnchecked = "revocation check failed"
	ReasonBadProvenance       = "bad provenance"
)

// RefusedError is a refused authentication. Reason is one of the Reason
// constants; Err is the underlying cause, for the log (it may name
// principals or serials, never a secret).
type RefusedError struct {
	Reason string
	Err    error
}

func (e *RefusedError) Error() string {
	if e.Err != nil {
		return "certs: refused: " + e.Reason + ": " + e.Err.Error()
	}
	return "certs: refused: " + e.Reason
}

func (e *RefusedError) Unwrap() error { return e.Err }

func refuse(reason string, err error) *RefusedError { return &RefusedError{Reason: reason, Err: err} }

// Checker authenticates SSH user certificates. Its zero value refuses
// everything (there is no trusted CA).
type Checker struct {
	// UserCAs returns the trusted user CA keys: the current one and,
	// after a rotation, the previous one. nil trusts nothing.
	UserCAs func() []ssh.PublicKey
	// IsRevoked reports whether a certificate is revoked, by serial or key
	// id. nil means nothing is revoked. An error refuses the key: a
	// revocation list that cannot be read fails closed.
	IsRevoked func(serial uint64, keyID string) (bool, error)
	// Clock is the time certificates are checked at; nil means time.Now.
	Clock func() time.Time
}

// Identity is an authenticated certificate holder.
type Identity struct {
	Provenance  identity.Provenance
	Serial      uint64
	KeyID       string
	Principal   string // the login name it authenticated as
	ValidBefore time.Time
	Extensions  map[string]string // a copy of the certificate's extensions
	Cert        *ssh.Certificate
}

// Check authenticates key for login user from remote. It accepts only a
// user certificate signed by one of UserCAs, within its validity window,
// listing user among its principals, with no critical option other than
// source-address (which remote must satisfy), not revoked, and carrying a
// provenance that matches its key id. Refusals are [*RefusedError].
//
// The certificate checks themselves are x/crypto's ssh.CertChecker; Check
// adds source-address (which x/crypto enforces only inside its own server
// handshake, on the Permissions it returns), revocation with errors, and
// provenance, and labels each refusal with a stable reason.
func (c *Checker) Check(user string, remote net.Addr, key ssh.PublicKey) (*Identity, error) {
	cert, ok := key.(*ssh.Certificate)
	if !ok {
		return nil, refuse(ReasonNotCertificate, nil)
	}
	var cas []ssh.PublicKey
	if c.UserCAs != nil {
		cas = c.UserCAs()
	}
	if len(cas) == 0 {
		return nil, refuse(ReasonNoAuthority, nil)
	}
	clock := c.Clock
	if clock == nil {
		clock = time.Now
	}
	now := clock()
	isCA := func(k ssh.PublicKey) bool {
		return slices.ContainsFunc(cas, func(ca ssh.PublicKey) bool { return sameKey(ca, k) })
	}
	cc := ssh.CertChecker{
		IsUserAuthority:          isCA,
		Clock:                    func() time.Time { return now },
		SupportedCriticalOptions: []string{OptionSourceAddress},
	}
	if _, err := cc.Authenticate(connMeta{user: user, remote: remote}, cert); err != nil {
		return nil, refuse(classify(cert, user, now, isCA), err)
	}
	if cert.ValidBefore == ssh.CertTimeInfinity {
		// bastion never issues these; one that claims forever is not ours.
		return nil, refuse(ReasonUnbounded, nil)
	}
	if list, ok := cert.CriticalOptions[OptionSourceAddress]; ok {
		if err := checkSourceAddress(remote, list); err != nil {
			return nil, refuse(ReasonSourceAddress, err)
		}
	}
	if c.IsRevoked != nil {
		revoked, err := c.IsRevoked(cert.Serial, cert.KeyId)
		if err != nil {
			return nil, refuse(ReasonRevocationUnchecked, err)
		}
		if revoked {
			return nil, refuse(ReasonRevoked, fmt.Errorf("serial %d, key id %q", cert.Serial, cert.KeyId))
		}
	}
	prov, err := ParseProvenance(cert)
	if err != nil {
		return nil, refuse(ReasonBadProvenance, err)
	}
	if prov.String() != cert.KeyId {
		return nil, refuse(ReasonBadProvenance, fmt.Errorf("key id %q does not match the provenance", cert.KeyId))
	}
	return &Identity{
		Provenance:  prov,
		Serial:      cert.Serial,
		KeyID:       cert.KeyId,
		Principal:   user,
		ValidBefore: time.Unix(int64(cert.ValidBefore), 0),
		Extensions:  maps.Clone(cert.Permissions.Extensions),
		Cert:        cert,
	}, nil
}

// classify names why ssh.CertChecker refused cert, testing its conditions
// in its order; a certificate that passes them all failed its signature.
func classify(cert *ssh.Certificate, user string, now time.Time, isCA func(ssh.PublicKey) bool) string {
	unix := now.Unix()
	switch {
	case cert.CertType != ssh.UserCert:
		return ReasonNotUserCert
	case !isCA(cert.SignatureKey):
		return ReasonUnknownAuthority
	case hasUnknownOption(cert):
		return ReasonUnknownOption
	case len(cert.ValidPrincipals) == 0:
		return ReasonNoPrincipals
	case user == "" || !slices.Contains(cert.ValidPrincipals, user):
		return ReasonWrongPrincipal
	case int64(cert.ValidAfter) < 0 || unix < int64(cert.ValidAfter):
		return ReasonNotYetValid
	case cert.ValidBefore != ssh.CertTimeInfinity && (int64(cert.ValidBefore) < 0 || unix >= int64(cert.ValidBefore)):
		return ReasonExpired
	}
	return ReasonBadSignature
}

func hasUnknownOption(cert *ssh.Certificate) bool {
	for o := range cert.CriticalOptions {
		if o != OptionSourceAddress {
			return true
		}
	}
	return false
}

// checkSourceAddress reports whether remote is inside the comma-separated
// list of CIDRs and addresses of a source-address critical option, as
// OpenSSH's addr_match_cidr_list does. A malformed entry refuses.
func checkSourceAddress(remote net.Addr, list string) error {
	prefixes, err := parseSourceAddress(list)
	if err != nil {
		return err
	}
	if remote == nil {
		return fmt.Errorf("no remote address to check against source-address %q", list)
	}
	var ip netip.Addr
	if t, ok := remote.(*net.TCPAddr); ok {
		ip = t.AddrPort().Addr()
	} else if ap, err := netip.ParseAddrPort(remote.String()); err == nil {
		ip = ap.Addr()
	} else {
		return fmt.Errorf("remote address %q: %w", remote.String(), err)
	}
	ip = ip.Unmap()
	for _, p := range prefixes {
		if p.Contains(ip) {
			return nil
		}
	}
	return fmt.Errorf("remote address %s is outside source-address %q", ip, list)
}

func parseSourceAddress(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range strings.Split(list, ",") {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
		} else if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		} else {
			return nil, fmt.Errorf("%w: malformed source-address entry %q", ErrInvalidRequest, s)
		}
	}
	return out, nil
}

// connMeta is the part of ssh.ConnMetadata that ssh.CertChecker reads.
type connMeta struct {
	user   string
	remote net.Addr
}

func (m connMeta) User() string          { return m.user }
func (m connMeta) SessionID() []byte     { return nil }
func (m connMeta) ClientVersion() []byte { return nil }
func (m connMeta) ServerVersion() []byte { return nil }
func (m connMeta) RemoteAddr() net.Addr  { return m.remote }
func (m connMeta) LocalAddr() net.Addr   { return nil }
