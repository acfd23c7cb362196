package audit

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash"
)

// keyInfo separates the audit key from every other use of the secret it is
// derived from (RFC 5869 section 3.2: the info string binds a derived key
// to its purpose), so an audit MAC can never stand for a recording
// signature or the other way round.
const keyInfo = "bastion audit chain v1"

// KeySize is the length of an audit key.
const KeySize = 32

// DeriveKey derives the audit key from secret with HKDF-SHA256. bastion
// derives it from the recording key's seed, which sits 0600 in the data
// directory where agents cannot read it: one secret to keep and back up,
// and a data directory made before the chain was keyed needs no new file.
func DeriveKey(secret []byte) ([]byte, error) {
	if len(secret) < 16 {
		return nil, errors.New("audit: derive key: the secret is too short (want 16 bytes or more)")
	}
	return hkdf.Key(sha256.New, secret, nil, keyInfo, KeySize)
}

// chain hashes events: under a key, each hash is an HMAC-SHA256; without,
// a plain SHA-256 (legacy). The HMAC is made once and Reset for each event,
// which restores the keyed inner and outer states it precomputed, so a
// keyed hash costs about what a SHA-256 does. A chain is not safe for
// concurrent use: the Log's mu guards its own.
type chain struct {
	mac hash.Hash // nil: legacy
	// out receives the digests that go through the hash.Hash interface:
	// a slice of a local array passed there would escape, one allocation
	// per event.
	out [sha256.Size]byte
}

func newChain(key []byte) *chain {
	if key == nil {
		return &chain{}
	}
	return &chain{mac: hmac.New(sha256.New, key)}
}

func (c *chain) keyed() bool { return c.mac != nil }

// sum returns the hash of b followed by tail.
func (c *chain) sum(b []byte, tail string) [sha256.Size]byte {
	if c.mac == nil && tail == "" {
		return sha256.Sum256(b)
	}
	h := c.mac
	if h == nil {
		h = sha256.New()
	} else {
		h.Reset()
	}
	h.Write(b)
	if tail != "" {
		h.Write([]byte(tail))
	}
	h.Sum(c.out[:0])
	return c.out
}

// hashSuffixLen is len(`,"hash":"` + 64 hex digits + `"}`).
const hashSuffixLen = 9 + 64 + 2

// appendLine appends e's line (with a trailing newline) chained to prev to
// dst, and returns its hash; on error, dst as it was. e.Seq is hashed as
// the caller set it. The hash covers the JSON encoding of e without Hash;
// the line is that encoding with `,"hash":"<hex>"` inserted before the
// final brace (Hash is the last field of Event, so this is also its JSON
// encoding).
func (c *chain) appendLine(dst []byte, e Event, prev string) ([]byte, string, error) {
	e.Time = e.Time.UTC()
	e.Prev, e.Hash = prev, ""
	n := len(dst)
	b, ok := appendEvent(dst, &e)
	if !ok { // something appendEvent leaves to encoding/json, errors included
		j, err := json.Marshal(e)
		if err != nil {
			return dst, "", err
		}
		b = append(b[:n], j...)
	}
	sum := c.sum(b[n:], "")
	b = append(b[:len(b)-1], `,"hash":"`...)
	b = hex.AppendEncode(b, sum[:])
	hash := string(b[len(b)-len(sum)*2:])
	return append(b, "\"}\n"...), hash, nil
}

// lineHash recomputes the hash of a line (without its newline) and returns
// it with the hash the line claims. ok is false when the line does not end
// with a well-formed hash field.
func (c *chain) lineHash(line []byte) (computed, claimed string, ok bool) {
	body, claimed, ok := splitHash(line)
	if !ok {
		return "", "", false
	}
	sum := c.sum(body, "}")
	return hex.EncodeToString(sum[:]), claimed, true
}

// splitHash returns a line's encoding before its hash field and the hash
// it claims; ok is false when the line does not end with a well-formed
// hash field.
func splitHash(line []byte) (body []byte, claimed string, ok bool) {
	n := len(line)
	if n < hashSuffixLen+2 || string(line[n-hashSuffixLen:n-hashSuffixLen+9]) != `,"hash":"` || string(line[n-2:]) != `"}` {
		return nil, "", false
	}
	claimed = string(line[n-hashSuffixLen+9 : n-2])
	if !isHex64(claimed) {
		return nil, "", false
	}
	return line[:n-hashSuffixLen], claimed, true
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// parseEvent decodes a line that looks like a complete event: valid JSON,
// an Event, with a well-formed hash field at the end. Whether the hash is
// right is for Verify to say.
func parseEvent(line []byte) (Event, bool) {
	var e Event
	if _, _, ok := splitHash(line); !ok {
		return e, false
	}
	if json.Unmarshal(line, &e) != nil || e.Hash == "" {
		return e, false
	}
	return e, true
}
