package pgproxy

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// A catalog is what the proxy learns from a target on side connections of
// its own: the relations behind result columns (for column masking) and
// planner estimates (for UPDATE and DELETE). It is shared by every session
// of a target (and every Proxy for it: bastion makes one per tunnel) and
// lives while one is open, plus catalogLinger for the next.
//
// Side connections log in with the target's injected credentials, never on
// the client's connection: a failing catalog query or EXPLAIN there would
// abort the client's transaction, and in the extended protocol it would
// have to be woven into the client's batch. They therefore see committed
// state only; a relation created in the client's open transaction is
// unknown to them, and callers fail closed on that (see lookups).
type catalog struct {
	key  catalogKey
	cfg  *pgconn.Config // for side connections; nil: no side connections (unusable target)
	refs int            // guarded by catalogs.mu
	stop *time.Timer    // closes an unused catalog; guarded by catalogs.mu

	// gen changes when a session may have changed the schema (CREATE,
	// ALTER): what was cached before is fetched again.
	gen atomic.Uint64

	mu        sync.Mutex
	byOID     map[uint32]*relInfo  // guarded by mu
	byName    map[string]nameEntry // by quoted name; guarded by mu
	funcs     map[string]bool      // names of functions outside pg_catalog; guarded by mu
	funcsGen  uint64               // gen when funcs was fetched; guarded by mu
	funcsAt   time.Time            // guarded by mu
	downUntil time.Time            // no new side connection before this; guarded by mu

	idle chan *pgconn.PgConn // idle side connections
	open chan struct{}       // one token per open side connection
}

// catalogKey identifies a target's catalog: who logs in where, and the
// search_path the client set at startup (names resolve through it).
type catalogKey struct {
	addr, database, user, password, searchPath string
	tls                                        *tls.Config
}

const (
	// maxSideConns bounds a target's side connections, shared by all its
	// sessions.
	maxSideConns = 4
	// sideTimeout bounds one catalog lookup or estimate, connecting
	// included: the client waits for it.
	sideTimeout = 2 * time.Second
	// sideBackoff is how long a target whose side connection failed is not
	// asked again: every lookup would wait for the failure.
	sideBackoff = 5 * time.Second
	// relTTL bounds how long a relation's description is trusted without
	// a schema change seen through the proxy (another client may rename a
	// column).
	relTTL = time.Minute
	// missTTL is how long "no such relation" is remembered: the client may
	// be about to commit it.
	missTTL = 2 * time.Second
	// catalogLinger keeps a target's catalog after its last session, for
	// the next (psql opens one connection per invocation).
	catalogLinger = 30 * time.Second
	// maxCatalogEntries bounds each cache; a full cache starts over.
	maxCatalogEntries = 4096
)

// relInfo describes one relation, from pg_class and its neighbours.
type relInfo struct {
	oid      uint32
	schema   string
	name     string
	kind     byte     // pg_class.relkind: r table, v view, m materialized view, p partitioned, f foreign
	inherits bool     // rows of other tables count too: partitioned, or it has children
	tuples   float64  // pg_class.reltuples; negative when never analyzed
	cols     []string // by attnum-1; "" for a dropped column
	viewDef  string   // views and materialized views: pg_get_viewdef
	unique   [][]int  // attnums of each unique, immediate, non-partial index on plain columns
	gen      uint64
	at       time.Time
}

func (r *relInfo) qualified() string { return r.schema + "." + r.name }

func (r *relInfo) isView() bool { return r.kind == 'v' || r.kind == 'm' }

var catalogs struct {
	mu sync.Mutex
	m  map[catalogKey]*catalog
}

// catalog returns the catalog for this proxy's target, with a reference
// the session gives back with release. A proxy with a test dialer gets a
// catalog of its own.
func (p *Proxy) catalog(searchPath string) *catalog {
	t := p.Target
	key := catalogKey{addr: t.Addr, database: t.Database, user: t.User, password: t.Password, searchPath: searchPath, tls: t.TLS}
	catalogs.mu.Lock()
	defer catalogs.mu.Unlock()
	if p.dial == nil {
		if c := catalogs.m[key]; c != nil {
			c.refs++
			if c.stop != nil {
				c.stop.Stop()
				c.stop = nil
			}
			return c
		}
	}
	c := &catalog{key: key, byOID: map[uint32]*relInfo{}, byName: map[string]nameEntry{},
		idle: make(chan *pgconn.PgConn, maxSideConns), open: make(chan struct{}, maxSideConns), refs: 1}
	params := map[string]string{
		"application_name": "bastion catalog",
		// Bound the server's side too, and never wait long behind a
		// client's lock.
		"statement_timeout": strconv.Itoa(int(sideTimeout / time.Millisecond)),
		"lock_timeout":      "500",
	}
	if searchPath != "" {
		params["search_path"] = searchPath
	}
	switch cfg, err := p.upstreamConfig(params); {
	case p.dial != nil:
		// A test's in-memory upstream answers every query with one row:
		// side connections would only see noise, and count as traffic.
	case err != nil:
		p.logger().Warn("pgproxy: no side connections for the target", "target", t.Name, "err", err)
	default:
		c.cfg = cfg
	}
	if p.dial == nil {
		if catalogs.m == nil {
			catalogs.m = map[catalogKey]*catalog{}
		}
		catalogs.m[key] = c
	}
	return c
}

// release gives back a reference from Proxy.catalog.
func (c *catalog) release() {
	if c == nil {
		return
	}
	catalogs.mu.Lock()
	defer catalogs.mu.Unlock()
	c.refs--
	if c.refs > 0 {
		return
	}
	if catalogs.m[c.key] != c { // a private catalog
		c.closeIdle()
		return
	}
	c.stop = time.AfterFunc(catalogLinger, func() {
		catalogs.mu.Lock()
		defer catalogs.mu.Unlock()
		if c.refs > 0 || catalogs.m[c.key] != c {
			return
		}
		delete(catalogs.m, c.key)
		c.closeIdle()
	})
}

func (c *catalog) closeIdle() {
	for {
		select {
		case pc := <-c.idle:
			closeSide(pc)
			<-c.open
		default:
			return
		}
	}
}

func closeSide(pc *pgconn.PgConn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	pc.Close(ctx)
}

// invalidate forgets what was learned: a session sent a statement that may
// change the schema.
func (c *catalog) invalidate() {
	if c != nil {
		c.gen.Add(1)
	}
}

func (c *catalog) generation() uint64 {
	if c == nil {
		return 0
	}
	return c.gen.Load()
}

var (
	errSideDown = errors.New("the target's side connection failed recently")
	errNoSide   = errors.New("the target has no side connections")
)

// conn returns an idle side connection or opens one (at most maxSideConns),
// waiting for ctx.
func (c *catalog) conn(ctx context.Context) (*pgconn.PgConn, error) {
	if c == nil || c.cfg == nil {
		return nil, errNoSide
	}
	select {
	case pc := <-c.idle:
		return pc, nil
	default:
	}
	select {
	case pc := <-c.idle:
		return pc, nil
	case c.open <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	c.mu.Lock()
	down := time.Now().Before(c.downUntil)
	c.mu.Unlock()
	if down {
		<-c.open
		return nil, errSideDown
	}
	pc, err := pgconn.ConnectConfig(ctx, c.cfg)
	if err != nil {
		<-c.open
		c.mu.Lock()
		c.downUntil = time.Now().Add(sideBackoff)
		c.mu.Unlock()
		return nil, fmt.Errorf("open side connection: %w", err)
	}
	return pc, nil
}

// put returns a side connection after use; a broken one is closed.
func (c *catalog) put(pc *pgconn.PgConn) {
	if pc.IsClosed() || pc.IsBusy() || pc.TxStatus() != 'I' {
		closeSide(pc)
		<-c.open
		return
	}
	select {
	case c.idle <- pc:
	default: // impossible: at most maxSideConns are open
		closeSide(pc)
		<-c.open
	}
}

// query runs one statement with text parameters on a side connection and
// returns its rows in text format.
func (c *catalog) query(ctx context.Context, sql string, params ...string) ([][][]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, sideTimeout)
	defer cancel()
	pc, err := c.conn(ctx)
	if err != nil {
		return nil, err
	}
	defer c.put(pc)
	vals := make([][]byte, len(params))
	for i, p := range params {
		vals[i] = []byte(p)
	}
	res := pc.ExecParams(ctx, sql, vals, nil, nil, nil).Read()
	return res.Rows, res.Err
}

// relQuery describes a relation in one row: see relInfo.
const relQuery = `SELECT c.oid, n.nspname, c.relname, c.relkind, c.relhassubclass OR c.relkind = 'p', c.reltuples::float8,
 (SELECT json_agg(CASE WHEN a.attisdropped THEN '' ELSE a.attname::text END ORDER BY a.attnum)
  FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0),
 CASE WHEN c.relkind IN ('v', 'm') THEN pg_catalog.pg_get_viewdef(c.oid) END,
 (SELECT json_agg(i.indkey::int2[]) FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid
  AND i.indisunique AND i.indimmediate AND i.indpred IS NULL AND i.indexprs IS NULL)
 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = `

// relationByOID describes the relation with this OID; nil, nil when it
// does not exist (for the side connection: it may be uncommitted).
func (c *catalog) relationByOID(ctx context.Context, oid uint32) (*relInfo, error) {
	if c == nil || c.cfg == nil {
		return nil, errNoSide
	}
	gen := c.gen.Load()
	c.mu.Lock()
	r, ok := c.byOID[oid]
	c.mu.Unlock()
	if ok && r.fresh(gen) {
		return r, nil
	}
	rows, err := c.query(ctx, relQuery+"$1::pg_catalog.oid", strconv.FormatUint(uint64(oid), 10))
	if err != nil {
		return nil, err
	}
	r, err = decodeRel(rows)
	if err != nil || r == nil {
		return nil, err
	}
	c.store(r, gen, "")
	return r, nil
}

// relationByName describes the relation a FROM clause names (schema empty:
// through the search path); nil, nil when there is none.
func (c *catalog) relationByName(ctx context.Context, schema, name string) (*relInfo, error) {
	if c == nil || c.cfg == nil {
		return nil, errNoSide
	}
	q := quoteIdent(name)
	if schema != "" {
		q = quoteIdent(schema) + "." + q
	}
	gen := c.gen.Load()
	c.mu.Lock()
	e, ok := c.byName[q]
	c.mu.Unlock()
	if ok && e.gen == gen && time.Since(e.at) < e.ttl() {
		return e.rel, nil
	}
	rows, err := c.query(ctx, relQuery+"pg_catalog.to_regclass($1)", q)
	if err != nil {
		return nil, err
	}
	r, err := decodeRel(rows)
	if err != nil {
		return nil, err
	}
	c.store(r, gen, q)
	return r, nil
}

// nameEntry is what a name resolved to; rel nil: no such relation.
type nameEntry struct {
	rel *relInfo
	gen uint64
	at  time.Time
}

func (e nameEntry) ttl() time.Duration {
	if e.rel == nil {
		return missTTL
	}
	return relTTL
}

func (r *relInfo) fresh(gen uint64) bool { return r.gen == gen && time.Since(r.at) < relTTL }

func (c *catalog) store(r *relInfo, gen uint64, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.byOID) >= maxCatalogEntries {
		c.byOID = map[uint32]*relInfo{}
	}
	if len(c.byName) >= maxCatalogEntries {
		c.byName = map[string]nameEntry{}
	}
	if r != nil {
		r.gen, r.at = gen, time.Now()
		c.byOID[r.oid] = r
	}
	if name != "" {
		c.byName[name] = nameEntry{rel: r, gen: gen, at: time.Now()}
	}
}

// decodeRel reads relQuery's row; no row is no relation.
func decodeRel(rows [][][]byte) (*relInfo, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	row := rows[0]
	if len(row) != 9 {
		return nil, fmt.Errorf("relation query returned %d columns", len(row))
	}
	oid, err := strconv.ParseUint(string(row[0]), 10, 32)
	if err != nil {
		return nil, fmt.Errorf("relation oid: %w", err)
	}
	r := &relInfo{oid: uint32(oid), schema: string(row[1]), name: string(row[2]), inherits: string(row[4]) == "t"}
	if len(row[3]) != 1 {
		return nil, errors.New("relation kind is not one byte")
	}
	r.kind = row[3][0]
	if r.tuples, err = strconv.ParseFloat(string(row[5]), 64); err != nil {
		return nil, fmt.Errorf("relation tuples: %w", err)
	}
	if row[6] != nil {
		if err := json.Unmarshal(row[6], &r.cols); err != nil {
			return nil, fmt.Errorf("relation columns: %w", err)
		}
	}
	r.viewDef = string(row[7])
	if row[8] != nil {
		if err := json.Unmarshal(row[8], &r.unique); err != nil {
			return nil, fmt.Errorf("relation indexes: %w", err)
		}
	}
	return r, nil
}

// funcsQuery names the functions outside pg_catalog and
// information_schema: what they return is not known from their arguments.
const funcsQuery = `SELECT DISTINCT p.proname FROM pg_catalog.pg_proc p
 WHERE p.pronamespace <> 'pg_catalog'::pg_catalog.regnamespace AND p.pronamespace <> 'information_schema'::pg_catalog.regnamespace`

// userFunctions returns the names of functions defined outside the
// system schemas.
func (c *catalog) userFunctions(ctx context.Context) (map[string]bool, error) {
	if c == nil || c.cfg == nil {
		return nil, errNoSide
	}
	gen := c.gen.Load()
	c.mu.Lock()
	if c.funcs != nil && c.funcsGen == gen && time.Since(c.funcsAt) < relTTL {
		f := c.funcs
		c.mu.Unlock()
		return f, nil
	}
	c.mu.Unlock()
	rows, err := c.query(ctx, funcsQuery)
	if err != nil {
		return nil, err
	}
	f := make(map[string]bool, len(rows))
	for _, row := range rows {
		if len(row) == 1 {
			f[string(row[0])] = true
		}
	}
	c.mu.Lock()
	c.funcs, c.funcsGen, c.funcsAt = f, gen, time.Now()
	c.mu.Unlock()
	return f, nil
}

// quoteIdent quotes a name as PostgreSQL reads it back unchanged.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
