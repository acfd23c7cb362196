// Command compatreport compares `go test -json` runs of one driver's test
// suite, against PostgreSQL directly and through bastion's tunnel, for
// scripts/compat.sh: it prints the pass, fail and skip counts of both and
// every test that fails only through the tunnel, and exits 1 when one of
// those is not in the allow-list (scripts/compat-expected.txt).
//
//	compatreport -suite pgx -list l.json -direct d.json -tunnel t.json [-tunnel rerun.json]... \
//	    [-wall-direct S] [-wall-tunnel S] [-reruns N] [-expected FILE] [-details FILE] [-version V]
//	compatreport -missing -list l.json -tunnel t.json [-tunnel rerun.json]...
//
// Counts include subtests. A run given as several files is merged: a test
// takes the first finished result, so that reruns of the tests a crashed
// test binary never finished (a panic, the -timeout) fill in the gaps;
// -missing prints a `package -run-pattern` line per package for the
// top-level tests of the list (`go test -list . -json`) that are still
// unfinished. A test that passed or was skipped directly and failed, or
// never finished, through the tunnel fails only through the tunnel; when a
// subtest is listed its parents are not, and when a test never finished its
// subtests are not.
//
// An allow-list line is `suite TestName  # reason`; TestName also covers
// its subtests (TestName/...), in any package of the suite.
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	var direct, tunnel []string
	files := func(to *[]string) func(string) error {
		return func(v string) error { *to = append(*to, v); return nil }
	}
	suite := flag.String("suite", "", "suite name, as in the allow-list (pgx, pq)")
	list := flag.String("list", "", "go test -list . -json output: the suite's top-level tests")
	flag.Func("direct", "go test -json output of the direct run (repeatable: reruns)", files(&direct))
	flag.Func("tunnel", "go test -json output of the run through the tunnel (repeatable: reruns)", files(&tunnel))
	missing := flag.Bool("missing", false, "print `package pattern` lines for the listed top-level tests the run (-direct or -tunnel) never finished, and exit")
	wallD := flag.Float64("wall-direct", 0, "wall time of the direct run, seconds")
	wallT := flag.Float64("wall-tunnel", 0, "wall time of the tunnel run, seconds")
	reruns := flag.Int("reruns", 0, "how many reruns the wall times include")
	expected := flag.String("expected", "", "allow-list file")
	details := flag.String("details", "", "append each tunnel-only failure's output to this file")
	version := flag.String("version", "", "the suite's version, for the heading")
	flag.Parse()
	status, err := run(*suite, *list, direct, tunnel, *missing, *wallD, *wallT, *reruns, *expected, *details, *version)
	if err != nil {
		fmt.Fprintln(os.Stderr, "compatreport:", err)
		status = 2
	}
	os.Exit(status)
}

func run(suite, list string, direct, tunnel []string, missing bool, wallD, wallT float64, reruns int, expected, details, version string) (int, error) {
	var listed []testID
	if list != "" {
		var err error
		if listed, err = readList(list); err != nil {
			return 0, err
		}
	}
	if missing {
		files := direct
		if len(files) == 0 {
			files = tunnel
		}
		r, err := readRuns(files)
		if err != nil {
			return 0, err
		}
		printMissing(os.Stdout, listed, r)
		return 0, nil
	}
	if suite == "" || len(direct) == 0 || len(tunnel) == 0 {
		return 0, fmt.Errorf("want -suite, -direct and -tunnel (see -h)")
	}
	d, err := readRuns(direct)
	if err != nil {
		return 0, err
	}
	t, err := readRuns(tunnel)
	if err != nil {
		return 0, err
	}
	var allow []allowEntry
	if expected != "" {
		if allow, err = readAllow(expected, suite); err != nil {
			return 0, err
		}
	}
	rep := &reporter{suite: suite, version: version, reruns: reruns, listed: listed, allow: allow}
	return rep.write(os.Stdout, d, t, wallD, wallT, details)
}
