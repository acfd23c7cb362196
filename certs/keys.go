// Package certs owns bastion's SSH certificate authority: CA key files,
// signing short-lived user certificates and long-lived host certificates,
// checking user certificates at authentication, and exchanging verified OIDC
// ID tokens for certificates.
//
// It takes values and returns values: no sockets, no logging, no audit. The
// caller audits every issuance, refusal and revocation, using the stable
// reason codes of [RefusedError] and the messages of [ExchangeError].
package certs

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"
)

// maxKeyFileSize bounds what LoadSigner reads; OpenSSH private keys are a
// few KiB at most.
const maxKeyFileSize = 1 << 20

// GenerateKeyFile creates a new ed25519 private key, writes it to path in
// OpenSSH format with mode 0600, and returns its signer. It refuses to
// overwrite an existing file.
func GenerateKeyFile(path string) (ssh.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key %s: %w", path, err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return nil, fmt.Errorf("generate key %s: %w", path, err)
	}
	if err := writeFileExcl(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return ssh.NewSignerFromKey(priv)
}

// writeFileExcl writes data to a new file at path, failing if it exists. On
// any error it removes what it created, so no half-written key remains.
func writeFileExcl(path string, data []byte, perm fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s already exists; refusing to overwrite it", path)
	}
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// LoadSigner reads an unencrypted OpenSSH (or PEM) private key. Like ssh
// itself, it refuses a key file that group or others may read or write.
func LoadSigner(path string) (ssh.Signer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("load key: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("load key %s: not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("load key %s: permissions %04o are too open: the key must not be accessible by group or others (chmod 600 %s)", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("load key %s: %w", path, err)
	}
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("load key %s: file is larger than %d bytes", path, maxKeyFileSize)
	}
	signer, err := ssh.ParsePrivateKey(data)
	var pme *ssh.PassphraseMissingError
	if errors.As(err, &pme) {
		return nil, fmt.Errorf("load key %s: the key is protected by a passphrase; bastion needs an unencrypted key file", path)
	}
	if err != nil {
		return nil, fmt.Errorf("load key %s: %w", path, err)
	}
	return signer, nil
}

// AuthorizedKeyLine formats pub as one authorized_keys line, without a
// trailing newline: "<type> <base64> <comment>". Control characters in the
// comment are replaced by '?', so the result is always exactly one line.
func AuthorizedKeyLine(pub ssh.PublicKey, comment string) string {
	line := strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(pub)), "\n")
	comment = strings.Map(func(r rune) rune {
		if isUnsafeRune(r) {
			return '?'
		}
		return r
	}, strings.TrimSpace(comment))
	if comment == "" {
		return line
	}
	return line + " " + comment
}
