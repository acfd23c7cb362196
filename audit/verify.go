package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// ErrTornTail marks a log whose last line is incomplete: a crash or a full
// disk interrupted a write. It is not tampering; Open repairs it.
var ErrTornTail = errors.New("incomplete last line")

// VerifyError names the first line of a log that breaks the chain.
type VerifyError struct {
	Line   int    // 1-based
	Reason string // "hash mismatch", "prev does not match line 12", ...
	Err    error  // ErrTornTail for an interrupted write, else nil
}

func (e *VerifyError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Reason) }
func (e *VerifyError) Unwrap() error { return e.Err }

// Verify reads a whole audit log and checks every link of its chain: each
// line is a JSON event whose hash matches its content and whose prev is the
// hash of the event before it. An edited line fails its own hash; a
// deleted, inserted or moved line breaks the prev link of the line after
// it. Lines a crash left torn are accepted only when the log.recovered
// event that follows them names their exact bytes.
//
// It returns the number of events checked and, on failure, a *VerifyError.
// The chain has no secret: it proves the log was not edited in place, not
// that it was never rewritten from scratch, and removing lines from the end
// leaves a valid shorter chain. Keep the head hash somewhere else (the
// Mirror to a SIEM does) to detect either.
func Verify(r io.Reader) (n int, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var (
		prev      string // hash of the last good event
		prevLine  int
		lineNo    int
		torn      [][]byte // invalid lines since the last good event
		tornStart int
	)
	for {
		line, rerr := br.ReadBytes('\n')
		if len(line) == 0 && rerr == io.EOF {
			break
		}
		if rerr != nil && rerr != io.EOF {
			return n, fmt.Errorf("audit: read: %w", rerr)
		}
		lineNo++
		terminated := line[len(line)-1] == '\n'
		if terminated {
			line = line[:len(line)-1]
		}
		e, ok := parseEvent(line)
		if !ok {
			if !terminated {
				return n, &VerifyError{Line: lineNo, Reason: "incomplete last line (an interrupted write; the log repairs it when next opened)", Err: ErrTornTail}
			}
			if torn == nil {
				tornStart = lineNo
			}
			torn = append(torn, line)
			continue
		}
		if torn != nil {
			if !namesTorn(e, bytes.Join(torn, []byte("\n"))) {
				return n, &VerifyError{Line: tornStart, Reason: describeBad(torn[0])}
			}
			torn = nil
		}
		computed, claimed, _ := lineHash(line)
		if computed != claimed {
			return n, &VerifyError{Line: lineNo, Reason: "hash mismatch"}
		}
		if e.Prev != prev {
			if prevLine == 0 {
				return n, &VerifyError{Line: lineNo, Reason: "prev set on the first event (lines before it were removed)"}
			}
			if e.Prev == "" {
				return n, &VerifyError{Line: lineNo, Reason: fmt.Sprintf("prev missing, line %d comes before it", prevLine)}
			}
			return n, &VerifyError{Line: lineNo, Reason: fmt.Sprintf("prev does not match line %d", prevLine)}
		}
		prev, prevLine = e.Hash, lineNo
		n++
	}
	if torn != nil {
		return n, &VerifyError{Line: tornStart, Reason: describeBad(torn[0])}
	}
	return n, nil
}

// namesTorn says whether e is a log.recovered event for exactly these bytes.
func namesTorn(e Event, b []byte) bool {
	if e.Type != LogRecovered {
		return false
	}
	sum := sha256.Sum256(b)
	h, _ := e.Detail["torn_sha256"].(string)
	nb, _ := e.Detail["torn_bytes"].(float64)
	return h == hex.EncodeToString(sum[:]) && int(nb) == len(b)
}

// describeBad says what is wrong with a line that is not an event.
func describeBad(line []byte) string {
	if len(line) == 0 {
		return "empty line"
	}
	if !json.Valid(line) {
		return "not valid JSON"
	}
	var e Event
	if err := json.Unmarshal(line, &e); err != nil {
		return "not an audit event: " + err.Error()
	}
	return "hash field missing or not last"
}
