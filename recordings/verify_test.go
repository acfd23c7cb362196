package recordings

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func goldenLines(t testing.TB) []string {
	return splitLines(readFile(t, filepath.Join("testdata", "s-golden.cast")))
}

func TestVerifyGolden(t *testing.T) {
	t.Parallel()
	b := readFile(t, filepath.Join("testdata", "s-golden.cast"))
	rep, err := Verify(bytes.NewReader(b), testPub)
	must(t, err)
	// The chain over every line, computed afresh, and the index the
	// golden index file holds.
	var chain []byte
	for _, l := range goldenLines(t) {
		sum := sha256.Sum256(append(chain, l...))
		chain = sum[:]
	}
	ix, err := readIndex(filepath.Join("testdata", "s-golden.index.json"))
	must(t, err)
	want := Report{Header: rep.Header, Lines: 20, Events: 19, Commands: 2, Checkpoints: 4, Checked: 20, Sealed: true, Signed: true, SignatureChecked: true,
		SHA256: hex.EncodeToString(chain), Index: ix.Commands}
	if d := cmp.Diff(want, rep); d != "" {
		t.Errorf("Report (-want +got):\n%s", d)
	}
	rep, err = Verify(bytes.NewReader(b), nil)
	if err != nil || !rep.Signed || rep.SignatureChecked {
		t.Errorf("Verify without a key = %+v, %v", rep, err)
	}
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, 32)).Public()
	if _, err := Verify(bytes.NewReader(b), other); err == nil || err.Error() != "line 4: bad signature on the command" {
		t.Errorf("Verify with another key = %v", err)
	}
	if _, err := Verify(bytes.NewReader(b), "rsa"); err == nil {
		t.Error("Verify accepted a non-ed25519 key")
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	t.Parallel()
	orig := goldenLines(t)
	// The golden file: 1 header, 4 command 1 (checkpoint), 9 exit 1
	// (checkpoint), 14 command 2 (checkpoint), 19 end, 20 seal.
	tests := []struct {
		name string
		edit func(ls []string) []string
		want string
	}{
		{"edit one byte of output", func(ls []string) []string {
			ls[4] = strings.Replace(ls[4], "a.txt", "a.tXt", 1)
			return ls
		}, "line 9: exit checkpoint does not match: a line in lines 4-9 was edited or replaced"},
		{"edit the header", func(ls []string) []string {
			ls[0] = strings.Replace(ls[0], `"principal":"deploy"`, `"principal":"root"`, 1)
			return ls
		}, "line 4: command checkpoint does not match: a line in lines 1-4 was edited or replaced"},
		{"edit a command marker", func(ls []string) []string {
			ls[13] = strings.Replace(ls[13], `\"decision\":\"deny\"`, `\"decision\":\"allow\"`, 1)
			return ls
		}, "line 20: seal checkpoint does not match: a line in lines 14-20 was edited or replaced"},
		{"edit the end marker's exit code", func(ls []string) []string {
			ls[18] = strings.Replace(ls[18], `\"exit\":1`, `\"exit\":0`, 1)
			return ls
		}, "line 20: seal checkpoint does not match: a line in lines 14-20 was edited or replaced"},
		{"delete a line", func(ls []string) []string {
			return append(ls[:5], ls[6:]...)
		}, "line 8: exit checkpoint covers 8 lines but 7 precede it: 1 line(s) deleted after line 4"},
		{"insert a line", func(ls []string) []string {
			return append(ls[:10], append([]string{`[2.250000, "o", "injected"]`}, ls[10:]...)...)
		}, "line 15: command checkpoint covers 13 lines but 14 precede it: 1 line(s) inserted in lines 9-14"},
		{"swap two lines", func(ls []string) []string {
			ls[4], ls[5] = ls[5], ls[4]
			return ls
		}, "line 6: time 1.000000 is before line 5's 1.250000: lines reordered or inserted"},
		{"swap two lines with the same time", func(ls []string) []string {
			ls[16], ls[17] = ls[17], ls[16]
			return ls
		}, "line 20: seal checkpoint does not match: a line in lines 14-20 was edited or replaced"},
		{"not JSON", func(ls []string) []string {
			ls[6] = ls[6][:10]
			return ls
		}, "line 7: not valid JSON"},
		{"not an event", func(ls []string) []string {
			ls[6] = `{"o": 1}`
			return ls
		}, "line 7: event is not a JSON array"},
		{"data after the seal", func(ls []string) []string {
			return append(ls, `[9.0, "o", "more"]`)
		}, "line 21: data after the seal"},
		{"partial line after the seal", func(ls []string) []string {
			ls[19] += "\n[9.0, \"o"
			return ls
		}, "line 21: data after the seal"},
		{"seal hash edited", func(ls []string) []string {
			ls[19] = strings.Replace(ls[19], `sha256\":\"ff`, `sha256\":\"fe`, 1)
			return ls
		}, "line 20: seal checkpoint does not match: a line in lines 14-20 was edited or replaced"},
		{"seal fields stripped", func(ls []string) []string {
			ls[19] = `[4.000000, "m", "{\"type\":\"seal\"}"]`
			return ls
		}, "line 20: seal marker without a valid checkpoint"},
		{"signature removed", func(ls []string) []string {
			i := strings.Index(ls[19], `,\"sig\"`)
			ls[19] = ls[19][:i] + `}"]`
			return ls
		}, "line 20: seal is not signed, but a key was given (signature removed?)"},
		{"the same session signed by another key", func([]string) []string {
			return signedBy(t, ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32)))
		}, "line 4: bad signature on the command"},
		{"truncated at a command and sealed with its signature", func(ls []string) []string {
			// A command checkpoint's signature replayed as a seal: the
			// signed message names the marker type, so it does not verify.
			cp := ls[13]
			seal := strings.Replace(strings.Replace(cp, `\"type\":\"command\",\"n\":2,\"cmd\":\"rm -rf /\",\"decision\":\"deny\",\"rule\":\"no-rm\",`, `\"type\":\"seal\",`, 1), "3.000000", "3.100000", 1)
			return append(ls[:13], seal)
		}, "line 14: bad signature on the seal"},
		{"time goes negative", func(ls []string) []string {
			ls[1] = strings.Replace(ls[1], "0.250000", "-1", 1)
			return ls
		}, "line 2: event time is not a non-negative number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ls := tt.edit(append([]string{}, orig...))
			_, err := Verify(bytes.NewReader(joinLines(ls)), testPub)
			var te *TamperError
			if !errors.As(err, &te) || err.Error() != tt.want {
				t.Fatalf("Verify = %v\nwant        %s", err, tt.want)
			}
			if errors.Is(err, ErrNotSealed) {
				t.Fatal("tampering reported as not sealed")
			}
		})
	}
}

// signedBy writes the golden session signed with key.
func signedBy(t *testing.T, key ed25519.PrivateKey) []string {
	dir := t.TempDir()
	w := writeGolden(t, dir, Options{Signer: key})
	must(t, w.Close(1))
	return splitLines(readFile(t, w.Path()))
}

func TestVerifyHeaderErrors(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                                   "line 1: empty recording: no header",
		"[1]\n":                              "line 1: header is not a JSON object",
		`{"version":3,"term":{}}` + "\n":     "line 1: asciicast version 3, want 2",
		`{"version":2}` + "\n":               "line 1: header lacks the terminal width and height",
		`{"version":2,"width":1,"height":1}`: "not sealed: session ended abnormally; valid up to line 1 (no checkpoint: the content is not vouched for)",
	} {
		_, err := Verify(strings.NewReader(in), nil)
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("Verify(%q) = %v, want %s", in, err, want)
		}
	}
	if _, err := Verify(strings.NewReader(`{"version":2,"wid`), nil); !isNotSealed(err) {
		t.Errorf("Verify of a torn header = %v, want not sealed", err)
	}
}

// A crash leaves no seal: Verify says so, distinctly from tampering, and
// says how far the recording holds.
func TestCrashLeavesVerifiablePrefix(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w := writeGolden(t, dir, Options{Signer: testKey})
	// No Close: the process died here.
	b := readFile(t, w.Path())
	n := len(splitLines(b))
	rep, err := Verify(bytes.NewReader(b), testPub)
	want := fmt.Sprintf("not sealed: session ended abnormally; valid up to line %d (vouched for by a checkpoint up to line 13)", n)
	if !isNotSealed(err) || err.Error() != want {
		t.Fatalf("Verify = %v\nwant       %s", err, want)
	}
	if rep.Sealed || rep.Checked != 13 || !rep.SignatureChecked || rep.Truncated {
		t.Errorf("Report = %+v", rep)
	}

	// Cut the last line in the middle as well.
	cut := b[:len(b)-7]
	rep, err = Verify(bytes.NewReader(cut), testPub)
	want = fmt.Sprintf("not sealed: session ended abnormally; valid up to line %d (vouched for by a checkpoint up to line 13); line %d was cut off mid-write", n-1, n)
	if !isNotSealed(err) || err.Error() != want || !rep.Truncated {
		t.Fatalf("Verify of a torn recording = %v\nwant                             %s", err, want)
	}
	// The Reader reads every complete event, then says the last was cut.
	rd, err := Open(bytes.NewReader(cut))
	must(t, err)
	events := 0
	for {
		_, err = rd.Next()
		if err != nil {
			break
		}
		events++
	}
	if err != io.ErrUnexpectedEOF || events != n-2 {
		t.Fatalf("Reader: %d events then %v; want %d then io.ErrUnexpectedEOF", events, err, n-2)
	}
	// Listing shows it as not ended.
	os.WriteFile(w.Path(), cut, 0o600)
	d, err := Load(dir, "s-golden")
	must(t, err)
	if !d.Ended.IsZero() || d.Commands != 2 || d.Denied != 1 || d.Exit != nil {
		t.Errorf("Load of a crashed recording = %+v", d.Summary)
	}
}

// A real process killed with SIGKILL in the middle of recording leaves a
// recording that verifies as unsealed, never as tampered.
func TestKilledProcessLeavesVerifiableRecording(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "RECORDINGS_HELPER="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	must(t, err)
	must(t, cmd.Start())
	buf := make([]byte, 6)
	if _, err := io.ReadFull(out, buf); err != nil || string(buf) != "ready\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper said %q, %v", buf, err)
	}
	time.Sleep(100 * time.Millisecond)
	must(t, cmd.Process.Signal(syscall.SIGKILL))
	cmd.Wait()
	rep, err := VerifyFile(fileOf(t, dir, "killed"), testPub)
	if !isNotSealed(err) {
		t.Fatalf("Verify after SIGKILL = %v, want not sealed", err)
	}
	if rep.Checked < 4 || !rep.SignatureChecked || rep.Events < 10 {
		t.Fatalf("Report after SIGKILL = %+v (%v)", rep, err)
	}
	t.Logf("after SIGKILL: %v (%d events, %d checkpoints)", err, rep.Events, rep.Checkpoints)
}

func TestRealFullFilesystem(t *testing.T) {
	t.Parallel()
	dir := mountTmpfs(t, 0, "size=64k")
	w, err := Create(dir, header("full"), Options{Signer: testKey})
	must(t, err)
	chunk := bytes.Repeat([]byte("x"), 4096)
	var first error
	for range 100 {
		if first = w.Output(chunk); first != nil {
			break
		}
	}
	if !errors.Is(first, syscall.ENOSPC) {
		t.Fatalf("Output on a full tmpfs = %v, want ENOSPC", first)
	}
	for name, err := range map[string]error{"Output": w.Output([]byte("y")), "Sync": w.Sync(), "Close": w.Close(0)} {
		if !errors.Is(err, syscall.ENOSPC) {
			t.Errorf("%s after ENOSPC = %v, want the ENOSPC again", name, err)
		}
	}
	if _, err := Verify(bytes.NewReader(readFile(t, w.Path())), testPub); !isNotSealed(err) {
		t.Errorf("Verify of the cut-off recording = %v, want not sealed", err)
	}
	// Create itself fails on the full filesystem, and leaves no file.
	if _, err := Create(dir, header("nospace"), Options{}); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("Create on a full tmpfs = %v, want ENOSPC", err)
	}
	if _, err := os.Stat(fileOf(t, dir, "nospace")); !os.IsNotExist(err) {
		t.Errorf("a failed Create left its file: %v", err)
	}
}

func TestReadOnlyFilesystem(t *testing.T) {
	t.Parallel()
	dir := mountTmpfs(t, syscall.MS_RDONLY, "size=64k")
	if _, err := Create(dir, header("ro"), Options{}); !errors.Is(err, syscall.EROFS) {
		t.Fatalf("Create on a read-only tmpfs = %v, want EROFS", err)
	}
	if _, err := Create(filepath.Join(dir, "sub"), header("ro"), Options{}); !errors.Is(err, syscall.EROFS) {
		t.Fatalf("Create in a missing dir on a read-only tmpfs = %v, want EROFS", err)
	}
}

// The Debian asciinema player plays what the Writer wrote.
func TestAsciinemaPlaysRecording(t *testing.T) {
	t.Parallel()
	for _, bin := range []string{"asciinema", "script"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is not installed (apt-get install asciinema bsdutils): %v", bin, err)
		}
	}
	dir := t.TempDir()
	w := writeGolden(t, dir, Options{Signer: testKey})
	must(t, w.Output([]byte("the end of \xe2\x9c\x93 playback\r\n")))
	must(t, w.Close(0))
	cmd := exec.Command("script", "-qec", "asciinema play -s 100 "+w.Path(), "/dev/null")
	cmd.Env = append(os.Environ(), "TERM=xterm", "LANG=C.UTF-8", "LC_ALL=C.UTF-8")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("asciinema play: %v\n%s", err, out)
	}
	for _, want := range []string{"a.txt  b.txt", "café", "日本", "bastion: denied", "the end of ✓ playback", "bin\ufffd\ufffdary"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("asciinema output lacks %q:\n%q", want, out)
		}
	}
}
