// Package pgtest starts a real PostgreSQL server for tests: a fresh cluster
// in a temporary directory, password authentication only, listening on
// 127.0.0.1 and a private unix socket directory, stopped when the test ends.
//
// The server runs the Debian postgresql binaries (/usr/lib/postgresql/N/bin,
// installed by `make deps`). initdb and postgres refuse to run as root, so
// when the test runs as root they run as the "postgres" OS user.
package pgtest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Server is a running PostgreSQL cluster for one test.
type Server struct {
	Addr string // "127.0.0.1:port"
	Host string // "127.0.0.1"
	Port int

	Database string // owned by User
	// User authenticates with SCRAM-SHA-256.
	User, Password string
	// MD5User's password is stored as an MD5 hash and pg_hba asks it for md5
	// authentication, to exercise the md5 handshake.
	MD5User, MD5Password string
	// SuperUser is the bootstrap superuser (SCRAM-SHA-256).
	SuperUser, SuperPassword string

	BinDir    string // the PostgreSQL binaries: initdb, postgres, pgbench, psql
	SocketDir string // unix socket directory
	LogFile   string // the server's log

	roots *x509.CertPool // the TLS certificate, with the TLS option
}

// TLSConfig is a client TLS configuration that verifies the server's
// certificate; nil unless the server was started with TLS().
func (s *Server) TLSConfig() *tls.Config {
	if s.roots == nil {
		return nil
	}
	return &tls.Config{RootCAs: s.roots, ServerName: s.Host, MinVersion: tls.VersionTLS12}
}

// DSN is a connection URL for User on Database over TCP without TLS.
func (s *Server) DSN() string { return s.DSNFor(s.User, s.Password) }

// DSNFor is a connection URL for user/password on Database over TCP without
// TLS.
func (s *Server) DSNFor(user, password string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(user, password),
		Host:     s.Addr,
		Path:     "/" + s.Database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Bin returns the path of a PostgreSQL program, e.g. Bin("pgbench").
func (s *Server) Bin(name string) string { return filepath.Join(s.BinDir, name) }

const (
	startTimeout = 60 * time.Second
	stopTimeout  = 30 * time.Second
)

// Option changes how Start sets up the server.
type Option func(*options)

type options struct{ tls bool }

// TLS makes the server accept TLS (ssl=on) with a fresh self-signed
// certificate for 127.0.0.1; Server.TLSConfig trusts it. Plain connections
// are still accepted.
func TLS() Option { return func(o *options) { o.tls = true } }

// Start creates and starts a cluster; it is stopped (fast shutdown) and
// removed when t ends. Start fails the test, naming what is missing, when
// PostgreSQL is not installed or does not start.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	var o options
	for _, f := range opts {
		f(&o)
	}
	bin, err := binDir()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	cred, owner, err := runAs()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}

	base, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	// The postgres user must be able to reach the cluster's directories.
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatalf("pgtest: %v", err)
	}

	s := &Server{
		Host:          "127.0.0.1",
		Database:      "bastion_test",
		User:          "bastion_app",
		Password:      randomSecret(),
		MD5User:       "bastion_md5",
		MD5Password:   randomSecret(),
		SuperUser:     "pgtest_admin",
		SuperPassword: randomSecret(),
		BinDir:        bin,
		SocketDir:     filepath.Join(base, "sock"),
		LogFile:       filepath.Join(base, "postgres.log"),
	}
	data := filepath.Join(base, "data")
	pwfile := filepath.Join(base, "pwfile")
	for _, d := range []string{data, s.SocketDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatalf("pgtest: %v", err)
		}
	}
	if err := os.WriteFile(pwfile, []byte(s.SuperPassword+"\n"), 0o600); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	if owner != nil {
		for _, p := range []string{data, s.SocketDir, pwfile} {
			if err := os.Chown(p, owner.uid, owner.gid); err != nil {
				t.Fatalf("pgtest: %v", err)
			}
		}
	}

	initdb := command(cred, s.Bin("initdb"), "-D", data, "-U", s.SuperUser,
		"--auth=scram-sha-256", "--pwfile="+pwfile, "-E", "UTF8", "--locale=C",
		"--no-sync", "--no-instructions")
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("pgtest: initdb: %v\n%s", err, out)
	}
	// Password authentication everywhere; MD5User gets the md5 challenge.
	hba := fmt.Sprintf("local all all scram-sha-256\n"+
		"host all %s 127.0.0.1/32 md5\n"+
		"host all all 127.0.0.1/32 scram-sha-256\n", s.MD5User)
	if err := os.WriteFile(filepath.Join(data, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	if owner != nil {
		if err := os.Chown(filepath.Join(data, "pg_hba.conf"), owner.uid, owner.gid); err != nil {
			t.Fatalf("pgtest: %v", err)
		}
	}
	var extra []string
	if o.tls {
		pool, err := writeCert(data, owner)
		if err != nil {
			t.Fatalf("pgtest: TLS certificate: %v", err)
		}
		s.roots = pool
		extra = []string{"-c", "ssl=on", "-c", "ssl_cert_file=server.crt", "-c", "ssl_key_file=server.key"}
	}

	// A free port can be taken between our probe and the server's bind;
	// try a few.
	var startErr error
	for attempt := 0; attempt < 3; attempt++ {
		startErr = s.start(t, cred, data, extra)
		if startErr == nil {
			break
		}
	}
	if startErr != nil {
		log, _ := os.ReadFile(s.LogFile)
		t.Fatalf("pgtest: start postgres: %v\n%s", startErr, tail(log, 4000))
	}
	if err := s.provision(); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return s
}

// start launches postgres on a free port and waits until it accepts the
// superuser. On success the process is stopped by t's cleanup.
func (s *Server) start(t testing.TB, cred *syscall.Credential, data string, extra []string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	s.Port = port
	s.Addr = net.JoinHostPort(s.Host, strconv.Itoa(port))
	logf, err := os.OpenFile(s.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	args := append([]string{"-D", data,
		"-c", "listen_addresses=" + s.Host,
		"-c", "port=" + strconv.Itoa(port),
		"-c", "unix_socket_directories=" + s.SocketDir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=60", "-c", "shared_buffers=32MB"}, extra...)
	cmd := command(cred, s.Bin("postgres"), args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	for {
		err := s.ping(ctx)
		if err == nil {
			break
		}
		select {
		case werr := <-exited:
			return fmt.Errorf("postgres exited: %v", werr)
		case <-ctx.Done():
			cmd.Process.Kill()
			<-exited
			return fmt.Errorf("not ready after %v: %w", startTimeout, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Cleanup(func() {
		// SIGINT is PostgreSQL's fast shutdown, what pg_ctl stop -m fast
		// sends: roll back open transactions, disconnect, stop.
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(stopTimeout):
			cmd.Process.Kill()
			<-exited
			t.Errorf("pgtest: postgres did not stop within %v", stopTimeout)
		}
	})
	return nil
}

func (s *Server) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := pgconn.Connect(ctx, s.superDSN("postgres"))
	if err != nil {
		return err
	}
	return c.Close(ctx)
}

func (s *Server) superDSN(db string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(s.SuperUser, s.SuperPassword),
		Host: s.Addr, Path: "/" + db, RawQuery: "sslmode=disable"}
	return u.String()
}

// provision creates Database, User (SCRAM) and MD5User (md5 hash).
func (s *Server) provision() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgconn.Connect(ctx, s.superDSN("postgres"))
	if err != nil {
		return fmt.Errorf("connect as superuser: %w", err)
	}
	defer c.Close(ctx)
	// CREATE DATABASE cannot run in the implicit transaction of a
	// multi-statement query: one statement per Exec.
	for _, sql := range []string{
		fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", s.User, s.Password),
		fmt.Sprintf("CREATE DATABASE %s OWNER %s", s.Database, s.User),
		"SET password_encryption = 'md5'",
		fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", s.MD5User, s.MD5Password),
		fmt.Sprintf("GRANT CONNECT ON DATABASE %s TO %s", s.Database, s.MD5User),
	} {
		if _, err := c.Exec(ctx, sql).ReadAll(); err != nil {
			return fmt.Errorf("provision: %s: %w", strings.SplitN(sql, " PASSWORD", 2)[0], err)
		}
	}
	return nil
}

// binDir finds the newest installed PostgreSQL's bin directory.
func binDir() (string, error) {
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) == 0 {
		return "", errors.New("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb); run `make deps` (scripts/deps.sh installs the Debian postgresql package)")
	}
	version := func(p string) int {
		v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(p))))
		return v
	}
	sort.Slice(matches, func(i, j int) bool { return version(matches[i]) < version(matches[j]) })
	dir := filepath.Dir(matches[len(matches)-1])
	if _, err := os.Stat(filepath.Join(dir, "postgres")); err != nil {
		return "", fmt.Errorf("PostgreSQL server binary missing in %s: %v", dir, err)
	}
	return dir, nil
}

type owner struct{ uid, gid int }

// runAs returns the credentials to run the server with: the postgres OS user
// when we are root, nothing otherwise.
func runAs() (*syscall.Credential, *owner, error) {
	if os.Geteuid() != 0 {
		return nil, nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, nil, fmt.Errorf("running as root needs the postgres OS user to run initdb and postgres: %v", err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return nil, nil, fmt.Errorf("postgres OS user has a non-numeric uid/gid %q/%q", u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, &owner{uid, gid}, nil
}

func command(cred *syscall.Credential, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C"}
	cmd.Dir = "/"
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	return cmd
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomSecret() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func tail(b []byte, n int) []byte {
	b = bytes.TrimSpace(b)
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// writeCert writes a self-signed certificate for 127.0.0.1 and its key into
// the data directory and returns a pool that trusts it.
func writeCert(data string, o *owner) (*x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "pgtest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{
		"server.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		"server.key": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}
	for name, b := range files {
		p := filepath.Join(data, name)
		// PostgreSQL refuses a key file others can read.
		if err := os.WriteFile(p, b, 0o600); err != nil {
			return nil, err
		}
		if o != nil {
			if err := os.Chown(p, o.uid, o.gid); err != nil {
				return nil, err
			}
		}
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool, nil
}
