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

// ErrTruncated marks a log cut short: it ends before the head kept in the
// store, or bastion found it so when it reopened it (a log.tampered event).
var ErrTruncated = errors.New("log cut short")

// ErrRewritten marks a rewritten log: its event at the head kept in the
// store is another, or bastion found it so when it reopened it.
var ErrRewritten = errors.New("log rewritten")

// ErrKeyRequired marks a keyed event that could not be checked because no
// audit key was given.
var ErrKeyRequired = errors.New("audit key required")

// VerifyError names the first line of a log that breaks the chain.
type VerifyError struct {
	Line   int    // 1-based
	Reason string // "hash mismatch", "prev does not match line 12", ...
	// Err is ErrTornTail for an interrupted write, ErrKeyRequired when the
	// key was missing, ErrTruncated or ErrRewritten for a log that
	// disagrees with its head; nil for any other tampering.
	Err error
}

func (e *VerifyError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Reason) }
func (e *VerifyError) Unwrap() error { return e.Err }

// Tampering reports whether err, from Verify or VerifyWith, says the log
// was tampered with, rather than torn by a crash or not checkable.
func Tampering(err error) bool {
	var ve *VerifyError
	return errors.As(err, &ve) && !errors.Is(err, ErrTornTail) && !errors.Is(err, ErrKeyRequired)
}

// VerifyOptions says what VerifyWith checks besides the chain's links. The
// zero value checks an unkeyed (legacy) log alone.
type VerifyOptions struct {
	// Key is the audit key. Without it, a keyed event is an error
	// (ErrKeyRequired): its hash cannot be checked.
	Key []byte
	// Head is the head kept in the store; the zero Head means none. The
	// file must reach it (ErrTruncated) and its event Head.Seq must be
	// the head's (ErrRewritten). Events after it are accepted, as long as
	// they chain from it like every event must: the store's head lags the
	// file by the group commits since it was last saved.
	Head Head
}

// Report is what VerifyWith found.
type Report struct {
	Events int // complete events checked
	// Legacy counts the unkeyed events among them: written before the
	// chain was keyed, they prove their order, not who wrote them.
	Legacy int
	Last   Head // the file's last event
	// HeadMatched says the store's head was found in the file; AfterHead
	// events follow it (written since the head was last saved).
	HeadMatched bool
	AfterHead   int
}

// Keyed is the number of keyed events checked.
func (r Report) Keyed() int { return r.Events - r.Legacy }

// Verify is VerifyWith without a key or a head: it checks a legacy log,
// and returns the number of events checked.
func Verify(r io.Reader) (n int, err error) {
	rep, err := VerifyWith(r, VerifyOptions{})
	return rep.Events, err
}

// VerifyWith reads a whole audit log and checks every link of its chain:
// each line is a JSON event whose hash matches its content (an HMAC under
// opt.Key for a keyed event, a SHA-256 for a legacy one) and whose prev is
// the hash of the event before it; a keyed event's seq is its number in
// the file, and no legacy event follows a keyed one. An edited line fails
// its own hash; a deleted, inserted or moved line breaks the prev link of
// the line after it; a line rewritten and re-hashed without the key fails
// its HMAC; a log cut at its end, or rewritten whole, disagrees with
// opt.Head. Lines a crash left torn are accepted only when the
// log.recovered event that follows them names their exact bytes.
//
// It returns what it checked and, on failure, a *VerifyError for the first
// line at fault.
func VerifyWith(r io.Reader, opt VerifyOptions) (Report, error) {
	var rep Report
	br := bufio.NewReaderSize(r, 64<<10)
	var (
		legacy    = newChain(nil)
		keyed     *chain // nil without a key
		prev      string // hash of the last good event
		prevLine  int
		lineNo    int
		torn      [][]byte // invalid lines since the last good event
		tornStart int
	)
	if opt.Key != nil {
		keyed = newChain(opt.Key)
	}
	// cut reports a file that ends before the head.
	cut := func() error {
		if opt.Head.Seq <= uint64(rep.Events) {
			return nil
		}
		return &VerifyError{Line: prevLine + 1, Err: ErrTruncated, Reason: fmt.Sprintf(
			"the log ends at event %d, but the store's head is event %d: %d event(s) were cut from its end",
			rep.Events, opt.Head.Seq, opt.Head.Seq-uint64(rep.Events))}
	}
	for {
		line, rerr := br.ReadBytes('\n')
		if len(line) == 0 && rerr == io.EOF {
			break
		}
		if rerr != nil && rerr != io.EOF {
			return rep, fmt.Errorf("audit: read: %w", rerr)
		}
		lineNo++
		terminated := line[len(line)-1] == '\n'
		if terminated {
			line = line[:len(line)-1]
		}
		e, ok := parseEvent(line)
		if !ok {
			if !terminated {
				if err := cut(); err != nil {
					return rep, err
				}
				return rep, &VerifyError{Line: lineNo, Reason: "incomplete last line (an interrupted write; the log repairs it when next opened)", Err: ErrTornTail}
			}
			if torn == nil {
				tornStart = lineNo
			}
			torn = append(torn, line)
			continue
		}
		if torn != nil {
			if !namesTorn(e, bytes.Join(torn, []byte("\n"))) {
				return rep, &VerifyError{Line: tornStart, Reason: describeBad(torn[0])}
			}
			torn = nil
		}
		n := uint64(rep.Events) + 1
		c := legacy
		if e.Seq != 0 {
			if keyed == nil {
				return rep, &VerifyError{Line: lineNo, Err: ErrKeyRequired, Reason: "keyed event: checking it needs the audit key"}
			}
			c = keyed
		} else if rep.Keyed() > 0 {
			return rep, &VerifyError{Line: lineNo, Reason: "unkeyed event after keyed ones: written without the audit key (forged, or the chain downgraded)"}
		}
		if computed, claimed, _ := c.lineHash(line); computed != claimed {
			if e.Seq != 0 && rep.Keyed() == 0 {
				return rep, &VerifyError{Line: lineNo, Reason: "hash mismatch (the event was edited, or the log was keyed with another audit key than this data directory's)"}
			}
			return rep, &VerifyError{Line: lineNo, Reason: "hash mismatch"}
		}
		if e.Prev != prev {
			if prevLine == 0 {
				return rep, &VerifyError{Line: lineNo, Reason: "prev set on the first event (lines before it were removed)"}
			}
			if e.Prev == "" {
				return rep, &VerifyError{Line: lineNo, Reason: fmt.Sprintf("prev missing, line %d comes before it", prevLine)}
			}
			return rep, &VerifyError{Line: lineNo, Reason: fmt.Sprintf("prev does not match line %d", prevLine)}
		}
		if e.Seq != 0 && e.Seq != n {
			return rep, &VerifyError{Line: lineNo, Reason: fmt.Sprintf("seq %d, but it is event %d of the file: events before it were removed or inserted", e.Seq, n)}
		}
		if n == opt.Head.Seq {
			if e.Hash != opt.Head.Hash {
				return rep, &VerifyError{Line: lineNo, Err: ErrRewritten, Reason: fmt.Sprintf(
					"event %d is not the one the store's head records (hash %s, the file has %s): the log was rewritten", n, opt.Head.Hash, e.Hash)}
			}
			rep.HeadMatched = true
		}
		if e.Type == LogTampered {
			return rep, tamperedEvent(lineNo, e)
		}
		if e.Seq == 0 {
			rep.Legacy++
		}
		rep.Events++
		if rep.HeadMatched && n > opt.Head.Seq {
			rep.AfterHead++
		}
		prev, prevLine = e.Hash, lineNo
		rep.Last = Head{Seq: n, Hash: e.Hash}
	}
	if torn != nil {
		if err := cut(); err != nil {
			return rep, err
		}
		return rep, &VerifyError{Line: tornStart, Reason: describeBad(torn[0])}
	}
	return rep, cut()
}

// tamperedEvent reports a log.tampered event, which the Log wrote when it
// found the file behind a head or rewritten (at Open, or at a write).
func tamperedEvent(line int, e Event) *VerifyError {
	reason, _ := e.Detail["reason"].(string)
	if reason == "" {
		reason = "the file did not match the store's head"
	}
	ve := &VerifyError{Line: line, Reason: "log.tampered: bastion found " + reason}
	switch e.Detail["kind"] {
	case "truncated":
		ve.Err = ErrTruncated
	case "rewritten":
		ve.Err = ErrRewritten
	}
	return ve
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
