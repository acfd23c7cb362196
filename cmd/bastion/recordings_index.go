package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/bastion-dev/bastion/bastion"
	"github.com/bastion-dev/bastion/masking"
	"github.com/bastion-dev/bastion/recordings"
	"github.com/bastion-dev/bastion/store"
	"github.com/spf13/cobra"
)

// The store keeps a copy of each session's command index (see
// store.Session). The recordings stay the record of truth: `recordings
// list` and `show` read them, and `search` reads them for output and
// commands, adding the store's command matches that the files no longer
// have (a recording moved away or unreadable).

// openStoreIfAny opens the data directory's store, or returns nil when the
// directory has none (a copy of recordings alone).
func openStoreIfAny(d bastion.DataDir) (*store.Store, error) {
	if _, err := os.Stat(d.DB()); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	return store.Open(d.DB())
}

// searchRecordings finds text in the commands and output of the recordings
// of d and in the commands of the store's index: newest session first,
// each command once.
func searchRecordings(ctx context.Context, d bastion.DataDir, text string) ([]recordings.Match, error) {
	if text == "" {
		return nil, errors.New("search for an empty text")
	}
	sums, err := recordings.List(d.Recordings(), recordings.Filter{})
	if err != nil {
		return nil, err
	}
	ms, err := recordings.SearchSessions(sums, text)
	if err != nil {
		return nil, err
	}
	st, err := openStoreIfAny(d)
	if err != nil || st == nil {
		return ms, err
	}
	defer st.Close()
	found, err := st.SearchCommands(ctx, text, store.SessionFilter{})
	if err != nil {
		return nil, err
	}
	return mergeMatches(sums, ms, found), nil
}

// mergeMatches adds to the recordings' matches the store's command matches
// they lack, ordered as recordings.Search orders: sessions newest first
// (then by id, descending), and by line within a session.
func mergeMatches(sums []recordings.Summary, files []recordings.Match, found []store.CommandMatch) []recordings.Match {
	type command struct {
		id string
		n  int
	}
	seen := map[command]bool{}
	for _, m := range files {
		if m.Kind == "command" {
			seen[command{m.ID, m.Command}] = true
		}
	}
	started := map[string]time.Time{}
	for _, s := range sums {
		started[s.ID] = s.Started
	}
	out := append([]recordings.Match{}, files...)
	for _, f := range found {
		if seen[command{f.SessionID, f.N}] {
			continue
		}
		seen[command{f.SessionID, f.N}] = true
		if _, ok := started[f.SessionID]; !ok {
			started[f.SessionID] = f.Session.Started
		}
		out = append(out, recordings.Match{ID: f.SessionID, Line: f.Line, Offset: f.Offset, Kind: "command", Command: f.N, Text: f.Cmd})
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.ID != b.ID {
			if sa, sb := started[a.ID], started[b.ID]; !sa.Equal(sb) {
				return sa.After(sb)
			}
			return a.ID > b.ID
		}
		return a.Line < b.Line
	})
	return out
}

func newRecordingsReindexCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "reindex",
		Short: "Rebuild the store's session index from the recordings",
		Long: `Write every recording's session and command index into the data directory's
store (bastion.db, created if missing), so that search finds the commands of
sessions recorded before the store kept an index. Running it again changes
nothing. A live session is indexed as far as its recording goes, and never
loses what bastion has already written to the store.

Exit status: 0 when every recording was indexed; 1 when some were not
(they are named on stderr with the reason; 'bastion recordings verify'
says more about a recording that cannot be read).`,
		Args: cobra.NoArgs,
	}
	dir := dataDirFlag(cmd)
	cmd.RunE = func(c *cobra.Command, _ []string) error {
		d := bastion.DataDir(*dir)
		ents, err := os.ReadDir(d.Recordings())
		if err != nil {
			return fmt.Errorf("reindex: %w", err)
		}
		st, err := store.Open(d.DB())
		if err != nil {
			return err
		}
		defer st.Close()
		masker := masking.Default() // as the server's (Server.Masker is not configured)
		sessions, commands, failed := 0, 0, 0
		for _, e := range ents {
			id, ok := strings.CutSuffix(e.Name(), ".cast")
			if !ok || !e.Type().IsRegular() {
				continue
			}
			det, err := recordings.Load(d.Recordings(), id)
			if err != nil {
				fmt.Fprintf(c.ErrOrStderr(), "bastion: not indexed: %s: %v\n", e.Name(), err)
				failed++
				continue
			}
			sess, cmds := storedCopy(det, masker)
			if err := st.PutSession(c.Context(), sess, cmds); err != nil {
				fmt.Fprintf(c.ErrOrStderr(), "bastion: not indexed: %s: %v\n", e.Name(), err)
				failed++
				continue
			}
			sessions++
			commands += len(cmds)
		}
		fmt.Fprintf(c.OutOrStdout(), "indexed %d sessions, %d commands\n", sessions, commands)
		if failed > 0 {
			return withCode(1, fmt.Errorf("%d recordings were not indexed", failed))
		}
		return nil
	}
	return cmd
}

// storedCopy is what the store keeps of a recorded session.
func storedCopy(d recordings.Details, masker *masking.Masker) (store.Session, []store.Command) {
	m := d.Header.Bastion
	path := d.Path
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	sess := store.Session{ID: d.ID, Identity: m.Identity, CertSerial: m.CertSerial, KeyID: m.KeyID, Principal: m.Principal,
		Source: m.Source, Target: m.Target, Reason: m.Reason, Command: masker.String(d.Header.Command), Recording: path,
		Started: d.Started, Ended: d.Ended, Exit: d.Exit}
	cmds := make([]store.Command, 0, len(d.Index))
	for _, e := range d.Index {
		cmds = append(cmds, store.Command{SessionID: d.ID, N: e.N, Offset: e.Offset, Line: e.Line, Cmd: e.Cmd,
			Decision: e.Decision, Rule: e.Rule, Exit: e.Exit, Duration: e.Duration,
			Started: d.Started.Add(time.Duration(e.Offset * float64(time.Second)))})
	}
	return sess, cmds
}
