package shellpolicy

import (
	"encoding/base64"
	"path"
	"sort"
	"strings"
	"unicode/utf8"

	"mvdan.cc/sh/v3/syntax"
)

// streamKind is what flows through a pipe or redirection into a command.
type streamKind int

const (
	streamOpaque  streamKind = iota // data bastion cannot see (a file, a program's output)
	streamText                      // known text (echo, printf, a here-document)
	streamRemote                    // downloaded from the network
	streamDecoded                   // decoded or decompressed data
	streamPaths                     // path names (find)
)

type stream struct {
	kind  streamKind
	texts []string // streamText: the possible texts
	paths []field  // streamPaths: patterns of the paths
	from  string   // what produced it, for messages
	// decoded marks known text that was encoded in the command line
	// (echo ... | base64 -d): bastion judges it, but a shell fed with it is
	// still at least approve, as hiding code from readers is its purpose.
	decoded bool
}

// cmdEnv is the context of one command: where it runs and what it reads.
type cmdEnv struct {
	sc       *scope
	fr       *frame
	in       *stream // standard input; nil: nothing known (a terminal, or nothing)
	andThen  bool    // on the left of &&
	indirect bool    // the statement's first word is not literal ($EMPTY ls)
	nameSrc  string  // the statement's first word as written
	root     bool    // under sudo, doas, su
	noFunc   bool    // under command or builtin: functions are skipped
}

// noStdin is env for code that does not read env's standard input: the
// code a shell reads from it, an interpreter's inline code, a trap.
func (env *cmdEnv) noStdin() *cmdEnv {
	if env.in == nil {
		return env
	}
	c := *env
	c.in = nil
	return &c
}

// stdBinDirs hold the programs a bare command name finds.
var stdBinDirs = map[string]bool{"/bin": true, "/sbin": true, "/usr/bin": true, "/usr/sbin": true,
	"/usr/local/bin": true, "/usr/local/sbin": true, "/opt/homebrew/bin": true, "/snap/bin": true, "/usr/games": true}

// commandName strips the directory of a command; opaque is true when the
// directory is not a standard one (./deploy.sh, /opt/app/run): that program
// is whatever the file holds.
func commandName(s string) (name string, opaque bool) {
	if !strings.Contains(s, "/") {
		return s, false
	}
	c := path.Clean(s)
	dir, base := path.Split(c)
	return base, !stdBinDirs[path.Clean(dir)]
}

// command analyses one command, unwrapping wrappers layer by layer.
func (a *analyzer) command(env *cmdEnv, argv []field) *stream {
	fr := env.fr
	for layer := 0; len(argv) > 0; layer++ {
		if layer > 16 {
			a.hit(fr, ruleTooDeep, argv[0].disp)
			return nil
		}
		fr.show = true
		fr.argv = display(argv)
		fr.layers = append(fr.layers, argv)
		name := &argv[0]
		if name.unknown() {
			fr.name = name.disp
			a.hit(fr, ruleDynamicCommand, name.disp)
			return nil
		}
		if name.glob {
			a.globCommand(env, argv)
			return nil
		}
		if name.expanded || env.indirect && layer == 0 {
			// bastion may know the value, but a name that is not written
			// literally is never allowed without a human: it is how
			// commands are hidden, and the one place a resolution bug
			// would let anything through
			a.hit(fr, ruleIndirect, indirectArg(env, name, layer))
		}
		n, opaque := commandName(name.s)
		if l := strings.ToLower(n); l != n && (checkedSet[l] || a.p.byName[l] != nil) {
			n = l // RM is rm on a case-insensitive file system (macOS)
		}
		fr.name = n
		if opaque {
			a.hit(fr, ruleOpaqueScript, name.s)
			a.writtenScript(env, *name, "sh")
		}
		if !env.noFunc {
			if fd := a.funcs[n]; fd != nil {
				a.callFunc(env, fd, argv)
			}
		}
		if len(argv) > 1 && (argv[1].s == "--help" || argv[1].s == "--version") {
			return &stream{from: n}
		}
		next, handled := a.unwrap(env, n, argv)
		if next != nil {
			argv = next
			continue
		}
		if !handled {
			a.check(env, n, argv)
		}
		return a.produce(env, n, argv)
	}
	return nil
}

// indirectArg shows an indirect command name: what is written, and what
// it resolves to.
func indirectArg(env *cmdEnv, name *field, layer int) string {
	if layer == 0 && env.nameSrc != "" && env.nameSrc != name.s {
		return env.nameSrc + " = " + name.s
	}
	return name.s
}

// callFunc judges the body of a shell function where it is called, with the
// call's arguments. Assignments in a function are global, as in bash.
func (a *analyzer) callFunc(env *cmdEnv, fd *funcDef, argv []field) {
	b := env.sc.child()
	args := make([]string, 0, len(argv))
	for _, f := range argv {
		args = append(args, f.s)
	}
	b.setArgs(args)
	a.callBody(b, fd, env.fr)
	for k, v := range b.vars {
		env.sc.set(k, v)
	}
	if b.cwd != nil {
		env.sc.cwd = b.cwd
	}
}

// globCommand judges a command whose name is a glob (/bin/r?): never allow,
// and as each known command the pattern may run.
func (a *analyzer) globCommand(env *cmdEnv, argv []field) {
	a.hit(env.fr, ruleGlobCommand, argv[0].disp)
	pat := argv[0].pattern()
	base := pat[strings.LastIndexByte(pat, '/')+1:]
	n := 0
	for _, cand := range a.knownNames() {
		if ok, _ := path.Match(base, cand); ok {
			if n++; n > 4 {
				break
			}
			a.command(env, append([]field{litField(cand)}, argv[1:]...))
		}
	}
}

// knownNames are the commands bastion has something to say about.
func (a *analyzer) knownNames() []string {
	var out []string
	for n := range a.p.byName {
		out = append(out, n)
	}
	out = append(out, checkedNames...)
	sort.Strings(out)
	return out
}

// redirects judges a statement's redirections and returns what its
// standard input carries.
func (a *analyzer) redirects(sc *scope, st *syntax.Stmt, fr *frame, in *stream) *stream {
	for _, r := range st.Redirs {
		if (r.N == nil || r.N.Value == "0" || r.N.Value == "1" || r.N.Value == "2") && r.Word != nil {
			if l := r.Word.Lit(); strings.HasPrefix(l, "/dev/tcp/") || strings.HasPrefix(l, "/dev/udp/") {
				fr.netStd = true
			}
		}
		switch r.Op {
		case syntax.Hdoc, syntax.DashHdoc:
			if r.Hdoc != nil {
				in = &stream{kind: streamText, texts: a.heredoc(sc, r), from: "a here-document"}
			}
		case syntax.WordHdoc:
			in = &stream{kind: streamText, texts: a.expandString(sc, r.Word), from: "a here-string"}
			for i := range in.texts {
				in.texts[i] += "\n"
			}
		case syntax.RdrIn:
			in = a.inputFile(sc, fr, r.Word)
		case syntax.DplIn:
			a.words(sc, []*syntax.Word{r.Word})
		case syntax.RdrOut, syntax.ClbOut, syntax.RdrAll, syntax.RdrAllClob, syntax.DplOut:
			a.redirectWrite(sc, fr, r, false)
		case syntax.AppOut, syntax.AppAll, syntax.AppAllClob, syntax.RdrInOut:
			a.redirectWrite(sc, fr, r, true)
		default:
			a.walkExprs(sc, r.Word)
		}
	}
	return in
}

func (a *analyzer) redirectWrite(sc *scope, fr *frame, r *syntax.Redirect, appending bool) {
	for _, argv := range a.words(sc, []*syntax.Word{r.Word}) {
		for _, f := range argv {
			if r.Op == syntax.DplOut && (isDigits(f.s) || f.s == "-") {
				continue
			}
			a.writeTarget(sc, fr, f, appending)
		}
	}
}

// heredoc returns the text of a here-document: literal when its delimiter
// is quoted, expanded otherwise (command substitutions in it run).
func (a *analyzer) heredoc(sc *scope, r *syntax.Redirect) []string {
	if r.Word.Lit() == "" || strings.Contains(r.Word.Lit(), `\`) { // quoted delimiter
		var b strings.Builder
		for _, p := range r.Hdoc.Parts {
			if l, ok := p.(*syntax.Lit); ok {
				b.WriteString(l.Value)
			}
		}
		return []string{b.String()}
	}
	e := &expander{a: a, sc: sc, states: []*wstate{{}}, noSplit: true}
	e.parts(r.Hdoc.Parts, true)
	var out []string
	for _, st := range e.states {
		out = append(out, string(st.cur.s))
	}
	return out
}

func (a *analyzer) inputFile(sc *scope, fr *frame, w *syntax.Word) *stream {
	argvs := a.words(sc, []*syntax.Word{w})
	if len(argvs) == 1 && len(argvs[0]) == 1 {
		f := argvs[0][0]
		if f.proc != nil && a.procs[f.proc] != nil {
			return a.procs[f.proc]
		}
		if t := classify(f, sc.getCwd()); t.class == cNetwork {
			a.hit(fr, ruleNetRedirect, t.path)
			return &stream{kind: streamRemote, from: t.path}
		}
		return &stream{from: "file " + f.disp}
	}
	return &stream{from: "a file"}
}

// writeTarget judges writing to the path f names.
func (a *analyzer) writeTarget(sc *scope, fr *frame, f field, appending bool) {
	t := classify(f, sc.getCwd())
	fr.targets = append(fr.targets, t.matchPath())
	if rule := writeRule(t.class, appending); rule != "" {
		a.hit(fr, rule, t.path)
	}
}

// deleteTarget judges deleting the path f names.
func (a *analyzer) deleteTarget(sc *scope, fr *frame, f field) target {
	t := classify(f, sc.getCwd())
	fr.targets = append(fr.targets, t.matchPath())
	a.hit(fr, deleteRule(t.class), t.path)
	return t
}

// produce returns what command n writes to its standard output, for the
// next command of a pipeline.
func (a *analyzer) produce(env *cmdEnv, n string, argv []field) *stream {
	args := argv[1:]
	switch n {
	case "echo":
		return textStream(n, echoText(args))
	case "printf":
		if len(args) > 0 && !strings.HasPrefix(args[0].s, "-") {
			return textStream(n, printfText(args))
		}
	case "cat", "tac", "tee", "head", "tail", "sort", "uniq", "grep", "sed", "awk", "cut", "tr", "rev", "fold":
		if env.in != nil && (n == "cat" || n == "tee") && len(operands(args, "")) == 0 {
			return env.in
		}
		if env.in != nil && (env.in.kind == streamRemote || env.in.kind == streamDecoded) {
			return env.in
		}
		if n == "rev" || n == "tr" {
			return &stream{kind: streamDecoded, from: n}
		}
	case "mktemp":
		return textStream(n, mktempPath(argv)+"\n")
	case "pwd":
		if cwd := env.sc.getCwd(); len(cwd) == 1 {
			return textStream(n, cwd[0]+"\n")
		}
	case "curl", "wget", "fetch", "http", "https", "xh", "aria2c", "lwp-request", "GET", "lynx", "links":
		return &stream{kind: streamRemote, from: n}
	case "base64", "base32", "basenc", "xxd", "uudecode", "openssl", "gunzip", "zcat", "gzip", "bzcat", "bunzip2",
		"bzip2", "xz", "unxz", "xzcat", "zstd", "unzstd", "zstdcat", "lz4", "brotli", "gpg":
		return a.decoded(env, n, args)
	case "find":
		var paths []field
		for _, f := range args {
			if strings.HasPrefix(f.s, "-") || f.s == "(" || f.s == "!" {
				break
			}
			paths = append(paths, descendants(f))
		}
		if len(paths) == 0 {
			paths = []field{descendants(litField("."))}
		}
		return &stream{kind: streamPaths, paths: paths, from: n}
	}
	return &stream{from: n}
}

func textStream(from string, text string) *stream {
	return &stream{kind: streamText, texts: []string{text}, from: from}
}

// mktempPath is where mktemp would create its file.
func mktempPath(argv []field) string {
	dir, tmpl, inTmp := "", "", false
	for i := 1; i < len(argv); i++ {
		s := argv[i].s
		switch {
		case s == "-t":
			inTmp = true
		case s == "-p" && i+1 < len(argv):
			i++
			dir = argv[i].s
		case strings.HasPrefix(s, "--tmpdir="):
			dir = strings.TrimPrefix(s, "--tmpdir=")
		case s == "--tmpdir":
			inTmp = true
		case strings.HasPrefix(s, "--suffix="):
		case strings.HasPrefix(s, "-"):
		default:
			tmpl = s
		}
	}
	if tmpl == "" {
		tmpl = "tmp.XXXXXXXXXX"
		inTmp = true
	}
	tmpl = strings.TrimRight(tmpl, "X") + sTok
	switch {
	case dir != "":
		return dir + "/" + tmpl
	case inTmp && !strings.HasPrefix(tmpl, "/"):
		return "/tmp/" + tmpl
	}
	return tmpl
}

// decoded is the output of a decoder; base64 of known text is decoded here.
func (a *analyzer) decoded(env *cmdEnv, n string, args []field) *stream {
	decoding := n != "base64" && n != "base32" && n != "basenc" && n != "xxd" && n != "gzip" && n != "bzip2" &&
		n != "xz" && n != "zstd" && n != "lz4" && n != "brotli" && n != "openssl"
	for _, f := range args {
		switch f.s {
		case "-d", "--decode", "-D", "-r", "-dc", "-cd", "--decompress", "--revert":
			decoding = true
		}
	}
	if !decoding {
		return &stream{from: n}
	}
	if env.in != nil && env.in.kind == streamRemote {
		return env.in
	}
	if n == "base64" && env.in != nil && env.in.kind == streamText && len(env.in.texts) == 1 {
		raw := strings.Join(strings.Fields(env.in.texts[0]), "")
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding} {
			if b, err := enc.DecodeString(raw); err == nil && utf8.Valid(b) {
				s := textStream("base64 -d", sanitize(string(b)))
				s.decoded = true
				return s
			}
		}
	}
	return &stream{kind: streamDecoded, from: n}
}

// descendants is the pattern of every path under f.
func descendants(f field) field {
	if f.s == "/" {
		return field{s: "/*", disp: "/*", pat: "/*", glob: true}
	}
	d := f
	d.s = strings.TrimSuffix(f.s, "/") + "/*"
	d.disp = strings.TrimSuffix(f.disp, "/") + "/*"
	d.pat = strings.TrimSuffix(f.pattern(), "/") + "/*"
	d.glob = true
	return d
}

func echoText(args []field) string {
	i, nl, esc := 0, true, false
	for ; i < len(args); i++ {
		s := args[i].s
		if len(s) < 2 || s[0] != '-' || strings.Trim(s[1:], "neE") != "" {
			break
		}
		nl = nl && !strings.Contains(s, "n")
		esc = strings.Contains(s, "e") || (esc && !strings.Contains(s, "E"))
	}
	var parts []string
	for _, f := range args[i:] {
		parts = append(parts, f.s)
	}
	text := strings.Join(parts, " ")
	if esc {
		text = decodeANSIC(text)
	}
	if nl {
		text += "\n"
	}
	return text
}

// printfText approximates printf FORMAT ARGS: %s-like directives take the
// arguments in order.
func printfText(args []field) string {
	format := decodeANSIC(args[0].s)
	rest := args[1:]
	var b strings.Builder
	for i := 0; i < len(format); i++ {
		if format[i] != '%' || i+1 >= len(format) {
			b.WriteByte(format[i])
			continue
		}
		j := i + 1
		for j < len(format) && strings.IndexByte("-+ #0123456789.", format[j]) >= 0 {
			j++
		}
		if j < len(format) && format[j] == '%' {
			b.WriteByte('%')
		} else if len(rest) > 0 {
			b.WriteString(rest[0].s)
			rest = rest[1:]
		}
		i = j
	}
	return b.String()
}

// operands returns the arguments that are not options, for commands whose
// options may come anywhere (GNU getopt), given the short options that take
// a value; "--" ends the options.
func operands(args []field, shortArg string, longArg ...string) []field {
	var out []field
	for i := 0; i < len(args); i++ {
		s := args[i].s
		switch {
		case s == "--":
			return append(out, args[i+1:]...)
		case strings.HasPrefix(s, "--"):
			name, _, hasV := strings.Cut(s, "=")
			if !hasV && contains(longArg, name) {
				i++
			}
		case len(s) > 1 && s[0] == '-' && !args[i].unknown():
			for j := 1; j < len(s); j++ {
				if strings.IndexByte(shortArg, s[j]) >= 0 {
					if j == len(s)-1 {
						i++
					}
					break
				}
			}
		default:
			out = append(out, args[i])
		}
	}
	return out
}

// hasOpt reports whether args hold one of opts, also inside a cluster of
// short options (-rf holds -r and -f).
func hasOpt(args []field, opts ...string) bool {
	for _, f := range args {
		s := f.s
		if s == "--" {
			return false
		}
		for _, o := range opts {
			if s == o || (strings.HasPrefix(o, "--") && strings.HasPrefix(s, o+"=")) {
				return true
			}
			if len(o) == 2 && o[0] == '-' && len(s) > 2 && s[0] == '-' && s[1] != '-' && strings.IndexByte(s[1:], o[1]) >= 0 {
				return true
			}
		}
	}
	return false
}
