package sqlpolicy

import (
	"slices"
	"strings"
	"sync"

	"github.com/bastion-dev/bastion/policy"
)

// verdicts remembers the Outcome of SQL strings already classified, keyed
// by their exact text. A Classifier is a pure function of the text, so a
// hit returns what a fresh parse would: the cache changes speed, never a
// verdict. Clients repeat texts exactly in the cases that matter: the
// extended protocol (pgx, JDBC, psycopg) sends the same Parse text with new
// parameters each time, ORMs and connection pools send the same queries,
// and psql sends the same catalog queries for \d.
//
// The texts are not normalized (literals replaced by placeholders): the
// verdict can depend on a literal's value (WHERE 1 = 1, col LIKE '%',
// set_config('role', ...)), so two texts that differ only in literals may
// be judged differently, and a normalized key would hand one the other's
// verdict. Verdict adds a cache by shape only for the statements whose
// verdict provably does not depend on their literals.
type verdicts struct {
	mu    sync.RWMutex
	m     map[string]Outcome
	bytes int // text held: the keys and their statements' texts
}

const (
	// cacheMaxText is the longest text remembered; longer ones (bulk
	// INSERTs, dumps) rarely repeat.
	cacheMaxText = 8 << 10
	// cacheMaxBytes bounds the text held by each of a Classifier's two
	// caches. When it is exceeded the cache starts over: a client
	// flooding it with unique texts costs it speed, nothing else.
	cacheMaxBytes = 2 << 20
)

func (v *verdicts) get(sql string) (Outcome, bool) {
	if v == nil {
		return Outcome{}, false
	}
	v.mu.RLock()
	out, ok := v.m[sql]
	v.mu.RUnlock()
	if ok {
		// Callers may change the slice they get; the cached one stays.
		out.Statements = slices.Clone(out.Statements)
	}
	return out, ok
}

// result is get without the statements.
func (v *verdicts) result(sql string) (policy.Result, bool) {
	if v == nil {
		return policy.Result{}, false
	}
	v.mu.RLock()
	out, ok := v.m[sql]
	v.mu.RUnlock()
	return out.Result, ok
}

func (v *verdicts) put(sql string, out Outcome) {
	if v == nil || len(sql) > cacheMaxText {
		return
	}
	out.Statements = slices.Clone(out.Statements)
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.m[sql]; ok {
		return
	}
	// The key and the statements' texts (views of sql) are held.
	size := len(sql)
	for _, st := range out.Statements {
		size += len(st.Text)
	}
	if v.m == nil || v.bytes+size > cacheMaxBytes {
		v.m, v.bytes = make(map[string]Outcome), 0
	}
	// A copy of the key: sql may be a view of a larger buffer (a protocol
	// message) that the cache must not keep alive.
	v.m[strings.Clone(sql)] = out
	v.bytes += size
}
