package pty

import "bytes"

// A marker is what the shell prints after each command it reads: an OSC
// string carrying the session nonce, bash's command number (the prompt's
// \#) and the exit status of the command:
//
//	ESC ] 7777 ; <nonce> ; <number> ; <status> BEL
//
// The output pump strips markers with this session's nonce; anything else,
// including marker-shaped text with another nonce, is command output.
type marker struct {
	number int
	status int
}

const (
	markerOSC = "\x1b]7777;"
	maxDigits = 9
)

// scanner splits the PTY output stream into command output and markers. It
// keeps the bytes of a marker that a read cut in two until the next scan.
type scanner struct {
	prefix []byte // markerOSC + nonce + ";"
	carry  []byte
}

func newScanner(nonce string) *scanner {
	return &scanner{prefix: []byte(markerOSC + nonce + ";")}
}

// scan passes the output in p to out and each marker to mark, in stream
// order. The slices given to out are only valid during the call.
func (s *scanner) scan(p []byte, out func([]byte), mark func(marker)) {
	if len(s.carry) > 0 {
		// Rare: a marker was cut by a read. Rejoin it with what follows.
		buf := append(s.carry, p...)
		s.carry = nil
		p = buf
	}
	for len(p) > 0 {
		i := bytes.IndexByte(p, 0x1b)
		if i < 0 {
			out(p)
			return
		}
		if i > 0 {
			out(p[:i])
			p = p[i:]
		}
		m, n, state := s.match(p)
		switch state {
		case matchPartial:
			s.carry = append([]byte(nil), p...)
			return
		case matchNone:
			out(p[:1])
			p = p[1:]
		case matchFull:
			mark(m)
			p = p[n:]
		}
	}
}

// flush returns the carried bytes of an unfinished marker as output, at the
// end of the stream.
func (s *scanner) flush(out func([]byte)) {
	if len(s.carry) > 0 {
		out(s.carry)
		s.carry = nil
	}
}

type matchState int

const (
	matchNone matchState = iota
	matchPartial
	matchFull
)

// match reports whether p, which starts with ESC, starts with a marker.
func (s *scanner) match(p []byte) (marker, int, matchState) {
	k := min(len(p), len(s.prefix))
	if !bytes.Equal(p[:k], s.prefix[:k]) {
		return marker{}, 0, matchNone
	}
	if k < len(s.prefix) {
		return marker{}, 0, matchPartial
	}
	i := len(s.prefix)
	number, i, st := digits(p, i, ';')
	if st != matchFull {
		return marker{}, 0, st
	}
	status, i, st := digits(p, i, '\a')
	if st != matchFull {
		return marker{}, 0, st
	}
	return marker{number: number, status: status}, i, matchFull
}

// digits reads a decimal number at p[i:] followed by end.
func digits(p []byte, i int, end byte) (int, int, matchState) {
	v, n := 0, 0
	for ; i < len(p); i++ {
		c := p[i]
		switch {
		case c >= '0' && c <= '9' && n < maxDigits:
			v = v*10 + int(c-'0')
			n++
		case c == end && n > 0:
			return v, i + 1, matchFull
		default:
			return 0, 0, matchNone
		}
	}
	return 0, 0, matchPartial
}
