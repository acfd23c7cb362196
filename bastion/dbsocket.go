package bastion

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/bastion-dev/bastion/audit"
	"golang.org/x/sys/unix"
)

// dbSockets serves the database targets an identity may use on unix sockets
// in a private per-session directory, so psql (or any libpq client) run
// inside the session goes through the same proxy as an -L tunnel:
// PGHOST/PGPORT point at the first target, and PGSERVICEFILE names each
// target as a service (`psql service=<name>`).
type dbSockets struct {
	dir    string
	cancel context.CancelCauseFunc // ends the connections at stop
	lns    []net.Listener
	wg     sync.WaitGroup // accept loops and their connections
}

// startDBSockets starts the sockets and returns the environment for the
// session's commands. cred, when non-nil, is the account commands run as:
// only it may open the directory.
func (sess *session) startDBSockets(cred *syscall.Credential) (*dbSockets, []string, error) {
	s := sess.srv
	var names []string
	for name, t := range s.Databases {
		if len(t.Roles) == 0 || slices.Contains(t.Roles, sess.ident.Provenance.Role) {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil, nil, nil
	}
	sort.Strings(names)
	dir, err := os.MkdirTemp("", "bastion-pg-")
	if err != nil {
		return nil, nil, err
	}
	sctx, scancel := context.WithCancelCause(sess.ctx)
	d := &dbSockets{dir: dir, cancel: scancel}
	fail := func(err error) (*dbSockets, []string, error) {
		d.stop()
		return nil, nil, fmt.Errorf("database sockets: %w", err)
	}
	want := uint32(os.Getuid())
	if cred != nil {
		want = cred.Uid
	}
	var service strings.Builder
	for i, name := range names {
		t := s.Databases[name]
		port := 5432 + i
		path := filepath.Join(dir, fmt.Sprintf(".s.PGSQL.%d", port))
		ln, err := net.Listen("unix", path)
		if err != nil {
			return fail(err)
		}
		d.lns = append(d.lns, ln)
		if cred != nil {
			os.Chown(path, int(cred.Uid), int(cred.Gid))
		}
		fmt.Fprintf(&service, "[%s]\nhost=%s\nport=%d\ndbname=%s\nsslmode=disable\n\n", name, dir, port, t.Database)
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				if err := peerIs(c, want); err != nil {
					// Only the session's own uid may use its socket, so a
					// statement is always audited as the agent that sent it.
					s.audit(sess.event(audit.ChannelRefused, channelRefused{Channel: "postgres-socket", Target: name, Reason: err.Error()}))
					c.Close()
					continue
				}
				d.wg.Add(1)
				go func() {
					defer d.wg.Done()
					ctx, cancel := context.WithCancelCause(sctx)
					defer cancel(errClientGone)
					child := &session{srv: s, id: newSessionID(), ident: sess.ident, source: sess.source, ctx: ctx, cancel: cancel,
						env: sess.env, kind: "db", command: "postgres to " + name + " from session " + sess.id}
					s.serveTunnel(child, t, c, sess.id)
				}()
			}
		}()
	}
	svc := filepath.Join(dir, "pg_service.conf")
	if err := os.WriteFile(svc, []byte(service.String()), 0o644); err != nil {
		return fail(err)
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return fail(err)
		}
	}
	first := s.Databases[names[0]]
	env := []string{"PGHOST=" + dir, "PGPORT=5432", "PGDATABASE=" + first.Database, "PGSERVICEFILE=" + svc, "PGSSLMODE=disable"}
	return d, env, nil
}

// peerIs checks that the process on the other end of a unix socket runs
// as uid (SO_PEERCRED, unix(7)).
func peerIs(c net.Conn, uid uint32) error {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return errors.New("not a unix socket")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) { cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) }); err != nil {
		return err
	}
	if cerr != nil {
		return fmt.Errorf("peer credentials: %w", cerr)
	}
	if cred.Uid != uid {
		return fmt.Errorf("peer uid %d is not the session's uid %d", cred.Uid, uid)
	}
	return nil
}

var errCommandEnded = errors.New("the session's command ended")

// stop closes the listeners, waits for open connections (they end with the
// session's context) and removes the directory.
func (d *dbSockets) stop() {
	if d == nil {
		return
	}
	for _, ln := range d.lns {
		ln.Close()
	}
	d.cancel(errCommandEnded)
	d.wg.Wait()
	os.RemoveAll(d.dir)
}
