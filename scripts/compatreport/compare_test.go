package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// events builds go test -json lines: "pkg Test action" per entry; action
// "run" only starts the test.
func events(lines ...string) string {
	var b strings.Builder
	for _, l := range lines {
		f := strings.Fields(l)
		b.WriteString(`{"Action":"run","Package":"` + f[0] + `","Test":"` + f[1] + `"}` + "\n")
		if f[2] != "run" {
			b.WriteString(`{"Action":"` + f[2] + `","Package":"` + f[0] + `","Test":"` + f[1] + `"}` + "\n")
		}
	}
	return b.String()
}

func parse(t *testing.T, s string) *testRun {
	t.Helper()
	r, err := parseRun(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func names(rs []*result) string {
	var out []string
	for _, r := range rs {
		out = append(out, r.name)
	}
	return strings.Join(out, ",")
}

func TestTunnelOnly(t *testing.T) {
	d := parse(t, events(
		"p TestA pass", "p TestA/x pass", "p TestA/y pass",
		"p TestB pass", "p TestC fail", "p TestD pass", "p TestD/x pass",
		"p TestE skip", "p TestF pass", "p TestG pass"))
	tu := parse(t, events(
		"p TestA fail", "p TestA/x fail", "p TestA/y pass", // the subtest is listed, not its parent
		"p TestB pass",
		"p TestC fail", // fails both ways
		"p TestD run",  // never finished; its subtest never started
		"p TestE fail", // skipped directly
		"p TestH fail", // only through the tunnel
	)) // TestF, TestG never started
	failed, notRun := tunnelOnly(d, tu)
	if got, want := names(failed), "TestA/x,TestD,TestE,TestH"; got != want {
		t.Errorf("failed = %s, want %s", got, want)
	}
	if got, want := names(notRun), "TestF,TestG"; got != want {
		t.Errorf("never started = %s, want %s", got, want)
	}
}

func TestNeverStartedSubtestsFoldIntoTheirParent(t *testing.T) {
	d := parse(t, events("p TestS fail", "p TestS/a pass", "p TestS/b pass", "p TestS/c fail"))
	tu := parse(t, events("p TestS fail")) // failed both ways, before its subtests
	failed, notRun := tunnelOnly(d, tu)
	if len(failed) != 0 || len(notRun) != 1 || notRun[0].name != "TestS" || notRun[0].subtests != 2 {
		t.Errorf("failed %s, never started %+v; want TestS standing for 2 subtests", names(failed), notRun)
	}
	name := parse(t, events("p TestX/dir='/tmp/TestX2205863977/001/f' pass"))
	for k := range name.tests {
		if k != "p TestX/dir='/tmp/TestX*/*/f'" {
			t.Errorf("a temporary directory in a name is kept: %q", k)
		}
	}
}

func TestReadRunsFillsUnfinished(t *testing.T) {
	dir := t.TempDir()
	first, rerun := filepath.Join(dir, "a.json"), filepath.Join(dir, "b.json")
	os.WriteFile(first, []byte(events("p TestA fail", "p TestB run")), 0o644)
	os.WriteFile(rerun, []byte(events("p TestA pass", "p TestB pass", "p TestC pass")), 0o644)
	r, err := readRuns([]string{first, rerun})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"TestA": "fail", "TestB": "pass", "TestC": "pass"} {
		if got := r.tests["p "+name]; got == nil || got.action != want {
			t.Errorf("%s = %+v, want %s", name, got, want)
		}
	}
	listed := []testID{{"p", "TestA"}, {"p", "TestB"}, {"p", "TestD"}}
	var b bytes.Buffer
	printMissing(&b, listed, r)
	if got, want := b.String(), "p ^(TestD)$\n"; got != want {
		t.Errorf("missing = %q, want %q", got, want)
	}
}

func TestAllowList(t *testing.T) {
	path := filepath.Join(t.TempDir(), "expected.txt")
	os.WriteFile(path, []byte("# comment\n\npgx TestA  # why\npq TestB # other suite\n"), 0o644)
	allow, err := readAllow(path, "pgx")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{"TestA": true, "TestA/sub": true, "TestAB": false, "TestB": false} {
		if got := allowed(allow, name) != nil; got != want {
			t.Errorf("allowed(%s) = %v, want %v", name, got, want)
		}
	}
	os.WriteFile(path, []byte("pgx TestA\n"), 0o644)
	if _, err := readAllow(path, "pgx"); err == nil {
		t.Error("an entry without a reason was accepted")
	}
}

func TestReportStatus(t *testing.T) {
	d := parse(t, events("p TestA pass", "p TestB pass"))
	tu := parse(t, events("p TestA fail", "p TestB pass"))
	for _, tc := range []struct {
		allow []allowEntry
		want  int
	}{{nil, 1}, {[]allowEntry{{name: "TestA", reason: "design"}}, 0}} {
		var b bytes.Buffer
		rp := &reporter{suite: "pgx", allow: tc.allow}
		if got, err := rp.write(&b, d, tu, 1, 2, ""); err != nil || got != tc.want {
			t.Errorf("allow %v: status %d %v, want %d\n%s", tc.allow, got, err, tc.want, b.String())
		}
	}
}
