package audit

import (
	"context"
	"sync"
	"time"
)

// Head is where a log ends: the sequence number and hash of its last
// durable event. The zero Head is an empty log's, or none known.
type Head struct {
	Seq  uint64
	Hash string
}

// IsZero reports whether h is the zero Head.
func (h Head) IsZero() bool { return h == Head{} }

// HeadStore keeps a log's head apart from the log itself: bastion's store
// (store.Store) implements it. A file can be cut or rewritten by whoever
// can write it; the head, elsewhere, says where it ended. LoadHead returns
// the zero Head when none was saved.
type HeadStore interface {
	SaveHead(ctx context.Context, h Head) error
	LoadHead(ctx context.Context) (Head, error)
}

// headTimeout bounds one SaveHead or LoadHead (SQLite itself waits up to
// 10 s for a lock).
const headTimeout = 15 * time.Second

// headSaver saves a Log's head in the background. After every fsync the
// Log hands it the new head (set), and it saves the newest one it has: no
// Record waits for the store, and a burst of group commits costs one store
// write each time the saver catches up. So the stored head lags the file
// by the group commits since the last save, up to one or two in practice;
// a crash in that window leaves the file ahead of its head, which Verify
// accepts (the extra events still chain from it), never behind it.
//
// The goroutine run starts is owned by the Log, whose Close stops it and
// then saves the final head itself.
type headSaver struct {
	store HeadStore
	kick  chan struct{}
	stop  chan struct{}
	done  chan struct{}

	mu    sync.Mutex
	want  Head  // guarded by mu: the newest durable head
	saved Head  // guarded by mu: the head last saved
	err   error // guarded by mu: the last save's outcome
}

func newHeadSaver(st HeadStore, saved Head) *headSaver {
	return &headSaver{store: st, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		want: saved, saved: saved}
}

// set records a new durable head and wakes the saver.
func (s *headSaver) set(h Head) {
	s.mu.Lock()
	s.want = h
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *headSaver) run() {
	defer close(s.done)
	for {
		select {
		case <-s.kick:
			s.save()
		case <-s.stop:
			return
		}
	}
}

// save saves the newest head unless it is saved already, and returns the
// outcome of the last save. Only one save runs at a time: run's, or,
// before run starts or after it stopped, the Log's own.
func (s *headSaver) save() error {
	s.mu.Lock()
	h, done := s.want, s.want == s.saved && s.err == nil
	s.mu.Unlock()
	if done {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), headTimeout)
	err := s.store.SaveHead(ctx, h)
	cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.saved = h
	}
	s.err = err
	return err
}

// close stops run and saves the final head.
func (s *headSaver) close() error {
	close(s.stop)
	<-s.done
	return s.save()
}
