package sqlpolicy

// A row that finds itself. DELETE FROM t WHERE id IN (SELECT id FROM t)
// deletes every row of t: whatever row r is, r is in t, so r.id is among
// the ids the subquery returns. The same holds for
//
//	WHERE EXISTS (SELECT 1 FROM t t2 WHERE t2.id = t.id)
//	USING t t2 WHERE t.id = t2.id           (DELETE; UPDATE ... FROM; MERGE ... USING)
//
// The proof is a witness: a condition that asks for some row s of the
// target's own table holds for r when it holds with s = r. So the subquery's
// (or joined table's) columns are rewritten as the target row's own, and if
// the condition is then true for every row (t.id = t.id), so is the
// original. Where it is not (t.id < t.id in the classic de-duplication
// DELETE ... USING t t2 WHERE t.id < t2.id AND t.email = t2.email), nothing
// is proved and the condition is judged as written.
//
// The subquery or joined item must read the whole table: one FROM item,
// the table itself (not ONLY a parent of it, no TABLESAMPLE), or a derived
// table or CTE that passes its rows through (SELECT id FROM t, SELECT *
// FROM t WHERE true), with no LIMIT, OFFSET, HAVING or DISTINCT ON and a
// WHERE that does not restrict.

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// maxWitnessDepth bounds the subqueries followed for one condition.
const maxWitnessDepth = 8

// selfItem is a FROM item that reads the target's own table, row for row.
type selfItem struct {
	alias string            // what its columns are qualified with
	cols  map[string]string // output name -> the table's column ("" for an expression)
	all   bool              // names not in cols are the table's columns of that name
}

func (s selfItem) column(name string) (string, bool) {
	if c, ok := s.cols[name]; ok {
		return c, c != ""
	}
	return name, s.all
}

// sameRelation: b (a FROM item) reads every row of a (the target). An
// unqualified name and a qualified one are taken to be the same table.
func sameRelation(target, item *pg_query.RangeVar) bool {
	return target.Relname == item.Relname &&
		(target.Schemaname == item.Schemaname || target.Schemaname == "" || item.Schemaname == "") &&
		(item.Inh || !target.Inh)
}

// cte is the query of the statement's CTE of that name.
func (t target) cte(name string) (*pg_query.SelectStmt, bool) {
	for _, n := range t.ctes {
		c := n.GetCommonTableExpr()
		if c == nil || c.Ctename != name {
			continue
		}
		if len(c.Aliascolnames) > 0 {
			return nil, true
		}
		return c.Ctequery.GetSelectStmt(), true
	}
	return nil, false
}

func (t target) deeper() (target, bool) {
	t.depth++
	if t.depth > maxWitnessDepth {
		t.giveUp() // not proved is not restricting: an attacker could nest one deeper
	}
	return t, t.rel != nil && !t.exhausted()
}

// selfItem reports whether a FROM item reads the target's own table.
func (t target) selfItem(n *pg_query.Node) (selfItem, bool) {
	t, ok := t.deeper()
	if !ok {
		return selfItem{}, false
	}
	switch v := n.GetNode().(type) {
	case *pg_query.Node_RangeVar:
		rv := v.RangeVar
		alias := rv.Relname
		if rv.Alias != nil {
			if len(rv.Alias.Colnames) > 0 {
				return selfItem{}, false
			}
			alias = rv.Alias.Aliasname
		}
		if rv.Schemaname == "" {
			if q, isCTE := t.cte(rv.Relname); isCTE { // a CTE hides a table of its name
				if q == nil {
					return selfItem{}, false
				}
				s, ok := t.selfQuery(q)
				s.alias = alias
				return s, ok
			}
		}
		if !sameRelation(t.rel, rv) {
			return selfItem{}, false
		}
		return selfItem{alias: alias, all: true}, true
	case *pg_query.Node_RangeSubselect:
		rs := v.RangeSubselect
		q := rs.Subquery.GetSelectStmt()
		if rs.Lateral || rs.Alias == nil || len(rs.Alias.Colnames) > 0 || q == nil {
			return selfItem{}, false
		}
		s, ok := t.selfQuery(q)
		s.alias = rs.Alias.Aliasname
		return s, ok
	}
	return selfItem{}, false
}

// plainDistinct: no DISTINCT, or DISTINCT without ON (which keeps every
// distinct row).
func plainDistinct(d []*pg_query.Node) bool {
	return len(d) == 0 || len(d) == 1 && d[0].GetNode() == nil
}

// selfQuery reports whether a derived table's rows include every row of the
// target's table, and which of its columns are that table's columns.
func (t target) selfQuery(s *pg_query.SelectStmt) (selfItem, bool) {
	if s.Op != pg_query.SetOperation_SETOP_NONE || s.WithClause != nil || len(s.FromClause) != 1 ||
		s.LimitCount != nil || s.LimitOffset != nil || s.HavingClause != nil || len(s.ValuesLists) > 0 ||
		s.IntoClause != nil || !plainDistinct(s.DistinctClause) {
		return selfItem{}, false
	}
	inner, ok := t.selfItem(s.FromClause[0])
	if !ok {
		return selfItem{}, false
	}
	if s.WhereClause != nil {
		if v := eval(t.rewrite(s.WhereClause, inner, true), t, false); v != tTrue && v != tIndep {
			return selfItem{}, false
		}
	}
	out := selfItem{cols: map[string]string{}}
	for _, n := range s.TargetList {
		rt := n.GetResTarget()
		if rt == nil {
			continue
		}
		cr := rt.Val.GetColumnRef()
		var f []*pg_query.Node
		if cr != nil {
			f = cr.Fields
		}
		if len(f) > 0 && f[len(f)-1].GetAStar() != nil {
			if len(f) == 1 || len(f) == 2 && f[0].GetString_().GetSval() == inner.alias {
				out.all = out.all || inner.all
				for k, v := range inner.cols {
					if _, set := out.cols[k]; !set {
						out.cols[k] = v
					}
				}
			}
			continue
		}
		name := rt.Name
		col, tc, ok := "", "", false
		if len(f) == 1 || len(f) == 2 && f[0].GetString_().GetSval() == inner.alias {
			col = f[len(f)-1].GetString_().GetSval()
			tc, ok = inner.column(col)
		}
		if name == "" {
			name = col
		}
		if name == "" {
			continue // an expression without a name: nothing can refer to it
		}
		if !ok {
			tc = ""
		}
		out.cols[name] = tc
	}
	return out, true
}

// rewrite returns a copy of e in which the columns of s are written as the
// target row's own: s.col (and, where own is set, an unqualified col at
// e's own level, which is how a subquery names its FROM item's columns)
// becomes t.col. A column of s that is not a column of the table (an
// expression of a derived table) becomes a column of t that no other
// expression names, so that it still depends on the row.
func (t target) rewrite(e *pg_query.Node, s selfItem, own bool) *pg_query.Node {
	c := proto.Clone(e).(*pg_query.Node)
	nodes := 0
	as := func(cr *pg_query.ColumnRef, col string) {
		name, ok := s.column(col)
		if !ok {
			name = "?" + s.alias + "." + col
		}
		cr.Fields = []*pg_query.Node{pg_query.MakeStrNode(t.name), pg_query.MakeStrNode(name)}
	}
	var visit func(m protoreflect.Message, level int, shadowed bool) bool
	visit = func(m protoreflect.Message, level int, shadowed bool) bool {
		nodes++
		switch v := m.Interface().(type) {
		case *pg_query.ColumnRef:
			f := v.Fields
			if len(f) == 0 || f[len(f)-1].GetAStar() != nil {
				if len(f) == 2 && !shadowed && f[0].GetString_().GetSval() == s.alias {
					f[0] = pg_query.MakeStrNode(t.name)
				}
				return false
			}
			col := f[len(f)-1].GetString_().GetSval()
			switch {
			case len(f) == 1 && own && level == 0:
				as(v, col)
			case len(f) == 2 && !shadowed && f[0].GetString_().GetSval() == s.alias:
				as(v, col)
			}
			return false
		case *pg_query.SelectStmt:
			sh := shadowed || bindsName(v, s.alias)
			walk(m, func(c protoreflect.Message) bool {
				if c.Interface() == v {
					return true
				}
				return visit(c, level+1, sh)
			})
			return false
		}
		return true
	}
	walk(c.ProtoReflect(), func(m protoreflect.Message) bool { return visit(m, 0, false) })
	t.spend(2 * nodes) // the copy and the walk
	return c
}

// selfJoinAll reports whether a WHERE (or MERGE's ON) that joins the
// target with its own table holds for every row once the joined row is
// the target row itself.
func (t target) selfJoinAll(where *pg_query.Node) bool {
	if len(t.from) == 0 || t.rel == nil {
		return false
	}
	w, found := where, false
	for _, f := range t.from {
		if s, ok := t.selfItem(f); ok {
			w, found = t.rewrite(w, s, false), true
		}
	}
	if !found {
		return false
	}
	v := eval(w, t, false)
	return v == tTrue || v == tIndep
}

// witness judges EXISTS (subquery) and x IN (subquery) (x = ANY, <= ANY,
// >= ANY) over the target's own table by the row itself: it returns tTrue
// when the subquery finds every row, tIndep when that depends only on
// something outside the row ($1), and ok false when it proves nothing.
func (t target) witness(sl *pg_query.SubLink) (truth, bool) {
	t, ok := t.deeper()
	if !ok {
		return 0, false
	}
	var lhs []*pg_query.Node
	op := "="
	switch sl.SubLinkType {
	case pg_query.SubLinkType_EXISTS_SUBLINK:
	case pg_query.SubLinkType_ANY_SUBLINK:
		if len(sl.OperName) > 0 {
			op = stringList(sl.OperName, false)
			if op != "=" && op != "<=" && op != ">=" {
				return 0, false
			}
		}
		switch {
		case sl.Testexpr.GetRowExpr() != nil:
			lhs = sl.Testexpr.GetRowExpr().Args
		case sl.Testexpr != nil:
			lhs = []*pg_query.Node{sl.Testexpr}
		default:
			return 0, false
		}
	default:
		return 0, false
	}
	s := sl.Subselect.GetSelectStmt()
	if s == nil {
		return 0, false
	}
	return t.witnessSelect(s, sl.SubLinkType == pg_query.SubLinkType_EXISTS_SUBLINK, lhs, op)
}

func (t target) witnessSelect(s *pg_query.SelectStmt, exists bool, lhs []*pg_query.Node, op string) (truth, bool) {
	switch s.Op {
	case pg_query.SetOperation_SETOP_UNION:
		// rows of either side
		if v, ok := t.witnessSelect(s.Larg, exists, lhs, op); ok && v == tTrue {
			return v, ok
		}
		if v, ok := t.witnessSelect(s.Rarg, exists, lhs, op); ok && v == tTrue {
			return v, ok
		}
		return 0, false
	case pg_query.SetOperation_SETOP_INTERSECT:
		l, lok := t.witnessSelect(s.Larg, exists, lhs, op)
		r, rok := t.witnessSelect(s.Rarg, exists, lhs, op)
		if lok && rok && l == tTrue && r == tTrue {
			return tTrue, true
		}
		return 0, false
	case pg_query.SetOperation_SETOP_NONE:
	default:
		return 0, false
	}
	if s.WithClause != nil || s.LimitOffset != nil || s.HavingClause != nil || len(s.ValuesLists) > 0 || s.IntoClause != nil {
		return 0, false
	}
	if s.LimitCount != nil {
		// EXISTS needs one row; IN needs them all.
		n, ok := numConst(s.LimitCount)
		if !exists || !ok || n.Sign() <= 0 {
			return 0, false
		}
	}
	if !exists && !plainDistinct(s.DistinctClause) {
		return 0, false
	}
	sub := func(n *pg_query.Node) *pg_query.Node { return n }
	switch len(s.FromClause) {
	case 0:
		// No FROM: its columns are the outer query's, the target's.
	case 1:
		item, ok := t.selfItem(s.FromClause[0])
		if !ok {
			return 0, false
		}
		sub = func(n *pg_query.Node) *pg_query.Node { return t.rewrite(n, item, true) }
	default:
		return 0, false
	}
	var conds []*pg_query.Node
	if s.WhereClause != nil {
		conds = append(conds, sub(s.WhereClause))
	}
	if !exists {
		if len(s.TargetList) != len(lhs) {
			return 0, false
		}
		for i, n := range s.TargetList {
			rt := n.GetResTarget()
			if rt == nil || rt.Val == nil {
				return 0, false
			}
			conds = append(conds, mkOp(op, lhs[i], sub(rt.Val)))
		}
	}
	if len(conds) == 0 {
		return tTrue, true
	}
	switch v := eval(mkBool(pg_query.BoolExprType_AND_EXPR, conds...), t, false); v {
	case tTrue, tIndep:
		return v, true
	}
	return 0, false
}

// emptySubLink reports whether EXISTS (subquery) or x IN (subquery) has a
// subquery that returns no rows whatever the data: a WHERE false for every
// row, or LIMIT 0.
func emptySubLink(sl *pg_query.SubLink, t target) bool {
	switch sl.SubLinkType {
	case pg_query.SubLinkType_EXISTS_SUBLINK, pg_query.SubLinkType_ANY_SUBLINK:
		t, ok := t.deeper()
		return ok && emptySelect(sl.Subselect.GetSelectStmt(), t)
	}
	return false
}

func emptySelect(s *pg_query.SelectStmt, t target) bool {
	if s == nil {
		return false
	}
	switch s.Op {
	case pg_query.SetOperation_SETOP_UNION:
		return emptySelect(s.Larg, t) && emptySelect(s.Rarg, t)
	case pg_query.SetOperation_SETOP_INTERSECT:
		return emptySelect(s.Larg, t) || emptySelect(s.Rarg, t)
	case pg_query.SetOperation_SETOP_EXCEPT:
		return emptySelect(s.Larg, t)
	}
	if len(s.ValuesLists) > 0 || s.GroupClause == nil && s.HavingClause == nil && hasAggregate(s) {
		return false // VALUES, or an aggregate's one row
	}
	if n, ok := numConst(s.LimitCount); ok && n.Sign() == 0 {
		return true
	}
	if s.WhereClause == nil {
		return false
	}
	v := eval(s.WhereClause, target{depth: t.depth, st: t.st}, false)
	return v == tFalse || v == tNull
}

// hasAggregate reports whether a SELECT's own target list may hold an
// aggregate: any function call counts, as bastion does not know which
// functions aggregate.
func hasAggregate(s *pg_query.SelectStmt) bool {
	found := false
	for _, n := range s.TargetList {
		walkNode(n, func(m protoreflect.Message) bool {
			switch m.Interface().(type) {
			case *pg_query.FuncCall:
				found = true
			case *pg_query.SelectStmt:
				return false
			}
			return !found
		})
	}
	return found
}
