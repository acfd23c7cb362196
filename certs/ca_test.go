package certs

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/ssh"
)

func TestGenerateKeyFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "key")
	s, err := GenerateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %04o, want 0600", fi.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	if !bytes.HasPrefix(data, []byte("-----BEGIN OPENSSH PRIVATE KEY-----")) {
		t.Errorf("not an OpenSSH private key:\n%s", data)
	}
	if s.PublicKey().Type() != ssh.KeyAlgoED25519 {
		t.Errorf("type %s", s.PublicKey().Type())
	}
	loaded, err := LoadSigner(path)
	if err != nil {
		t.Fatal(err)
	}
	if !sameKey(loaded.PublicKey(), s.PublicKey()) {
		t.Error("loaded key differs from the generated one")
	}
	if _, err := GenerateKeyFile(path); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("overwrite: err = %v", err)
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(again, data) {
		t.Fatal("a refused overwrite changed the file")
	}
}

func TestLoadSignerRefuses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name string, data []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // umask-proof
			t.Fatal(err)
		}
		return p
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	plain, _ := ssh.MarshalPrivateKey(priv, "")
	enc, _ := ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte("secret"))

	tests := []struct {
		name, path, want string
	}{
		{"group readable", write("g", pem.EncodeToMemory(plain), 0o640), "chmod 600"},
		{"world readable", write("w", pem.EncodeToMemory(plain), 0o604), "too open"},
		{"group writable", write("gw", pem.EncodeToMemory(plain), 0o620), "too open"},
		{"passphrase", write("enc", pem.EncodeToMemory(enc), 0o600), "passphrase"},
		{"garbage", write("junk", []byte("not a key"), 0o600), "load key"},
		{"missing", filepath.Join(dir, "nope"), "no such file"},
		{"directory", dir, "not a regular file"},
	}
	for _, tt := range tests {
		if _, err := LoadSigner(tt.path); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want one mentioning %q", tt.name, err, tt.want)
		}
	}
}

func TestAuthorizedKeyLine(t *testing.T) {
	t.Parallel()
	k := seededSigner(t, 9).PublicKey()
	line := AuthorizedKeyLine(k, "agent@ci\nssh-ed25519 AAAA evil")
	if strings.ContainsAny(line, "\r\n") {
		t.Fatalf("line %q spans lines", line)
	}
	pub, comment, _, rest, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil || len(rest) != 0 {
		t.Fatal(err)
	}
	if !sameKey(pub, k) || comment != "agent@ci?ssh-ed25519 AAAA evil" {
		t.Errorf("key or comment %q", comment)
	}
	if got := AuthorizedKeyLine(k, ""); strings.Count(got, " ") != 1 {
		t.Errorf("no comment: %q", got)
	}
}

func TestInitCAs(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "ca")
	cas, err := InitCAs(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{UserCAFile, HostCAFile, HostKeyFile} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v mode %v", f, err, fi.Mode())
		}
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %04o", fi.Mode().Perm())
	}
	if cas.PrevUser != nil {
		t.Error("a fresh CA has a previous CA")
	}
	if d := cmp.Diff(DefaultHostPrincipals(), cas.HostCert.ValidPrincipals); d != "" {
		t.Errorf("host principals (-want +got):\n%s", d)
	}
	if got := time.Until(time.Unix(int64(cas.HostCert.ValidBefore), 0)); got < DefaultHostTTL-time.Hour {
		t.Errorf("host certificate valid for %s", got)
	}
	if !sameKey(cas.HostKey.PublicKey(), cas.HostCert) {
		t.Error("HostKey does not present the host certificate")
	}
	if sameKey(cas.User.PublicKey(), cas.Host.PublicKey()) {
		t.Error("user and host CA are the same key")
	}

	// A second init refuses, naming the file and --force.
	_, err = InitCAs(dir, false)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, UserCAFile)) || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("re-init: err = %v", err)
	}
	again, err := LoadCAs(dir)
	if err != nil || !sameKey(again.User.PublicKey(), cas.User.PublicKey()) {
		t.Fatalf("a refused re-init changed the CA: %v", err)
	}

	// --force replaces everything, including a previous CA.
	if err := Rotate(dir); err != nil {
		t.Fatal(err)
	}
	forced, err := InitCAs(dir, true, "bastion.example", "10.0.0.5")
	if err != nil {
		t.Fatal(err)
	}
	if sameKey(forced.User.PublicKey(), cas.User.PublicKey()) || forced.PrevUser != nil {
		t.Error("force kept an old user CA")
	}
	if d := cmp.Diff([]string{"bastion.example", "10.0.0.5"}, forced.HostCert.ValidPrincipals); d != "" {
		t.Errorf("host principals (-want +got):\n%s", d)
	}
}

func TestRotate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cas, err := InitCAs(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	user := seededSigner(t, 2)
	now := time.Now()
	sign := func(ca ssh.Signer) *ssh.Certificate {
		c, err := SignUser(ca, userReq(user.PublicKey()), Options{Clock: clockAt(now)})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	check := func(cas *CAs, cert *ssh.Certificate) string {
		c := &Checker{UserCAs: cas.UserCAKeys, Clock: clockAt(now)}
		_, err := c.Check("agent", tcpAddr("127.0.0.1:1"), cert)
		return refusedReason(err)
	}
	first := sign(cas.User)

	if err := Rotate(dir); err != nil {
		t.Fatal(err)
	}
	r1, err := LoadCAs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if r1.PrevUser == nil || !sameKey(r1.PrevUser.PublicKey(), cas.User.PublicKey()) || sameKey(r1.User.PublicKey(), cas.User.PublicKey()) {
		t.Fatal("rotation did not move user_ca to user_ca.prev and make a new one")
	}
	if !sameKey(r1.Host.PublicKey(), cas.Host.PublicKey()) {
		t.Error("rotation changed the host CA")
	}
	if got := check(r1, first); got != "" {
		t.Errorf("certificate of the previous CA refused after one rotation: %s", got)
	}
	second := sign(r1.User)
	if got := check(r1, second); got != "" {
		t.Errorf("certificate of the new CA refused: %s", got)
	}

	// Rotating again drops the oldest CA.
	if err := Rotate(dir); err != nil {
		t.Fatal(err)
	}
	r2, err := LoadCAs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := check(r2, first); got != ReasonUnknownAuthority {
		t.Errorf("certificate of the oldest CA after two rotations: reason %q, want refused", got)
	}
	if got := check(r2, second); got != "" {
		t.Errorf("certificate of the previous CA refused: %s", got)
	}

	if err := RetirePrevious(dir); err != nil {
		t.Fatal(err)
	}
	if err := RetirePrevious(dir); err != nil {
		t.Fatalf("retiring twice: %v", err)
	}
	r3, err := LoadCAs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(r3.UserCAKeys()) != 1 || check(r3, second) != ReasonUnknownAuthority {
		t.Error("retired CA still trusted")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".new") || strings.Contains(e.Name(), ".tmp") {
			t.Errorf("leftover file %s", e.Name())
		}
	}
	if err := Rotate(t.TempDir()); err == nil {
		t.Error("rotating a directory without a CA succeeded")
	}
}

func TestSignHostCertRenews(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cas, err := InitCAs(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := SignHostCert(dir, []string{"bastion.internal"}, 30*24*time.Hour, Options{})
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadCAs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.HostCert.Serial != cert.Serial || loaded.HostCert.Serial == cas.HostCert.Serial {
		t.Error("renewed certificate not on disk")
	}
	if !slices.Equal(loaded.HostCert.ValidPrincipals, []string{"bastion.internal"}) {
		t.Errorf("principals %v", loaded.HostCert.ValidPrincipals)
	}
	if fi, _ := os.Stat(filepath.Join(dir, HostCertFile)); fi.Mode().Perm() != 0o644 {
		t.Errorf("certificate mode %04o", fi.Mode().Perm())
	}

	// A host certificate for another key is refused at load.
	other := seededSigner(t, 8)
	bad, err := SignHost(cas.Host, other.PublicKey(), []string{"x"}, 0, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, HostCertFile), []byte(AuthorizedKeyLine(bad, "")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCAs(dir); err == nil || !strings.Contains(err.Error(), "another key") {
		t.Errorf("mismatched host certificate: err = %v", err)
	}
	// So is one signed by the user CA.
	wrongCA, err := SignHost(cas.User, cas.HostKey.PublicKey().(*ssh.Certificate).Key, []string{"x"}, 0, Options{})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, HostCertFile), []byte(AuthorizedKeyLine(wrongCA, "")+"\n"), 0o644)
	if _, err := LoadCAs(dir); err == nil || !strings.Contains(err.Error(), "not signed by") {
		t.Errorf("host certificate from the user CA: err = %v", err)
	}
}
