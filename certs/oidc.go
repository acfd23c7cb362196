package certs

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bastion-dev/bastion/identity"
	"github.com/coreos/go-oidc/v3/oidc"
)

// IssuerConfig is one trusted OIDC issuer.
type IssuerConfig struct {
	// URL is the issuer identifier: the exact `iss` of its tokens and the
	// base of its discovery document. https, or http on a loopback host.
	URL string `yaml:"url"`
	// Audience lists the accepted `aud` values (client ids); a token must
	// name at least one. Required.
	Audience []string `yaml:"audience"`
	// Algorithms are the accepted signing algorithms; default RS256,
	// ES256, EdDSA. "none" and HMAC algorithms are never accepted.
	Algorithms []string `yaml:"algorithms"`
	// Kind of the identities this issuer vouches for; default agent.
	Kind identity.Kind `yaml:"kind"`
	// SponsorClaim names the claim holding the responsible human, e.g.
	// "actor" for GitHub Actions; empty means none.
	SponsorClaim string `yaml:"sponsor_claim"`
}

// Claims are the verified claims of an ID token.
type Claims struct {
	Issuer   string
	Subject  string
	Audience []string
	// Groups is the "groups" claim (a list, or one string).
	Groups []string
	Expiry time.Time
	// Kind is the issuer's configured kind (default agent).
	Kind identity.Kind
	// Sponsor is the value of the issuer's SponsorClaim, if it is a string.
	Sponsor string
	// Raw holds every claim; numbers are json.Number.
	Raw map[string]any
}

// maxTokenSize bounds the raw token; real ID tokens are a few KiB.
const maxTokenSize = 64 << 10

// discoveryRetry is how long a failed discovery is remembered before the
// next token from that issuer tries again.
const discoveryRetry = 10 * time.Second

var (
	defaultAlgorithms = []string{oidc.RS256, oidc.ES256, oidc.EdDSA}
	knownAlgorithms   = []string{oidc.RS256, oidc.RS384, oidc.RS512, oidc.ES256, oidc.ES384, oidc.ES512, oidc.PS256, oidc.PS384, oidc.PS512, oidc.EdDSA}
)

// Verifier verifies ID tokens from a fixed set of issuers with go-oidc
// (discovery, JWKS, signature, issuer, expiry), adding an algorithm
// allow-list and a multi-audience check.
//
// Discovery is lazy: each issuer is discovered on its first token (or by
// [Verifier.Discover]) and cached once it succeeds. A failure is remembered
// for a few seconds and then retried, and an issuer that is down or slow
// holds up only its own tokens.
type Verifier struct {
	issuers    map[string]*issuerState
	client     *http.Client
	now        func() time.Time
	retryAfter time.Duration
}

type issuerState struct {
	cfg  IssuerConfig
	algs []string

	mu       sync.Mutex // guards the fields below
	verifier *oidc.IDTokenVerifier
	inflight chan struct{} // non-nil while a discovery runs; closed when it ends
	err      error         // the last discovery failure
	failedAt time.Time
}

// NewVerifier checks the issuer configurations; it does no network I/O
// (see [Verifier.Discover] to discover eagerly). client makes the discovery
// and JWKS requests; nil means a client with a 10-second timeout. A client
// without a timeout lets a hung issuer hold its own tokens until their
// contexts end. ctx is not used after NewVerifier returns.
func NewVerifier(ctx context.Context, issuers []IssuerConfig, client *http.Client) (*Verifier, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	v := &Verifier{issuers: map[string]*issuerState{}, client: client, now: time.Now, retryAfter: discoveryRetry}
	for i, cfg := range issuers {
		if err := validateIssuer(&cfg); err != nil {
			return nil, fmt.Errorf("oidc issuer %d (%s): %w", i+1, cfg.URL, err)
		}
		if _, dup := v.issuers[cfg.URL]; dup {
			return nil, fmt.Errorf("oidc issuer %s is configured twice", cfg.URL)
		}
		v.issuers[cfg.URL] = &issuerState{cfg: cfg, algs: cfg.Algorithms}
	}
	return v, nil
}

func validateIssuer(cfg *IssuerConfig) error {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("url must be an absolute URL without user, query or fragment")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopbackHost(u.Hostname()):
	default:
		return errors.New("url must use https (plain http only on a loopback address)")
	}
	if len(cfg.Audience) == 0 || slices.Contains(cfg.Audience, "") {
		return errors.New("audience must list the accepted client ids")
	}
	if len(cfg.Algorithms) == 0 {
		cfg.Algorithms = slices.Clone(defaultAlgorithms)
	}
	for _, a := range cfg.Algorithms {
		if !slices.Contains(knownAlgorithms, a) {
			return fmt.Errorf("algorithm %q is not accepted (use asymmetric JOSE algorithms such as RS256, ES256, EdDSA)", a)
		}
	}
	switch cfg.Kind {
	case "":
		cfg.Kind = identity.KindAgent
	case identity.KindAgent, identity.KindHuman:
	default:
		return fmt.Errorf("kind %q is not agent or human", cfg.Kind)
	}
	return nil
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// Discover discovers every issuer not yet discovered, concurrently, and
// returns their failures joined (nil if all succeeded). Callers use it at
// start-up to log misconfigured issuers; failed issuers are retried on use.
func (v *Verifier) Discover(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, 0, len(v.issuers))
	var mu sync.Mutex
	for _, is := range v.issuers {
		wg.Go(func() {
			if _, err := v.verifierFor(ctx, is); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Verify verifies a raw ID token. The issuer is chosen by the token's
// unverified `iss` and must be configured; go-oidc then verifies the
// signature with that issuer's keys and checks `iss` and expiry, and
// Verify checks the algorithm and audience. Refusals are
// [*ExchangeError] of kind Unauthenticated; an issuer whose discovery
// fails yields an error wrapping [ErrIssuerUnavailable].
func (v *Verifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	if len(raw) > maxTokenSize {
		return nil, unauthenticated("malformed token", fmt.Errorf("token of %d bytes", len(raw)))
	}
	alg, iss, err := peekJWT(raw)
	if err != nil {
		return nil, unauthenticated("malformed token", err)
	}
	is, ok := v.issuers[iss]
	if !ok {
		return nil, unauthenticated("unknown issuer", fmt.Errorf("iss %q is not configured", iss))
	}
	if !slices.Contains(is.algs, alg) {
		return nil, unauthenticated("token algorithm not allowed", fmt.Errorf("alg %q", alg))
	}
	ver, err := v.verifierFor(ctx, is)
	if err != nil {
		return nil, err
	}
	tok, err := ver.Verify(ctx, raw)
	var expired *oidc.TokenExpiredError
	if errors.As(err, &expired) {
		return nil, unauthenticated("token expired", err)
	}
	if err != nil {
		return nil, unauthenticated("invalid token", err)
	}
	if !slices.ContainsFunc(tok.Audience, func(a string) bool { return slices.Contains(is.cfg.Audience, a) }) {
		return nil, unauthenticated("token audience not accepted", fmt.Errorf("aud %q", tok.Audience))
	}
	if tok.Subject == "" {
		return nil, unauthenticated("token has no subject", nil)
	}
	rawClaims, err := decodeClaims(tok)
	if err != nil {
		return nil, unauthenticated("invalid token", err)
	}
	c := &Claims{
		Issuer:   tok.Issuer,
		Subject:  tok.Subject,
		Audience: tok.Audience,
		Groups:   stringsOf(rawClaims["groups"]),
		Expiry:   tok.Expiry,
		Kind:     is.cfg.Kind,
		Raw:      rawClaims,
	}
	if is.cfg.SponsorClaim != "" {
		c.Sponsor, _ = rawClaims[is.cfg.SponsorClaim].(string)
	}
	return c, nil
}

// peekJWT reads the algorithm and issuer of a compact JWS without
// verifying it, to pick the issuer whose keys will verify it.
func peekJWT(raw string) (alg, iss string, err error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return "", "", errors.New("not a compact JWS")
	}
	var hdr struct {
		Alg string `json:"alg"`
	}
	var payload struct {
		Iss string `json:"iss"`
	}
	for i, dst := range []any{&hdr, &payload} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			return "", "", fmt.Errorf("part %d: %w", i+1, err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			return "", "", fmt.Errorf("part %d: %w", i+1, err)
		}
	}
	return hdr.Alg, payload.Iss, nil
}

// verifierFor returns the issuer's go-oidc verifier, discovering it if
// needed. One discovery runs at a time per issuer; other callers wait for
// it or for their own context.
func (v *Verifier) verifierFor(ctx context.Context, is *issuerState) (*oidc.IDTokenVerifier, error) {
	for {
		is.mu.Lock()
		if ver := is.verifier; ver != nil {
			is.mu.Unlock()
			return ver, nil
		}
		if ch := is.inflight; ch != nil {
			is.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, fmt.Errorf("%w: %s: %w", ErrIssuerUnavailable, is.cfg.URL, context.Cause(ctx))
			}
		}
		if err := is.err; err != nil && v.now().Sub(is.failedAt) < v.retryAfter {
			is.mu.Unlock()
			return nil, err
		}
		ch := make(chan struct{})
		is.inflight = ch
		is.mu.Unlock()

		ver, err := v.discover(ctx, is)

		is.mu.Lock()
		is.inflight = nil
		close(ch)
		switch {
		case err == nil:
			is.verifier, is.err = ver, nil
		case ctx.Err() == nil: // a cancelled caller says nothing about the issuer
			is.err, is.failedAt = err, v.now()
		}
		is.mu.Unlock()
		return ver, err
	}
}

func (v *Verifier) discover(ctx context.Context, is *issuerState) (*oidc.IDTokenVerifier, error) {
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, v.client), is.cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrIssuerUnavailable, is.cfg.URL, err)
	}
	// The provider's key set keeps v.client and fetches JWKS in the
	// background, independent of any one request's context. The audience
	// is checked by Verify, against a list.
	return p.Verifier(&oidc.Config{
		SkipClientIDCheck:    true,
		SupportedSigningAlgs: is.algs,
		Now:                  v.now,
	}), nil
}

func decodeClaims(tok *oidc.IDToken) (map[string]any, error) {
	var raw map[string]json.RawMessage
	if err := tok.Claims(&raw); err != nil {
		return nil, err
	}
	out := make(map[string]any, len(raw))
	for k, r := range raw {
		dec := json.NewDecoder(bytes.NewReader(r))
		dec.UseNumber()
		var x any
		if err := dec.Decode(&x); err != nil {
			return nil, fmt.Errorf("claim %q: %w", k, err)
		}
		out[k] = x
	}
	return out, nil
}

// stringsOf reads a claim that is a string or a list of strings; other
// elements are skipped.
func stringsOf(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
