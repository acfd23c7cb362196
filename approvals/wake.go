package approvals

import (
	"context"
	"sync"
	"time"
)

// Waker tells a waiting request that its row may have changed in the store,
// whichever process changed it. A spurious wake-up is harmless: the waiter
// re-reads the request. The SQLite implementation polls (PollWaker); a
// PostgreSQL store can implement it with LISTEN/NOTIFY.
type Waker interface {
	// Subscribe returns a channel that becomes ready whenever request id
	// may have changed, and a function that releases it. The channel is
	// never closed.
	Subscribe(ctx context.Context, id string) (<-chan struct{}, func())
}

// PollWaker wakes every Interval: with SQLite, another process's decision
// is seen by re-reading the row. Each waiter costs one primary-key read per
// Interval.
type PollWaker struct {
	Interval time.Duration // 0 means 50ms
}

// Subscribe implements Waker.
func (p PollWaker) Subscribe(ctx context.Context, id string) (<-chan struct{}, func()) {
	iv := p.Interval
	if iv <= 0 {
		iv = 50 * time.Millisecond
	}
	ch := make(chan struct{}, 1)
	t := time.NewTicker(iv)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				select {
				case ch <- struct{}{}:
				default: // one wake-up pending is enough
				}
			}
		}
	})
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			close(done)
			wg.Wait()
			t.Stop()
		})
	}
}

// broadcast wakes the waiters of this process at once when this process
// changes a request, without waiting for the next poll.
type broadcast struct {
	mu   sync.Mutex
	subs map[string]map[chan struct{}]struct{} // guarded by mu
}

func (b *broadcast) subscribe(id string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	b.mu.Lock()
	if b.subs == nil {
		b.subs = map[string]map[chan struct{}]struct{}{}
	}
	if b.subs[id] == nil {
		b.subs[id] = map[chan struct{}]struct{}{}
	}
	b.subs[id][ch] = struct{}{}
	b.mu.Unlock()
	return ch, func() {
		b.mu.Lock()
		delete(b.subs[id], ch)
		if len(b.subs[id]) == 0 {
			delete(b.subs, id)
		}
		b.mu.Unlock()
	}
}

func (b *broadcast) wake(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs[id] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
