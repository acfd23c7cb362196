package main

import (
	"context"
	"errors"
	"os"
	"strings"

	"github.com/bastion-dev/bastion/bastion"
	"github.com/bastion-dev/bastion/recordings"
	"github.com/bastion-dev/bastion/store"
)

// knownSession reads what the data directory's store kept of the session a
// recording belongs to (its seal and command index), and says what it had
// for the ok line; nothing without a store or a row for the session.
func knownSession(ctx context.Context, d bastion.DataDir, path string) (recordings.Known, string, error) {
	var known recordings.Known
	f, err := os.Open(path)
	if err != nil {
		return known, "", err
	}
	rd, err := recordings.Open(f)
	f.Close()
	if err != nil {
		return known, "", nil // VerifySession names what is wrong with it
	}
	id := rd.Header().Bastion.SessionID
	st, err := openStoreIfAny(d)
	if err != nil || st == nil || id == "" {
		return known, "", err
	}
	defer st.Close()
	var said []string
	switch seal, err := st.RecordingSeal(ctx, id); {
	case err == nil:
		known.Seal = &recordings.Seal{Lines: seal.Lines, SHA256: seal.SHA256}
		said = append(said, "seal")
	case !errors.Is(err, store.ErrNotFound):
		return known, "", err
	}
	switch _, err := st.Session(ctx, id); {
	case err == nil:
		cmds, err := st.SessionCommands(ctx, id)
		if err != nil {
			return known, "", err
		}
		known.Index = make([]recordings.Entry, len(cmds))
		for i, c := range cmds {
			known.Index[i] = recordings.Entry{N: c.N, Offset: c.Offset, Line: c.Line, Cmd: c.Cmd, Decision: c.Decision, Rule: c.Rule,
				Exit: c.Exit, Duration: c.Duration}
		}
		said = append(said, "command index")
	case !errors.Is(err, store.ErrNotFound):
		return known, "", err
	}
	switch len(said) {
	case 0:
		return known, "", nil
	case 1:
		return known, "; the store's " + said[0] + " agrees", nil
	}
	return known, "; the store's " + strings.Join(said, " and ") + " agree", nil
}
