package main

import (
	"sort"
	"strings"
)

type counts struct{ pass, fail, skip, unfinished int }

// count counts r's tests and subtests by outcome; unfinished includes the
// listed top-level tests that never started.
func count(listed []testID, r *testRun) counts {
	var c counts
	for _, t := range r.tests {
		switch t.action {
		case "pass":
			c.pass++
		case "fail":
			c.fail++
		case "skip":
			c.skip++
		default:
			c.unfinished++
		}
	}
	for _, id := range listed {
		if r.tests[id.key()] == nil {
			c.unfinished++
		}
	}
	return c
}

// tunnelOnly returns the tests that passed or were skipped directly and
// fail only through the tunnel: failed (a failure, or started and never
// finished) and notRun (never started), each sorted and folded.
func tunnelOnly(d, t *testRun) (failed, notRun []*result) {
	for k, dr := range d.tests {
		if dr.action != "pass" && dr.action != "skip" {
			continue
		}
		switch tr := t.tests[k]; {
		case tr == nil:
			notRun = append(notRun, dr)
		case tr.action == "fail" || tr.action == "":
			failed = append(failed, tr)
		}
	}
	// A test only the tunnel run has (a subtest named at run time) counts too.
	for k, tr := range t.tests {
		if _, ok := d.tests[k]; !ok && (tr.action == "fail" || tr.action == "") {
			failed = append(failed, tr)
		}
	}
	failed = dropAncestors(failed)
	// A subtest never ran when its parent failed or never ran: list the parent.
	notRun = dropDescendants(notRun, failed)
	return failed, startedAncestors(notRun, t)
}

// startedAncestors replaces each test that never started by its nearest
// ancestor that did start in t (which ended before it got to the subtest,
// and failed or not), once, with the number of subtests it stands for.
func startedAncestors(rs []*result, t *testRun) []*result {
	var out []*result
	seen := map[string]*result{}
	for _, r := range rs {
		var anc *result
		for i := strings.LastIndexByte(r.name, '/'); i > 0 && anc == nil; i = strings.LastIndexByte(r.name[:i], '/') {
			anc = t.tests[testID{r.pkg, r.name[:i]}.key()]
		}
		if anc == nil {
			out = append(out, r)
			continue
		}
		if s := seen[anc.key()]; s != nil {
			s.subtests++
			continue
		}
		s := &result{testID: anc.testID, action: anc.action, output: anc.output, last: anc.last, cut: anc.cut, rerun: anc.rerun, subtests: 1}
		seen[anc.key()] = s
		out = append(out, s)
	}
	sortResults(out)
	return out
}

func sortResults(rs []*result) {
	sort.Slice(rs, func(i, j int) bool { return rs[i].key() < rs[j].key() })
}

// dropAncestors removes a test when one of its subtests is in rs: the
// subtest says more.
func dropAncestors(rs []*result) []*result {
	var out []*result
	for _, r := range rs {
		child := false
		for _, o := range rs {
			if o.pkg == r.pkg && strings.HasPrefix(o.name, r.name+"/") {
				child = true
				break
			}
		}
		if !child {
			out = append(out, r)
		}
	}
	sortResults(out)
	return out
}

// dropDescendants removes a test when an ancestor is in rs or in also.
func dropDescendants(rs, also []*result) []*result {
	has := map[string]bool{}
	for _, r := range rs {
		has[r.key()] = true
	}
	for _, r := range also {
		has[r.key()] = true
	}
	var out []*result
	for _, r := range rs {
		keep := true
		for i := strings.LastIndexByte(r.name, '/'); i > 0 && keep; i = strings.LastIndexByte(r.name[:i], '/') {
			keep = !has[testID{r.pkg, r.name[:i]}.key()]
		}
		if keep {
			out = append(out, r)
		}
	}
	sortResults(out)
	return out
}
