package web_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/web"
	"github.com/google/go-cmp/cmp"
)

// env is a Handler over fake backends, registered on its own mux.
type env struct {
	h    *web.Handler
	mux  *http.ServeMux
	recs *fakeRecordings
	apps *fakeApprovals
	auth *fakeAuth
	logs *syncBuffer
}

// syncBuffer is a bytes.Buffer safe for the logger and the test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer // guarded by mu
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newEnv(t testing.TB) *env {
	e := &env{
		recs: newFakeRecordings(t),
		apps: newFakeApprovals(),
		auth: newFakeAuth(),
		logs: &syncBuffer{},
		mux:  http.NewServeMux(),
	}
	e.h = &web.Handler{
		Recordings:   e.recs,
		Approvals:    e.apps,
		Authenticate: e.auth.Authenticate,
		Clock:        func() time.Time { return t0 },
		Log:          slog.New(slog.NewTextHandler(e.logs, nil)),
	}
	e.h.Register(e.mux)
	return e
}

// req describes one request; an empty token sends no Authorization header.
type req struct {
	method, path, token, ctype, body string
}

func (e *env) do(t testing.TB, r req) *httptest.ResponseRecorder {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodGet
	}
	hr := httptest.NewRequest(r.method, r.path, strings.NewReader(r.body))
	if r.token != "" {
		hr.Header.Set("Authorization", "Bearer "+r.token)
	}
	if r.ctype != "" {
		hr.Header.Set("Content-Type", r.ctype)
	}
	w := httptest.NewRecorder()
	e.mux.ServeHTTP(w, hr)
	return w
}

// apiError decodes an API error body.
func apiError(t testing.TB, w *httptest.ResponseRecorder) string {
	t.Helper()
	var body struct{ Error string }
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("error body %q is not JSON: %v", w.Body, err)
	}
	return body.Error
}

func decode[T any](t testing.TB, w *httptest.ResponseRecorder) T {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("Content-Type = %q, want JSON", ct)
	}
	var v T
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("body %q: %v", w.Body, err)
	}
	return v
}

// apiRoutes is every API route, with a request that would succeed for an
// authenticated operator.
var apiRoutes = []req{
	{path: "/ui/api/me"},
	{path: "/ui/api/sessions"},
	{path: "/ui/api/sessions?subject=deploy&denied=1"},
	{path: "/ui/api/sessions/s-deploy"},
	{path: "/ui/api/sessions/s-deploy/cast"},
	{path: "/ui/api/approvals"},
	{method: "POST", path: "/ui/api/approvals/a-deploy/approve", ctype: "application/json", body: `{"comment":"ok"}`},
	{method: "POST", path: "/ui/api/approvals/a-deploy/deny", ctype: "application/json", body: `{"comment":"no"}`},
}

func TestAPIRoutesWork(t *testing.T) {
	t.Parallel()
	for _, r := range apiRoutes {
		t.Run(r.method+" "+r.path, func(t *testing.T) {
			e := newEnv(t)
			r.token = aliceToken
			if w := e.do(t, r); w.Code != http.StatusOK {
				t.Fatalf("status %d, body %s", w.Code, w.Body)
			}
		})
	}
}

func TestAPIRequiresAuthentication(t *testing.T) {
	t.Parallel()
	for _, r := range apiRoutes {
		for _, c := range []struct {
			name   string
			header string
		}{
			{"no header", ""},
			{"unknown token", "Bearer not-a-token"},
			{"basic scheme", "Basic " + aliceToken},
			{"empty bearer", "Bearer "},
		} {
			t.Run(r.method+" "+r.path+"/"+c.name, func(t *testing.T) {
				e := newEnv(t)
				method := r.method
				if method == "" {
					method = http.MethodGet
				}
				hr := httptest.NewRequest(method, r.path, strings.NewReader(r.body))
				if c.header != "" {
					hr.Header.Set("Authorization", c.header)
				}
				hr.Header.Set("Content-Type", r.ctype)
				w := httptest.NewRecorder()
				e.mux.ServeHTTP(w, hr)
				if w.Code != http.StatusUnauthorized {
					t.Fatalf("status %d, want 401; body %s", w.Code, w.Body)
				}
				if got := apiError(t, w); got != "unauthorized" {
					t.Errorf("error %q", got)
				}
				if got := w.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
					t.Errorf("WWW-Authenticate = %q", got)
				}
				if calls := e.recs.listCalls(); len(calls) != 0 {
					t.Errorf("Recordings.List called without authentication: %q", calls)
				}
				if calls := e.apps.decisions(); len(calls) != 0 {
					t.Errorf("Approvals called without authentication: %+v", calls)
				}
			})
		}
	}
}

func TestAuthenticateNeverAnonymous(t *testing.T) {
	t.Parallel()
	t.Run("nil operator", func(t *testing.T) {
		e := newEnv(t)
		e.h.Authenticate = func(*http.Request) (*web.Operator, error) { return nil, nil }
		if w := e.do(t, req{path: "/ui/api/sessions", token: aliceToken}); w.Code != http.StatusUnauthorized {
			t.Errorf("status %d, want 401", w.Code)
		}
	})
	t.Run("nil Authenticate", func(t *testing.T) {
		e := newEnv(t)
		e.h.Authenticate = nil
		w := e.do(t, req{path: "/ui/api/sessions", token: aliceToken})
		if w.Code != http.StatusServiceUnavailable {
			t.Errorf("status %d, want 503", w.Code)
		}
		if len(e.recs.listCalls()) != 0 {
			t.Error("backend called with no authenticator")
		}
	})
}

func TestStaticAssetsNeedNoAuthentication(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		path       string
		wantStatus int
		wantType   string
		wantBody   string
	}{
		{"/ui/", 200, "text/html", `<script type="module" src="static/app.js"></script>`},
		{"/ui/static/app.js", 200, "text/javascript", "hooks.unauthorized = signedOut"},
		{"/ui/static/recordings.js", 200, "text/javascript", "AsciinemaPlayer.create"},
		{"/ui/static/approvals.js", 200, "text/javascript", "api('approvals/'"},
		{"/ui/static/util.js", 200, "text/javascript", "'Bearer '"},
		{"/ui/static/app.css", 200, "text/css", ".player-layout"},
		{"/ui/static/vendor/asciinema-player.min.js", 200, "text/javascript", "AsciinemaPlayer"},
		{"/ui/static/vendor/asciinema-player.css", 200, "text/css", ".ap-term"},
		{"/ui/static/vendor/asciinema-player.VERSION", 200, "text/plain", "3."},
		{"/ui/static/", 404, "", ""},
		{"/ui/static/vendor/", 404, "", ""},
		{"/ui/static/nope.js", 404, "", ""},
		{"/ui/nope", 404, "", ""},
	} {
		t.Run(c.path, func(t *testing.T) {
			e := newEnv(t)
			w := e.do(t, req{path: c.path})
			if w.Code != c.wantStatus {
				t.Fatalf("status %d, want %d", w.Code, c.wantStatus)
			}
			if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, c.wantType) {
				t.Errorf("Content-Type %q, want %q", ct, c.wantType)
			}
			if !strings.Contains(w.Body.String(), c.wantBody) {
				t.Errorf("body lacks %q", c.wantBody)
			}
		})
	}
	t.Run("/ui redirects", func(t *testing.T) {
		w := newEnv(t).do(t, req{path: "/ui"})
		if w.Code/100 != 3 || w.Header().Get("Location") != "/ui/" {
			t.Errorf("status %d Location %q, want a redirect to /ui/", w.Code, w.Header().Get("Location"))
		}
	})
}

// TestPagesHaveNoInlineScript keeps the markup compatible with the CSP:
// every script is a file, and no element carries an event-handler
// attribute or a javascript: URL.
func TestPagesHaveNoInlineScript(t *testing.T) {
	t.Parallel()
	html, err := os.ReadFile("static/index.html")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.ToLower(string(html))
	for i := 0; ; {
		j := strings.Index(s[i:], "<script")
		if j < 0 {
			break
		}
		tag := s[i+j : i+j+strings.Index(s[i+j:], ">")]
		if !strings.Contains(tag, " src=") {
			t.Errorf("inline script: %s", tag)
		}
		i += j + len(tag)
	}
	for _, bad := range []string{" onclick=", " onload=", " onerror=", " onsubmit=", "javascript:", " style="} {
		if strings.Contains(s, bad) {
			t.Errorf("index.html contains %q", bad)
		}
	}
	// The page's own scripts put data in the page as text only.
	scripts, err := filepath.Glob("static/*.js")
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no scripts in static/: %v", err)
	}
	for _, f := range scripts {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "localStorage.set", "document.cookie"} {
			if strings.Contains(string(src), bad) {
				t.Errorf("%s uses %s", f, bad)
			}
		}
	}
}

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	for _, r := range []req{
		{path: "/ui/"},
		{path: "/ui/static/app.js"},
		{path: "/ui/static/nope.js"},
		{path: "/ui/api/sessions"}, // 401
		{path: "/ui/api/sessions", token: aliceToken},
		{path: "/ui/api/sessions/s-deploy/cast", token: aliceToken},
		{path: "/ui/api/sessions/bad.id", token: aliceToken},
		{path: "/ui/api/nope", token: aliceToken},
		{method: "GET", path: "/ui/api/approvals/a-deploy/approve", token: aliceToken}, // 405
	} {
		t.Run(r.method+" "+r.path, func(t *testing.T) {
			w := newEnv(t).do(t, r)
			h := w.Header()
			csp := h.Get("Content-Security-Policy")
			for _, want := range []string{"default-src 'none'", "script-src 'self' 'wasm-unsafe-eval';", "frame-ancestors 'none'", "form-action 'none'"} {
				if !strings.Contains(csp, want) {
					t.Errorf("CSP %q lacks %q", csp, want)
				}
			}
			if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "'unsafe-eval'") {
				t.Errorf("CSP %q allows inline script or eval", csp)
			}
			for k, want := range map[string]string{
				"X-Frame-Options":        "DENY",
				"Referrer-Policy":        "no-referrer",
				"X-Content-Type-Options": "nosniff",
			} {
				if got := h.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			if strings.HasPrefix(r.path, "/ui/api/") {
				if got := h.Get("Cache-Control"); got != "no-store" {
					t.Errorf("API Cache-Control = %q, want no-store", got)
				}
			}
		})
	}
}

func TestMe(t *testing.T) {
	t.Parallel()
	w := newEnv(t).do(t, req{path: "/ui/api/me", token: bobToken})
	if got := decode[web.Operator](t, w); got != (web.Operator{Subject: "bob", Kind: "human"}) {
		t.Errorf("me = %+v", got)
	}
}

type sessionsBody struct {
	Enabled  bool
	Sessions []web.Session
}

func TestListSessions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w := e.do(t, req{path: "/ui/api/sessions", token: aliceToken})
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	got := decode[sessionsBody](t, w)
	want := sessionsBody{Enabled: true, Sessions: []web.Session{e.recs.recs["s-deploy"].session, e.recs.recs["s-older"].session}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("newest first (-want +got):\n%s", d)
	}

	// The filter reaches the backend as given.
	for _, c := range []struct{ query, want string }{
		{"?subject=deploy", "deploy|false"},
		{"?denied=1", "|true"},
		{"?denied=true&subject=x%20y", "x y|true"},
		{"?denied=0", "|false"},
	} {
		before := len(e.recs.listCalls())
		if w := e.do(t, req{path: "/ui/api/sessions" + c.query, token: aliceToken}); w.Code != http.StatusOK {
			t.Errorf("%s: status %d", c.query, w.Code)
		}
		if calls := e.recs.listCalls(); len(calls) != before+1 || calls[before] != c.want {
			t.Errorf("%s: List calls %q, want last %q", c.query, calls, c.want)
		}
	}
	w = e.do(t, req{path: "/ui/api/sessions?subject=deploy&denied=1", token: aliceToken})
	if got := decode[sessionsBody](t, w); len(got.Sessions) != 0 {
		t.Errorf("deploy with denied commands: %+v, want none", got.Sessions)
	}

	for _, q := range []string{"?denied=yes", "?subject=" + strings.Repeat("a", 257), "?subject=%ff"} {
		before := len(e.recs.listCalls())
		if w := e.do(t, req{path: "/ui/api/sessions" + q, token: aliceToken}); w.Code != http.StatusBadRequest {
			t.Errorf("%.40s: status %d, want 400", q, w.Code)
		}
		if len(e.recs.listCalls()) != before {
			t.Errorf("%.40s: backend called with a bad filter", q)
		}
	}
}

func TestListSessionsEmptyAndDisabled(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.recs.recs = nil
	w := e.do(t, req{path: "/ui/api/sessions", token: aliceToken})
	if !strings.Contains(w.Body.String(), `"sessions":[]`) {
		t.Errorf("no sessions: body %s, want an empty list, not null", w.Body)
	}
	e.h.Recordings = nil
	for _, r := range []req{
		{path: "/ui/api/sessions", token: aliceToken},
		{path: "/ui/api/sessions/s-deploy", token: aliceToken},
		{path: "/ui/api/sessions/s-deploy/cast", token: aliceToken},
	} {
		w := e.do(t, r)
		switch {
		case r.path == "/ui/api/sessions":
			if got := decode[sessionsBody](t, w); got.Enabled || got.Sessions == nil {
				t.Errorf("%s: %+v, want disabled and []", r.path, got)
			}
		case w.Code != http.StatusNotFound || apiError(t, w) != "recordings are not enabled":
			t.Errorf("%s: %d %s, want 404 not enabled", r.path, w.Code, w.Body)
		}
	}
}

func TestSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w := e.do(t, req{path: "/ui/api/sessions/s-deploy", token: aliceToken})
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	got := decode[struct {
		Session  web.Session
		Commands []web.Command
	}](t, w)
	rec := e.recs.recs["s-deploy"]
	if d := cmp.Diff(rec.session, got.Session); d != "" {
		t.Errorf("session (-want +got):\n%s", d)
	}
	if d := cmp.Diff(rec.commands, got.Commands); d != "" {
		t.Errorf("commands (-want +got):\n%s", d)
	}
	// The wire names are part of the contract with the page's script.
	for _, field := range []string{`"id":"s-deploy"`, `"started":"2026-03-01T12:00:00Z"`, `"offset":40.1`, `"cmd":"cat /srv/app/VERSION"`, `"exit":0`} {
		if !strings.Contains(w.Body.String(), field) {
			t.Errorf("body lacks %s: %s", field, w.Body)
		}
	}
}

// TestIDs checks ids against [A-Za-z0-9_-]{1,64} before any backend sees
// them: a bad id is 400, a good unknown one 404.
func TestIDs(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		id   string
		want int
	}{
		{"s-deploy", 200},
		{"no_such-ID9", 404},
		{strings.Repeat("a", 64), 404},
		{strings.Repeat("a", 65), 400},
		{"a.b", 400},
		{"a%2Fb", 400},
		{"a%20b", 400},
		{"%C3%A9", 400},
		{"a%00", 400},
	} {
		for _, r := range []req{
			{path: "/ui/api/sessions/" + c.id},
			{path: "/ui/api/sessions/" + c.id + "/cast"},
			{method: "POST", path: "/ui/api/approvals/" + c.id + "/approve", ctype: "application/json", body: "{}"},
			{method: "POST", path: "/ui/api/approvals/" + c.id + "/deny", ctype: "application/json", body: "{}"},
		} {
			want := c.want
			if c.id == "s-deploy" && r.method == "POST" {
				want = 404 // a session id, not an approval id
			}
			t.Run(fmt.Sprintf("%s %.50s", r.method, r.path), func(t *testing.T) {
				e := newEnv(t)
				r.token = bobToken
				w := e.do(t, r)
				if w.Code != want {
					t.Fatalf("status %d, want %d: %s", w.Code, want, w.Body)
				}
				switch want {
				case 400:
					if got := apiError(t, w); got != "invalid id" {
						t.Errorf("error %q", got)
					}
					if n := len(e.apps.decisions()); n != 0 {
						t.Errorf("backend called %d times with a bad id", n)
					}
				case 404:
					if got := apiError(t, w); got != "not found" {
						t.Errorf("error %q", got)
					}
				}
			})
		}
	}
}

func TestCast(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w := e.do(t, req{path: "/ui/api/sessions/s-deploy/cast", token: aliceToken})
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if got := w.Header().Get("Content-Type"); got != "application/x-asciicast" {
		t.Errorf("Content-Type %q", got)
	}
	if got := w.Header().Get("Content-Disposition"); got != `attachment; filename="s-deploy.cast"` {
		t.Errorf("Content-Disposition %q", got)
	}
	if !bytes.Equal(w.Body.Bytes(), e.recs.recs["s-deploy"].cast) {
		t.Error("cast body differs from the recording")
	}
}

func TestBackendErrors(t *testing.T) {
	t.Parallel()
	secret := errors.New("open /var/lib/bastion/recordings/s-deploy.cast: input/output error")
	for _, c := range []struct {
		name       string
		err        error
		wantStatus int
		wantMsg    string
	}{
		{"internal", secret, 500, "internal error"},
		{"wrapped internal", fmt.Errorf("index: %w", secret), 500, "internal error"},
		{"user error", &web.Error{Status: 410, Msg: "recording was purged", Err: secret}, 410, "recording was purged"},
		{"wrapped user error", fmt.Errorf("x: %w", &web.Error{Status: 403, Msg: "not your team"}), 403, "not your team"},
		{"user error without message", &web.Error{Status: 409}, 409, "conflict"},
		{"user error with a success status", &web.Error{Status: 200, Msg: "odd"}, 500, "odd"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, path := range []string{"/ui/api/sessions", "/ui/api/sessions/s-deploy", "/ui/api/sessions/s-deploy/cast"} {
				e := newEnv(t)
				e.recs.err = c.err
				w := e.do(t, req{path: path, token: aliceToken})
				if w.Code != c.wantStatus {
					t.Errorf("%s: status %d, want %d", path, w.Code, c.wantStatus)
				}
				if got := apiError(t, w); got != c.wantMsg {
					t.Errorf("%s: error %q, want %q", path, got, c.wantMsg)
				}
				if strings.Contains(w.Body.String(), "/var/lib") {
					t.Errorf("%s: internal text leaked: %s", path, w.Body)
				}
				if errors.Is(c.err, secret) && !strings.Contains(e.logs.String(), "input/output error") {
					t.Errorf("%s: cause not logged: %s", path, e.logs)
				}
			}
		})
	}
}

func TestBearerToken(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ header, want string }{
		{"", ""},
		{"Bearer abc.def", "abc.def"},
		{"bearer abc", "abc"},
		{"Bearer  abc ", "abc"},
		{"Basic abc", ""},
		{"Bearer", ""},
		{"Bearerabc", ""},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		if c.header != "" {
			r.Header.Set("Authorization", c.header)
		}
		if got := web.BearerToken(r); got != c.want {
			t.Errorf("BearerToken(%q) = %q, want %q", c.header, got, c.want)
		}
	}
}

func TestErrorMessage(t *testing.T) {
	t.Parallel()
	cause := errors.New("store: row locked")
	err := error(&web.Error{Status: 409, Msg: "already decided", Err: cause})
	if got, want := err.Error(), "web: 409 already decided: store: row locked"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, cause) {
		t.Error("Error does not unwrap to its cause")
	}
}
