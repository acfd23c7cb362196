package approvals_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/bastion-dev/bastion/approvals"
	"github.com/bastion-dev/bastion/identity"
	"github.com/bastion-dev/bastion/store"
)

// The life of one held command: the session creates a request and waits;
// an approver (here another goroutine) approves it; the session consumes
// the approval and runs the command, once.
func ExampleService() {
	dir, _ := os.MkdirTemp("", "approvals-example")
	defer os.RemoveAll(dir)
	st, err := store.Open(filepath.Join(dir, "bastion.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close()
	svc := &approvals.Service{Store: st, Timeout: time.Minute}
	ctx := context.Background()

	agent := identity.Provenance{Kind: identity.KindAgent, Subject: "deploy-bot"}
	req, err := svc.Create(ctx, approvals.Request{
		Requester: agent, SessionID: "sess-1", Command: "kubectl delete pod web-0",
		Rule: "kubectl-delete", Reason: "deletes cluster resources",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	go func() {
		// Four eyes: the agent cannot approve itself.
		_, err := svc.Approve(ctx, req.ID, identity.Provenance{Kind: identity.KindHuman, Subject: "deploy-bot"}, "", 0)
		fmt.Println("self-approval refused:", errors.Is(err, approvals.ErrSelfApproval))
		svc.Approve(ctx, req.ID, identity.Provenance{Kind: identity.KindHuman, Subject: "alice"}, "go ahead", 0)
	}()

	got, err := svc.Wait(ctx, req.ID)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(got.Status, "by", got.Decider.Subject+":", got.Comment)
	fmt.Println("first use:", svc.Consume(ctx, req.ID, "sess-1", "kubectl delete pod web-0"))
	fmt.Println("second use refused:", errors.Is(svc.Consume(ctx, req.ID, "sess-1", "kubectl delete pod web-0"), approvals.ErrAlreadyUsed))
	// Output:
	// self-approval refused: true
	// approved by alice: go ahead
	// first use: <nil>
	// second use refused: true
}
