package masking

import (
	"bytes"
)

// This file holds the rules anchored at '=' and ':': key=value assignments
// in environment dumps, .env, INI, YAML and JSON; HTTP Authorization
// headers; passwords in URLs; Azure connection strings; Twilio SID:token.

// keywords maps the suffix of a lower-cased key name to a kind. short marks
// suffixes that must start at a word boundary inside the key (DB_PASS, not
// BYPASS; PWD is handled as a shell variable below).
var keywords = [...]struct {
	suffix string
	kind   kind
	short  bool
}{
	{"secret_access_key", kAWSSecretKey, false},
	{"secretaccesskey", kAWSSecretKey, false},
	{"secret-access-key", kAWSSecretKey, false},
	{"aws_secret_key", kAWSSecretKey, false},
	{"accountkey", kAzureKey, false},
	{"sharedaccesskey", kAzureKey, false},
	{"vault_token", kVault, false},
	{"vault-token", kVault, false},
	{"twilio_auth_token", kTwilioAuthToken, false},
	{"authorization", kAuthorization, false},
	{"auth", kAuthorization, true},   // docker config.json, .npmrc _auth
	{"key-data", kPrivateKey, false}, // kubeconfig client-key-data
	{"private_key", kPrivateKey, false},
	{"privatekey", kPrivateKey, false},
	{"private-key", kPrivateKey, false},
	{"password", kPassword, false},
	{"passwd", kPassword, false},
	{"passphrase", kPassword, false},
	{"pwd", kPassword, true},
	{"pass", kPassword, true},
	{"secret", kSecret, false},
	{"secret_key", kSecret, false},
	{"secretkey", kSecret, false},
	{"secret-key", kSecret, false},
	{"access_key", kSecret, false},
	{"accesskey", kSecret, false},
	{"access-key", kSecret, false},
	{"x-amz-signature", kToken, false},
	{"token", kToken, false},
	{"api_key", kAPIKey, false},
	{"apikey", kAPIKey, false},
	{"api-key", kAPIKey, false},
}

// keyEnds holds the last two letters (lower-cased) of every keyword, as
// a quick filter before the key name is read.
var keyEnds [26 * 26]bool

func init() {
	for _, kw := range keywords {
		n := len(kw.suffix)
		keyEnds[bigram(kw.suffix[n-2], kw.suffix[n-1])] = true
	}
	keyEnds[bigram('t', 'a')] = true // data, stringData
	keyEnds[bigram('i', 'g')] = true // sig
}

func bigram(a, b byte) int { return int(a|0x20-'a')*26 + int(b|0x20-'a') }

// keyLikely reports whether the two letters before the separator at i
// (after blanks and a closing quote) may end a keyword.
func (s *scanner) keyLikely(i int) bool {
	t := s.t
	j := i
	for j > 0 && i-j < 4 && (t[j-1] == ' ' || t[j-1] == '\t') {
		j--
	}
	if j > 0 && (t[j-1] == '"' || t[j-1] == '\'') {
		j--
		if j > 0 && t[j-1] == '\\' {
			j--
		}
	}
	return j >= 2 && is(t[j-1], cAlpha) && is(t[j-2], cAlpha) && keyEnds[bigram(t[j-2], t[j-1])]
}

// keyword classifies a key name.
func keyword(id []byte) (kind, bool) {
	if len(id) < 3 || len(id) > 64 {
		return 0, false
	}
	// Quick reject on the last letter, before lower-casing.
	switch id[len(id)-1] | 0x20 {
	case 'd', 's', 't', 'n', 'y', 'e', 'h', 'a':
	default:
		return 0, false
	}
	var buf [64]byte
	low := buf[:len(id)]
	for i, c := range id {
		if is(c, cUpper) {
			c += 'a' - 'A'
		}
		low[i] = c
	}
	switch string(id) {
	case "PWD", "OLDPWD": // the shell's working directories
		return 0, false
	case "PASS": // test runners: "--- PASS: TestName"
		return 0, false
	}
	for _, kw := range keywords {
		if !bytes.HasSuffix(low, []byte(kw.suffix)) {
			continue
		}
		p := len(low) - len(kw.suffix)
		if p > 0 && kw.short && is(low[p-1], cAlnum) &&
			!(is(id[p], cUpper) && is(id[p-1], cLower)) {
			continue
		}
		return kw.kind, true
	}
	return 0, false
}

// key finds the key name that ends before the separator at i: it skips
// blanks and a closing quote. It returns the name's bounds.
func (s *scanner) key(i int) (start, end int) {
	t := s.t
	j := i
	for j > 0 && i-j < 4 && (t[j-1] == ' ' || t[j-1] == '\t') {
		j--
	}
	if j > 0 && (t[j-1] == '"' || t[j-1] == '\'') {
		j--
		if j > 0 && t[j-1] == '\\' {
			j--
		}
	}
	end = j
	for j > 0 && end-j < 64 && is(t[j-1], cIdent) {
		j--
	}
	return j, end
}

// assign handles key=value, key = value, key := value, key => value.
func (s *scanner) assign(i int) {
	t := s.t
	if i == 0 {
		return
	}
	switch t[i-1] {
	case '=', '!', '<', '>':
		return // comparison
	}
	j := i + 1
	if j < len(t) {
		switch t[j] {
		case '=':
			return
		case '>':
			j++
		}
	}
	sep := i
	if t[i-1] == ':' {
		sep = i - 1
	}
	if !s.keyLikely(sep) {
		return
	}
	ks, ke := s.key(sep)
	if ks == ke {
		return
	}
	id := t[ks:ke]
	if string(id) == "sig" && ks > 0 && (t[ks-1] == '&' || t[ks-1] == '?') {
		s.value(i, j, kAzureKey)
		return
	}
	if ks > 0 && t[ks-1] == '/' {
		return // a path: /etc/passwd
	}
	kd, ok := keyword(id)
	if !ok {
		return
	}
	s.value(i, j, kd)
}

// colon handles key: value (YAML, JSON, HTTP headers), scheme://user:pass@,
// Twilio's AC<sid>:<token> and Kubernetes Secret data blocks.
func (s *scanner) colon(i int) {
	t := s.t
	if i+1 == len(t) && !s.final {
		s.more(i)
		return
	}
	switch s.at(i + 1) {
	case '=', ':', '/':
		return // := is handled at '=', :: is not an assignment, :/ at '/'
	}
	if !s.keyLikely(i) {
		return
	}
	ks, ke := s.key(i)
	if ks == ke || ks >= 2 && t[ks-1] == '/' && t[ks-2] == '/' {
		return // none, or the user in scheme://user:password@
	}
	id := t[ks:ke]
	if (ke-ks == 4 || ke-ks == 10) && (string(id) == "data" || string(id) == "stringData") {
		s.kube(i, ks, ke)
		return
	}
	if ks > 0 && t[ks-1] == '/' {
		return // a path: "../etc/passwd": ...
	}
	kd, ok := keyword(id)
	if !ok {
		return
	}
	s.value(i, i+1, kd)
}

// twilioPair masks the auth token in AC<32 hex>:<32 hex>, the form used
// with curl -u. i is the A.
func (s *scanner) twilioPair(i int) {
	t := s.t
	sid, ok := s.span(i+2, cWord, 33)
	if !ok {
		s.more(i)
		return
	}
	if sid-(i+2) != 32 || !all(t[i+2:sid], cHex) {
		return
	}
	if sid == len(t) || t[sid] != ':' {
		if sid == len(t) && !s.final {
			s.more(i)
		}
		return
	}
	end, ok := s.span(sid+1, cWord, 33)
	if !ok {
		s.more(i)
		return
	}
	if end-(sid+1) == 32 && all(t[sid+1:end], cHex) {
		s.add(sid+1, end, kTwilioAuthToken)
	}
}

// value parses the value that follows a separator ending at j and adds a
// finding of kind kd if it passes the kind's checks. i is the separator's
// position, where a rescan must start if the value is incomplete.
func (s *scanner) value(i, j int, kd kind) {
	t := s.t
	for j < len(t) && (t[j] == ' ' || t[j] == '\t') && j-i < 16 {
		j++
	}
	if j == len(t) {
		if !s.final {
			s.more(i)
		}
		return
	}
	var vs, ve int
	quoted := false
	switch q := t[j]; q {
	case '"', '\'', '`':
		quoted = true
		vs = j + 1
		ve = -1
		for k := vs; k < len(t) && k-vs <= 4096; k++ {
			if t[k] == q {
				ve = k
				break
			}
			if t[k] == '\n' {
				return
			}
			if t[k] == '\\' {
				k++
			}
		}
		if ve < 0 {
			if len(t)-vs <= 4096 && !s.final {
				s.more(i)
			}
			return
		}
	case '\\':
		// "password":\"x\" inside an escaped JSON string.
		if j+1 == len(t) && !s.final {
			s.more(i)
			return
		}
		if s.at(j+1) != '"' {
			return
		}
		quoted = true
		vs = j + 2
		ve = bytes.Index(t[vs:min(len(t), vs+4096)], []byte(`\"`))
		if ve < 0 {
			if len(t)-vs < 4096 && !s.final {
				s.more(i)
			}
			return
		}
		ve += vs
	default:
		vs = j
		if kd == kAuthorization {
			// Authorization: Bearer <credential>
			k := j
			for k < len(t) && k-j < 20 && is(t[k], cAlnum|cDash) {
				k++
			}
			if k == len(t) && !s.final {
				s.more(i)
				return
			}
			if k > j && k < len(t) && t[k] == ' ' && isScheme(t[j:k]) {
				for k < len(t) && t[k] == ' ' {
					k++
				}
				vs = k
			}
		}
		ve = vs
		for ve < len(t) && ve-vs <= 4096 && !bareStop[t[ve]] {
			ve++
		}
		if ve == len(t) && !s.final {
			s.more(i)
			return
		}
		if ve < len(t) {
			switch t[ve] {
			case '(', '[':
				return // a call or an index: code, not a value
			case ' ':
				// "passwd: files systemd", "--password options":
				// a word followed by more words is prose or a list.
				if all(t[vs:ve], cAlpha) {
					k := ve
					for k < len(t) && k-ve < 16 && (t[k] == ' ' || t[k] == '\t') {
						k++
					}
					if k == len(t) && !s.final {
						s.more(i)
						return
					}
					if k < len(t) && is(t[k], cAlpha) {
						return
					}
				}
			}
		}
	}
	if kd == kAuthorization && quoted {
		vs, ve = authCredential(t[vs:ve], vs)
	}
	if k, ok := checkValue(t[vs:ve], kd, quoted); ok {
		s.add(vs, ve, k)
	}
}

// bareStop ends an unquoted value.
var bareStop [256]bool

func init() {
	for _, c := range " \t\r\n\"'`,;&<>(){}[]\\\x1b\x00" {
		bareStop[c] = true
	}
}

// authSchemes are the HTTP authentication schemes whose credential follows
// after a blank (RFC 9110 section 11).
var authSchemes = [...]string{"bearer", "basic", "token", "bot", "apikey", "key", "negotiate", "ntlm", "digest", "aws4-hmac-sha256", "sso-key", "splunk", "dsn"}

func isScheme(w []byte) bool {
	for _, sc := range authSchemes {
		if len(w) == len(sc) && string(bytes.ToLower(w)) == sc {
			return true
		}
	}
	return false
}

// authCredential skips a known scheme and returns the credential's bounds
// inside v, which starts at off.
func authCredential(v []byte, off int) (start, end int) {
	if sp := bytes.IndexAny(v, " \t"); sp > 0 && isScheme(v[:sp]) {
		k := sp
		for k < len(v) && (v[k] == ' ' || v[k] == '\t') {
			k++
		}
		e := k
		for e < len(v) && v[e] != ' ' && v[e] != '\t' && v[e] != ',' {
			e++
		}
		return off + k, off + e
	}
	e := 0
	for e < len(v) && v[e] != ' ' && v[e] != '\t' {
		e++
	}
	return off, off + e
}

// url masks the password in scheme://user:password@host (RFC 3986 section
// 3.2.1) and the secret path of Slack webhook URLs. i is the colon.
func (s *scanner) url(i int) {
	t := s.t
	if i+2 >= len(t) {
		if !s.final {
			s.more(i)
		}
		return
	}
	if t[i+2] != '/' {
		return
	}
	j := i
	for j > 0 && i-j < 32 && (is(t[j-1], cAlnum) || t[j-1] == '+' || t[j-1] == '.' || t[j-1] == '-') {
		j--
	}
	if j == i {
		return
	}
	a := i + 3
	k, at := a, -1
	for k < len(t) && k-a < 1024 && !urlStop[t[k]] {
		if t[k] == '@' {
			at = k
		}
		k++
	}
	if k == len(t) && !s.final {
		s.more(i)
		return
	}
	if at >= 0 {
		if c := bytes.IndexByte(t[a:at], ':'); c >= 0 {
			ps := a + c + 1
			if p := t[ps:at]; len(p) > 0 && !placeholder(p) {
				s.add(ps, at, kURLPassword)
			}
		}
		return
	}
	if string(t[a:k]) != "hooks.slack.com" {
		return
	}
	for _, p := range [...]string{"/services/", "/workflows/", "/triggers/"} {
		ok, partial := s.hasPrefixAt(k, p)
		if partial {
			s.more(i)
		}
		if ok {
			body := k + len(p)
			end, ok := s.span(body, cB64U|cB64Sym, 512)
			if !ok {
				s.more(i)
				return
			}
			if end-body >= 20 {
				s.add(body, end, kSlackWebhook)
			}
			return
		}
	}
}

// urlStop ends the authority of a URL.
var urlStop [256]bool

func init() {
	for c := range 0x21 {
		urlStop[c] = true
	}
	for _, c := range "/?#\"'<>`\\\x7f" {
		urlStop[c] = true
	}
}
