package bastion_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bastion-dev/bastion/internal/sshtest"
)

// benchFile writes size bytes of log-like text readable by the account
// agent commands run as.
func benchFile(b *testing.B, size int) string {
	b.Helper()
	dir := sshtest.SandboxDir(b)
	line := "2026-11-26T10:00:00Z info GET /api/v1/users 200 latency_ms=12 user=alice request_id=4f1c\n"
	var sb strings.Builder
	for sb.Len() < size {
		sb.WriteString(line)
	}
	path := filepath.Join(dir, "big.txt")
	if err := os.WriteFile(path, []byte(sb.String()[:size]), 0o644); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkExecOutput is `ssh bastion cat FILE` with the real OpenSSH
// client: masking and recording on. bytes/s is the exec output
// throughput; run with -cpuprofile to see where bastion spends it.
func BenchmarkExecOutput(b *testing.B) {
	const size = 64 << 20
	bs := sshtest.Start(b, sshtest.Options{})
	login := bs.Login("agent-bench")
	path := benchFile(b, size)
	b.SetBytes(size)
	b.ResetTimer()
	for b.Loop() {
		args := []string{"-F", login.SSHConfig, "-o", "BatchMode=yes"}
		if c := os.Getenv("BENCH_CIPHER"); c != "" {
			args = append(args, "-c", c)
		}
		if os.Getenv("BENCH_PTY") != "" {
			args = append(args, "-tt")
		}
		cmd := exec.Command("ssh", append(args, "bastion", "cat "+path)...)
		n, err := countOutput(cmd)
		if err != nil || n < size { // a terminal turns \n into \r\n
			b.Fatalf("cat: %d bytes, %v", n, err)
		}
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
