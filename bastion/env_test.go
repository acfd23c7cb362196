package bastion

import "testing"

// TestAllowedEnv: the client variables bastion passes to commands (RFC
// 4254 6.4 leaves the choice to the server). Anything that changes what
// runs or how (PATH, the loader's and the shells' variables) is refused.
func TestAllowedEnv(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"TERM", true},
		{"LANG", true},
		{"LC_ALL", true},
		{"LC_CTYPE", true},
		{"COLORTERM", true},
		{"BASTION_REASON", true},
		{"BASTION_TASK", true},
		{"PATH", false},
		{"LD_PRELOAD", false},
		{"LD_LIBRARY_PATH", false},
		{"BASH_ENV", false},
		{"ENV", false},
		{"SHELLOPTS", false},
		{"PS4", false},
		{"HOME", false},
		{"SHELL", false},
		{"BASTION_SESSION", false}, // bastion sets it
		{"LC_", false},             // a bare prefix names no locale category
		{"LC", false},
		{"lc_all", false},
		{"term", false},
		{"TERM ", false},
		{"", false},
	} {
		if got := allowedEnv(tc.name); got != tc.ok {
			t.Errorf("allowedEnv(%q) = %v, want %v", tc.name, got, tc.ok)
		}
	}
}
