package masking

import (
	"bytes"
	"encoding/binary"
	"slices"
)

// Character classes, one bit each, looked up in cls.
const (
	cLower  = 1 << iota // a-z
	cUpper              // A-Z
	cDigit              // 0-9
	cHex                // 0-9 a-f A-F
	cUnder              // _
	cDash               // -
	cB64Sym             // + / =
	cDot                // .
)

const (
	cAlpha = cLower | cUpper
	cAlnum = cAlpha | cDigit
	cWord  = cAlnum | cUnder        // \w
	cB64U  = cWord | cDash          // base64url and most token bodies
	cB64   = cAlnum | cB64Sym       // standard base64
	cRun   = cB64U | cB64Sym | cDot // anything a token may contain; the trailing hold-back class
	cIdent = cWord | cDash | cDot   // key names: DB_PASSWORD, x-api-key, db.password
)

var cls [256]uint8

// pairs marks the byte pairs at which the scanner looks closer, indexed
// by pairIndex(prev, cur). Every rule is anchored at the second byte of one
// of them: a separator after the last letter of a key name (d= n: "=),
// ":/" of a URL, the punctuation of a token prefix after its last letter
// (p_ of ghp_, k- of sk-, 9. of ya29.), "--", and A, S after a non-word
// byte and J after y (AKIA, SG., eyJ). Looking at pairs rather than single
// bytes skips most of the '.', ':', '-' and '=' in ordinary text.
var pairs [1 << 16]uint8

func pairIndex(prev, cur byte) uint16 { return uint16(prev) | uint16(cur)<<8 }

func init() {
	for c := 'a'; c <= 'z'; c++ {
		cls[c] |= cLower
	}
	for c := 'A'; c <= 'Z'; c++ {
		cls[c] |= cUpper
	}
	for c := '0'; c <= '9'; c++ {
		cls[c] |= cDigit | cHex
	}
	for _, c := range "abcdefABCDEF" {
		cls[c] |= cHex
	}
	cls['_'] |= cUnder
	cls['-'] |= cDash
	cls['+'] |= cB64Sym
	cls['/'] |= cB64Sym
	cls['='] |= cB64Sym
	cls['.'] |= cDot
	set := func(prevs string, cur byte) {
		for i := range len(prevs) {
			pairs[pairIndex(prevs[i], cur)] = 1
		}
	}
	keyEnd := "dstnyegahDSTNYEGAH\"' \t"
	set(keyEnd, '=')
	set(":", '=')
	set(keyEnd, ':')
	set(":", '/')
	set("9", '.') // ya29.
	set("h", 'v') // hvs. hvb. hvr.
	set("o", 'x') // xox?-
	set("pousrbmkc", '_')
	set("-kpts", '-')
	set("y", 'J')
	set("S", '0')       // LS0tLS1CRUdJTi: base64 of "-----BEGIN"
	set("d", '5')       // md5 + 32 hex
	set("\n \t\"", 'M') // private key bodies (keyBody)
	set("\n \t\"", 'b')
	for c := range 256 {
		// What a terminal does not show (see strip): the engine then
		// matches the shown text instead.
		for _, h := range [...]byte{0x7f, 0xc2, 0xcd, 0xd8, 0xe1, 0xe2, 0xef, 0xf3} {
			pairs[pairIndex(byte(c), h)] = 1
		}
		for h := range byte(0x20) {
			if hiddenLen([]byte{h}) != 0 {
				pairs[pairIndex(byte(c), h)] = 1
			}
		}
		if !is(byte(c), cWord) {
			pairs[pairIndex(byte(c), 'A')] = 1
			pairs[pairIndex(byte(c), 'S')] = 1
			pairs[pairIndex(byte(c), '$')] = 1 // crypt(3) hashes
		}
	}
}

func is(c byte, class uint8) bool { return cls[c]&class != 0 }

// match is a finding in clean-text coordinates: t[start:end] is replaced.
type match struct {
	start, end int
	kind       kind
	// anchor is the trigger byte that found the match; a rescan must start
	// at or before it to find the match again.
	anchor int
}

// scanner finds secrets in t[from:]; t[:from] has already been emitted and
// serves only as look-behind context (key names, word boundaries, the kind of
// a Kubernetes object).
type scanner struct {
	m     *Masker
	t     []byte
	from  int
	final bool // no more input will follow t: decide everything now
	// streamStart reports that t[0] is the first byte of the stream, so
	// look-behind that reaches it has seen all there is.
	streamStart bool
	// eof reports that the stream has ended (Close, Bytes), not only
	// paused (Flush): even a cut private key header is decided then.
	eof bool
	// pause is final without eof: a Flush or the idle timer. Rules for
	// weak candidates (a value after a key name) decide what they have;
	// rules for strong ones (a token with a distinctive prefix, a hash, a
	// key body) keep holding a candidate that is not yet a complete match,
	// because a clock must not release the beginning of a secret.
	pause bool
	// raw reports that t is the input as it is, not the text a terminal
	// shows: the first byte that a terminal does not show (a control, a
	// zero-width character) sets invisible and ends the scan, and the
	// caller scans the shown text instead.
	raw, invisible bool

	// hold is the smallest index at which an undecided candidate starts:
	// t[hold:] must be kept back until more input arrives.
	hold int
	ms   []match
	// anchor is the trigger being handled.
	anchor int
	// pemAt >= 0 is the start of a private key block header ending at pemEnd.
	pemAt, pemEnd int
}

func (s *scanner) reset(m *Masker, t []byte, from int, final, streamStart bool) {
	s.m, s.t, s.from, s.final, s.streamStart = m, t, from, final, streamStart
	s.eof, s.raw, s.invisible = false, false, false
	s.hold = len(t)
	s.ms = s.ms[:0]
	s.pemAt, s.pemEnd = -1, -1
}

// more records that the candidate starting at p needs more input.
func (s *scanner) more(p int) {
	p = max(p, s.from) // a rescan starts at from and finds the same trigger
	if p < s.hold {
		s.hold = p
	}
}

func (s *scanner) add(start, end int, k kind) {
	if start < s.from || end <= start {
		return
	}
	s.ms = append(s.ms, match{start, end, k, min(start, s.anchor)})
}

// at returns t[i], or 0 past the end.
func (s *scanner) at(i int) byte {
	if i >= 0 && i < len(s.t) {
		return s.t[i]
	}
	return 0
}

// boundary reports whether a token may start at i: the byte before it is not
// a word character. The unknown byte before a truncated context counts as a
// boundary, which errs towards masking.
func (s *scanner) boundary(i int) bool {
	return i <= 0 || !is(s.t[i-1], cWord)
}

// span returns the end of the run of class c starting at i, at most max
// bytes long. ok is false when the run reaches the end of input that is not
// final: the caller must ask for more.
func (s *scanner) span(i int, c uint8, max int) (end int, ok bool) {
	t := s.t
	lim := min(len(t), i+max+1)
	j := i
	for j < lim && cls[t[j]]&c != 0 {
		j++
	}
	if j == len(t) && !s.final {
		return j, false
	}
	return j, true
}

// hasPrefixAt reports whether t[i:] starts with p. partial is true when
// t[i:] is a proper prefix of p and more input may complete it.
func (s *scanner) hasPrefixAt(i int, p string) (ok, partial bool) {
	t := s.t
	if i < 0 {
		return false, false
	}
	if len(t)-i >= len(p) {
		return string(t[i:i+len(p)]) == p, false
	}
	if string(t[i:]) == p[:len(t)-i] {
		return false, !s.final
	}
	return false, false
}

// run scans t[from:] and leaves the findings in s.ms (sorted, disjoint, all
// ending at or before s.hold).
func (s *scanner) run() {
	t := s.t
	i := s.from
	s.pause = s.final && !s.eof
	if i == 0 && len(t) > 0 {
		// The byte before the stream counts as a line break.
		if pairs[pairIndex('\n', t[0])] != 0 {
			s.dispatch(0)
		}
		i = 1
	}
	for i < len(t) && i < s.hold && s.pemAt < 0 && !s.invisible {
		i = skip(t, i)
		if i >= len(t) || i >= s.hold {
			break
		}
		s.dispatch(i)
		i++
	}
	if s.invisible {
		return
	}
	s.anchor = len(t)
	s.values()
	if !s.final {
		s.trailing()
	}
	if !s.eof {
		s.strongTail()
	}
	s.resolve()
}

// skip returns the first index at or after i (i > 0) where a pair of bytes
// starts a closer look, or len(t). It tests eight pairs at a time.
func skip(t []byte, i int) int {
	for ; i+8 <= len(t); i += 8 {
		c := t[i-1 : i+8 : i+8]
		if pairs[binary.LittleEndian.Uint16(c[0:])]|pairs[binary.LittleEndian.Uint16(c[1:])]|
			pairs[binary.LittleEndian.Uint16(c[2:])]|pairs[binary.LittleEndian.Uint16(c[3:])]|
			pairs[binary.LittleEndian.Uint16(c[4:])]|pairs[binary.LittleEndian.Uint16(c[5:])]|
			pairs[binary.LittleEndian.Uint16(c[6:])]|pairs[binary.LittleEndian.Uint16(c[7:])] != 0 {
			break
		}
	}
	for ; i < len(t); i++ {
		if pairs[pairIndex(t[i-1], t[i])] != 0 {
			return i
		}
	}
	return i
}

func (s *scanner) dispatch(i int) {
	s.anchor = i
	if c := s.t[i]; c < 0x20 || c >= 0x7f {
		if s.raw && hiddenLen(s.t[i:]) != 0 {
			s.invisible = true
		}
		return
	}
	switch s.t[i] {
	case '=':
		s.assign(i)
		return
	case ':':
		s.colon(i)
		return
	case '/':
		s.url(i - 1)
		return
	}
	if !s.pause {
		s.strong(i)
		return
	}
	// A pause: first as if more input were coming. A candidate that
	// wants more is decided now only if it is a match that more input
	// could not lengthen (an AWS key ID of 16 characters, not a GitHub
	// token of 36 that may have more); otherwise it stays held.
	hold, n := s.hold, len(s.ms)
	s.final = false
	whole := s.strong(i)
	s.final = true
	if s.hold >= hold || !whole {
		return
	}
	want := s.hold
	s.hold, s.ms = hold, s.ms[:n]
	s.strong(i)
	if len(s.ms) == n || s.grows(i, s.ms[n:]) {
		s.ms, s.hold = s.ms[:n], want
	}
}

// grows reports whether one more token byte after t would lengthen one of
// ms, the matches the rule at i found. It runs only at a pause that cuts a
// strong candidate, so its copy of t costs little.
func (s *scanner) grows(i int, ms []match) bool {
	g := scanner{m: s.m, t: append(s.t[:len(s.t):len(s.t)], 'a'), from: s.from, final: true, streamStart: s.streamStart}
	g.hold, g.pemAt, g.pemEnd, g.anchor = len(g.t), -1, -1, i
	g.strong(i)
	for _, a := range ms {
		for _, b := range g.ms {
			if b.start == a.start && b.end > a.end {
				return true
			}
		}
	}
	return false
}

// strong runs the rules anchored at t[i] other than '=', ':' and '/'. It
// reports whether a candidate cut by a pause may be decided once complete:
// not a key block, whose continuation lines would follow unmasked.
func (s *scanner) strong(i int) (whole bool) {
	switch s.t[i] {
	case '_':
		s.underscore(i)
	case '-':
		if i > 0 && s.t[i-1] == '-' {
			if i < 2 || s.t[i-2] != '-' {
				s.anchor = i - 1
				s.dashes(i - 1)
			}
			return false
		}
		s.dash(i)
	case '.':
		s.dot(i)
	case 'v':
		s.vault(i)
	case 'x':
		if i >= 2 && s.t[i-2] == 'x' && s.boundary(i-2) {
			switch s.at(i + 1) {
			case 'a', 'b', 'p', 'o', 's', 'r', 'e':
				if ok, partial := s.hasPrefixAt(i+2, "-"); ok {
					s.slack(i-2, i+3)
				} else if partial {
					s.more(i - 2)
				}
			case 0:
				if !s.final {
					s.more(i - 2)
				}
			}
		}
	case 'A':
		s.upperA(i)
	case 'S':
		s.upperS(i)
	case 'J':
		s.upperJ(i)
	case '0':
		s.pemBase64(i - 2)
		return false
	case 'M', 'b':
		s.keyBody(i)
		return false
	case '$':
		s.cryptHash(i)
	case '5':
		s.pgMD5(i)
	}
	return true
}

// trailing holds back the run of token characters at the end of t: it may be
// the beginning of a token whose distinctive part has not arrived yet. Every
// rule's anchor lies within the first few bytes of its token, so 64 bytes
// suffice however long the run is.
func (s *scanner) trailing() {
	t := s.t
	j := len(t)
	lim := max(s.from, len(t)-64)
	for j > lim && is(t[j-1], cRun) {
		j--
	}
	s.more(j)
}

// values finds the exact values of Options.Values and holds back a suffix
// of t that is a prefix of one of them.
func (s *scanner) values() {
	t := s.t
	for _, v := range s.m.values {
		for i := s.from; i < len(t); {
			j := bytes.Index(t[i:], v)
			if j < 0 {
				break
			}
			s.add(i+j, i+j+len(v), kInjected)
			i += j + len(v)
		}
		if s.eof {
			continue // a pause keeps the beginning of a value too
		}
		// Longest proper prefix of v that is a suffix of t.
		for k := min(len(v)-1, len(t)-s.from); k > 0; k-- {
			if bytes.Equal(t[len(t)-k:], v[:k]) {
				s.more(len(t) - k)
				break
			}
		}
	}
}

// resolve sorts and merges the findings and drops those that cannot be
// decided before hold.
func (s *scanner) resolve() {
	if s.pemAt >= 0 {
		s.more(s.pemAt)
		// A finding that started before the key block ends where it begins.
		for i := range s.ms {
			if s.ms[i].start < s.pemAt && s.ms[i].end > s.pemAt {
				s.ms[i].end = s.pemAt
			}
		}
	}
	ms := s.ms
	if len(ms) == 0 {
		return
	}
	slices.SortFunc(ms, func(a, b match) int {
		if a.start != b.start {
			return a.start - b.start
		}
		return int(a.kind) - int(b.kind)
	})
	out := ms[:1]
	for _, m := range ms[1:] {
		last := &out[len(out)-1]
		if m.start < last.end {
			last.end = max(last.end, m.end)
			last.anchor = min(last.anchor, m.anchor)
			continue
		}
		out = append(out, m)
	}
	// A finding that reaches past hold is decided together with what
	// follows, and a rescan must start at its anchor to find it again.
	for changed := true; changed; {
		changed = false
		for i := len(out) - 1; i >= 0; i-- {
			if out[i].end > s.hold {
				if h := max(s.from, min(out[i].start, out[i].anchor)); h < s.hold {
					s.hold = h
					changed = true
				}
			}
		}
	}
	for len(out) > 0 && out[len(out)-1].end > s.hold {
		out = out[:len(out)-1]
	}
	s.ms = out
}
