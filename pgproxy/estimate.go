package pgproxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/bastion-dev/bastion/policy"
)

// A planner estimate backs the static judgement of an UPDATE or DELETE
// with a WHERE: a condition can restrict on paper and still reach every
// row (WHERE id > 0). Where the target can be asked, a statement the
// classifier allows is explained (EXPLAIN (FORMAT JSON), never ANALYZE:
// nothing runs) on a side connection, with the client's parameter values
// in the extended protocol, and becomes approve when the planner expects
// it to change more than Proxy.MaxRows rows or more than half of its
// table (pg_class.reltuples). The approval goes through Hooks.Approve like
// any approve.
//
// Where the estimate cannot be had (the side connection fails or takes
// longer than sideTimeout, the table was created in the client's open
// transaction, the statement names what the side connection cannot see),
// the static verdict stands and the log says so: the estimate only ever
// adds an approval. One exception fails closed: after the session changed
// search_path, an unqualified name could mean another table on the side
// connection than on the client's, so the statement needs approval.
//
// A statement that provably changes at most one row (every column of a
// unique index compared for equality with a constant or parameter, on a
// table without children) is not explained: that keeps pgbench's updates
// by key off the side connection once the table is known.

// DefaultMaxRows is the estimate limit when Proxy.MaxRows is zero.
const DefaultMaxRows = 1000

const ruleEstimate = "sql-estimate"

// estPlan is what to explain for one statement text; nil when nothing in
// it updates or deletes with a WHERE.
type estPlan struct {
	stmts []estStmt
}

type estStmt struct {
	explain string      // the statement to explain
	targets []estTarget // its UPDATE and DELETE targets with a WHERE
	// keyed: the statement is one UPDATE or DELETE, its WHERE a
	// conjunction with these columns equal to constants or parameters.
	keyed  bool
	eqCols []string
}

type estTarget struct {
	schema, name string
	inh          bool // without ONLY: rows of child tables too
}

// planEstimate finds the statements of sql (parsed: tree) to explain.
func planEstimate(sql string, tree *pg_query.ParseResult) (*estPlan, error) {
	var err error
	var plan estPlan
	for _, raw := range tree.Stmts {
		var st estStmt
		walkTree(raw.Stmt.ProtoReflect(), func(m protoreflect.Message) bool {
			switch v := m.Interface().(type) {
			case *pg_query.UpdateStmt:
				if v.WhereClause != nil && v.Relation != nil {
					st.targets = append(st.targets, estTarget{v.Relation.Schemaname, v.Relation.Relname, v.Relation.Inh})
				}
			case *pg_query.DeleteStmt:
				if v.WhereClause != nil && v.Relation != nil {
					st.targets = append(st.targets, estTarget{v.Relation.Schemaname, v.Relation.Relname, v.Relation.Inh})
				}
			}
			return true
		})
		if len(st.targets) == 0 {
			continue
		}
		n := raw.Stmt
		switch {
		case n.GetSelectStmt() != nil, n.GetInsertStmt() != nil, n.GetUpdateStmt() != nil,
			n.GetDeleteStmt() != nil, n.GetMergeStmt() != nil:
			st.explain = stmtText(sql, raw)
		case n.GetExplainStmt() != nil:
			// Only EXPLAIN ANALYZE runs its statement.
			if !explainAnalyze(n.GetExplainStmt()) {
				continue
			}
			st.explain, err = deparse(tree.Version, n.GetExplainStmt().Query)
		case n.GetCopyStmt() != nil && n.GetCopyStmt().Query != nil:
			st.explain, err = deparse(tree.Version, n.GetCopyStmt().Query)
		default:
			// PREPARE, CREATE RULE and the like run nothing now.
			continue
		}
		if err != nil {
			return nil, err
		}
		if len(st.targets) == 1 {
			st.keyed, st.eqCols = keyedWhere(n)
		}
		plan.stmts = append(plan.stmts, st)
	}
	if len(plan.stmts) == 0 {
		return nil, nil
	}
	return &plan, nil
}

func stmtText(sql string, raw *pg_query.RawStmt) string {
	start := int(raw.StmtLocation)
	end := len(sql)
	if raw.StmtLen > 0 && start+int(raw.StmtLen) <= len(sql) {
		end = start + int(raw.StmtLen)
	}
	if start < 0 || start > end {
		return sql
	}
	return sql[start:end]
}

func deparse(version int32, n *pg_query.Node) (string, error) {
	return pg_query.Deparse(&pg_query.ParseResult{Version: version, Stmts: []*pg_query.RawStmt{{Stmt: n}}})
}

func explainAnalyze(e *pg_query.ExplainStmt) bool {
	for _, o := range e.Options {
		d := o.GetDefElem()
		if d == nil || d.Defname != "analyze" {
			continue
		}
		if d.Arg == nil {
			return true
		}
		if b := d.Arg.GetBoolean(); b != nil {
			return b.Boolval
		}
		if s := d.Arg.GetString_(); s != nil {
			b, ok := parseBoolSetting(s.Sval)
			return !ok || b // an unknown spelling fails closed
		}
		return true
	}
	return false
}

// parseBoolSetting reads a boolean option as PostgreSQL does (parse_bool).
func parseBoolSetting(v string) (val, ok bool) {
	switch strings.ToLower(v) {
	case "t", "tr", "tru", "true", "y", "ye", "yes", "on", "1":
		return true, true
	case "f", "fa", "fal", "fals", "false", "n", "no", "of", "off", "0":
		return false, true
	}
	return false, false
}

// keyedWhere returns the columns a top-level UPDATE or DELETE compares for
// equality with a constant or parameter in a WHERE of ANDed conditions.
func keyedWhere(n *pg_query.Node) (bool, []string) {
	var where *pg_query.Node
	var alias string
	var rel *pg_query.RangeVar
	switch {
	case n.GetUpdateStmt() != nil && n.GetUpdateStmt().WithClause == nil:
		u := n.GetUpdateStmt()
		where, rel = u.WhereClause, u.Relation
	case n.GetDeleteStmt() != nil && n.GetDeleteStmt().WithClause == nil:
		d := n.GetDeleteStmt()
		where, rel = d.WhereClause, d.Relation
	default:
		return false, nil
	}
	alias = rel.Relname
	if rel.Alias != nil {
		alias = rel.Alias.Aliasname
	}
	conj := []*pg_query.Node{where}
	if b := where.GetBoolExpr(); b != nil && b.Boolop == pg_query.BoolExprType_AND_EXPR {
		conj = b.Args
	}
	var cols []string
	for _, c := range conj {
		x := c.GetAExpr()
		if x == nil || x.Kind != pg_query.A_Expr_Kind_AEXPR_OP || len(x.Name) != 1 || x.Name[0].GetString_().GetSval() != "=" {
			continue
		}
		for _, side := range [][2]*pg_query.Node{{x.Lexpr, x.Rexpr}, {x.Rexpr, x.Lexpr}} {
			if name, ok := targetColumn(side[0], alias); ok && constOrParam(side[1]) {
				cols = append(cols, name)
			}
		}
	}
	return len(cols) > 0, cols
}

// targetColumn returns the column of the statement's target a reference
// names: unqualified, or qualified by the target's name or alias.
func targetColumn(n *pg_query.Node, alias string) (string, bool) {
	cr := n.GetColumnRef()
	if cr == nil || isStar(cr) {
		return "", false
	}
	switch len(cr.Fields) {
	case 1:
		return cr.Fields[0].GetString_().GetSval(), true
	case 2:
		if cr.Fields[0].GetString_().GetSval() == alias {
			return cr.Fields[1].GetString_().GetSval(), true
		}
	}
	return "", false
}

func constOrParam(n *pg_query.Node) bool {
	switch {
	case n == nil:
		return false
	case n.GetAConst() != nil:
		return !n.GetAConst().Isnull
	case n.GetParamRef() != nil:
		return true
	case n.GetTypeCast() != nil:
		return constOrParam(n.GetTypeCast().Arg)
	}
	return false
}

// params are an extended-protocol statement's parameters, as bound.
type params struct {
	values  [][]byte
	formats []int16
	oids    []uint32
}

// estimate explains plan's statements and returns an approve verdict when
// one is expected to change too many rows; ok false keeps the static
// verdict. Client loop.
// pathChanged: the text itself changes search_path.
func (s *session) estimate(plan *estPlan, ps *params, pathChanged bool) (policy.Result, bool) {
	limit := s.p.MaxRows
	if limit == 0 {
		limit = DefaultMaxRows
	}
	for i := range plan.stmts {
		st := &plan.stmts[i]
		if pathChanged || s.pathChanged.Load() {
			for _, t := range st.targets {
				if t.schema == "" {
					return policy.Result{Decision: policy.Approve, Rule: ruleEstimate,
						Reason: "the session changed search_path, so bastion cannot estimate the rows " + quoteIdent(t.name) + " means: an operator must approve",
						Hint:   "Qualify the table with its schema, or wait for an operator to approve."}, true
				}
			}
		}
		if s.singleRow(st) {
			continue
		}
		mods, err := s.explain(st.explain, ps)
		if err != nil {
			s.log.Info("pgproxy: no planner estimate; the static verdict stands", "stmt", truncateText(s.masker.String(st.explain), 200), "err", err)
			continue
		}
		for _, m := range mods {
			if m.rows > float64(limit) {
				return policy.Result{Decision: policy.Approve, Rule: ruleEstimate,
					Reason: fmt.Sprintf("planner estimates %.0f rows (limit %d): an operator must approve", m.rows, limit),
					Hint:   "Narrow the WHERE clause, or wait for an operator to approve."}, true
			}
			rel := s.estimateTable(st, m.relation)
			// An estimate of one row is a change by key: never half a
			// table, even of a one-row table.
			if rel != nil && !rel.inherits && rel.tuples > 0 && m.rows > 1 && m.rows > rel.tuples/2 {
				return policy.Result{Decision: policy.Approve, Rule: ruleEstimate,
					Reason: fmt.Sprintf("planner estimates %.0f rows, more than half of the %.0f rows of %s: an operator must approve", m.rows, rel.tuples, rel.name),
					Hint:   "Narrow the WHERE clause, or wait for an operator to approve."}, true
			}
		}
	}
	return policy.Result{}, false
}

// singleRow reports whether a statement changes at most one row: its WHERE
// pins every column of a unique index of a table without children.
func (s *session) singleRow(st *estStmt) bool {
	if !st.keyed || len(st.targets) != 1 {
		return false
	}
	t := st.targets[0]
	rel, err := s.cat.relationByName(s.ctx, t.schema, t.name)
	if err != nil || rel == nil || (t.inh && rel.inherits) || rel.kind != 'r' {
		return false
	}
	eq := map[string]bool{}
	for _, c := range st.eqCols {
		eq[c] = true
	}
	for _, idx := range rel.unique {
		covered := len(idx) > 0
		for _, attnum := range idx {
			if attnum < 1 || attnum > len(rel.cols) || !eq[rel.cols[attnum-1]] {
				covered = false
				break
			}
		}
		if covered {
			return true
		}
	}
	return false
}

// estimateTable finds the target relation the plan's ModifyTable names.
func (s *session) estimateTable(st *estStmt, name string) *relInfo {
	for _, t := range st.targets {
		if t.name != name {
			continue
		}
		rel, err := s.cat.relationByName(s.ctx, t.schema, t.name)
		if err == nil && rel != nil {
			return rel
		}
	}
	return nil
}

// modify is one ModifyTable node of a plan.
type modify struct {
	relation string
	rows     float64
}

// explain asks the planner on a side connection.
func (s *session) explain(stmt string, ps *params) ([]modify, error) {
	var vals [][]byte
	var formats []int16
	var oids []uint32
	if ps != nil {
		vals, formats, oids = ps.values, ps.formats, ps.oids
	}
	ctx, cancel := context.WithTimeout(s.ctx, sideTimeout)
	defer cancel()
	pc, err := s.cat.conn(ctx)
	if err != nil {
		return nil, err
	}
	defer s.cat.put(pc)
	res := pc.ExecParams(ctx, "EXPLAIN (FORMAT JSON) "+stmt, vals, oids, formats, []int16{0}).Read()
	if res.Err != nil {
		return nil, res.Err
	}
	if len(res.Rows) != 1 || len(res.Rows[0]) != 1 {
		return nil, errors.New("EXPLAIN returned no plan")
	}
	return modifyNodes(res.Rows[0][0])
}

// planNode is the part of EXPLAIN's JSON the estimate reads.
type planNode struct {
	NodeType  string     `json:"Node Type"`
	Operation string     `json:"Operation"`
	Relation  string     `json:"Relation Name"`
	Rows      float64    `json:"Plan Rows"`
	Plans     []planNode `json:"Plans"`
}

// modifyNodes returns the UPDATE and DELETE nodes of an EXPLAIN (FORMAT
// JSON) output with the rows each is expected to change: ModifyTable's
// own row count is zero without RETURNING, so the larger of it and its
// input's.
func modifyNodes(js []byte) ([]modify, error) {
	var out []struct {
		Plan planNode `json:"Plan"`
	}
	if err := json.Unmarshal(js, &out); err != nil {
		return nil, fmt.Errorf("read plan: %w", err)
	}
	if len(out) == 0 {
		return nil, errors.New("read plan: empty")
	}
	var mods []modify
	var walk func(n *planNode)
	walk = func(n *planNode) {
		if n.NodeType == "ModifyTable" && (n.Operation == "Update" || n.Operation == "Delete") {
			rows := n.Rows
			if len(n.Plans) > 0 && n.Plans[0].Rows > rows {
				rows = n.Plans[0].Rows
			}
			mods = append(mods, modify{relation: n.Relation, rows: rows})
		}
		for i := range n.Plans {
			walk(&n.Plans[i])
		}
	}
	for i := range out {
		walk(&out[i].Plan)
	}
	return mods, nil
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// estimating reports whether the proxy asks for planner estimates.
func (p *Proxy) estimating() bool { return p.MaxRows >= 0 }
