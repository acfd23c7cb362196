// Package recordings writes, reads, verifies, lists and plays bastion's
// session recordings: asciicast v2 files (one per session) whose lines are
// chained by SHA-256 and sealed, optionally signed, when the session ends.
//
// # File format
//
// A recording is an asciicast v2 file
// (https://docs.asciinema.org/manual/asciicast/v2/): a JSON header line with
// the asciicast fields and a "bastion" object (Meta), then one
// [time, code, data] event per line. Times are seconds since the start with
// microsecond precision. bastion writes these codes:
//
//	"o"   output (masked by the caller before it gets here)
//	"i"   input
//	"r"   resize, "COLSxROWS"
//	"m"   marker; bastion's own markers carry a compact JSON label:
//	      {"type":"command","n":1,"cmd":"ls","decision":"allow","rule":"r1",...}
//	      {"type":"exit","n":1,"exit":0,"duration":0.5,...}
//	      {"type":"end","exit":0,"commands":3}
//	      {"type":"seal","lines":41,"sha256":"...","sig":"..."}
//	"ob", "ib"  the exact bytes (standard base64) of the "o" or "i" event
//	      that follows, written only when those bytes are not valid UTF-8.
//
// asciicast strings must be UTF-8, so an "o" event shows each invalid byte
// as U+FFFD, which is what a terminal shows too; the "ob" event before it
// keeps the bytes exact for forensics and for Play. The spec asks players
// to ignore codes they do not know, and asciinema 2.x and the web player
// do. A UTF-8 sequence split across two writes is held back until it is
// complete, so it is never mangled.
//
// # Integrity
//
// The writer keeps a running hash over the lines it writes, h1 =
// SHA-256(line1) and hi = SHA-256(h(i-1) || linei), lines without their
// newline. Command, exit and seal markers carry a checkpoint: "lines" (how
// many lines come before the marker) and "sha256" (the chain over them),
// and "sig" when the Writer has a Signer: an ed25519 signature over
// "bastion-recording-v1 <type> lines=<n> sha256=<hex>". Close writes the
// seal as the final marker. The seal sits inside the file rather than in a
// sidecar so that a recording exported or copied alone still carries its
// proof, and an asciicast player simply sees one more marker. Checkpoints
// let Verify say where the tampering is (between which two checkpoints,
// and whether lines were added or removed), and let a recording cut short
// by a crash be verified, and authenticated when signed, up to its last
// command boundary.
package recordings

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/bastion-dev/bastion/identity"
)

// Event codes, as they appear in the second element of an event line.
const (
	CodeOutput      = "o"
	CodeInput       = "i"
	CodeResize      = "r"
	CodeMarker      = "m"
	CodeOutputBytes = "ob"
	CodeInputBytes  = "ib"
)

// Meta is bastion's part of the header: who ran the session and where.
type Meta struct {
	SessionID  string              `json:"session_id"`
	Identity   identity.Provenance `json:"identity"`
	CertSerial uint64              `json:"cert_serial,omitempty,string"` // a string: JSON numbers lose precision past 2^53
	KeyID      string              `json:"key_id,omitempty"`
	Principal  string              `json:"principal,omitempty"`
	Source     string              `json:"source,omitempty"`
	Target     string              `json:"target,omitempty"`
	Reason     string              `json:"reason,omitempty"`
}

// Header is a recording's first line. Zero Width or Height mean 80x24;
// a zero Timestamp means the Writer's clock at Create.
type Header struct {
	Width     int               `json:"width"`
	Height    int               `json:"height"`
	Timestamp int64             `json:"timestamp"`
	Command   string            `json:"command,omitempty"`
	Title     string            `json:"title,omitempty"`
	Env       map[string]string `json:"env,omitempty"`
	Bastion   Meta              `json:"bastion"`
}

// headerLine is the header as written: asciicast's version first.
type headerLine struct {
	Version int `json:"version"`
	Header
}

// Path returns where the recording of session id lives in dir. The id must
// be a plain name (letters, digits, '.', '-', '_'), so a user-supplied id
// cannot point outside dir.
func Path(dir, id string) (string, error) {
	if err := checkID(id); err != nil {
		return "", err
	}
	return filepath.Join(dir, id+".cast"), nil
}

func indexPath(dir, id string) string { return filepath.Join(dir, id+".index.json") }

func checkID(id string) error {
	if id == "" {
		return errors.New("recordings: empty session id")
	}
	if len(id) > 200 || id[0] == '.' {
		return fmt.Errorf("recordings: invalid session id %q", id)
	}
	for _, c := range id {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
			return fmt.Errorf("recordings: invalid session id %q", id)
		}
	}
	return nil
}

// Resolve turns a user's argument into a recording's path: a path to an
// existing file (it contains a slash or ends in .cast) is used as is,
// anything else is taken as a session id in dir.
func Resolve(dir, arg string) (string, error) {
	if strings.ContainsRune(arg, filepath.Separator) || strings.HasSuffix(arg, ".cast") {
		if _, err := os.Stat(arg); err == nil {
			return arg, nil
		}
	}
	p, err := Path(dir, arg)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("recordings: no recording %q in %s", arg, dir)
	}
	return p, nil
}
