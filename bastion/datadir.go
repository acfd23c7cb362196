package bastion

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"github.com/bastion-dev/bastion/approvals"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/bastion-dev/bastion/audit"
	"github.com/bastion-dev/bastion/certs"
	"github.com/bastion-dev/bastion/config"
	"github.com/bastion-dev/bastion/recordings"
	"github.com/bastion-dev/bastion/shellpolicy"
	"github.com/bastion-dev/bastion/store"
)

// DataDir names the files of a bastion data directory:
//
//	bastion.yaml        configuration (commented defaults from `bastion init`)
//	ca/                 user CA (+ previous after rotation), host CA, host key and certificate, all 0600
//	bastion.db          SQLite store: certificates, revocations, approvals, sessions and their command index
//	audit/audit.jsonl   audit log, chained by HMAC-SHA256 (its head is kept in bastion.db)
//	recordings/         one asciicast file per session, with its command index
//	recording_key       ed25519 key that signs recording seals; the audit key is derived from it
//	client/             (dev mode) the demo agent's key, certificate, known_hosts and ssh_config
type DataDir string

func (d DataDir) Config() string       { return filepath.Join(string(d), "bastion.yaml") }
func (d DataDir) CA() string           { return filepath.Join(string(d), "ca") }
func (d DataDir) DB() string           { return filepath.Join(string(d), "bastion.db") }
func (d DataDir) AuditLog() string     { return filepath.Join(string(d), "audit", "audit.jsonl") }
func (d DataDir) Recordings() string   { return filepath.Join(string(d), "recordings") }
func (d DataDir) RecordingKey() string { return filepath.Join(string(d), "recording_key") }
func (d DataDir) Client() string       { return filepath.Join(string(d), "client") }

// Init creates a data directory: CAs, host key and certificate, the
// commented default configuration, the store and the recording key. It
// refuses to replace an existing CA unless force.
func Init(d DataDir, force bool) error {
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	cfg := config.Config{}.WithDefaults()
	if data, err := os.ReadFile(d.Config()); err == nil {
		if cfg, err = config.Parse(data, d.Config()); err != nil {
			return fmt.Errorf("init: %w", err)
		}
	} else if errors.Is(err, fs.ErrNotExist) {
		if err := os.WriteFile(d.Config(), config.DefaultFile(), 0o600); err != nil {
			return fmt.Errorf("init: %w", err)
		}
	} else {
		return fmt.Errorf("init: %w", err)
	}
	if _, err := certs.InitCAs(d.CA(), force, cfg.SSH.HostPrincipals...); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	st, err := store.Open(d.DB())
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	st.Close()
	for _, dir := range []string{filepath.Dir(d.AuditLog()), d.Recordings()} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("init: %w", err)
		}
	}
	if _, err := recordings.LoadOrCreateKey(d.RecordingKey()); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	return nil
}

// Initialized reports whether d holds a user CA.
func (d DataDir) Initialized() bool {
	_, err := os.Stat(filepath.Join(d.CA(), "user_ca"))
	return err == nil
}

// Env is an opened data directory: everything a bastion command needs.
type Env struct {
	Dir          DataDir
	Config       config.Config
	CAs          *certs.CAs
	Store        *store.Store
	Audit        *audit.Log
	RecordingKey crypto.Signer
	Policy       *shellpolicy.Policy
	Approvals    *approvals.Service
	Databases    map[string]DBTarget
}

// Open opens an initialised data directory. configPath overrides
// bastion.yaml when non-empty; auditMirror, when non-nil, also receives
// every audit line (audit.stdout in the config sets it to os.Stdout).
func Open(d DataDir, configPath string) (*Env, error) {
	if !d.Initialized() {
		return nil, fmt.Errorf("%s is not a bastion data directory: run `bastion init --data-dir %s` first", d, d)
	}
	if configPath == "" {
		configPath = d.Config()
	}
	cfg, err := config.Load(configPath)
	if err != nil {
		return nil, err
	}
	cas, err := certs.LoadCAs(d.CA())
	if err != nil {
		return nil, err
	}
	pol := shellpolicy.Default()
	if cfg.Policy.File != "" {
		if pol, err = shellpolicy.Load(cfg.Policy.File); err != nil {
			return nil, err
		}
	}
	key, err := recordings.LoadOrCreateKey(d.RecordingKey())
	if err != nil {
		return nil, err
	}
	dbs, err := ResolveDatabases(cfg.Databases)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(d.DB())
	if err != nil {
		return nil, err
	}
	var mirror io.Writer
	if cfg.Audit.Stdout {
		mirror = os.Stdout
	}
	// The audit chain's key is derived from the recording key (see
	// audit.DeriveKey); the store keeps the log's head.
	akey, err := audit.DeriveKey(key.Seed())
	if err != nil {
		st.Close()
		return nil, err
	}
	lg, err := audit.Open(d.AuditLog(), audit.Options{Mirror: mirror, Key: akey, Heads: st})
	if err != nil {
		st.Close()
		return nil, err
	}
	apr := &approvals.Service{Store: st, Audit: lg, Timeout: cfg.Approvals.Timeout}
	return &Env{Dir: d, Config: cfg, CAs: cas, Store: st, Audit: lg, RecordingKey: key, Policy: pol, Approvals: apr, Databases: dbs}, nil
}

// Close releases the store and the audit log.
func (e *Env) Close() error {
	return errors.Join(e.Audit.Close(), e.Store.Close())
}

// Checker authenticates user certificates against the current and previous
// user CA and the store's revocations.
func (e *Env) Checker() *certs.Checker {
	return &certs.Checker{
		UserCAs: e.CAs.UserCAKeys,
		IsRevoked: func(serial uint64, keyID string) (bool, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return e.Store.IsRevoked(ctx, serial, keyID)
		},
	}
}

// SSHServer returns an SSH server wired to this environment. A policy
// with SQL rules for a database target that e.Databases lacks is an error.
func (e *Env) SSHServer(logger *slog.Logger) (*Server, error) {
	if err := checkSQLTargets(e.Policy, e.Databases); err != nil {
		return nil, err
	}
	return &Server{
		Config: e.Config, HostSigner: e.CAs.HostKey, Approvals: e.Approvals, Databases: e.Databases, Checker: e.Checker(), Policy: e.Policy,
		Audit: e.Audit, RecordingsDir: e.Dir.Recordings(), RecordingKey: e.RecordingKey, Logger: logger, Revocations: e.Store,
	}, nil
}
