package masking

import (
	"bytes"
	"math"
)

// This file holds the rules for tokens with a distinctive prefix. Each is
// anchored at one trigger byte of its prefix; the body is a run of one
// character class whose length the provider documents.

// token finds a token whose prefix starts at start and whose body is a run
// of class c beginning at body. It adds a finding of kind k when the body is
// between lo and hi bytes long, ends at a word boundary and looks random.
func (s *scanner) token(start, body int, c uint8, lo, hi int, k kind) {
	end, ok := s.span(body, c, hi+1)
	if !ok {
		s.more(start)
		return
	}
	n := end - body
	if n < lo || n > hi {
		return
	}
	if end < len(s.t) && is(s.t[end], cWord) {
		return
	}
	if !random(s.t[body:end]) {
		return
	}
	s.add(start, end, k)
}

// random rejects bodies that are obviously not random: one repeated
// character (ghp_xxxx...), very low entropy, or documentation examples.
func random(b []byte) bool {
	if bytes.Contains(b, []byte("EXAMPLE")) || bytes.Contains(b, []byte("example")) {
		return false
	}
	return entropy(b) >= 2.0
}

// entropy returns the Shannon entropy of b in bits per byte.
func entropy(b []byte) float64 {
	if len(b) == 0 {
		return 0
	}
	var n [256]uint16
	for _, c := range b {
		n[c]++
	}
	h := 0.0
	l := float64(len(b))
	for _, c := range n {
		if c != 0 {
			p := float64(c) / l
			h -= p * math.Log2(p)
		}
	}
	return h
}

// lower3 reports whether t[i-3:i] == w, with w three lower-case bytes.
func (s *scanner) tail(i int, w string) bool {
	return i >= len(w) && string(s.t[i-len(w):i]) == w
}

// underscore handles ghp_ gho_ ghu_ ghs_ ghr_ github_pat_ npm_ sk_live_
// rk_live_ sk_test_ rk_test_ whsec_ dop_v1_ doo_v1_ dor_v1_.
func (s *scanner) underscore(i int) {
	if i < 2 || !is(s.t[i-1], cLower) {
		return
	}
	switch s.t[i-1] {
	case 'p', 'o', 'u', 's', 'r':
		if i >= 3 && s.t[i-3] == 'g' && s.t[i-2] == 'h' && s.boundary(i-3) {
			s.token(i-3, i+1, cAlnum, 36, 251, kGitHub)
			return
		}
		if (s.tail(i, "dop") || s.tail(i, "doo") || s.tail(i, "dor")) && s.boundary(i-3) {
			ok, partial := s.hasPrefixAt(i+1, "v1_")
			if partial {
				s.more(i - 3)
			}
			if ok {
				s.token(i-3, i+4, cHex, 64, 64, kDigitalOcean)
			}
		}
	case 'b':
		if s.tail(i, "github") && s.boundary(i-6) {
			ok, partial := s.hasPrefixAt(i+1, "pat_")
			if partial {
				s.more(i - 6)
			}
			if ok {
				s.token(i-6, i+5, cWord, 40, 251, kGitHub)
			}
		}
	case 'm':
		if s.tail(i, "npm") && s.boundary(i-3) {
			s.token(i-3, i+1, cAlnum, 36, 36, kNPM)
		}
	case 'k':
		if (s.tail(i, "sk") || s.tail(i, "rk")) && s.boundary(i-2) {
			for _, mode := range [...]string{"live_", "test_"} {
				ok, partial := s.hasPrefixAt(i+1, mode)
				if partial {
					s.more(i - 2)
				}
				if ok {
					s.token(i-2, i+6, cAlnum, 16, 247, kStripe)
				}
			}
		}
	case 'c':
		if s.tail(i, "whsec") && s.boundary(i-5) {
			s.token(i-5, i+1, cB64, 32, 128, kStripe)
		}
	}
}

var gitlabPrefixes = [...]string{"glpat", "gldt", "glrt", "glptt", "glft", "glimt", "gloas", "glsoat", "glcbt", "glagent"}

// dashes handles a run of dashes starting at i: a private key header or
// a --password style flag.
func (s *scanner) dashes(i int) {
	s.pemBegin(i)
	if s.pemAt < 0 {
		s.flag(i)
	}
}

// dash handles sk- (OpenAI, Anthropic), xox?- and xapp- (Slack) and
// GitLab's gl...- prefixes.
func (s *scanner) dash(i int) {
	t := s.t
	if i < 2 || !is(t[i-1], cLower) {
		return
	}
	switch {
	case s.tail(i, "sk") && s.boundary(i-2):
		if ok, partial := s.hasPrefixAt(i+1, "ant-"); ok {
			s.token(i-2, i+5, cB64U, 32, 300, kAnthropic)
			return
		} else if partial {
			s.more(i - 2)
			return
		}
		end, ok := s.span(i+1, cB64U, 300)
		if !ok {
			s.more(i - 2)
			return
		}
		body := t[i+1 : end]
		if len(body) >= 20 && len(body) <= 300 && (end == len(t) || !is(t[end], cWord)) &&
			classes(body) == cLower|cUpper|cDigit && random(body) {
			s.add(i-2, end, kOpenAI)
		}
	case s.tail(i, "xapp") && s.boundary(i-4):
		s.slack(i-4, i+1)
	default:
		j := i - 1
		for j > i-8 && j > 0 && is(t[j-1], cLower) {
			j--
		}
		if j+2 > i || t[j] != 'g' || t[j+1] != 'l' || !s.boundary(j) {
			return
		}
		for _, p := range gitlabPrefixes {
			if string(t[j:i]) == p {
				s.token(j, i+1, cB64U, 20, 255, kGitLab)
				return
			}
		}
	}
}

func (s *scanner) slack(start, body int) {
	end, ok := s.span(body, cAlnum|cDash, 300)
	if !ok {
		s.more(start)
		return
	}
	b := s.t[body:end]
	if len(b) >= 10 && classes(b)&cDigit != 0 && (end == len(s.t) || !is(s.t[end], cWord)) && random(b) {
		s.add(start, end, kSlackToken)
	}
}

// classes returns which of cLower, cUpper, cDigit occur in b.
func classes(b []byte) uint8 {
	var c uint8
	for _, x := range b {
		c |= cls[x]
	}
	return c & (cLower | cUpper | cDigit)
}

// dot handles ya29. (Google OAuth).
func (s *scanner) dot(i int) {
	if s.tail(i, "ya29") && s.boundary(i-4) {
		s.token(i-4, i+1, cB64U, 20, 2048, kGoogleOAuth)
	}
}

// vault handles hvs. hvb. hvr. (Vault); i is the v.
func (s *scanner) vault(i int) {
	start := i - 1
	if !s.boundary(start) {
		return
	}
	switch s.at(i + 1) {
	case 's', 'b', 'r':
		ok, partial := s.hasPrefixAt(i+2, ".")
		if partial {
			s.more(start)
		}
		if ok {
			s.token(start, i+3, cB64U, 24, 512, kVault)
		}
	case 0:
		if !s.final {
			s.more(start)
		}
	}
}

var awsPrefixes = [...]string{"AKIA", "ASIA", "ABIA", "ACCA", "AGPA", "AIDA", "AIPA", "ANPA", "ANVA", "APKA", "AROA", "ASCA"}

// upperA handles AWS access key IDs and Google API keys (AIza).
func (s *scanner) upperA(i int) {
	t := s.t
	if !s.boundary(i) {
		return
	}
	if i+4 > len(t) {
		if !s.final {
			s.more(i)
		}
		return
	}
	p := t[i : i+4]
	if p[1] == 'C' {
		s.twilioPair(i)
	}
	if string(p) == "AIza" {
		s.token(i, i+4, cB64U, 35, 35, kGoogleAPIKey)
		return
	}
	aws := p[1] == '3' && p[2] == 'T' && is(p[3], cUpper|cDigit)
	for _, q := range awsPrefixes {
		if aws {
			break
		}
		aws = string(p) == q
	}
	if !aws {
		return
	}
	end, ok := s.span(i+4, cWord, 17)
	if !ok {
		s.more(i)
		return
	}
	body := t[i+4 : end]
	if len(body) != 16 || (end < len(t) && is(t[end], cWord)) {
		return
	}
	digits, vowels := 0, 0
	for _, c := range body {
		switch {
		case c >= '2' && c <= '7':
			digits++
		case c >= 'A' && c <= 'Z':
			switch c {
			case 'A', 'E', 'I', 'O', 'U':
				vowels++
			}
		default:
			return // not base32
		}
	}
	// Key IDs are random base32. An all-letter body with many vowels is an
	// upper-case word such as ASIAPACIFICSOUTHEAST.
	if digits == 0 && vowels*10 >= len(body)*3 {
		return
	}
	if !random(body) {
		return
	}
	s.add(i, end, kAWSAccessKey)
}

// upperS handles SendGrid (SG.) and Twilio API key SIDs (SK + 32 hex).
func (s *scanner) upperS(i int) {
	t := s.t
	if !s.boundary(i) {
		return
	}
	switch s.at(i + 1) {
	case 'C':
		s.scram(i)
	case 'G':
		ok, partial := s.hasPrefixAt(i, "SG.")
		if partial {
			s.more(i)
		}
		if !ok {
			return
		}
		e1, ok := s.span(i+3, cB64U, 64)
		if !ok {
			s.more(i)
			return
		}
		if e1-(i+3) < 16 || s.at(e1) != '.' {
			if e1 == len(t) && !s.final {
				s.more(i)
			}
			return
		}
		s.token(i, e1+1, cB64U, 30, 64, kSendGrid)
	case 'K':
		end, ok := s.span(i+2, cWord, 33)
		if !ok {
			s.more(i)
			return
		}
		body := t[i+2 : end]
		if len(body) != 32 || (end < len(t) && is(t[end], cWord)) {
			return
		}
		for _, c := range body {
			if !is(c, cHex) {
				return
			}
		}
		if classes(body) == cLower|cDigit || classes(body) == cUpper|cDigit {
			if random(body) {
				s.add(i, end, kTwilioAPIKey)
			}
		}
	case 0:
		if i+1 == len(t) && !s.final {
			s.more(i)
		}
	}
}

// upperJ handles JSON Web Tokens: base64url("{\"...") starts with "eyJ".
// Header and payload are required, the signature may be empty (alg none),
// and the five segments of a JWE are covered too.
func (s *scanner) upperJ(i int) {
	t := s.t
	start := i - 2
	if start < 0 || t[start] != 'e' || t[start+1] != 'y' || !s.boundary(start) {
		return
	}
	if start > 0 && (t[start-1] == '.' || t[start-1] == '-') {
		return // inside a token: the payload of a JWT starts with eyJ too
	}
	end := start
	segs := 0
	for {
		e, ok := s.span(end, cB64U, 1<<16)
		if !ok {
			s.more(start)
			return
		}
		n := e - end
		switch {
		case segs == 0 && n < 15, segs == 1 && n < 10:
			return
		}
		segs++
		end = e
		if s.at(end) != '.' || segs == 5 {
			break
		}
		if end+1 == len(t) && !s.final {
			s.more(start)
			return
		}
		if segs >= 2 && !is(s.at(end+1), cB64U) {
			// A sentence may end right after the token.
			if segs == 2 {
				end++ // alg none: empty signature
				segs++
			}
			break
		}
		end++
	}
	if segs < 3 {
		return
	}
	s.add(start, end, kJWT)
}
