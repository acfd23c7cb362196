package bastion

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"slices"
	"strings"

	"github.com/bastion-dev/bastion/approvals"
	"github.com/bastion-dev/bastion/certs"
	"github.com/bastion-dev/bastion/identity"
	"github.com/bastion-dev/bastion/masking"
	"github.com/bastion-dev/bastion/recordings"
	"github.com/bastion-dev/bastion/web"
)

// OperatorAuth authenticates operators (approvers, web UI users) on HTTP
// requests: a bootstrap bearer token, or an OIDC ID token whose claims map
// to one of the operator roles. It never accepts an anonymous request.
type OperatorAuth struct {
	Token    string // bootstrap token; empty: none
	Verifier certs.TokenVerifier
	Roles    []certs.RoleConfig
	Allowed  []string // role names that make an operator
}

// Authenticate implements the authenticator the approvals API expects.
func (o *OperatorAuth) Authenticate(r *http.Request) (*identity.Provenance, error) {
	tok, ok := bearer(r)
	if !ok {
		return nil, errors.New("missing bearer token")
	}
	if o.Token != "" {
		if p, err := BearerTokenAuthenticator(o.Token, identity.Provenance{Kind: identity.KindHuman, Subject: "operator", Issuer: "bootstrap-token"})(r); err == nil {
			return p, nil
		}
	}
	if o.Verifier == nil || len(o.Allowed) == 0 || strings.Count(tok, ".") != 2 {
		return nil, errors.New("not an operator token")
	}
	claims, err := o.Verifier.Verify(r.Context(), tok)
	if err != nil {
		return nil, fmt.Errorf("operator token: %w", err)
	}
	role, err := certs.MapClaims(o.Roles, claims)
	if err != nil || !slices.Contains(o.Allowed, role.Name) {
		return nil, errors.New("this identity is not an operator")
	}
	kind := claims.Kind
	if role.Kind != "" {
		kind = role.Kind
	}
	return &identity.Provenance{Kind: kind, Subject: claims.Subject, Issuer: claims.Issuer, Sponsor: claims.Sponsor, Role: role.Name}, nil
}

// webOperator adapts Authenticate to the web UI.
func (o *OperatorAuth) webOperator(r *http.Request) (*web.Operator, error) {
	p, err := o.Authenticate(r)
	if err != nil {
		return nil, err
	}
	return &web.Operator{Subject: p.Subject, Kind: string(p.Kind)}, nil
}

// webRecordings serves the recordings directory to the web UI.
type webRecordings struct{ dir string }

// The adapters below hand the web UI agent text (commands, reasons,
// subjects) rendered by masking.Display: a browser applies bidirectional
// overrides and hides zero-width characters, so raw text could show an
// approver another command than the one they approve.

func sessionView(s recordings.Summary) web.Session {
	return web.Session{ID: s.ID, Subject: masking.Display(s.Subject), Kind: masking.Display(s.Kind), Principal: masking.Display(s.Principal),
		Source: masking.Display(s.Source), Started: s.Started, Ended: s.Ended, Commands: s.Commands, Denied: s.Denied}
}

func (w webRecordings) List(_ context.Context, subject string, deniedOnly bool) ([]web.Session, error) {
	f := recordings.Filter{Subject: subject}
	if deniedOnly {
		f.Decision = "deny"
	}
	list, err := recordings.List(w.dir, f)
	if err != nil {
		return nil, err
	}
	out := make([]web.Session, 0, len(list))
	for _, s := range list {
		out = append(out, sessionView(s))
	}
	return out, nil
}

func (w webRecordings) Index(_ context.Context, id string) (web.Session, []web.Command, error) {
	d, err := recordings.Load(w.dir, id)
	if err != nil {
		return web.Session{}, nil, err
	}
	cmds := make([]web.Command, 0, len(d.Index))
	for _, e := range d.Index {
		cmds = append(cmds, web.Command{N: e.N, Offset: e.Offset, Cmd: masking.Display(e.Cmd), Decision: masking.Display(e.Decision),
			Rule: masking.Display(e.Rule), Exit: e.Exit, Duration: e.Duration})
	}
	return sessionView(d.Summary), cmds, nil
}

func (w webRecordings) Cast(_ context.Context, id string) (io.ReadCloser, error) {
	p, err := recordings.Path(w.dir, id)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", fs.ErrNotExist, err)
	}
	return os.Open(p)
}

// webApprovals serves the approvals service to the web UI.
type webApprovals struct{ svc *approvals.Service }

func (w webApprovals) List(ctx context.Context) ([]web.Approval, error) {
	list, err := w.svc.List(ctx, false)
	if err != nil {
		return nil, err
	}
	out := make([]web.Approval, 0, len(list))
	for _, r := range list {
		out = append(out, approvalView(r))
	}
	return out, nil
}

// approvalView is a request as the web UI shows it: agent text rendered,
// every part that needs the approval, and the short sum it binds to.
func approvalView(r approvals.Request) web.Approval {
	v := web.Approval{ID: r.ID, Status: string(r.Status), Command: masking.Display(r.Command), Subject: masking.Display(r.Requester.Subject),
		Kind: masking.Display(string(r.Requester.Kind)), Rule: masking.Display(r.Rule), Reason: masking.Display(r.Reason),
		AgentReason: masking.Display(r.AgentReason), SessionID: masking.Display(r.SessionID), Created: r.Created, Expires: r.Expires,
		SHA256: approvals.ShortSum(r.Sum())}
	for _, p := range r.Parts {
		v.Parts = append(v.Parts, web.ApprovalPart{Text: masking.Display(p.Text), Rule: masking.Display(p.Rule), Reason: masking.Display(p.Reason)})
	}
	return v
}

func (w webApprovals) Approve(ctx context.Context, id string, op web.Operator, comment string) error {
	_, err := w.svc.Approve(ctx, id, identity.Provenance{Kind: identity.Kind(op.Kind), Subject: op.Subject}, comment, 0)
	return webError(err)
}

func (w webApprovals) Deny(ctx context.Context, id string, op web.Operator, comment string) error {
	_, err := w.svc.Deny(ctx, id, identity.Provenance{Kind: identity.Kind(op.Kind), Subject: op.Subject}, comment)
	return webError(err)
}

// webError gives approval refusals the status and words the UI shows.
func webError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, approvals.ErrSelfApproval):
		return &web.Error{Status: http.StatusForbidden, Msg: "you cannot approve your own request", Err: err}
	case errors.Is(err, approvals.ErrNotHuman):
		return &web.Error{Status: http.StatusForbidden, Msg: "only a person can approve", Err: err}
	case errors.Is(err, approvals.ErrNotFound):
		return &web.Error{Status: http.StatusNotFound, Msg: "no such request", Err: err}
	case errors.Is(err, approvals.ErrNotPending):
		return &web.Error{Status: http.StatusConflict, Msg: "the request is no longer pending", Err: err}
	}
	return err
}
