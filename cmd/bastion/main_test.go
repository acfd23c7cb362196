package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets the testscript scripts run this binary as "bastion".
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"bastion": func() { os.Exit(run(os.Args[1:])) },
	})
}

// TestScripts runs the CLI scripts in testdata/*.txtar.
func TestScripts(t *testing.T) {
	t.Parallel()
	testscript.Run(t, testscript.Params{
		Dir: "testdata",
		Setup: func(env *testscript.Env) error {
			// A home of their own, so nothing reads or writes the real one
			// (ssh-keygen, config lookups); PATH comes from the test's
			// environment, so tools such as ssh-keygen are found.
			home := env.WorkDir + "/home"
			if err := os.MkdirAll(home, 0o700); err != nil {
				return err
			}
			env.Setenv("HOME", home)
			env.Setenv("PATH", os.Getenv("PATH"))
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exits":    cmdExits,
			"longline": cmdLongLine,
		},
	})
}

// cmdExits runs a program and checks its exit status:
//
//	exits CODE PROGRAM [ARGS...]
//
// stdout and stderr are kept for the commands that follow, as with exec.
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits CODE PROGRAM [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exits: bad code %q", args[0])
	}
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("exits: %v", err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited with %d, want %d", args[1], got, want)
	}
}

// cmdLongLine writes a JSON line whose cmd is an echo of N bytes, then a
// short line, to FILE:
//
//	longline FILE N
func cmdLongLine(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: longline FILE N")
	}
	n, err := strconv.Atoi(args[1])
	if err != nil {
		ts.Fatalf("longline: bad size %q", args[1])
	}
	line := fmt.Sprintf(`{"id":"long","cmd":"echo %s"}`+"\n"+`{"id":"after","cmd":"rm -rf /"}`+"\n", strings.Repeat("a", n))
	if err := os.WriteFile(ts.MkAbs(args[0]), []byte(line), 0o600); err != nil {
		ts.Fatalf("longline: %v", err)
	}
}
