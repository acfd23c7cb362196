// Package config is the model of bastion.yaml: where bastion listens, which
// OIDC issuers it trusts, how token claims map to roles, how commands run,
// and the limits it enforces. The zero value of every field means its
// documented default, so a minimal file works.
package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/bastion-dev/bastion/certs"
	"github.com/bastion-dev/bastion/internal/loopback"
	"github.com/goccy/go-yaml"
)

// Config is bastion.yaml.
type Config struct {
	SSH    SSH                `yaml:"ssh"`
	HTTP   HTTP               `yaml:"http"`
	Certs  Certs              `yaml:"certs"`
	OIDC   OIDC               `yaml:"oidc"`
	Roles  []certs.RoleConfig `yaml:"roles"`
	Exec   Exec               `yaml:"exec"`
	Limits Limits             `yaml:"limits"`
	Policy Policy             `yaml:"policy"`
	Audit  Audit              `yaml:"audit"`
	// Operators configures who may approve commands and use the web UI.
	Operators Operators `yaml:"operators"`
	Approvals Approvals `yaml:"approvals"`
	// Databases are the Postgres targets agents may reach through bastion's
	// proxy (`ssh -L 5432:<name>:5432 bastion`).
	Databases []Database `yaml:"databases"`
}

// Database is one Postgres target. The agent never sees its credentials:
// bastion injects them upstream and masks the password in all output.
type Database struct {
	// Name is what agents put as the forwarding destination host.
	Name string `yaml:"name"`
	// Addr is the upstream host:port.
	Addr     string `yaml:"addr"`
	Database string `yaml:"database"`
	User     string `yaml:"user"`
	// PasswordFile or PasswordEnv holds the upstream password.
	PasswordFile string `yaml:"password_file"`
	PasswordEnv  string `yaml:"password_env"`
	// TLS is disable (default, loopback upstreams only), require (encrypt,
	// trust any certificate) or verify-full (CAFile or the system roots).
	TLS    string `yaml:"tls"`
	CAFile string `yaml:"ca_file"`
	// Roles may use the target; empty means every role.
	Roles []string `yaml:"roles"`
}

// Operators says who may approve commands and read recordings over HTTP
// (the API and the web UI). Nobody is anonymous.
type Operators struct {
	// TokenFile holds a bootstrap operator token (one line). Empty: none.
	TokenFile string `yaml:"token_file"`
	// Roles are role names (from roles:) whose OIDC tokens make their
	// bearer an operator. Only human identities may approve.
	Roles []string `yaml:"roles"`
}

// Approvals configures just-in-time approvals.
type Approvals struct {
	// Timeout is how long a held command waits; default 5m. A request
	// nobody decides in time is refused.
	Timeout time.Duration `yaml:"timeout"`
	// Webhooks are told about every request and outcome.
	Webhooks []Webhook `yaml:"webhooks"`
}

// Webhook is one notification endpoint.
type Webhook struct {
	URL string `yaml:"url"`
	// Slack sends a Slack-compatible payload ({"text": ..., "blocks": ...}).
	Slack bool `yaml:"slack"`
}

// SSH configures the SSH listener.
type SSH struct {
	// Listen is the SSH address; default 127.0.0.1:2222.
	Listen string `yaml:"listen"`
	// HostPrincipals are the names the host certificate is valid for;
	// default localhost, 127.0.0.1, bastion.
	HostPrincipals []string `yaml:"host_principals"`
	// Ciphers are the SSH ciphers offered; default AES-GCM only. OpenSSH
	// clients choose by their own order, which puts aes128-ctr before the
	// GCM ciphers, so offering CTR makes every OpenSSH client pay for a
	// separate HMAC. Add aes128-ctr (with an encrypt-then-MAC) for clients
	// that lack GCM.
	Ciphers []string `yaml:"ciphers"`
}

// SSHCiphers are the ciphers ssh.ciphers may name: AEAD ciphers with
// AES-NI, and CTR for clients without them (with encrypt-then-MAC only).
var SSHCiphers = []string{"aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com", "aes128-ctr", "aes192-ctr", "aes256-ctr"}

// HTTP configures the HTTP API (token exchange, approvals, recordings).
type HTTP struct {
	// Listen is the HTTP address; default 127.0.0.1:8080.
	Listen string `yaml:"listen"`
	// TLSCert and TLSKey are PEM files. Without them bastion serves plain
	// HTTP, which it allows only on loopback addresses.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
}

// Certs configures user certificates.
type Certs struct {
	// DefaultTTL is the lifetime of a certificate when the request names
	// none; default 15m.
	DefaultTTL time.Duration `yaml:"default_ttl"`
	// MaxTTL caps requested lifetimes; default 1h.
	MaxTTL time.Duration `yaml:"max_ttl"`
}

// OIDC lists the token issuers bastion trusts.
type OIDC struct {
	Issuers []certs.IssuerConfig `yaml:"issuers"`
}

// Exec configures how agent commands run.
type Exec struct {
	// Shell runs each command as `Shell -c CMD`; default /bin/bash.
	Shell string `yaml:"shell"`
	// Dir is the working directory; default "/" (or the OS user's home
	// when it exists).
	Dir string `yaml:"dir"`
	// Users maps a certificate principal to the OS account its commands run
	// as when bastion runs as root; the sessions of a mapped principal
	// share that account. Mapping a principal to root must be explicit.
	Users map[string]string `yaml:"users"`
	// DefaultUser, when set, is the one OS account every unmapped
	// principal's sessions share. Empty (the default) gives each session
	// its own uid from UIDRange, so no session can reach another's
	// processes, environment, files or database socket.
	DefaultUser string `yaml:"default_user"`
	// UIDRange is where per-session uids come from, "LO-HI"; default
	// 2000000-2099999. No passwd entry is needed (or should exist) for them.
	UIDRange string `yaml:"uid_range"`
	// Path is the PATH commands see; default a standard system PATH.
	Path string `yaml:"path"`
}

// Limits bounds sessions.
type Limits struct {
	// MaxSessionsPerIdentity bounds concurrent sessions (exec, shell) of
	// one subject; default 16.
	MaxSessionsPerIdentity int `yaml:"max_sessions_per_identity"`
	// MaxDBConnectionsPerIdentity bounds concurrent database connections
	// (tunnels and in-session sockets) of one subject; default 100. A
	// connection over it gets FATAL 53300 too_many_connections.
	MaxDBConnectionsPerIdentity int `yaml:"max_db_connections_per_identity"`
	// IdleTimeout ends a session with no traffic; default 30m.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxSessionDuration ends any session; default 8h.
	MaxSessionDuration time.Duration `yaml:"max_session_duration"`
	// AuthFailuresPerMinute is how many failed authentications one source
	// address may make per minute before it is refused; default 20.
	AuthFailuresPerMinute int `yaml:"auth_failures_per_minute"`
	// MaxStartups caps connections that have not authenticated yet; the
	// one over it is dropped before the version exchange, as sshd's
	// MaxStartups does; default 100.
	MaxStartups int `yaml:"max_startups"`
	// LoginGraceTime closes a connection that has not authenticated in
	// time, as sshd's LoginGraceTime; default 30s.
	LoginGraceTime time.Duration `yaml:"login_grace_time"`
}

// Policy points at the user policy file.
type Policy struct {
	// File is a YAML policy whose rules override the built-in defaults by
	// id; empty means the built-in policy alone.
	File string `yaml:"file"`
}

// Audit configures the audit log.
type Audit struct {
	// Stdout also writes every audit event to standard output (for a SIEM
	// collector reading the service's output).
	Stdout bool `yaml:"stdout"`
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.SSH.Listen, "127.0.0.1:2222")
	def(&c.HTTP.Listen, "127.0.0.1:8080")
	if len(c.SSH.Ciphers) == 0 {
		c.SSH.Ciphers = []string{"aes128-gcm@openssh.com", "aes256-gcm@openssh.com"}
	}
	if len(c.SSH.HostPrincipals) == 0 {
		c.SSH.HostPrincipals = []string{"localhost", "127.0.0.1", "bastion"}
	}
	if c.Certs.DefaultTTL == 0 {
		c.Certs.DefaultTTL = 15 * time.Minute
	}
	if c.Certs.MaxTTL == 0 {
		c.Certs.MaxTTL = time.Hour
	}
	def(&c.Exec.Shell, "/bin/bash")
	def(&c.Exec.Dir, "/")
	def(&c.Exec.UIDRange, "2000000-2099999")
	def(&c.Exec.Path, "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin")
	if c.Limits.MaxSessionsPerIdentity == 0 {
		c.Limits.MaxSessionsPerIdentity = 16
	}
	if c.Limits.MaxDBConnectionsPerIdentity == 0 {
		c.Limits.MaxDBConnectionsPerIdentity = 100
	}
	if c.Limits.IdleTimeout == 0 {
		c.Limits.IdleTimeout = 30 * time.Minute
	}
	if c.Limits.MaxSessionDuration == 0 {
		c.Limits.MaxSessionDuration = 8 * time.Hour
	}
	if c.Approvals.Timeout == 0 {
		c.Approvals.Timeout = 5 * time.Minute
	}
	if c.Limits.AuthFailuresPerMinute == 0 {
		c.Limits.AuthFailuresPerMinute = 20
	}
	if c.Limits.MaxStartups == 0 {
		c.Limits.MaxStartups = 100
	}
	if c.Limits.LoginGraceTime == 0 {
		c.Limits.LoginGraceTime = 30 * time.Second
	}
	return c
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	for _, name := range c.SSH.Ciphers {
		if !slices.Contains(SSHCiphers, name) {
			return fmt.Errorf("ssh: cipher %q is not one of %s", name, strings.Join(SSHCiphers, ", "))
		}
	}
	if c.Certs.DefaultTTL <= 0 || c.Certs.MaxTTL <= 0 {
		return errors.New("certs: ttls must be positive")
	}
	if c.Certs.DefaultTTL > c.Certs.MaxTTL {
		return fmt.Errorf("certs: default_ttl %s is above max_ttl %s", c.Certs.DefaultTTL, c.Certs.MaxTTL)
	}
	if (c.HTTP.TLSCert == "") != (c.HTTP.TLSKey == "") {
		return errors.New("http: tls_cert and tls_key go together")
	}
	if c.HTTP.TLSCert == "" {
		if err := loopback.Require(c.HTTP.Listen); err != nil {
			return fmt.Errorf("http: plain HTTP %w; set http.tls_cert and http.tls_key to serve elsewhere", err)
		}
	}
	if err := certs.ValidateRoles(c.Roles); err != nil {
		return fmt.Errorf("roles: %w", err)
	}
	for _, w := range c.Approvals.Webhooks {
		if !strings.HasPrefix(w.URL, "https://") && !strings.HasPrefix(w.URL, "http://") {
			return fmt.Errorf("approvals.webhooks: %q is not an http(s) URL", w.URL)
		}
	}
	seen := map[string]bool{}
	for _, d := range c.Databases {
		switch {
		case d.Name == "" || d.Addr == "" || d.User == "":
			return fmt.Errorf("databases: each target needs name, addr and user")
		case seen[d.Name]:
			return fmt.Errorf("databases: target %q is defined twice", d.Name)
		case d.PasswordFile != "" && d.PasswordEnv != "":
			return fmt.Errorf("databases: %s: password_file and password_env exclude each other", d.Name)
		}
		switch d.TLS {
		case "", "disable", "require", "verify-full":
		default:
			return fmt.Errorf("databases: %s: tls must be disable, require or verify-full, not %q", d.Name, d.TLS)
		}
		seen[d.Name] = true
	}
	for p, u := range c.Exec.Users {
		if u == "" {
			return fmt.Errorf("exec.users: principal %q maps to an empty user", p)
		}
	}
	return nil
}

// Parse decodes bastion.yaml. Unknown keys are errors; every error names
// the file, line and column.
func Parse(data []byte, name string) (Config, error) {
	var c Config
	if len(bytes.TrimSpace(data)) > 0 {
		if err := yaml.UnmarshalWithOptions(data, &c, yaml.Strict()); err != nil {
			return c, fmt.Errorf("%s: %s", name, yaml.FormatError(err, false, true))
		}
	}
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("%s: %w", name, err)
	}
	return c, nil
}

// Load reads and parses the file at path.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	return Parse(data, path)
}

//go:embed default.yaml
var defaultFile []byte

// DefaultFile is the commented bastion.yaml that `bastion init` writes. It
// parses to the defaults.
func DefaultFile() []byte { return bytes.Clone(defaultFile) }
