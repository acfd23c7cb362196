package shellpolicy

import (
	"regexp"
	"strconv"
	"strings"

	"mvdan.cc/sh/v3/pattern"
	"mvdan.cc/sh/v3/syntax"
)

// pval is what a parameter expansion may give.
type pval struct {
	alts   []string // one of these strings
	elems  []string // with splice: one word per element ("$@", "${a[@]}")
	splice bool
	tok    bool // an unknown token (a number, a name)
}

// standardPath is PATH when the script does not set it.
const standardPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// envDefault gives the variables bastion can assume when the script did not
// set them: enough to judge $HOME, $PWD or $TMPDIR as paths.
func (a *analyzer) envDefault(sc *scope, name string) (val, bool) {
	switch name {
	case "HOME":
		return val{alts: []string{"/home/" + sTok}}, true
	case "PWD":
		return val{alts: sc.getCwd()}, true
	case "TMPDIR":
		return val{alts: []string{"/tmp"}}, true
	case "PGDATA":
		return val{alts: []string{"/var/lib/postgresql/data"}}, true
	case "PATH":
		return val{alts: []string{standardPath}}, true
	case "USER", "LOGNAME", "HOSTNAME", "UID", "EUID", "PPID", "RANDOM", "SRANDOM", "SECONDS",
		"LINENO", "BASHPID", "SHLVL", "EPOCHSECONDS", "EPOCHREALTIME", "OSTYPE", "HOSTTYPE", "MACHTYPE":
		return val{alts: []string{sTok}}, true
	}
	return val{}, false
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// paramValue resolves a parameter expansion when the script makes it known.
func (a *analyzer) paramValue(sc *scope, pe *syntax.ParamExp, quoted bool) (pval, bool) {
	if pe.Param == nil || pe.Excl || pe.Width || pe.IsSet || pe.Flags != nil || pe.NestedParam != nil ||
		len(pe.Modifiers) > 0 || pe.Names != 0 {
		return pval{}, false
	}
	if pe.Index != nil {
		a.walkExprs(sc, pe.Index)
	}
	if pe.Length {
		return pval{tok: true}, true
	}
	name := pe.Param.Value
	var v val
	set := false
	switch {
	case name == "@" || name == "*":
		args, ok := sc.positional()
		if !ok {
			return pval{}, false
		}
		if name == "*" && quoted {
			return a.ops(sc, pe, val{alts: []string{strings.Join(args[1:], " ")}}, true)
		}
		return pval{elems: args[1:], splice: true}, pe.Exp == nil && pe.Slice == nil && pe.Repl == nil
	case isDigits(name):
		args, ok := sc.positional()
		if !ok {
			return pval{}, false
		}
		n, _ := strconv.Atoi(name)
		if n < len(args) {
			v, set = val{alts: []string{args[n]}}, true
		}
	case name == "#":
		args, ok := sc.positional()
		if !ok {
			return pval{tok: true}, true
		}
		v, set = val{alts: []string{strconv.Itoa(len(args) - 1)}}, true
	case name == "?" || name == "$" || name == "!" || name == "-":
		return pval{tok: true}, true
	default:
		v, set = sc.lookup(name)
		if !set {
			v, set = a.envDefault(sc, name)
		}
	}
	if pe.Index != nil {
		return a.element(sc, pe, v, set, quoted)
	}
	if v.array {
		if len(v.elems) > 0 {
			v = val{alts: []string{v.elems[0]}}
		} else {
			v = val{alts: []string{""}}
		}
	}
	return a.ops(sc, pe, v, set)
}

// element resolves ${x[i]}, ${x[@]} and ${x[*]} of variable x, whose value
// is v (set: x is set). A variable that is no array is its element 0.
func (a *analyzer) element(sc *scope, pe *syntax.ParamExp, v val, set, quoted bool) (pval, bool) {
	idx := ""
	if w, ok := pe.Index.(*syntax.Word); ok {
		idx = w.Lit()
	}
	elems := v.elems
	if !v.array && set {
		if len(v.alts) != 1 {
			return pval{}, false
		}
		elems = v.alts
	}
	switch {
	case !set:
		return pval{}, false
	case idx == "@" || idx == "*":
		if pe.Exp != nil || pe.Slice != nil || pe.Repl != nil {
			return pval{}, false
		}
		if idx == "*" && quoted {
			return pval{alts: []string{strings.Join(elems, " ")}}, true
		}
		return pval{elems: elems, splice: true}, true
	case isDigits(idx):
		n, _ := strconv.Atoi(idx)
		v = val{}
		if n < len(elems) {
			v.alts = []string{elems[n]}
		} else {
			set = false
		}
	default:
		return pval{}, false
	}
	return a.ops(sc, pe, v, set)
}

// ops applies ${x:-word}, ${x#pat}, ${x/a/b}, ${x:1:2}, ${x^^}... to the
// possible values of x.
func (a *analyzer) ops(sc *scope, pe *syntax.ParamExp, v val, set bool) (pval, bool) {
	alts := v.alts
	if !set {
		alts = nil // unset: unknown unless a default applies
	}
	if pe.Exp != nil {
		word := func() []string { return a.expandString(sc, pe.Exp.Word) }
		switch op := pe.Exp.Op; op {
		case syntax.DefaultUnset, syntax.DefaultUnsetOrNull, syntax.AssignUnset, syntax.AssignUnsetOrNull:
			if !set {
				// it may still come from the environment
				return pval{alts: appendNew([]string{sAny}, word()...)}, true
			}
			var out []string
			for _, s := range alts {
				if s == "" && (op == syntax.DefaultUnsetOrNull || op == syntax.AssignUnsetOrNull) {
					out = appendNew(out, word()...)
				} else {
					out = appendNew(out, s)
				}
			}
			return pval{alts: out}, true
		case syntax.AlternateUnset, syntax.AlternateUnsetOrNull:
			if !set {
				return pval{alts: appendNew([]string{""}, word()...)}, true
			}
			var out []string
			for _, s := range alts {
				if s == "" && op == syntax.AlternateUnsetOrNull {
					out = appendNew(out, "")
				} else {
					out = appendNew(out, word()...)
				}
			}
			return pval{alts: out}, true
		}
	}
	alts, ok := a.rewrite(sc, pe, alts, set)
	if !ok || !set && alts == nil || len(alts) == 0 {
		return pval{}, false // no value at all would make the word vanish
	}
	return pval{alts: alts}, true
}

// rewrite applies the operators that rewrite each value (${x#pat}, ${x^^},
// ${x:1:2}, ${x/a/b}) to alts, the values of x (set: x is set). It returns
// false when the outcome is not known.
func (a *analyzer) rewrite(sc *scope, pe *syntax.ParamExp, alts []string, set bool) ([]string, bool) {
	switch {
	case pe.Exp != nil:
		switch op := pe.Exp.Op; op {
		case syntax.ErrorUnset, syntax.ErrorUnsetOrNull:
		case syntax.RemSmallPrefix, syntax.RemLargePrefix, syntax.RemSmallSuffix, syntax.RemLargeSuffix:
			pats := a.expandString(sc, pe.Exp.Word)
			if len(pats) != 1 || !set {
				return nil, false
			}
			re, err := anchoredPattern(pats[0])
			if err != nil {
				return nil, false
			}
			out := make([]string, len(alts))
			for i, s := range alts {
				out[i] = trimPattern(s, re, op)
			}
			return out, true
		case syntax.UpperAll, syntax.UpperFirst, syntax.LowerAll, syntax.LowerFirst:
			if !set {
				return nil, false
			}
			out := make([]string, len(alts))
			for i, s := range alts {
				out[i] = changeCase(s, op)
			}
			return out, true
		default:
			return nil, false
		}
	case pe.Slice != nil:
		off, ok1 := arithLit(pe.Slice.Offset)
		length, ok2 := arithLit(pe.Slice.Length)
		if !ok1 || !ok2 || !set {
			return nil, false
		}
		out := make([]string, len(alts))
		for i, s := range alts {
			if strings.ContainsAny(s, sAny+sTok) {
				return nil, false
			}
			out[i] = slice(s, off, length, pe.Slice.Length != nil)
		}
		return out, true
	case pe.Repl != nil:
		origs, with := a.expandString(sc, pe.Repl.Orig), a.expandString(sc, pe.Repl.With)
		if len(origs) != 1 || len(with) != 1 || !set || hasGlobMeta(origs[0]) {
			return nil, false
		}
		out := make([]string, len(alts))
		for i, s := range alts {
			out[i] = replace(s, origs[0], with[0], pe.Repl.All)
		}
		return out, true
	}
	return alts, true
}

func appendNew(list []string, vs ...string) []string {
	for _, v := range vs {
		dup := false
		for _, x := range list {
			if x == v {
				dup = true
				break
			}
		}
		if !dup {
			list = append(list, v)
		}
	}
	return list
}

func anchoredPattern(pat string) (*regexp.Regexp, error) {
	expr, err := pattern.Regexp(pat, 0)
	if err != nil {
		return nil, err
	}
	return regexp.Compile("^(?s:" + expr + ")$")
}

func trimPattern(s string, re *regexp.Regexp, op syntax.ParExpOperator) string {
	switch op {
	case syntax.RemSmallPrefix:
		for i := 0; i <= len(s); i++ {
			if re.MatchString(s[:i]) {
				return s[i:]
			}
		}
	case syntax.RemLargePrefix:
		for i := len(s); i >= 0; i-- {
			if re.MatchString(s[:i]) {
				return s[i:]
			}
		}
	case syntax.RemSmallSuffix:
		for i := len(s); i >= 0; i-- {
			if re.MatchString(s[i:]) {
				return s[:i]
			}
		}
	case syntax.RemLargeSuffix:
		for i := 0; i <= len(s); i++ {
			if re.MatchString(s[i:]) {
				return s[:i]
			}
		}
	}
	return s
}

func changeCase(s string, op syntax.ParExpOperator) string {
	if s == "" {
		return s
	}
	switch op {
	case syntax.UpperAll:
		return strings.ToUpper(s)
	case syntax.LowerAll:
		return strings.ToLower(s)
	case syntax.UpperFirst:
		return strings.ToUpper(s[:1]) + s[1:]
	default:
		return strings.ToLower(s[:1]) + s[1:]
	}
}

// arithLit reads a literal integer arithmetic expression; nil is 0.
func arithLit(x syntax.ArithmExpr) (int, bool) {
	switch x := x.(type) {
	case nil:
		return 0, true
	case *syntax.Word:
		n, err := strconv.Atoi(x.Lit())
		return n, err == nil
	case *syntax.UnaryArithm:
		if x.Op == syntax.Minus {
			n, ok := arithLit(x.X)
			return -n, ok
		}
	case *syntax.ParenArithm:
		return arithLit(x.X)
	}
	return 0, false
}

func slice(s string, off, length int, hasLength bool) string {
	if off < 0 {
		off += len(s)
	}
	off = max(0, min(off, len(s)))
	end := len(s)
	if hasLength {
		if length < 0 {
			end = len(s) + length
		} else {
			end = off + length
		}
	}
	end = max(off, min(end, len(s)))
	return s[off:end]
}

func replace(s, orig, with string, all bool) string {
	switch {
	case orig == "":
		return s
	case strings.HasPrefix(orig, "#"):
		if p := orig[1:]; strings.HasPrefix(s, p) {
			return with + s[len(p):]
		}
		return s
	case strings.HasPrefix(orig, "%"):
		if p := orig[1:]; strings.HasSuffix(s, p) {
			return s[:len(s)-len(p)] + with
		}
		return s
	case all:
		return strings.ReplaceAll(s, orig, with)
	}
	return strings.Replace(s, orig, with, 1)
}
