package bastion

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// ErrServerClosed is what HandleConn returns once Shutdown has begun.
var ErrServerClosed = errors.New("bastion: server closed")

// HandleConn serves one SSH connection on c, as Serve serves each
// connection it accepts: the same authentication, the same startup cap,
// fail limiter and login grace time, the same liveness tracking (a revoked
// or expired certificate closes c); Shutdown ends its sessions and, once
// its handshake is done, waits for it. It returns when the connection
// ends, having closed c.
//
// It returns an error, and closes c, only when the server cannot serve at
// all: a required field is missing, the revocation list cannot be read, or
// Shutdown has begun (ErrServerClosed). A refused or failed handshake is
// not an error: it is audited and logged as on a listener.
//
// Tests serve one end of an in-memory pipe with it (internal/sshtest's
// InProc), so protocol tests need no TCP port, OpenSSH or data directory.
func (s *Server) HandleConn(c net.Conn) error {
	if err := s.start(); err != nil {
		c.Close()
		return err
	}
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if closing {
		// As a closed listener: Shutdown already cancelled the sessions it
		// knew of and waits only for connections gliderlabs tracks.
		c.Close()
		return ErrServerClosed
	}
	s.srv.HandleConn(c)
	return nil
}

// start readies the server for its first connection: it checks the
// required fields and the policy's SQL targets, reads the revocation list
// (so no certificate revoked before the server started is admitted) and
// starts polling it. Serve and HandleConn call it; once it has succeeded,
// later calls do nothing, and a failed call is retried by the next.
func (s *Server) start() error {
	s.startMu.Lock()
	defer s.startMu.Unlock()
	if s.started {
		return nil
	}
	if s.HostSigner == nil || s.Checker == nil || s.Audit == nil || s.RecordingsDir == "" {
		return errors.New("bastion: server needs HostSigner, Checker, Audit and RecordingsDir")
	}
	if err := checkSQLTargets(s.Policy, s.Databases); err != nil {
		return fmt.Errorf("bastion: %w", err)
	}
	s.init()
	if s.initErr != nil {
		return fmt.Errorf("bastion: %w", s.initErr)
	}
	lctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	err := s.live.load(lctx)
	cancel()
	if err != nil {
		return fmt.Errorf("bastion: read the revocation list: %w", err)
	}
	s.mu.Lock()
	if s.stopLive == nil {
		var ctx context.Context
		ctx, s.stopLive = context.WithCancel(context.Background())
		s.liveDone = make(chan struct{})
		go func() { defer close(s.liveDone); s.live.run(ctx) }()
	}
	s.mu.Unlock()
	s.started = true
	return nil
}
