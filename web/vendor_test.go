package web_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestVendoredPlayerMatchesLockfile catches an upgrade of package.json
// without ./vendor.sh, or the reverse: the embedded player must be the one
// package-lock.json pins.
func TestVendoredPlayerMatchesLockfile(t *testing.T) {
	lock, err := os.ReadFile("package-lock.json")
	if err != nil {
		t.Fatal(err)
	}
	var l struct {
		Packages map[string]struct{ Version string }
	}
	if err := json.Unmarshal(lock, &l); err != nil {
		t.Fatal(err)
	}
	want := l.Packages["node_modules/asciinema-player"].Version
	if !strings.HasPrefix(want, "3.") {
		t.Fatalf("package-lock.json pins asciinema-player %q, want a 3.x version", want)
	}
	got, err := os.ReadFile("static/vendor/asciinema-player.VERSION")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(got)) != want {
		t.Errorf("static/vendor holds asciinema-player %q, package-lock.json pins %q: run 'cd web && npm ci && ./vendor.sh'", got, want)
	}
	js, err := os.ReadFile("static/vendor/asciinema-player.min.js")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), "AsciinemaPlayer") {
		t.Error("static/vendor/asciinema-player.min.js does not define AsciinemaPlayer")
	}
}
