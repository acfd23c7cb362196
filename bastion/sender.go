package bastion

import (
	"errors"
	"io"
	"sync"
)

// sender writes output to the agent from its own goroutine, so that the
// masking and recording of the next chunk overlap the encryption and
// sending of this one. Callers hand it chunks that are already recorded;
// the recording stays ahead of what the agent receives.
type sender struct {
	q    chan sendItem
	free chan []byte
	done chan struct{}
	mu   sync.Mutex
	err  error // the first write error; later chunks are dropped
}

type sendItem struct {
	to io.Writer
	p  []byte
}

// sendQueue bounds what may be recorded but not yet sent.
const sendQueue = 4

func newSender() *sender {
	s := &sender{q: make(chan sendItem, sendQueue), free: make(chan []byte, sendQueue+1), done: make(chan struct{})}
	go s.run()
	return s
}

func (s *sender) run() {
	defer close(s.done)
	for it := range s.q {
		if s.failed() == nil {
			if _, err := it.to.Write(it.p); err != nil {
				s.mu.Lock()
				s.err = err
				s.mu.Unlock()
			}
		}
		select {
		case s.free <- it.p[:0]:
		default:
		}
	}
}

func (s *sender) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// send queues a copy of p for to. It reports an earlier write's error, so
// the producer stops once the agent is gone.
func (s *sender) send(to io.Writer, p []byte) error {
	if err := s.failed(); err != nil {
		return err
	}
	var buf []byte
	select {
	case buf = <-s.free:
	default:
	}
	s.q <- sendItem{to: to, p: append(buf, p...)}
	return nil
}

// Close waits until everything queued has been written and returns the
// first write error. Every send must have returned before Close.
func (s *sender) Close() error {
	close(s.q)
	<-s.done
	if err := s.failed(); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}
