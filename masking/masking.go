// Package masking replaces secrets in command output, terminal sessions,
// recordings and SQL results with "[MASKED:<kind>]" before they reach an
// agent or a log.
//
// One engine serves every stream. It knows the formats of common tokens
// (AWS, GitHub, GitLab, Slack, Stripe, Google, OpenAI, Anthropic, npm,
// SendGrid, Twilio, Vault, DigitalOcean, JWT), private key blocks (PEM,
// OpenSSH, PGP, escaped in JSON, base64-encoded), passwords in URLs and in
// key=value lines (env dumps, .env, YAML, JSON, INI, flags), Authorization
// headers and Kubernetes Secret data, plus exact values the caller injects
// (Options.Values). Where a secret sits in a larger context only the value
// is replaced: "password=[MASKED:password]",
// "postgres://u:[MASKED:url-password]@db". Generic values (after a key such
// as token=) must look generated: long enough, mixed character classes,
// enough entropy, and not a placeholder (****, ${VAR}, <redacted>,
// changeme) or a reference in code (self.password, os.Getenv(...)).
//
// Text is matched as a terminal shows it (see ansi.go): escape sequences
// (CSI, short ESC sequences, OSC/DCS/APC/PM/SOS strings), C0 controls other
// than TAB, LF, VT, FF and CR, DEL and zero-width or format characters are
// removed, so a token that grep --color split, or that invisible bytes
// were put into, is still found, and the whole span, inserted bytes
// included, is replaced. A string sequence's payload (a title) is masked
// on its own. Password hashes (SCRAM verifiers, pg md5, crypt(3)) and
// private key bodies without their header (told from certificates by
// their DER structure) are rules of their own.
//
// A Writer masks a stream. It holds back only the end of the input that
// may still grow into a secret and emits everything else at once. After
// Options.Idle without input it flushes weak candidates (a value after a
// key name), but a possible beginning of a strong secret (a token prefix,
// a hash, a key body, an injected value) stays held until it resolves or
// reaches its maximum length (see hold.go); at most 64 KiB is held. A
// private key block is replaced by its marker as soon as its header is
// seen and the rest is swallowed until its footer, or until Close if none
// comes (fail closed).
//
// Not covered: a token broken across terminal lines by a hard line break
// (fold), a key body printed from its second line on, cursor movements
// other than BS that rearrange text on the screen, encodings of a secret
// (base64 of a token), and credential files without a key name per value
// (.pgpass, .netrc).
//
// Secret-free text runs at memory-like speed: the scanner tests eight
// byte pairs at a time against one table and looks closer only where a
// rule could be anchored (a separator after the last letter of a keyword,
// the punctuation of a token prefix, "--", A or S at a word start, eyJ).
// No regular expression runs.
package masking

import (
	"sync"
	"time"
	"unsafe"
)

// Event reports one masking. It never carries the masked value.
type Event struct {
	Kind   string // rule ID, as in the replacement text
	Offset int64  // byte offset in the input stream where the secret began
	Length int    // input bytes replaced, including escape sequences inside
}

// Options configures a Masker. The zero value masks with the built-in rules.
type Options struct {
	// Values are masked wherever they occur, as kind "injected-secret".
	// Values shorter than MinValueLen bytes are ignored: masking every
	// "abc" in the output would hide more than it protects.
	Values []string
	// OnMask, if not nil, is called for each masking, synchronously from
	// Write, Flush, Close or Bytes. It must not call back into the Writer.
	OnMask func(Event)
	// Idle is how long a Writer holds back a possible secret without new
	// input before flushing it. Zero means 20ms; negative disables the
	// timer, leaving flushing to the caller.
	Idle time.Duration
}

// MinValueLen is the shortest Options.Values entry that is masked.
const MinValueLen = 4

const defaultIdle = 20 * time.Millisecond

// Masker holds compiled rules and values. It is immutable and safe for
// concurrent use.
type Masker struct {
	values [][]byte
	onMask func(Event)
	idle   time.Duration
}

// New returns a Masker with the built-in rules and opts.Values.
func New(opts Options) *Masker {
	m := &Masker{onMask: opts.OnMask, idle: opts.Idle}
	if m.idle == 0 {
		m.idle = defaultIdle
	}
	m.values = addValues(nil, opts.Values)
	return m
}

func addValues(dst [][]byte, vs []string) [][]byte {
	for _, v := range vs {
		if len(v) < MinValueLen {
			continue
		}
		dup := false
		for _, d := range dst {
			if string(d) == v {
				dup = true
				break
			}
		}
		if !dup {
			dst = append(dst, []byte(v))
		}
	}
	return dst
}

var defaultMasker = sync.OnceValue(func() *Masker { return New(Options{}) })

// Default returns a shared Masker with the built-in rules only.
func Default() *Masker { return defaultMasker() }

// WithValues returns a Masker that also masks v. The rules are shared; only
// the list of values is copied.
func (m *Masker) WithValues(v ...string) *Masker {
	n := *m
	n.values = addValues(append([][]byte(nil), m.values...), v)
	return &n
}

// Bytes masks a whole buffer, such as an SQL value or a log line. It returns
// b itself when there is nothing to mask, and never modifies b (String
// relies on that).
func (m *Masker) Bytes(b []byte) []byte { return m.bytesAt(b, 0) }

// bytesAt is Bytes for b found at offset base of a stream, which events
// report.
func (m *Masker) bytesAt(b []byte, base int64) []byte {
	if len(b) == 0 {
		return b
	}
	var sc scanner
	if !hasEscape(b) {
		sc.reset(m, b, 0, true, true)
		sc.eof, sc.raw = true, true
		sc.run()
		if len(sc.ms) == 0 && sc.pemAt < 0 && !sc.invisible {
			return b
		}
	}
	out := sliceWriter{b: make([]byte, 0, len(b))}
	e := newEngine(m, &out)
	e.base = base
	e.write(b)
	e.close()
	return out.b
}

// String masks a whole string.
func (m *Masker) String(s string) string {
	if s == "" {
		return s
	}
	// Bytes only reads its input: a view of s, not a copy.
	in := unsafe.Slice(unsafe.StringData(s), len(s))
	out := m.Bytes(in)
	if len(out) > 0 && &out[0] == &in[0] {
		return s // unchanged
	}
	return string(out)
}

type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}
