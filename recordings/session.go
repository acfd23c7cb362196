package recordings

import (
	"crypto"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"
)

// Seal is a sealed recording as bastion's store keeps it: its number of
// lines, the seal's included, and the chain over all of them. A recording
// that was sealed must stay sealed: found without its seal, it was cut.
type Seal struct {
	Lines  int
	SHA256 string
}

// Sealed returns the recording's seal once Close has written it and made
// it durable, for the store to keep; ok is false before, or when Close
// could not seal.
func (w *Writer) Sealed() (s Seal, ok bool) {
	if w == nil {
		return Seal{}, false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.sealed {
		return Seal{}, false
	}
	return Seal{Lines: w.lines, SHA256: hex.EncodeToString(w.chain[:])}, true
}

// Known is what bastion recorded about a session apart from its recording,
// which the recording must agree with. The zero value knows nothing.
type Known struct {
	// Seal is the seal the store recorded when the session ended; nil
	// when it has none (the session is live, ended abnormally, or ran
	// before the store kept seals).
	Seal *Seal
	// Index is the store's command index of the session; nil when the
	// store has no row for the session, so nothing to compare.
	Index []Entry
}

// IndexError says where a command index (the store's copy, or the index
// file next to the recording) disagrees with the recording's markers.
type IndexError struct {
	Source string // "the store's command index" or "the index file"
	N      int    // the command concerned
	Reason string
}

func (e *IndexError) Error() string {
	return fmt.Sprintf("command %d: %s disagrees with the recording: %s", e.N, e.Source, e.Reason)
}

// Index sources, as IndexError names them.
const (
	sourceStore = "the store's command index"
	sourceFile  = "the index file"
)

// VerifySession is VerifyFile held to what else bastion knows of the
// session: a recording the store or its index file knows as sealed that
// has no seal was cut short, and one whose lines differ from the seal the
// store kept was replaced (both *TamperError, not an *UnsealedError); and
// every command of the store's index and of the index file (next to the
// recording, when there is one) must be a command marker of the recording
// with the same text, decision, rule, place and exit code, and every
// command marker must be in them (*IndexError). An index may lack only
// the last commands of a recording it was not completed for: a live or
// crashed session, whose index file is rewritten at each command's end
// and whose store row is written just after the command's marker.
func VerifySession(path string, pub crypto.PublicKey, known Known) (Report, error) {
	rep, err := VerifyFile(path, pub)
	if err != nil && !errors.Is(err, ErrNotSealed) {
		return rep, err
	}
	id := rep.Header.Bastion.SessionID
	ix, ixErr := readIndex(indexPath(filepath.Dir(path), id))
	switch {
	case errors.Is(ixErr, fs.ErrNotExist):
	case ixErr != nil:
		return rep, &IndexError{Source: sourceFile, Reason: ixErr.Error()}
	case ix.SessionID != id:
		return rep, &IndexError{Source: sourceFile, Reason: fmt.Sprintf("it is the index of session %q", ix.SessionID)}
	}
	haveIx := ixErr == nil
	if cut := cutShort(rep, err, known, ix, haveIx); cut != nil {
		return rep, cut
	}
	if known.Seal != nil && (rep.Lines != known.Seal.Lines || rep.SHA256 != known.Seal.SHA256) {
		return rep, &TamperError{Line: min(rep.Lines, known.Seal.Lines), Reason: fmt.Sprintf(
			"the recording is not the one the store recorded sealed when its session ended (%d lines, sha256 %s; the file has %d lines, sha256 %s): it was replaced",
			known.Seal.Lines, known.Seal.SHA256, rep.Lines, rep.SHA256)}
	}
	if known.Index != nil {
		if ierr := compareIndex(rep.Index, known.Index, sourceStore, rep.Sealed); ierr != nil {
			return rep, ierr
		}
	}
	if haveIx {
		if ierr := compareIndex(rep.Index, ix.Commands, sourceFile, ix.Ended != nil); ierr != nil {
			return rep, ierr
		}
	}
	return rep, err
}

// cutShort reports a recording without a seal that the store, or its own
// index file, knows was sealed.
func cutShort(rep Report, err error, known Known, ix Index, haveIx bool) error {
	if !errors.Is(err, ErrNotSealed) {
		return nil
	}
	var by string
	switch {
	case known.Seal != nil:
		by = fmt.Sprintf("the store recorded it sealed with %d lines when its session ended", known.Seal.Lines)
	case haveIx && ix.Ended != nil:
		by = "its index file says the session ended and the recording was sealed"
	default:
		return nil
	}
	return &TamperError{Line: rep.Lines + 1, Reason: fmt.Sprintf("sealed recording cut short: %s, but the file ends after line %d without its seal", by, rep.Lines)}
}

// compareIndex compares an index with the one the recording's markers
// give. complete says the index was written for the whole recording;
// otherwise it may lack the recording's last commands.
func compareIndex(content, index []Entry, source string, complete bool) error {
	byN := make(map[int]Entry, len(content))
	for _, e := range content {
		byN[e.N] = e
	}
	seen := make(map[int]bool, len(index))
	last := 0 // the highest command of the index
	for _, x := range index {
		if seen[x.N] {
			return &IndexError{Source: source, N: x.N, Reason: "it lists the command twice"}
		}
		seen[x.N] = true
		last = max(last, x.N)
		m, ok := byN[x.N]
		if !ok {
			return &IndexError{Source: source, N: x.N, Reason: fmt.Sprintf("it lists %s, which has no marker in the recording", describe(x))}
		}
		if reason := differ(m, x); reason != "" {
			return &IndexError{Source: source, N: x.N, Reason: reason}
		}
	}
	for _, m := range content {
		if seen[m.N] || !complete && m.N > last {
			continue
		}
		return &IndexError{Source: source, N: m.N, Reason: fmt.Sprintf(
			"the recording has %s at line %d, which it does not list (if the store failed during the session, the audit log has a store.failed event; bastion recordings reindex rebuilds the store's index from the recording)",
			describe(m), m.Line)}
	}
	return nil
}

// differ names what an index entry x says differently from the marker m.
func differ(m, x Entry) string {
	switch {
	case x.Cmd != m.Cmd:
		return fmt.Sprintf("it says the command was %q, the recording's marker at line %d says %q", x.Cmd, m.Line, m.Cmd)
	case x.Decision != m.Decision:
		return fmt.Sprintf("it says %q was decided %s, the recording says %s", m.Cmd, x.Decision, m.Decision)
	case x.Rule != m.Rule:
		return fmt.Sprintf("it says %q was decided by rule %q, the recording says %q", m.Cmd, x.Rule, m.Rule)
	case x.Line != m.Line:
		return fmt.Sprintf("it puts %q at line %d, the recording's marker is at line %d", m.Cmd, x.Line, m.Line)
	case math.Abs(x.Offset-m.Offset) > 1e-6:
		return fmt.Sprintf("it puts %q at %.6fs, the recording at %.6fs", m.Cmd, x.Offset, m.Offset)
	case x.Exit != nil && m.Exit != nil && *x.Exit != *m.Exit:
		return fmt.Sprintf("it says %q exited %d, the recording says %d", m.Cmd, *x.Exit, *m.Exit)
	case x.Exit != nil && m.Exit == nil:
		return fmt.Sprintf("it says %q exited %d, the recording has no exit for it", m.Cmd, *x.Exit)
	}
	return ""
}

func describe(e Entry) string {
	return fmt.Sprintf("command %q (%s)", e.Cmd, e.Decision)
}
