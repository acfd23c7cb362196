package masking

import (
	"bytes"
	"encoding/base64"
)

// Private key blocks (RFC 7468 textual encoding; OpenSSH's
// "-----BEGIN OPENSSH PRIVATE KEY-----"; OpenPGP's "PRIVATE KEY BLOCK").
//
// A block is masked whole: the header starts masking, everything up to the
// matching footer is swallowed, and one "[MASKED:private-key]" is written in
// its place. If the footer never comes, masking lasts until the stream is
// closed (fail closed).

const pemLabelMax = 40

// pemBegin checks for a private key header at i. It sets s.pemAt and
// s.pemEnd when one is found and followed by what looks like key material,
// so that a header quoted in source code or documentation ("-----BEGIN RSA
// PRIVATE KEY-----" followed by a quote) does not swallow the rest of the
// output.
func (s *scanner) pemBegin(i int) {
	t := s.t
	if s.final && !s.eof && len(t)-i < len("-----BEGIN ") && len(t)-i >= len("-----B") &&
		string(t[i:]) == "-----BEGIN "[:len(t)-i] {
		// A header cut by a pause: keep it past Flush, or the key
		// that follows would pass unrecognised.
		s.more(i)
		return
	}
	if s.pause && len(t)-i < len("-----B") && string(t[i:]) == "-----BEGIN "[:len(t)-i] {
		// A pause after a few dashes ("-- INSERT --", a "----" rule):
		// held, they would stall the screen until the next byte. Released,
		// a key that follows is still masked: its body lines are secrets
		// on their own (keybody.go).
		return
	}
	ok, partial := s.hasPrefixAt(i, "-----BEGIN ")
	if partial {
		s.more(i)
	}
	if !ok {
		return
	}
	label, end, st := s.pemLabel(i + len("-----BEGIN "))
	if st == pemNo && s.final && !s.eof && s.labelCut(i+len("-----BEGIN ")) {
		st = pemMore
	}
	switch st {
	case pemMore:
		s.more(i)
		return
	case pemNo:
		return
	}
	if !privateLabel(label) {
		return
	}
	switch s.keyMaterial(end) {
	case pemMore:
		s.more(i)
	case pemYes:
		// A pause may have shown the header's first dashes (pemBegin
		// releases fewer than "-----B"): the block is masked from where
		// the output stands.
		s.pemAt, s.pemEnd = max(i, s.from), end
	}
}

const (
	pemNo = iota
	pemYes
	pemMore
)

// pemLabel reads "LABEL-----" at j and returns the label and the index after
// the dashes.
func (s *scanner) pemLabel(j int) (label []byte, end, state int) {
	t := s.t
	k := j
	for k < len(t) && k-j <= pemLabelMax && (is(t[k], cUpper|cDigit) || t[k] == ' ') {
		k++
	}
	if k == len(t) {
		if s.final {
			return nil, 0, pemNo
		}
		return nil, 0, pemMore
	}
	ok, partial := s.hasPrefixAt(k, "-----")
	if partial {
		return nil, 0, pemMore
	}
	if !ok {
		return nil, 0, pemNo
	}
	return t[j:k], k + 5, pemYes
}

// labelCut reports whether t ends inside a header label that starts at j:
// upper-case words, then possibly the first dashes of "-----".
func (s *scanner) labelCut(j int) bool {
	t := s.t
	k := j
	for k < len(t) && k-j <= pemLabelMax && (is(t[k], cUpper|cDigit) || t[k] == ' ') {
		k++
	}
	for k < len(t) && t[k] == '-' {
		k++
	}
	return k == len(t) && k-j <= pemLabelMax+5
}

func privateLabel(l []byte) bool {
	return bytes.HasSuffix(l, []byte("PRIVATE KEY")) || bytes.HasSuffix(l, []byte("PRIVATE KEY BLOCK"))
}

// keyMaterial decides whether the header that ends at j is followed by a
// key: an optional line break (real or escaped as \n inside a JSON string),
// then RFC 1421 headers or at least 16 base64 characters.
func (s *scanner) keyMaterial(j int) int {
	t := s.t
	for j < len(t) {
		switch {
		case t[j] == '\r' || t[j] == '\n' || t[j] == ' ' || t[j] == '\t':
			j++
			continue
		case t[j] == '\\':
			if j+1 == len(t) {
				if s.final {
					return pemYes
				}
				return pemMore
			}
			if t[j+1] == 'n' || t[j+1] == 'r' {
				j += 2
				continue
			}
			return pemNo
		}
		break
	}
	if j == len(t) {
		// Only a line break so far: wait, and if nothing more comes,
		// fail closed.
		if s.final {
			return pemYes
		}
		return pemMore
	}
	for _, h := range [...]string{"Proc-Type:", "Version:", "Comment:"} {
		ok, partial := s.hasPrefixAt(j, h)
		if ok {
			return pemYes
		}
		if partial {
			return pemMore
		}
	}
	k := j
	for k < len(t) && k-j < 16 && is(t[k], cB64) {
		k++
	}
	switch {
	case k-j >= 16:
		return pemYes
	case k == len(t) && s.final:
		return pemYes
	case k == len(t):
		return pemMore
	}
	return pemNo
}

// pemFooter finds the end of a private key block in t[from:]. It returns
// the index just after the footer, or, when none is complete, ok false and
// the index from which t must be kept because a footer may be starting.
func pemFooter(t []byte, from int, final bool) (end int, ok bool) {
	const tag = "-----END "
	i := from
	for {
		j := bytes.Index(t[i:], []byte(tag))
		if j < 0 {
			break
		}
		j += i
		s := scanner{t: t, final: final}
		label, e, st := s.pemLabel(j + len(tag))
		switch st {
		case pemYes:
			if privateLabel(label) {
				return e, true
			}
		case pemMore:
			return j, false
		}
		i = j + 1
	}
	if final {
		return len(t), false
	}
	// Keep what could be the beginning of "-----END ".
	for k := max(from, len(t)-len(tag)+1); k < len(t); k++ {
		if bytes.HasPrefix([]byte(tag), t[k:]) {
			return k, false
		}
	}
	return len(t), false
}

// flag masks the value of a command-line flag given as a separate argument:
// --password hunter2, --token ghp_..., --client-secret x. The "=" form is
// handled with other assignments.
func (s *scanner) flag(i int) {
	t := s.t
	j := i + 2
	k := j
	for k < len(t) && k-j < 40 && is(t[k], cLower|cUpper|cDash|cUnder) {
		k++
	}
	if k == j {
		return
	}
	if k == len(t) {
		if !s.final && !s.pause { // a pause decides a flag as the end would: it is a weak candidate
			s.more(i)
		}
		return
	}
	if t[k] != ' ' {
		return
	}
	kd, ok := keyword(t[j:k])
	if !ok || kd == kAuthorization {
		return
	}
	for k < len(t) && t[k] == ' ' {
		k++
	}
	if k == len(t) {
		if !s.final && !s.pause { // a pause decides a flag as the end would: it is a weak candidate
			s.more(i)
		}
		return
	}
	if t[k] == '-' {
		return // next flag: --password-stdin style boolean
	}
	s.value(i, k, kd)
}

// pemBase64 masks a base64-encoded private key block, as in a Kubernetes
// tls.key or a kubeconfig's client-key-data: base64 of "-----BEGIN " is
// "LS0tLS1CRUdJTi". Wrapped lines (base64 -w 76) that follow are included
// up to the line that ends the encoding.
func (s *scanner) pemBase64(i int) {
	t := s.t
	if i < 0 || !s.boundary(i) {
		return
	}
	const tag = "LS0tLS1CRUdJTi"
	ok, partial := s.hasPrefixAt(i, tag)
	if partial {
		s.more(i)
	}
	if !ok {
		return
	}
	end, ok := s.span(i, cB64, 1<<20)
	if !ok {
		s.more(i)
		return
	}
	// Decode the header: 80 characters cover the longest label.
	head := t[i:min(end, i+80)]
	head = head[:len(head)/4*4]
	dec := make([]byte, base64.StdEncoding.DecodedLen(len(head)))
	n, _ := base64.StdEncoding.Decode(dec, head)
	dec = dec[:n]
	if len(dec) < len("-----BEGIN ") {
		if end == len(t) && !s.final {
			s.more(i)
		}
		return
	}
	if !bytes.HasPrefix(dec, []byte("-----BEGIN ")) {
		return
	}
	h, _, found := bytes.Cut(dec[len("-----BEGIN "):], []byte("-----"))
	if !found {
		if end-i < 80 && end == len(t) && !s.final {
			s.more(i)
		}
		return
	}
	if !privateLabel(h) {
		return
	}
	// Continuation lines of wrapped base64.
	for t[end-1] != '=' {
		j := end
		if j < len(t) && t[j] == '\r' {
			j++
		}
		if j >= len(t) || t[j] != '\n' {
			if j >= len(t) && !s.final {
				s.more(i)
				return
			}
			break
		}
		e, ok := s.span(j+1, cB64, 1<<20)
		if !ok {
			s.more(i)
			return
		}
		if e-(j+1) < 16 || (e < len(t) && t[e] != '\r' && t[e] != '\n') {
			break
		}
		end = e
	}
	s.add(i, end, kPrivateKey)
}
