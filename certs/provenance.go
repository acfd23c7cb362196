package certs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/bastion-dev/bastion/identity"
	"golang.org/x/crypto/ssh"
)

// MaxProvenanceSize bounds the identity@bastion extension.
const MaxProvenanceSize = 4096

// EncodeProvenance validates p and encodes it as the JSON carried in the
// identity@bastion extension.
func EncodeProvenance(p identity.Provenance) ([]byte, error) {
	if err := validateProvenance(p); err != nil {
		return nil, err
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidProvenance, err)
	}
	if len(b) > MaxProvenanceSize {
		return nil, fmt.Errorf("%w: %d bytes encoded, more than %d", ErrInvalidProvenance, len(b), MaxProvenanceSize)
	}
	return b, nil
}

// ParseProvenance decodes the identity@bastion extension of cert. It does
// not verify cert: use it on certificates a [Checker] accepted, or that
// this package just signed.
func ParseProvenance(cert *ssh.Certificate) (identity.Provenance, error) {
	v, ok := cert.Extensions[ExtensionIdentity]
	if !ok {
		return identity.Provenance{}, fmt.Errorf("%w: certificate has no %s extension", ErrInvalidProvenance, ExtensionIdentity)
	}
	return DecodeProvenance([]byte(v))
}

// DecodeProvenance decodes and validates provenance JSON. It is strict:
// the input must be one JSON object of at most MaxProvenanceSize bytes of
// valid UTF-8, with string values, no duplicate keys and no keys other than
// those of identity.Provenance (matched case-sensitively); kind must be
// "agent" or "human", subject must be set, and no field may contain control
// or format characters.
//
// Unknown fields are refused rather than ignored for the same reason
// OpenSSH refuses unknown critical options: a field this version does not
// understand might have been meant to restrict the holder, so ignoring it
// could fail open. Adding a field to the provenance therefore means
// upgrading the checkers before the issuers; both are the same binary and
// certificates live an hour at most.
func DecodeProvenance(b []byte) (identity.Provenance, error) {
	var p identity.Provenance
	if len(b) > MaxProvenanceSize {
		return p, fmt.Errorf("%w: %d bytes, more than %d", ErrInvalidProvenance, len(b), MaxProvenanceSize)
	}
	var kind string
	fields := map[string]*string{
		"kind": &kind, "subject": &p.Subject, "issuer": &p.Issuer,
		"sponsor": &p.Sponsor, "task": &p.Task, "role": &p.Role,
	}
	if err := decodeFlatObject(b, fields); err != nil {
		return identity.Provenance{}, fmt.Errorf("%w: %v", ErrInvalidProvenance, err)
	}
	p.Kind = identity.Kind(kind)
	if err := validateProvenance(p); err != nil {
		return identity.Provenance{}, err
	}
	return p, nil
}

func validateProvenance(p identity.Provenance) error {
	if p.Kind != identity.KindAgent && p.Kind != identity.KindHuman {
		return fmt.Errorf("%w: kind %q is not agent or human", ErrInvalidProvenance, p.Kind)
	}
	if p.Subject == "" {
		return fmt.Errorf("%w: empty subject", ErrInvalidProvenance)
	}
	for name, v := range map[string]string{"subject": p.Subject, "issuer": p.Issuer, "sponsor": p.Sponsor, "task": p.Task, "role": p.Role} {
		if !utf8.ValidString(v) || hasUnsafeRune(v) {
			return fmt.Errorf("%w: %s %q contains control or invalid characters", ErrInvalidProvenance, name, v)
		}
	}
	return nil
}

// decodeFlatObject decodes b, which must be exactly one JSON object whose
// members are all strings, into fields. It refuses invalid UTF-8, unknown
// or duplicate keys, non-string values and trailing data; encoding/json
// alone would accept duplicates (last wins), match keys case-insensitively
// and replace invalid UTF-8, each a way for two readers to disagree.
func decodeFlatObject(b []byte, fields map[string]*string) error {
	if !utf8.Valid(b) {
		return errors.New("not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil {
		return err
	} else if t != json.Delim('{') {
		return errors.New("not a JSON object")
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := t.(string)
		dst, known := fields[key]
		if !known {
			return fmt.Errorf("unknown field %q", key)
		}
		if seen[key] {
			return fmt.Errorf("duplicate field %q", key)
		}
		seen[key] = true
		t, err = dec.Token()
		if err != nil {
			return err
		}
		v, ok := t.(string)
		if !ok {
			return fmt.Errorf("field %q must be a string", key)
		}
		*dst = v
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON object")
	}
	return nil
}

// isUnsafeRune reports characters that could forge or hide text in logs,
// terminals and key ids: controls (C0, DEL, C1), format characters such as
// bidi overrides and zero-width joiners, line and paragraph separators,
// and the replacement character that stands for invalid UTF-8.
func isUnsafeRune(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) || r == utf8.RuneError
}

func hasUnsafeRune(s string) bool { return strings.IndexFunc(s, isUnsafeRune) >= 0 }
