package masking

import (
	"bytes"
	"encoding/base64"
)

// A private key's body is a secret without its header line: `sed 1d`,
// `tail -n +2` or `grep -v PRIVATE` print a PEM key's base64 without the
// "-----BEGIN ... PRIVATE KEY-----" that pemBegin looks for. keyBody finds
// such a body at the start of a line by what it encodes:
//
//   - OpenSSH keys: base64 of "openssh-key-v1\x00", b3BlbnNzaC1rZXktdjE,
//     a format only private keys use;
//   - DER private keys: PKCS#1 RSA and DSA (SEQUENCE { INTEGER 0, INTEGER
//     ...}), SEC1 EC (SEQUENCE { INTEGER 1, OCTET STRING }), PKCS#8 and
//     its version 2 (SEQUENCE { INTEGER 0|1, SEQUENCE { OID ... } }) and
//     encrypted PKCS#8 (SEQUENCE { SEQUENCE { OID of PBES1, PBES2 or a
//     PKCS#12 PBE } }).
//
// The structure is read from the first line's decoded bytes, so the
// public DER a PEM body more often holds (a certificate: SEQUENCE {
// SEQUENCE { [0] version ...} }, a public key, a CSR) and base64 of other
// data stay as they are. The block is the first line and the base64 lines
// of the same width that follow it, up to a shorter line; the footer, if
// any, stays. A body printed from its second line on (`sed 1,2d`) is not
// recognised.

// openSSHMagic is base64 of "openssh-key-v1\x00" without its last, shared
// character.
const openSSHMagic = "b3BlbnNzaC1rZXktdjE"

// keyBody checks for a key body at i, the first character of a line or of
// a quoted string.
func (s *scanner) keyBody(i int) {
	t := s.t
	if !s.lineStart(i) {
		return
	}
	if t[i] == 'b' {
		ok, partial := s.hasPrefixAt(i, openSSHMagic)
		if partial {
			s.more(i)
		}
		if !ok {
			return
		}
	} else {
		// base64 of SEQUENCE (0x30) and a length byte: M, then A-I.
		switch c := s.at(i + 1); {
		case c == 0:
			if !s.final {
				s.more(i)
			}
			return
		case c < 'A' || c > 'I':
			return
		}
	}
	end, ok := s.span(i, cB64, 1<<16)
	if !ok {
		s.more(i)
		return
	}
	width := end - i
	if t[i] == 'M' {
		if width < 44 || s.publicHeader(i) {
			return
		}
		head := t[i : i+min(width, 64)/4*4]
		var dec [48]byte
		n, err := base64.StdEncoding.Decode(dec[:], head)
		if err != nil && n < 32 || !derPrivateKey(dec[:n]) {
			return
		}
	}
	// Continuation lines of the same width; the last may be shorter.
	for width >= 60 && t[end-1] != '=' {
		j := end
		if j < len(t) && t[j] == '\r' {
			j++
		}
		if j >= len(t) {
			if !s.final {
				s.more(i)
				return
			}
			break
		}
		if t[j] != '\n' {
			break
		}
		j++
		for j < len(t) && j-end < 64 && (t[j] == ' ' || t[j] == '\t') {
			j++ // an indented block (YAML)
		}
		e, ok := s.span(j, cB64, 76)
		if !ok {
			s.more(i)
			return
		}
		n := e - j
		if n == 0 || n > 76 || e < len(t) && t[e] != '\r' && t[e] != '\n' {
			break
		}
		end = e
		if n < width {
			break
		}
	}
	s.add(i, end, kPrivateKey)
}

// publicHeader reports whether the line before the one at i is the header
// of a PEM block that is not a private key (the body of a certificate).
func (s *scanner) publicHeader(i int) bool {
	t := s.t
	j := i
	for j > 0 && t[j-1] != '\n' {
		j--
	}
	if j == 0 {
		return false
	}
	e := j - 1
	if e > 0 && t[e-1] == '\r' {
		e--
	}
	k := e
	for k > 0 && t[k-1] != '\n' && e-k < 80 {
		k--
	}
	line := t[k:e]
	return bytes.HasPrefix(line, []byte("-----BEGIN ")) && !bytes.Contains(line, []byte("PRIVATE"))
}

// lineStart reports whether t[i] starts a line, after blanks, or a quoted
// string.
func (s *scanner) lineStart(i int) bool {
	j := i
	for j > 0 && (s.t[j-1] == ' ' || s.t[j-1] == '\t') {
		j--
	}
	return j == 0 || s.t[j-1] == '\n' || j == i && s.t[j-1] == '"'
}

// derPrivateKey reports whether b begins the DER encoding of a private
// key (see keyBody).
func derPrivateKey(b []byte) bool {
	p, ok := derHeader(b, 0, 0x30)
	if !ok || p >= len(b) {
		return false
	}
	switch b[p] {
	case 0x02: // a version: PKCS#1, SEC1, PKCS#8
		if p+4 > len(b) || b[p+1] != 1 {
			return false
		}
		v, next := b[p+2], b[p+3]
		switch {
		case v == 0 && next == 0x02:
			return true // RSAPrivateKey, DSA
		case v == 1 && next == 0x04:
			return true // ECPrivateKey
		case v <= 1 && next == 0x30:
			q, ok := derHeader(b, p+3, 0x30)
			return ok && q < len(b) && b[q] == 0x06 // AlgorithmIdentifier
		}
	case 0x30: // EncryptedPrivateKeyInfo: an encryption algorithm first
		q, ok := derHeader(b, p, 0x30)
		if !ok || q+2 > len(b) || b[q] != 0x06 {
			return false
		}
		oid := b[q+2:]
		for _, arc := range [...][]byte{
			{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05},       // PKCS#5: PBES1, PBES2
			{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x01}, // PKCS#12 PBE
		} {
			if bytes.HasPrefix(oid, arc) {
				return true
			}
		}
	}
	return false
}

// derHeader reads the tag and length at b[p] and returns the index of the
// contents. Lengths are checked for form only: b is the start of a value.
func derHeader(b []byte, p int, tag byte) (int, bool) {
	if p+2 > len(b) || b[p] != tag {
		return 0, false
	}
	l := b[p+1]
	switch {
	case l < 0x80:
		return p + 2, true
	case l >= 0x81 && l <= 0x83:
		n := int(l & 0x7f)
		if p+2+n > len(b) || b[p+2] == 0 && l > 0x81 || l == 0x81 && b[p+2] < 0x80 {
			return 0, false // not the shortest form, as DER requires
		}
		return p + 2 + n, true
	}
	return 0, false
}
