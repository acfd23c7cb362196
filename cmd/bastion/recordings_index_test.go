package main

import (
	"testing"
	"time"

	"github.com/bastion-dev/bastion/recordings"
	"github.com/bastion-dev/bastion/store"
	"github.com/google/go-cmp/cmp"
)

func TestMergeMatches(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	sums := []recordings.Summary{{ID: "b", Started: t0.Add(time.Hour)}, {ID: "a", Started: t0}}
	files := []recordings.Match{
		{ID: "b", Line: 3, Kind: "command", Command: 1, Text: "ls"},
		{ID: "b", Line: 5, Kind: "output", Command: 1, Text: "ls output"},
		{ID: "a", Line: 9, Kind: "output", Command: 2, Text: "ls again"},
	}
	found := func(id string, started time.Time, n, line int, cmd string) store.CommandMatch {
		return store.CommandMatch{Command: store.Command{SessionID: id, N: n, Line: line, Cmd: cmd}, Session: store.Session{ID: id, Started: started}}
	}
	cmd := func(id string, line, n int, text string) recordings.Match {
		return recordings.Match{ID: id, Line: line, Kind: "command", Command: n, Text: text}
	}
	for _, tc := range []struct {
		name  string
		found []store.CommandMatch
		want  []recordings.Match
	}{
		{"no store matches", nil, files},
		{"a command both know is listed once", []store.CommandMatch{found("b", t0.Add(time.Hour), 1, 3, "ls")}, files},
		{"a command the file lacks goes by line",
			[]store.CommandMatch{found("a", t0, 2, 7, "ls -a"), found("a", t0, 3, 11, "ls -l")},
			[]recordings.Match{files[0], files[1], cmd("a", 7, 2, "ls -a"), files[2], cmd("a", 11, 3, "ls -l")}},
		{"a session only the store has goes by its start",
			[]store.CommandMatch{found("z", t0.Add(2*time.Hour), 1, 2, "ls /new"), found("c", t0.Add(30*time.Minute), 1, 2, "ls /mid"),
				found("0", t0.Add(-time.Hour), 4, 8, "ls /old")},
			[]recordings.Match{cmd("z", 2, 1, "ls /new"), files[0], files[1], cmd("c", 2, 1, "ls /mid"), files[2], cmd("0", 8, 4, "ls /old")}},
		{"the same start orders by id, descending",
			[]store.CommandMatch{found("c", t0, 1, 2, "ls")},
			[]recordings.Match{files[0], files[1], cmd("c", 2, 1, "ls"), files[2]}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := mergeMatches(sums, files, tc.found)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
}
