package certs

import (
	"net"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// TestHandshake runs real SSH handshakes over loopback with x/crypto's
// client and server: the server authenticates with Checker.Check and
// presents the host certificate from InitCAs; the client trusts only the
// host CA (no TOFU) and logs in with a user certificate.
func TestHandshake(t *testing.T) {
	t.Parallel()
	cas, err := InitCAs(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	checker := &Checker{UserCAs: cas.UserCAKeys}
	user := seededSigner(t, 2)
	cert, err := SignUser(cas.User, userReq(user.PublicKey()), Options{})
	if err != nil {
		t.Fatal(err)
	}
	hostCert, err := SignHost(cas.User, user.PublicKey(), []string{"agent"}, time.Hour, Options{})
	if err != nil {
		t.Fatal(err)
	}
	certSigner, err := ssh.NewCertSigner(cert, user)
	if err != nil {
		t.Fatal(err)
	}
	hostAsUser, err := ssh.NewCertSigner(hostCert, user)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		login  string
		signer ssh.Signer
		reason string // "" means the handshake succeeds
	}{
		{"user certificate", "agent", certSigner, ""},
		{"wrong login", "root", certSigner, ReasonWrongPrincipal},
		{"plain key", "agent", user, ReasonNotCertificate},
		{"host certificate as user", "agent", hostAsUser, ReasonNotUserCert},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reasons := make(chan string, 4)
			srvCfg := &ssh.ServerConfig{
				PublicKeyCallback: func(conn ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
					id, err := checker.Check(conn.User(), conn.RemoteAddr(), key)
					if err != nil {
						reasons <- refusedReason(err)
						return nil, err
					}
					reasons <- ""
					return &ssh.Permissions{Extensions: id.Extensions}, nil
				},
			}
			srvCfg.AddHostKey(cas.HostKey)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			served := make(chan error, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					served <- err
					return
				}
				defer c.Close()
				sc, _, _, err := ssh.NewServerConn(c, srvCfg)
				if err == nil {
					sc.Close()
				}
				served <- err
			}()

			hostChecker := &ssh.CertChecker{IsHostAuthority: func(k ssh.PublicKey, _ string) bool { return sameKey(k, cas.Host.PublicKey()) }}
			cliCfg := &ssh.ClientConfig{
				User:              tt.login,
				Auth:              []ssh.AuthMethod{ssh.PublicKeys(tt.signer)},
				HostKeyCallback:   hostChecker.CheckHostKey,
				HostKeyAlgorithms: []string{ssh.CertAlgoED25519v01},
				Timeout:           10 * time.Second,
			}
			client, err := ssh.Dial("tcp", ln.Addr().String(), cliCfg)
			if client != nil {
				client.Close()
			}
			srvErr := <-served
			if tt.reason == "" {
				if err != nil || srvErr != nil {
					t.Fatalf("handshake failed: client %v, server %v", err, srvErr)
				}
				return
			}
			if err == nil {
				t.Fatal("handshake succeeded")
			}
			var got string
			select {
			case got = <-reasons:
			default:
			}
			if got != tt.reason {
				t.Errorf("server refusal reason %q, want %q", got, tt.reason)
			}
			if srvErr == nil {
				t.Errorf("server accepted the connection")
			}
		})
	}
}
