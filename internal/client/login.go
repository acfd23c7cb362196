// Package client is the agent side of bastion's token exchange: it
// generates an ephemeral key, exchanges an OIDC token for a certificate and
// writes what OpenSSH needs to connect (key, certificate, known_hosts with
// the host CA, ssh_config).
package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// Result describes what Login wrote.
type Result struct {
	Dir        string
	SSHConfig  string
	User       string
	ExpiresAt  time.Time
	Serial     string
	KeyID      string
	SSHCommand string // the ssh invocation to print
}

// response is the HTTP API's answer to POST /v1/certificate.
type response struct {
	Certificate string    `json:"certificate"`
	KnownHosts  string    `json:"known_hosts"`
	ExpiresAt   time.Time `json:"expires_at"`
	Serial      string    `json:"serial"`
	KeyID       string    `json:"key_id"`
	Principals  []string  `json:"principals"`
	SSHAddr     string    `json:"ssh_addr"`
}

// Options for Login.
type Options struct {
	Server  string // base URL of bastion's HTTP API
	Token   string // OIDC ID token
	OutDir  string // where to write the files (created 0700)
	SSHAddr string // overrides the SSH address the server reports
	TTL     time.Duration
	Task    string
	Reason  string
	Client  *http.Client // nil means a client with a 30s timeout
}

// Login exchanges the token for a certificate on a fresh ed25519 key and
// writes id_ed25519, id_ed25519-cert.pub, known_hosts and ssh_config into
// OutDir.
func Login(ctx context.Context, o Options) (*Result, error) {
	if o.Server == "" || o.Token == "" || o.OutDir == "" {
		return nil, errors.New("login: need a server URL, a token and an output directory")
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	body := map[string]string{"public_key": strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))}
	if o.TTL > 0 {
		body["ttl"] = o.TTL.String()
	}
	if o.Task != "" {
		body["task"] = o.Task
	}
	if o.Reason != "" {
		body["reason"] = o.Reason
	}
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(o.Server, "/")+"/v1/certificate", bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+o.Token)
	req.Header.Set("Content-Type", "application/json")
	hc := o.Client
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("login refused (%s): %s", resp.Status, e.Error)
		}
		return nil, fmt.Errorf("login refused: %s", resp.Status)
	}
	var r response
	if err := json.Unmarshal(data, &r); err != nil || r.Certificate == "" || len(r.Principals) == 0 {
		return nil, fmt.Errorf("login: malformed response from %s", o.Server)
	}
	if o.SSHAddr != "" {
		r.SSHAddr = o.SSHAddr
	}
	host, port, err := net.SplitHostPort(r.SSHAddr)
	if err != nil {
		return nil, fmt.Errorf("login: server reported no usable SSH address (%q); pass --ssh-addr", r.SSHAddr)
	}
	// Check the certificate really is for our key before writing anything.
	cpub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(r.Certificate))
	if err != nil {
		return nil, fmt.Errorf("login: bad certificate in response: %w", err)
	}
	if c, ok := cpub.(*ssh.Certificate); !ok || !bytes.Equal(c.Key.Marshal(), sshPub.Marshal()) {
		return nil, errors.New("login: the server returned a certificate for another key")
	}
	block, err := ssh.MarshalPrivateKey(priv, "bastion "+r.KeyID)
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(o.OutDir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	user := r.Principals[0]
	keyFile, certFile, khFile, cfgFile := filepath.Join(dir, "id_ed25519"), filepath.Join(dir, "id_ed25519-cert.pub"), filepath.Join(dir, "known_hosts"), filepath.Join(dir, "ssh_config")
	cfg := fmt.Sprintf(`# Written by bastion login; valid until %s.
Host bastion
  HostName %s
  Port %s
  User %s
  IdentityFile %s
  CertificateFile %s
  IdentitiesOnly yes
  UserKnownHostsFile %s
  StrictHostKeyChecking yes
  ForwardAgent no
  ForwardX11 no
`, r.ExpiresAt.Format(time.RFC3339), host, port, user, keyFile, certFile, khFile)
	files := []struct {
		path string
		data []byte
		mode os.FileMode
	}{
		{keyFile, pem.EncodeToMemory(block), 0o600},
		{certFile, []byte(strings.TrimSpace(r.Certificate) + "\n"), 0o644},
		{khFile, []byte(strings.TrimSpace(r.KnownHosts) + "\n"), 0o644},
		{cfgFile, []byte(cfg), 0o644},
	}
	// ssh_config is written last so a script can wait for it.
	for _, f := range files {
		if err := writeAtomic(f.path, f.data, f.mode); err != nil {
			return nil, fmt.Errorf("login: %w", err)
		}
	}
	return &Result{Dir: dir, SSHConfig: cfgFile, User: user, ExpiresAt: r.ExpiresAt, Serial: r.Serial, KeyID: r.KeyID,
		SSHCommand: fmt.Sprintf("ssh -F %s bastion", cfgFile)}, nil
}

func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
