package shellpolicy

import (
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// Variable assignments: the values bastion tracks, and the variables whose
// setting is itself a finding (history, PATH, loader and hook variables).

// assign records a variable assignment (when it is not only for the
// environment of one command) and checks the variables that matter.
func (a *analyzer) assign(sc *scope, as *syntax.Assign, fr *frame, envOnly bool) {
	if as.Name == nil {
		a.walkExprs(sc, as)
		return
	}
	name := as.Name.Value
	var v val
	switch {
	case as.Naked:
		return
	case as.Index != nil:
		a.walkExprs(sc, as)
		v = unknownVal
	case as.Array != nil:
		v.array = true
		for _, el := range as.Array.Elems {
			if el.Index != nil || el.Value == nil {
				a.walkExprs(sc, as.Array)
				v = unknownVal
				break
			}
			variants := a.words(sc, []*syntax.Word{el.Value})
			if len(variants) != 1 {
				v = unknownVal
				break
			}
			for _, f := range variants[0] {
				v.elems = append(v.elems, f.s)
			}
		}
	default:
		v.alts = a.expandString(sc, as.Value)
		if as.Append {
			if cur, ok := sc.lookup(name); ok && !cur.array && len(cur.alts)*len(v.alts) <= maxAlts {
				var out []string
				for _, c := range cur.alts {
					for _, s := range v.alts {
						out = appendNew(out, c+s)
					}
				}
				v.alts = out
			} else {
				v = unknownVal
			}
		}
	}
	if len(v.alts) > maxAlts {
		v = unknownVal
	}
	a.checkAssign(fr, name, v)
	if !envOnly {
		sc.set(name, v)
	}
}

func (a *analyzer) decl(sc *scope, c *syntax.DeclClause, fr *frame) {
	fr.show = true
	fr.name = c.Variant.Value
	fr.argv = []string{strings.TrimSpace(a.srcOf(c))}
	for _, as := range c.Args {
		if as.Naked && as.Name == nil && as.Value != nil {
			a.words(sc, []*syntax.Word{as.Value})
			continue
		}
		a.assign(sc, as, fr, false)
	}
}

// checkAssign judges assignments that wipe history or change how programs
// are found and loaded.
func (a *analyzer) checkAssign(fr *frame, name string, v val) {
	if strings.HasPrefix(name, "__bastion") {
		// The line front's own state in the shell (see package pty).
		a.hit(fr, ruleTamper, name)
	}
	for _, s := range v.alts {
		switch name {
		case "HISTFILE":
			if s == "" || s == "/dev/null" || strings.ContainsRune(s, markAny) {
				a.hit(fr, ruleWipeHistory, name+"="+s)
			}
		case "HISTSIZE", "HISTFILESIZE", "SAVEHIST":
			if s == "" || s == "0" || strings.HasPrefix(s, "-") {
				a.hit(fr, ruleWipeHistory, name+"="+s)
			}
		case "HISTIGNORE":
			if s == "*" || strings.HasPrefix(s, "*:") || strings.HasSuffix(s, ":*") {
				a.hit(fr, ruleWipeHistory, name+"="+s)
			}
		case "PATH":
			for _, dir := range strings.Split(s, ":") {
				if !strings.Contains(":"+standardPath+":", ":"+dir+":") {
					a.hit(fr, ruleEnvOverride, "PATH includes "+displayValue(dir))
					break
				}
			}
		case "LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "BASH_ENV", "ENV", "PROMPT_COMMAND", "SHELLOPTS", "BASHOPTS":
			a.hit(fr, ruleEnvOverride, name)
		case "GIT_SSH_COMMAND", "GIT_PAGER", "GIT_EDITOR", "GIT_EXTERNAL_DIFF", "GIT_ASKPASS", "PAGER", "EDITOR",
			"VISUAL", "SSH_ASKPASS", "SUDO_ASKPASS", "MANPAGER", "SYSTEMD_PAGER", "LESSOPEN", "LESSCLOSE":
			// programs run these as shell commands
			a.nested(&cmdEnv{sc: &scope{}, fr: fr}, strings.TrimPrefix(strings.TrimPrefix(s, "|"), "||"), name, nil)
		}
	}
}

func displayValue(s string) string {
	if s == "" {
		return `""`
	}
	return strings.NewReplacer(sAny, "…", sTok, "…").Replace(s)
}
