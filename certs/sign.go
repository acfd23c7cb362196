package certs

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/bastion-dev/bastion/identity"
	"golang.org/x/crypto/ssh"
)

// Defaults for user certificates (DESIGN section 3).
const (
	DefaultTTL    = 15 * time.Minute
	DefaultMaxTTL = time.Hour
	// ClockSkew is how far before "now" a certificate becomes valid, so a
	// server whose clock is a little behind still accepts it.
	ClockSkew = time.Minute
	// MaxHostTTL caps host certificate lifetimes.
	MaxHostTTL = 5 * 365 * 24 * time.Hour
)

// Certificate extensions (OpenSSH PROTOCOL.certkeys).
const (
	ExtensionPermitPTY             = "permit-pty"
	ExtensionPermitPortForwarding  = "permit-port-forwarding"
	ExtensionPermitAgentForwarding = "permit-agent-forwarding"
	ExtensionPermitX11Forwarding   = "permit-X11-forwarding"
	ExtensionPermitUserRC          = "permit-user-rc"
	// ExtensionIdentity carries the JSON provenance of the certificate's holder.
	ExtensionIdentity = "identity@bastion"
	// OptionSourceAddress is the critical option restricting the client
	// addresses a certificate may be used from.
	OptionSourceAddress = "source-address"
)

// grantable lists the extensions a role may grant beyond permit-pty.
// Granting one only puts it in the certificate; the SSH server still
// refuses agent and X11 forwarding (DESIGN section 1).
var grantable = []string{ExtensionPermitPTY, ExtensionPermitPortForwarding, ExtensionPermitAgentForwarding, ExtensionPermitX11Forwarding, ExtensionPermitUserRC}

// UserRequest is what a user certificate is issued for.
type UserRequest struct {
	// PublicKey is the key to certify.
	PublicKey ssh.PublicKey
	// Provenance names the holder; it becomes the key id and the
	// identity@bastion extension.
	Provenance identity.Provenance
	// Principals are the login names the certificate is valid for.
	Principals []string
	// TTL is the lifetime; 0 means Options.DefaultTTL.
	TTL time.Duration
	// Extensions are granted in addition to permit-pty, e.g.
	// "permit-port-forwarding". Only the standard permit-* names are
	// accepted.
	Extensions []string
	// SourceAddress, if set, restricts use of the certificate to clients
	// in these CIDRs (or single addresses).
	SourceAddress []string
}

// Options tunes signing. The zero value works.
type Options struct {
	DefaultTTL time.Duration    // 0: DefaultTTL (15m)
	MaxTTL     time.Duration    // 0: DefaultMaxTTL (1h); user certificates only
	Clock      func() time.Time // nil: time.Now
	Rand       io.Reader        // nil: crypto/rand
	// Modifiers run after the built-in ones, before signing.
	Modifiers []Modifier
	// Validators run after the built-in ones, on the signed certificate.
	Validators []Validator
}

func (o Options) withDefaults() Options {
	if o.DefaultTTL == 0 {
		o.DefaultTTL = DefaultTTL
	}
	if o.MaxTTL == 0 {
		o.MaxTTL = DefaultMaxTTL
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	return o
}

// A Modifier sets part of a certificate before it is signed.
type Modifier func(*ssh.Certificate) error

// A Validator checks a signed certificate; any error discards it.
type Validator func(*ssh.Certificate) error

// SignUser issues a user certificate, in three steps: modifiers build it
// from req, the CA signs it, and validators check exactly what was signed
// (principals, key id, provenance, lifetime, key type, extensions, the
// signature). The key id is the provenance's String ("agent:sub@issuer");
// the identity@bastion extension carries the provenance as JSON, and only
// that extension is authoritative.
func SignUser(ca ssh.Signer, req UserRequest, opt Options) (*ssh.Certificate, error) {
	if ca == nil {
		return nil, fmt.Errorf("sign user certificate: no CA")
	}
	opt = opt.withDefaults()
	now := opt.Clock()
	mods := []Modifier{
		setKey(req.PublicKey),
		setType(ssh.UserCert),
		setSerial(opt.Rand),
		setKeyID(req.Provenance.String()),
		setPrincipals(req.Principals, isUserPrincipal),
		setValidity(now, req.TTL, opt.DefaultTTL, opt.MaxTTL),
		setExtensions(req.Extensions),
		setProvenance(req.Provenance),
		setSourceAddress(req.SourceAddress),
	}
	vals := []Validator{
		validKey(ca.PublicKey()),
		validPrincipals(isUserPrincipal),
		validKeyID,
		validProvenance,
		validLifetime(opt.MaxTTL),
		validExtensions,
		validSignature(ca.PublicKey(), now),
	}
	cert, err := sign(ca, opt, append(mods, opt.Modifiers...), append(vals, opt.Validators...))
	if err != nil {
		return nil, fmt.Errorf("sign user certificate for %q: %w", req.Provenance.String(), err)
	}
	return cert, nil
}

// SignHost issues a host certificate for pub, valid for principals (host
// names or addresses) during ttl (0: DefaultHostTTL; at most MaxHostTTL).
// Of opt, only Clock, Rand, Modifiers and Validators apply.
func SignHost(ca ssh.Signer, pub ssh.PublicKey, principals []string, ttl time.Duration, opt Options) (*ssh.Certificate, error) {
	if ca == nil {
		return nil, fmt.Errorf("sign host certificate: no CA")
	}
	opt = opt.withDefaults()
	if ttl == 0 {
		ttl = DefaultHostTTL
	}
	now := opt.Clock()
	id := "host"
	if len(principals) > 0 {
		id = "host:" + principals[0]
	}
	mods := []Modifier{
		setKey(pub),
		setType(ssh.HostCert),
		setSerial(opt.Rand),
		setKeyID(id),
		setPrincipals(principals, isHostPrincipal),
		setValidity(now, ttl, DefaultHostTTL, MaxHostTTL),
	}
	vals := []Validator{
		validKey(ca.PublicKey()),
		validPrincipals(isHostPrincipal),
		validKeyID,
		validLifetime(MaxHostTTL),
		validSignature(ca.PublicKey(), now),
	}
	cert, err := sign(ca, opt, append(mods, opt.Modifiers...), append(vals, opt.Validators...))
	if err != nil {
		return nil, fmt.Errorf("sign host certificate %q: %w", id, err)
	}
	return cert, nil
}

func sign(ca ssh.Signer, opt Options, mods []Modifier, vals []Validator) (*ssh.Certificate, error) {
	cert := &ssh.Certificate{}
	for _, m := range mods {
		if err := m(cert); err != nil {
			return nil, err
		}
	}
	if err := cert.SignCert(opt.Rand, ca); err != nil {
		return nil, err
	}
	for _, v := range vals {
		if err := v(cert); err != nil {
			return nil, err
		}
	}
	return cert, nil
}

// Modifiers.

func setKey(pub ssh.PublicKey) Modifier {
	return func(c *ssh.Certificate) error {
		if err := checkKeyType(pub); err != nil {
			return err
		}
		c.Key = pub
		return nil
	}
}

func setType(t uint32) Modifier {
	return func(c *ssh.Certificate) error { c.CertType = t; return nil }
}

// setSerial draws a random non-zero 64-bit serial (zero reads as "no
// serial" to OpenSSH's revocation lists).
func setSerial(r io.Reader) Modifier {
	return func(c *ssh.Certificate) error {
		var b [8]byte
		for range 8 {
			if _, err := io.ReadFull(r, b[:]); err != nil {
				return fmt.Errorf("serial: %w", err)
			}
			if c.Serial = binary.BigEndian.Uint64(b[:]); c.Serial != 0 {
				return nil
			}
		}
		return fmt.Errorf("serial: random source returns zeros")
	}
}

func setKeyID(id string) Modifier {
	return func(c *ssh.Certificate) error { c.KeyId = id; return nil }
}

// setPrincipals checks names before signing too: x/crypto refuses to sign
// an empty principal list, and a clear error beats its message.
func setPrincipals(p []string, ok func(string) bool) Modifier {
	return func(c *ssh.Certificate) error {
		c.ValidPrincipals = slices.Clone(p)
		return validPrincipals(ok)(c)
	}
}

func setValidity(now time.Time, ttl, def, maxTTL time.Duration) Modifier {
	return func(c *ssh.Certificate) error {
		if ttl == 0 {
			ttl = def
		}
		if ttl < 0 {
			return fmt.Errorf("%w: ttl %s is negative", ErrInvalidRequest, ttl)
		}
		if ttl > maxTTL {
			return fmt.Errorf("%w: %s > %s", ErrTTLTooLong, ttl, maxTTL)
		}
		after := now.Add(-ClockSkew).Unix()
		if after <= 0 {
			return fmt.Errorf("%w: clock reads %s", ErrInvalidRequest, now)
		}
		c.ValidAfter = uint64(after)
		c.ValidBefore = uint64(now.Add(ttl).Unix())
		return nil
	}
}

// setExtensions grants permit-pty and what the role grants, nothing else.
func setExtensions(granted []string) Modifier {
	return func(c *ssh.Certificate) error {
		if c.Extensions == nil {
			c.Extensions = map[string]string{}
		}
		c.Extensions[ExtensionPermitPTY] = ""
		for _, e := range granted {
			if !slices.Contains(grantable, e) {
				return fmt.Errorf("%w: extension %q cannot be granted", ErrInvalidRequest, e)
			}
			c.Extensions[e] = ""
		}
		return nil
	}
}

func setProvenance(p identity.Provenance) Modifier {
	return func(c *ssh.Certificate) error {
		b, err := EncodeProvenance(p)
		if err != nil {
			return err
		}
		if c.Extensions == nil {
			c.Extensions = map[string]string{}
		}
		c.Extensions[ExtensionIdentity] = string(b)
		return nil
	}
}

func setSourceAddress(cidrs []string) Modifier {
	return func(c *ssh.Certificate) error {
		if len(cidrs) == 0 {
			return nil
		}
		list, err := canonicalSourceAddress(cidrs)
		if err != nil {
			return err
		}
		if c.CriticalOptions == nil {
			c.CriticalOptions = map[string]string{}
		}
		c.CriticalOptions[OptionSourceAddress] = list
		return nil
	}
}

// canonicalSourceAddress parses each entry as a CIDR or a single address
// (the forms OpenSSH's addr_match_cidr_list accepts) and joins them.
func canonicalSourceAddress(cidrs []string) (string, error) {
	out := make([]string, 0, len(cidrs))
	for _, s := range cidrs {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.String())
		} else if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
			out = append(out, a.String())
		} else {
			return "", fmt.Errorf("%w: source address %q is not a CIDR or an IP address", ErrInvalidRequest, s)
		}
	}
	return strings.Join(out, ","), nil
}

// Validators.

// checkKeyType allows ed25519, ECDSA and RSA of at least 2048 bits; not
// DSA, not security-key types, not a certificate.
func checkKeyType(pub ssh.PublicKey) error {
	if pub == nil {
		return fmt.Errorf("%w: no public key", ErrKeyNotAllowed)
	}
	if _, ok := pub.(*ssh.Certificate); ok {
		return fmt.Errorf("%w: a certificate cannot be certified", ErrKeyNotAllowed)
	}
	switch pub.Type() {
	case ssh.KeyAlgoED25519:
		return nil
	case ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521:
		if cp, ok := pub.(ssh.CryptoPublicKey); ok {
			if _, ok := cp.CryptoPublicKey().(*ecdsa.PublicKey); ok {
				return nil
			}
		}
	case ssh.KeyAlgoRSA:
		if cp, ok := pub.(ssh.CryptoPublicKey); ok {
			if k, ok := cp.CryptoPublicKey().(*rsa.PublicKey); ok {
				if n := k.N.BitLen(); n < 2048 || n > 16384 {
					return fmt.Errorf("%w: RSA key of %d bits (need 2048 to 16384)", ErrKeyNotAllowed, n)
				}
				return nil
			}
		}
	}
	return fmt.Errorf("%w: key type %s", ErrKeyNotAllowed, pub.Type())
}

func validKey(caPub ssh.PublicKey) Validator {
	return func(c *ssh.Certificate) error {
		if err := checkKeyType(c.Key); err != nil {
			return err
		}
		if sameKey(c.Key, caPub) {
			return fmt.Errorf("%w: the key is the CA key", ErrKeyNotAllowed)
		}
		return nil
	}
}

func validPrincipals(ok func(string) bool) Validator {
	return func(c *ssh.Certificate) error {
		if len(c.ValidPrincipals) == 0 {
			return fmt.Errorf("%w: no principals", ErrInvalidRequest)
		}
		for _, p := range c.ValidPrincipals {
			if !ok(p) {
				return fmt.Errorf("%w: principal %q is not a valid name", ErrInvalidRequest, p)
			}
		}
		return nil
	}
}

// isUserPrincipal accepts login names: letters, digits, '.', '_', '-',
// '@', '+', not starting with '-', at most 255 bytes. No spaces, commas
// or control characters, which would split or forge principal lists.
func isUserPrincipal(s string) bool {
	if s == "" || len(s) > 255 || s[0] == '-' {
		return false
	}
	for _, r := range s {
		if !isAlnum(r) && !strings.ContainsRune("._-@+", r) {
			return false
		}
	}
	return true
}

// isHostPrincipal accepts host names, IPv4 and IPv6 addresses and the
// wildcards OpenSSH matches host principals with.
func isHostPrincipal(s string) bool {
	if s == "" || len(s) > 255 || s[0] == '-' {
		return false
	}
	for _, r := range s {
		if !isAlnum(r) && !strings.ContainsRune("._-:*?", r) {
			return false
		}
	}
	return true
}

func isAlnum(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9'
}

func validKeyID(c *ssh.Certificate) error {
	if c.KeyId == "" || hasUnsafeRune(c.KeyId) {
		return fmt.Errorf("%w: key id %q is empty or has control characters", ErrInvalidProvenance, c.KeyId)
	}
	return nil
}

// validProvenance checks that the extension decodes back to what the key
// id names, so the two can never disagree.
func validProvenance(c *ssh.Certificate) error {
	p, err := ParseProvenance(c)
	if err != nil {
		return err
	}
	if p.String() != c.KeyId {
		return fmt.Errorf("%w: key id %q does not match the provenance", ErrInvalidProvenance, c.KeyId)
	}
	return nil
}

func validLifetime(maxTTL time.Duration) Validator {
	return func(c *ssh.Certificate) error {
		if c.ValidBefore <= c.ValidAfter || c.ValidBefore == ssh.CertTimeInfinity {
			return fmt.Errorf("%w: empty or unbounded validity", ErrInvalidRequest)
		}
		if d := time.Duration(c.ValidBefore-c.ValidAfter) * time.Second; d > maxTTL+ClockSkew {
			return fmt.Errorf("%w: validity %s", ErrTTLTooLong, d)
		}
		return nil
	}
}

func validExtensions(c *ssh.Certificate) error {
	for e := range c.Extensions {
		if e != ExtensionIdentity && !slices.Contains(grantable, e) {
			return fmt.Errorf("%w: extension %q", ErrInvalidRequest, e)
		}
	}
	for o, v := range c.CriticalOptions {
		if o != OptionSourceAddress {
			return fmt.Errorf("%w: critical option %q", ErrInvalidRequest, o)
		}
		if _, err := parseSourceAddress(v); err != nil {
			return err
		}
	}
	return nil
}

// validSignature checks the signed certificate the way a server will.
func validSignature(caPub ssh.PublicKey, now time.Time) Validator {
	return func(c *ssh.Certificate) error {
		checker := ssh.CertChecker{
			Clock:                    func() time.Time { return now },
			SupportedCriticalOptions: []string{OptionSourceAddress},
		}
		if !sameKey(c.SignatureKey, caPub) {
			return fmt.Errorf("signed by another key than the CA")
		}
		if len(c.ValidPrincipals) == 0 {
			return fmt.Errorf("%w: no principals", ErrInvalidRequest)
		}
		if err := checker.CheckCert(c.ValidPrincipals[0], c); err != nil {
			return fmt.Errorf("signed certificate does not verify: %w", err)
		}
		return nil
	}
}
