// Package pty runs the interactive line front of `ssh -t bastion`: it checks
// every input the agent submits before a persistent shell sees it, while
// keystrokes pass through to whatever command runs (vim, less, top, psql).
//
// # Shape
//
// A [Front] puts bastion's own line editor in front of one bash on a PTY
// (github.com/creack/pty). While no command runs, keystrokes go to the
// editor: printable characters, Backspace, Ctrl-U, Ctrl-W, Ctrl-K, Left,
// Right, Home, End (and Ctrl-A, Ctrl-E), Up and Down through history, Ctrl-C
// (drop the input, new prompt), Ctrl-D (on an empty input: end the session;
// otherwise delete the character under the cursor), Ctrl-L (clear the
// screen), Tab (inserted as is, no completion). Bracketed paste is accepted:
// pasted newlines become part of the input, which runs at the next Enter.
// On Enter the editor parses the text with mvdan.cc/sh/v3/syntax as bash; if
// the parse is incomplete (open quote, `if` without `fi`, trailing
// backslash, open here-document) it shows the continuation prompt "> " and
// keeps reading. A complete input, of one or more lines, goes to
// [Front.Check] once. If Check lets it run, bash runs it and the keystrokes
// go to the PTY until bash reports that the input has finished; then
// [Front.OnExit] gets the status and the editor shows the prompt again. The
// shell persists, so cd, export, functions and variables carry over.
//
// # How bash is driven
//
// Bash is started as `bash --noediting ... -i`. Its standard input is a
// FIFO that only bastion writes to (the command FIFO), its standard output
// and error are the PTY, and it gets two more descriptors: a pipe for inputs
// (the input pipe) and the PTY. It is a session leader with the PTY as
// controlling terminal, so job control works: each command runs in its own
// process group, which the kernel puts in the terminal's foreground, and
// Ctrl-C, Ctrl-Z and SIGWINCH reach it. At start bastion writes a short
// script that turns off history expansion (!!), aliases and bash's prompts,
// defines a marker function and makes it the read-only PROMPT_COMMAND, which
// bash runs before it reads each command. The marker function checks that
// bash's standard input is still the command FIFO, then ignores SIGINT, then
// prints an OSC string
//
//	ESC ] 7777 ; <nonce> ; <command number> ; <status> BEL
//
// to the PTY, after the command's output. The nonce is random per session;
// the output pump strips markers with it and passes everything else,
// including marker-shaped text with another nonce, to the agent.
//
// To run a checked input bastion writes one fixed line to the command FIFO,
//
//	if IFS= read -r -d '' -u 3 __bastion_input; then trap - INT;
//	__bastion_status; eval "$__bastion_input" 0<&4 3<&- 4<&-; fi
//
// (one line, with `builtin` in front of each builtin), and the input followed
// by a NUL to the input pipe. Bash reads the input whole, lets SIGINT
// through again, restores $? and runs the input at top level (so declare,
// local, return and set -- behave as typed), with the terminal as standard
// input and the plumbing descriptors closed. When the input finishes, or ^C
// ends it, bash undoes the redirections and runs PROMPT_COMMAND: the marker
// ends the command. Bastion accepts a marker only if its command number is
// the expected one and /proc/<pid>/status shows that bash ignores SIGINT
// (the marker function ignores it before printing, so a marker printed by a
// command, even one that read the nonce out of the shell, is caught). Any
// other marker with the nonce ends the session with [ErrTampered].
//
// # Why no unchecked byte reaches bash's command reader
//
//  1. Bash reads commands only from its standard input, the command FIFO,
//     and only bastion holds the FIFO's write end. The FIFO lives in a
//     directory of its own and has mode 0000 once bastion has opened it, so
//     another user cannot open it again, not even through /proc/<pid>/fd;
//     neither can it reopen the input pipe, which root created.
//  2. The PTY, where keystrokes arrive and where any process on the terminal
//     can push bytes as if typed (TIOCSTI, still enabled on many kernels), is
//     never a source of commands: an input gets it as standard input through
//     a redirection that bash undoes when the input ends, also when ^C
//     interrupts it. An input that breaks the undoing (closing bash's saved
//     copy of the FIFO, say) is caught before bash reads another command:
//     the marker function compares its standard input with the FIFO's path
//     ([[ /dev/fd/0 -ef ... ]], which only root could make true for another
//     file), reports, and exits. So keystrokes that reach the PTY while a
//     command ends can only be read by a program, never by bash's parser;
//     bastion discards what is left (tcflush) when the command ends.
//  3. Bastion writes to the command FIFO only the start-up script (before
//     any input of the agent exists), the fixed line above, and empty lines.
//     The agent's text travels as data on the input pipe and reaches bash's
//     parser only through eval, as a whole, after Check.
//  4. Bash reads a command line character by character and, on SIGINT, drops
//     what it has read so far and parses the rest of the line as a new
//     command, so a ^C while bash read the fixed line would run a suffix of
//     it. Bastion writes the fixed line only after a marker, which bash
//     prints after it ignores SIGINT (checked in /proc); bash reads the
//     input while SIGINT is still ignored, so it is read whole; an empty
//     line has no suffix.
//  5. History expansion and aliases, which make bash run something else than
//     the checked text, are off.
//
// Keeping keystrokes for the next prompt is for usability, not safety:
// while bash itself holds the terminal's foreground (a builtin runs, or a
// command is starting or ending) keystrokes are kept for the line editor,
// except Ctrl-C; while a program holds it they go to the PTY. This also
// means the shell's own `read` builtin, run at the prompt, gets no
// keystrokes (Ctrl-C ends it).
//
// The guarantee is about the shell's command reader. A program that the
// policy lets run and that reads commands itself (bash, python, psql, vim's
// :!) gets the keystrokes unchecked; the policy decides whether to allow it.
// Likewise the policy must treat as code execution anything that changes
// this plumbing, which bash cannot fully protect: trap, enable, builtin,
// exec, redirections to descriptors 3 and above or to /proc/*/fd, defining
// functions named after builtins (read, printf, eval, trap, builtin,
// command), `shopt -s expand_aliases`, `set -H`, and assigning the shell's
// __bastion_* variables. The functions and PROMPT_COMMAND are read-only, a
// marker function that no longer ignores SIGINT is caught, and so is a
// replaced standard input, except in one case: an input that both breaks the
// undoing of its redirection and gets a second SIGINT delivered in the
// microseconds between its end and the marker function's check. Finally the
// shell must run as another user than bastion: a process of the same user
// could open the FIFO and the pipe through /proc.
//
// # Ctrl-C
//
// While a command runs, Ctrl-C is written to the PTY as \x03, and the line
// discipline sends SIGINT to the foreground process group, which may be
// bash itself (a builtin loop). A second ^C can reach bash after the
// command ended but before the marker function ignores SIGINT, and then no
// marker comes; after each ^C bastion watches for bash sitting idle on the
// terminal without a marker and then writes an empty line, on which bash
// runs PROMPT_COMMAND again. While Check decides (an approval wait), Ctrl-C
// cancels Check's context and nothing runs.
//
// # Hidden input
//
// Keystrokes that a running program reads with echo off (a password prompt:
// ECHO off with ICANON on in the PTY's termios, read on the master with
// TCGETS as each chunk arrives) reach [Front.OnInput] as [NoEchoMarker],
// once per burst, instead of as typed, so that a password never lands in
// the recording; [Proc.MaskNoEcho] does the same for a command on its own
// PTY. Raw-mode programs (vim, less, readline) turn echo off too but draw
// what they read; their keystrokes are recorded as typed.
//
// # Lifetimes
//
// Run owns: the goroutine waiting for bash, the output pump reading the PTY,
// and the goroutine running Check; it waits for all three before returning.
// It does not wait for the goroutine reading In, which may be blocked in a
// Read on an SSH channel: that goroutine ends at the next Read that fails,
// so the caller closes In (the channel) after Run returns. When the session
// ends Run kills every process of the shell's session (jobs included),
// closes the PTY and returns the shell's exit status.
package pty
