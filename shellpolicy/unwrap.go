package shellpolicy

import (
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// wrapFunc unwraps command n, whose argv[0] is the name as written. It
// analyses the code the command runs itself (bash -c CODE, ssh host CMD,
// xargs fed by a pipe) and returns next, the command it runs in turn
// (sudo CMD..., timeout 5 CMD...), which command analyses as the next
// layer. handled is true when n needs no check (commands.go) of its own;
// the policy's rules still match it at every layer.
type wrapFunc func(a *analyzer, env *cmdEnv, n string, argv []field) (next []field, handled bool)

// wrappers are the programs that run other code, by name: wrappers (sudo,
// env, timeout, xargs), shells and the builtins that run code (bash -c,
// eval, source, trap), remote and container shells (ssh, kubectl exec,
// docker run). A name with no entry may still be an interpreter or an SQL
// client (see runsCode). The table is filled in init because its entries
// call back into the analyzer, which reads the table.
var wrappers map[string]wrapFunc

func init() {
	wrappers = map[string]wrapFunc{
		// run as another user
		"sudo":     (*analyzer).sudo,
		"doas":     (*analyzer).sudo,
		"sudoedit": (*analyzer).sudoedit,
		"su":       consumes((*analyzer).su),
		"runuser":  consumes((*analyzer).su),
		"chroot":   (*analyzer).chroot,
		"sg":       consumes((*analyzer).groupShell),
		"capsh":    consumes((*analyzer).groupShell),

		// run COMMAND... after their options
		"env":     (*analyzer).env,
		"command": (*analyzer).commandBuiltin,
		"builtin": (*analyzer).commandBuiltin,
		"exec":    skipFlags(execFlags, 0),
		"nice":    (*analyzer).nice,
		"ionice":  unlessOpt(skipFlags(ioniceFlags, 0), "-p", "-P", "-u", "--pid", "--pgid", "--uid"),
		"nohup":   nohup,
		"busybox": nohup,
		"timeout": skipFlags(timeoutFlags, 1), // after the duration
		"time":    skipFlags(timeFlags, 0),
		"stdbuf":  skipFlags(stdbufFlags, 0),
		"setsid":  skipFlags(setsidFlags, 0),
		"taskset": unlessOpt(skipFlags(tasksetFlags, 1), "-p", "--pid"), // after the mask
		"chrt":    unlessOpt(skipFlags(chrtFlags, 1), "-p", "--pid"),    // after the priority
		"strace":  skipFlags(straceFlags, 0),
		"ltrace":  skipFlags(straceFlags, 0),
		"flock":   (*analyzer).flock,
		"watch":   (*analyzer).watch,
		"ip":      ipNetnsExec,

		// run commands they build from their input or arguments
		"xargs":    consumes((*analyzer).xargs),
		"parallel": consumes((*analyzer).parallel),
		"sem":      consumes((*analyzer).parallel),

		// run shell code
		"script":    (*analyzer).script,
		"tmux":      consumes((*analyzer).tmux),
		"run-parts": (*analyzer).runParts,
		"eval":      (*analyzer).eval,
		"source":    consumes((*analyzer).source),
		".":         consumes((*analyzer).source),
		"trap":      (*analyzer).trap,
		"alias":     (*analyzer).alias,

		// run commands elsewhere
		"ssh":     consumes((*analyzer).ssh),
		"kubectl": (*analyzer).kubectlExec,
		"oc":      (*analyzer).kubectlExec,
		"docker":  (*analyzer).containerCmd,
		"podman":  (*analyzer).containerCmd,
		"nerdctl": (*analyzer).containerCmd,
	}
	for n := range scanWrappers {
		addWrapper(n, (*analyzer).scanWrapper)
	}
	for n := range shellNames {
		addWrapper(n, consumes((*analyzer).shell))
	}
}

// addWrapper adds an entry for n unless n has one.
func addWrapper(n string, w wrapFunc) {
	if _, ok := wrappers[n]; !ok {
		wrappers[n] = w
	}
}

// unwrap handles wrappers, shells and builtins that run other code. next is
// the wrapped command to analyse next; handled means n was dealt with here.
func (a *analyzer) unwrap(env *cmdEnv, n string, argv []field) (next []field, handled bool) {
	if w := wrappers[n]; w != nil {
		return w(a, env, n, argv)
	}
	return a.runsCode(env, n, argv)
}

// runsCode handles a command that is no wrapper but may run code given to
// it: an interpreter (python -c, awk) or an SQL client (psql -c).
func (a *analyzer) runsCode(env *cmdEnv, n string, argv []field) ([]field, bool) {
	return nil, a.interpreter(env, n, argv) || a.sqlClient(env, n, argv)
}

// consumes makes a wrapFunc of an analysis that takes the whole command
// (xargs, ssh, bash): nothing is left to analyse as a next layer.
func consumes(f func(a *analyzer, env *cmdEnv, n string, argv []field)) wrapFunc {
	return func(a *analyzer, env *cmdEnv, n string, argv []field) ([]field, bool) {
		f(a, env, n, argv)
		return nil, true
	}
}

// skipFlags unwraps a wrapper whose command follows its options (spec) and
// skip operands: exec CMD, timeout DURATION CMD, taskset MASK CMD.
func skipFlags(spec *flagSpec, skip int) wrapFunc {
	return func(a *analyzer, env *cmdEnv, _ string, argv []field) ([]field, bool) {
		rest := a.afterFlags(env, argv, spec)
		if len(rest) <= skip {
			return nil, true
		}
		return rest[skip:], true
	}
}

// unlessOpt is w, except that given one of opts the wrapper acts on a
// running process and runs nothing (ionice -p PID, taskset -p MASK PID).
func unlessOpt(w wrapFunc, opts ...string) wrapFunc {
	return func(a *analyzer, env *cmdEnv, n string, argv []field) ([]field, bool) {
		if hasOpt(argv[1:], opts...) {
			return nil, true
		}
		return w(a, env, n, argv)
	}
}

// afterFlags returns what follows a wrapper's options (spec), nil when
// nothing does. An option spec does not know may have taken the next word
// as its value, so what follows that word is analysed as a command too.
func (a *analyzer) afterFlags(env *cmdEnv, argv []field, spec *flagSpec) []field {
	i, unk := spec.parse(argv, 1, func(string, *field) {})
	if unk && i+1 < len(argv) {
		a.command(env, argv[i+1:]) // the unknown option may have taken a value
	}
	if i >= len(argv) {
		return nil
	}
	return argv[i:]
}

// sudo unwraps sudo and doas: the command runs as root. Without one, -i
// and -s open a root shell; -e edits its operands as root.
func (a *analyzer) sudo(env *cmdEnv, n string, argv []field) ([]field, bool) {
	env.root = true
	spec, shell, edit := sudoFlags, false, false
	if n == "doas" {
		spec = doasFlags
	}
	i, unk := spec.parse(argv, 1, func(opt string, v *field) {
		switch opt {
		case "-i", "-s", "--login", "--shell":
			shell = true
		case "-e", "--edit":
			edit = true
		case "-D", "--chdir":
			a.chdir(env, v)
		}
	})
	if unk && i+1 < len(argv) {
		a.command(env, argv[i+1:])
	}
	switch {
	case edit:
		for _, f := range argv[i:] {
			a.writeTarget(env.sc, env.fr, f, true)
		}
	case i < len(argv):
		return argv[i:], true
	case shell:
		a.hit(env.fr, ruleRootShell, n+" "+strings.Join(display(argv[1:]), " "))
	}
	return nil, true
}

// sudoedit writes its operands as root.
func (a *analyzer) sudoedit(env *cmdEnv, _ string, argv []field) ([]field, bool) {
	for _, f := range operands(argv[1:], "ugCpDhr") {
		a.writeTarget(env.sc, env.fr, f, true)
	}
	return nil, true
}

// chroot runs its command as root in another root directory; without a
// command, a root shell.
func (a *analyzer) chroot(env *cmdEnv, _ string, argv []field) ([]field, bool) {
	env.root = true
	rest := a.afterFlags(env, argv, chrootFlags)
	if len(rest) < 2 {
		a.hit(env.fr, ruleRootShell, "chroot")
		return nil, true
	}
	return rest[1:], true // after the directory
}

// commandBuiltin unwraps command and builtin, which skip shell functions;
// command -v and -V only look the name up.
func (a *analyzer) commandBuiltin(env *cmdEnv, n string, argv []field) ([]field, bool) {
	env.noFunc = true
	if n == "command" && len(argv) > 1 && hasOpt(argv[1:2], "-v", "-V") {
		return nil, true
	}
	return a.afterFlags(env, argv, commandFlags), true
}

// nice unwraps nice -N CMD and nice [-n N] CMD.
func (a *analyzer) nice(env *cmdEnv, _ string, argv []field) ([]field, bool) {
	if len(argv) > 1 && len(argv[1].s) > 1 && argv[1].s[0] == '-' && isDigits(strings.TrimLeft(argv[1].s, "-")) {
		if len(argv) > 2 {
			return argv[2:], true
		}
		return nil, true
	}
	return a.afterFlags(env, argv, niceFlags), true
}

// nohup unwraps nohup CMD and busybox APPLET: an option instead means
// nothing runs (nohup --help, busybox --list).
func nohup(_ *analyzer, _ *cmdEnv, _ string, argv []field) ([]field, bool) {
	if len(argv) > 1 && strings.HasPrefix(argv[1].s, "-") {
		return nil, true
	}
	return argv[1:], true
}

// ipNetnsExec unwraps ip netns exec NAME COMMAND... (ip -n NAME exec);
// other ip commands are not wrappers.
func ipNetnsExec(a *analyzer, env *cmdEnv, n string, argv []field) ([]field, bool) {
	if len(argv) > 3 && (argv[1].s == "netns" || argv[1].s == "-n") && argv[2].s == "exec" {
		return argv[4:], true
	}
	return a.runsCode(env, n, argv)
}

// watch runs its arguments joined as shell code, or with -x as a command.
func (a *analyzer) watch(env *cmdEnv, _ string, argv []field) ([]field, bool) {
	var exec bool
	i, _ := watchFlags.parse(argv, 1, func(opt string, _ *field) {
		exec = exec || opt == "-x" || opt == "--exec"
	})
	if i >= len(argv) {
		return nil, true
	}
	if exec {
		return argv[i:], true
	}
	a.nestedArgs(env, argv[i:], "watch")
	return nil, true
}

// script -c CODE runs shell code.
func (a *analyzer) script(env *cmdEnv, _ string, argv []field) ([]field, bool) {
	var code *field
	scriptFlags.parse(argv, 1, func(opt string, v *field) {
		if opt == "-c" || opt == "--command" {
			code = v
		}
	})
	if code != nil {
		a.nestedField(env, *code, "script -c", nil)
	}
	return nil, true
}

// runParts runs every script in a directory: what they hold is not known.
func (a *analyzer) runParts(env *cmdEnv, _ string, argv []field) ([]field, bool) {
	a.hit(env.fr, ruleOpaqueScript, strings.Join(display(argv), " "))
	return nil, true
}

// scanWrapper handles the scanWrappers: the first few operands may each
// start the command.
func (a *analyzer) scanWrapper(env *cmdEnv, n string, argv []field) ([]field, bool) {
	env.root = env.root || rootWrappers[n]
	k := 0
	for i := 1; i < len(argv) && k < 4; i++ {
		if !strings.HasPrefix(argv[i].s, "-") {
			a.command(env, argv[i:])
			k++
		}
	}
	if k == 0 && n == "pkexec" {
		a.hit(env.fr, ruleRootShell, n) // with no command, a root shell
	}
	return nil, true
}

// eval runs its arguments joined as shell code.
func (a *analyzer) eval(env *cmdEnv, _ string, argv []field) ([]field, bool) {
	a.nestedArgs(env, argv[1:], "eval")
	return nil, true
}

// trap CODE SIGNAL... runs CODE later: it is judged now. The trap itself
// is not a finding unless its code is.
func (a *analyzer) trap(env *cmdEnv, _ string, argv []field) ([]field, bool) {
	if len(argv) > 2 && !strings.HasPrefix(argv[1].s, "-") {
		a.nestedField(env.noStdin(), argv[1], "trap", nil)
		env.fr.show = len(env.fr.hits) > 0
	}
	return nil, true
}

// alias NAME=CODE: the code runs wherever the name is used later.
func (a *analyzer) alias(env *cmdEnv, _ string, argv []field) ([]field, bool) {
	for _, f := range argv[1:] {
		if name, _, ok := strings.Cut(f.s, "="); ok {
			a.nestedField(env.noStdin(), suffixField(f, name+"="), "alias "+name, nil)
		}
	}
	return nil, true
}

var (
	sudoFlags = &flagSpec{short: "AbEeHiKklnPSsVvh", shortArg: "aCcDghprTtUuR",
		long: []string{"--askpass", "--background", "--preserve-env", "--edit", "--help", "--set-home", "--login",
			"--remove-timestamp", "--reset-timestamp", "--list", "--non-interactive", "--preserve-groups", "--stdin",
			"--shell", "--validate", "--version", "--bell"},
		longArg: []string{"--close-from", "--chdir", "--group", "--host", "--prompt", "--chroot", "--role", "--type",
			"--command-timeout", "--other-user", "--user"}}
	doasFlags = &flagSpec{short: "Lns", shortArg: "Cu"}
	suFlags   = &flagSpec{short: "flmpP", shortArg: "cgGswu",
		long: []string{"--login", "--preserve-environment", "--pty", "--fast"},
		longArg: []string{"--command", "--session-command", "--group", "--supp-group", "--shell",
			"--whitelist-environment", "--user"}}
	envFlags = &flagSpec{short: "0iv", shortArg: "uCS",
		long:    []string{"--ignore-environment", "--null", "--debug", "--block-signal", "--default-signal", "--ignore-signal", "--list-signal-handling"},
		longArg: []string{"--unset", "--chdir", "--split-string"}}
	timeoutFlags = &flagSpec{short: "v", shortArg: "sk", long: []string{"--preserve-status", "--foreground", "--verbose"},
		longArg: []string{"--signal", "--kill-after"}}
	timeFlags = &flagSpec{short: "apqvV", shortArg: "fo", long: []string{"--append", "--portability", "--quiet", "--verbose"},
		longArg: []string{"--format", "--output"}}
	niceFlags    = &flagSpec{shortArg: "n", longArg: []string{"--adjustment"}}
	ioniceFlags  = &flagSpec{short: "t", shortArg: "cnpPu", long: []string{"--ignore"}, longArg: []string{"--class", "--classdata", "--pid", "--pgid", "--uid"}}
	stdbufFlags  = &flagSpec{shortArg: "ioe", longArg: []string{"--input", "--output", "--error"}}
	setsidFlags  = &flagSpec{short: "cfw", long: []string{"--ctty", "--fork", "--wait"}}
	execFlags    = &flagSpec{short: "cl", shortArg: "a"}
	commandFlags = &flagSpec{short: "pvV"}
	flockFlags   = &flagSpec{short: "sexnuoFv", shortArg: "wEc",
		long:    []string{"--shared", "--exclusive", "--unlock", "--nonblock", "--nb", "--close", "--no-fork", "--verbose"},
		longArg: []string{"--timeout", "--wait", "--conflict-exit-code", "--command"}}
	watchFlags = &flagSpec{short: "bcdeghtxprw", shortArg: "nq",
		long:    []string{"--beep", "--color", "--no-color", "--differences", "--errexit", "--chgexit", "--exec", "--precise", "--no-title", "--no-wrap", "--no-linewrap"},
		longArg: []string{"--interval", "--equexit"}}
	xargsFlags = &flagSpec{short: "0ertxpil", shortArg: "adEILnPs",
		long:    []string{"--null", "--no-run-if-empty", "--verbose", "--exit", "--interactive", "--open-tty", "--show-limits", "--replace", "--max-lines", "--eof"},
		longArg: []string{"--arg-file", "--delimiter", "--max-args", "--max-procs", "--max-chars", "--process-slot-var"}}
	chrootFlags = &flagSpec{long: []string{"--skip-chdir"}, longArg: []string{"--userspec", "--groups"}}
	straceFlags = &flagSpec{short: "cCdDfFhiqrtTvVwxyzZkn", shortArg: "abeEIoOpPsSuUX",
		longArg: []string{"--output", "--trace", "--signal", "--attach", "--user", "--env", "--string-limit", "--trace-path"}}
	scriptFlags = &flagSpec{short: "aefqkh", shortArg: "cEIOBTtm",
		long:    []string{"--append", "--return", "--flush", "--force", "--quiet"},
		longArg: []string{"--command", "--echo", "--log-in", "--log-out", "--log-io", "--log-timing", "--logging-format", "--output-limit"}}
	tasksetFlags = &flagSpec{short: "acpv", long: []string{"--all-tasks", "--cpu-list", "--pid", "--verbose"}}
	chrtFlags    = &flagSpec{short: "abdefiomRrv", shortArg: "TPD"}
	sshFlags     = &flagSpec{short: "46AaCfGgKkMNnqsTtVvXxYy", shortArg: "BbcDEeFIiJLlmOoPpQRSWw"}
	shellNames   = map[string]bool{"sh": true, "bash": true, "zsh": true, "dash": true, "ksh": true, "ash": true,
		"mksh": true, "yash": true, "posh": true, "rbash": true, "fish": true, "csh": true, "tcsh": true, "ksh93": true}
	// scanWrappers run a command somewhere among their arguments, with
	// options bastion does not model: every operand may start the command.
	scanWrappers = map[string]bool{"nsenter": true, "unshare": true, "firejail": true, "proxychains": true,
		"proxychains4": true, "torsocks": true, "unbuffer": true, "catchsegv": true, "valgrind": true,
		"fakeroot": true, "systemd-run": true, "dbus-run-session": true, "caffeinate": true, "chpst": true,
		"pkexec": true, "gosu": true, "su-exec": true, "setpriv": true, "prlimit": true, "xvfb-run": true,
		"faketime": true, "numactl": true, "cgexec": true, "screen": true, "entr": true, "dtach": true,
		"abduco": true, "eatmydata": true, "nocache": true, "chronic": true, "ifne": true, "tsp": true,
		"flatpak-spawn": true, "toolbox": true, "distrobox-enter": true, "schroot": true, "lxc-attach": true}
	// rootWrappers run their command as another user (root by default).
	rootWrappers = map[string]bool{"pkexec": true, "gosu": true, "su-exec": true, "setpriv": true, "schroot": true}
)

// groupShell handles sg GROUP -c CODE (or sg GROUP COMMAND...) and capsh,
// which hands what follows -- to bash.
func (a *analyzer) groupShell(env *cmdEnv, n string, argv []field) {
	env.root = true
	for i := 1; i < len(argv); i++ {
		switch {
		case n == "capsh" && argv[i].s == "--":
			a.shell(env, "bash", append([]field{litField("bash")}, argv[i+1:]...))
			return
		case n == "sg" && argv[i].s == "-c" && i+1 < len(argv):
			a.nestedField(env, argv[i+1], "sg -c", nil)
			return
		case n == "sg" && i == 2:
			a.nestedArgs(env, argv[i:], "sg")
			return
		}
	}
}

// tmuxCode are the tmux commands whose arguments are shell code or keys
// typed into a shell.
var tmuxCode = map[string]bool{"new": true, "new-session": true, "new-window": true, "neww": true,
	"split-window": true, "splitw": true, "respawn-pane": true, "respawnp": true, "respawn-window": true,
	"respawnw": true, "run-shell": true, "run": true, "display-popup": true, "popup": true, "send-keys": true,
	"send": true, "pipe-pane": true, "pipep": true}

// tmux analyses the shell commands tmux starts (new-session 'cmd',
// run-shell 'cmd') and the keys send-keys types into a shell.
func (a *analyzer) tmux(env *cmdEnv, _ string, argv []field) {
	sub := -1
	for i := 1; i < len(argv); i++ {
		if tmuxCode[argv[i].s] {
			sub = i
			break
		}
	}
	if sub < 0 {
		return
	}
	var code []field
	for i := sub + 1; i < len(argv); i++ {
		s := argv[i].s
		switch {
		case len(s) == 2 && s[0] == '-' && strings.IndexByte("cestnFTwxyl", s[1]) >= 0 && i+1 < len(argv):
			i++ // an option with a value: -t target, -c dir, -n name
		case strings.HasPrefix(s, "-") && !argv[i].unknown():
		case s == "Enter" || s == "C-m" || s == "KPEnter":
		default:
			code = append(code, argv[i])
		}
	}
	if len(code) > 0 {
		a.nestedArgs(env.noStdin(), code, "tmux "+argv[sub].s)
	}
}

func (a *analyzer) chdir(env *cmdEnv, v *field) {
	if v == nil {
		return
	}
	sc := env.sc.child()
	sc.cwd = resolveDir(*v, env.sc.getCwd())
	env.sc = sc
}

// resolveDir is where cd DIR goes from each of cwd.
func resolveDir(f field, cwd []string) []string {
	if f.dyn || f.glob { // an unknown token (cd ~ is /home/<user>) keeps its place
		return []string{sAny}
	}
	if strings.HasPrefix(f.s, "/") {
		return []string{cleanPath(f.s)}
	}
	var out []string
	for _, c := range cwd {
		if strings.ContainsRune(c, markAny) {
			out = appendNew(out, sAny)
		} else {
			out = appendNew(out, cleanPath(c+"/"+f.s))
		}
	}
	return out
}

// su and runuser run a shell as another user (root by default): su -c
// CODE runs code, runuser -u USER COMMAND... a command.
func (a *analyzer) su(env *cmdEnv, n string, argv []field) {
	env.root = true
	var code *field
	var cmdUser bool
	var ops []field
	for i := 1; i < len(argv); {
		j, _ := suFlags.parse(argv, i, func(opt string, v *field) {
			switch opt {
			case "-c", "--command", "--session-command":
				code = v
			case "-u", "--user":
				cmdUser = n == "runuser"
			}
		})
		if j < len(argv) && argv[j-1].s == "--" && cmdUser {
			ops = append(ops, argv[j:]...)
			break
		}
		if j < len(argv) {
			ops = append(ops, argv[j])
		}
		i = j + 1
	}
	switch {
	case code != nil:
		a.nestedField(env, *code, n+" -c", nil)
	case cmdUser && len(ops) > 0:
		a.command(env, ops)
	default:
		a.hit(env.fr, ruleRootShell, strings.Join(display(argv), " "))
	}
}

// env unwraps env [-i] [-C DIR] [-S STRING] [NAME=VALUE]... CMD: the
// assignments are judged like the shell's, -S splits a string into words.
func (a *analyzer) env(env *cmdEnv, _ string, argv []field) ([]field, bool) {
	var split *field
	i, _ := envFlags.parse(argv, 1, func(opt string, v *field) {
		switch opt {
		case "-S", "--split-string":
			split = v
		case "-C", "--chdir":
			a.chdir(env, v)
		}
	})
	rest := argv[i:]
	if split != nil {
		words, ok := a.stringArgv(env, *split)
		if !ok {
			a.hit(env.fr, ruleDynamicCommand, "env -S "+split.disp)
			return nil, true
		}
		rest = append(words, rest...)
	}
	for len(rest) > 0 {
		name, value, ok := strings.Cut(rest[0].s, "=")
		if rest[0].s == "-" {
			rest = rest[1:]
			continue
		}
		if !ok || !isName(name) {
			break
		}
		a.checkAssign(env.fr, name, val{alts: []string{value}})
		rest = rest[1:]
	}
	if len(rest) == 0 {
		return nil, true
	}
	return rest, true
}

func isName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

// stringArgv splits text into words as a shell would (env -S).
func (a *analyzer) stringArgv(env *cmdEnv, f field) ([]field, bool) {
	if f.dyn {
		return nil, false
	}
	file, err := a.parse(f.s)
	if err != nil || len(file.Stmts) != 1 {
		return nil, false
	}
	c, ok := file.Stmts[0].Cmd.(*syntax.CallExpr)
	if !ok {
		return nil, false
	}
	src := a.src
	a.src = f.s
	defer func() { a.src = src }()
	variants := a.words(env.sc, c.Args)
	return variants[0], true
}
