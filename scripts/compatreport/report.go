package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
)

// allowEntry is one line of the allow-list.
type allowEntry struct {
	name, reason string
	line         int
	used         bool
}

// readAllow reads the entries of suite from an allow-list: `suite TestName
// # reason` per line; blank lines and lines starting with # are skipped.
func readAllow(path, suite string) ([]allowEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []allowEntry
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		body, reason, _ := strings.Cut(line, "#")
		f := strings.Fields(body)
		if len(f) != 2 {
			return nil, fmt.Errorf("%s:%d: want `suite TestName  # reason`", path, n)
		}
		if strings.TrimSpace(reason) == "" {
			return nil, fmt.Errorf("%s:%d: %s %s has no reason (`# why`)", path, n, f[0], f[1])
		}
		if f[0] == suite {
			out = append(out, allowEntry{name: f[1], reason: strings.TrimSpace(reason), line: n})
		}
	}
	return out, sc.Err()
}

// allowed returns the entry that covers a test: its name or an ancestor's.
func allowed(allow []allowEntry, name string) *allowEntry {
	for i := range allow {
		if e := &allow[i]; name == e.name || strings.HasPrefix(name, e.name+"/") {
			return e
		}
	}
	return nil
}

// causes guess why a test failed only through the tunnel, from its name and
// output; the first that matches wins. They are guesses for sorting the
// list, not a diagnosis.
var causes = []struct {
	name string
	re   *regexp.Regexp
}{
	{"panic", regexp.MustCompile(`panic: |\[recovered\]`)},
	{"masking changed values", regexp.MustCompile(`\[MASKED:|5b 4d 41 53 4b 45 44|0x5b, 0x4d, 0x41, 0x53|1531789651|invalid length: expected \d+ bytes, got`)},
	{"refused by bastion (SQLSTATE, message)", regexp.MustCompile(`bastion: denied|SQLSTATE 42501|"42501"|bastion: .*(not |refus|cannot|unsupported)`)},
	{"TLS", regexp.MustCompile(`(?i)refused TLS|SSL is not enabled|\btls\b|x509|certificate|sslmode`)},
	{"credentials (bastion injects its own)", regexp.MustCompile(`password authentication failed|role "?\w+"? does not exist|no encryption \(28000\)`)},
	{"session limit / connection reset", regexp.MustCompile(`(?i)connection reset by peer|53300|too.many.connections|broken pipe|unexpected EOF|server closed|conn closed|failed to connect`)},
	{"cancel / timeout", regexp.MustCompile(`(?i)cancel|deadline|timed? ?out|57014`)},
	{"startup parameters", regexp.MustCompile(`(?i)options|search_path|application_name|runtimeparam|parameterstatus|startup|session_attrs`)},
}

func guessCause(r *result) string {
	text := r.name + "\n" + strings.Join(r.excerpt(), "\n")
	if r.action == "" && !causes[0].re.MatchString(text) {
		return "never finished: its test binary died (a panic elsewhere, -timeout)"
	}
	for _, c := range causes {
		if c.re.MatchString(text) {
			return c.name
		}
	}
	return "other"
}

// shortPkg drops the suite's module path: "pgconn", or "." for its root.
func shortPkg(root, pkg string) string {
	if pkg == root {
		return "."
	}
	return strings.TrimPrefix(pkg, root+"/")
}

// rootPkg is the shortest package path, which prefixes the others.
func rootPkg(runs ...*testRun) string {
	root := ""
	for _, r := range runs {
		for p := range r.pkgs {
			if root == "" || len(p) < len(root) {
				root = p
			}
		}
	}
	return root
}

type reporter struct {
	suite, version string
	reruns         int
	listed         []testID
	allow          []allowEntry
}

// write prints the comparison, appends each tunnel-only failure's output to
// the details file, and returns the exit status: 1 when a test fails only
// through the tunnel and no allow-list entry covers it.
func (rp *reporter) write(w io.Writer, d, t *testRun, wallD, wallT float64, details string) (int, error) {
	var dw io.Writer = io.Discard
	if details != "" {
		f, err := os.OpenFile(details, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return 2, err
		}
		defer f.Close()
		dw = f
	}
	root := rootPkg(d, t)
	cd, ct := count(rp.listed, d), count(rp.listed, t)
	fmt.Fprintf(w, "%s %s (tests and subtests)\n", rp.suite, rp.version)
	fmt.Fprintf(w, "  %-20s %6s %6s %6s %15s %8s\n", "", "pass", "fail", "skip", "did not finish", "wall")
	note := ""
	if rp.reruns > 0 {
		note = fmt.Sprintf("  (with %d reruns of the tests a crashed test binary left)", rp.reruns)
	}
	fmt.Fprintf(w, "  %-20s %6d %6d %6d %15d %7.0fs\n", "direct", cd.pass, cd.fail, cd.skip, cd.unfinished, wallD)
	fmt.Fprintf(w, "  %-20s %6d %6d %6d %15d %7.0fs%s\n", "through the tunnel", ct.pass, ct.fail, ct.skip, ct.unfinished, wallT, note)
	failed, notRun := tunnelOnly(d, t)
	// A package that failed with no test to show for it: a build error,
	// TestMain, a panic outside a test.
	shown := map[string]bool{}
	for _, r := range append(failed[:len(failed):len(failed)], notRun...) {
		shown[r.pkg] = true
	}
	for _, p := range sortedKeys(t.pkgFail) {
		if _, both := d.pkgFail[p]; !both && !shown[p] {
			fmt.Fprintf(w, "  package %s failed only through the tunnel; its last output:\n%s\n", shortPkg(root, p), indent(lastLines(t.pkgFail[p], 8), "      "))
		}
	}
	unexpected := 0
	line := func(r *result, what string) {
		tag := ""
		if e := allowed(rp.allow, r.name); e != nil {
			e.used = true
			tag = "  [expected: " + e.reason + "]"
		} else {
			unexpected++
		}
		if r.rerun {
			what += " (in a rerun)"
		}
		cause := guessCause(r)
		name := r.name
		if r.subtests > 0 {
			name = fmt.Sprintf("%s: %d subtests", r.name, r.subtests)
			what = fmt.Sprintf("ended (%s) before %d of its subtests that ran directly", r.action, r.subtests)
			if r.action == "" {
				what = fmt.Sprintf("never finished, nor started %d of its subtests that ran directly", r.subtests)
			}
		}
		fmt.Fprintf(w, "    %-60s %-8s %s%s\n", name, shortPkg(root, r.pkg), cause, tag)
		fmt.Fprintf(dw, "=== %s %s (%s) %s; cause (guess): %s%s\n%s\n\n", rp.suite, name, shortPkg(root, r.pkg), what, cause, tag, indent(strings.Join(r.excerpt(), "\n"), "    "))
	}
	fmt.Fprintf(w, "  fail only through the tunnel: %d\n", len(failed))
	for _, r := range failed {
		line(r, "failed through the tunnel")
	}
	if len(notRun) > 0 {
		fmt.Fprintf(w, "  passed or skipped directly, never started through the tunnel: %d\n", len(notRun))
		for _, r := range notRun {
			line(r, "never started through the tunnel")
		}
	}
	for _, e := range rp.allow {
		if !e.used {
			fmt.Fprintf(w, "  allow-list line %d (%s %s) no longer fails only through the tunnel\n", e.line, rp.suite, e.name)
		}
	}
	if unexpected > 0 {
		fmt.Fprintf(w, "  %d of them not in the allow-list\n", unexpected)
		return 1, nil
	}
	return 0, nil
}

func lastLines(s string, n int) string {
	return strings.Join(tail(strings.Split(s, "\n"), n), "\n")
}

func indent(s, pre string) string {
	if s == "" {
		return pre + "(no output)"
	}
	return pre + strings.ReplaceAll(s, "\n", "\n"+pre)
}
