package certs

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/identity"
	"github.com/goccy/go-yaml"
	"github.com/google/go-cmp/cmp"
)

const (
	ghIssuer  = "https://token.actions.githubusercontent.com"
	k8sIssuer = "https://kubernetes.default.svc"
)

var testRoles = []RoleConfig{
	{Name: "deploy-agent", Principals: []string{"deploy"}, Match: MatchConfig{
		Issuer: ghIssuer, Subject: "repo:acme/*:ref:refs/heads/main",
		Claims: map[string]string{"repository_owner": "acme", "runner_environment": "github-hosted"},
	}},
	{Name: "ci-pods", Principals: []string{"ci"}, Match: MatchConfig{
		Issuer: k8sIssuer, Subject: "system:serviceaccount:ci:*",
	}},
	{Name: "sre", Principals: []string{"sre"}, Kind: identity.KindHuman, Match: MatchConfig{
		Issuer: "https://idp.example", Groups: []string{"sre", "oncall"},
	}},
	{Name: "verified-email", Principals: []string{"staff"}, Match: MatchConfig{
		Issuer: "https://idp.example", Claims: map[string]string{"email_verified": "true", "email": "*@acme.example", "level": "3"},
	}},
	{Name: "any-audience-list", Principals: []string{"x"}, Match: MatchConfig{
		Issuer: "https://idp.example", Claims: map[string]string{"amr": "mfa"},
	}},
}

func claimsFrom(iss, sub string, groups []string, raw string) *Claims {
	c := &Claims{Issuer: iss, Subject: sub, Groups: groups, Raw: map[string]any{}}
	if raw != "" {
		dec := json.NewDecoder(strings.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&c.Raw); err != nil {
			panic(err) // table literal
		}
	}
	return c
}

func TestMapClaims(t *testing.T) {
	t.Parallel()
	if err := ValidateRoles(testRoles); err != nil {
		t.Fatal(err)
	}
	gh := `{"repository_owner":"acme","runner_environment":"github-hosted"}`
	tests := []struct {
		name   string
		claims *Claims
		want   string // role name; "" means ErrNoRole
	}{
		{"github main branch", claimsFrom(ghIssuer, "repo:acme/api:ref:refs/heads/main", nil, gh), "deploy-agent"},
		{"github other branch", claimsFrom(ghIssuer, "repo:acme/api:ref:refs/heads/dev", nil, gh), ""},
		{"github other org", claimsFrom(ghIssuer, "repo:evil/api:ref:refs/heads/main", nil, gh), ""},
		{"github star does not cross slash", claimsFrom(ghIssuer, "repo:acme/a/b:ref:refs/heads/main", nil, gh), ""},
		{"github self-hosted runner", claimsFrom(ghIssuer, "repo:acme/api:ref:refs/heads/main", nil, `{"repository_owner":"acme","runner_environment":"self-hosted"}`), ""},
		{"github claim missing", claimsFrom(ghIssuer, "repo:acme/api:ref:refs/heads/main", nil, `{"repository_owner":"acme"}`), ""},
		{"same subject from another issuer", claimsFrom(k8sIssuer, "repo:acme/api:ref:refs/heads/main", nil, gh), ""},
		{"k8s service account", claimsFrom(k8sIssuer, "system:serviceaccount:ci:builder", nil, ""), "ci-pods"},
		{"k8s other namespace", claimsFrom(k8sIssuer, "system:serviceaccount:prod:builder", nil, ""), ""},
		{"group match", claimsFrom("https://idp.example", "alice", []string{"dev", "oncall"}, ""), "sre"},
		{"no group", claimsFrom("https://idp.example", "alice", []string{"dev"}, ""), ""},
		{"bool and number claims", claimsFrom("https://idp.example", "bob", nil, `{"email_verified":true,"email":"bob@acme.example","level":3}`), "verified-email"},
		{"bool false", claimsFrom("https://idp.example", "bob", nil, `{"email_verified":false,"email":"bob@acme.example","level":3}`), ""},
		{"string true is not bool-typed but matches text", claimsFrom("https://idp.example", "bob", nil, `{"email_verified":"true","email":"bob@acme.example","level":"3"}`), "verified-email"},
		{"list claim any element", claimsFrom("https://idp.example", "carol", nil, `{"amr":["pwd","mfa"]}`), "any-audience-list"},
		{"object claim never matches", claimsFrom("https://idp.example", "carol", nil, `{"amr":{"mfa":"mfa"}}`), ""},
		{"null claim never matches", claimsFrom("https://idp.example", "carol", nil, `{"amr":null}`), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			role, err := MapClaims(testRoles, tt.claims)
			if tt.want == "" {
				if !errors.Is(err, ErrNoRole) {
					t.Fatalf("role %q, err %v; want ErrNoRole", role.Name, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if role.Name != tt.want {
				t.Errorf("role = %q, want %q", role.Name, tt.want)
			}
		})
	}
}

func TestMapClaimsFirstMatchWins(t *testing.T) {
	t.Parallel()
	roles := []RoleConfig{
		{Name: "narrow", Principals: []string{"a"}, Match: MatchConfig{Issuer: ghIssuer, Subject: "repo:acme/api:ref:refs/heads/*"}},
		{Name: "broad", Principals: []string{"b"}, Match: MatchConfig{Issuer: ghIssuer, Subject: "repo:acme/*:ref:refs/heads/*"}},
	}
	role, err := MapClaims(roles, claimsFrom(ghIssuer, "repo:acme/api:ref:refs/heads/main", nil, ""))
	if err != nil || role.Name != "narrow" {
		t.Fatalf("role %q, err %v; want narrow", role.Name, err)
	}
	// A malformed pattern is an error, not a silent non-match.
	bad := []RoleConfig{{Name: "bad", Principals: []string{"a"}, Match: MatchConfig{Issuer: ghIssuer, Subject: "repo:["}}}
	if _, err := MapClaims(bad, claimsFrom(ghIssuer, "repo:x", nil, "")); err == nil || errors.Is(err, ErrNoRole) {
		t.Fatalf("err = %v, want a pattern error", err)
	}
}

func TestValidateRoles(t *testing.T) {
	t.Parallel()
	ok := RoleConfig{Name: "r", Principals: []string{"agent"}, Match: MatchConfig{Issuer: ghIssuer}}
	tests := []struct {
		name string
		edit func(*RoleConfig)
		want string // substring of the error; "" means valid
	}{
		{"valid", func(*RoleConfig) {}, ""},
		{"no name", func(r *RoleConfig) { r.Name = "" }, "name"},
		{"name with newline", func(r *RoleConfig) { r.Name = "a\nb" }, "name"},
		{"no principals", func(r *RoleConfig) { r.Principals = nil }, "principals"},
		{"bad principal", func(r *RoleConfig) { r.Principals = []string{"root,admin"} }, "principal"},
		{"ttl above max", func(r *RoleConfig) { r.TTL, r.MaxTTL = time.Hour, time.Minute }, "ttl"},
		{"negative ttl", func(r *RoleConfig) { r.TTL = -time.Minute }, "ttl"},
		{"unknown extension", func(r *RoleConfig) { r.Extensions = []string{"permit-everything"} }, "extension"},
		{"identity extension", func(r *RoleConfig) { r.Extensions = []string{ExtensionIdentity} }, "extension"},
		{"bad kind", func(r *RoleConfig) { r.Kind = "robot" }, "kind"},
		{"bad source address", func(r *RoleConfig) { r.SourceAddress = []string{"10.0.0.0/40"} }, "source address"},
		{"no issuer", func(r *RoleConfig) { r.Match.Issuer = "" }, "match.issuer"},
		{"bad subject pattern", func(r *RoleConfig) { r.Match.Subject = "repo:[" }, "pattern"},
		{"bad claim pattern", func(r *RoleConfig) { r.Match.Claims = map[string]string{"x": "a[b"} }, "pattern"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := ok
			tt.edit(&r)
			err := ValidateRoles([]RoleConfig{r})
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
	if err := ValidateRoles([]RoleConfig{ok, ok}); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("duplicate names: err = %v", err)
	}
}

// TestRoleConfigYAML decodes roles the way the config package does (goccy
// yaml, strict), so the tags and duration parsing are pinned.
func TestRoleConfigYAML(t *testing.T) {
	t.Parallel()
	src := `
- name: deploy-agent
  principals: [deploy]
  ttl: 10m
  max_ttl: 2h
  extensions: [permit-port-forwarding]
  kind: agent
  source_address: [10.0.0.0/8]
  match:
    issuer: https://token.actions.githubusercontent.com
    subject: "repo:acme/*:ref:refs/heads/main"
    groups: [ops]
    claims:
      repository_owner: acme
`
	var roles []RoleConfig
	if err := yaml.UnmarshalWithOptions([]byte(src), &roles, yaml.Strict()); err != nil {
		t.Fatal(err)
	}
	want := []RoleConfig{{
		Name: "deploy-agent", Principals: []string{"deploy"}, TTL: 10 * time.Minute, MaxTTL: 2 * time.Hour,
		Extensions: []string{ExtensionPermitPortForwarding}, Kind: identity.KindAgent, SourceAddress: []string{"10.0.0.0/8"},
		Match: MatchConfig{Issuer: ghIssuer, Subject: "repo:acme/*:ref:refs/heads/main", Groups: []string{"ops"},
			Claims: map[string]string{"repository_owner": "acme"}},
	}}
	if d := cmp.Diff(want, roles); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if err := ValidateRoles(roles); err != nil {
		t.Error(err)
	}

	issuers := `
- url: https://token.actions.githubusercontent.com
  audience: [bastion]
  algorithms: [RS256]
  kind: agent
  sponsor_claim: actor
`
	var ics []IssuerConfig
	if err := yaml.UnmarshalWithOptions([]byte(issuers), &ics, yaml.Strict()); err != nil {
		t.Fatal(err)
	}
	wantIC := []IssuerConfig{{URL: ghIssuer, Audience: []string{"bastion"}, Algorithms: []string{"RS256"}, Kind: identity.KindAgent, SponsorClaim: "actor"}}
	if d := cmp.Diff(wantIC, ics); d != "" {
		t.Errorf("issuers (-want +got):\n%s", d)
	}
}
