package shellpolicy

import (
	_ "embed"
	"fmt"

	"github.com/bastion-dev/bastion/policy"
)

//go:embed default.yaml
var defaultYAML []byte

// DefaultYAML returns the built-in policy as a policy file, which is what
// `bastion policy show-default` prints. It parses with Parse.
func DefaultYAML() []byte { return append([]byte(nil), defaultYAML...) }

// The ids of the rules the analysis emits itself. Each one has an entry in
// default.yaml (without a match) that gives its decision and words.
const (
	ruleParseError     = "parse-error"
	ruleDynamicCommand = "dynamic-command"
	ruleIndirect       = "indirect-command"
	ruleGlobCommand    = "glob-command"
	ruleTooDeep        = "nesting-too-deep"
	ruleTooComplex     = "too-complex"
	ruleRemoteCode     = "remote-code"
	ruleDecoded        = "decoded-payload"
	rulePipedScript    = "piped-script"
	ruleOpaqueScript   = "opaque-script"
	ruleOneLiner       = "interpreter-one-liner"
	ruleRootShell      = "root-shell"
	ruleRemoteShell    = "remote-shell"
	ruleInteractive    = "interactive-shell"
	ruleShellInternals = "shell-internals"
	ruleTamper         = "bastion-tamper"
	ruleEnvOverride    = "env-override"
	ruleRmRoot         = "rm-root"
	ruleRmSystem       = "rm-system-path"
	ruleRmHome         = "rm-home"
	ruleRmDatabase     = "rm-database-dir"
	ruleRmApp          = "rm-app-path"
	ruleRmDynamic      = "rm-dynamic-target"
	ruleRmTemp         = "rm-temp"
	ruleOverwrite      = "overwrite-system-file"
	ruleModify         = "modify-system-file"
	ruleBlockDevice    = "write-block-device"
	ruleFormatDisk     = "format-disk"
	ruleChmodSystem    = "chmod-system-path"
	ruleChmodFile      = "chmod-system-file"
	ruleWipeHistory    = "wipe-history"
	ruleWipeLogs       = "wipe-logs"
	ruleForkBomb       = "fork-bomb"
	ruleKillAll        = "kill-all-processes"
	ruleKillDynamic    = "kill-dynamic-pid"
	ruleShutdown       = "shutdown"
	ruleSQLOpaque      = "sql-opaque"
	ruleScheduledJob   = "scheduled-job"
	ruleNetRedirect    = "network-redirect"
	ruleReverseShell   = "reverse-shell"
	ruleSQLParseError  = "sql-parse-error" // the SQL policy's, not ours
	ruleDefaultAllow   = "default-allow"
)

// codeRules lists every id above; the built-in policy must define each.
var codeRules = []string{
	ruleParseError, ruleDynamicCommand, ruleIndirect, ruleGlobCommand, ruleTooDeep, ruleTooComplex,
	ruleRemoteCode, ruleDecoded, rulePipedScript, ruleOpaqueScript, ruleOneLiner,
	ruleRootShell, ruleRemoteShell, ruleInteractive, ruleShellInternals, ruleTamper, ruleEnvOverride, ruleRmRoot, ruleRmSystem, ruleRmHome,
	ruleRmDatabase, ruleRmApp, ruleRmDynamic, ruleRmTemp, ruleOverwrite, ruleModify,
	ruleBlockDevice, ruleFormatDisk, ruleChmodSystem, ruleChmodFile, ruleWipeHistory,
	ruleWipeLogs, ruleForkBomb, ruleKillAll, ruleKillDynamic, ruleShutdown, ruleSQLOpaque,
	ruleScheduledJob, ruleNetRedirect, ruleReverseShell,
	ruleDefaultAllow,
}

// floors are the least decisions of the rules that guard what bastion cannot
// see. A policy file may make them stricter, but not allow, and may not
// disable them: an allow there would let any command through in disguise.
var floors = map[string]policy.Decision{
	ruleParseError:     policy.Approve,
	ruleDynamicCommand: policy.Approve,
	ruleIndirect:       policy.Approve,
	ruleGlobCommand:    policy.Approve,
	ruleTooDeep:        policy.Approve,
	ruleTooComplex:     policy.Approve,
	ruleRemoteCode:     policy.Approve,
	ruleDecoded:        policy.Approve,
	rulePipedScript:    policy.Approve,
}

// undisableable rules cannot be turned off: the fallback has to exist.
var undisableable = map[string]bool{ruleDefaultAllow: true}

var defaultPolicy = mustDefault()

func mustDefault() *Policy {
	p, err := compile(nil, defaultYAML, "default.yaml")
	if err != nil {
		panic(fmt.Sprintf("shellpolicy: built-in policy: %v", err)) // impossible: tested
	}
	for _, id := range codeRules {
		if p.rules[id] == nil {
			panic("shellpolicy: built-in policy lacks rule " + id) // impossible: tested
		}
	}
	return p
}
