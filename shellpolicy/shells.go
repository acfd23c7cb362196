package shellpolicy

import (
	"strings"
)

// shell analyses sh, bash, zsh... : the code of -c, a script file (opaque),
// or what the shell reads from its standard input.
func (a *analyzer) shell(env *cmdEnv, n string, argv []field) {
	cmdMode, stdinMode := false, false
	i := 1
loop:
	for i < len(argv) {
		f := &argv[i]
		s := f.s
		switch {
		case s == "--" || s == "-":
			i++
			break loop
		case f.unknown() || len(s) < 2 || (s[0] != '-' && s[0] != '+'):
			break loop
		case strings.HasPrefix(s, "--"):
			if (s == "--rcfile" || s == "--init-file") && i+1 < len(argv) {
				i++
				// the shell runs that file first
				a.hit(env.fr, ruleOpaqueScript, s+" "+argv[i].disp)
				a.writtenScript(env, argv[i], n)
			}
		default:
			for _, c := range s[1:] {
				switch c {
				case 'c':
					cmdMode = true
				case 's':
					stdinMode = true
				case 'o', 'O':
					i++ // -o option takes a name
				}
			}
		}
		i++
	}
	var ops []field
	if i < len(argv) {
		ops = argv[i:]
	}
	switch {
	case cmdMode:
		if len(ops) == 0 {
			return
		}
		args := make([]string, 0, len(ops))
		for _, f := range ops[1:] {
			args = append(args, f.s)
		}
		if len(args) == 0 {
			args = append(args, n)
		}
		a.nestedField(env, ops[0], n+" -c", args)
	case len(ops) > 0 && !stdinMode:
		script := ops[0]
		switch {
		case script.proc != nil:
			a.runStream(env, n, a.procs[script.proc])
		case script.s == "/dev/stdin" || script.s == "/proc/self/fd/0":
			a.runStream(env, n, env.in)
		default:
			a.hit(env.fr, ruleOpaqueScript, script.disp)
			a.writtenScript(env, script, n)
		}
	default:
		a.runStream(env, n, env.in)
	}
}

// runStream judges a shell that runs the code it reads from in.
func (a *analyzer) runStream(env *cmdEnv, n string, in *stream) {
	switch {
	case in == nil:
		// The shell reads the session itself: in a terminal, every line typed
		// into it would bypass the per-line check.
		if env.root {
			a.hit(env.fr, ruleRootShell, n)
		} else {
			a.hit(env.fr, ruleInteractive, "an interactive "+n)
		}
	case in.kind == streamText:
		if in.decoded {
			a.hit(env.fr, ruleDecoded, in.from+" | "+n)
		}
		for _, text := range in.texts {
			a.nestedField(env.noStdin(), field{s: text, disp: displayValue(text), dyn: strings.ContainsRune(text, markAny)}, n+" reading "+in.from, nil)
		}
	case in.kind == streamRemote:
		a.hit(env.fr, ruleRemoteCode, in.from+" | "+n)
	case in.kind == streamDecoded:
		a.hit(env.fr, ruleDecoded, in.from+" | "+n)
	default:
		a.hit(env.fr, rulePipedScript, in.from+" | "+n)
	}
}

// source judges source FILE and . FILE: the file's code is not visible.
func (a *analyzer) source(env *cmdEnv, n string, argv []field) {
	if len(argv) < 2 {
		return
	}
	f := argv[1]
	switch {
	case f.proc != nil:
		a.runStream(env, n, a.procs[f.proc])
	case f.s == "/dev/stdin" || f.s == "/proc/self/fd/0":
		a.runStream(env, n, env.in)
	default:
		a.hit(env.fr, ruleOpaqueScript, f.disp)
		a.writtenScript(env, f, "sh")
	}
}

// flock [options] FILE COMMAND... or flock [options] FILE -c CODE.
func (a *analyzer) flock(env *cmdEnv, _ string, argv []field) ([]field, bool) {
	var code *field
	fn := func(opt string, v *field) {
		if opt == "-c" || opt == "--command" {
			code = v
		}
	}
	i, _ := flockFlags.parse(argv, 1, fn)
	if i >= len(argv) || isDigits(argv[i].s) && i == len(argv)-1 {
		return nil, true
	}
	j, _ := flockFlags.parse(argv, i+1, fn) // options may follow the lock file
	if code != nil {
		a.nestedField(env, *code, "flock -c", nil)
		return nil, true
	}
	if j >= len(argv) {
		return nil, true
	}
	return argv[j:], true
}

// stdinArgs is what xargs and parallel append from their standard input.
func stdinArgs(in *stream) []field {
	switch {
	case in != nil && in.kind == streamPaths:
		return in.paths
	case in != nil && in.kind == streamText && len(in.texts) == 1 && !strings.ContainsRune(in.texts[0], markAny):
		var out []field
		for _, w := range strings.Fields(in.texts[0]) {
			out = append(out, litField(w))
		}
		if len(out) <= 16 {
			return out
		}
	}
	return []field{{s: sAny, disp: "(standard input)", dyn: true, multi: true}}
}

// xargs [options] COMMAND ARGS...: the command gets its standard input as
// more arguments.
func (a *analyzer) xargs(env *cmdEnv, _ string, argv []field) {
	repl := ""
	fromFile := false
	i, _ := xargsFlags.parse(argv, 1, func(opt string, v *field) {
		switch {
		case opt == "-I" && v != nil:
			repl = v.s
		case opt == "-i" || opt == "--replace":
			repl = "{}"
		case opt == "-a" || opt == "--arg-file":
			fromFile = true
		}
	})
	cmd := []field{litField("echo")}
	if i < len(argv) {
		cmd = argv[i:]
	}
	in := env.in
	if fromFile {
		in = nil
	}
	inputs := stdinArgs(in)
	sub := *env
	sub.in = nil
	if repl == "" {
		a.command(&sub, append(append([]field(nil), cmd...), inputs...))
		return
	}
	for k, v := range inputs {
		if k == 4 {
			break
		}
		a.command(&sub, replaceArg(cmd, repl, v))
	}
}

// replaceArg returns cmd with repl inside any argument replaced by v.
func replaceArg(cmd []field, repl string, v field) []field {
	out := make([]field, len(cmd))
	for i, f := range cmd {
		if !strings.Contains(f.s, repl) {
			out[i] = f
			continue
		}
		if f.s == repl {
			out[i] = v
			continue
		}
		g := f
		g.s = strings.ReplaceAll(f.s, repl, v.s)
		g.disp = strings.ReplaceAll(f.disp, repl, v.disp)
		g.dyn = f.dyn || v.dyn
		if v.glob || f.glob {
			g.glob = true
			g.pat = strings.ReplaceAll(f.pattern(), escapeGlob(repl), v.pattern())
		}
		out[i] = g
	}
	return out
}

// parallel [options] COMMAND ::: ARGS: each argument runs the command.
// Its options are many; every word before ::: may start the command.
func (a *analyzer) parallel(env *cmdEnv, _ string, argv []field) {
	end := len(argv)
	var values []field
	for i, f := range argv {
		if f.s == ":::" || f.s == "::::" || f.s == ":::+" {
			end = i
			if f.s != "::::" {
				values = argv[i+1:]
			}
			break
		}
	}
	if values == nil {
		values = stdinArgs(env.in)
	}
	sub := *env
	sub.in = nil
	starts := 0
	for i := 1; i < end && starts < 3; i++ {
		if strings.HasPrefix(argv[i].s, "-") {
			continue
		}
		starts++
		tmpl := argv[i:end]
		for k, v := range values {
			if k == 4 {
				break
			}
			if len(tmpl) == 1 && strings.ContainsAny(tmpl[0].s, " \t;|&") {
				a.nestedField(&sub, replaceArg(tmpl, "{}", v)[0], "parallel", nil)
				continue
			}
			cmd := replaceArg(tmpl, "{}", v)
			if !hasArg(tmpl, "{}") {
				cmd = append(cmd, v)
			}
			a.command(&sub, cmd)
		}
	}
}

func hasArg(args []field, s string) bool {
	for _, f := range args {
		if strings.Contains(f.s, s) {
			return true
		}
	}
	return false
}

// ssh [options] HOST [COMMAND...]: the command runs in the remote shell.
func (a *analyzer) ssh(env *cmdEnv, _ string, argv []field) {
	none := false
	fn := func(opt string, v *field) {
		switch opt {
		case "-N", "-O", "-G", "-V", "-Q":
			none = true
		case "-o":
			// ProxyCommand and LocalCommand run here, in a shell
			if v == nil {
				return
			}
			key, val, ok := strings.Cut(v.s, "=")
			if !ok {
				key, val, _ = strings.Cut(v.s, " ")
			}
			key = strings.TrimSpace(key)
			if strings.EqualFold(key, "ProxyCommand") || strings.EqualFold(key, "LocalCommand") {
				a.nestedField(env.noStdin(), field{s: val, disp: displayValue(val), dyn: v.dyn}, "ssh -o "+key, nil)
			}
		}
	}
	i, _ := sshFlags.parse(argv, 1, fn)
	if i >= len(argv) {
		return
	}
	host := argv[i]
	j, _ := sshFlags.parse(argv, i+1, fn) // OpenSSH reads options after the host too
	switch {
	case none:
	case j < len(argv):
		a.nestedArgs(env, argv[j:], "ssh "+host.disp)
	case env.in != nil:
		// the remote shell runs what ssh reads: ssh host <<'EOF' ... EOF
		a.runStream(env, "ssh "+host.disp, env.in)
	default:
		a.hit(env.fr, ruleRemoteShell, host.disp)
	}
}
