package shellpolicy

import (
	"path"
	"strings"
)

// The commands that delete or write files, judged by their targets (see
// targets.go): rm and the like, shred, dd, truncate, tee, find -delete,
// cp/mv/install/ln/rsync/scp, chmod and the like, sed -i.

// remove judges rm, rmdir, unlink and the like: every operand is deleted.
func (a *analyzer) remove(env *cmdEnv, _ string, args []field) {
	for _, f := range operands(args, "") {
		a.deleteTarget(env.sc, env.fr, f)
	}
}

// gio trash and gio remove delete their operands.
func (a *analyzer) gio(env *cmdEnv, _ string, args []field) {
	ops := operands(args, "")
	if len(ops) == 0 || ops[0].s != "trash" && ops[0].s != "remove" {
		return
	}
	for _, f := range ops[1:] {
		a.deleteTarget(env.sc, env.fr, f)
	}
}

// shred overwrites its operands, and deletes them with -u.
func (a *analyzer) shred(env *cmdEnv, _ string, args []field) {
	for _, f := range operands(args, "ns", "--iterations", "--random-source", "--size") {
		a.writeTarget(env.sc, env.fr, f, false)
		if hasOpt(args, "-u", "--remove") {
			a.deleteTarget(env.sc, env.fr, f)
		}
	}
}

// dd writes of=FILE, in place with conv=notrunc or oflag=append.
func (a *analyzer) dd(env *cmdEnv, _ string, args []field) {
	for _, f := range args {
		if strings.HasPrefix(f.s, "of=") {
			a.writeTarget(env.sc, env.fr, suffixField(f, "of="), hasArgPrefix(args, "conv=", "notrunc") || hasArgPrefix(args, "oflag=", "append"))
		}
	}
}

// hasArgPrefix reports an argument prefix=...value... (dd conv=notrunc).
func hasArgPrefix(args []field, prefix, value string) bool {
	for _, f := range args {
		if strings.HasPrefix(f.s, prefix) && strings.Contains(f.s, value) {
			return true
		}
	}
	return false
}

// truncate writes its operands.
func (a *analyzer) truncate(env *cmdEnv, _ string, args []field) {
	for _, f := range operands(args, "sr", "--size", "--reference") {
		a.writeTarget(env.sc, env.fr, f, false)
	}
}

// tee writes its standard input to its operands.
func (a *analyzer) tee(env *cmdEnv, _ string, args []field) {
	for _, f := range operands(args, "") {
		a.writeTarget(env.sc, env.fr, f, hasOpt(args, "-a", "--append"))
		a.recordWrite(env.sc, f, env.in)
	}
}

// find judges -delete, -exec and -fprint on the paths find walks.
func (a *analyzer) find(env *cmdEnv, _ string, args []field) {
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

// sed judges in-place edits (-i) of protected files and the GNU e command,
// which runs shell commands.
func (a *analyzer) sed(env *cmdEnv, _ string, args []field) {
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
