package bastion_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/bastion-dev/bastion/audit"
	"github.com/bastion-dev/bastion/internal/sshtest"
	"golang.org/x/crypto/ssh"
)

// TestInProcEnvAllowList: the variables an agent may send (RFC 4254 6.4)
// reach the command; the others are refused, audited, and do not.
func TestInProcEnvAllowList(t *testing.T) {
	b := sshtest.StartInProc(t, sshtest.InProcOptions{})
	c := b.Dial(sshtest.Cert{})
	for _, tc := range []struct {
		name, value string
		ok          bool
	}{
		{"TERM", "xterm-inproc", true},
		{"LANG", "C.UTF-8", true},
		{"LC_ALL", "C", true},
		{"BASTION_REASON", "incident-42", true},
		{"PATH", "/tmp/evil-bin", false},
		{"LD_PRELOAD", "/nonexistent/evil.so", false},
		{"BASH_ENV", "/nonexistent/bash_env", false},
		{"LC_", "bare", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := c.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			err = s.Setenv(tc.name, tc.value)
			if (err == nil) != tc.ok {
				t.Fatalf("Setenv(%s): %v, want accepted %v", tc.name, err, tc.ok)
			}
			out, err := s.Output("env")
			if err != nil {
				t.Fatalf("env: %v", err)
			}
			line := tc.name + "=" + tc.value
			if got := bytes.Contains(append([]byte("\n"), out...), []byte("\n"+line+"\n")); got != tc.ok {
				t.Errorf("the command sees %s: %v, want %v; env:\n%s", line, got, tc.ok, out)
			}
			refused := func(e audit.Event) bool {
				return sshtest.Refused(e, "env") && e.Detail["reason"] == "variable "+tc.name+" is not on the allow-list"
			}
			if n := b.Audit.Count(refused); (n == 1) == tc.ok || n > 1 {
				t.Errorf("%d refusal events for %s, want %d", n, tc.name, map[bool]int{true: 0, false: 1}[tc.ok])
			}
		})
	}
}

// TestInProcSessionRequestsRefused: requests of a session channel bastion
// never serves, or serves only to certificates that permit them, are
// refused and audited with a reason.
func TestInProcSessionRequestsRefused(t *testing.T) {
	b := sshtest.StartInProc(t, sshtest.InProcOptions{})
	pty := ssh.Marshal(struct {
		Term          string
		Cols, Rows    uint32
		Width, Height uint32
		Modes         string
	}{"xterm", 80, 24, 0, 0, ""})
	x11 := ssh.Marshal(struct {
		Single        bool
		Proto, Cookie string
		Screen        uint32
	}{false, "MIT-MAGIC-COOKIE-1", "00", 0})
	for _, tc := range []struct {
		name, req string
		payload   []byte
		cert      sshtest.Cert
		reason    string
	}{
		{"pty without permit-pty", "pty-req", pty, sshtest.Cert{NoPTY: true}, "certificate does not permit a pty"},
		{"subsystem sftp", "subsystem", ssh.Marshal(struct{ Name string }{"sftp"}), sshtest.Cert{}, `subsystem "sftp" is not available`},
		{"agent forwarding", "auth-agent-req@openssh.com", nil, sshtest.Cert{}, "agent forwarding is not allowed"},
		{"agent forwarding granted", "auth-agent-req@openssh.com", nil,
			sshtest.Cert{Extensions: []string{"permit-agent-forwarding"}}, "agent forwarding is not allowed"},
		{"x11", "x11-req", x11, sshtest.Cert{Extensions: []string{"permit-X11-forwarding"}}, "X11 forwarding is not allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := b.Dial(tc.cert)
			ch, _, err := c.OpenChannel("session", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ch.Close()
			before := b.Audit.Count(func(e audit.Event) bool { return sshtest.Refused(e, tc.req) })
			ok, err := ch.SendRequest(tc.req, true, tc.payload)
			if err != nil || ok {
				t.Fatalf("%s: accepted %v, err %v; want refused", tc.req, ok, err)
			}
			// The refusal is audited before the reply is sent.
			var got []string
			for _, e := range b.Audit.Events() {
				if sshtest.Refused(e, tc.req) {
					got = append(got, e.Detail["reason"].(string))
				}
			}
			if len(got) != before+1 || got[len(got)-1] != tc.reason {
				t.Errorf("refusals of %s: %q, want one more: %q", tc.req, got, tc.reason)
			}
		})
	}
	// The control: with permit-pty (every bastion certificate has it) the
	// same pty-req is accepted.
	ch, _, err := b.Dial(sshtest.Cert{}).OpenChannel("session", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if ok, err := ch.SendRequest("pty-req", true, pty); !ok || err != nil {
		t.Errorf("pty-req with permit-pty: %v %v", ok, err)
	}
}

// TestInProcForwardingRefused: remote forwarding (global requests) and
// direct-tcpip to anything but a database target are refused with their
// message and audited, even for a certificate that claims to permit them.
func TestInProcForwardingRefused(t *testing.T) {
	b := sshtest.StartInProc(t, sshtest.InProcOptions{})
	c := b.Dial(sshtest.Cert{Extensions: []string{"permit-port-forwarding"}})
	fwd := ssh.Marshal(struct {
		Addr string
		Port uint32
	}{"127.0.0.1", 0})
	for _, req := range []string{"tcpip-forward", "cancel-tcpip-forward"} {
		ok, _, err := c.SendRequest(req, true, fwd)
		if err != nil || ok {
			t.Errorf("%s: accepted %v, err %v", req, ok, err)
		}
	}
	ok, _, err := c.SendRequest("streamlocal-forward@openssh.com", true, ssh.Marshal(struct{ Path string }{"/tmp/inproc.sock"}))
	if err != nil || ok {
		t.Errorf("streamlocal-forward: accepted %v, err %v", ok, err)
	}
	for _, req := range []string{"tcpip-forward", "cancel-tcpip-forward", "streamlocal-forward@openssh.com"} {
		b.Audit.Wait(t, req, func(e audit.Event) bool {
			return sshtest.Refused(e, req) && e.Detail["reason"] == "remote forwarding is not allowed"
		})
	}

	// direct-tcpip opens a channel only: nothing is dialled on refusal.
	_, err = c.Dial("tcp", "127.0.0.1:22")
	var oce *ssh.OpenChannelError
	if !errors.As(err, &oce) || oce.Reason != ssh.Prohibited {
		t.Fatalf("direct-tcpip to 127.0.0.1:22: %v, want administratively prohibited", err)
	}
	if want := "bastion: forwarding to 127.0.0.1:22 is not allowed: only configured database targets can be reached"; oce.Message != want {
		t.Errorf("refusal message %q, want %q", oce.Message, want)
	}
	e := b.Audit.Wait(t, "direct-tcpip", func(e audit.Event) bool { return sshtest.Refused(e, "direct-tcpip") })
	if e.Detail["reason"] != "not a configured database target" || !strings.Contains(e.Detail["dest"].(string), "127.0.0.1:22") ||
		e.Identity == nil || e.Identity.Subject != "agent-inproc" {
		t.Errorf("direct-tcpip refusal event %+v", e)
	}
}
