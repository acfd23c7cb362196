package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/bastion"
	"github.com/bastion-dev/bastion/internal/client"
)

// startDev runs `bastion dev` in-process on free loopback ports until the
// test ends, and returns its data directory once the demo agent is logged
// in (ssh_config written): the demo login must keep working.
func startDev(t *testing.T) bastion.DataDir {
	t.Helper()
	d := bastion.DataDir(filepath.Join(t.TempDir(), "data"))
	ctx, cancel := context.WithCancel(context.Background())
	root := newRootCmd()
	root.SetArgs([]string{"dev", "--data-dir", string(d), "--ssh-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"})
	root.SetOut(io.Discard)
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("bastion dev: %v", err)
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(d.Client(), "ssh_config")); err == nil {
			return d
		}
		select {
		case err := <-done:
			done <- err
			t.Fatalf("bastion dev ended before the demo login: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("bastion dev did not log in its demo agent in 60s")
		}
	}
}

func readTrim(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestDevTokenEndpoint checks that POST /dev/token of a running `bastion
// dev` answers only the operator, addressed by a loopback Host, that each
// refusal is audited, and that a token it mints is one the exchange takes.
func TestDevTokenEndpoint(t *testing.T) {
	t.Parallel()
	d := startDev(t)
	server := readTrim(t, filepath.Join(d.Client(), "server"))
	op := readTrim(t, filepath.Join(d.Client(), "operator_token"))
	hostport := strings.TrimPrefix(server, "http://")
	port := hostport[strings.LastIndexByte(hostport, ':')+1:]
	post := func(t *testing.T, host, auth string) (int, map[string]string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, server+"/dev/token", strings.NewReader(`{"subject":"root-admin","groups":["admins"]}`))
		if err != nil {
			t.Fatal(err)
		}
		if host != "" {
			req.Host = host
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]string
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatalf("status %d: body is not JSON: %v", resp.StatusCode, err)
		}
		return resp.StatusCode, body
	}
	for _, tc := range []struct {
		name, host, auth string
		want             int
		code, msg        string
	}{
		{"no token", "", "", 401, "unauthenticated", "missing operator token"},
		{"not a bearer token", "", "Basic " + op, 401, "unauthenticated", "missing operator token"},
		{"wrong token", "", "Bearer " + op + "x", 401, "unauthenticated", "wrong operator token"},
		{"prefix of the token", "", "Bearer " + op[:len(op)-1], 401, "unauthenticated", "wrong operator token"},
		{"rebound DNS name", "evil.example:" + port, "Bearer " + op, 421, "misdirected", "not a loopback name or address"},
		{"name that starts like loopback", "127.0.0.1.evil.example:" + port, "Bearer " + op, 421, "misdirected", "not a loopback name or address"},
		{"no port", "evil.example", "Bearer " + op, 421, "misdirected", "not a loopback name or address"},
		{"loopback, another port", "127.0.0.1:1", "Bearer " + op, 421, "misdirected", "names another port"},
		{"forged host and no token", "evil.example:" + port, "", 421, "misdirected", "not a loopback name or address"},
		{"localhost", "localhost:" + port, "Bearer " + op, 200, "", ""},
		{"ipv6 loopback", "[::1]:" + port, "bearer " + op, 200, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := post(t, tc.host, tc.auth)
			if status != tc.want {
				t.Fatalf("status %d, want %d: %v", status, tc.want, body)
			}
			if tc.want != 200 {
				if body["code"] != tc.code || !strings.Contains(body["error"], tc.msg) {
					t.Fatalf("refusal %v, want code %q and a message with %q", body, tc.code, tc.msg)
				}
				if body["id_token"] != "" {
					t.Fatal("a refusal carried a token")
				}
				return
			}
			if body["id_token"] == "" {
				t.Fatalf("no id_token: %v", body)
			}
		})
	}
	status, body := post(t, "", "Bearer "+op)
	if status != 200 {
		t.Fatalf("operator request: %d %v", status, body)
	}
	res, err := client.Login(context.Background(), client.Options{Server: server, Token: body["id_token"], OutDir: t.TempDir()})
	if err != nil {
		t.Fatalf("the exchange refused a minted token: %v", err)
	}
	if res.SSHCommand == "" {
		t.Fatal("login returned no ssh command")
	}
	// Every refusal above is in the audit log, with its reason; the mints
	// are there as dev.token by the operator.
	refused, minted := map[string]int{}, 0
	for _, e := range auditLines(t, d) {
		switch e.Type {
		case "request.refused":
			if e.Detail["request"] == "POST /dev/token" {
				refused[e.Detail["code"].(string)]++
				if e.Detail["reason"] == "" {
					t.Errorf("refusal without a reason: %+v", e)
				}
			}
		case "dev.token":
			minted++
		}
	}
	if refused["unauthenticated"] != 4 || refused["misdirected"] != 5 || minted != 3 {
		t.Fatalf("audit: refused %v, minted %d; want 4 unauthenticated, 5 misdirected, 3 minted", refused, minted)
	}
}

type auditLine struct {
	Type   string         `json:"type"`
	Detail map[string]any `json:"detail"`
}

func auditLines(t *testing.T, d bastion.DataDir) []auditLine {
	t.Helper()
	b, err := os.ReadFile(d.AuditLog())
	if err != nil {
		t.Fatal(err)
	}
	var out []auditLine
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e auditLine
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

// TestDevTokenCLI checks that `bastion dev token` authenticates with the
// operator token of the data directory, prints a token the exchange takes,
// and says what is wrong when it cannot.
func TestDevTokenCLI(t *testing.T) {
	t.Parallel()
	d := startDev(t)
	opPath := filepath.Join(d.Client(), "operator_token")
	op := readTrim(t, opPath)
	devToken := func(t *testing.T) (string, error) {
		t.Helper()
		var out bytes.Buffer
		root := newRootCmd()
		root.SetArgs([]string{"dev", "token", "--data-dir", string(d), "--subject", "another-agent", "--group", "agents"})
		root.SetOut(&out)
		err := root.Execute()
		return strings.TrimSpace(out.String()), err
	}
	tok, err := devToken(t)
	if err != nil || strings.Count(tok, ".") != 2 {
		t.Fatalf("dev token: %q, %v", tok, err)
	}
	if _, err := client.Login(context.Background(), client.Options{Server: readTrim(t, filepath.Join(d.Client(), "server")), Token: tok, OutDir: t.TempDir()}); err != nil {
		t.Fatalf("the exchange refused the CLI's token: %v", err)
	}
	for _, tc := range []struct {
		name    string
		setup   func(t *testing.T)
		wantErr string
	}{
		{"operator token missing", func(t *testing.T) { os.Remove(opPath) }, "cannot read the operator token " + opPath},
		{"operator token empty", func(t *testing.T) { os.WriteFile(opPath, []byte("\n"), 0o600) }, "cannot read the operator token " + opPath + " (written by 'bastion dev'; run this as the user who started it): empty file"},
		{"operator token wrong", func(t *testing.T) { os.WriteFile(opPath, []byte(op+"x\n"), 0o600) }, "401 Unauthorized: wrong operator token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.setup(t)
			out, err := devToken(t)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one with %q", err, tc.wantErr)
			}
			if out != "" {
				t.Fatalf("printed %q on failure", out)
			}
		})
	}
}
