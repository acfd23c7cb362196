package bastion

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/bastion-dev/bastion/approvals"
	"github.com/bastion-dev/bastion/identity"
)

// ApprovalsAPI lets approvers list and decide approval requests over HTTP.
// Every route needs an authenticated approver; there is no anonymous
// access. Routes:
//
//	GET  /v1/approvals[?all=1]       pending requests (all with ?all=1), newest first
//	GET  /v1/approvals/{id}          one request
//	POST /v1/approvals/{id}/approve  {"comment": "...", "for_session": "10m", "sha256": "0123456789ab"} (all optional)
//	POST /v1/approvals/{id}/deny     {"comment": "..."} (required)
//
// Answers: 200 with the request, 400 bad body, 401 no or bad credentials,
// 403 four-eyes or a non-human approver, 404 unknown id, 409 not pending
// or, when the approval names a "sha256" (a prefix of at least 8 hex
// digits), a command with another sum.
type ApprovalsAPI struct {
	Service *approvals.Service
	// Authenticate names the approver behind a request: an OIDC bearer
	// token mapped to an approver role, or the bootstrap approver token
	// (BearerTokenAuthenticator). An error or a nil identity is a 401; a
	// nil Authenticate refuses everyone.
	Authenticate func(r *http.Request) (*identity.Provenance, error)
	Logger       *slog.Logger // nil means slog.Default()
}

// Register adds the approval routes to mux.
func (a *ApprovalsAPI) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/approvals", a.authed(a.list))
	mux.HandleFunc("GET /v1/approvals/{id}", a.authed(a.get))
	mux.HandleFunc("POST /v1/approvals/{id}/approve", a.authed(a.approve))
	mux.HandleFunc("POST /v1/approvals/{id}/deny", a.authed(a.deny))
}

type approverHandler func(w http.ResponseWriter, r *http.Request, who identity.Provenance)

func (a *ApprovalsAPI) authed(h approverHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var who *identity.Provenance
		err := errors.New("no authenticator configured")
		if a.Authenticate != nil {
			who, err = a.Authenticate(r)
		}
		if err != nil || who == nil || who.Subject == "" {
			if err != nil {
				a.logger().Info("approvals API: authentication failed", "remote", hostOfString(r.RemoteAddr), "err", err)
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="bastion"`)
			writeJSON(w, http.StatusUnauthorized, apiError{Error: "approver credentials required: send Authorization: Bearer <token>", Code: "unauthenticated"})
			return
		}
		h(w, r, *who)
	}
}

func (a *ApprovalsAPI) list(w http.ResponseWriter, r *http.Request, _ identity.Provenance) {
	all := false
	switch r.URL.Query().Get("all") {
	case "", "0", "false":
	case "1", "true":
		all = true
	default:
		writeJSON(w, http.StatusBadRequest, apiError{Error: "all must be 1 or 0", Code: "bad_request"})
		return
	}
	list, err := a.Service.List(r.Context(), all)
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

func (a *ApprovalsAPI) get(w http.ResponseWriter, r *http.Request, _ identity.Provenance) {
	req, err := a.Service.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, req)
}

type decisionBody struct {
	Comment    string `json:"comment"`
	ForSession string `json:"for_session"`
	SHA256     string `json:"sha256"` // approve only: the command the approver saw
}

func (a *ApprovalsAPI) approve(w http.ResponseWriter, r *http.Request, who identity.Provenance) {
	body, ok := a.body(w, r, true)
	if !ok {
		return
	}
	var forSession time.Duration
	if body.ForSession != "" {
		d, err := time.ParseDuration(body.ForSession)
		if err != nil || d < 0 {
			writeJSON(w, http.StatusBadRequest, apiError{Error: fmt.Sprintf("for_session %q is not a duration like \"10m\"", body.ForSession), Code: "bad_request"})
			return
		}
		forSession = d
	}
	req, err := a.Service.ApproveSum(r.Context(), r.PathValue("id"), body.SHA256, who, body.Comment, forSession)
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, req)
}

func (a *ApprovalsAPI) deny(w http.ResponseWriter, r *http.Request, who identity.Provenance) {
	body, ok := a.body(w, r, false)
	if !ok {
		return
	}
	if body.Comment == "" {
		writeJSON(w, http.StatusBadRequest, apiError{Error: `a denial needs {"comment": "..."}: tell the agent why and what to do instead`, Code: "bad_request"})
		return
	}
	req, err := a.Service.Deny(r.Context(), r.PathValue("id"), who, body.Comment)
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, req)
}

// body reads a decision body; an empty body is allowed when optional.
func (a *ApprovalsAPI) body(w http.ResponseWriter, r *http.Request, optional bool) (decisionBody, bool) {
	var b decisionBody
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
	dec.DisallowUnknownFields()
	err := dec.Decode(&b)
	if errors.Is(err, io.EOF) && optional {
		return b, true
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: `body must be {"comment": "...", "for_session": "10m", "sha256": "..."}`, Code: "bad_request"})
		return b, false
	}
	return b, true
}

// fail answers with the status that fits a Service error. Refusals carry
// the Service's words; anything else is logged and answered "internal
// error", so internal detail never reaches the client.
func (a *ApprovalsAPI) fail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, approvals.ErrNotFound):
		writeJSON(w, http.StatusNotFound, apiError{Error: err.Error(), Code: "not_found"})
	case errors.Is(err, approvals.ErrSelfApproval), errors.Is(err, approvals.ErrNotHuman):
		writeJSON(w, http.StatusForbidden, apiError{Error: err.Error(), Code: "forbidden"})
	case errors.Is(err, approvals.ErrNotPending):
		writeJSON(w, http.StatusConflict, apiError{Error: err.Error(), Code: "not_pending"})
	case errors.Is(err, approvals.ErrStaleHash):
		writeJSON(w, http.StatusConflict, apiError{Error: err.Error(), Code: "sha256_mismatch"})
	case errors.Is(err, approvals.ErrInvalid):
		writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error(), Code: "bad_request"})
	default:
		a.logger().Error("approvals API", "err", err)
		writeJSON(w, http.StatusInternalServerError, apiError{Error: "internal error", Code: "internal"})
	}
}

func (a *ApprovalsAPI) logger() *slog.Logger {
	if a.Logger != nil {
		return a.Logger
	}
	return slog.Default()
}

// BearerTokenAuthenticator accepts requests that carry token as their
// bearer token and names them who (the bootstrap approver, before OIDC is
// set up). The comparison is constant-time over SHA-256 digests, so
// neither the token nor its length leaks through timing. An empty token
// accepts nobody.
func BearerTokenAuthenticator(token string, who identity.Provenance) func(*http.Request) (*identity.Provenance, error) {
	want := sha256.Sum256([]byte(token))
	return func(r *http.Request) (*identity.Provenance, error) {
		if token == "" {
			return nil, errors.New("no approver token configured")
		}
		got, ok := bearer(r)
		if !ok {
			return nil, errors.New("missing bearer token")
		}
		sum := sha256.Sum256([]byte(got))
		if subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			return nil, errors.New("wrong approver token")
		}
		p := who
		return &p, nil
	}
}
