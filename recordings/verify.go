package recordings

import (
	"crypto"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrNotSealed marks a recording without a seal: the session (or bastion)
// ended abnormally, or the recording is still being written. It is not
// tampering, but nothing after the last checkpoint is vouched for.
var ErrNotSealed = errors.New("not sealed")

// Report is what Verify found.
type Report struct {
	Header Header
	Lines  int // complete lines, header included
	Events int
	// Commands counts command markers.
	Commands int
	// Checkpoints counts the checkpoints (seal included) that matched.
	Checkpoints int
	// Checked is the last line vouched for by a matching checkpoint or the
	// seal: lines 1..Checked are exactly as written.
	Checked int
	Sealed  bool
	// Signed says the seal (or, unsealed, the last checkpoint) carries a
	// signature; SignatureChecked that it was verified with the key given.
	Signed           bool
	SignatureChecked bool
	// Truncated says the last line was cut off mid-write (a crash).
	Truncated bool
	// SHA256 is the hex chain over every complete line: for a sealed
	// recording, what Writer.Sealed gave the store to keep.
	SHA256 string
	// Index is the command index the recording's own markers give: what
	// the index file and the store's copy of it must agree with.
	Index []Entry
}

// TamperError says where a recording differs from what was written.
type TamperError struct {
	Line   int    // the line where the difference shows
	Reason string // what is wrong, naming the lines it concerns
}

func (e *TamperError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Reason) }

// UnsealedError reports a recording without a seal and how far it holds.
type UnsealedError struct {
	ValidUpTo int  // last complete line; all lines up to it are well-formed
	Checked   int  // last line vouched for by a checkpoint (0: none)
	Truncated bool // line ValidUpTo+1 was cut off mid-write
}

func (e *UnsealedError) Error() string {
	s := fmt.Sprintf("not sealed: session ended abnormally; valid up to line %d", e.ValidUpTo)
	switch {
	case e.Checked == 0:
		s += " (no checkpoint: the content is not vouched for)"
	case e.Checked < e.ValidUpTo:
		s += fmt.Sprintf(" (vouched for by a checkpoint up to line %d)", e.Checked)
	}
	if e.Truncated {
		s += fmt.Sprintf("; line %d was cut off mid-write", e.ValidUpTo+1)
	}
	return s
}

func (e *UnsealedError) Is(target error) bool { return target == ErrNotSealed }

// Verify reads a whole recording and checks it: every line well-formed,
// times never going backwards, every checkpoint and the seal matching the
// chain over the lines before it, and, when pub is non-nil (an
// ed25519.PublicKey), every checkpoint and the seal signed by it. An edit
// is named by the checkpoint after it, with the range of lines it must lie
// in and whether lines were added or removed; a reordering is usually named
// exactly, by the time going backwards.
//
// A recording without a seal returns an *UnsealedError (errors.Is
// ErrNotSealed) if nothing else is wrong; tampering returns a
// *TamperError; a malformed header a *FormatError.
func Verify(r io.Reader, pub crypto.PublicKey) (Report, error) {
	var rep Report
	var key ed25519.PublicKey
	if pub != nil {
		k, ok := pub.(ed25519.PublicKey)
		if !ok {
			return rep, fmt.Errorf("recordings: verify: public key is %T, want ed25519", pub)
		}
		key = k
	}
	rd, err := Open(r)
	if err != nil {
		if err == io.ErrUnexpectedEOF {
			return rep, &UnsealedError{Truncated: true}
		}
		return rep, err
	}
	rep.Header, rep.Lines = rd.Header(), 1
	chain := chainNext([32]byte{}, true, rd.raw)
	var (
		prevTime float64
		prevLine = 1
		lastCP   int // line of the last matching checkpoint
		signed   bool
	)
	for {
		e, err := rd.Next()
		if err == io.EOF {
			break
		}
		var fe *FormatError
		isFormat := errors.As(err, &fe)
		if err != nil && err != io.ErrUnexpectedEOF && !isFormat {
			return rep, fmt.Errorf("recordings: verify: %w", err)
		}
		if rep.Sealed {
			return rep, &TamperError{Line: rd.Line(), Reason: "data after the seal"}
		}
		if err == io.ErrUnexpectedEOF {
			rep.Truncated = true
			break
		}
		if isFormat {
			return rep, &TamperError{Line: fe.Line, Reason: fe.Msg}
		}
		line := rd.Line()
		if e.Time < prevTime {
			return rep, &TamperError{Line: line, Reason: fmt.Sprintf("time %.6f is before line %d's %.6f: lines reordered or inserted", e.Time, prevLine, prevTime)}
		}
		prevTime, prevLine = e.Time, line
		if e.Type == CodeMarker {
			m, isOurs, reason := parseMarker(e.Data)
			if reason != "" {
				return rep, &TamperError{Line: line, Reason: reason}
			}
			if isOurs && m.Type != markEnd {
				if reason := checkCheckpoint(m, line, lastCP, chain, key); reason != "" {
					return rep, &TamperError{Line: line, Reason: reason}
				}
				lastCP, signed = line, m.Sig != ""
				rep.Checkpoints++
				rep.Sealed = m.Type == markSeal
			}
			if isOurs {
				indexMarker(&rep.Index, m, e.Time, line)
			}
			if isOurs && m.Type == markCommand {
				rep.Commands++
			}
		}
		chain = chainNext(chain, false, rd.raw)
		rep.Lines++
		rep.Events++
	}
	rep.Signed, rep.SignatureChecked = signed, signed && key != nil
	rep.SHA256 = hex.EncodeToString(chain[:])
	if rep.Sealed {
		rep.Checked = rep.Lines
		return rep, nil
	}
	if lastCP > 0 {
		rep.Checked = lastCP - 1
	}
	return rep, &UnsealedError{ValidUpTo: rep.Lines, Checked: rep.Checked, Truncated: rep.Truncated}
}

// indexMarker adds what a command or exit marker at line says to index.
func indexMarker(index *[]Entry, m marker, t float64, line int) {
	switch m.Type {
	case markCommand:
		*index = append(*index, Entry{N: m.N, Offset: t, Line: line, Cmd: m.Cmd, Decision: m.Decision, Rule: m.Rule})
	case markExit:
		for i := len(*index) - 1; i >= 0; i-- {
			if e := &(*index)[i]; e.N == m.N && e.Exit == nil {
				e.Exit = m.Exit
				if m.Duration != nil {
					e.Duration = *m.Duration
				}
				return
			}
		}
	}
}

// parseMarker decodes a marker label. isOurs says it is one of bastion's
// own markers; reason is non-empty when it claims to be one but is
// malformed (a seal with its fields stripped is tampering, not a note).
func parseMarker(label string) (m marker, isOurs bool, reason string) {
	if len(label) == 0 || label[0] != '{' {
		return m, false, ""
	}
	if json.Unmarshal([]byte(label), &m) != nil {
		return m, false, ""
	}
	switch m.Type {
	case markEnd:
		return m, true, ""
	case markCommand, markExit, markSeal:
		if m.Lines < 1 || len(m.SHA256) != 64 {
			return m, true, fmt.Sprintf("%s marker without a valid checkpoint", m.Type)
		}
		return m, true, ""
	}
	return m, false, ""
}

// checkCheckpoint compares a checkpoint at line with the chain over the
// lines before it; lastCP is the line of the previous good checkpoint.
func checkCheckpoint(m marker, line, lastCP int, chain [32]byte, key ed25519.PublicKey) string {
	from := max(lastCP, 1)
	if found := line - 1; m.Lines != found {
		if d := found - m.Lines; d > 0 {
			return fmt.Sprintf("%s checkpoint covers %d lines but %d precede it: %d line(s) inserted in lines %d-%d", m.Type, m.Lines, found, d, from, line-1)
		}
		return fmt.Sprintf("%s checkpoint covers %d lines but %d precede it: %d line(s) deleted after line %d", m.Type, m.Lines, found, m.Lines-found, from)
	}
	if m.SHA256 != hex.EncodeToString(chain[:]) {
		return fmt.Sprintf("%s checkpoint does not match: a line in lines %d-%d was edited or replaced", m.Type, from, line)
	}
	if key == nil {
		return ""
	}
	if m.Sig == "" {
		return fmt.Sprintf("%s is not signed, but a key was given (signature removed?)", m.Type)
	}
	sig, err := base64.StdEncoding.DecodeString(m.Sig)
	if err != nil || !ed25519.Verify(key, signedMessage(m.Type, m.Lines, m.SHA256), sig) {
		return fmt.Sprintf("bad signature on the %s", m.Type)
	}
	return ""
}

// VerifyFile is Verify on a file.
func VerifyFile(path string, pub crypto.PublicKey) (Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return Report{}, err
	}
	defer f.Close()
	return Verify(f, pub)
}
