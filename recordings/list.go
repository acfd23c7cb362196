package recordings

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
	"time"
)

// Summary describes one recorded session.
type Summary struct {
	ID        string    `json:"id"`
	Subject   string    `json:"subject"`
	Kind      string    `json:"kind"`
	Principal string    `json:"principal"`
	Source    string    `json:"source"`
	Command   string    `json:"command,omitempty"` // the exec command; empty for a shell
	Started   time.Time `json:"-"`                 // encoded by MarshalJSON
	Ended     time.Time `json:"-"`                 // zero if the recording is not sealed
	Commands  int       `json:"commands"`
	Denied    int       `json:"denied"`
	Exit      *int      `json:"exit"` // the session's exit code, nil if not ended
	Path      string    `json:"path"`
}

// MarshalJSON writes Started and Ended as RFC 3339 times, and Ended as null
// while the recording is not sealed.
func (s Summary) MarshalJSON() ([]byte, error) {
	type plain Summary
	var ended *time.Time
	if !s.Ended.IsZero() {
		ended = &s.Ended
	}
	return json.Marshal(struct {
		plain
		Started time.Time  `json:"started"`
		Ended   *time.Time `json:"ended"`
	}{plain(s), s.Started, ended})
}

// Details is a session's summary, header and command index.
type Details struct {
	Summary
	Header Header  `json:"header"`
	Index  []Entry `json:"index"`
}

// MarshalJSON keeps Summary's encoding and adds the header and index.
func (d Details) MarshalJSON() ([]byte, error) {
	s, err := d.Summary.MarshalJSON()
	if err != nil {
		return nil, err
	}
	rest, err := json.Marshal(struct {
		Header Header  `json:"header"`
		Index  []Entry `json:"index"`
	}{d.Header, d.Index})
	if err != nil {
		return nil, err
	}
	return append(append(s[:len(s)-1], ','), rest[1:]...), nil
}

// Filter selects sessions. Zero fields match everything.
type Filter struct {
	// Subject matches the identity's subject or its "kind:sub@issuer" form.
	Subject string
	Since   time.Time // started at or after
	Until   time.Time // started before
	// Decision selects sessions with at least one command so decided
	// (case-insensitive), e.g. "deny".
	Decision string
}

// List returns the sessions recorded in dir that match f, newest first. A
// missing dir has no sessions. Files whose header cannot be read are left
// out; Verify says what is wrong with them.
func List(dir string, f Filter) ([]Summary, error) {
	ids, err := ids(dir)
	if err != nil {
		return nil, err
	}
	out := []Summary{}
	for _, id := range ids {
		d, err := Load(dir, id)
		if err != nil {
			continue
		}
		if f.match(d) {
			out = append(out, d.Summary)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Started.Equal(out[j].Started) {
			return out[i].Started.After(out[j].Started)
		}
		return out[i].ID > out[j].ID
	})
	return out, nil
}

func (f Filter) match(d Details) bool {
	id := d.Header.Bastion.Identity
	if f.Subject != "" && id.Subject != f.Subject && id.String() != f.Subject {
		return false
	}
	if !f.Since.IsZero() && d.Started.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && !d.Started.Before(f.Until) {
		return false
	}
	if f.Decision != "" {
		for _, e := range d.Index {
			if strings.EqualFold(e.Decision, f.Decision) {
				return true
			}
		}
		return false
	}
	return true
}

// ids lists the session ids with a .cast file in dir.
func ids(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("recordings: list %s: %w", dir, err)
	}
	var out []string
	for _, e := range ents {
		if id, ok := strings.CutSuffix(e.Name(), ".cast"); ok && e.Type().IsRegular() && checkID(id) == nil {
			out = append(out, id)
		}
	}
	return out, nil
}

// Load returns what is known about session id in dir: from its index file
// when the recording was sealed, else by reading the recording itself (a
// live or crashed session).
func Load(dir, id string) (Details, error) {
	path, err := Path(dir, id)
	if err != nil {
		return Details{}, err
	}
	f, err := os.Open(path)
	if err != nil {
		return Details{}, fmt.Errorf("recordings: %w", err)
	}
	defer f.Close()
	rd, err := Open(f)
	if err != nil {
		return Details{}, fmt.Errorf("recordings: %s: %w", path, err)
	}
	h := rd.Header()
	d := Details{Header: h, Summary: Summary{
		ID: id, Subject: h.Bastion.Identity.Subject, Kind: string(h.Bastion.Identity.Kind),
		Principal: h.Bastion.Principal, Source: h.Bastion.Source, Command: h.Command, Path: path,
		Started: time.Unix(h.Timestamp, 0).UTC(),
	}}
	if ix, err := readIndex(indexPath(dir, id)); err == nil && ix.Ended != nil && ix.SessionID == id {
		d.Started, d.Ended, d.Exit, d.Index = ix.Started, *ix.Ended, ix.Exit, ix.Commands
	} else {
		scanIndex(rd, &d)
	}
	if d.Index == nil {
		d.Index = []Entry{}
	}
	d.Commands = len(d.Index)
	for _, e := range d.Index {
		if strings.EqualFold(e.Decision, "deny") {
			d.Denied++
		}
	}
	return d, nil
}

// scanIndex rebuilds the command index from the markers of a recording.
func scanIndex(rd *Reader, d *Details) {
	for {
		e, err := rd.Next()
		if err != nil {
			return
		}
		if e.Type != CodeMarker {
			continue
		}
		m, ours, _ := parseMarker(e.Data)
		if !ours {
			continue
		}
		switch m.Type {
		case markCommand:
			d.Index = append(d.Index, Entry{N: m.N, Offset: e.Time, Line: rd.Line(), Cmd: m.Cmd, Decision: m.Decision, Rule: m.Rule})
		case markExit:
			if m.N >= 1 && m.N <= len(d.Index) && m.Exit != nil {
				x := &d.Index[m.N-1]
				x.Exit = m.Exit
				if m.Duration != nil {
					x.Duration = *m.Duration
				}
			}
		case markEnd:
			d.Exit = m.Exit
		case markSeal:
			d.Ended = d.Started.Add(time.Duration(e.Time * float64(time.Second)))
		}
	}
}
