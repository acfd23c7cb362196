//go:build linux

package pty

import "bytes"

// The goroutines that move bytes: the output pump and the reader of In,
// and the serialized writer to the agent that the pump and the loop share.

// write sends p to the agent. After the first error it drops everything.
func (s *session) write(p []byte) {
	if len(p) == 0 {
		return
	}
	s.outMu.Lock()
	defer s.outMu.Unlock()
	if s.outErr != nil {
		return
	}
	if _, err := s.f.Out.Write(p); err != nil {
		s.outErr = err
		close(s.outFailed)
	}
}

func (s *session) outError() error {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	return s.outErr
}

// pump copies the PTY's output to the agent and hands markers to the loop.
// Output before the first marker (rc files, bash's own start-up prompt) is
// dropped.
func (s *session) pump() {
	buf := make([]byte, batchChunk*batchQueue/4)
	master := newBatchReader(s.sh.master)
	defer master.Close()
	sc := newScanner(s.sh.nonce)
	started := false
	out := func(p []byte) {
		if !started {
			return
		}
		s.write(p)
		s.lastNL.Store(p[len(p)-1] == '\n')
		if s.editing.Load() {
			select {
			case s.bgOut <- struct{}{}:
			default:
			}
		}
	}
	mark := func(m marker) {
		started = true
		select {
		case s.marks <- m:
		case <-s.done:
		}
	}
	for {
		n, err := master.Read(buf)
		if n > 0 {
			sc.scan(buf[:n], out, mark)
		}
		if err != nil {
			sc.flush(out)
			return
		}
	}
}

// readIn copies In to the loop until In fails or the loop has ended.
func (s *session) readIn() {
	buf := make([]byte, 32<<10)
	for {
		n, err := s.f.In.Read(buf)
		if n > 0 {
			select {
			case s.inCh <- bytes.Clone(buf[:n]):
			case <-s.done:
				return
			}
		}
		if err != nil {
			select {
			case s.inErr <- err:
			case <-s.done:
			}
			return
		}
	}
}
