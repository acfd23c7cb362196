package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
)

// testID names a test (or subtest) of a package.
type testID struct{ pkg, name string }

func (id testID) key() string { return id.pkg + " " + id.name }

// result is one test's outcome.
type result struct {
	testID
	action string   // pass, fail, skip; "" when it started and never finished
	output []string // the first keepLines lines of its output
	last   []string // and the last keepLines after those
	cut    int      // lines left out between them
	rerun  bool     // from a rerun of the tests the first run never finished
	// subtests: in a list of tests that never started, this is the parent
	// that started and stands for that many of its subtests.
	subtests int
}

func (r *result) finished() bool { return r.action != "" }

// keepLines is how many of a test's first and of its last output lines are
// kept: the first hold the failing assertion, the last the verdict or a
// panic's stack.
const keepLines = 30

func (r *result) addOutput(line string) {
	if len(r.output) < keepLines {
		r.output = append(r.output, line)
		return
	}
	if len(r.last) == keepLines {
		r.cut++
	}
	r.last = tail(append(r.last, line), keepLines)
}

// excerpt is the test's output, with the middle left out when it is long.
func (r *result) excerpt() []string {
	out := append([]string(nil), r.output...)
	if r.cut > 0 {
		out = append(out, fmt.Sprintf("... (%d lines left out)", r.cut))
	}
	return append(out, r.last...)
}

// testRun is the merged `go test -json` output of a run and its reruns.
type testRun struct {
	tests   map[string]*result // by key
	pkgFail map[string]string  // package -> its last output lines, when it failed
	pkgs    map[string]bool    // packages that reported anything
}

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

// readRuns reads and merges the files of one run: a test takes the first
// finished result any of them has.
func readRuns(paths []string) (*testRun, error) {
	out := &testRun{tests: map[string]*result{}, pkgFail: map[string]string{}, pkgs: map[string]bool{}}
	for i, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		r, err := parseRun(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		for k, t := range r.tests {
			if old, ok := out.tests[k]; !ok || !old.finished() && t.finished() {
				t.rerun = i > 0
				out.tests[k] = t
			}
		}
		for p, o := range r.pkgFail {
			if _, ok := out.pkgFail[p]; !ok && i == 0 {
				out.pkgFail[p] = o
			}
		}
		for p := range r.pkgs {
			out.pkgs[p] = true
		}
	}
	return out, nil
}

// parseRun reads test2json events; lines that are not JSON (go test's own
// errors) count as output of the package "".
func parseRun(r io.Reader) (*testRun, error) {
	out := &testRun{tests: map[string]*result{}, pkgFail: map[string]string{}, pkgs: map[string]bool{}}
	pkgOut := map[string][]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var e event
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			pkgOut[""] = tail(append(pkgOut[""], sc.Text()), 40)
			continue
		}
		if e.Package == "" {
			continue
		}
		out.pkgs[e.Package] = true
		if e.Test == "" {
			switch e.Action {
			case "output":
				pkgOut[e.Package] = tail(append(pkgOut[e.Package], strings.TrimRight(e.Output, "\n")), 40)
			case "fail":
				out.pkgFail[e.Package] = strings.Join(pkgOut[e.Package], "\n")
			}
			continue
		}
		id := testID{e.Package, tempDirs.ReplaceAllString(e.Test, "${1}*/*/")}
		t := out.tests[id.key()]
		if t == nil {
			t = &result{testID: id}
			out.tests[id.key()] = t
		}
		switch e.Action {
		case "output":
			t.addOutput(strings.TrimRight(e.Output, "\n"))
		case "pass", "fail", "skip":
			t.action = e.Action
		}
	}
	if len(pkgOut[""]) > 0 {
		out.pkgFail[""] = strings.Join(pkgOut[""], "\n")
	}
	return out, sc.Err()
}

// tempDirs matches a t.TempDir() path (TMPDIR/TestName<random>/001/) in a
// subtest's name, which differs from run to run.
var tempDirs = regexp.MustCompile(`(Test[A-Za-z0-9_]*?)[0-9]{6,}/[0-9]{3}/`)

var listedName = regexp.MustCompile(`^(Test|Fuzz|Example)\w*$`)

// readList reads `go test -list . -json`: the top-level tests, fuzz tests
// and examples of each package.
func readList(path string) ([]testID, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []testID
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e event
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.Action != "output" || e.Test != "" {
			continue
		}
		if name := strings.TrimSpace(e.Output); listedName.MatchString(name) {
			out = append(out, testID{e.Package, name})
		}
	}
	return out, sc.Err()
}

// unfinished returns the listed tests that r never finished.
func unfinished(listed []testID, r *testRun) []testID {
	var out []testID
	for _, id := range listed {
		if t := r.tests[id.key()]; t == nil || !t.finished() {
			out = append(out, id)
		}
	}
	return out
}

// printMissing prints a `package ^(A|B)$` line per package with listed
// top-level tests that r never finished.
func printMissing(w io.Writer, listed []testID, r *testRun) {
	byPkg := map[string][]string{}
	for _, id := range unfinished(listed, r) {
		byPkg[id.pkg] = append(byPkg[id.pkg], regexp.QuoteMeta(id.name))
	}
	for _, p := range sortedKeys(byPkg) {
		fmt.Fprintf(w, "%s ^(%s)$\n", p, strings.Join(byPkg[p], "|"))
	}
}

func tail(s []string, n int) []string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
