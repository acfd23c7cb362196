package shellpolicy

import (
	"path"
	"strings"
)

// checkFunc judges what command n does with its arguments args (argv
// without the name): the paths it deletes or writes, the processes it
// signals, the shell state it changes, the code it hands to a program. It
// reports what it finds as hits on env.fr, which the policy's analysis
// rules (rm-root, format-disk, wipe-history...) then decide.
type checkFunc func(a *analyzer, env *cmdEnv, n string, args []field)

// checkers are the commands bastion judges by what they do to their
// arguments, by name. A command with no entry (and every command, at every
// wrapper layer) is still matched by the policy's rules. The table is
// filled in init because entries such as find -exec call back into the
// analyzer, which reads the table.
var checkers map[string]checkFunc

func init() {
	checkers = map[string]checkFunc{
		// deletions and writes, judged by target (fileops.go)
		"rm":        (*analyzer).remove,
		"rmdir":     (*analyzer).remove,
		"unlink":    (*analyzer).remove,
		"srm":       (*analyzer).remove,
		"wipe":      (*analyzer).remove,
		"trash":     (*analyzer).remove,
		"trash-put": (*analyzer).remove,
		"gio":       (*analyzer).gio,
		"shred":     (*analyzer).shred,
		"find":      (*analyzer).find,
		"mv":        (*analyzer).copyLike,
		"cp":        (*analyzer).copyLike,
		"install":   (*analyzer).copyLike,
		"ln":        (*analyzer).copyLike,
		"rsync":     (*analyzer).copyLike,
		"scp":       (*analyzer).copyLike,
		"chmod":     (*analyzer).chmod,
		"chown":     (*analyzer).chmod,
		"chgrp":     (*analyzer).chmod,
		"chattr":    (*analyzer).chmod,
		"setfacl":   (*analyzer).chmod,
		"dd":        (*analyzer).dd,
		"truncate":  (*analyzer).truncate,
		"tee":       (*analyzer).tee,
		"sed":       (*analyzer).sed,

		// code that runs later: archive hooks, git settings, schedules (hooks.go)
		"tar":     (*analyzer).extract,
		"bsdtar":  (*analyzer).extract,
		"gtar":    (*analyzer).extract,
		"unzip":   (*analyzer).extract,
		"7z":      (*analyzer).extract,
		"7za":     (*analyzer).extract,
		"git":     (*analyzer).gitHooks,
		"crontab": (*analyzer).schedule,
		"at":      (*analyzer).schedule,
		"batch":   (*analyzer).schedule,

		// disks (and mkfs.TYPE, see check)
		"mkfs":       (*analyzer).formatDisk,
		"mke2fs":     (*analyzer).formatDisk,
		"mkswap":     (*analyzer).formatDisk,
		"mkntfs":     (*analyzer).formatDisk,
		"mkdosfs":    (*analyzer).formatDisk,
		"mkexfatfs":  (*analyzer).formatDisk,
		"cfdisk":     (*analyzer).formatDisk,
		"blkdiscard": (*analyzer).formatDisk,
		"wipefs":     formatWith("-a", "--all", "-o", "--offset"),
		"fdisk":      formatUnless("-l", "--list"),
		"gdisk":      formatUnless("-l", "--list"),
		"sfdisk": formatUnless("-l", "--list", "-d", "--dump", "-s", "--show-size", "-V", "--verify", "-J", "--json",
			"-g", "--show-geometry", "-F", "--list-free"),
		"sgdisk": formatUnless("-p", "--print", "-i", "--info", "-v", "--verify", "-O", "--print-mbr", "-L", "--list-types"),
		"parted": (*analyzer).parted,

		// processes and power
		"kill":      (*analyzer).kill,
		"killall5":  (*analyzer).killall5,
		"shutdown":  (*analyzer).shutdown,
		"reboot":    (*analyzer).powerOff,
		"halt":      (*analyzer).powerOff,
		"poweroff":  (*analyzer).powerOff,
		"init":      (*analyzer).initLevel,
		"telinit":   (*analyzer).initLevel,
		"systemctl": (*analyzer).systemctl,

		// the shell's own state: history, options, variables, directory
		"shopt":     (*analyzer).shopt,
		"history":   (*analyzer).history,
		"set":       (*analyzer).set,
		"unset":     (*analyzer).unset,
		"cd":        (*analyzer).cd,
		"pushd":     (*analyzer).cd,
		"popd":      (*analyzer).cd,
		"hash":      (*analyzer).hash,
		"enable":    (*analyzer).enable,
		"read":      (*analyzer).readVars,
		"mapfile":   (*analyzer).readVars,
		"readarray": (*analyzer).readVars,
		"getopts":   (*analyzer).readVars,

		// programs that run a shell command given to them
		"nc":             (*analyzer).netcat,
		"ncat":           (*analyzer).netcat,
		"netcat":         (*analyzer).netcat,
		"nc.traditional": (*analyzer).netcat,
		"nc.openbsd":     (*analyzer).netcat,
		"socat":          (*analyzer).socat,
		"vi":             (*analyzer).vimShell,
		"vim":            (*analyzer).vimShell,
		"nvim":           (*analyzer).vimShell,
		"ex":             (*analyzer).vimShell,
		"view":           (*analyzer).vimShell,
		"gvim":           (*analyzer).vimShell,
	}
}

// checkedNames are the commands a glob command name (/bin/r?) is tried as,
// and that a name in capitals (RM) is taken for. They are not the keys of
// checkers: they also name wrappers and interpreters.
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
	if c := checkers[n]; c != nil {
		c(a, env, n, argv[1:])
	} else if strings.HasPrefix(n, "mkfs.") {
		a.formatDisk(env, n, argv[1:])
	}
}

// formatDisk: mkfs and the like write a new file system over a device, or
// discard its blocks.
func (a *analyzer) formatDisk(env *cmdEnv, _ string, args []field) {
	a.hit(env.fr, ruleFormatDisk, joinDisp(args))
}

// formatWith is a tool that formats given one of opts (wipefs -a).
func formatWith(opts ...string) checkFunc {
	return func(a *analyzer, env *cmdEnv, _ string, args []field) {
		if hasOpt(args, opts...) {
			a.hit(env.fr, ruleFormatDisk, joinDisp(args))
		}
	}
}

// formatUnless is a partition editor, which writes unless one of opts
// makes it only read (fdisk -l).
func formatUnless(opts ...string) checkFunc {
	return func(a *analyzer, env *cmdEnv, _ string, args []field) {
		if !hasOpt(args, opts...) {
			a.hit(env.fr, ruleFormatDisk, joinDisp(args))
		}
	}
}

// parted writes a partition table unless it only lists or prints.
func (a *analyzer) parted(env *cmdEnv, _ string, args []field) {
	ops := operands(args, "")
	readOnly := hasOpt(args, "-l", "--list") || len(ops) == 1
	for _, f := range ops {
		readOnly = readOnly || f.s == "print" || f.s == "p" || f.s == "help"
	}
	if !readOnly {
		a.hit(env.fr, ruleFormatDisk, joinDisp(args))
	}
}

// killall5 signals every process.
func (a *analyzer) killall5(env *cmdEnv, _ string, _ []field) {
	a.hit(env.fr, ruleKillAll, "killall5")
}

// shutdown stops the machine unless it cancels one (-c).
func (a *analyzer) shutdown(env *cmdEnv, _ string, args []field) {
	if !hasOpt(args, "-c") {
		a.hit(env.fr, ruleShutdown, "")
	}
}

// powerOff: reboot, halt and poweroff stop the machine.
func (a *analyzer) powerOff(env *cmdEnv, _ string, _ []field) {
	a.hit(env.fr, ruleShutdown, "")
}

// initLevel: init and telinit to runlevel 0, 1 or 6 stop the machine or
// its services.
func (a *analyzer) initLevel(env *cmdEnv, _ string, args []field) {
	for _, f := range operands(args, "") {
		switch f.s {
		case "0", "1", "6", "s", "S", "single":
			a.hit(env.fr, ruleShutdown, f.s)
		}
	}
}

// systemctl judges the commands that stop the machine, directly or by
// isolating a target that does. Stopping services is the policy's rules'.
func (a *analyzer) systemctl(env *cmdEnv, _ string, args []field) {
	ops := operands(args, "pPtHMnos", "--property", "--type", "--state", "--host", "--machine", "--lines", "--output", "--signal", "--kill-whom", "--root", "--job-mode")
	if len(ops) == 0 {
		return
	}
	switch ops[0].s {
	case "poweroff", "reboot", "halt", "kexec", "emergency", "rescue", "suspend", "hibernate", "hybrid-sleep",
		"suspend-then-hibernate", "soft-reboot", "default":
		a.hit(env.fr, ruleShutdown, ops[0].s)
	case "isolate":
		for _, f := range ops[1:] {
			switch strings.TrimSuffix(f.s, ".target") {
			case "poweroff", "reboot", "halt", "rescue", "emergency", "runlevel0", "runlevel1", "runlevel6", "kexec":
				a.hit(env.fr, ruleShutdown, "isolate "+f.s)
			}
		}
	}
}

// shopt -s expand_aliases lets aliases expand after the check: `alias
// ls='rm -rf /'`.
func (a *analyzer) shopt(env *cmdEnv, _ string, args []field) {
	for _, f := range args {
		if f.s == "expand_aliases" && hasOpt(args, "-s") {
			a.hit(env.fr, ruleShellInternals, "shopt "+joinDisp(args))
		}
	}
}

// history -c and -d wipe the shell's history.
func (a *analyzer) history(env *cmdEnv, _ string, args []field) {
	if hasOpt(args, "-c", "-d") {
		a.hit(env.fr, ruleWipeHistory, "history "+joinDisp(args))
	}
}

// set judges turning history off and history expansion on, and tracks the
// positional parameters.
func (a *analyzer) set(env *cmdEnv, _ string, args []field) {
	for i, f := range args {
		if f.s == "+o" && i+1 < len(args) && args[i+1].s == "history" {
			a.hit(env.fr, ruleWipeHistory, "set +o history")
		}
		// History expansion rewrites a line after it was checked.
		if f.s == "-o" && i+1 < len(args) && args[i+1].s == "histexpand" ||
			len(f.s) > 1 && f.s[0] == '-' && f.s[1] != '-' && strings.ContainsRune(f.s, 'H') {
			a.hit(env.fr, ruleShellInternals, "set "+joinDisp(args))
		}
	}
	setPositional(env.sc, args)
}

// unset judges unsetting the history variables, and tracks the variables.
func (a *analyzer) unset(env *cmdEnv, _ string, args []field) {
	for _, f := range args {
		switch f.s {
		case "HISTFILE", "HISTSIZE", "HISTFILESIZE", "SAVEHIST":
			a.hit(env.fr, ruleWipeHistory, "unset "+f.s)
		}
		if isName(f.s) {
			env.sc.set(f.s, val{alts: []string{""}})
		}
	}
}

// hash -p NAME PATH makes NAME run another program.
func (a *analyzer) hash(env *cmdEnv, _ string, args []field) {
	if hasOpt(args, "-p") {
		a.hit(env.fr, ruleEnvOverride, "hash "+joinDisp(args))
	}
}

// enable -f loads a shared object into the shell; disabling builtins
// changes what later lines mean.
func (a *analyzer) enable(env *cmdEnv, _ string, args []field) {
	if hasOpt(args, "-f") {
		a.hit(env.fr, ruleEnvOverride, "enable "+joinDisp(args))
	} else if len(args) > 0 && !hasOpt(args, "-p") {
		a.hit(env.fr, ruleShellInternals, "enable "+joinDisp(args))
	}
}

// readVars: read, mapfile, readarray and getopts set variables to values
// not known before they run.
func (a *analyzer) readVars(env *cmdEnv, n string, args []field) {
	for _, f := range operands(args, "adnNptuiC") {
		if isName(f.s) {
			env.sc.set(f.s, unknownVal)
		}
	}
	if n == "mapfile" || n == "readarray" {
		env.sc.set("MAPFILE", unknownVal)
	}
}

// netcat -e/-c PROGRAM serves a program to the network: a reverse shell.
func (a *analyzer) netcat(env *cmdEnv, n string, args []field) {
	for i, f := range args {
		if f.s == "-e" || f.s == "-c" || f.s == "--exec" || f.s == "--sh-exec" || f.s == "--lua-exec" ||
			strings.HasPrefix(f.s, "--exec=") || strings.HasPrefix(f.s, "--sh-exec=") ||
			len(f.s) > 2 && f.s[0] == '-' && f.s[1] != '-' && strings.ContainsAny(f.s[len(f.s)-1:], "ec") && i+1 < len(args) {
			a.hit(env.fr, ruleReverseShell, n+" "+joinDisp(args))
			break
		}
	}
}

// socat EXEC: or SYSTEM: serves a program to its other address.
func (a *analyzer) socat(env *cmdEnv, _ string, args []field) {
	for _, f := range args {
		l := strings.ToLower(f.s)
		if strings.HasPrefix(l, "exec:") || strings.HasPrefix(l, "system:") {
			a.hit(env.fr, ruleReverseShell, "socat "+joinDisp(args))
			break
		}
	}
}

// vimShell analyses the shell commands vim runs from -c ':!CMD' or +!CMD.
func (a *analyzer) vimShell(env *cmdEnv, n string, args []field) {
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

// kill judges the process ids signalled: -1 is every process, 1 is init.
func (a *analyzer) kill(env *cmdEnv, _ string, args []field) {
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
