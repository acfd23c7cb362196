// Package web serves bastion's operator web UI: a list of recorded sessions
// played with the asciinema web player beside their command index, and the
// pending approval requests with Approve and Deny buttons.
//
// The pages are static HTML, CSS and vanilla JavaScript embedded in the
// binary; every piece of data comes from JSON APIs under /ui/api/ that
// authenticate each request with [Handler.Authenticate]. The browser keeps
// the operator's bearer token in sessionStorage and sends it in the
// Authorization header, never in a cookie, so a cross-site page cannot make
// an authenticated request on the operator's behalf.
//
// The package declares what it needs from its backends as the small
// [Recordings] and [Approvals] interfaces and its own view types, so it does
// not import the recordings or approvals packages; the server wires them.
package web

import (
	"context"
	"embed"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"
)

// Session is one recorded session as the UI lists it.
type Session struct {
	ID        string    `json:"id"`
	Subject   string    `json:"subject"`   // who: the identity's subject
	Kind      string    `json:"kind"`      // "agent" or "human"
	Principal string    `json:"principal"` // the OS account it ran as
	Source    string    `json:"source"`    // the client's address
	Started   time.Time `json:"started"`
	Ended     time.Time `json:"ended,omitzero"` // zero: still running or cut short
	Commands  int       `json:"commands"`
	Denied    int       `json:"denied"`
}

// Command is one entry of a session's command index.
type Command struct {
	N        int     `json:"n"`      // 1-based position in the session
	Offset   float64 `json:"offset"` // seconds from the start of the recording
	Cmd      string  `json:"cmd"`
	Decision string  `json:"decision"` // "allow", "approve" or "deny"
	Rule     string  `json:"rule"`
	Exit     *int    `json:"exit"`     // nil: the command did not run or did not finish
	Duration float64 `json:"duration"` // seconds; zero when unknown
}

// Approval is one approval request as the UI shows it.
type Approval struct {
	ID          string    `json:"id"`
	Status      string    `json:"status"` // "pending" is the only status the UI offers buttons for
	Command     string    `json:"command"`
	Subject     string    `json:"subject"` // who asked
	Kind        string    `json:"kind"`
	Rule        string    `json:"rule"`         // the policy rule that asked for approval
	Reason      string    `json:"reason"`       // the policy's reason
	AgentReason string    `json:"agent_reason"` // the requester's stated reason (BASTION_REASON)
	SessionID   string    `json:"session_id"`
	Created     time.Time `json:"created"`
	Expires     time.Time `json:"expires,omitzero"`
	// SHA256 is the short SHA-256 of the exact command the approval binds
	// to, as `bastion approvals show` prints it.
	SHA256 string `json:"sha256,omitempty"`
	// Parts is every part of the command that needs the approval, each
	// with the rule that asks for it; the UI lists them all.
	Parts []ApprovalPart `json:"parts,omitempty"`
}

// ApprovalPart is one part of a held command and a rule that asked to
// approve it.
type ApprovalPart struct {
	Text   string `json:"text"`
	Rule   string `json:"rule"`
	Reason string `json:"reason,omitempty"`
}

// Operator is the authenticated person (or tool) using the UI.
type Operator struct {
	Subject string `json:"subject"`
	Kind    string `json:"kind"`
}

// Recordings is what the UI needs from the recording store.
type Recordings interface {
	// List returns the sessions whose subject contains subject (all when
	// empty) and, when deniedOnly, that had at least one denied command.
	// Order does not matter: the UI sorts newest first.
	List(ctx context.Context, subject string, deniedOnly bool) ([]Session, error)
	// Index returns a session and its command index. An unknown id is an
	// error wrapping fs.ErrNotExist.
	Index(ctx context.Context, id string) (Session, []Command, error)
	// Cast opens the session's raw asciicast v2 file. An unknown id is an
	// error wrapping fs.ErrNotExist.
	Cast(ctx context.Context, id string) (io.ReadCloser, error)
}

// Approvals is what the UI needs from the approval service. Approve and
// Deny enforce the rules (four-eyes, already decided, expired) and report a
// refusal the operator should read as an [*Error]; an unknown id is an
// [*Error] with status 404 or an error wrapping fs.ErrNotExist.
type Approvals interface {
	// List returns the requests to show: the pending ones, and decided
	// ones if the backend wants them seen. Order does not matter: the UI
	// sorts oldest first and offers buttons for pending requests only.
	List(ctx context.Context) ([]Approval, error)
	Approve(ctx context.Context, id string, approver Operator, comment string) error
	Deny(ctx context.Context, id string, approver Operator, comment string) error
}

// Error is a backend refusal meant for the operator: the UI shows Msg and
// the API answers with Status. Any other backend error is logged and
// answered with 500 "internal error", so internal text never reaches the
// browser.
type Error struct {
	Status int    // an HTTP status, 400 to 599; anything else is sent as 500
	Msg    string // shown to the operator as is
	Err    error  // the cause, for the log only; may be nil
}

func (e *Error) Error() string {
	s := "web: " + strconv.Itoa(e.Status) + " " + e.Msg
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Handler serves the UI and its APIs. Its zero value is not usable:
// Authenticate is required.
type Handler struct {
	Recordings Recordings // nil: the recordings page says "not enabled"
	Approvals  Approvals  // nil: the approvals page says "not enabled"

	// Authenticate identifies the operator behind an API request, typically
	// from the bearer token (see [BearerToken]): an operator token or an
	// OIDC ID token. It returns an error, or a nil Operator, to refuse the
	// request with 401. It must not accept ambient credentials a browser
	// attaches on its own (cookies, cached basic auth): the UI's defence
	// against cross-site requests is that only its own script knows the
	// token. When Authenticate is nil every API request is refused.
	Authenticate func(r *http.Request) (*Operator, error)

	Clock func() time.Time // nil means time.Now; used for approval ages
	Log   *slog.Logger     // nil means slog.Default()
}

// Register adds the UI to mux under /ui/:
//
//	GET  /ui/                                 the page (index.html); no authentication
//	GET  /ui/static/...                       scripts, styles, the vendored player; no authentication
//	GET  /ui/api/me                           the authenticated operator
//	GET  /ui/api/sessions?subject=&denied=1   sessions, newest first
//	GET  /ui/api/sessions/{id}                a session and its command index
//	GET  /ui/api/sessions/{id}/cast           the raw asciicast v2 recording
//	GET  /ui/api/approvals                    approval requests
//	POST /ui/api/approvals/{id}/approve       body {"comment": "..."}
//	POST /ui/api/approvals/{id}/deny          body {"comment": "..."}
//
// Every response under /ui/ carries a strict Content-Security-Policy and
// anti-framing headers; API responses are also marked no-store. API errors
// are JSON objects {"error": "..."}.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.Handle("/ui/", securityHeaders(h.routes()))
}

func (h *Handler) routes() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("GET /ui/{$}", serveIndex)
	m.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", staticFiles()))

	api := func(method, path string, fn func(http.ResponseWriter, *http.Request, Operator)) {
		m.HandleFunc(method+" "+path, h.authed(fn))
		// The same path with another method: 405, in JSON like the rest.
		m.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			allow := method
			if method == http.MethodGet {
				allow = "GET, HEAD"
			}
			w.Header().Set("Allow", allow)
			w.Header().Set("Cache-Control", "no-store")
			writeError(w, http.StatusMethodNotAllowed, "method not allowed")
		})
	}
	api("GET", "/ui/api/me", h.me)
	api("GET", "/ui/api/sessions", h.listSessions)
	api("GET", "/ui/api/sessions/{id}", h.session)
	api("GET", "/ui/api/sessions/{id}/cast", h.cast)
	api("GET", "/ui/api/approvals", h.listApprovals)
	api("POST", "/ui/api/approvals/{id}/approve", h.decide(true))
	api("POST", "/ui/api/approvals/{id}/deny", h.decide(false))
	// Anything else under the API is a JSON 404, authenticated or not.
	m.HandleFunc("/ui/api/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		writeError(w, http.StatusNotFound, "not found")
	})
	return m
}

// csp allows scripts and styles from the UI's own origin only: no inline
// script, no eval. 'wasm-unsafe-eval' lets the asciinema player compile its
// terminal emulator, which ships as WebAssembly inside the player's script;
// it does not allow JavaScript eval. form-action 'none' keeps the token
// form from ever submitting the token in a URL, should its script not load.
const csp = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; " +
	"img-src 'self'; font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", csp)
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		hd.Set("Cross-Origin-Resource-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

func (h *Handler) now() time.Time {
	if h.Clock != nil {
		return h.Clock()
	}
	return time.Now()
}

func (h *Handler) log() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.Default()
}

//go:embed static
var static embed.FS
