package recordings_test

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/bastion-dev/bastion/recordings"
)

// tick is a clock that advances one second per reading.
func tick() func() time.Time {
	t := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	return func() time.Time { t = t.Add(time.Second); return t }
}

// A session's recording: each command's decision is durable before the
// command runs, and Close seals the file.
func ExampleCreate() {
	dir, _ := os.MkdirTemp("", "recordings")
	defer os.RemoveAll(dir)
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))

	h := recordings.Header{Bastion: recordings.Meta{SessionID: "3f2a9c", Principal: "deploy"}}
	w, err := recordings.Create(dir, h, recordings.Options{Clock: tick(), Signer: key})
	if err != nil {
		fmt.Println("the session must not start:", err)
		return
	}
	ref, _ := w.Command("ls", "allow", "default-allow")
	fmt.Fprint(w.OutputWriter(), "a.txt  b.txt\r\n")
	w.CommandEnd(ref, 0)
	w.Close(0)

	rep, err := recordings.VerifyFile(w.Path(), key.Public())
	fmt.Println(rep.Sealed, rep.SignatureChecked, rep.Commands, err)
	fmt.Printf("%+v\n", w.Index()[0].Cmd)
	// Output:
	// true true 1 <nil>
	// ls
}

// Verify names where a recording was changed.
func ExampleVerify() {
	dir, _ := os.MkdirTemp("", "recordings")
	defer os.RemoveAll(dir)
	w, _ := recordings.Create(dir, recordings.Header{Bastion: recordings.Meta{SessionID: "s1"}}, recordings.Options{Clock: tick()})
	ref, _ := w.Command("cat notes", "allow", "r1")
	w.Output([]byte("the password is hunter2\r\n"))
	w.CommandEnd(ref, 0)
	w.Close(0)

	b, _ := os.ReadFile(w.Path())
	edited := strings.Replace(string(b), "hunter2", "*******", 1)
	_, err := recordings.Verify(strings.NewReader(edited), nil)
	fmt.Println(err)
	// Output: line 4: exit checkpoint does not match: a line in lines 2-4 was edited or replaced
}

// Reading a recording event by event.
func ExampleOpen() {
	cast := `{"version":2,"width":80,"height":24}
[0.5, "o", "hello\r\n"]
[1.0, "m", "a note"]
[1.5, "o", "cut off by a cra`
	rd, err := recordings.Open(strings.NewReader(cast))
	if err != nil {
		fmt.Println(err)
		return
	}
	for {
		e, err := rd.Next()
		if err == io.ErrUnexpectedEOF {
			fmt.Println("the last line was cut off mid-write")
			break
		}
		if err != nil {
			break
		}
		fmt.Printf("%.1f %s %q\n", e.Time, e.Type, e.Data)
	}
	// Output:
	// 0.5 o "hello\r\n"
	// 1.0 m "a note"
	// the last line was cut off mid-write
}
