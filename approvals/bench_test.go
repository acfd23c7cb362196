package approvals_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/approvals"
)

// BenchmarkApproveToWake measures how long a waiting session takes to see
// an approval: from Approve returning to Wait returning. "other-process"
// approves through a second connection to the same SQLite file, as the CLI
// does, so the waiter learns of it by polling; "same-process" approves
// through the waiting Service, whose broadcast wakes it at once. ns/op is
// dominated by the set-up sleeps; read wake-ms (mean) and wake-max-ms.
//
//	go test -run '^$' -bench ApproveToWake -benchtime 50x ./approvals
func BenchmarkApproveToWake(b *testing.B) {
	for _, poll := range []time.Duration{20 * time.Millisecond, 50 * time.Millisecond} {
		b.Run(fmt.Sprintf("other-process/poll=%v", poll), func(b *testing.B) {
			path := dbPath(b)
			server := &approvals.Service{Store: openStore(b, path), Poll: poll}
			cli := &approvals.Service{Store: openStore(b, path)}
			benchWake(b, server, cli, poll)
		})
	}
	b.Run("same-process", func(b *testing.B) {
		svc := &approvals.Service{Store: openStore(b, dbPath(b)), Poll: time.Hour}
		benchWake(b, svc, svc, 20*time.Millisecond)
	})
}

func benchWake(b *testing.B, server, approver *approvals.Service, poll time.Duration) {
	ctx := context.Background()
	var lat []time.Duration
	for b.Loop() {
		req, err := server.Create(ctx, request("s", "kubectl delete pod x"))
		if err != nil {
			b.Fatal(err)
		}
		done := waitAsync(ctx, server, req.ID)
		// Let the waiter block, then approve at a random phase of its poll.
		time.Sleep(10*time.Millisecond + rand.N(poll))
		if _, err := approver.Approve(ctx, req.ID, bob, "", 0); err != nil {
			b.Fatal(err)
		}
		approved := time.Now()
		w := <-done
		if w.err != nil || w.r.Status != approvals.Approved {
			b.Fatalf("Wait = %+v, %v", w.r, w.err)
		}
		lat = append(lat, w.at.Sub(approved))
	}
	var sum time.Duration
	for _, l := range lat {
		sum += l
	}
	b.ReportMetric(float64(sum.Microseconds())/float64(len(lat))/1000, "wake-ms")
	b.ReportMetric(float64(slices.Max(lat).Microseconds())/1000, "wake-max-ms")
}
