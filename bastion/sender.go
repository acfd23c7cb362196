package bastion

import (
	"errors"
	"io"
	"sync"
)

// sender moves an exec command's masked output to the agent through two
// goroutines: one records each chunk, the next encrypts and sends it. So
// reading and masking the next chunk, recording this one and sending the
// previous one overlap, and a chunk is never sent before it is recorded.
type sender struct {
	record  func(p []byte) error // nil: chunks arrive already recorded
	rq, sq  chan sendItem        // to the recorder, to the sender
	free    chan []byte
	done    chan struct{}
	mu      sync.Mutex
	recErr  error // the first recording error: nothing later is recorded or sent
	sendErr error // the first write error: nothing later is sent
}

type sendItem struct {
	to io.Writer
	p  []byte
}

// sendQueue bounds the chunks in each stage.
const sendQueue = 4

// errNotRecorded marks a send error that comes from the recording.
var errNotRecorded = errors.New("output could not be recorded")

func newSender(record func(p []byte) error) *sender {
	s := &sender{record: record, sq: make(chan sendItem, sendQueue), free: make(chan []byte, 2*sendQueue+1), done: make(chan struct{})}
	if record != nil {
		s.rq = make(chan sendItem, sendQueue)
		go s.recorder()
	}
	go s.sender()
	return s
}

func (s *sender) recorder() {
	defer close(s.sq)
	for it := range s.rq {
		if s.errs(&s.recErr) == nil {
			if err := s.record(it.p); err != nil {
				s.fail(&s.recErr, errors.Join(errNotRecorded, err))
			} else {
				s.sq <- it
				continue
			}
		}
		s.recycle(it.p)
	}
}

func (s *sender) sender() {
	defer close(s.done)
	for it := range s.sq {
		if s.errs(&s.sendErr) == nil {
			if _, err := it.to.Write(it.p); err != nil {
				s.fail(&s.sendErr, err)
			}
		}
		s.recycle(it.p)
	}
}

// fail sets *slot (recErr or sendErr) unless it is set.
func (s *sender) fail(slot *error, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if *slot == nil {
		*slot = err
	}
}

// errs returns *slot, or the first error of either stage for nil.
func (s *sender) errs(slot *error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if slot != nil {
		return *slot
	}
	if s.recErr != nil {
		return s.recErr
	}
	return s.sendErr
}

func (s *sender) recycle(p []byte) {
	select {
	case s.free <- p[:0]:
	default:
	}
}

// send queues a copy of p for to. It reports an earlier error of either
// stage, so the producer stops once the agent is gone or the recording
// failed.
func (s *sender) send(to io.Writer, p []byte) error {
	if err := s.errs(nil); err != nil {
		return err
	}
	var buf []byte
	select {
	case buf = <-s.free:
	default:
	}
	it := sendItem{to: to, p: append(buf, p...)}
	if s.rq != nil {
		s.rq <- it
	} else {
		s.sq <- it
	}
	return nil
}

// Close waits until every queued chunk has been recorded and sent, and
// returns the first error (errNotRecorded wraps a recording's). Every send
// must have returned before Close.
func (s *sender) Close() error {
	if s.rq != nil {
		close(s.rq)
	} else {
		close(s.sq)
	}
	<-s.done
	if err := s.errs(nil); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// queuedWriter hands writes to a sender for to.
type queuedWriter struct {
	s  *sender
	to io.Writer
}

func (w queuedWriter) Write(p []byte) (int, error) {
	if err := w.s.send(w.to, p); err != nil {
		return 0, err
	}
	return len(p), nil
}
