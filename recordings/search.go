package recordings

import (
	"errors"
	"io"
	"os"
	"strings"
	"unicode/utf8"
)

// Match is one place a search text was found.
type Match struct {
	ID      string  `json:"id"`
	Line    int     `json:"line"`    // line of the event in the recording
	Offset  float64 `json:"offset"`  // seconds from the start
	Kind    string  `json:"kind"`    // "command" or "output"
	Command int     `json:"command"` // the command it falls under (0: before the first)
	Text    string  `json:"text"`    // the command, or the output around the match
}

// maxOutputMatches bounds the output matches reported per session.
const maxOutputMatches = 50

// Search finds text in the commands and the output of every recording in
// dir, newest session first. Matching ignores ASCII case and looks through
// terminal escape sequences, including across event boundaries.
func Search(dir, text string) ([]Match, error) {
	if text == "" {
		return nil, errEmptySearch
	}
	sums, err := List(dir, Filter{})
	if err != nil {
		return nil, err
	}
	return SearchSessions(sums, text)
}

var errEmptySearch = errors.New("recordings: search for an empty text")

// SearchSessions is Search over the recordings of sums (as List returns
// them), in that order.
func SearchSessions(sums []Summary, text string) ([]Match, error) {
	if text == "" {
		return nil, errEmptySearch
	}
	out := []Match{}
	for _, s := range sums {
		f, err := os.Open(s.Path)
		if err != nil {
			continue
		}
		ms, _ := searchOne(s.ID, f, text)
		f.Close()
		out = append(out, ms...)
	}
	return out, nil
}

func searchOne(id string, r io.Reader, text string) ([]Match, error) {
	rd, err := Open(r)
	if err != nil {
		return nil, err
	}
	needle := []byte(lowerASCII(text))
	var out []Match
	var st stripper
	var win []byte // stripped output, lower-cased, with the tail of earlier events
	var orig []byte
	outputs, cmd := 0, 0
	for {
		e, err := rd.Next()
		if err != nil {
			return out, nil
		}
		switch e.Type {
		case CodeMarker:
			if m, ours, _ := parseMarker(e.Data); ours && m.Type == markCommand {
				cmd = m.N
				if strings.Contains(lowerASCII(m.Cmd), string(needle)) {
					out = append(out, Match{ID: id, Line: rd.Line(), Offset: e.Time, Kind: "command", Command: cmd, Text: m.Cmd})
				}
			}
		case CodeOutput:
			if outputs >= maxOutputMatches {
				continue
			}
			old := len(orig)
			orig = st.strip(orig, e.Data)
			win = append(win, lowerASCII(string(orig[old:]))...)
			// Look only where a match can end in the new bytes.
			for from := max(0, old-len(needle)+1); ; {
				i := strings.Index(string(win[from:]), string(needle))
				if i < 0 {
					break
				}
				i += from
				out = append(out, Match{ID: id, Line: rd.Line(), Offset: e.Time, Kind: "output", Command: cmd,
					Text: printable(around(orig, i, i+len(needle), 30))})
				outputs++
				from = i + len(needle)
			}
			if keep := 30 + len(needle); len(orig) > 2*keep {
				orig = append(orig[:0], orig[len(orig)-keep:]...)
				win = append(win[:0], win[len(win)-keep:]...)
			}
		}
	}
}

// around returns b[i:j] with up to n bytes of context on either side, cut
// at character boundaries.
func around(b []byte, i, j, n int) []byte {
	lo, hi := max(0, i-n), min(len(b), j+n)
	for lo < i && !utf8.RuneStart(b[lo]) {
		lo++
	}
	for hi < len(b) && !utf8.RuneStart(b[hi]) {
		hi--
	}
	return b[lo:hi]
}

func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// printable turns line breaks and other controls into spaces for display.
func printable(b []byte) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, string(b))
}

// stripper removes terminal escape sequences (CSI, OSC, and two-byte ESC
// sequences) from a stream, keeping its state across chunks.
type stripper struct{ state int }

const (
	stText = iota
	stEsc
	stCSI
	stOSC
	stOSCEsc
)

func (s *stripper) strip(dst []byte, in string) []byte {
	for i := 0; i < len(in); i++ {
		c := in[i]
		switch s.state {
		case stText:
			if c == 0x1b {
				s.state = stEsc
			} else {
				dst = append(dst, c)
			}
		case stEsc:
			switch c {
			case '[':
				s.state = stCSI
			case ']', 'P', '_', '^':
				s.state = stOSC
			default:
				s.state = stText
			}
		case stCSI:
			if c >= 0x40 && c <= 0x7e {
				s.state = stText
			}
		case stOSC:
			if c == 0x07 {
				s.state = stText
			} else if c == 0x1b {
				s.state = stOSCEsc
			}
		case stOSCEsc:
			s.state = stText
		}
	}
	return dst
}
