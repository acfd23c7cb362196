package shellpolicy

import "strings"

// Commands that run other code from their options or input: archive tools
// with hooks, git settings, and schedulers (crontab, at).

// extract judges unpacking an archive into a directory: tar -x -C DIR,
// unzip -d DIR, 7z x -oDIR. Into / or a system directory it may replace
// any system file.
func (a *analyzer) extract(env *cmdEnv, n string, args []field) {
	var dir *field
	extracting := n == "unzip"
	for i := 0; i < len(args); i++ {
		f, s := args[i], args[i].s
		switch {
		case n == "unzip":
			if s == "-d" && i+1 < len(args) {
				dir = &args[i+1]
				i++
			} else if s == "-l" || s == "-v" || s == "-t" || s == "-Z" || s == "-p" || s == "-c" {
				extracting = false
			}
		case n == "7z" || n == "7za":
			if i == 0 && (s == "x" || s == "e") {
				extracting = true
			} else if strings.HasPrefix(s, "-o") && len(s) > 2 {
				d := suffixField(f, "-o")
				dir = &d
			}
		case s == "-C" || s == "--directory":
			if i+1 < len(args) {
				dir = &args[i+1]
				i++
			}
		case strings.HasPrefix(s, "--directory="):
			d := suffixField(f, "--directory=")
			dir = &d
		case s == "--extract" || s == "--get":
			extracting = true
		case strings.HasPrefix(s, "--"):
		case i == 0 || strings.HasPrefix(s, "-") && len(s) > 1:
			// the first word may be a cluster without a dash: tar xzf x.tgz
			if strings.ContainsRune(strings.TrimPrefix(s, "-"), 'x') {
				extracting = true
			}
			if strings.HasPrefix(s, "-") && strings.HasSuffix(s, "C") && i+1 < len(args) {
				dir = &args[i+1]
				i++
			}
		}
	}
	if extracting && dir != nil {
		a.writeTarget(env.sc, env.fr, descendants(*dir), false)
	}
	if n == "tar" || n == "gtar" || n == "bsdtar" {
		a.tarHooks(env, args)
	}
}

// tarHooks analyses the commands GNU tar runs for its options:
// --checkpoint-action=exec=CMD, --to-command, --use-compress-program (-I),
// --info-script (-F) and --rsh-command.
func (a *analyzer) tarHooks(env *cmdEnv, args []field) {
	for i := 0; i < len(args); i++ {
		s := args[i].s
		var code field
		name, val, eq := strings.Cut(s, "=")
		switch {
		case name == "--checkpoint-action" && eq && strings.HasPrefix(val, "exec="):
			code = suffixField(args[i], "--checkpoint-action=exec=")
		case name == "--checkpoint-action" && !eq && i+1 < len(args) && strings.HasPrefix(args[i+1].s, "exec="):
			i++
			code = suffixField(args[i], "exec=")
		case (name == "--to-command" || name == "--use-compress-program" || name == "--info-script" ||
			name == "--new-volume-script" || name == "--rsh-command") && eq:
			code = suffixField(args[i], name+"=")
		case (s == "--to-command" || s == "--use-compress-program" || s == "--info-script" || s == "--new-volume-script" ||
			s == "--rsh-command" || s == "-I" || s == "-F") && i+1 < len(args):
			i++
			code = args[i]
		default:
			continue
		}
		a.nestedField(env.noStdin(), code, "tar "+name, nil)
		env.fr.show = true
	}
}

// gitHooks analyses the shell commands git runs from -c settings: aliases
// starting with !, pagers, editors, ssh commands, external diff tools.
func (a *analyzer) gitHooks(env *cmdEnv, _ string, args []field) {
	for i := 0; i < len(args); i++ {
		var kv field
		switch {
		case args[i].s == "-c" && i+1 < len(args):
			i++
			kv = args[i]
		case strings.HasPrefix(args[i].s, "--config-env") || !strings.HasPrefix(args[i].s, "-"):
			return // the subcommand: -c comes before it
		default:
			continue
		}
		key, val, ok := strings.Cut(kv.s, "=")
		if !ok {
			continue
		}
		key = strings.ToLower(key)
		switch {
		case strings.HasPrefix(key, "alias.") && strings.HasPrefix(val, "!"):
			val = val[1:]
		case gitCommandKeys[key] || strings.HasPrefix(key, "filter.") || strings.HasPrefix(key, "diff.") && strings.HasSuffix(key, ".command"):
		default:
			continue
		}
		a.nestedField(env.noStdin(), field{s: val, disp: displayValue(val), dyn: kv.dyn}, "git -c "+key, nil)
		env.fr.show = true
	}
}

// gitCommandKeys are git settings whose value is a shell command.
var gitCommandKeys = map[string]bool{"core.pager": true, "core.editor": true, "core.sshcommand": true,
	"core.fsmonitor": true, "core.askpass": true, "sequence.editor": true, "diff.external": true,
	"credential.helper": true, "pager.log": true, "pager.diff": true, "pager.show": true, "gpg.program": true}

// schedule judges crontab and at, which install commands that run later,
// outside this session and its recording: approve, and deny when the
// visible commands are destructive. crontab -l/-r/-e and at -l are
// judged elsewhere or harmless.
func (a *analyzer) schedule(env *cmdEnv, n string, args []field) {
	var file *field
	for i := 0; i < len(args); i++ {
		s := args[i].s
		switch {
		case n == "crontab" && (s == "-l" || s == "-r" || s == "-e" || s == "-ir" || s == "-T" || s == "-V"),
			n != "crontab" && (s == "-l" || s == "-r" || s == "-d" || s == "-c" || s == "-V"):
			return
		case s == "-f" && n != "crontab" && i+1 < len(args):
			i++
			file = &args[i]
		case s == "-u" || s == "-q" || s == "-t":
			i++
		case s == "-" || strings.HasPrefix(s, "-"):
		case n == "crontab":
			file = &args[i]
		}
	}
	a.hit(env.fr, ruleScheduledJob, n)
	switch {
	case file != nil:
		a.hit(env.fr, ruleOpaqueScript, n+" "+file.disp)
		a.writtenScript(env, *file, n)
	case env.in != nil && env.in.kind == streamText:
		for _, text := range env.in.texts {
			code := text
			if n == "crontab" {
				code = cronCommands(text)
			}
			a.nestedField(env.noStdin(), field{s: code, disp: displayValue(code), dyn: strings.ContainsRune(code, markAny)}, n, nil)
		}
	case env.in != nil:
		a.hit(env.fr, rulePipedScript, env.in.from+" | "+n)
	}
}

// cronCommands returns the commands of a crontab, one per line, without
// their schedules; comments and variable settings are left out.
func cronCommands(tab string) string {
	var out []string
	for _, line := range strings.Split(tab, "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		fields := 5
		if strings.HasPrefix(t, "@") {
			fields = 1
		} else if name, _, ok := strings.Cut(t, "="); ok && isName(strings.TrimSpace(name)) {
			continue
		}
		for k := 0; k < fields; k++ {
			t = strings.TrimLeft(t, " \t")
			if i := strings.IndexAny(t, " \t"); i >= 0 {
				t = t[i:]
			} else {
				t = ""
			}
		}
		// in a crontab, % ends the command (the rest is its standard input)
		if i := strings.IndexByte(t, '%'); i >= 0 {
			t = t[:i]
		}
		out = append(out, strings.TrimSpace(t))
	}
	return strings.Join(out, "\n")
}
