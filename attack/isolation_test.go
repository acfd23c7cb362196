package attack

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/internal/sshtest"
)

// TestAgentsCannotReachEachOther (#22 item 3): agent B cannot read agent
// A's environment, signal its processes, read its home or reach its
// database socket, because each session runs under its own uid. The
// probes only read or send signal 0: harmless if isolation failed.
func TestAgentsCannotReachEachOther(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the isolation attacks need root: bastion only switches uids when it runs as root")
	}
	pg, b := startDB(t, nil)
	box := sshtest.SandboxDir(t)
	info := filepath.Join(box, "a-info")
	a := b.Login("agent-alice")
	// A starts a process with a secret in its environment, writes a file in its home and publishes where
	// its process, home and database socket are, then waits.
	proc := startProc(t, "ssh", "-F", a.SSHConfig, "-o", "BatchMode=yes", "bastion",
		`echo private > "$HOME/notes"; A_SECRET=alices-own-secret-42 sleep 60 & `+
			`echo "$! $HOME $PGHOST $(id -u)" > `+info+`; wait`)
	var pid, home, pghost, uidA string
	if !within(15*time.Second, func() bool {
		f := strings.Fields(readFile(info))
		if len(f) == 4 {
			pid, home, pghost, uidA = f[0], f[1], f[2], f[3]
			return true
		}
		return false
	}) {
		t.Fatalf("agent A never started: %q", proc.Stderr())
	}
	if uidA == "0" || uidA == "65534" {
		t.Fatalf("agent A runs as uid %s: want a uid of its own", uidA)
	}
	bob := b.Login("agent-bob")
	run := func(cmd string) sshtest.Result { return sshtest.SSH(t, bob, nil, "bastion", cmd) }
	if r := run("id -u"); r.Code != 0 || strings.TrimSpace(r.Stdout) == uidA {
		t.Fatalf("agent B's uid: %+v; want one other than A's %s", r, uidA)
	}
	// B in a second session of its own gets yet another uid.
	r1, r2 := run("id -u"), run("id -u")
	if r1.Stdout == r2.Stdout {
		t.Errorf("two sessions of one agent share uid %s", r1.Stdout)
	}
	// A's environment, through /proc.
	r := run("tr '\\0' '\\n' < /proc/" + pid + "/environ")
	if r.Code == 0 || strings.Contains(r.Stdout, "alices-own-secret") || !strings.Contains(r.Stderr, "Permission denied") {
		t.Errorf("B read A's environment: %+v", r)
	}
	// A signal to A's shell (signal 0 only tests the permission).
	if r := run("kill -0 " + pid); r.Code == 0 || !strings.Contains(r.Stderr, "Operation not permitted") {
		t.Errorf("B may signal A's process: %+v", r)
	}
	// A's home and the file in it.
	if r := run("cat " + home + "/notes; ls " + filepath.Dir(home)); strings.Contains(r.Stdout, "private") || strings.Contains(r.Stdout, "s-") {
		t.Errorf("B read A's home or listed the homes: %+v", r)
	}
	// A's database socket directory is A's alone.
	if r := run("psql -X -h " + pghost + " -At -c 'select 1'"); r.Code == 0 || strings.Contains(r.Stdout, "1") {
		t.Errorf("B reached A's database socket: %+v", r)
	}
	// Even with the directory opened up (an operator's mistake), the socket
	// checks the peer's uid, so B's statement is never audited as A's.
	if err := os.Chmod(pghost, 0o755); err != nil {
		t.Fatal(err)
	}
	socks, _ := filepath.Glob(filepath.Join(pghost, ".s.PGSQL.*"))
	for _, s := range socks {
		os.Chmod(s, 0o777)
	}
	if r := run("psql -X -h " + pghost + " -At -c 'select 1'"); r.Code == 0 {
		t.Errorf("B's psql through A's socket ran: %+v", r)
	}
	waitAudit(t, b, func(e event) bool {
		return e.str("type") == "channel.refused" && e.detail("channel") == "postgres-socket" && strings.Contains(e.detail("reason"), "peer uid")
	})
	_ = pg
	// When A's session ends, nothing of its uid is left running.
	proc.cmd.Process.Kill()
	proc.Wait(10 * time.Second)
	if !within(10*time.Second, func() bool { _, err := os.Stat("/proc/" + pid); return os.IsNotExist(err) }) {
		t.Errorf("A's shell %s still runs after its session ended", pid)
	}
	if !within(10*time.Second, func() bool { _, err := os.Stat(home); return os.IsNotExist(err) }) {
		t.Errorf("A's home %s is still there after its session ended", home)
	}
}

// TestEscapedProcessKilled: a process that leaves the session's process
// group (setsid, nohup) does not outlive the session, so a later session
// that gets the same uid finds nothing of it.
func TestEscapedProcessKilled(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root: bastion only switches uids when it runs as root")
	}
	b := start(t, sshtest.Options{})
	box := sshtest.SandboxDir(t)
	pidFile := filepath.Join(box, "escaped")
	login := b.Login("agent-escape")
	r := sshtest.SSH(t, login, nil, "bastion", "setsid sleep 300 < /dev/null > /dev/null 2>&1 & echo $! > "+pidFile)
	if r.Code != 0 {
		t.Fatalf("%+v", r)
	}
	pid := strings.TrimSpace(readFile(pidFile))
	if pid == "" {
		t.Fatal("no pid written")
	}
	if !within(10*time.Second, func() bool { _, err := os.Stat("/proc/" + pid); return os.IsNotExist(err) }) {
		t.Fatalf("escaped process %s outlived its session", pid)
	}
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}
