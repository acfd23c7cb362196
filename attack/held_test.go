package attack

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/internal/sshtest"
)

// The attacks below held when #22's attack run tried them; they stay in
// the suite so that they keep holding.

// TestHeldLoginForgeries: a plain key, a certificate from another CA, and
// the right certificate for another login user are all refused, and each
// refusal is audited.
func TestHeldLoginForgeries(t *testing.T) {
	b := start(t, sshtest.Options{})
	login := b.Login("agent-forger")
	tmp := t.TempDir()
	plain := filepath.Join(tmp, "plain")
	sshtest.Run(t, nil, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", plain)
	otherCA, forged := filepath.Join(tmp, "other_ca"), filepath.Join(tmp, "forged")
	sshtest.Run(t, nil, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", otherCA)
	sshtest.Run(t, nil, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", forged)
	if r := sshtest.Run(t, nil, "ssh-keygen", "-q", "-s", otherCA, "-I", login.KeyID, "-n", "agent", "-V", "-5m:+10m", forged+".pub"); r.Code != 0 {
		t.Fatalf("ssh-keygen -s: %+v", r)
	}
	key := filepath.Join(login.Dir, "id_ed25519")
	for _, tc := range []struct {
		name, user, key, cert string
	}{
		{"plain key", "agent", plain, ""},
		{"certificate from another CA", "agent", forged, forged + "-cert.pub"},
		{"wrong login user", "root", key, key + "-cert.pub"},
	} {
		r := b.SSHAs(login, tc.user, tc.key, tc.cert, "true")
		if r.Code != 255 || !strings.Contains(r.Stderr, "Permission denied") {
			t.Errorf("%s: %+v; want ssh's 255 and Permission denied", tc.name, r)
		}
	}
	if r := b.SSHAs(login, "agent", key, key+"-cert.pub", "true"); r.Code != 0 {
		t.Fatalf("the real certificate is refused too, so the probes prove nothing: %+v", r)
	}
	for _, want := range []string{"not a certificate"} {
		waitAudit(t, b, func(e event) bool {
			return e.str("type") == "auth.failed" && strings.Contains(e.detail("reason"), want)
		})
	}
}

// TestHeldForwardingRefused: -D, -W to a host that is not a target, -X and
// dangerous SetEnv are refused (or dropped) and audited.
func TestHeldForwardingRefused(t *testing.T) {
	b := start(t, sshtest.Options{})
	login := b.Login("agent-tunneller")
	if r := sshtest.SSH(t, login, nil, "-W", "127.0.0.1:22", "bastion"); r.Code != 255 || !strings.Contains(r.Stderr, "prohibited") {
		t.Errorf("-W 127.0.0.1:22: %+v", r)
	}
	// -D: a SOCKS proxy is direct-tcpip to wherever the client asks.
	port := freePort(t)
	socks := startProc(t, "ssh", "-F", login.SSHConfig, "-o", "BatchMode=yes", "-N", "-D", "127.0.0.1:"+strconv.Itoa(port), "bastion")
	if !within(10*time.Second, func() bool {
		r := sshtest.Run(t, nil, "curl", "-s", "--max-time", "5", "--socks5-hostname", "127.0.0.1:"+strconv.Itoa(port), "http://127.0.0.1:1/")
		return r.Code != 0 && r.Code != 7 // 7: the SOCKS port is not up yet
	}) {
		t.Fatalf("curl through -D never got an answer; ssh stderr %q", socks.Stderr())
	}
	waitAudit(t, b, func(e event) bool {
		return e.str("type") == "channel.refused" && e.detail("channel") == "direct-tcpip" && strings.Contains(e.detail("dest"), "127.0.0.1:1\"")
	})
	t.Setenv("DISPLAY", "127.0.0.1:99") // ssh asks for X11 forwarding only with a display
	r := sshtest.SSH(t, login, nil, "-X", "-o", "SetEnv=LD_PRELOAD=/tmp/evil.so", "bastion", `echo "${LD_PRELOAD:-none} ${DISPLAY:-none}"`)
	if r.Code != 0 || r.Stdout != "none none\n" {
		t.Errorf("-X and SetEnv LD_PRELOAD: %+v", r)
	}
	waitAudit(t, b, func(e event) bool { return e.str("type") == "request.refused" && e.detail("request") == "x11-req" })
	waitAudit(t, b, func(e event) bool { return e.str("type") == "request.refused" && e.detail("request") == "env" })
}

// TestHeldDataDirUnreadable: an agent cannot read bastion's CA keys, store,
// audit log or recordings from inside its session.
func TestHeldDataDirUnreadable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root: agent commands only run as another uid when bastion runs as root")
	}
	b := start(t, sshtest.Options{})
	login := b.Login("agent-snooper")
	for _, p := range []string{filepath.Join(string(b.Dir), "ca", "user_ca"), b.Dir.DB(), b.Dir.AuditLog(), b.Dir.RecordingKey()} {
		r := sshtest.SSH(t, login, nil, "bastion", "cat "+p)
		if r.Code == 0 || !strings.Contains(r.Stderr, "Permission denied") {
			t.Errorf("cat %s from a session: %+v", p, r)
		}
	}
}

// TestHeldHTTPAuth: the approvals API and the web UI's API want the
// operator token; a token with alg "none" gets no certificate.
func TestHeldHTTPAuth(t *testing.T) {
	b := start(t, sshtest.Options{})
	code := func(args ...string) string {
		return curl(t, append([]string{"-o", "/dev/null", "-w", "%{http_code}"}, args...)...).Stdout
	}
	for _, tc := range []struct {
		name, want string
		args       []string
	}{
		{"approvals without a token", "401", []string{b.HTTPURL + "/v1/approvals"}},
		{"approvals with a wrong token", "401", []string{"-H", "Authorization: Bearer wrong", b.HTTPURL + "/v1/approvals"}},
		{"approve without a token", "401", []string{"-X", "POST", b.HTTPURL + "/v1/approvals/apr_x/approve"}},
		{"approvals with the operator token", "200", []string{"-H", "Authorization: Bearer " + b.OperatorToken, b.HTTPURL + "/v1/approvals"}},
	} {
		if got := code(tc.args...); got != tc.want {
			t.Errorf("%s: HTTP %s, want %s", tc.name, got, tc.want)
		}
	}
	// An unsigned token naming a subject the roles accept.
	enc := base64.RawURLEncoding.EncodeToString
	none := enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." +
		enc([]byte(`{"iss":"`+b.Issuer.URL()+`","aud":"`+b.Issuer.ClientID()+`","sub":"agent-x","exp":4102444800}`)) + "."
	r := curl(t, "-w", "\n%{http_code}", "-X", "POST", "-H", "Authorization: Bearer "+none, "-H", "Content-Type: application/json",
		"-d", `{"public_key":"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq0J4c1jR1bq5B2yR4m0T0cW1l3m5H1h4g2n9Y6c0kD"}`, b.HTTPURL+"/v1/certificate")
	if !strings.HasSuffix(r.Stdout, "\n401") || strings.Contains(r.Stdout, "certificate\":\"ssh-") {
		t.Errorf("alg none token: %q", r.Stdout)
	}
	waitAudit(t, b, func(e event) bool { return e.str("type") == "cert.refused" })
}
