package masking

import "bytes"

// checkValue decides whether v, the value assigned to a key of kind kd, is
// a credential rather than a placeholder, a reference or code. It may
// refine the kind (a 40-character AWS secret key, a Vault token). quoted
// values were written between quotes.
func checkValue(v []byte, kd kind, quoted bool) (kind, bool) {
	if len(v) == 0 || len(v) > 4096 || placeholder(v) {
		return 0, false
	}
	if bytes.HasPrefix(v, []byte("-----BEGIN")) || bytes.Contains(v, []byte("://")) {
		return 0, false // private key blocks and URLs have their own rules
	}
	switch kd {
	case kAWSSecretKey:
		if len(v) == 40 && all(v, cB64) && random(v) {
			return kd, true
		}
		kd = kSecret
	case kVault:
		if len(v) >= 26 && v[0] == 's' && v[1] == '.' && all(v[2:], cB64U) {
			return kd, true
		}
		kd = kToken
	case kTwilioAuthToken:
		if len(v) == 32 && all(v, cHex) {
			return kd, true
		}
		kd = kToken
	case kAzureKey:
		// Base64, or percent-encoded base64 in a SAS query.
		if len(v) >= 20 && all(v, cB64|cDash|cUnder) || bytes.IndexByte(v, '%') >= 0 && len(v) >= 20 {
			return kd, true
		}
		return 0, false
	}
	switch v[0] {
	case '/', '~':
		return 0, false // a file path
	case '.':
		if len(v) > 1 && (v[1] == '/' || v[1] == '.') {
			return 0, false
		}
	}
	if !quoted && codeRef(v) {
		return 0, false
	}
	switch kd {
	case kPassword:
		return kd, len(v) >= 4
	case kAuthorization:
		// Basic credentials are base64 of user:password, often without
		// a digit.
		if len(v) >= 12 && len(v)%4 == 0 && all(v, cB64) && classes(v)&(cLower|cUpper) == cLower|cUpper {
			return kd, true
		}
	case kPrivateKey:
		// Raw keys are long (64 hex digits, base64); shorter values are
		// type and variable names in code (private_key: Ed25519PrivateKey).
		if len(v) < 32 {
			return 0, false
		}
	}
	return kd, tokenLike(v)
}

func all(b []byte, c uint8) bool {
	for _, x := range b {
		if cls[x]&c == 0 {
			return false
		}
	}
	return true
}

// tokenLike reports whether v looks like a generated credential: long
// enough, not one repeated character, and with the character mix of a
// random string. Words (my-db-secret) and numbers (3600) do not pass.
func tokenLike(v []byte) bool {
	if len(v) < 8 {
		return false
	}
	c := classes(v)
	e := entropy(v)
	switch {
	case c&cDigit != 0 && c&(cLower|cUpper) != 0:
		return e >= 2.5
	case c == cDigit:
		return len(v) >= 16 && e >= 2.5
	default:
		// Without digits only long random-looking strings pass: few
		// vowels, unlike CamelCaseNames.
		if len(v) < 32 || c != cLower|cUpper || e < 3.5 {
			return false
		}
		letters, vowels := 0, 0
		for _, x := range v {
			if is(x, cAlpha) {
				letters++
				switch x | 0x20 {
				case 'a', 'e', 'i', 'o', 'u':
					vowels++
				}
			}
		}
		return vowels*10 < letters*3
	}
}

// codeRef reports whether a bare value reads as a reference in source code
// (config.password, self.token, userPassword, raw_secret) rather than a
// literal. Identifiers with digits are taken as literals.
func codeRef(v []byte) bool {
	if classes(v)&cDigit != 0 {
		return false
	}
	dot, under, camel := false, false, false
	for i, c := range v {
		switch {
		case c == '.':
			if i == 0 || i == len(v)-1 || v[i-1] == '.' {
				return false
			}
			dot = true
		case c == '_':
			under = true
		case is(c, cUpper):
			if i > 0 && is(v[i-1], cLower) {
				camel = true
			}
		case is(c, cLower):
		default:
			return false
		}
	}
	return dot || under || camel
}

// placeholders are values that stand for a credential in documentation,
// templates and redacted output (compared lower-cased).
var placeholders = map[string]bool{}

func init() {
	for _, w := range []string{
		"null", "nil", "none", "true", "false", "yes", "no", "on", "off",
		"undefined", "empty", "string", "str", "int", "bool", "boolean",
		"number", "object", "any", "value", "password", "passwd", "pass",
		"pwd", "secret", "token", "key", "apikey", "api_key", "api-key",
		"changeme", "change_me", "change-me", "changeit", "example",
		"sample", "redacted", "hidden", "masked", "removed", "omitted",
		"required", "optional", "default", "todo", "fixme", "n/a", "env",
		"unset", "notset", "not_set", "dummy", "foo", "bar", "foobar",
		"bearer", "basic", "secret_value", "secretvalue", "mypassword",
		"mysecret", "mytoken", "placeholder", "sensitive", "blank",
		"passphrase", "credentials", "files", "bytes", "bytearray", "float",
		"list", "dict", "tuple", "char", "byte", "buffer", "text",
	} {
		placeholders[w] = true
	}
}

// placeholder reports whether v stands in for a credential: a word from
// placeholders, one repeated character (****, xxxx), a variable reference
// ($VAR, ${VAR}, %(name)s, {{ .Values.x }}), or a bracketed note
// (<password>, [REDACTED], [MASKED:password]).
func placeholder(v []byte) bool {
	if len(v) <= 256 {
		var buf [256]byte
		low := buf[:len(v)]
		for i, c := range v {
			if is(c, cUpper) {
				c += 'a' - 'A'
			}
			low[i] = c
		}
		if len(low) <= 32 && placeholders[string(low)] || bytes.HasPrefix(low, []byte("your")) {
			return true
		}
		for _, w := range [...]string{"redacted", "masked", "hidden", "example", "changeme", "placeholder", "xxxx", "****", "...", "<", ">"} {
			if bytes.Contains(low, []byte(w)) {
				return true
			}
		}
	}
	same := true
	for _, c := range v[1:] {
		if c != v[0] {
			same = false
			break
		}
	}
	if same {
		return true
	}
	switch v[0] {
	case '{', '<', '[', '%':
		return true
	case '$':
		if len(v) > 1 && (v[1] == '{' || v[1] == '(') {
			return true
		}
		return all(v[1:], cWord)
	}
	return false
}
