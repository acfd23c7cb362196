package masking

// This file holds the rules for password hashes. A hash is a secret
// wherever it appears (pg_shadow.passwd, /etc/shadow, a users table): it
// can be cracked offline, and a SCRAM verifier's keys let whoever holds
// them log in to PostgreSQL as that role. Masked are
//
//	SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>  (PostgreSQL)
//	md5<32 hex digits>                                          (pg_authid)
//	$<id>$[<params>$]<salt>$<hash>                              (crypt(3))
//
// with the crypt ids of bcrypt (2a 2b 2x 2y), md5-crypt (1), sha256- and
// sha512-crypt (5 6), scrypt (7), yescrypt (y gy), argon2 (argon2i argon2d
// argon2id) and sha1-crypt (sha1). A plain hex digest (a git SHA, a file's
// md5sum) has no such prefix and is left alone.

// cryptIDs are the crypt(3) scheme ids that follow the first '$'.
var cryptIDs = [...]string{"2a", "2b", "2x", "2y", "1", "5", "6", "7", "y", "gy", "argon2i", "argon2d", "argon2id", "sha1"}

// cCrypt are the bytes of a crypt(3) field: its base64 alphabet (./0-9A-Za-z),
// standard base64 and argon2's "m=65536,t=3,p=4".
const cCrypt = cAlnum | cDot | cB64Sym | cDash

func isCrypt(c byte) bool { return is(c, cCrypt) || c == ',' }

// cryptHash masks a crypt(3) hash whose first '$' is at i.
func (s *scanner) cryptHash(i int) {
	t := s.t
	if i > 0 && is(t[i-1], cWord) {
		return
	}
	j := i + 1
	for j < len(t) && j-i <= 9 && is(t[j], cAlnum) {
		j++
	}
	if j == len(t) {
		if !s.final && j-i <= 9 {
			s.more(i)
		}
		return
	}
	if t[j] != '$' {
		return
	}
	id := string(t[i+1 : j])
	known := false
	for _, c := range cryptIDs {
		if id == c {
			known = true
			break
		}
	}
	if !known {
		return
	}
	// Fields after the id, separated by '$'; the last is the hash.
	fields, last := 0, 0
	k := j
	for k < len(t) && t[k] == '$' && fields < 6 {
		e := k + 1
		for e < len(t) && e-k <= 256 && isCrypt(t[e]) {
			e++
		}
		if e == len(t) && !s.final {
			s.more(i)
			return
		}
		if e == k+1 {
			if e == len(t) && !s.eof {
				s.more(i) // "$" ends the input: a field follows
				return
			}
			break
		}
		fields++
		last = e - (k + 1)
		k = e
	}
	if fields < 2 || last < 20 || (k < len(t) && is(t[k], cWord)) {
		return
	}
	if id[0] == '2' && fields != 2 {
		return // bcrypt: $2b$<cost>$<salt and hash>
	}
	s.add(i, k, kPasswordHash)
}

// scram masks a PostgreSQL SCRAM verifier at i (the S of SCRAM-SHA-).
func (s *scanner) scram(i int) {
	t := s.t
	for _, p := range [...]string{"SCRAM-SHA-256$", "SCRAM-SHA-1$"} {
		ok, partial := s.hasPrefixAt(i, p)
		if partial {
			s.more(i)
			return
		}
		if !ok {
			continue
		}
		// <iterations>:<salt>$<StoredKey>:<ServerKey>
		k := i + len(p)
		for n, sep := range [...]byte{':', '$', ':', 0} {
			c := uint8(cB64)
			if n == 0 {
				c = cDigit
			}
			e, ok := s.span(k, c, 512)
			if !ok {
				s.more(i)
				return
			}
			if e == k {
				return
			}
			if sep == 0 {
				k = e
				break
			}
			if e == len(t) || t[e] != sep {
				return
			}
			k = e + 1
		}
		if k < len(t) && is(t[k], cWord) {
			return
		}
		s.add(i, k, kPasswordHash)
		return
	}
}

// pgMD5 masks md5 followed by 32 lower-case hex digits, the md5 form of
// pg_authid.rolpassword. i is the 5.
func (s *scanner) pgMD5(i int) {
	t := s.t
	if i < 2 || t[i-2] != 'm' || t[i-1] != 'd' || !s.boundary(i-2) {
		return
	}
	end, ok := s.span(i+1, cWord, 33)
	if !ok {
		s.more(i - 2)
		return
	}
	if end-(i+1) != 32 {
		return
	}
	for _, c := range t[i+1 : end] {
		if !is(c, cDigit) && (c < 'a' || c > 'f') {
			return
		}
	}
	s.add(i-2, end, kPasswordHash)
}
