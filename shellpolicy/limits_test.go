package shellpolicy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/bastion-dev/bastion/policy"
)

func repeat(n int, f func(i int) string) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(f(i))
	}
	return b.String()
}

// pathological are inputs built to make the analysis blow up. The analysis
// bounds its work (maxDepth, maxWords and the other limits in analyze.go), so each ends in a
// decision; how fast is BenchmarkPathological's to say, not a test's.
var pathological = []struct {
	name string
	cmd  string
	want policy.Decision
	rule string
}{
	{"deep subshells", strings.Repeat("(", 20000) + "ls" + strings.Repeat(")", 20000), allow, "default-allow"},
	{"deep command substitutions", strings.Repeat("$(", 5000) + "ls" + strings.Repeat(")", 5000), approve, "dynamic-command"},
	{"doubling variables", repeat(1000, func(i int) string { return fmt.Sprintf("X%d=$X%d$X%d; ", i+1, i, i) }) + "rm -rf /$X1000", deny, "rm-system-path"},
	{"doubling appends", "X=a; " + strings.Repeat("X+=$X; ", 1000) + "$X", approve, "dynamic-command"},
	{"doubling arrays", "a=(x); " + strings.Repeat(`a=("${a[@]}" "${a[@]}"); `, 100) + `"${a[@]}"`, approve, "dynamic-command"},
	{"doubling positional", "set -- x; " + strings.Repeat(`set -- "$@" "$@"; `, 100) + `rm -rf "$1"`, approve, "rm-dynamic-target"},
	{"calls fanning out", repeat(50, func(i int) string { return fmt.Sprintf("f%d() { f%d; f%d; }\n", i, i+1, i+1) }) + "f0", approve, "nesting-too-deep"},
	{"call chain hiding rm", repeat(20, func(i int) string { return fmt.Sprintf("f%d() { f%d; }\n", i, i+1) }) + "f20() { rm -rf /; }\nf0", deny, "rm-root"},
	{"call chain harmless", repeat(20, func(i int) string { return fmt.Sprintf("f%d() { f%d; }\n", i, i+1) }) + "f20() { ls; }\nf0", approve, "nesting-too-deep"},
	{"eval tower", strings.Repeat("eval ", 5000) + "ls", approve, "nesting-too-deep"},
	{"long pipeline", strings.Repeat("cat | ", 20000) + "cat", approve, "too-complex"},
	{"many statements then rm", strings.Repeat("ls; ", 5000) + "rm -rf /", approve, "too-complex"},
	{"brace product", "echo " + strings.Repeat("{a,b}", 200), allow, "default-allow"},
	{"brace product as name", strings.Repeat("{a,b}", 200), approve, "indirect-command"},
	{"many branches", "X=a; " + repeat(3000, func(i int) string { return fmt.Sprintf("if c; then X=$X%d; fi; ", i) }) + "rm -rf /$X", approve, "too-complex"},
	{"many here-documents", repeat(3000, func(i int) string { return fmt.Sprintf("cat <<E%d\nx\nE%d\n", i, i) }), approve, "too-complex"},
	{"long word", "echo " + strings.Repeat("a", 4<<20), allow, "default-allow"},
	{"long arithmetic", "echo $((" + strings.Repeat("1+", 50000) + "1))", allow, "default-allow"},
}

// Pathological inputs end in a decision, and are never allowed when they
// hide something.
func TestPathologicalInputs(t *testing.T) {
	t.Parallel()
	for _, tc := range pathological {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := Default().Decide(tc.cmd, Input{})
			if out.Decision != tc.want || out.Rule != tc.rule {
				t.Errorf("got %s [rule %s] %q, want %s [rule %s]", out.Decision, out.Rule, out.Reason, tc.want, tc.rule)
			}
		})
	}
}
