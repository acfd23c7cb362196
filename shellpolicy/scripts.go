package shellpolicy

import (
	"path"
	"slices"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// A command line may write a script and then run it:
//
//	echo 'rm -rf /' > /tmp/x.sh; bash /tmp/x.sh
//
// Running a file is opaque (approve) whatever bastion saw written to it,
// as anything may have changed it in between (curl -o, a build, git). The
// texts written to it are analysed as well, so a visibly destructive script
// is denied: they can only make the verdict stricter.

// maxWritten bounds the texts kept for one path.
const maxWritten = 8

// recordWrites notes what statement st writes to files with > and >> when
// its output is known text.
func (a *analyzer) recordWrites(sc *scope, st *syntax.Stmt, out *stream) {
	for _, r := range st.Redirs {
		switch r.Op {
		case syntax.RdrOut, syntax.ClbOut, syntax.AppOut, syntax.RdrAll, syntax.AppAll:
		default:
			continue
		}
		if r.N != nil && r.N.Value != "1" {
			continue // stderr or another descriptor
		}
		for _, argv := range a.words(sc, []*syntax.Word{r.Word}) {
			for _, f := range argv {
				a.recordWrite(sc, f, out)
			}
		}
	}
}

// recordWrite notes that the known text of s is written to the file f.
func (a *analyzer) recordWrite(sc *scope, f field, s *stream) {
	if s == nil || s.kind != streamText || !f.literal() {
		return
	}
	if a.written == nil {
		a.written = make(map[string][]string)
	}
	for _, k := range fileKeys(sc, f) {
		for _, t := range s.texts {
			if len(a.written[k]) < maxWritten && !slices.Contains(a.written[k], t) {
				a.written[k] = append(a.written[k], t)
			}
		}
	}
}

// fileKeys are the names a literal path is known by: as written, and
// absolute when the working directory is known.
func fileKeys(sc *scope, f field) []string {
	p := path.Clean(f.s)
	keys := []string{p}
	if !strings.HasPrefix(p, "/") {
		if cwd := sc.getCwd(); len(cwd) == 1 && !strings.ContainsAny(cwd[0], sAny+sTok) {
			keys = append(keys, path.Join(cwd[0], p))
		}
	}
	return keys
}

// writtenScript analyses what the command line wrote to the file f, which
// n runs: shell code, or inline code for an interpreter.
func (a *analyzer) writtenScript(env *cmdEnv, f field, n string) {
	if len(a.written) == 0 || !f.literal() {
		return
	}
	var texts []string
	for _, k := range fileKeys(env.sc, f) {
		for _, t := range a.written[k] {
			if !slices.Contains(texts, t) {
				texts = append(texts, t)
			}
		}
	}
	sub := env.noStdin()
	for _, t := range texts {
		if shellNames[n] || n == "source" || n == "." {
			a.nestedField(sub, field{s: t, disp: f.disp, dyn: strings.ContainsRune(t, markAny)}, n+" "+f.disp, nil)
		} else {
			a.scanCode(sub, n, t, true)
		}
	}
	env.fr.show = true
}
