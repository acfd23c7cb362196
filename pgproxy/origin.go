package pgproxy

import (
	"path"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"
	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// Column masking follows each result column to where its values come
// from, not to the name the client sees: RowDescription gives a column's
// table OID and attribute number when it is a plain column of a table or
// view (also through subqueries and CTEs), and the catalog (a side
// connection, see catalog) turns those into the relation and column names
// the rules match. A view's columns are judged by the view's definition.
// Columns without an origin (expressions) are judged by the statement's
// parse tree (see taint.go). The name the client sees is matched too.
//
// All this runs in the relay loop, before the RowDescription is relayed,
// and is cached: per session by (table OID, attribute number) and by
// statement text, per target in the catalog.

// stmtRef names the statement a RowDescription describes.
type stmtRef struct {
	text  string // the Query string, or the prepared statement's text
	index int    // which statement of a Query string
	ok    bool   // the relay knows which statement it is
}

// originKey is a result column's origin.
type originKey struct {
	oid    uint32
	attnum uint16
}

// Session caches of what was resolved; relay loop only. They start over
// when the catalog's generation moves on.
type originCaches struct {
	gen     uint64
	origins map[originKey]bool // origin: a masked value
	rels    map[uint32][]col   // relation OID: its columns, judged
	stmts   map[string][][]col // statement text: each statement's result columns
	depth   int                // views being judged inside views
	rules   map[string]bool    // "rel\x00col": a rule matches
	funcs   map[string]bool    // user function names
	funcErr bool               // the function list could not be fetched
	repls   map[string][]byte  // column name: its replacement
	taint   []bool             // statementTaint's result, reused
}

const (
	maxOriginEntries = 4096
	maxStmtEntries   = 256
	maxNamedTexts    = 32
	maxViewDepth     = 8
)

func (s *session) resetOrigins() {
	gen := s.cat.generation()
	if s.oc.origins != nil && s.oc.gen == gen {
		return
	}
	s.oc.gen = gen
	s.oc.origins = map[originKey]bool{}
	s.oc.rels = map[uint32][]col{}
	s.oc.stmts = map[string][][]col{}
	s.oc.rules = map[string]bool{}
	s.oc.funcs, s.oc.funcErr = nil, false
}

// describeColumns decides how each column of a RowDescription is masked,
// appending to cols. Relay loop, without mu: it may wait for the catalog.
func (s *session) describeColumns(m *pgproto3.RowDescription, ref stmtRef, cols []column) []column {
	s.resetOrigins()
	var needBuf [16]int
	need := needBuf[:0] // columns the statement's parse tree must decide
	for i := range m.Fields {
		f := &m.Fields[i]
		cols = append(cols, column{})
		c := &cols[len(cols)-1]
		c.text = f.Format == pgproto3.TextFormat || textualOIDs[f.DataTypeOID]
		c.oid = f.DataTypeOID
		c.walk = !c.text && (containerOIDs[c.oid] || c.oid >= firstUserOID)
		if s.columnRule(f.Name) {
			c.rule = true
			continue
		}
		if f.TableOID != 0 {
			if masked, ok := s.originMasked(f.TableOID, f.TableAttributeNumber); ok {
				c.rule = masked
				continue
			}
		}
		need = append(need, i)
	}
	if len(need) > 0 {
		taint := s.statementTaint(ref, len(m.Fields))
		for _, i := range need {
			cols[i].rule = taint[i]
		}
	}
	for i := range cols {
		if cols[i].rule {
			cols[i].repl = s.replacement(m.Fields[i].Name)
		}
	}
	return cols
}

// replacement is "[MASKED:<name>]", remembered per session.
func (s *session) replacement(name []byte) []byte {
	if r, ok := s.oc.repls[string(name)]; ok {
		return r
	}
	r := []byte("[MASKED:" + string(name) + "]")
	if s.oc.repls == nil || len(s.oc.repls) >= maxOriginEntries {
		s.oc.repls = map[string][]byte{}
	}
	s.oc.repls[string(name)] = r
	return r
}

// originMasked reports whether a column with this origin is masked; ok
// false when the origin could not be resolved.
func (s *session) originMasked(oid uint32, attnum uint16) (masked, ok bool) {
	key := originKey{oid, attnum}
	if m, hit := s.oc.origins[key]; hit {
		return m, true
	}
	rel, err := s.cat.relationByOID(s.ctx, oid)
	if err != nil {
		s.log.Info("pgproxy: column origin unknown; judged by the statement", "oid", oid, "err", err)
		return false, false
	}
	if rel == nil {
		// The side connection cannot see it: created in the client's
		// open transaction, where it may be a view over a masked column.
		// Masked until it commits (not cached).
		return true, true
	}
	cols, cache := s.relationColumns(rel)
	n := int16(attnum)
	switch {
	case n < 0: // a system column
		masked = false
	case n == 0: // the whole row
		masked = anyTaint(cols)
	case int(n) <= len(cols):
		masked = cols[n-1].taint
	default: // a column newer than what the catalog said
		return false, false
	}
	if !cache {
		return masked, true
	}
	if len(s.oc.origins) >= maxOriginEntries {
		s.oc.origins = map[originKey]bool{}
	}
	s.oc.origins[key] = masked
	return masked, true
}

// relationColumns judges each column of a relation: by the rules on its
// name, and for a view also by its definition. While the client's open
// transaction has changed the schema, the side connection may know an
// older definition of a view: every column of a view is masked then, and
// cache is false.
func (s *session) relationColumns(rel *relInfo) (cols []col, cache bool) {
	if cols, ok := s.oc.rels[rel.oid]; ok {
		return cols, true
	}
	if rel.isView() && s.schemaDirty.Load() {
		cols = make([]col, len(rel.cols))
		for i, name := range rel.cols {
			cols[i] = col{name: name, taint: true}
		}
		return cols, false
	}
	q := rel.qualified()
	cols = make([]col, len(rel.cols))
	for i, name := range rel.cols {
		cols[i] = col{name: name, taint: name != "" && s.ruleFor(q, name)}
	}
	if rel.isView() {
		var def []col
		if s.oc.depth < maxViewDepth {
			s.oc.depth++
			def = s.queryColumns(rel.viewDef)
			s.oc.depth--
		}
		if len(def) == len(cols) && !hasStar(def) {
			for i := range cols {
				cols[i].taint = cols[i].taint || def[i].taint
			}
		} else if def == nil || anyTaint(def) {
			// A definition not understood taints every column.
			for i := range cols {
				cols[i].taint = true
			}
		}
	}
	if len(s.oc.rels) >= maxOriginEntries {
		s.oc.rels = map[uint32][]col{}
	}
	s.oc.rels[rel.oid] = cols
	return cols, true
}

// queryColumns analyzes one query's text (a view definition); nil when it
// does not parse.
func (s *session) queryColumns(sql string) []col {
	tree, err := pg_query.Parse(sql)
	if err != nil || len(tree.Stmts) != 1 {
		return nil
	}
	a := &analyzer{r: s}
	return a.statementColumns(tree.Stmts[0].Stmt, nil)
}

// statementTaint maps the statement's result columns, from its parse tree,
// onto n fields: true for each that can carry a masked value.
func (s *session) statementTaint(ref stmtRef, n int) []bool {
	if cap(s.oc.taint) < n {
		s.oc.taint = make([]bool, n)
	}
	out := s.oc.taint[:n]
	clear(out)
	var cols []col
	if ref.ok {
		all, hit := s.oc.stmts[ref.text]
		if !hit {
			all = s.analyzeText(ref.text)
			if len(s.oc.stmts) >= maxStmtEntries {
				s.oc.stmts = map[string][][]col{}
			}
			s.oc.stmts[ref.text] = all
		}
		if ref.index < len(all) {
			cols = all[ref.index]
		} else {
			cols = []col{{star: true, taint: true}}
		}
	} else {
		cols = []col{{star: true, taint: true}}
	}
	mapColumns(cols, out)
	return out
}

// analyzeText analyzes every statement of a text; a text that does not
// parse has every column tainted.
func (s *session) analyzeText(sql string) [][]col {
	tree, err := pg_query.Parse(sql)
	if err != nil {
		return nil
	}
	out := make([][]col, len(tree.Stmts))
	for i, raw := range tree.Stmts {
		a := &analyzer{r: s}
		out[i] = a.statementColumns(raw.Stmt, nil)
	}
	return out
}

// mapColumns spreads analyzed columns over the fields: one to one without
// stars; with stars, the columns before the first and after the last map
// from either end and the fields between get any taint of what lies
// between. A count that cannot fit taints every field if anything is
// tainted.
func mapColumns(cols []col, out []bool) {
	n := len(out)
	head := 0
	for head < len(cols) && !cols[head].star {
		head++
	}
	if head == len(cols) { // no star
		if len(cols) == n {
			for i := range cols {
				out[i] = cols[i].taint
			}
			return
		}
		fill(out, anyTaint(cols))
		return
	}
	tail := 0
	for tail < len(cols)-head && !cols[len(cols)-1-tail].star {
		tail++
	}
	if head+tail > n {
		fill(out, anyTaint(cols))
		return
	}
	for i := 0; i < head; i++ {
		out[i] = cols[i].taint
	}
	for i := 0; i < tail; i++ {
		out[n-1-i] = cols[len(cols)-1-i].taint
	}
	mid := anyTaint(cols[head : len(cols)-tail])
	for i := head; i < n-tail; i++ {
		out[i] = mid
	}
}

func fill(out []bool, v bool) {
	for i := range out {
		out[i] = v
	}
}

// The session is the analysis' resolver.

func (s *session) relation(schema, name string) ([]col, string, bool) {
	if schema == "" && (s.pathChanged.Load() || s.tempSeen.Load()) {
		// The side connection would resolve the name through another
		// search path, or miss the session's temporary tables.
		return nil, "", false
	}
	rel, err := s.cat.relationByName(s.ctx, schema, name)
	if err != nil || rel == nil {
		if err != nil {
			s.log.Info("pgproxy: relation unknown; judged by name", "relation", name, "err", err)
		}
		return nil, "", false
	}
	cols, _ := s.relationColumns(rel)
	return cols, rel.qualified(), true
}

func (s *session) userFunc(schema, name string) bool {
	switch schema {
	case "pg_catalog", "information_schema":
		return false
	case "":
	default:
		return true
	}
	if s.oc.funcs == nil && !s.oc.funcErr {
		f, err := s.cat.userFunctions(s.ctx)
		if err != nil {
			// Functions are then judged by their arguments alone: a
			// builtin cannot be told from a user's without the list.
			s.log.Info("pgproxy: function list unknown; functions are judged by their arguments", "err", err)
			s.oc.funcErr = true
		}
		s.oc.funcs = f
	}
	return s.oc.funcs[name]
}

func (s *session) rule(rel, col string) bool { return s.ruleFor(rel, col) }

// ruleFor matches the column rules against a column: a rule without a
// dot against the column's name, a rule with one against
// "table.column" and "schema.table.column".
func (s *session) ruleFor(rel, col string) bool {
	key := rel + "\x00" + col
	if r, ok := s.oc.rules[key]; ok {
		return r
	}
	r := matchColumn(s.rules, rel, col)
	if len(s.oc.rules) >= maxOriginEntries {
		s.oc.rules = map[string]bool{}
	}
	s.oc.rules[key] = r
	return r
}

func matchColumn(rules []string, rel, col string) bool {
	col = strings.ToLower(col)
	rel = strings.ToLower(rel)
	var short string
	if rel != "" {
		short = rel[strings.LastIndexByte(rel, '.')+1:]
	}
	for _, r := range rules {
		if !strings.Contains(r, ".") {
			if ok, _ := path.Match(r, col); ok {
				return true
			}
			continue
		}
		if rel == "" {
			// The table is unknown: a rule naming one may still match.
			if ok, _ := path.Match(r[strings.LastIndexByte(r, '.')+1:], col); ok {
				return true
			}
			continue
		}
		for _, name := range []string{short + "." + col, rel + "." + col} {
			if ok, _ := path.Match(r, name); ok {
				return true
			}
		}
	}
	return false
}

// named finds the query of a cursor or SQL prepared statement among the
// session's texts that declare or prepare one.
func (s *session) named(cursor bool, name string) *pg_query.Node {
	s.mu.Lock()
	texts := append([]string(nil), s.namedTexts...)
	s.mu.Unlock()
	for i := len(texts) - 1; i >= 0; i-- {
		tree, err := pg_query.Parse(texts[i])
		if err != nil {
			continue
		}
		for j := len(tree.Stmts) - 1; j >= 0; j-- {
			n := tree.Stmts[j].Stmt
			if d := n.GetDeclareCursorStmt(); cursor && d != nil && d.Portalname == name {
				return d.Query
			}
			if p := n.GetPrepareStmt(); !cursor && p != nil && p.Name == name {
				return p.Query
			}
		}
	}
	return nil
}

// noteNamed remembers a text that may declare a cursor or prepare a
// statement. Client loop.
func (s *session) noteNamed(sql string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.namedTexts); n > 0 && s.namedTexts[n-1] == sql {
		return
	}
	if len(s.namedTexts) >= maxNamedTexts {
		s.namedTexts = append(s.namedTexts[:0], s.namedTexts[1:]...)
	}
	s.namedTexts = append(s.namedTexts, sql)
}
