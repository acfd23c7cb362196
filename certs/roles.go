package certs

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"time"

	"github.com/bastion-dev/bastion/identity"
)

// RoleConfig maps verified token claims to what a certificate grants.
type RoleConfig struct {
	// Name is carried in the provenance and audit events.
	Name string `yaml:"name"`
	// Principals are the login names the certificate is valid for.
	Principals []string `yaml:"principals"`
	// TTL is the lifetime when the request names none; 0 means
	// Options.DefaultTTL. YAML takes Go durations: "15m".
	TTL time.Duration `yaml:"ttl"`
	// MaxTTL caps requested lifetimes for this role, above or below the
	// global Options.MaxTTL; 0 means Options.MaxTTL.
	MaxTTL time.Duration `yaml:"max_ttl"`
	// Extensions are granted besides permit-pty, e.g.
	// "permit-port-forwarding".
	Extensions []string `yaml:"extensions"`
	// Kind overrides the issuer's kind (agent or human); empty keeps it.
	Kind identity.Kind `yaml:"kind"`
	// SourceAddress restricts the certificate to these client CIDRs.
	SourceAddress []string `yaml:"source_address"`
	// Match selects the tokens this role applies to.
	Match MatchConfig `yaml:"match"`
}

// MatchConfig selects tokens; every condition set must hold. Patterns use
// path.Match syntax ('*' matches any run of characters except '/', '?'
// one character, '[...]' a class), so "repo:acme/*:ref:refs/heads/main"
// matches every repository of acme on main and
// "system:serviceaccount:ci:*" every service account of namespace ci.
type MatchConfig struct {
	// Issuer is the exact issuer URL. Required: a subject pattern alone
	// could be matched by a token from another trusted issuer.
	Issuer string `yaml:"issuer"`
	// Subject is a pattern for the `sub` claim; empty matches any.
	Subject string `yaml:"subject"`
	// Groups matches if the token's groups include any of these.
	Groups []string `yaml:"groups"`
	// Claims maps a top-level claim name to a pattern its value must
	// match. Strings match as they are, booleans as "true"/"false",
	// numbers in decimal; a list matches if any element does.
	Claims map[string]string `yaml:"claims"`
}

// ValidateRoles checks roles at configuration time, naming the first
// problem.
func ValidateRoles(roles []RoleConfig) error {
	seen := map[string]bool{}
	for i, r := range roles {
		if err := validateRole(r); err != nil {
			return fmt.Errorf("role %d (%s): %w", i+1, r.Name, err)
		}
		if seen[r.Name] {
			return fmt.Errorf("role %d: name %q is used twice", i+1, r.Name)
		}
		seen[r.Name] = true
	}
	return nil
}

func validateRole(r RoleConfig) error {
	if r.Name == "" || hasUnsafeRune(r.Name) {
		return errors.New("name must be set and printable")
	}
	if len(r.Principals) == 0 {
		return errors.New("principals must list at least one login name")
	}
	for _, p := range r.Principals {
		if !isUserPrincipal(p) {
			return fmt.Errorf("principal %q is not a valid login name", p)
		}
	}
	if r.TTL < 0 || r.MaxTTL < 0 || (r.MaxTTL > 0 && r.TTL > r.MaxTTL) {
		return fmt.Errorf("ttl %s and max_ttl %s must be positive, ttl at most max_ttl", r.TTL, r.MaxTTL)
	}
	for _, e := range r.Extensions {
		if !slices.Contains(grantable, e) {
			return fmt.Errorf("extension %q cannot be granted (grantable: %v)", e, grantable)
		}
	}
	if r.Kind != "" && r.Kind != identity.KindAgent && r.Kind != identity.KindHuman {
		return fmt.Errorf("kind %q is not agent or human", r.Kind)
	}
	if len(r.SourceAddress) > 0 {
		if _, err := canonicalSourceAddress(r.SourceAddress); err != nil {
			return err
		}
	}
	m := r.Match
	if m.Issuer == "" {
		return errors.New("match.issuer must be set")
	}
	patterns := []string{m.Subject}
	for _, p := range m.Claims {
		patterns = append(patterns, p)
	}
	for _, p := range patterns {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("pattern %q: %w", p, err)
		}
	}
	return nil
}

// MapClaims returns the first role whose match fits c, or an error
// wrapping [ErrNoRole]. Roles should have passed [ValidateRoles]; a role
// without an issuer never matches, and a malformed pattern is an error.
func MapClaims(roles []RoleConfig, c *Claims) (RoleConfig, error) {
	for _, r := range roles {
		ok, err := r.Match.matches(c)
		if err != nil {
			return RoleConfig{}, fmt.Errorf("role %q: %w", r.Name, err)
		}
		if ok {
			return r, nil
		}
	}
	return RoleConfig{}, fmt.Errorf("%w: subject %q of %s", ErrNoRole, c.Subject, c.Issuer)
}

func (m MatchConfig) matches(c *Claims) (bool, error) {
	if m.Issuer == "" || m.Issuer != c.Issuer {
		return false, nil
	}
	if m.Subject != "" {
		if ok, err := path.Match(m.Subject, c.Subject); err != nil || !ok {
			return false, err
		}
	}
	if len(m.Groups) > 0 && !slices.ContainsFunc(c.Groups, func(g string) bool { return slices.Contains(m.Groups, g) }) {
		return false, nil
	}
	for name, pattern := range m.Claims {
		v, present := c.Raw[name]
		if !present {
			return false, nil
		}
		ok, err := claimMatches(pattern, v)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

func claimMatches(pattern string, v any) (bool, error) {
	var s string
	switch v := v.(type) {
	case string:
		s = v
	case bool:
		s = strconv.FormatBool(v)
	case json.Number:
		s = v.String()
	case float64:
		s = strconv.FormatFloat(v, 'f', -1, 64)
	case []any:
		for _, e := range v {
			if ok, err := claimMatches(pattern, e); err != nil || ok {
				return ok, err
			}
		}
		return false, nil
	default: // objects and null never match
		return false, nil
	}
	return path.Match(pattern, s)
}
