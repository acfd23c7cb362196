package shellpolicy

import (
	"path"
	"regexp"
	"strings"

	"mvdan.cc/sh/v3/pattern"
)

// matcher is one `match:` of a policy rule. Every field given must match.
type matcher struct {
	commands []string       // command name patterns; empty: any command
	args     [][]argPattern // patterns (each with alternatives) in order among the arguments
	argsRe   *regexp.Regexp // tried on the arguments joined by spaces
	targets  []string       // cleaned absolute path prefixes of deleted or written paths
}

func hasGlobMeta(s string) bool { return strings.ContainsAny(s, `*?[\`) }

// match reports whether m matches the command name with args and the paths
// the command deletes or writes. maybe is true when it matches only because
// some arguments are not known statically and could take matching values.
func (m *matcher) match(name string, args []field, targets []string) (ok, maybe bool) {
	if len(m.commands) > 0 && !matchAny(m.commands, name) {
		return false, false
	}
	if len(m.args) > 0 {
		ok, mb := m.matchArgs(args)
		if !ok {
			return false, false
		}
		maybe = maybe || mb
	}
	if m.argsRe != nil {
		vals := make([]string, len(args))
		for i := range args {
			if args[i].unknown() {
				maybe = true
			}
			vals[i] = args[i].s
		}
		if !maybe && !m.argsRe.MatchString(strings.Join(vals, " ")) {
			return false, false
		}
	}
	if len(m.targets) > 0 {
		ok, mb := m.matchTargets(targets)
		if !ok {
			return false, false
		}
		maybe = maybe || mb
	}
	return true, maybe
}

func matchAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if p == s {
			return true
		}
		if hasGlobMeta(p) {
			if ok, _ := path.Match(p, s); ok {
				return true
			}
		}
	}
	return false
}

// argPattern is one alternative of an args pattern. Unlike a command name,
// an argument may hold slashes (URLs, paths), and * matches them too.
type argPattern struct {
	lit string         // the pattern when it has no glob characters
	re  *regexp.Regexp // otherwise
}

func compileArg(p string) (argPattern, error) {
	if !hasGlobMeta(p) {
		return argPattern{lit: p}, nil
	}
	expr, err := pattern.Regexp(p, 0)
	if err != nil {
		return argPattern{}, err
	}
	re, err := regexp.Compile("^(?s:" + expr + ")$")
	return argPattern{re: re}, err
}

func matchArg(alts []argPattern, s string) bool {
	for _, p := range alts {
		if p.re == nil && p.lit == s || p.re != nil && p.re.MatchString(s) {
			return true
		}
	}
	return false
}

// matchArgs finds m.args as a subsequence of args. An argument not known
// statically may stand for one pattern (or for all the rest when it may
// split into several words).
func (m *matcher) matchArgs(args []field) (ok, maybe bool) {
	j := 0
	for i := 0; i < len(args) && j < len(m.args); i++ {
		a := &args[i]
		switch {
		case a.multi:
			return true, true
		case a.unknown() || a.glob:
			maybe = true
			j++
		case matchArg(m.args[j], a.s):
			j++
		}
	}
	return j == len(m.args), maybe
}

func (m *matcher) matchTargets(targets []string) (ok, maybe bool) {
	for _, t := range targets {
		static, dyn := t, false
		if i := strings.IndexAny(t, sAny+sTok+"*?["); i >= 0 {
			static, dyn = t[:i], true
		}
		for _, p := range m.targets {
			if t == p || strings.HasPrefix(t, p+"/") || p == "/" {
				return true, false
			}
			if dyn && strings.HasPrefix(p, static) {
				maybe = true
			}
		}
	}
	return maybe, maybe
}
