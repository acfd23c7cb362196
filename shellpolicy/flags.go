package shellpolicy

import "strings"

// flagSpec describes a command's options, for finding where the command it
// wraps begins.
type flagSpec struct {
	short    string   // short options without a value
	shortArg string   // short options with a value (-u root, -uroot)
	long     []string // long options without a value
	longArg  []string // long options with a value (--user root, --user=root)
}

// parse reads options from argv[i] and returns the index of the first
// operand. fn sees each option and its value (nil for none). unknown is
// true when an option is not in the spec: then whether it takes a value is
// a guess.
func (fs *flagSpec) parse(argv []field, i int, fn func(opt string, v *field)) (next int, unknown bool) {
	for i < len(argv) {
		f := &argv[i]
		s := f.s
		if s == "--" {
			return i + 1, unknown
		}
		if len(s) < 2 || s[0] != '-' || f.unknown() {
			return i, unknown
		}
		if strings.HasPrefix(s, "--") {
			name, _, hasV := strings.Cut(s, "=")
			switch {
			case contains(fs.longArg, name) && hasV:
				vf := suffixField(*f, name+"=")
				fn(name, &vf)
			case contains(fs.longArg, name) && i+1 < len(argv):
				i++
				fn(name, &argv[i])
			default:
				unknown = unknown || !contains(fs.long, name) && !contains(fs.longArg, name)
				fn(name, nil)
			}
			i++
			continue
		}
		for j := 1; j < len(s); j++ {
			c := s[j]
			if strings.IndexByte(fs.shortArg, c) >= 0 {
				if j+1 < len(s) {
					vf := suffixField(*f, s[:j+1])
					fn("-"+string(c), &vf)
				} else if i+1 < len(argv) {
					i++
					fn("-"+string(c), &argv[i])
				}
				break
			}
			unknown = unknown || strings.IndexByte(fs.short, c) < 0
			fn("-"+string(c), nil)
		}
		i++
	}
	return i, unknown
}

// suffixField is f without its first len(prefix) bytes (a value attached to
// an option: --user=root, -uroot, of=/dev/sda).
func suffixField(f field, prefix string) field {
	out := f
	out.s = f.s[len(prefix):]
	out.disp = strings.TrimPrefix(f.disp, prefix)
	if f.glob {
		out.pat = strings.TrimPrefix(f.pat, escapeGlob(prefix))
	}
	out.proc = nil
	return out
}
