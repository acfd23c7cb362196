package shellpolicy

import (
	"strings"
	"testing"

	"mvdan.cc/sh/v3/syntax"

	"github.com/bastion-dev/bastion/policy"
)

// FuzzDecide checks what must hold for any input: Decide does not panic,
// gives a known decision with a rule and a one-line reason, never allows a
// command line in which some simple command's name is not a literal word
// (checked here independently of the analysis), and whatever comes first,
// a later line "rm -rf /" is still denied: nothing the input does can hide
// a command after it.
func FuzzDecide(f *testing.F) {
	for _, tc := range decideCases {
		f.Add(tc.cmd)
	}
	f.Fuzz(func(t *testing.T, cmd string) {
		checkLaterLineSeen(t, cmd)
		out := Default().Decide(cmd, Input{})
		if out.Decision < policy.Allow || out.Decision > policy.Deny || out.Rule == "" || out.Reason == "" {
			t.Fatalf("Decide(%q) = %+v: want a decision with a rule and a reason", cmd, out.Result)
		}
		if strings.ContainsAny(out.Reason, "\n\r"+sAny+sTok) {
			t.Fatalf("Decide(%q): reason %q is not one clean line", cmd, out.Reason)
		}
		if out.Decision != policy.Allow {
			return
		}
		if name, ok := nonLiteralCommand(cmd); ok {
			t.Fatalf("Decide(%q) = allow [rule %s], but the command name %q is not literal", cmd, out.Rule, name)
		}
	})
}

// checkLaterLineSeen appends "rm -rf /" on a line of its own to cmd and
// checks the result is denied, unless the analysis stopped at one of its
// limits (approve), or cmd does not leave the next line a command of its own
// (it does not parse, ends in a line continuation or an open here-document).
func checkLaterLineSeen(t *testing.T, cmd string) {
	if strings.HasSuffix(cmd, "\\") {
		return
	}
	parser := syntax.NewParser(syntax.Variant(syntax.LangBash))
	if _, err := parser.Parse(strings.NewReader(cmd), ""); err != nil {
		return
	}
	full := cmd + "\nrm -rf /"
	f, err := parser.Parse(strings.NewReader(full), "")
	if err != nil {
		return
	}
	last := f.Stmts[len(f.Stmts)-1]
	if c, ok := last.Cmd.(*syntax.CallExpr); !ok || len(c.Args) != 3 || c.Args[0].Lit() != "rm" || last.Pos().Line() != uint(strings.Count(full, "\n")+1) {
		return // the line was taken into something else (a here-document, an open quote)
	}
	out := Default().Decide(full, Input{})
	if out.Decision == policy.Deny || out.Decision == policy.Approve && (out.Rule == ruleTooComplex || out.Rule == ruleTooDeep) {
		return
	}
	t.Fatalf("Decide(%q) = %s [rule %s]: the last line rm -rf / was not seen", full, out.Decision, out.Rule)
}

// nonLiteralCommand parses src and returns the first simple command whose
// name (its first word) is not literal after quote removal: a parameter,
// command, arithmetic or process substitution, a glob, a tilde or a brace
// expansion. Input that does not parse has no such command (and must not
// be allowed anyway).
func nonLiteralCommand(src string) (string, bool) {
	f, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(strings.NewReader(src), "")
	if err != nil {
		return "", false
	}
	var found string
	syntax.Walk(f, func(n syntax.Node) bool {
		if found != "" {
			return false
		}
		if c, ok := n.(*syntax.CallExpr); ok && len(c.Args) > 0 && !isLiteralName(c.Args[0]) {
			found = wordSource(src, c.Args[0])
		}
		return true
	})
	return found, found != ""
}

func isLiteralName(w *syntax.Word) bool {
	braces := &syntax.Word{Parts: append([]syntax.WordPart(nil), w.Parts...)}
	if syntax.SplitBraces(braces) {
		return false
	}
	for i, p := range w.Parts {
		switch p := p.(type) {
		case *syntax.Lit:
			if i == 0 && tildeExpands(p.Value, len(w.Parts) == 1) || hasUnescapedGlob(p.Value) {
				return false
			}
		case *syntax.SglQuoted:
		case *syntax.DblQuoted:
			for _, q := range p.Parts {
				if _, ok := q.(*syntax.Lit); !ok {
					return false
				}
			}
		default:
			return false
		}
	}
	return true
}

// tildeExpands reports whether a word starting with lit is subject to
// tilde expansion: a leading ~ whose prefix, up to the first slash, has
// nothing quoted (whole: lit is the whole word, so the prefix ends in it).
func tildeExpands(lit string, whole bool) bool {
	if !strings.HasPrefix(lit, "~") {
		return false
	}
	prefix, _, slash := strings.Cut(lit, "/")
	return !strings.Contains(prefix, `\`) && (slash || whole)
}

// hasUnescapedGlob reports *, ? or a bracket expression not escaped by a
// backslash in an unquoted literal ("[" alone, the test command, is not).
func hasUnescapedGlob(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '*', '?':
			return true
		case '[':
			if strings.IndexByte(s[i+1:], ']') >= 0 {
				return true
			}
		}
	}
	return false
}

func wordSource(src string, w *syntax.Word) string {
	s, e := int(w.Pos().Offset()), int(w.End().Offset())
	if s < 0 || e > len(src) || s > e {
		return "?"
	}
	return src[s:e]
}

func TestNonLiteralCommand(t *testing.T) {
	t.Parallel()
	for cmd, want := range map[string]bool{
		"ls -la": false, `"ls"`: false, "'l's": false, `\ls`: false, `$'\x6c\x73'`: false, "echo $X": false,
		"$X": true, `"$X"`: true, "$(ls)": true, "`ls`": true, "/bin/l?": true, "/bin/l[s]": true, "~/bin/x": true,
		"{ls,-la}": true, "$((1))": true, "echo $($X)": true, "f() { $1; }": true, `l\*`: false, "[ -f x ]": false, `~\`: false, `~"x"`: false,
	} {
		if _, got := nonLiteralCommand(cmd); got != want {
			t.Errorf("nonLiteralCommand(%q) = %v, want %v", cmd, got, want)
		}
	}
}
