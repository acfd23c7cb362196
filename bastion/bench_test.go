package bastion_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/bastion"
	"github.com/bastion-dev/bastion/internal/pgtest"
	"github.com/bastion-dev/bastion/internal/sshtest"
	"github.com/bastion-dev/bastion/pgproxy"
)

// benchFile writes size bytes of log-like text readable by the account
// agent commands run as, without leaving garbage for the collector.
func benchFile(b *testing.B, size int) string {
	b.Helper()
	dir := sshtest.SandboxDir(b)
	line := "2026-11-26T10:00:00Z info GET /api/v1/users 200 latency_ms=12 user=alice request_id=4f1c\n"
	block := []byte(strings.Repeat(line, (64<<10)/len(line)+1))
	path := filepath.Join(dir, "big.txt")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	for left := size; left > 0; left -= len(block) {
		if _, err := f.Write(block[:min(left, len(block))]); err != nil {
			b.Fatal(err)
		}
	}
	if err := errors.Join(f.Chmod(0o644), f.Close()); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkExecOutput is `ssh bastion cat FILE` with the real OpenSSH
// client, masking on, with and without the session recording (the
// without case exists only here: bastion never runs a session unrecorded).
// bytes/s is the exec output throughput; run with -cpuprofile to see
// where bastion spends it. BENCH_PTY=1 adds -tt; BENCH_CIPHER forces a
// cipher.
func BenchmarkExecOutput(b *testing.B) {
	const size = 64 << 20
	path := benchFile(b, size)
	for _, recording := range []bool{true, false} {
		b.Run(fmt.Sprintf("recording=%v", recording), func(b *testing.B) {
			if !recording {
				b.Cleanup(bastion.WithoutRecordings()) // runs after the server stops
			}
			bs := sshtest.Start(b, sshtest.Options{})
			login := bs.Login("agent-bench")
			args := []string{"-F", login.SSHConfig, "-o", "BatchMode=yes"}
			if c := os.Getenv("BENCH_CIPHER"); c != "" {
				args = append(args, "-c", c)
			}
			if os.Getenv("BENCH_PTY") != "" {
				args = append(args, "-tt")
			}
			b.SetBytes(size)
			b.ResetTimer()
			for b.Loop() {
				cmd := exec.Command("ssh", append(args, "bastion", "cat "+path)...)
				n, err := countOutput(cmd)
				if err != nil || n < size { // a terminal turns \n into \r\n
					b.Fatalf("cat: %d bytes, %v", n, err)
				}
			}
			if recs, _ := filepath.Glob(filepath.Join(bs.Dir.Recordings(), "*.cast")); recording == (len(recs) == 0) {
				b.Fatalf("recording=%v but %d recordings", recording, len(recs))
			}
		})
	}
}

func countOutput(cmd *exec.Cmd) (int64, error) {
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	var n int64
	buf := make([]byte, 256<<10)
	for {
		m, rerr := out.Read(buf)
		n += int64(m)
		if rerr != nil {
			break
		}
	}
	return n, cmd.Wait()
}

// BenchmarkTunnelPgbench runs pgbench -S (simple protocol: every statement
// classified) through the real `ssh -L` to an in-process bastion and a
// real PostgreSQL, for -cpuprofile. PGBENCH_TIME sets the seconds per run,
// PGBENCH_ARGS the mode ("-S" unless set; "-M extended -S", or " " for the
// default mix).
func BenchmarkTunnelPgbench(b *testing.B) {
	secs := os.Getenv("PGBENCH_TIME")
	if secs == "" {
		secs = "10"
	}
	mode := []string{"-S"}
	if args, ok := os.LookupEnv("PGBENCH_ARGS"); ok {
		mode = strings.Fields(args)
	}
	pg := pgtest.Start(b)
	bs := sshtest.Start(b, sshtest.Options{Configure: func(env *bastion.Env) {
		env.Databases = map[string]bastion.DBTarget{"benchdb": {Target: pgproxy.Target{Name: "benchdb", Addr: pg.Addr, Database: pg.Database, User: pg.User, Password: pg.Password}}}
	}})
	pgbench := func(port string, args ...string) string {
		cmd := exec.Command(pg.Bin("pgbench"), append([]string{"-h", "127.0.0.1", "-p", port, "-U", pg.User}, append(args, pg.Database)...)...)
		cmd.Env = append(os.Environ(), "PGPASSWORD="+pg.Password)
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("pgbench %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	_, port, _ := strings.Cut(pg.Addr, ":")
	pgbench(port, "-i", "-q", "-s", "10") // as make bench: 10 branches for the mix's 8 clients
	login := bs.Login("agent-bench")
	tport := fmt.Sprint(benchTunnel(b, login.SSHConfig, "benchdb"))
	for b.Loop() {
		out := pgbench(tport, append([]string{"-n", "-c", "8", "-j", "2", "-T", secs}, mode...)...)
		if m := regexp.MustCompile(`tps = ([0-9.]+)`).FindStringSubmatch(out); m != nil {
			tps, _ := strconv.ParseFloat(m[1], 64)
			b.ReportMetric(tps, "tps")
		} else {
			b.Fatalf("no tps in pgbench output:\n%s", out)
		}
	}
}

// benchTunnel starts `ssh -N -L` to target and returns the local port.
func benchTunnel(b *testing.B, sshConfig, target string) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command("ssh", "-F", sshConfig, "-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes", "-N",
		"-L", fmt.Sprintf("127.0.0.1:%d:%s:5432", port, target), "bastion")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for range 200 {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return port
		}
		time.Sleep(25 * time.Millisecond)
	}
	b.Fatal("tunnel never listened")
	return 0
}
