package bastion

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bastion-dev/bastion/audit"
	"github.com/bastion-dev/bastion/certs"
	"github.com/bastion-dev/bastion/identity"
	"github.com/bastion-dev/bastion/store"
	"golang.org/x/crypto/ssh"
)

// CertStore is what the HTTP API needs of the store.
type CertStore interface {
	AddCert(ctx context.Context, c store.Cert) error
}

// DevTokens mints tokens from the development issuer (dev mode only).
type DevTokens interface {
	Token(ctx context.Context, subject string, groups []string) (string, error)
}

// API is bastion's HTTP API. Routes:
//
//	POST /v1/certificate  exchange an OIDC ID token for an SSH certificate
//	POST /dev/token       (dev mode only) mint a token from the dev issuer;
//	                      needs DevAuthToken and a loopback Host (devToken)
//	GET  /healthz         liveness
//	/v1/approvals...      approvals API (see ApprovalsAPI)
//	/ui/...               operator web UI (recordings, approvals)
type API struct {
	Exchanger *certs.Exchanger
	Store     CertStore
	Audit     audit.Sink
	// Dev is the development issuer; nil outside dev mode.
	Dev DevTokens
	// DevAuthToken is the bearer token POST /dev/token requires (dev mode
	// passes its operator token); empty refuses every dev token request.
	DevAuthToken string
	// SSHAddr is reported to clients so `bastion login` can write ssh_config.
	SSHAddr string
	// Extra register more routes (approvals API, web UI) on the same mux.
	Extra  []func(*http.ServeMux)
	Logger *slog.Logger     // nil means slog.Default()
	Clock  func() time.Time // nil means time.Now
}

// Handler returns the API's routes.
func (a *API) Handler() http.Handler {
	if a.Logger == nil {
		a.Logger = slog.Default()
	}
	if a.Clock == nil {
		a.Clock = time.Now
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/certificate", a.certificate)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	if a.Dev != nil {
		mux.HandleFunc("POST /dev/token", a.devToken)
	}
	for _, f := range a.Extra {
		f(mux)
	}
	return mux
}

type apiError struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // messages like "Bearer <OIDC ID token>" stay readable
	enc.Encode(v)
}

// bearer extracts the token of an "Authorization: Bearer" header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

func (a *API) certificate(w http.ResponseWriter, r *http.Request) {
	src := hostOfString(r.RemoteAddr)
	refuse := func(status int, code, msg string, prov *identity.Provenance) {
		a.record(httpEvent(audit.CertRefused, prov, src, fields{"reason": msg, "code": code}))
		writeJSON(w, status, apiError{Error: msg, Code: code})
	}
	tok, ok := bearer(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="bastion"`)
		refuse(http.StatusUnauthorized, "unauthenticated", "missing bearer token: send Authorization: Bearer <OIDC ID token>", nil)
		return
	}
	resp, cert, prov, err := a.Exchanger.Exchange(r.Context(), tok, http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		status, code, msg := http.StatusInternalServerError, "internal", "internal error"
		var xe *certs.ExchangeError
		if errors.As(err, &xe) {
			msg = xe.Msg
			switch xe.Kind {
			case certs.Unauthenticated:
				status, code = http.StatusUnauthorized, "unauthenticated"
				w.Header().Set("WWW-Authenticate", `Bearer realm="bastion", error="invalid_token"`)
			case certs.Forbidden:
				status, code = http.StatusForbidden, "forbidden"
			case certs.BadRequest:
				status, code = http.StatusBadRequest, "bad_request"
			}
		} else {
			a.Logger.Error("certificate exchange", "err", err)
		}
		refuse(status, code, msg, prov)
		return
	}
	rec := store.Cert{
		Serial: cert.Serial, KeyID: cert.KeyId, Provenance: *prov, Principals: cert.ValidPrincipals,
		Fingerprint: ssh.FingerprintSHA256(cert.Key), Via: "oidc", IssuedAt: a.Clock(),
		ValidAfter: time.Unix(int64(cert.ValidAfter), 0), ValidBefore: time.Unix(int64(cert.ValidBefore), 0),
	}
	// A certificate is handed out only once it is stored and audited.
	if err := a.Store.AddCert(r.Context(), rec); err != nil {
		a.Logger.Error("store certificate", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "the certificate could not be recorded; nothing was issued, retry later", Code: "unavailable"})
		return
	}
	if err := a.record(httpEvent(audit.CertIssued, prov, src, fields{
		"serial": fmt.Sprint(cert.Serial), "key_id": cert.KeyId, "principals": cert.ValidPrincipals,
		"valid_before": rec.ValidBefore, "fingerprint": rec.Fingerprint, "via": "oidc"})); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "the certificate could not be audited; nothing was issued, retry later", Code: "unavailable"})
		return
	}
	writeJSON(w, http.StatusOK, struct {
		*certs.CertificateResponse
		SSHAddr string `json:"ssh_addr"`
	}{resp, a.SSHAddr})
}

func (a *API) record(e audit.Event) error {
	if e.Time.IsZero() {
		e.Time = a.Clock()
	}
	err := a.Audit.Record(e)
	if err != nil {
		a.Logger.Error("audit write failed", "type", e.Type, "err", err)
	}
	return err
}

// devToken mints a token for any subject, so it answers only the operator:
// agents run on this host and reach the loopback port. It wants a Host
// naming this listener by a loopback name or address (a page whose DNS name
// was rebound to 127.0.0.1 sends its own name) and the operator's bearer
// token. Refusals are audited as request.refused, mints as dev.token.
func (a *API) devToken(w http.ResponseWriter, r *http.Request) {
	src := hostOfString(r.RemoteAddr)
	refuse := func(status int, code, msg string) {
		a.record(httpEvent(audit.RequestRefused, nil, src, fields{
			"request": "POST /dev/token", "host": quoteBounded(r.Host, 128), "reason": msg, "code": code}))
		writeJSON(w, status, apiError{Error: msg, Code: code})
	}
	if err := loopbackHost(r); err != nil {
		refuse(http.StatusMisdirectedRequest, "misdirected", err.Error())
		return
	}
	tok, ok := bearer(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="bastion"`)
		refuse(http.StatusUnauthorized, "unauthenticated", "dev token: missing operator token: send Authorization: Bearer <DATA_DIR/client/operator_token> (bastion dev token does)")
		return
	}
	got, want := sha256.Sum256([]byte(tok)), sha256.Sum256([]byte(a.DevAuthToken))
	if a.DevAuthToken == "" || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="bastion", error="invalid_token"`)
		refuse(http.StatusUnauthorized, "unauthenticated", "dev token: wrong operator token: use the one in DATA_DIR/client/operator_token of the running bastion dev")
		return
	}
	var req struct {
		Subject string   `json:"subject"`
		Groups  []string `json:"groups"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil || req.Subject == "" {
		writeJSON(w, http.StatusBadRequest, apiError{Error: `body must be {"subject": "...", "groups": [...]}`, Code: "bad_request"})
		return
	}
	operator := &identity.Provenance{Kind: identity.KindHuman, Subject: "operator", Issuer: "bootstrap-token"}
	if err := a.record(httpEvent(eventDevToken, operator, src, fields{
		"subject": quoteBounded(req.Subject, 128), "groups": req.Groups})); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "the dev token could not be audited; nothing was issued, retry later", Code: "unavailable"})
		return
	}
	tok, err := a.Dev.Token(r.Context(), req.Subject, req.Groups)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, apiError{Error: err.Error(), Code: "internal"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"id_token": tok})
}

// loopbackHost checks that r's Host names the listener it came in on by
// "localhost" or a loopback address, with that listener's port.
func loopbackHost(r *http.Request) error {
	la, _ := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr)
	if la == nil {
		return errors.New("dev token: cannot tell which listener this request came in on")
	}
	want := fmt.Sprintf("use http://127.0.0.1:%d or http://localhost:%d", la.Port, la.Port)
	host, port, err := net.SplitHostPort(r.Host)
	if err != nil {
		host, port = strings.Trim(r.Host, "[]"), "80"
		if r.TLS != nil {
			port = "443"
		}
	}
	ip := net.ParseIP(host)
	if !strings.EqualFold(host, "localhost") && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("dev token: Host %s is not a loopback name or address: %s", quoteBounded(r.Host, 64), want)
	}
	if port != strconv.Itoa(la.Port) {
		return fmt.Errorf("dev token: Host %s names another port: %s", quoteBounded(r.Host, 64), want)
	}
	return nil
}
