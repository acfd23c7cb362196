package recordings

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
)

// Event is one event of a recording.
type Event struct {
	Time float64 // seconds since the start
	Type string  // event code: "o", "i", "r", "m", "ob", "ib", or another
	// Data is the event's string; for an event whose data is not a JSON
	// string (unknown codes may carry anything) it is the raw JSON.
	Data string
}

// Bytes returns the exact bytes of an "ob" or "ib" event, and the data of
// any other event as is.
func (e Event) Bytes() []byte {
	if e.Type == CodeOutputBytes || e.Type == CodeInputBytes {
		if b, err := base64.StdEncoding.DecodeString(e.Data); err == nil {
			return b
		}
	}
	return []byte(e.Data)
}

// FormatError says which line of a recording is not valid asciicast v2.
type FormatError struct {
	Line int
	Msg  string
}

func (e *FormatError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// Reader reads a recording event by event.
type Reader struct {
	br   *bufio.Reader
	h    Header
	line int    // number of the last line read
	raw  []byte // the last line read, without its newline
	err  error  // sticky
}

// Open reads the header of the recording in r.
func Open(r io.Reader) (*Reader, error) {
	rd := &Reader{br: bufio.NewReaderSize(r, 64<<10)}
	line, complete, err := rd.readLine()
	if err == io.EOF {
		return nil, &FormatError{Line: 1, Msg: "empty recording: no header"}
	}
	if err != nil {
		return nil, err
	}
	var h headerLine
	if err := json.Unmarshal(line, &h); err != nil {
		if !complete {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, &FormatError{Line: 1, Msg: "header is not a JSON object: " + err.Error()}
	}
	if h.Version != 2 {
		return nil, &FormatError{Line: 1, Msg: fmt.Sprintf("asciicast version %d, want 2", h.Version)}
	}
	if h.Width <= 0 || h.Height <= 0 {
		return nil, &FormatError{Line: 1, Msg: "header lacks the terminal width and height"}
	}
	rd.h = h.Header
	return rd, nil
}

// Header returns the recording's header.
func (r *Reader) Header() Header { return r.h }

// Line returns the number of the line the last event came from (the
// header is line 1).
func (r *Reader) Line() int { return r.line }

// Next returns the next event. At the end it returns io.EOF; when the last
// line was cut off mid-write (a crash) it returns io.ErrUnexpectedEOF
// instead, which is not corruption: every event before it is intact. A
// line that is not a valid event is a *FormatError.
func (r *Reader) Next() (Event, error) {
	if r.err != nil {
		return Event{}, r.err
	}
	line, complete, err := r.readLine()
	if err != nil {
		r.err = err
		return Event{}, err
	}
	e, ferr := parseEvent(line)
	if ferr != "" {
		if !complete {
			r.err = io.ErrUnexpectedEOF
		} else {
			r.err = &FormatError{Line: r.line, Msg: ferr}
		}
		return Event{}, r.err
	}
	return e, nil
}

// readLine returns the next line without its newline; complete is false
// for a last line without one.
func (r *Reader) readLine() (line []byte, complete bool, err error) {
	line, err = r.br.ReadBytes('\n')
	if err != nil && err != io.EOF {
		return nil, false, err
	}
	if len(line) == 0 {
		return nil, false, io.EOF
	}
	r.line++
	complete = line[len(line)-1] == '\n'
	if complete {
		line = line[:len(line)-1]
	}
	r.raw = line
	return line, complete, nil
}

// parseEvent decodes [time, code, data]; a non-empty string says what is
// wrong.
func parseEvent(line []byte) (Event, string) {
	var e Event
	var arr []json.RawMessage
	if err := json.Unmarshal(line, &arr); err != nil {
		if !json.Valid(line) {
			return e, "not valid JSON"
		}
		return e, "event is not a JSON array"
	}
	if len(arr) != 3 {
		return e, fmt.Sprintf("event has %d elements, want [time, code, data]", len(arr))
	}
	if err := json.Unmarshal(arr[0], &e.Time); err != nil || e.Time < 0 || math.IsInf(e.Time, 0) {
		return e, "event time is not a non-negative number"
	}
	if err := json.Unmarshal(arr[1], &e.Type); err != nil {
		return e, "event code is not a string"
	}
	if d := bytes.TrimSpace(arr[2]); len(d) > 0 && d[0] == '"' {
		if err := json.Unmarshal(d, &e.Data); err != nil {
			return e, "event data is not a valid string"
		}
	} else {
		switch e.Type {
		case CodeOutput, CodeInput, CodeResize, CodeMarker, CodeOutputBytes, CodeInputBytes:
			return e, fmt.Sprintf("%q event data is not a string", e.Type)
		}
		e.Data = string(d)
	}
	return e, ""
}
