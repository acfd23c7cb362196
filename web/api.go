package web

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"
)

// Limits on what a browser may send.
const (
	maxIDLen      = 64
	maxSubjectLen = 256  // the sessions filter
	maxCommentLen = 4096 // bytes of an approval comment
	maxBodyLen    = 16 << 10
)

// BearerToken returns the token of an "Authorization: Bearer <token>"
// header (RFC 6750, section 2.1), or "" when there is none. It is a helper
// for Authenticate functions.
func BearerToken(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// validID reports whether id is a plain identifier, [A-Za-z0-9_-]{1,64}.
// Ids are checked before any backend sees them.
func validID(id string) bool {
	if id == "" || len(id) > maxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// authed wraps an API handler: it marks the response no-store and runs next
// only for an authenticated operator.
func (h *Handler) authed(next func(http.ResponseWriter, *http.Request, Operator)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if h.Authenticate == nil {
			h.log().Error("web: Handler.Authenticate is nil; refusing every API request")
			writeError(w, http.StatusServiceUnavailable, "authentication is not configured")
			return
		}
		op, err := h.Authenticate(r)
		if err != nil || op == nil {
			h.log().Info("web: authentication failed", "remote", r.RemoteAddr, "path", r.URL.Path, "err", err)
			w.Header().Set("WWW-Authenticate", `Bearer realm="bastion"`)
			writeError(w, http.StatusUnauthorized, "unauthorized")
			return
		}
		next(w, r, *op)
	}
}

func (h *Handler) me(w http.ResponseWriter, r *http.Request, op Operator) {
	writeJSON(w, http.StatusOK, op)
}

func (h *Handler) listSessions(w http.ResponseWriter, r *http.Request, op Operator) {
	q := r.URL.Query()
	subject := q.Get("subject")
	if len(subject) > maxSubjectLen || !utf8.ValidString(subject) {
		writeError(w, http.StatusBadRequest, "invalid subject filter")
		return
	}
	var denied bool
	switch q.Get("denied") {
	case "", "0", "false":
	case "1", "true":
		denied = true
	default:
		writeError(w, http.StatusBadRequest, `invalid denied filter: want "1" or "0"`)
		return
	}
	if h.Recordings == nil {
		writeJSON(w, http.StatusOK, map[string]any{"enabled": false, "sessions": []Session{}})
		return
	}
	ss, err := h.Recordings.List(r.Context(), subject, denied)
	if err != nil {
		h.fail(w, r, "list sessions", err)
		return
	}
	ss = slices.Clone(ss)
	slices.SortStableFunc(ss, func(a, b Session) int {
		if c := b.Started.Compare(a.Started); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	writeJSON(w, http.StatusOK, map[string]any{"enabled": true, "sessions": nonNil(ss)})
}

func (h *Handler) session(w http.ResponseWriter, r *http.Request, op Operator) {
	id, ok := h.pathID(w, r)
	if !ok {
		return
	}
	if h.Recordings == nil {
		writeError(w, http.StatusNotFound, "recordings are not enabled")
		return
	}
	s, cmds, err := h.Recordings.Index(r.Context(), id)
	if err != nil {
		h.fail(w, r, "session index", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"session": s, "commands": nonNil(cmds)})
}

func (h *Handler) cast(w http.ResponseWriter, r *http.Request, op Operator) {
	id, ok := h.pathID(w, r)
	if !ok {
		return
	}
	if h.Recordings == nil {
		writeError(w, http.StatusNotFound, "recordings are not enabled")
		return
	}
	rc, err := h.Recordings.Cast(r.Context(), id)
	if err != nil {
		h.fail(w, r, "open cast", err)
		return
	}
	defer rc.Close()
	// The media type asciinema uses for asciicast files. The UI fetches the
	// file with its token; as an attachment it is never rendered in place.
	w.Header().Set("Content-Type", "application/x-asciicast")
	w.Header().Set("Content-Disposition", `attachment; filename="`+id+`.cast"`)
	if _, err := io.Copy(w, rc); err != nil && r.Context().Err() == nil {
		// The status is sent; all that is left is to say why it broke off.
		h.log().Error("web: send cast", "session", id, "operator", op.Subject, "err", err)
	}
}

func (h *Handler) listApprovals(w http.ResponseWriter, r *http.Request, op Operator) {
	now := h.now()
	if h.Approvals == nil {
		writeJSON(w, http.StatusOK, map[string]any{"enabled": false, "now": now, "approvals": []Approval{}})
		return
	}
	as, err := h.Approvals.List(r.Context())
	if err != nil {
		h.fail(w, r, "list approvals", err)
		return
	}
	as = slices.Clone(as)
	slices.SortStableFunc(as, func(a, b Approval) int { return a.Created.Compare(b.Created) })
	writeJSON(w, http.StatusOK, map[string]any{"enabled": true, "now": now, "approvals": nonNil(as)})
}

// decide serves approve (when approve is true) and deny.
func (h *Handler) decide(approve bool) func(http.ResponseWriter, *http.Request, Operator) {
	verb, done := "deny", "denied"
	if approve {
		verb, done = "approve", "approved"
	}
	return func(w http.ResponseWriter, r *http.Request, op Operator) {
		id, ok := h.pathID(w, r)
		if !ok {
			return
		}
		// A cross-site form cannot send this type without a CORS preflight,
		// which the API never grants: a second guard beside the bearer token.
		if mt, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); !strings.EqualFold(strings.TrimSpace(mt), "application/json") {
			writeError(w, http.StatusUnsupportedMediaType, "want Content-Type: application/json")
			return
		}
		var body struct {
			Comment string `json:"comment"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyLen))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil && !errors.Is(err, io.EOF) {
			writeError(w, http.StatusBadRequest, `invalid body: want {"comment": "..."}`)
			return
		}
		if len(body.Comment) > maxCommentLen {
			writeError(w, http.StatusBadRequest, "comment too long")
			return
		}
		if h.Approvals == nil {
			writeError(w, http.StatusNotFound, "approvals are not enabled")
			return
		}
		var err error
		if approve {
			err = h.Approvals.Approve(r.Context(), id, op, body.Comment)
		} else {
			err = h.Approvals.Deny(r.Context(), id, op, body.Comment)
		}
		if err != nil {
			h.fail(w, r, verb+" "+id, err)
			return
		}
		h.log().Info("web: approval "+done, "approval", id, "operator", op.Subject, "kind", op.Kind)
		writeJSON(w, http.StatusOK, map[string]string{"id": id, "status": done})
	}
}

// pathID returns the {id} path value, or answers 400 when it is not a
// valid id.
func (h *Handler) pathID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if !validID(id) {
		writeError(w, http.StatusBadRequest, "invalid id")
		return "", false
	}
	return id, true
}

// fail answers a backend error: an *Error with its status and message, a
// missing thing with 404, anything else with 500 and nothing of its text.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, what string, err error) {
	var e *Error
	switch {
	case errors.As(err, &e):
		status := e.Status
		if status < 400 || status > 599 {
			status = http.StatusInternalServerError
		}
		msg := e.Msg
		if msg == "" {
			msg = strings.ToLower(http.StatusText(status))
		}
		lvl := slog.LevelInfo
		if status >= 500 {
			lvl = slog.LevelError
		}
		h.log().Log(r.Context(), lvl, "web: "+what+" refused", "status", status, "err", err)
		writeError(w, status, msg)
	case errors.Is(err, fs.ErrNotExist):
		writeError(w, http.StatusNotFound, "not found")
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The browser went away; nobody is left to answer.
	default:
		h.log().Error("web: "+what, "err", err)
		writeError(w, http.StatusInternalServerError, "internal error")
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the status is sent; a write error means the client left
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// nonNil makes an empty list encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
