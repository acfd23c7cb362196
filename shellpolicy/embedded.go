package shellpolicy

import (
	"regexp"
	"strings"

	"github.com/bastion-dev/bastion/policy"
)

// Code inside other languages: interpreter one-liners, awk programs and SQL.

var (
	reInterp = regexp.MustCompile(`^(python[0-9.]*|pypy[0-9.]*|perl[0-9.]*|ruby[0-9.]*|node|nodejs|deno|bun|php[0-9.]*|lua[0-9.]*|luajit|Rscript|R|osascript|pwsh|powershell|tclsh[0-9.]*|wish|expect|irb|jshell|groovy)$`)
	reAwk    = regexp.MustCompile(`^(awk|gawk|mawk|nawk)$`)
	// calls that hand a string to a shell, in the usual languages
	reExecCall = regexp.MustCompile(`\b(?:system|popen|exec[lv]?p?e?|spawnSync|spawn|execSync|execFileSync|execFile|check_output|check_call|getoutput|getstatusoutput|call|run|Popen|shell_exec|passthru|proc_open|qx)\s*[({]\s*`)
	// calls that delete a path given literally
	reDeleteCall = regexp.MustCompile(`\b(?:rmtree|rmSync|rmdirSync|unlinkSync|rm_rf|rm_r|rm_f|remove_dir_all|removedirs|rimraf|remove_tree|unlink|rmdir|remove|rm|delete|deleteSync|rmdir_p)\s*\(\s*(?:r?"([^"]*)"|r?'([^']*)')`)
	// the same without parentheses, as Perl and Ruby allow
	reDeleteBare = regexp.MustCompile(`\b(?:unlink|rmtree|remove_tree|rmdir|rm_rf|rm_r)\s+(?:"([^"]*)"|'([^']*)')`)
	reOpenWrite  = regexp.MustCompile(`\bopen\s*\(\s*(?:"([^"]*)"|'([^']*)')\s*,\s*['"]?[wa+>]`)
	reBacktick   = regexp.MustCompile("`([^`]+)`")
	// Tcl (expect, tclsh) runs programs with spawn and exec, without parentheses
	reTclExec  = regexp.MustCompile(`(?m)\b(?:spawn|exec)\s+((?:-\S+\s+)*[^\n;\]\}]+)`)
	reAwkRuns  = regexp.MustCompile(`\bsystem\s*\(|\|\s*getline|\|&|\bprintf?\b[^;}]*\|\s*"`)
	reAwkCmd   = regexp.MustCompile(`(?:\bsystem\s*\(\s*|\|\s*)"((?:[^"\\]|\\.)*)"|"((?:[^"\\]|\\.)*)"\s*\|\s*getline`)
	reAwkWrite = regexp.MustCompile(`>>?\s*"([^"]+)"`)
)

// interpreter handles python -c, perl -e, node -e... : inline code bastion
// cannot check is approve, and visible shell commands or deletions in it are
// judged too. A script file is run like any program.
func (a *analyzer) interpreter(env *cmdEnv, n string, argv []field) bool {
	if reAwk.MatchString(n) {
		a.awk(env, argv)
		return true
	}
	if !reInterp.MatchString(n) {
		return false
	}
	lang := strings.TrimRight(n, "0123456789.")
	ia := interpreterArgs(lang, argv)
	if ia.encoded != "" {
		a.hit(env.fr, ruleDecoded, n+" "+ia.encoded)
		return true
	}
	for _, c := range ia.code {
		a.oneLiner(env, n, c)
	}
	if ia.inPlace {
		for _, f := range ia.files {
			a.writeTarget(env.sc, env.fr, f, true)
		}
	}
	code, scriptFile := ia.code, ia.scriptFile
	switch {
	case scriptFile != nil && len(code) == 0 && lang != "deno" && lang != "bun": // those take subcommands
		// a script file is as opaque as bash script.sh: it may have been
		// written a moment ago to hide what it does
		switch {
		case scriptFile.proc != nil:
			a.interpStream(env, n, a.procs[scriptFile.proc])
		case scriptFile.s == "/dev/stdin" || scriptFile.s == "/proc/self/fd/0":
			a.interpStream(env, n, env.in)
		default:
			a.hit(env.fr, ruleOpaqueScript, n+" "+scriptFile.disp)
			a.writtenScript(env, *scriptFile, n)
		}
	case len(code) == 0 && !ia.script && !ia.module && (ia.stdin || env.in != nil):
		a.interpStream(env, n, env.in)
	case len(code) == 0 && !ia.script && !ia.module && !infoOnly(argv[1:]) && lang != "deno" && lang != "bun":
		// A REPL on the session: what is typed into it is never checked.
		a.interpStream(env, n, nil)
	}
	return true
}

// interpArgs is what an interpreter's command line holds.
type interpArgs struct {
	code       []field // inline code: -c, -e, --eval
	files      []field // the operands after the code or the script
	scriptFile *field  // the script file it runs
	script     bool    // it runs a script file (or what follows --)
	module     bool    // it runs a module (python -m)
	inPlace    bool    // it edits its files in place (perl -i, ruby -i)
	stdin      bool    // it reads its code from standard input (-)
	encoded    string  // pwsh -EncodedCommand: the option; the code is not visible
}

// interpreterArgs reads the options of interpreter lang (python, perl,
// pwsh...): which take inline code, which end the options.
func interpreterArgs(lang string, argv []field) interpArgs {
	var ia interpArgs
	for i := 1; i < len(argv); i++ {
		f := argv[i]
		s := f.s
		if ia.script || ia.module {
			ia.files = append(ia.files, f)
			continue
		}
		takeNext := func() {
			if i+1 < len(argv) {
				i++
				ia.code = append(ia.code, argv[i])
			}
		}
		switch {
		case s == "-":
			ia.stdin = true
		case s == "--":
			ia.script = len(ia.code) == 0
			if ia.script && i+1 < len(argv) {
				ia.scriptFile = &argv[i+1]
			}
		case lang == "deno" && s == "eval", lang == "bun" && (s == "-e" || s == "--eval"):
			takeNext()
		case s == "--eval" || s == "--print" || s == "-Command" || strings.EqualFold(s, "-command") || strings.EqualFold(s, "-c") && (lang == "pwsh" || lang == "powershell"):
			takeNext()
		case strings.HasPrefix(s, "--eval=") || strings.HasPrefix(s, "--print="):
			name, _, _ := strings.Cut(s, "=")
			ia.code = append(ia.code, suffixField(f, name+"="))
		case (lang == "pwsh" || lang == "powershell") && strings.HasPrefix(strings.ToLower(s), "-e"):
			ia.encoded = s
			return ia
		case strings.HasPrefix(s, "-") && len(s) > 1 && !strings.HasPrefix(s, "--") && !f.unknown():
		cluster:
			for j := 1; j < len(s); j++ {
				c := s[j]
				isCode := c == 'e' || c == 'E' && lang == "perl" || c == 'c' && (lang == "python" || lang == "pypy") ||
					c == 'r' && lang == "php" || c == 'p' && (lang == "node" || lang == "nodejs") || c == 'c' && lang == "expect"
				switch {
				case isCode:
					if j+1 < len(s) {
						ia.code = append(ia.code, suffixField(f, s[:j+1]))
					} else {
						takeNext()
					}
					break cluster
				case c == 'm' && (lang == "python" || lang == "pypy"):
					ia.module = true
					break cluster
				case c == 'i' && (lang == "perl" || lang == "ruby"):
					ia.inPlace = true
					break cluster // the rest is a backup suffix
				case strings.IndexByte("IMmx0lCdDF", c) >= 0 && (lang == "perl" || lang == "ruby"):
					break cluster // the rest is the option's value
				case strings.IndexByte("WX", c) >= 0 && (lang == "python" || lang == "pypy"):
					if j+1 == len(s) {
						i++
					}
					break cluster
				}
			}
		default:
			if len(ia.code) > 0 {
				ia.files = append(ia.files, f)
			} else {
				ia.script, ia.scriptFile = true, &argv[i]
			}
		}
	}
	return ia
}

// infoOnly reports whether an interpreter's arguments only ask for its
// version or help, which runs no code.
func infoOnly(args []field) bool {
	for _, f := range args {
		switch f.s {
		case "--version", "-V", "-v", "--help", "-h", "-help", "-version":
			return true
		}
	}
	return false
}

// interpStream judges an interpreter that runs the code it reads from in.
func (a *analyzer) interpStream(env *cmdEnv, n string, in *stream) {
	switch {
	case in == nil:
		a.hit(env.fr, ruleInteractive, "an interactive "+n)
	case in.kind == streamText:
		if in.decoded {
			a.hit(env.fr, ruleDecoded, in.from+" | "+n)
		}
		for _, t := range in.texts {
			a.oneLiner(env, n, field{s: t, disp: displayValue(t), dyn: strings.ContainsRune(t, markAny)})
		}
	case in.kind == streamRemote:
		a.hit(env.fr, ruleRemoteCode, in.from+" | "+n)
	case in.kind == streamDecoded:
		a.hit(env.fr, ruleDecoded, in.from+" | "+n)
	default:
		a.hit(env.fr, ruleOneLiner, "code read from "+in.from)
	}
}

// oneLiner judges inline code: approve, and what it visibly runs or deletes.
func (a *analyzer) oneLiner(env *cmdEnv, n string, code field) {
	a.hit(env.fr, ruleOneLiner, shorten(code.disp))
	if code.dyn {
		return
	}
	a.scanCode(env, n, code.s, !strings.HasPrefix(n, "node") && n != "deno" && n != "bun")
}

// scanCode finds shell commands and deletions written literally in code.
func (a *analyzer) scanCode(env *cmdEnv, n, code string, backticks bool) {
	for _, loc := range reExecCall.FindAllStringIndex(code, 8) {
		if cmd, ok := stringArgs(code[loc[1]:]); ok {
			a.nested(env.noStdin(), cmd, n+" code", nil)
		}
	}
	if backticks {
		for _, m := range reBacktick.FindAllStringSubmatch(code, 8) {
			a.nested(env.noStdin(), m[1], n+" code", nil)
		}
	}
	if strings.HasPrefix(n, "expect") || strings.HasPrefix(n, "tclsh") || n == "wish" {
		for _, m := range reTclExec.FindAllStringSubmatch(code, 8) {
			a.nested(env.noStdin(), m[1], n+" code", nil)
		}
	}
	for _, re := range []*regexp.Regexp{reDeleteCall, reDeleteBare} {
		for _, m := range re.FindAllStringSubmatch(code, 8) {
			a.deleteTarget(env.sc, env.fr, litField(m[1]+m[2]))
		}
	}
	for _, m := range reOpenWrite.FindAllStringSubmatch(code, 8) {
		a.writeTarget(env.sc, env.fr, litField(m[1]+m[2]), false)
	}
}

// stringArgs reads the string literal, or list of string literals, at the
// start of s (the arguments of system( or subprocess.run([).
func stringArgs(s string) (string, bool) {
	s = strings.TrimLeft(s, " \t")
	list := strings.HasPrefix(s, "[")
	if list {
		s = s[1:]
	}
	var parts []string
	for {
		s = strings.TrimLeft(s, " \t\n,")
		if s == "" || (s[0] != '"' && s[0] != '\'') {
			break
		}
		q := s[0]
		var b strings.Builder
		i := 1
		for ; i < len(s) && s[i] != q; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
			}
			b.WriteByte(s[i])
		}
		if i >= len(s) {
			return "", false
		}
		parts = append(parts, b.String())
		s = s[i+1:]
		if !list {
			break
		}
	}
	if len(parts) == 0 {
		return "", false
	}
	if list {
		for i, p := range parts {
			parts[i] = "'" + strings.ReplaceAll(p, "'", `'\''`) + "'"
		}
	}
	return strings.Join(parts, " "), true
}

func shorten(s string) string {
	if len(s) > 80 {
		return cutUTF8(s, 77) + "..."
	}
	return s
}

// awk judges awk programs that run commands (system, pipes) or write files.
func (a *analyzer) awk(env *cmdEnv, argv []field) {
	var prog *field
	progFile := false
loop:
	for i := 1; i < len(argv); i++ {
		s := argv[i].s
		switch {
		case s == "--":
			if i+1 < len(argv) && !progFile {
				prog = &argv[i+1]
			}
			break loop
		case s == "-f" || s == "--file" || s == "-E" || s == "--exec":
			progFile = true
			i++
		case strings.HasPrefix(s, "--file=") || strings.HasPrefix(s, "-f") && len(s) > 2:
			progFile = true
		case s == "-e" || s == "--source":
			if i+1 < len(argv) {
				i++
				prog = &argv[i]
			}
		case s == "-v" || s == "-F" || s == "--assign" || s == "--field-separator" || s == "-i" || s == "--include" || s == "-l" || s == "--load":
			i++
		case strings.HasPrefix(s, "-") && len(s) > 1:
		default:
			if !progFile && prog == nil {
				prog = &argv[i]
			}
			break loop
		}
	}
	if prog == nil {
		return
	}
	if prog.dyn {
		a.hit(env.fr, ruleOneLiner, prog.disp)
		return
	}
	if reAwkRuns.MatchString(prog.s) {
		a.hit(env.fr, ruleOneLiner, shorten(prog.disp))
		for _, m := range reAwkCmd.FindAllStringSubmatch(prog.s, 8) {
			a.nested(env.noStdin(), m[1]+m[2], "awk", nil)
		}
	}
	for _, m := range reAwkWrite.FindAllStringSubmatch(prog.s, 8) {
		a.writeTarget(env.sc, env.fr, litField(m[1]), strings.HasPrefix(m[0], ">>"))
	}
}

// sqlClient handles psql and mysql: SQL given with -c/-e or on standard
// input is checked with the SQL policy; a file (-f) is opaque.
func (a *analyzer) sqlClient(env *cmdEnv, n string, argv []field) bool {
	var valued, codeOpt string
	var longCode, longFile string
	switch n {
	case "psql":
		valued, codeOpt, longCode, longFile = "cdfhpUvPoLTFR", "c", "--command", "--file"
	case "mysql", "mariadb":
		valued, codeOpt, longCode = "eDhPSuOo", "e", "--execute"
	case "sqlite3", "sqlite":
		a.sqlite(env, n, argv)
		return true
	default:
		return false
	}
	var code, files []field
	for i := 1; i < len(argv); i++ {
		f := argv[i]
		s := f.s
		switch {
		case s == longCode || s == longFile:
			if i+1 < len(argv) {
				i++
				if s == longCode {
					code = append(code, argv[i])
				} else {
					files = append(files, argv[i])
				}
			}
		case strings.HasPrefix(s, longCode+"="):
			code = append(code, suffixField(f, longCode+"="))
		case longFile != "" && strings.HasPrefix(s, longFile+"="):
			files = append(files, suffixField(f, longFile+"="))
		case strings.HasPrefix(s, "--"):
		case strings.HasPrefix(s, "-") && len(s) > 1:
			for j := 1; j < len(s); j++ {
				c := s[j]
				if strings.IndexByte(valued, c) < 0 {
					continue
				}
				var v field
				if j+1 < len(s) {
					v = suffixField(f, s[:j+1])
				} else if i+1 < len(argv) {
					i++
					v = argv[i]
				} else {
					break
				}
				if string(c) == codeOpt {
					code = append(code, v)
				} else if c == 'f' && n == "psql" {
					files = append(files, v)
				}
				break
			}
		}
	}
	for _, c := range code {
		a.sqlText(env, n, c)
	}
	for _, f := range files {
		if f.s == "-" {
			code = append(code, f)
			a.sqlStdin(env, n)
			continue
		}
		a.hit(env.fr, ruleSQLOpaque, "file "+f.disp)
	}
	if len(code) == 0 && len(files) == 0 {
		a.sqlStdin(env, n)
	}
	return true
}

func (a *analyzer) sqlStdin(env *cmdEnv, n string) {
	switch in := env.in; {
	case in == nil:
	case in.kind == streamText:
		for _, t := range in.texts {
			a.sqlText(env, n, field{s: t, disp: t, dyn: strings.ContainsAny(t, sAny+sTok)})
		}
	default:
		a.hit(env.fr, ruleSQLOpaque, in.from)
	}
}

// sqlText classifies SQL text; psql meta-commands (\dt) are allowed,
// except \! (a shell command) and output piped to a program.
func (a *analyzer) sqlText(env *cmdEnv, n string, f field) {
	if f.unknown() {
		a.partialSQL(env, n, f)
		return
	}
	var sql []string
	for _, line := range strings.Split(f.s, "\n") {
		t := strings.TrimSpace(line)
		if n != "psql" || !strings.HasPrefix(t, `\`) {
			sql = append(sql, line)
			continue
		}
		switch {
		case strings.HasPrefix(t, `\!`):
			a.nested(env.noStdin(), t[2:], `psql \!`, nil)
		case strings.ContainsAny(t, "|") || strings.Contains(strings.ToLower(t), "program"):
			a.hit(env.fr, ruleSQLOpaque, t)
		}
	}
	text := strings.TrimSpace(strings.Join(sql, "\n"))
	if text == "" {
		return
	}
	a.classify(env, n, text)
}

// classify judges SQL text with the SQL policy, which reads PostgreSQL.
// Another client's dialect may not parse there: MySQL's `quoted` names are
// read as "quoted" names, and what still does not parse is opaque
// (approve) rather than an error, as the database will read it its own way.
func (a *analyzer) classify(env *cmdEnv, n, text string) {
	if n != "psql" && strings.Contains(text, "`") && !strings.ContainsAny(text, `"'`) {
		text = strings.ReplaceAll(text, "`", `"`)
	}
	res := a.p.SQLClassifierFor(Input{Principal: a.in.Principal, Role: a.in.Role}).Classify(text).Result
	if n != "psql" && res.Rule == ruleSQLParseError {
		a.hit(env.fr, ruleSQLOpaque, "SQL in a dialect bastion cannot parse: "+shorten(text))
		return
	}
	env.fr.hits = append(env.fr.hits, hit{res: &res})
}

// partialSQL judges SQL with parts not known before it runs ("DROP TABLE
// $T"): approve, and deny when what is visible is denied whatever the
// unknown parts hold (an identifier stands in for them).
func (a *analyzer) partialSQL(env *cmdEnv, n string, f field) {
	a.hit(env.fr, ruleSQLOpaque, f.disp)
	text := strings.NewReplacer(sAny, `"…"`, sTok, `"…"`).Replace(f.s)
	if n == "psql" && strings.HasPrefix(strings.TrimSpace(text), `\`) {
		return
	}
	if res := a.p.SQLClassifierFor(Input{Principal: a.in.Principal, Role: a.in.Role}).Classify(text).Result; res.Decision == policy.Deny && res.Rule != ruleSQLParseError {
		env.fr.hits = append(env.fr.hits, hit{res: &res})
	}
}

// sqlite judges sqlite3 [options] FILE [SQL...]: the SQL given as arguments
// or on standard input, and the dot-commands that run shell commands.
func (a *analyzer) sqlite(env *cmdEnv, n string, argv []field) {
	var ops []field
	for i := 1; i < len(argv); i++ {
		s := strings.TrimPrefix(argv[i].s, "-")
		switch {
		case argv[i].s == "--":
			ops = append(ops, argv[i+1:]...)
			i = len(argv)
		case !strings.HasPrefix(argv[i].s, "-") || argv[i].unknown():
			ops = append(ops, argv[i])
		case s == "cmd" && i+1 < len(argv):
			i++
			a.sqliteText(env, n, argv[i])
		case s == "init" && i+1 < len(argv):
			i++
			a.hit(env.fr, ruleSQLOpaque, "file "+argv[i].disp)
		case s == "separator" || s == "newline" || s == "nullvalue" || s == "maxsize" || s == "vfs" ||
			s == "mmap" || s == "lookaside" || s == "pagecache" || s == "heap" || s == "zip-file" || s == "A":
			i++
		}
	}
	if len(ops) > 1 {
		for _, f := range ops[1:] {
			a.sqliteText(env, n, f)
		}
		return
	}
	switch in := env.in; {
	case in == nil:
	case in.kind == streamText:
		for _, t := range in.texts {
			a.sqliteText(env, n, field{s: t, disp: t, dyn: strings.ContainsAny(t, sAny+sTok)})
		}
	default:
		a.hit(env.fr, ruleSQLOpaque, in.from)
	}
}

// sqliteText judges SQL and dot-commands for sqlite3: .shell and .system
// run shell commands, .read runs a file; the other dot-commands are
// allowed.
func (a *analyzer) sqliteText(env *cmdEnv, n string, f field) {
	if f.unknown() {
		a.partialSQL(env, n, f)
		return
	}
	var sql []string
	for _, line := range strings.Split(f.s, "\n") {
		t := strings.TrimSpace(line)
		if !strings.HasPrefix(t, ".") {
			sql = append(sql, line)
			continue
		}
		cmd, rest, _ := strings.Cut(t, " ")
		switch cmd {
		case ".shell", ".system":
			a.nested(env.noStdin(), rest, "sqlite3 "+cmd, nil)
		case ".read", ".import", ".load", ".restore", ".open":
			a.hit(env.fr, ruleSQLOpaque, t)
		}
	}
	if text := strings.TrimSpace(strings.Join(sql, "\n")); text != "" {
		a.classify(env, n, text)
	}
}
