//go:build linux

package pty

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	creackpty "github.com/creack/pty"
)

const benchFileSize = 16 << 20

// benchFile writes a text file of benchFileSize bytes in 80-column lines.
func benchFile(b *testing.B, dir string) string {
	b.Helper()
	line := bytes.Repeat([]byte("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_=+[]{};:,.<>/?!"), 1)
	line = append(line[:79], '\n')
	data := bytes.Repeat(line, benchFileSize/len(line)+1)[:benchFileSize]
	p := filepath.Join(dir, "big.txt")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		b.Fatal(err)
	}
	return p
}

type countWriter struct {
	n     atomic.Int64
	first chan struct{}
	once  sync.Once
}

func (w *countWriter) Write(p []byte) (int, error) {
	w.n.Add(int64(len(p)))
	w.once.Do(func() { close(w.first) })
	return len(p), nil
}

// startBenchFront starts a Front whose inputs all run and returns the
// keystroke writer and the channel of exit statuses.
func startBenchFront(b *testing.B, dir string, out *countWriter) (io.Writer, <-chan int) {
	b.Helper()
	inR, inW := io.Pipe()
	exits := make(chan int, 1)
	f := &Front{
		Shell:  shellCommand(b, dir),
		In:     inR,
		Out:    out,
		Check:  func(context.Context, string) Verdict { return Verdict{Run: true} },
		OnExit: func(_ string, code int) { exits <- code },
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := f.Run(ctx)
		done <- err
	}()
	b.Cleanup(func() {
		cancel()
		_ = inR.Close()
		<-done
	})
	<-out.first // the prompt
	return inW, exits
}

// BenchmarkFrontOutput measures command output through Front: the PTY, the
// marker scanner and the serialized writer to the agent.
func BenchmarkFrontOutput(b *testing.B) {
	dir := agentDir(b)
	file := benchFile(b, dir)
	in, exits := startBenchFront(b, dir, &countWriter{first: make(chan struct{})})
	b.SetBytes(benchFileSize)
	b.ResetTimer()
	for b.Loop() {
		if _, err := in.Write([]byte("cat " + file + "\r")); err != nil {
			b.Fatal(err)
		}
		if code := <-exits; code != 0 {
			b.Fatalf("cat exited %d", code)
		}
	}
}

// BenchmarkFrontRoundTrip measures one input from Enter to its exit status:
// the editor, Check, the plumbing, bash running a builtin, the marker.
func BenchmarkFrontRoundTrip(b *testing.B) {
	in, exits := startBenchFront(b, agentDir(b), &countWriter{first: make(chan struct{})})
	b.ResetTimer()
	for b.Loop() {
		if _, err := in.Write([]byte("true\r")); err != nil {
			b.Fatal(err)
		}
		<-exits
	}
}

// BenchmarkBarePTYOutput is the reference: the same cat on a PTY read by a
// plain loop, with no shell and no scanning.
func BenchmarkBarePTYOutput(b *testing.B) {
	dir := agentDir(b)
	file := benchFile(b, dir)
	b.SetBytes(benchFileSize)
	b.ResetTimer()
	for b.Loop() {
		c := exec.Command("cat", file)
		if os.Geteuid() == 0 {
			c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: agentUID, Gid: agentUID}}
		}
		ptm, err := creackpty.Start(c)
		if err != nil {
			b.Fatal(err)
		}
		var pathErr *os.PathError
		if _, err := io.Copy(io.Discard, ptm); err != nil && !(errors.As(err, &pathErr) && errors.Is(pathErr.Err, syscall.EIO)) {
			b.Fatal(err)
		}
		_ = ptm.Close()
		if err := c.Wait(); err != nil {
			b.Fatal(err)
		}
	}
}
