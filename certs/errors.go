package certs

import (
	"errors"
	"fmt"
)

// Sentinel errors. Signing and parsing wrap them with %w, so callers test
// them with errors.Is.
var (
	// ErrTTLTooLong: the requested lifetime is above the maximum.
	ErrTTLTooLong = errors.New("certs: requested ttl is above the maximum")
	// ErrKeyNotAllowed: the public key is of a type bastion does not
	// certify (DSA, RSA under 2048 bits, security keys, a certificate), or
	// is the CA key itself.
	ErrKeyNotAllowed = errors.New("certs: public key not allowed")
	// ErrInvalidProvenance: a provenance is malformed or carries characters
	// that could forge log lines.
	ErrInvalidProvenance = errors.New("certs: invalid provenance")
	// ErrInvalidRequest: a principal, extension, source address or lifetime
	// given to the signer is malformed.
	ErrInvalidRequest = errors.New("certs: invalid certificate request")
	// ErrNoRole: no role matches a verified token.
	ErrNoRole = errors.New("certs: no role matches the token")
	// ErrIssuerUnavailable: an issuer's discovery document could not be
	// fetched. It is not the client's fault, so it is not an
	// [*ExchangeError]; the HTTP layer answers with a server error.
	ErrIssuerUnavailable = errors.New("certs: oidc issuer unavailable")
)

// Families of refusal. An [*ExchangeError] matches the family of its Kind
// under errors.Is, so a caller can write errors.Is(err, ErrUnauthenticated).
var (
	ErrUnauthenticated = errors.New("certs: unauthenticated")
	ErrForbidden       = errors.New("certs: forbidden")
	ErrBadRequest      = errors.New("certs: bad request")
)

// ErrorKind classifies a refused token exchange. The HTTP layer maps it to
// a status (401, 403, 400); the domain code says only what went wrong.
type ErrorKind int

const (
	// Unauthenticated: the token is missing, malformed, expired, signed
	// with a disallowed algorithm or an unknown key, or names an unknown
	// issuer or another audience.
	Unauthenticated ErrorKind = iota + 1
	// Forbidden: the token is valid but no role admits it.
	Forbidden
	// BadRequest: the request body is malformed, the public key is not
	// allowed, or the requested ttl is above the maximum.
	BadRequest
)

func (k ErrorKind) String() string {
	switch k {
	case Unauthenticated:
		return "unauthenticated"
	case Forbidden:
		return "forbidden"
	case BadRequest:
		return "bad request"
	}
	return fmt.Sprintf("ErrorKind(%d)", int(k))
}

// ExchangeError is a refused token exchange. Msg is safe to send to the
// client (it never contains the token or internal detail); Err is the cause,
// for the log. Any error from this package that is not an ExchangeError is
// internal.
type ExchangeError struct {
	Kind ErrorKind
	Msg  string
	Err  error
}

func (e *ExchangeError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("certs: %s: %s: %v", e.Kind, e.Msg, e.Err)
	}
	return fmt.Sprintf("certs: %s: %s", e.Kind, e.Msg)
}

func (e *ExchangeError) Unwrap() error { return e.Err }

// Is reports whether target is the family sentinel of e's Kind.
func (e *ExchangeError) Is(target error) bool {
	switch target {
	case ErrUnauthenticated:
		return e.Kind == Unauthenticated
	case ErrForbidden:
		return e.Kind == Forbidden
	case ErrBadRequest:
		return e.Kind == BadRequest
	}
	return false
}

func unauthenticated(msg string, err error) *ExchangeError {
	return &ExchangeError{Kind: Unauthenticated, Msg: msg, Err: err}
}

func forbidden(msg string, err error) *ExchangeError {
	return &ExchangeError{Kind: Forbidden, Msg: msg, Err: err}
}

func badRequest(msg string, err error) *ExchangeError {
	return &ExchangeError{Kind: BadRequest, Msg: msg, Err: err}
}
