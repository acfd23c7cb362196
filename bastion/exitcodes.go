// Package bastion wires the SSH server: certificate authentication, the
// session middleware chain, exec and shell handlers, forwarding rules and the
// HTTP API.
package bastion

// Exit codes that bastion returns to an SSH client in place of the command's
// own status. They sit high in the 0-255 range, away from the codes shells and
// common tools use (1, 2, 126, 127, 128+signal), so an agent can tell a
// bastion refusal from a failing command. They are a stable contract:
// documented in README.md, never renumbered.
const (
	// ExitDenied: the policy denied the command; nothing ran. stderr holds
	// "bastion: denied: <reason> [rule <id>]" and a JSON line.
	ExitDenied = 210
	// ExitApprovalRequired: the command needs a human approval and none can
	// be given (approvals disabled, or the request could not be created).
	ExitApprovalRequired = 211
	// ExitApprovalDenied: an approver refused the command.
	ExitApprovalDenied = 212
	// ExitApprovalTimeout: no approver answered before the request expired,
	// or the request was cancelled.
	ExitApprovalTimeout = 213
	// ExitRecordingUnavailable: the session could not be recorded or audited,
	// so nothing ran (fail closed).
	ExitRecordingUnavailable = 214
	// ExitInternal: bastion failed for a reason of its own; see the server log.
	ExitInternal = 215
	// ExitSessionLimit: the identity has too many sessions, or the session hit
	// its maximum duration or idle timeout.
	ExitSessionLimit = 216
	// ExitCertificate: the session's certificate was revoked or reached its
	// ValidBefore while the session ran, so it was ended; run bastion login
	// for a new one.
	ExitCertificate = 217
)
