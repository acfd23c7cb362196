package bastion_test

import (
	"encoding/json"
	"io"
	"net/http"
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
