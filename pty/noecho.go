package pty

import (
	"bytes"
	"io"
)

// NoEchoMarker stands, in a recording of a terminal's input, for keystrokes
// the terminal did not show: what was typed at a password prompt (read -s,
// sudo, ssh, passwd, psql, getpass(3)). It is written once per burst of
// such keystrokes, so the recording does not tell even the secret's length.
const NoEchoMarker = "[MASKED:no-echo]"

// noEcho decides what a recording of a terminal's input keeps of each chunk
// of keystrokes, given whether the terminal shows them.
//
// Whether a terminal shows input is read from its termios when the chunk
// arrives, before it is written to the terminal: the mode the program reads
// it in. A key typed ahead of the prompt, while echo was still on, is both
// recorded and echoed in clear (and the output masker sees the echo); one
// typed after the prompt is neither.
type noEcho struct {
	inBurst bool // the last chunk was hidden and did not end its line
}

// filter returns what to record of p: p itself when the terminal echoes it,
// NoEchoMarker for the first hidden chunk of a burst, nothing for the rest.
// Enter ends a burst, so a second prompt (retype the new password) gets a
// marker of its own.
func (n *noEcho) filter(p []byte, echo bool) []byte {
	if echo {
		n.inBurst = false
		return p
	}
	var out []byte
	if !n.inBurst {
		out = []byte(NoEchoMarker)
	}
	n.inBurst = bytes.IndexAny(p, "\r\n") < 0
	return out
}

// Echo reports whether the command's terminal shows what is typed. It is
// false while a program reads a line with echo off, as every password
// prompt does, and when the terminal cannot be asked (fail closed).
// Programs in raw mode (editors, pagers, readline) turn echo off too, but
// they show what they read themselves, and Echo reports true for them.
func (p *Proc) Echo() bool {
	hidden, err := hiddenInput(p.master)
	return err == nil && !hidden
}

// MaskNoEcho returns a writer for the recording of the keystrokes sent to
// p's terminal: it writes each chunk to w while the terminal echoes, and
// NoEchoMarker in place of each burst that it does not echo. Write to it
// each chunk before it goes to the terminal, as io.TeeReader on the input
// of Wait does, so that the chunk is judged by the mode the program reads
// it in. It is not safe for concurrent use.
func (p *Proc) MaskNoEcho(w io.Writer) io.Writer {
	return &noEchoWriter{w: w, echo: p.Echo}
}

type noEchoWriter struct {
	w    io.Writer
	echo func() bool
	n    noEcho
}

func (nw *noEchoWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if q := nw.n.filter(p, nw.echo()); len(q) > 0 {
		if _, err := nw.w.Write(q); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}
