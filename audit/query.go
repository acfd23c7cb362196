package audit

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Filter selects events. Zero fields match everything.
type Filter struct {
	// Subject matches the identity's subject, or its full "kind:sub@issuer"
	// form.
	Subject string
	Since   time.Time // events at or after Since
	Until   time.Time // events before Until
	// Decision matches case-insensitively ("deny" matches "DENY").
	Decision string
	// Type matches the event type exactly, or as a prefix up to a dot:
	// "cert" matches "cert.issued" and "cert.revoked".
	Type    string
	Session string
}

// Match reports whether e passes the filter.
func (f Filter) Match(e Event) bool {
	if f.Subject != "" && (e.Identity == nil || e.Identity.Subject != f.Subject && e.Identity.String() != f.Subject) {
		return false
	}
	if !f.Since.IsZero() && e.Time.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && !e.Time.Before(f.Until) {
		return false
	}
	if f.Decision != "" && !strings.EqualFold(e.Decision, f.Decision) {
		return false
	}
	if f.Type != "" && e.Type != f.Type && !strings.HasPrefix(e.Type, f.Type+".") {
		return false
	}
	if f.Session != "" && e.Session != f.Session {
		return false
	}
	return true
}

// Search returns the events of the log at path that match f, oldest
// first. Lines that are not events (a torn line) are skipped: Search reads,
// Verify judges.
func Search(path string, f Filter) ([]Event, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("audit: search: %w", err)
	}
	defer file.Close()
	out := []Event{}
	br := bufio.NewReaderSize(file, 64<<10)
	for {
		line, rerr := br.ReadBytes('\n')
		if len(line) > 0 {
			if e, ok := parseEvent(trimNewline(line)); ok && f.Match(e) {
				out = append(out, e)
			}
		}
		if rerr == io.EOF {
			return out, nil
		}
		if rerr != nil {
			return nil, fmt.Errorf("audit: search %s: %w", path, rerr)
		}
	}
}

// Tail returns the last n events of the log at path, oldest first. It
// reads the file backwards, so it costs what the n lines cost.
func Tail(path string, n int) ([]Event, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("audit: tail: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("audit: tail: %w", err)
	}
	evs, _, err := lastEvents(f, fi.Size(), n)
	return evs, err
}

// Follow calls fn with the last n events of the log at path, then with
// each event appended after them, polling the file every poll (a
// non-positive poll means 500ms). It returns ctx's error when ctx is done,
// fn's error if fn fails, or an error if the file shrinks.
func Follow(ctx context.Context, path string, n int, poll time.Duration, fn func(Event) error) error {
	if poll <= 0 {
		poll = 500 * time.Millisecond
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("audit: follow: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("audit: follow: %w", err)
	}
	evs, off, err := lastEvents(f, fi.Size(), n)
	if err != nil {
		return err
	}
	for _, e := range evs {
		if err := fn(e); err != nil {
			return err
		}
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		fi, err := f.Stat()
		if err != nil {
			return fmt.Errorf("audit: follow: %w", err)
		}
		size := fi.Size()
		if size < off {
			return fmt.Errorf("audit: follow %s: file shrank from %d to %d bytes", path, off, size)
		}
		if size == off {
			continue
		}
		buf := make([]byte, size-off)
		if _, err := f.ReadAt(buf, off); err != nil && err != io.EOF {
			return fmt.Errorf("audit: follow: %w", err)
		}
		for {
			i := bytes.IndexByte(buf, '\n')
			if i < 0 {
				break // a line still being written: read it next time
			}
			if e, ok := parseEvent(buf[:i]); ok {
				if err := fn(e); err != nil {
					return err
				}
			}
			buf = buf[i+1:]
			off += int64(i + 1)
		}
	}
}

// lastEvents returns the last n complete events before size, oldest first,
// and the offset just after the last complete line.
func lastEvents(f io.ReaderAt, size int64, n int) ([]Event, int64, error) {
	out := []Event{}
	var end int64 = -1 // offset after the last newline
	for chunk := int64(64 << 10); ; chunk *= 2 {
		pos := max(0, size-chunk)
		buf := make([]byte, size-pos)
		if _, err := f.ReadAt(buf, pos); err != nil && err != io.EOF {
			return nil, 0, fmt.Errorf("audit: read: %w", err)
		}
		out = out[:0]
		i := lastIndex(buf, len(buf))
		if i >= 0 && end < 0 {
			end = pos + int64(i) + 1
		}
		for i >= 0 && len(out) < n {
			j := lastIndex(buf, i)
			if j < 0 && pos > 0 {
				break
			}
			if e, ok := parseEvent(buf[j+1 : i]); ok {
				out = append(out, e)
			}
			i = j
		}
		if len(out) >= n && end >= 0 || pos == 0 {
			break
		}
	}
	if end < 0 {
		end = 0
	}
	for a, b := 0, len(out)-1; a < b; a, b = a+1, b-1 {
		out[a], out[b] = out[b], out[a]
	}
	return out, end, nil
}

func trimNewline(b []byte) []byte {
	if len(b) > 0 && b[len(b)-1] == '\n' {
		return b[:len(b)-1]
	}
	return b
}
