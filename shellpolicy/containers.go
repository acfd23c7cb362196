package shellpolicy

import "strings"

// Commands run in a container (kubectl exec, docker exec, docker run): the
// container is protected like a host bastion reaches with ssh.

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

// kubectlExec unwraps kubectl exec POD -- COMMAND (and oc exec): the
// command is the next layer. Other kubectl commands are not wrappers.
func (a *analyzer) kubectlExec(env *cmdEnv, n string, argv []field) ([]field, bool) {
	if !hasWord(argv, "exec") {
		return a.runsCode(env, n, argv)
	}
	dash := -1
	for i, f := range argv {
		if f.s == "--" {
			dash = i
			break
		}
	}
	if dash < 0 || dash+1 >= len(argv) {
		return nil, true
	}
	inner := argv[dash+1:]
	if isBareShell(inner) {
		a.hit(env.fr, ruleRemoteShell, strings.Join(display(argv[:dash]), " "))
		return nil, true
	}
	return inner, true
}

// containerCmd analyses docker exec CONTAINER COMMAND... and docker run
// IMAGE [COMMAND...] (podman, nerdctl, docker container exec|run): the
// command is analysed as if it ran here, in a frame of its own. Nothing
// follows as the next layer, and docker itself is still checked (handled
// is false) and judged by the policy's rules.
func (a *analyzer) containerCmd(env *cmdEnv, n string, argv []field) ([]field, bool) {
	if !(len(argv) > 1 && (argv[1].s == "exec" || argv[1].s == "run" ||
		len(argv) > 2 && argv[1].s == "container" && (argv[2].s == "exec" || argv[2].s == "run"))) {
		return a.runsCode(env, n, argv)
	}
	start := 2
	if argv[1].s == "container" {
		start = 3
	}
	run := argv[start-1].s == "run"
	i, unk := dockerExecFlags.parse(argv, start, func(string, *field) {})
	if i+1 >= len(argv) {
		return nil, false
	}
	inner := argv[i+1:]
	sub := *env
	sub.fr = &frame{pos: env.fr.pos}
	if isBareShell(inner) {
		if !run || hasOpt(argv[start:i], "-i", "-t", "--interactive", "--tty") {
			a.hit(env.fr, ruleRemoteShell, strings.Join(display(argv[:i+1]), " "))
		}
		return nil, false
	}
	if unk && i+2 < len(argv) {
		a.command(&sub, argv[i+2:]) // the unknown option may have taken a value
	}
	a.command(&sub, inner)
	a.endFrame(sub.fr)
	return nil, false
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
