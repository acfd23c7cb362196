package bastion_test

import (
	"strings"
	"testing"

	"github.com/bastion-dev/bastion/bastion"
	"github.com/bastion-dev/bastion/internal/sshtest"
)

// OpenSSH's client prefers chacha20-poly1305, then aes128-ctr, then the GCM
// ciphers: with the default offer it must end up on AES-GCM, and a client
// that offers only CTR is refused unless the operator adds CTR.
func TestE2ECipherNegotiation(t *testing.T) {
	b := sshtest.Start(t, sshtest.Options{})
	login := b.Login("agent-cipher")
	r := sshtest.SSH(t, login, nil, "-v", "bastion", "true")
	if r.Code != 0 || !strings.Contains(r.Stderr, "cipher: aes128-gcm@openssh.com") {
		t.Fatalf("default client: code %d, want cipher aes128-gcm in:\n%s", r.Code, r.Stderr)
	}
	r = sshtest.SSH(t, login, nil, "-c", "aes128-ctr", "bastion", "true")
	if r.Code != 255 || !strings.Contains(r.Stderr, "no matching cipher") {
		t.Fatalf("CTR-only client: code %d stderr %q, want refused with no matching cipher", r.Code, r.Stderr)
	}

	ctr := sshtest.Start(t, sshtest.Options{Configure: func(env *bastion.Env) {
		env.Config.SSH.Ciphers = []string{"aes128-gcm@openssh.com", "aes128-ctr"}
	}})
	login = ctr.Login("agent-cipher")
	r = sshtest.SSH(t, login, nil, "-v", "-c", "aes128-ctr", "bastion", "echo ok")
	if r.Code != 0 || r.Stdout != "ok\n" || !strings.Contains(r.Stderr, "cipher: aes128-ctr MAC: hmac-sha2-256-etm@openssh.com") {
		t.Fatalf("CTR configured: code %d stdout %q, want aes128-ctr with an ETM MAC in:\n%s", r.Code, r.Stdout, r.Stderr)
	}
}
