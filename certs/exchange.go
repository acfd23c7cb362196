package certs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/bastion-dev/bastion/identity"
	"golang.org/x/crypto/ssh"
)

// MaxRequestSize bounds the body of a certificate request.
const MaxRequestSize = 64 << 10

// Bounds on the free-text fields of a certificate request.
const (
	maxTaskLen   = 256
	maxReasonLen = 1024
)

// CertificateRequest is the JSON body of POST /v1/certificate.
type CertificateRequest struct {
	// PublicKey is the key to certify, as an authorized_keys line.
	PublicKey string `json:"public_key"`
	// TTL is a Go duration ("10m"); empty means the role's default.
	TTL string `json:"ttl,omitempty"`
	// Task is the ticket or task the agent works on; it goes into the
	// provenance.
	Task string `json:"task,omitempty"`
	// Reason is free text for the audit log.
	Reason string `json:"reason,omitempty"`
}

// ParseCertificateRequest reads one certificate request of at most
// MaxRequestSize bytes: exactly one JSON object, with no unknown or
// duplicate fields, all values strings; public_key one authorized_keys
// line without options, of an allowed key type; ttl, if set, a positive
// Go duration; task and reason short and printable. Failures are
// [*ExchangeError] of kind BadRequest.
func ParseCertificateRequest(r io.Reader) (CertificateRequest, ssh.PublicKey, time.Duration, error) {
	var req CertificateRequest
	fail := func(msg string, err error) (CertificateRequest, ssh.PublicKey, time.Duration, error) {
		return CertificateRequest{}, nil, 0, badRequest(msg, err)
	}
	data, err := io.ReadAll(io.LimitReader(r, MaxRequestSize+1))
	if err != nil {
		return fail("request body could not be read", err)
	}
	if len(data) > MaxRequestSize {
		return fail(fmt.Sprintf("request body is larger than %d bytes", MaxRequestSize), nil)
	}
	fields := map[string]*string{"public_key": &req.PublicKey, "ttl": &req.TTL, "task": &req.Task, "reason": &req.Reason}
	if err := decodeFlatObject(data, fields); err != nil {
		return fail("request body must be one JSON object with string fields public_key, ttl, task, reason: "+err.Error(), err)
	}
	pub, err := parsePublicKeyLine(req.PublicKey)
	if err != nil {
		return fail(err.Error(), err)
	}
	var ttl time.Duration
	if req.TTL != "" {
		ttl, err = time.ParseDuration(req.TTL)
		if err != nil || ttl <= 0 {
			return fail(fmt.Sprintf("ttl %q is not a positive duration such as \"15m\"", req.TTL), err)
		}
	}
	if len(req.Task) > maxTaskLen || hasUnsafeRune(req.Task) {
		return fail(fmt.Sprintf("task must be at most %d printable bytes", maxTaskLen), nil)
	}
	if len(req.Reason) > maxReasonLen || hasUnsafeRune(req.Reason) {
		return fail(fmt.Sprintf("reason must be at most %d printable bytes", maxReasonLen), nil)
	}
	return req, pub, ttl, nil
}

func parsePublicKeyLine(line string) (ssh.PublicKey, error) {
	line = strings.TrimSpace(line)
	if line == "" {
		return nil, errors.New("public_key is required")
	}
	// ssh.ParseAuthorizedKey skips lines it cannot parse; one line only.
	if strings.ContainsAny(line, "\r\n") {
		return nil, errors.New("public_key must be a single authorized_keys line")
	}
	pub, _, options, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return nil, errors.New("public_key is not an authorized_keys line such as \"ssh-ed25519 AAAA...\"")
	}
	if len(options) > 0 {
		return nil, errors.New("public_key must not carry authorized_keys options")
	}
	if err := checkKeyType(pub); err != nil {
		return nil, fmt.Errorf("public_key not allowed: %w", err)
	}
	return pub, nil
}

// TokenVerifier verifies a raw ID token; [*Verifier] is one.
type TokenVerifier interface {
	Verify(ctx context.Context, raw string) (*Claims, error)
}

// Exchanger turns a verified ID token and a certificate request into a
// user certificate: the domain half of POST /v1/certificate.
type Exchanger struct {
	Verifier TokenVerifier
	// Roles, in order; the first match wins. Check them with
	// ValidateRoles when loading the configuration.
	Roles []RoleConfig
	// CA signs the certificates.
	CA ssh.Signer
	// HostCA is returned in known_hosts form so the client trusts
	// bastion's host certificate; nil leaves KnownHosts empty.
	HostCA  ssh.PublicKey
	Options Options
}

// CertificateResponse is the JSON answer of POST /v1/certificate.
type CertificateResponse struct {
	// Certificate is the certificate as an authorized_keys line (the
	// content of id_ed25519-cert.pub).
	Certificate string `json:"certificate"`
	// KnownHosts is "@cert-authority * <host CA key>".
	KnownHosts string    `json:"known_hosts"`
	ExpiresAt  time.Time `json:"expires_at"`
	Serial     uint64    `json:"serial,string"`
	KeyID      string    `json:"key_id"`
	Principals []string  `json:"principals"`
}

// Exchange verifies rawToken, maps its claims to a role, parses the request
// body, and signs a certificate. Refusals are [*ExchangeError]: kind
// Unauthenticated for the token, Forbidden when no role matches or the
// token's identity cannot be certified, BadRequest for the body, key or
// ttl. Other errors are internal.
//
// Once the token has verified, the provenance is returned even with an
// error, so the caller can audit who was refused.
func (e *Exchanger) Exchange(ctx context.Context, rawToken string, body io.Reader) (*CertificateResponse, *ssh.Certificate, *identity.Provenance, error) {
	if e.Verifier == nil || e.CA == nil {
		return nil, nil, nil, errors.New("certs: exchanger has no verifier or CA")
	}
	claims, err := e.Verifier.Verify(ctx, rawToken)
	if err != nil {
		return nil, nil, nil, err
	}
	prov := &identity.Provenance{
		Kind:    claims.Kind,
		Subject: claims.Subject,
		Issuer:  claims.Issuer,
		Sponsor: claims.Sponsor,
	}
	if prov.Kind == "" {
		prov.Kind = identity.KindAgent
	}
	role, err := MapClaims(e.Roles, claims)
	if errors.Is(err, ErrNoRole) {
		return nil, nil, prov, forbidden("no role admits this token", err)
	}
	if err != nil {
		return nil, nil, prov, err
	}
	prov.Role = role.Name
	if role.Kind != "" {
		prov.Kind = role.Kind
	}
	req, pub, ttl, err := ParseCertificateRequest(body)
	if err != nil {
		return nil, nil, prov, err
	}
	prov.Task = req.Task

	opt := e.Options
	if ttl == 0 {
		ttl = role.TTL
	}
	if role.MaxTTL > 0 {
		opt.MaxTTL = role.MaxTTL
	}
	cert, err := SignUser(e.CA, UserRequest{
		PublicKey:     pub,
		Provenance:    *prov,
		Principals:    role.Principals,
		TTL:           ttl,
		Extensions:    role.Extensions,
		SourceAddress: role.SourceAddress,
	}, opt)
	switch {
	case errors.Is(err, ErrTTLTooLong):
		limit := opt.withDefaults().MaxTTL
		return nil, nil, prov, badRequest(fmt.Sprintf("ttl is above the maximum of %s for role %s", limit, role.Name), err)
	case errors.Is(err, ErrKeyNotAllowed):
		return nil, nil, prov, badRequest("public key not allowed: use ed25519, ECDSA, or RSA of at least 2048 bits, not the CA key", err)
	case errors.Is(err, ErrInvalidProvenance):
		return nil, nil, prov, forbidden("the token's identity cannot be put in a certificate (control characters or too long)", err)
	case err != nil:
		return nil, nil, prov, err
	}
	resp := &CertificateResponse{
		Certificate: AuthorizedKeyLine(cert, ""),
		ExpiresAt:   time.Unix(int64(cert.ValidBefore), 0).UTC(),
		Serial:      cert.Serial,
		KeyID:       cert.KeyId,
		Principals:  cert.ValidPrincipals,
	}
	if e.HostCA != nil {
		resp.KnownHosts = "@cert-authority * " + AuthorizedKeyLine(e.HostCA, "bastion host CA")
	}
	return resp, cert, prov, nil
}
