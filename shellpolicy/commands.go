package shellpolicy

import (
	"path"
	"strings"
)

// checkedNames are the commands check knows, for glob command names.
var checkedNames = []string{"rm", "rmdir", "unlink", "shred", "srm", "wipe", "trash-put", "find", "mv", "cp",
	"install", "ln", "rsync", "scp", "chmod", "chown", "chgrp", "dd", "truncate", "tee", "sed", "mkfs", "mke2fs",
	"mkswap", "wipefs", "fdisk", "sfdisk", "parted", "gdisk", "sgdisk", "cfdisk", "blkdiscard", "kill", "killall5",
	"shutdown", "reboot", "halt", "poweroff", "init", "telinit", "systemctl", "history", "set", "unset", "cd",
	"sudo", "su", "env", "bash", "sh", "zsh", "dash", "eval", "exec", "xargs", "python", "python3", "perl", "ruby",
	"node", "psql", "mysql", "ssh", "busybox", "curl", "wget"}

var checkedSet = func() map[string]bool {
	m := make(map[string]bool, len(checkedNames))
	for _, n := range checkedNames {
		m[n] = true
	}
	return m
}()

func cleanPath(p string) string { return path.Clean(p) }

// check judges command n by what it does to its arguments.
func (a *analyzer) check(env *cmdEnv, n string, argv []field) {
	args := argv[1:]
	sc, fr := env.sc, env.fr
	switch n {
	case "rm", "rmdir", "unlink", "srm", "wipe", "trash", "trash-put", "gio":
		ops := operands(args, "")
		if n == "gio" {
			if len(ops) == 0 || ops[0].s != "trash" && ops[0].s != "remove" {
				return
			}
			ops = ops[1:]
		}
		for _, f := range ops {
			a.deleteTarget(sc, fr, f)
		}
	case "shred":
		for _, f := range operands(args, "ns", "--iterations", "--random-source", "--size") {
			a.writeTarget(sc, fr, f, false)
			if hasOpt(args, "-u", "--remove") {
				a.deleteTarget(sc, fr, f)
			}
		}
	case "find":
		a.find(env, args)
	case "mv", "cp", "install", "ln", "rsync", "scp":
		a.copyLike(env, n, args)
	case "chmod", "chown", "chgrp", "chattr", "setfacl":
		a.chmod(env, n, args)
	case "dd":
		for _, f := range args {
			if strings.HasPrefix(f.s, "of=") {
				a.writeTarget(sc, fr, suffixField(f, "of="), hasArgPrefix(args, "conv=", "notrunc") || hasArgPrefix(args, "oflag=", "append"))
			}
		}
	case "truncate":
		for _, f := range operands(args, "sr", "--size", "--reference") {
			a.writeTarget(sc, fr, f, false)
		}
	case "tee":
		for _, f := range operands(args, "") {
			a.writeTarget(sc, fr, f, hasOpt(args, "-a", "--append"))
			a.recordWrite(sc, f, env.in)
		}
	case "sed":
		a.sed(env, args)
	case "tar", "bsdtar", "gtar", "unzip", "7z", "7za":
		a.extract(env, n, args)
	case "git":
		a.gitHooks(env, args)
	case "crontab", "at", "batch":
		a.schedule(env, n, args)
	case "mkfs", "mke2fs", "mkswap", "mkntfs", "mkdosfs", "mkexfatfs", "cfdisk", "blkdiscard":
		a.hit(fr, ruleFormatDisk, joinDisp(args))
	case "wipefs":
		if hasOpt(args, "-a", "--all", "-o", "--offset") {
			a.hit(fr, ruleFormatDisk, joinDisp(args))
		}
	case "fdisk", "gdisk":
		if !hasOpt(args, "-l", "--list") {
			a.hit(fr, ruleFormatDisk, joinDisp(args))
		}
	case "sfdisk":
		if !hasOpt(args, "-l", "--list", "-d", "--dump", "-s", "--show-size", "-V", "--verify", "-J", "--json", "-g", "--show-geometry", "-F", "--list-free") {
			a.hit(fr, ruleFormatDisk, joinDisp(args))
		}
	case "sgdisk":
		if !hasOpt(args, "-p", "--print", "-i", "--info", "-v", "--verify", "-O", "--print-mbr", "-L", "--list-types") {
			a.hit(fr, ruleFormatDisk, joinDisp(args))
		}
	case "parted":
		ops := operands(args, "")
		readOnly := hasOpt(args, "-l", "--list") || len(ops) == 1
		for _, f := range ops {
			readOnly = readOnly || f.s == "print" || f.s == "p" || f.s == "help"
		}
		if !readOnly {
			a.hit(fr, ruleFormatDisk, joinDisp(args))
		}
	case "kill":
		a.kill(env, args)
	case "killall5":
		a.hit(fr, ruleKillAll, "killall5")
	case "shutdown":
		if !hasOpt(args, "-c") {
			a.hit(fr, ruleShutdown, "")
		}
	case "reboot", "halt", "poweroff":
		a.hit(fr, ruleShutdown, "")
	case "init", "telinit":
		for _, f := range operands(args, "") {
			switch f.s {
			case "0", "1", "6", "s", "S", "single":
				a.hit(fr, ruleShutdown, f.s)
			}
		}
	case "systemctl":
		ops := operands(args, "pPtHMnos", "--property", "--type", "--state", "--host", "--machine", "--lines", "--output", "--signal", "--kill-whom", "--root", "--job-mode")
		if len(ops) == 0 {
			return
		}
		switch ops[0].s {
		case "poweroff", "reboot", "halt", "kexec", "emergency", "rescue", "suspend", "hibernate", "hybrid-sleep",
			"suspend-then-hibernate", "soft-reboot", "default":
			a.hit(fr, ruleShutdown, ops[0].s)
		case "isolate":
			for _, f := range ops[1:] {
				switch strings.TrimSuffix(f.s, ".target") {
				case "poweroff", "reboot", "halt", "rescue", "emergency", "runlevel0", "runlevel1", "runlevel6", "kexec":
					a.hit(fr, ruleShutdown, "isolate "+f.s)
				}
			}
		}
	case "shopt":
		for _, f := range args {
			if f.s == "expand_aliases" && hasOpt(args, "-s") {
				// Aliases expand after the check: `alias ls='rm -rf /'`.
				a.hit(fr, ruleShellInternals, "shopt "+joinDisp(args))
			}
		}
	case "history":
		if hasOpt(args, "-c", "-d") {
			a.hit(fr, ruleWipeHistory, "history "+joinDisp(args))
		}
	case "set":
		for i, f := range args {
			if f.s == "+o" && i+1 < len(args) && args[i+1].s == "history" {
				a.hit(fr, ruleWipeHistory, "set +o history")
			}
			// History expansion rewrites a line after it was checked.
			if f.s == "-o" && i+1 < len(args) && args[i+1].s == "histexpand" ||
				len(f.s) > 1 && f.s[0] == '-' && f.s[1] != '-' && strings.ContainsRune(f.s, 'H') {
				a.hit(fr, ruleShellInternals, "set "+joinDisp(args))
			}
		}
		setPositional(sc, args)
	case "unset":
		for _, f := range args {
			switch f.s {
			case "HISTFILE", "HISTSIZE", "HISTFILESIZE", "SAVEHIST":
				a.hit(fr, ruleWipeHistory, "unset "+f.s)
			}
			if isName(f.s) {
				sc.set(f.s, val{alts: []string{""}})
			}
		}
	case "cd", "pushd", "popd":
		a.cd(env, n, args)
	case "nc", "ncat", "netcat", "nc.traditional", "nc.openbsd":
		for i, f := range args {
			if f.s == "-e" || f.s == "-c" || f.s == "--exec" || f.s == "--sh-exec" || f.s == "--lua-exec" ||
				strings.HasPrefix(f.s, "--exec=") || strings.HasPrefix(f.s, "--sh-exec=") ||
				len(f.s) > 2 && f.s[0] == '-' && f.s[1] != '-' && strings.ContainsAny(f.s[len(f.s)-1:], "ec") && i+1 < len(args) {
				a.hit(fr, ruleReverseShell, n+" "+joinDisp(args))
				break
			}
		}
	case "socat":
		for _, f := range args {
			l := strings.ToLower(f.s)
			if strings.HasPrefix(l, "exec:") || strings.HasPrefix(l, "system:") {
				a.hit(fr, ruleReverseShell, "socat "+joinDisp(args))
				break
			}
		}
	case "hash":
		if hasOpt(args, "-p") {
			a.hit(fr, ruleEnvOverride, "hash "+joinDisp(args))
		}
	case "enable":
		if hasOpt(args, "-f") { // loads a shared object into the shell
			a.hit(fr, ruleEnvOverride, "enable "+joinDisp(args))
		} else if len(args) > 0 && !hasOpt(args, "-p") {
			// Disabling builtins changes what later lines mean.
			a.hit(fr, ruleShellInternals, "enable "+joinDisp(args))
		}
	case "vi", "vim", "nvim", "ex", "view", "gvim":
		for i, f := range args {
			var cmd string
			switch {
			case (f.s == "-c" || f.s == "--cmd") && i+1 < len(args):
				cmd = args[i+1].s
			case strings.HasPrefix(f.s, "+"):
				cmd = f.s[1:]
			default:
				continue
			}
			if c := strings.TrimLeft(cmd, ": "); strings.HasPrefix(c, "!") {
				a.nested(env.noStdin(), c[1:], n+" :!", nil)
			}
		}
	case "read", "mapfile", "readarray", "getopts":
		for _, f := range operands(args, "adnNptuiC") {
			if isName(f.s) {
				sc.set(f.s, unknownVal)
			}
		}
		if n == "mapfile" || n == "readarray" {
			sc.set("MAPFILE", unknownVal)
		}
	}
	if strings.HasPrefix(n, "mkfs.") {
		a.hit(fr, ruleFormatDisk, joinDisp(args))
	}
}

// setPositional tracks set -- a b c (and set a b c): the positional
// parameters become the operands.
func setPositional(sc *scope, args []field) {
	i := 0
	for ; i < len(args); i++ {
		s := args[i].s
		if s == "--" {
			i++
			break
		}
		if args[i].unknown() || len(s) < 2 || s[0] != '-' && s[0] != '+' {
			break
		}
		if s == "-o" || s == "+o" {
			i++
		}
	}
	if i > len(args) || i == len(args) && (len(args) == 0 || args[len(args)-1].s != "--") {
		return // only options: the positional parameters stay
	}
	dollar0 := "bash"
	if old, ok := sc.positional(); ok && len(old) > 0 {
		dollar0 = old[0]
	}
	vals := []string{dollar0}
	for _, f := range args[i:] {
		if f.multi {
			sc.args, sc.hasArgs = nil, true // unknown
			return
		}
		vals = append(vals, f.s)
	}
	sc.setArgs(vals)
}

func joinDisp(args []field) string { return strings.Join(display(args), " ") }

// hasArgPrefix reports an argument prefix=...value... (dd conv=notrunc).
func hasArgPrefix(args []field, prefix, value string) bool {
	for _, f := range args {
		if strings.HasPrefix(f.s, prefix) && strings.Contains(f.s, value) {
			return true
		}
	}
	return false
}

// cd tracks the working directory for relative paths. On the left of && the
// rest sees only the new directory; otherwise cd may have failed.
func (a *analyzer) cd(env *cmdEnv, n string, args []field) {
	sc := env.sc
	old := sc.getCwd()
	var dirs []string
	ops := operands(args, "")
	switch {
	case n == "popd" || len(ops) > 0 && ops[0].s == "-":
		dirs = []string{sAny}
	case len(ops) == 0:
		home, _ := a.envDefault(sc, "HOME")
		if v, ok := sc.lookup("HOME"); ok {
			home = v
		}
		dirs = home.alts
	default:
		dirs = resolveDir(ops[0], old)
	}
	if !env.andThen {
		dirs = appendNew(dirs, old...)
	}
	if len(dirs) > maxAlts {
		dirs = []string{sAny}
	}
	sc.cwd = dirs
}

// find judges -delete, -exec and -fprint on the paths find walks.
func (a *analyzer) find(env *cmdEnv, args []field) {
	i := 0
	for i < len(args) && (args[i].s == "-H" || args[i].s == "-L" || args[i].s == "-P" || strings.HasPrefix(args[i].s, "-O")) {
		i++
	}
	if i+1 < len(args) && args[i].s == "-D" {
		i += 2
	}
	var roots []field
	for ; i < len(args); i++ {
		s := args[i].s
		if strings.HasPrefix(s, "-") && !args[i].unknown() || s == "(" || s == "!" || s == "," {
			break
		}
		roots = append(roots, args[i])
	}
	if len(roots) == 0 {
		roots = []field{litField(".")}
	}
	for ; i < len(args); i++ {
		switch args[i].s {
		case "-delete":
			for _, r := range roots {
				a.deleteTarget(env.sc, env.fr, descendants(r))
			}
		case "-exec", "-execdir", "-ok", "-okdir":
			j := i + 1
			for j < len(args) && args[j].s != ";" && args[j].s != "+" {
				j++
			}
			cmd := args[i+1 : j]
			i = j
			if len(cmd) == 0 {
				continue
			}
			for k, r := range roots {
				if k == 4 {
					break
				}
				sub := *env
				sub.in = nil
				sub.fr = &frame{pos: env.fr.pos}
				a.command(&sub, replaceArg(cmd, "{}", descendants(r)))
				a.endFrame(sub.fr)
			}
		case "-fprint", "-fprint0", "-fprintf", "-fls":
			if i+1 < len(args) {
				i++
				a.writeTarget(env.sc, env.fr, args[i], false)
			}
		}
	}
}

// copyLike judges cp, mv, install, ln, rsync and scp: the destination is
// written; mv also removes its sources.
func (a *analyzer) copyLike(env *cmdEnv, n string, args []field) {
	var shortArg string
	var longArg []string
	switch n {
	case "cp", "mv", "ln":
		shortArg, longArg = "St", []string{"--target-directory", "--suffix"}
	case "install":
		shortArg, longArg = "gmoStT", []string{"--group", "--mode", "--owner", "--suffix", "--target-directory"}
	case "rsync":
		shortArg = "efTBM"
		longArg = []string{"--rsh", "--rsync-path", "--exclude", "--include", "--filter", "--exclude-from", "--include-from",
			"--files-from", "--temp-dir", "--partial-dir", "--log-file", "--password-file", "--chmod", "--chown",
			"--backup-dir", "--suffix", "--compare-dest", "--copy-dest", "--link-dest", "--port", "--out-format",
			"--max-size", "--min-size", "--timeout", "--bwlimit", "--block-size", "--remote-option"}
	case "scp":
		shortArg = "cFiJloPS"
	}
	ops := operands(args, shortArg, longArg...)
	var dir *field
	for i, f := range args {
		if (f.s == "-t" || f.s == "--target-directory") && i+1 < len(args) && n != "rsync" {
			dir = &args[i+1]
		} else if strings.HasPrefix(f.s, "--target-directory=") {
			d := suffixField(f, "--target-directory=")
			dir = &d
		}
	}
	if len(ops) < 2 && dir == nil {
		return
	}
	srcs := ops
	if dir == nil {
		srcs, dir = ops[:len(ops)-1], &ops[len(ops)-1]
	}
	if strings.Contains(dir.s, ":") && (n == "scp" || n == "rsync") {
		return // a remote destination
	}
	sc, fr := env.sc, env.fr
	if n == "rsync" {
		for _, f := range args {
			switch {
			case strings.HasPrefix(f.s, "--delete") || f.s == "--del":
				// what the destination holds and the sources do not goes
				a.deleteTarget(sc, fr, descendants(*dir))
			case f.s == "--remove-source-files":
				for _, src := range srcs {
					a.deleteTarget(sc, fr, src)
				}
			}
		}
	}
	dt := classify(*dir, sc.getCwd())
	intoDir := len(srcs) > 1 || strings.HasSuffix(dir.s, "/") || dt.class == cHome || dt.class == cRoot ||
		dir.s == "." || dir.s == ".."
	for _, src := range srcs {
		if n == "mv" {
			if dir.s == "/dev/null" {
				a.deleteTarget(sc, fr, src)
			} else if t := classify(src, sc.getCwd()); t.class >= cAccount {
				a.deleteTarget(sc, fr, src)
			}
		}
		if dir.s == "/dev/null" {
			continue
		}
		dest := *dir
		if intoDir && src.literal() && dir.literal() {
			dest = litField(strings.TrimSuffix(dir.s, "/") + "/" + path.Base(src.s))
		}
		a.writeTarget(sc, fr, dest, false)
	}
}

// chmod judges chmod, chown and chgrp on protected paths.
func (a *analyzer) chmod(env *cmdEnv, n string, args []field) {
	recursive := hasOpt(args, "-R", "--recursive")
	var ops []field
	modeSet := hasOpt(args, "--reference") || n == "chattr" || n == "setfacl"
	for i := 0; i < len(args); i++ {
		f := args[i]
		switch {
		case f.s == "--":
			ops = append(ops, args[i+1:]...)
			i = len(args)
		case n == "setfacl" && (f.s == "-m" || f.s == "-x" || f.s == "-M" || f.s == "-X") && i+1 < len(args):
			i++
		case strings.HasPrefix(f.s, "-") && !(n == "chmod" && !modeSet && isModeLike(f.s[1:])):
			if f.s == "--from" && i+1 < len(args) {
				i++
			}
		default:
			ops = append(ops, f)
		}
	}
	if !modeSet && len(ops) > 0 && n != "chattr" {
		ops = ops[1:] // the mode or owner
	}
	for _, f := range ops {
		if n == "chattr" && (strings.HasPrefix(f.s, "+") || strings.HasPrefix(f.s, "=")) {
			continue
		}
		t := classify(f, env.sc.getCwd())
		env.fr.targets = append(env.fr.targets, t.matchPath())
		if t.class < cAccount {
			continue
		}
		if recursive || t.class == cRoot || t.class == cHome {
			a.hit(env.fr, ruleChmodSystem, t.path)
		} else {
			a.hit(env.fr, ruleChmodFile, t.path)
		}
	}
}

func isModeLike(s string) bool { return strings.Trim(s, "rwxXstugoa01234567,+-=") == "" }

// kill judges the process ids signalled: -1 is every process, 1 is init.
func (a *analyzer) kill(env *cmdEnv, args []field) {
	i := 0
	if i < len(args) {
		switch s := args[i].s; {
		case s == "-l" || s == "-L" || s == "--list" || s == "--table":
			return
		case s == "-s" || s == "-n" || s == "--signal":
			i += 2
		case s == "--":
		case strings.HasPrefix(s, "-") && len(s) > 1:
			i++
		}
	}
	if i < len(args) && args[i].s == "--" {
		i++
	}
	for ; i < len(args); i++ {
		f := args[i]
		switch {
		case f.s == "-1" || f.s == "1":
			a.hit(env.fr, ruleKillAll, "kill "+joinDisp(args))
		case f.dyn:
			a.hit(env.fr, ruleKillDynamic, f.disp)
		}
	}
}

// sed judges in-place edits (-i) of protected files and the GNU e command,
// which runs shell commands.
func (a *analyzer) sed(env *cmdEnv, args []field) {
	inPlace, sandbox := false, false
	var scripts, files []field
	haveScript := false
	for i := 0; i < len(args); i++ {
		s := args[i].s
		switch {
		case s == "--":
			files = append(files, args[i+1:]...)
			i = len(args)
		case s == "-e" || s == "--expression" || s == "-f" || s == "--file":
			if i+1 < len(args) {
				i++
				if s == "-e" || s == "--expression" {
					scripts = append(scripts, args[i])
				}
				haveScript = true
			}
		case strings.HasPrefix(s, "--expression="):
			scripts, haveScript = append(scripts, suffixField(args[i], "--expression=")), true
		case strings.HasPrefix(s, "--in-place") || strings.HasPrefix(s, "-i"):
			inPlace = true
		case s == "--sandbox":
			sandbox = true
		case strings.HasPrefix(s, "-") && len(s) > 1:
			if strings.Contains(s[1:], "i") && !strings.HasPrefix(s, "--") {
				inPlace = true
			}
			if strings.HasSuffix(s, "e") && !strings.HasPrefix(s, "--") && i+1 < len(args) {
				i++
				scripts, haveScript = append(scripts, args[i]), true
			}
		case !haveScript:
			scripts, haveScript = append(scripts, args[i]), true
		default:
			files = append(files, args[i])
		}
	}
	if !sandbox {
		for _, sc := range scripts {
			if sc.dyn || sedExecutes(sc.s) {
				a.hit(env.fr, ruleOneLiner, sc.disp)
			}
		}
	}
	if inPlace {
		for _, f := range files {
			a.writeTarget(env.sc, env.fr, f, true)
		}
	}
}

// sedExecutes reports a sed script that may run a shell command: the e
// command or the e flag of s.
func sedExecutes(script string) bool {
	for i := 0; i < len(script); i++ {
		c := script[i]
		switch {
		case c == 's' && i+1 < len(script) && (i == 0 || strings.IndexByte(" ;{}\n0123456789$/!", script[i-1]) >= 0):
			d := script[i+1]
			if d == '\\' || d == '\n' || d == ' ' {
				continue
			}
			j, n := i+2, 0
			for j < len(script) && n < 2 {
				if script[j] == '\\' {
					j++
				} else if script[j] == d {
					n++
				}
				j++
			}
			k := j
			for k < len(script) && strings.IndexByte("gpiImMe0123456789w", script[k]) >= 0 {
				if script[k] == 'e' {
					return true
				}
				if script[k] == 'w' {
					break
				}
				k++
			}
			i = j - 1
		case c == 'e' && (i == 0 || strings.IndexByte(" ;{}\n$!/", script[i-1]) >= 0 || script[i-1] >= '0' && script[i-1] <= '9') &&
			(i+1 == len(script) || strings.IndexByte(" ;}\n", script[i+1]) >= 0):
			return true
		}
	}
	return false
}
