package attack

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bastion-dev/bastion/internal/sshtest"
)

// TestMaskerWalkArounds (#22 item 6a-c): the ways around the masker that
// the attack run found, through the real ssh client. Each command's output
// must hold the marker and no part of the secret. (The server writes no
// audit event per masking; the recording holds the masked output.)
func TestMaskerWalkArounds(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	dir := sshtest.SandboxDir(t)
	keyFile := filepath.Join(dir, "id.pem")
	if err := os.WriteFile(keyFile, keyPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	body := strings.Split(string(keyPEM), "\n")[1] // the first body line

	b := start(t, sshtest.Options{})
	login := b.Login("agent-mask")
	for _, tc := range []struct {
		name, cmd, secret, kind string
	}{
		{"pause after the prefix", "printf 'id: AK'; sleep 0.1; printf 'IA'; sleep 0.1; printf '" + testAWSKey[4:] + "\\n'", testAWSKey[4:], "aws-access-key"},
		{"zero-width bytes inside", `printf 'id: AKIA\342\200\213` + testAWSKey[4:10] + `\a\000` + testAWSKey[10:] + `\n'`, testAWSKey[10:], "aws-access-key"},
		{"osc string inside", `printf 'id: ` + testAWSKey[:8] + `\033]0;t\007` + testAWSKey[8:] + `\n'`, testAWSKey[8:], "aws-access-key"},
		{"key without its header", "sed 1d " + keyFile, body[:32], "private-key"},
		{"key grep -v PRIVATE", "grep -v PRIVATE " + keyFile, body[:32], "private-key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := sshtest.SSH(t, login, nil, "bastion", tc.cmd)
			if r.Code != 0 {
				t.Fatalf("exit %d, stderr %q", r.Code, r.Stderr)
			}
			if strings.Contains(r.Stdout, tc.secret) || !strings.Contains(r.Stdout, "[MASKED:"+tc.kind+"]") {
				t.Fatalf("output %q", r.Stdout)
			}
		})
	}
}
