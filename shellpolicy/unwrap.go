package shellpolicy

import (
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

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
			name, v, hasV := strings.Cut(s, "=")
			switch {
			case contains(fs.longArg, name) && hasV:
				vf := suffixField(*f, name+"=")
				fn(name, &vf)
			case contains(fs.longArg, name) && i+1 < len(argv):
				i++
				fn(name, &argv[i])
			default:
				unknown = unknown || !contains(fs.long, name) && !contains(fs.longArg, name)
				_ = v
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

// unwrap handles wrappers, shells and builtins that run other code. next is
// the wrapped command to analyse next; handled means n was dealt with here.
func (a *analyzer) unwrap(env *cmdEnv, n string, argv []field) (next []field, handled bool) {
	fr := env.fr
	simple := func(fs *flagSpec) []field {
		i, unk := fs.parse(argv, 1, func(string, *field) {})
		if unk && i+1 < len(argv) {
			a.command(env, argv[i+1:]) // the unknown option may have taken a value
		}
		if i >= len(argv) {
			return nil
		}
		return argv[i:]
	}
	switch {
	case n == "sudo" || n == "doas":
		env.root = true
		spec, shell, none := sudoFlags, false, false
		if n == "doas" {
			spec = doasFlags
		}
		var edit bool
		i, unk := spec.parse(argv, 1, func(opt string, v *field) {
			switch opt {
			case "-i", "-s", "--login", "--shell":
				shell = true
			case "-e", "--edit":
				edit = true
			case "-l", "--list", "-v", "--validate", "-k", "-K", "--remove-timestamp", "--reset-timestamp", "-V", "--version", "-h", "--help", "-L":
				none = true
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
				a.writeTarget(env.sc, fr, f, true)
			}
		case i < len(argv):
			return argv[i:], true
		case shell:
			a.hit(fr, ruleRootShell, n+" "+strings.Join(display(argv[1:]), " "))
		case !none && n == "doas":
		}
		return nil, true
	case n == "sudoedit":
		for _, f := range operands(argv[1:], "ugCpDhr") {
			a.writeTarget(env.sc, fr, f, true)
		}
		return nil, true
	case n == "su" || n == "runuser":
		a.su(env, n, argv)
		return nil, true
	case n == "env":
		return a.env(env, argv), true
	case n == "command" || n == "builtin":
		env.noFunc = true
		if n == "command" && len(argv) > 1 && hasOpt(argv[1:2], "-v", "-V") {
			return nil, true
		}
		return simple(commandFlags), true
	case n == "exec":
		return simple(execFlags), true
	case n == "nice":
		if len(argv) > 1 && len(argv[1].s) > 1 && argv[1].s[0] == '-' && isDigits(strings.TrimLeft(argv[1].s, "-")) {
			if len(argv) > 2 {
				return argv[2:], true
			}
			return nil, true
		}
		return simple(niceFlags), true
	case n == "ionice":
		if hasOpt(argv[1:], "-p", "-P", "-u", "--pid", "--pgid", "--uid") {
			return nil, true
		}
		return simple(ioniceFlags), true
	case n == "nohup" || n == "busybox":
		if len(argv) > 1 && strings.HasPrefix(argv[1].s, "-") {
			return nil, true
		}
		return argv[1:], true
	case n == "timeout":
		rest := simple(timeoutFlags)
		if len(rest) < 2 {
			return nil, true
		}
		return rest[1:], true
	case n == "time":
		return simple(timeFlags), true
	case n == "stdbuf":
		return simple(stdbufFlags), true
	case n == "setsid":
		return simple(setsidFlags), true
	case n == "taskset" || n == "chrt":
		if hasOpt(argv[1:], "-p", "--pid") {
			return nil, true
		}
		spec := tasksetFlags
		if n == "chrt" {
			spec = chrtFlags
		}
		if rest := simple(spec); len(rest) > 1 {
			return rest[1:], true // after the mask or priority
		}
		return nil, true
	case n == "flock":
		return a.flock(env, argv), true
	case n == "watch":
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
	case n == "xargs":
		a.xargs(env, argv)
		return nil, true
	case n == "parallel" || n == "sem":
		a.parallel(env, argv)
		return nil, true
	case n == "chroot":
		env.root = true
		rest := simple(chrootFlags)
		if len(rest) < 2 {
			a.hit(fr, ruleRootShell, "chroot")
			return nil, true
		}
		return rest[1:], true
	case n == "strace" || n == "ltrace":
		return simple(straceFlags), true
	case n == "script":
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
	case n == "ssh":
		a.ssh(env, argv)
		return nil, true
	case (n == "kubectl" || n == "oc") && hasWord(argv, "exec"):
		return a.kubectlExec(env, argv), true
	case (n == "docker" || n == "podman" || n == "nerdctl") && len(argv) > 1 && (argv[1].s == "exec" || argv[1].s == "run" ||
		len(argv) > 2 && argv[1].s == "container" && (argv[2].s == "exec" || argv[2].s == "run")):
		return a.containerCmd(env, argv), false
	case n == "ip" && len(argv) > 3 && (argv[1].s == "netns" || argv[1].s == "-n") && argv[2].s == "exec":
		return argv[4:], true // ip netns exec NAME COMMAND...
	case n == "sg" || n == "capsh":
		a.groupShell(env, n, argv)
		return nil, true
	case n == "tmux":
		a.tmux(env, argv)
		return nil, true
	case n == "run-parts":
		a.hit(fr, ruleOpaqueScript, strings.Join(display(argv), " "))
		return nil, true
	case scanWrappers[n]:
		env.root = env.root || rootWrappers[n]
		k := 0
		for i := 1; i < len(argv) && k < 4; i++ {
			if !strings.HasPrefix(argv[i].s, "-") {
				a.command(env, argv[i:])
				k++
			}
		}
		if k == 0 && n == "pkexec" {
			a.hit(fr, ruleRootShell, n) // with no command, a root shell
		}
		return nil, true
	case shellNames[n] || strings.HasSuffix(n, "sh") && shellNames[strings.TrimSuffix(n, ".exe")]:
		a.shell(env, n, argv)
		return nil, true
	case n == "eval":
		a.nestedArgs(env, argv[1:], "eval")
		return nil, true
	case n == "source" || n == ".":
		a.source(env, n, argv)
		return nil, true
	case n == "trap":
		if len(argv) > 2 && !strings.HasPrefix(argv[1].s, "-") {
			a.nestedField(env.noStdin(), argv[1], "trap", nil)
			fr.show = len(fr.hits) > 0
		}
		return nil, true
	case n == "alias":
		for _, f := range argv[1:] {
			if name, _, ok := strings.Cut(f.s, "="); ok {
				a.nestedField(env.noStdin(), suffixField(f, name+"="), "alias "+name, nil)
			}
		}
		return nil, true
	}
	if a.interpreter(env, n, argv) || a.sqlClient(env, n, argv) {
		return nil, true
	}
	return nil, false
}

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
func (a *analyzer) tmux(env *cmdEnv, argv []field) {
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

// nestedField analyses the code in f (bash -c 'code', trap 'code').
func (a *analyzer) nestedField(env *cmdEnv, f field, what string, args []string) {
	hits := len(env.fr.hits)
	if f.dyn {
		a.hit(env.fr, ruleDynamicCommand, what+" "+f.disp)
		return
	}
	a.nested(env, f.s, what, args)
	// the vehicle itself is not a finding unless something was found on it
	env.fr.show = len(env.fr.hits) > hits
}

// nestedArgs analyses args joined by spaces as code (eval, ssh, watch).
func (a *analyzer) nestedArgs(env *cmdEnv, args []field, what string) {
	if len(args) == 0 {
		return
	}
	parts := make([]string, len(args))
	dyn := false
	for i, f := range args {
		parts[i] = f.s
		dyn = dyn || f.dyn
	}
	a.nestedField(env, field{s: strings.Join(parts, " "), disp: strings.Join(display(args), " "), dyn: dyn}, what, nil)
}

var (
	kubectlExecFlags = &flagSpec{short: "itq", shortArg: "cn", long: []string{"--stdin", "--tty", "--quiet"},
		longArg: []string{"--container", "--namespace", "--context", "--kubeconfig", "--cluster", "--user", "--pod-running-timeout", "--filename", "--server", "--token", "-f"}}
	dockerExecFlags = &flagSpec{short: "ditP", shortArg: "euwahlmpv",
		long: []string{"--detach", "--interactive", "--tty", "--privileged", "--rm", "--init", "--read-only", "--publish-all", "--quiet", "--no-healthcheck", "--oom-kill-disable", "--sig-proxy"},
		longArg: []string{"--env", "--env-file", "--user", "--workdir", "--detach-keys", "--name", "--network", "--net", "--volume",
			"--mount", "--publish", "--entrypoint", "--hostname", "--label", "--label-file", "--memory", "--cpus", "--restart",
			"--platform", "--pull", "--runtime", "--security-opt", "--shm-size", "--tmpfs", "--ulimit", "--volumes-from", "--device",
			"--dns", "--add-host", "--cap-add", "--cap-drop", "--group-add", "--ipc", "--pid", "--gpus", "--log-driver",
			"--log-opt", "--stop-signal", "--stop-timeout", "--userns", "--cgroupns", "--attach", "--cidfile", "--expose",
			"--health-cmd", "--link", "--network-alias", "--sysctl", "--ulimit", "--uts", "--memory-swap", "--cpu-shares",
			"--cpuset-cpus", "--pids-limit", "--storage-opt", "--ip", "--ip6", "--mac-address", "--isolation", "--cgroup-parent"}}
)

func hasWord(argv []field, w string) bool {
	for _, f := range argv[1:] {
		if f.s == w {
			return true
		}
	}
	return false
}

// kubectlExec analyses kubectl exec POD -- COMMAND: the command runs in a
// container, which bastion protects like a host it reaches with ssh.
func (a *analyzer) kubectlExec(env *cmdEnv, argv []field) []field {
	dash := -1
	for i, f := range argv {
		if f.s == "--" {
			dash = i
			break
		}
	}
	if dash < 0 || dash+1 >= len(argv) {
		return nil
	}
	inner := argv[dash+1:]
	if isBareShell(inner) {
		a.hit(env.fr, ruleRemoteShell, strings.Join(display(argv[:dash]), " "))
		return nil
	}
	return inner
}

// containerCmd analyses docker exec CONTAINER COMMAND... and docker run
// IMAGE [COMMAND...]: the command is analysed as if it ran here. It
// returns nil, and docker itself is then judged by the policy's rules.
func (a *analyzer) containerCmd(env *cmdEnv, argv []field) []field {
	start := 2
	if argv[1].s == "container" {
		start = 3
	}
	run := argv[start-1].s == "run"
	i, unk := dockerExecFlags.parse(argv, start, func(string, *field) {})
	if i+1 >= len(argv) {
		return nil
	}
	inner := argv[i+1:]
	sub := *env
	sub.fr = &frame{pos: env.fr.pos}
	if isBareShell(inner) {
		if !run || hasOpt(argv[start:i], "-i", "-t", "--interactive", "--tty") {
			a.hit(env.fr, ruleRemoteShell, strings.Join(display(argv[:i+1]), " "))
		}
		return nil
	}
	if unk && i+2 < len(argv) {
		a.command(&sub, argv[i+2:]) // the unknown option may have taken a value
	}
	a.command(&sub, inner)
	a.endFrame(sub.fr)
	return nil
}

// isBareShell reports a shell started without code to run: an interactive
// shell in a container or on a host.
func isBareShell(argv []field) bool {
	n, _ := commandName(argv[0].s)
	if !shellNames[n] {
		return false
	}
	for _, f := range argv[1:] {
		if !strings.HasPrefix(f.s, "-") || strings.Contains(f.s, "c") && !strings.HasPrefix(f.s, "--") {
			return false
		}
	}
	return true
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

func (a *analyzer) env(env *cmdEnv, argv []field) []field {
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
			return nil
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
		return nil
	}
	return rest
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
