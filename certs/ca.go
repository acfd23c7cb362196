package certs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/bastion-dev/bastion/internal/fsync"
	"golang.org/x/crypto/ssh"
)

// File names inside the CA directory.
const (
	UserCAFile     = "user_ca"           // signs user certificates
	PrevUserCAFile = "user_ca.prev"      // the user CA before the last Rotate; optional
	HostCAFile     = "host_ca"           // signs the host certificate
	HostKeyFile    = "host_key"          // bastion's SSH host key
	HostCertFile   = "host_key-cert.pub" // HostKeyFile certified by HostCAFile
)

// DefaultHostTTL is the lifetime of a host certificate when none is given.
// Renew it with [SignHostCert] before it ends.
const DefaultHostTTL = 365 * 24 * time.Hour

// DefaultHostPrincipals are the names a host certificate is valid for when
// none are given.
func DefaultHostPrincipals() []string { return []string{"localhost", "127.0.0.1", "bastion"} }

// CAs is the set of keys loaded from a CA directory.
type CAs struct {
	// User signs user certificates.
	User ssh.Signer
	// PrevUser is the user CA before the last rotation, still trusted so
	// that certificates it signed keep working until they expire; nil when
	// there is none.
	PrevUser ssh.Signer
	// Host signs the host certificate.
	Host ssh.Signer
	// HostKey is bastion's host key presenting its certificate: the signer
	// to give ssh.ServerConfig.AddHostKey.
	HostKey ssh.Signer
	// HostCert is the host certificate inside HostKey.
	HostCert *ssh.Certificate
}

// UserCAKeys returns the public keys of the trusted user CAs, current
// first. It fits [Checker].UserCAs.
func (c *CAs) UserCAKeys() []ssh.PublicKey {
	keys := []ssh.PublicKey{c.User.PublicKey()}
	if c.PrevUser != nil {
		keys = append(keys, c.PrevUser.PublicKey())
	}
	return keys
}

// LoadCAs reads the CA directory written by [InitCAs]. It checks that the
// host certificate certifies the host key and was signed by the host CA; it
// does not refuse an expired host certificate (clients will), so callers
// should warn when HostCert.ValidBefore is near.
func LoadCAs(dir string) (*CAs, error) {
	var c CAs
	var err error
	if c.User, err = LoadSigner(filepath.Join(dir, UserCAFile)); err != nil {
		return nil, err
	}
	c.PrevUser, err = LoadSigner(filepath.Join(dir, PrevUserCAFile))
	if errors.Is(err, fs.ErrNotExist) {
		c.PrevUser, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	if c.Host, err = LoadSigner(filepath.Join(dir, HostCAFile)); err != nil {
		return nil, err
	}
	hostKey, err := LoadSigner(filepath.Join(dir, HostKeyFile))
	if err != nil {
		return nil, err
	}
	certPath := filepath.Join(dir, HostCertFile)
	data, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("load host certificate: %w", err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(data)
	if err != nil {
		return nil, fmt.Errorf("load host certificate %s: %w", certPath, err)
	}
	cert, ok := pub.(*ssh.Certificate)
	switch {
	case !ok || cert.CertType != ssh.HostCert:
		return nil, fmt.Errorf("load host certificate %s: not a host certificate", certPath)
	case !sameKey(cert.SignatureKey, c.Host.PublicKey()):
		return nil, fmt.Errorf("load host certificate %s: not signed by %s", certPath, HostCAFile)
	case !sameKey(cert.Key, hostKey.PublicKey()):
		return nil, fmt.Errorf("load host certificate %s: certifies another key than %s", certPath, HostKeyFile)
	}
	if c.HostKey, err = ssh.NewCertSigner(cert, hostKey); err != nil {
		return nil, fmt.Errorf("load host certificate %s: %w", certPath, err)
	}
	c.HostCert = cert
	return &c, nil
}

// InitCAs creates a CA directory: a user CA, a host CA, a host key and a
// host certificate valid for DefaultHostTTL and hostPrincipals (default
// [DefaultHostPrincipals]). It refuses to replace an existing CA unless
// force is set; with force, the old CAs, including a previous user CA, are
// removed and every certificate they signed stops being trusted.
func InitCAs(dir string, force bool, hostPrincipals ...string) (*CAs, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("init CA: %w", err)
	}
	files := []string{UserCAFile, PrevUserCAFile, HostCAFile, HostKeyFile, HostCertFile}
	for _, name := range files {
		path := filepath.Join(dir, name)
		_, err := os.Lstat(path)
		if err == nil && !force {
			return nil, fmt.Errorf("init CA: %s already exists; pass --force to replace the CA (certificates it signed will stop being trusted)", path)
		}
		if err == nil {
			if err := os.Remove(path); err != nil {
				return nil, fmt.Errorf("init CA: %w", err)
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("init CA: %w", err)
		}
	}
	for _, name := range []string{UserCAFile, HostCAFile, HostKeyFile} {
		if _, err := GenerateKeyFile(filepath.Join(dir, name)); err != nil {
			return nil, fmt.Errorf("init CA: %w", err)
		}
	}
	if _, err := SignHostCert(dir, hostPrincipals, 0, Options{}); err != nil {
		return nil, fmt.Errorf("init CA: %w", err)
	}
	return LoadCAs(dir)
}

// SignHostCert (re)issues the host certificate of the CA directory: it
// certifies host_key with host_ca for principals (default
// [DefaultHostPrincipals]) and ttl (0: DefaultHostTTL), and replaces
// host_key-cert.pub atomically. Run it to renew the host certificate or to
// change the names it is valid for.
func SignHostCert(dir string, principals []string, ttl time.Duration, opt Options) (*ssh.Certificate, error) {
	if len(principals) == 0 {
		principals = DefaultHostPrincipals()
	}
	ca, err := LoadSigner(filepath.Join(dir, HostCAFile))
	if err != nil {
		return nil, err
	}
	key, err := LoadSigner(filepath.Join(dir, HostKeyFile))
	if err != nil {
		return nil, err
	}
	cert, err := SignHost(ca, key.PublicKey(), principals, ttl, opt)
	if err != nil {
		return nil, err
	}
	line := AuthorizedKeyLine(cert, "bastion host certificate") + "\n"
	if err := fsync.WriteFile(filepath.Join(dir, HostCertFile), []byte(line), 0o644); err != nil {
		return nil, fmt.Errorf("write host certificate: %w", err)
	}
	return cert, nil
}

// Rotate replaces the user CA: user_ca becomes user_ca.prev and a new
// user_ca is generated. [LoadCAs] returns both, and a [Checker] fed by
// [CAs.UserCAKeys] trusts both, so certificates signed before the rotation
// keep working until they expire (at most the maximum ttl, 1h by default).
//
// Only one previous CA is kept: rotating twice drops the oldest CA, and
// certificates it signed are refused from then on. Wait at least the
// maximum ttl between rotations. Once that has passed, [RetirePrevious]
// stops trusting the previous CA. After a CA key compromise, rotate twice
// (or RetirePrevious) so the compromised key is no longer trusted at all.
func Rotate(dir string) error {
	cur := filepath.Join(dir, UserCAFile)
	if _, err := LoadSigner(cur); err != nil {
		return fmt.Errorf("rotate user CA: %w", err)
	}
	// Generate into a side file first, so a failure leaves the current CA
	// in place.
	next := cur + ".new"
	if err := os.Remove(next); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("rotate user CA: %w", err)
	}
	if _, err := GenerateKeyFile(next); err != nil {
		return fmt.Errorf("rotate user CA: %w", err)
	}
	if err := os.Rename(cur, filepath.Join(dir, PrevUserCAFile)); err != nil {
		os.Remove(next)
		return fmt.Errorf("rotate user CA: %w", err)
	}
	if err := os.Rename(next, cur); err != nil {
		return fmt.Errorf("rotate user CA: %w (the new CA is in %s; rename it to %s)", err, next, cur)
	}
	return fsync.Dir(dir)
}

// RetirePrevious stops trusting the previous user CA by removing
// user_ca.prev. It is not an error if there is none.
func RetirePrevious(dir string) error {
	err := os.Remove(filepath.Join(dir, PrevUserCAFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("retire previous user CA: %w", err)
	}
	return nil
}

func sameKey(a, b ssh.PublicKey) bool {
	return a != nil && b != nil && bytes.Equal(a.Marshal(), b.Marshal())
}
