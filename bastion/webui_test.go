package bastion_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bastion-dev/bastion/internal/sshtest"
)

func getJSON(t *testing.T, b *sshtest.Bastion, path, token string, v any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.HTTPURL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if v != nil && resp.StatusCode == 200 {
		if s, ok := v.(*string); ok {
			*s = string(body)
		} else if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("%s: %v: %s", path, err, body)
		}
	}
	return resp.StatusCode
}

// TestWebUIServesRealRecordings checks the web UI's adapters over the real
// recordings directory: a session run through OpenSSH shows up with its
// command index and its cast, only for an operator.
func TestWebUIServesRealRecordings(t *testing.T) {
	b := sshtest.Start(t, sshtest.Options{})
	login := b.Login("agent-web")
	sshtest.SSH(t, login, nil, "bastion", "echo web-visible-output")
	sshtest.SSH(t, login, nil, "bastion", "rm -rf /")

	if code := getJSON(t, b, "/ui/api/sessions", "", nil); code != 401 {
		t.Fatalf("anonymous list: %d", code)
	}
	if code := getJSON(t, b, "/ui/api/sessions", "wrong", nil); code != 401 {
		t.Fatalf("wrong token: %d", code)
	}
	var list struct {
		Sessions []struct {
			ID, Subject string
			Commands    int
			Denied      int
		}
	}
	if code := getJSON(t, b, "/ui/api/sessions", b.OperatorToken, &list); code != 200 || len(list.Sessions) != 2 {
		t.Fatalf("list: %d %+v", code, list)
	}
	var denied int
	for _, s := range list.Sessions {
		if s.Subject != "agent-web" || s.Commands != 1 {
			t.Errorf("session %+v", s)
		}
		denied += s.Denied
	}
	if denied != 1 {
		t.Errorf("denied sessions = %d, want 1", denied)
	}
	for _, s := range list.Sessions {
		var detail struct {
			Commands []struct {
				Cmd, Decision, Rule string
			}
		}
		if code := getJSON(t, b, "/ui/api/sessions/"+s.ID, b.OperatorToken, &detail); code != 200 || len(detail.Commands) != 1 {
			t.Fatalf("session %s: %d %+v", s.ID, code, detail)
		}
		var cast string
		if code := getJSON(t, b, "/ui/api/sessions/"+s.ID+"/cast", b.OperatorToken, &cast); code != 200 || !strings.HasPrefix(cast, `{"version":2`) {
			t.Fatalf("cast %s: %d %.80q", s.ID, code, cast)
		}
		if detail.Commands[0].Cmd == "echo web-visible-output" && !strings.Contains(cast, "web-visible-output\\n") {
			t.Errorf("cast lacks the command's output")
		}
	}
	if code := getJSON(t, b, "/ui/api/sessions/nope", b.OperatorToken, nil); code != 404 {
		t.Errorf("unknown session: %d", code)
	}
}

// TestE2EAsciinemaPlaysRealSession: the real asciinema player plays the
// recording of a real OpenSSH session, and the recording verifies.
func TestE2EAsciinemaPlaysRealSession(t *testing.T) {
	sshtest.RequireTools(t, "asciinema", "script")
	b := sshtest.Start(t, sshtest.Options{})
	login := b.Login("agent-cast")
	if r := sshtest.SSH(t, login, nil, "bastion", "echo recorded-for-asciinema; printf 'GITHUB_TOKEN=ghp_%s\\n' 0123456789abcdefghijABCDEFGHIJ012345"); r.Code != 0 {
		t.Fatalf("session: %+v", r)
	}
	entries, err := os.ReadDir(b.Dir.Recordings())
	if err != nil {
		t.Fatal(err)
	}
	var cast string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".cast") {
			cast = filepath.Join(b.Dir.Recordings(), e.Name())
		}
	}
	if cast == "" {
		t.Fatal("no recording")
	}
	// asciinema needs a terminal: script gives it one.
	r := sshtest.Run(t, nil, "script", "-qec", "asciinema play -s 100 "+cast, "/dev/null")
	if r.Code != 0 || !strings.Contains(r.Stdout, "recorded-for-asciinema") {
		t.Fatalf("asciinema play: %+v", r)
	}
	if strings.Contains(r.Stdout, "ghp_0123456789") || !strings.Contains(r.Stdout, "[MASKED:github-token]") {
		t.Fatalf("the recording holds the secret unmasked: %q", r.Stdout)
	}
	if r := bastionCLI(t, b, "recordings", "verify", strings.TrimSuffix(filepath.Base(cast), ".cast")); r.Code != 0 {
		t.Fatalf("recordings verify: %+v", r)
	}
	if r := bastionCLI(t, b, "audit", "verify"); r.Code != 0 {
		t.Fatalf("audit verify: %+v", r)
	}
}
