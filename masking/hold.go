package masking

// What a pause may release.
//
// A Writer flushes what it holds after Options.Idle without input, so that
// a prompt or the last line of a command shows up promptly. A clock must
// not decide a secret, though: `printf AKIA; sleep 0.05; printf <rest>`
// would otherwise print the key whole on the agent's terminal, in two
// writes that no rule sees together. So a pause (Flush, the idle timer)
// decides weak candidates, values after a key name, as if the stream had
// ended, but a possible beginning of a strong one, a token with a
// distinctive prefix (AKIA, ghp_, eyJ, ...), a password hash, a private key
// or its body, or an injected value, stays held until more input completes
// it or shows that it is none, or until it has reached its rule's maximum
// length or maxHold. A candidate that already is a complete match is
// masked at the pause.
//
// The price: output that ends, for the time being, with such a beginning
// (an interactive prompt ending in "AKIA", the echo of a word being typed
// that starts like a token prefix, "g" of "git") is shown only when the
// next byte arrives or the stream closes. Close decides everything: a
// complete secret is masked, the rest is written as it is.

// tailPrefixes are the token prefixes whose rule is anchored after their
// first byte (at the '_' of ghp_, the J of eyJ). Until that byte arrives no
// rule sees the candidate, so strongTail holds an end of the input that may
// still become one of them. Prefixes anchored at their first byte (AKIA at
// the A, SG. at the S, hashes at the '$', key bodies at the line start)
// hold themselves.
var tailPrefixes = [...]string{
	"ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_",
	"glpat-", "gldt-", "glrt-", "glptt-", "glft-", "glimt-", "gloas-", "glsoat-", "glcbt-", "glagent-",
	"xoxa-", "xoxb-", "xoxp-", "xoxo-", "xoxs-", "xoxr-", "xoxe-", "xapp-",
	"sk_live_", "rk_live_", "sk_test_", "rk_test_", "whsec_", "sk-", "npm_",
	"ya29.", "hvs.", "hvb.", "hvr.", "dop_v1_", "doo_v1_", "dor_v1_", "eyJ", "LS0tLS1CRUdJTi", "md5",
}

// tailFirst marks the first bytes of tailPrefixes; tailMax is the longest.
var (
	tailFirst [256]bool
	tailMax   int
)

func init() {
	for _, p := range tailPrefixes {
		tailFirst[p[0]] = true
		tailMax = max(tailMax, len(p))
	}
}

// strongTail holds the end of t from the first word start whose text is a
// proper prefix of a token prefix in tailPrefixes.
func (s *scanner) strongTail() {
	t := s.t
	for k := max(s.from, len(t)-tailMax+1); k < len(t); k++ {
		if !tailFirst[t[k]] || !s.boundary(k) {
			continue
		}
		rest := t[k:]
		for _, p := range tailPrefixes {
			if len(p) > len(rest) && p[:len(rest)] == string(rest) {
				s.more(k)
				return
			}
		}
	}
}
