package recordings

import (
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// Index is a session's command index, kept in <id>.index.json next to the
// recording: rewritten (atomically) at every command end and at close. It
// is a cache of what the recording's markers say, for listing and "jump to
// command"; the recording remains the record of truth.
type Index struct {
	SessionID string     `json:"session_id"`
	Started   time.Time  `json:"started"`
	Ended     *time.Time `json:"ended,omitempty"` // nil until the recording is sealed
	Exit      *int       `json:"exit,omitempty"`  // the session's exit code, once ended
	Commands  []Entry    `json:"commands"`
}

// Entry is one command of a session.
type Entry struct {
	N        int     `json:"n"`
	Offset   float64 `json:"offset"` // seconds from the start of the recording
	Line     int     `json:"line"`   // line of the command marker in the .cast file
	Cmd      string  `json:"cmd"`
	Decision string  `json:"decision"`
	Rule     string  `json:"rule,omitempty"`
	// Exit is nil for a command that did not run (denied) or has not ended.
	Exit     *int    `json:"exit"`
	Duration float64 `json:"duration"` // seconds
}

func writeIndex(path string, ix Index) error {
	b, err := json.MarshalIndent(ix, "", "  ")
	if err != nil {
		return fmt.Errorf("recordings: encode index: %w", err)
	}
	if err := writeFileAtomic(path, append(b, '\n')); err != nil {
		return fmt.Errorf("recordings: write index %s: %w", path, err)
	}
	return nil
}

func readIndex(path string) (Index, error) {
	var ix Index
	b, err := os.ReadFile(path)
	if err != nil {
		return ix, err
	}
	if err := json.Unmarshal(b, &ix); err != nil {
		return ix, fmt.Errorf("recordings: index %s: %w", path, err)
	}
	return ix, nil
}
