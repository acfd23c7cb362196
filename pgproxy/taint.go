package pgproxy

import (
	"reflect"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// This file finds, from a statement's parse tree, which of its result
// columns can carry a masked column's value: for result columns that
// RowDescription gives no origin (table OID 0: expressions, function
// results, UNION, RETURNING), and for those whose origin the catalog could
// not resolve. A result column is tainted when its expression refers,
// through any operator, function, cast, subquery, CTE or subquery in FROM,
// to a column a column rule matches, to a whole row of a relation with
// such a column (`json_agg(u)`, `u::text`, `row(u.*)`), or calls a
// function defined outside the system schemas (its body is not read).
// A column only compared (in WHERE, JOIN ... ON) taints nothing.
//
// Unknowns fail closed toward masking, as far as a masked column could be
// involved: every column of a relation the catalog does not know is
// tainted where an expression uses it, a FROM item of a kind
// not handled here taints everything drawn from it, and a statement that
// returns rows of a shape not handled here (CALL, a FETCH or EXECUTE whose
// DECLARE or PREPARE was not seen) has every column tainted.

// resolver is what the analysis needs from the catalog and the rules.
type resolver interface {
	// relation returns the columns of the relation a FROM item names
	// (schema empty: through the search path), each with whether it
	// carries a masked value, and its qualified name; ok false when the
	// relation is unknown.
	relation(schema, name string) (cols []col, qualified string, ok bool)
	// userFunc reports whether a function of this name is defined
	// outside pg_catalog and information_schema (or may be: unknown).
	userFunc(schema, name string) bool
	// rule reports whether a column rule matches the column col of the
	// relation rel ("schema.table", "table", or "" when unknown).
	rule(rel, col string) bool
	// named returns the query of a cursor (DECLARE) or an SQL prepared
	// statement (PREPARE) of this session, nil when not seen.
	named(cursor bool, name string) *pg_query.Node
}

// col is a named column and whether it can carry a masked value.
type col struct {
	name  string
	taint bool
	star  bool // an unexpanded star: stands for an unknown number of columns
}

// source is one FROM item visible by name.
type source struct {
	alias string // the name it is referred to by
	rel   string // a relation: its name for rules; "" otherwise
	cols  []col
	known bool // cols is the item's full, expanded column list
	taint bool // some column can carry a masked value
	table bool // a relation: columns not in cols are matched by name
	join  bool // an aliased join: its members are in scope on their own
}

// column returns whether column name of s can carry a masked value, and
// whether s has such a column (or may have).
func (s *source) column(r resolver, name string) (taint, found bool) {
	for _, c := range s.cols {
		if c.name == name {
			return c.taint, true
		}
	}
	switch {
	case s.known:
		return false, false
	case s.table:
		// A relation the catalog does not know (created in the open
		// transaction, hidden by a changed search_path or a temporary
		// table, or the side connection failed) may be a view over a
		// masked column: fail closed.
		return true, true
	default:
		return s.taint, true
	}
}

type scope struct {
	items  []*source
	ctes   []*source
	parent *scope
}

func (sc *scope) cte(name string) *source {
	for ; sc != nil; sc = sc.parent {
		for i := len(sc.ctes) - 1; i >= 0; i-- {
			if sc.ctes[i].alias == name {
				return sc.ctes[i]
			}
		}
	}
	return nil
}

// analyzer walks one statement.
type analyzer struct {
	r     resolver
	depth int
}

// maxDepth bounds nested queries (subqueries, views inside views): deeper
// is tainted whole.
const maxDepth = 32

// statementColumns returns the result columns of a statement and whether
// each can carry a masked value; nil for a statement that returns no rows
// whose values the rules govern (SHOW, EXPLAIN, DDL).
func (a *analyzer) statementColumns(n *pg_query.Node, outer *scope) []col {
	if a.depth > maxDepth {
		return []col{{star: true, taint: true}}
	}
	a.depth++
	defer func() { a.depth-- }()
	switch {
	case n == nil:
		return nil
	case n.GetSelectStmt() != nil:
		return a.selectColumns(n.GetSelectStmt(), outer)
	case n.GetInsertStmt() != nil:
		s := n.GetInsertStmt()
		sc := a.with(s.WithClause, outer)
		a.rangeVar(s.Relation, sc)
		return a.targets(s.ReturningList, sc)
	case n.GetUpdateStmt() != nil:
		s := n.GetUpdateStmt()
		sc := a.with(s.WithClause, outer)
		a.rangeVar(s.Relation, sc)
		a.from(s.FromClause, sc)
		return a.targets(s.ReturningList, sc)
	case n.GetDeleteStmt() != nil:
		s := n.GetDeleteStmt()
		sc := a.with(s.WithClause, outer)
		a.rangeVar(s.Relation, sc)
		a.from(s.UsingClause, sc)
		return a.targets(s.ReturningList, sc)
	case n.GetMergeStmt() != nil:
		s := n.GetMergeStmt()
		sc := a.with(s.WithClause, outer)
		a.rangeVar(s.Relation, sc)
		a.fromItem(s.SourceRelation, sc)
		return a.targets(s.ReturningList, sc)
	case n.GetFetchStmt() != nil:
		if q := a.r.named(true, n.GetFetchStmt().Portalname); q != nil {
			return a.statementColumns(q, nil)
		}
		return []col{{star: true, taint: true}}
	case n.GetExecuteStmt() != nil:
		if q := a.r.named(false, n.GetExecuteStmt().Name); q != nil {
			return a.statementColumns(q, nil)
		}
		return []col{{star: true, taint: true}}
	case n.GetExplainStmt() != nil, n.GetVariableShowStmt() != nil:
		// A plan or a setting: no column values (the masker reads them).
		return nil
	case n.GetCallStmt() != nil:
		// A procedure's OUT parameters: its body is not read.
		return []col{{star: true, taint: true}}
	}
	// Other statements return no rows; if one does, its shape is unknown.
	return []col{{star: true, taint: true}}
}

// selectColumns analyzes a SELECT, VALUES or set operation.
func (a *analyzer) selectColumns(s *pg_query.SelectStmt, outer *scope) []col {
	if s == nil {
		return nil
	}
	if s.Op != pg_query.SetOperation_SET_OPERATION_UNDEFINED && s.Op != pg_query.SetOperation_SETOP_NONE {
		sc := a.with(s.WithClause, outer)
		return mergeColumns(a.selectColumns(s.Larg, sc), a.selectColumns(s.Rarg, sc))
	}
	sc := a.with(s.WithClause, outer)
	if len(s.ValuesLists) > 0 {
		var out []col
		for _, row := range s.ValuesLists {
			items := row.GetList().GetItems()
			cols := make([]col, len(items))
			for i, e := range items {
				cols[i] = col{name: "column" + itoa(i+1), taint: a.expr(e, sc)}
			}
			if out == nil {
				out = cols
			} else {
				out = mergeColumns(out, cols)
			}
		}
		return out
	}
	a.from(s.FromClause, sc)
	return a.targets(s.TargetList, sc)
}

// mergeColumns combines the columns of two arms of a set operation, or of
// two VALUES rows, position by position.
func mergeColumns(l, r []col) []col {
	if len(l) != len(r) || hasStar(l) || hasStar(r) {
		return []col{{star: true, taint: anyTaint(l) || anyTaint(r)}}
	}
	out := make([]col, len(l))
	for i := range l {
		out[i] = col{name: l[i].name, taint: l[i].taint || r[i].taint}
	}
	return out
}

func hasStar(cols []col) bool {
	for _, c := range cols {
		if c.star {
			return true
		}
	}
	return false
}

func anyTaint(cols []col) bool {
	for _, c := range cols {
		if c.taint {
			return true
		}
	}
	return false
}

// with returns the scope of a query with its WITH clause. A recursive
// CTE refers to itself: it is analyzed until its taint stops growing.
func (a *analyzer) with(w *pg_query.WithClause, outer *scope) *scope {
	sc := &scope{parent: outer}
	if w == nil {
		return sc
	}
	for _, n := range w.Ctes {
		cte := n.GetCommonTableExpr()
		if cte == nil {
			continue
		}
		src := &source{alias: cte.Ctename}
		sc.ctes = append(sc.ctes, src)
		for range 3 {
			cols := renameColumns(a.statementColumns(cte.Ctequery, sc), cte.Aliascolnames)
			grew := anyTaint(cols) != src.taint || !src.known
			src.cols, src.known, src.taint = cols, !hasStar(cols), anyTaint(cols)
			if !w.Recursive || !grew {
				break
			}
		}
	}
	return sc
}

// renameColumns applies a column alias list.
func renameColumns(cols []col, names []*pg_query.Node) []col {
	if len(names) == 0 {
		return cols
	}
	out := append([]col(nil), cols...)
	for i, n := range names {
		if i < len(out) && !out[i].star {
			out[i].name = n.GetString_().GetSval()
		}
	}
	return out
}

func (a *analyzer) from(items []*pg_query.Node, sc *scope) {
	for _, n := range items {
		a.fromItem(n, sc)
	}
}

// fromItem adds a FROM item (and, for a join, its members) to sc.
func (a *analyzer) fromItem(n *pg_query.Node, sc *scope) *source {
	switch {
	case n == nil:
		return nil
	case n.GetRangeVar() != nil:
		return a.rangeVar(n.GetRangeVar(), sc)
	case n.GetRangeSubselect() != nil:
		rs := n.GetRangeSubselect()
		cols := a.statementColumns(rs.Subquery, sc)
		src := &source{known: !hasStar(cols), taint: anyTaint(cols)}
		if rs.Alias != nil {
			src.alias = rs.Alias.Aliasname
			cols = renameColumns(cols, rs.Alias.Colnames)
		}
		src.cols = cols
		sc.items = append(sc.items, src)
		return src
	case n.GetJoinExpr() != nil:
		j := n.GetJoinExpr()
		l, r := a.fromItem(j.Larg, sc), a.fromItem(j.Rarg, sc)
		if j.Alias == nil {
			return nil
		}
		src := &source{alias: j.Alias.Aliasname, join: true}
		if l != nil && r != nil {
			src.known = l.known && r.known
			src.taint = l.taint || r.taint
			src.cols = renameColumns(append(append([]col(nil), l.cols...), r.cols...), j.Alias.Colnames)
		} else {
			src.taint = true
		}
		sc.items = append(sc.items, src)
		return src
	case n.GetRangeFunction() != nil:
		rf := n.GetRangeFunction()
		src := &source{}
		for _, f := range rf.Functions {
			if a.expr(f, sc) {
				src.taint = true
			}
		}
		if rf.Alias != nil {
			src.alias = rf.Alias.Aliasname
			for _, c := range rf.Alias.Colnames {
				src.cols = append(src.cols, col{name: c.GetString_().GetSval(), taint: src.taint})
			}
		} else if len(rf.Functions) == 1 {
			if fc := firstFuncCall(rf.Functions[0]); fc != nil {
				src.alias = lastName(fc.Funcname)
			}
		}
		sc.items = append(sc.items, src)
		return src
	case n.GetRangeTableSample() != nil:
		return a.fromItem(n.GetRangeTableSample().Relation, sc)
	}
	// XMLTABLE, JSON_TABLE and whatever comes next: everything drawn from
	// it may carry what its arguments read.
	src := &source{taint: a.expr(n, sc)}
	switch {
	case n.GetRangeTableFunc() != nil && n.GetRangeTableFunc().Alias != nil:
		src.alias = n.GetRangeTableFunc().Alias.Aliasname
	case n.GetJsonTable() != nil && n.GetJsonTable().Alias != nil:
		src.alias = n.GetJsonTable().Alias.Aliasname
	}
	sc.items = append(sc.items, src)
	return src
}

// rangeVar adds a relation (or a CTE named like one) to sc.
func (a *analyzer) rangeVar(rv *pg_query.RangeVar, sc *scope) *source {
	if rv == nil {
		return nil
	}
	var src *source
	if cte := sc.cte(rv.Relname); rv.Schemaname == "" && cte != nil {
		cp := *cte
		src = &cp
	} else {
		cols, qualified, ok := a.r.relation(rv.Schemaname, rv.Relname)
		src = &source{table: true, known: ok, cols: cols, rel: qualified, alias: rv.Relname}
		if !ok {
			src.rel = rv.Relname
			if rv.Schemaname != "" {
				src.rel = rv.Schemaname + "." + rv.Relname
			}
		}
		// A whole row of an unknown relation may hold anything.
		src.taint = !ok || anyTaint(cols)
	}
	src.alias = rv.Relname
	if rv.Alias != nil {
		src.alias = rv.Alias.Aliasname
		src.cols = renameColumns(src.cols, rv.Alias.Colnames)
	}
	sc.items = append(sc.items, src)
	return src
}

// targets analyzes a target list (or RETURNING list), expanding stars
// where the columns are known.
func (a *analyzer) targets(list []*pg_query.Node, sc *scope) []col {
	var out []col
	for _, n := range list {
		rt := n.GetResTarget()
		if rt == nil {
			continue
		}
		if cr := rt.Val.GetColumnRef(); cr != nil && isStar(cr) {
			out = append(out, a.expandStar(cr, sc)...)
			continue
		}
		name := rt.Name
		if name == "" {
			name = outputName(rt.Val)
		}
		out = append(out, col{name: name, taint: a.expr(rt.Val, sc)})
	}
	return out
}

// expandStar returns the columns `*` or `t.*` stands for.
func (a *analyzer) expandStar(cr *pg_query.ColumnRef, sc *scope) []col {
	fields := cr.Fields[:len(cr.Fields)-1]
	var items []*source
	if len(fields) == 0 {
		for _, it := range sc.items {
			if !it.join {
				items = append(items, it)
			}
		}
	} else if it := sc.find(lastString(fields)); it != nil {
		items = []*source{it}
	} else {
		return []col{{star: true, taint: true}}
	}
	var out []col
	for _, it := range items {
		if it.known {
			out = append(out, it.cols...)
		} else {
			out = append(out, col{star: true, taint: it.taint})
		}
	}
	return out
}

// find returns the FROM item referred to by name, innermost first.
func (sc *scope) find(name string) *source {
	for ; sc != nil; sc = sc.parent {
		for i := len(sc.items) - 1; i >= 0; i-- {
			if sc.items[i].alias == name {
				return sc.items[i]
			}
		}
	}
	return nil
}

// expr reports whether an expression can carry a masked value.
func (a *analyzer) expr(n *pg_query.Node, sc *scope) bool {
	if n == nil {
		return false
	}
	found := false
	walkTree(n.ProtoReflect(), func(m protoreflect.Message) bool {
		if found {
			return false
		}
		switch v := m.Interface().(type) {
		case *pg_query.ColumnRef:
			found = a.ref(v, sc)
			return false
		case *pg_query.SubLink:
			if anyTaint(a.statementColumns(v.Subselect, sc)) || a.expr(v.Testexpr, sc) {
				found = true
			}
			return false
		case *pg_query.FuncCall:
			schema, name := funcName(v.Funcname)
			if a.r.userFunc(schema, name) {
				found = true
				return false
			}
		case *pg_query.SelectStmt:
			// A query where an expression was expected (ARRAY(SELECT ...)
			// is a SubLink; this is defensive).
			found = anyTaint(a.selectColumns(v, sc))
			return false
		}
		return true
	})
	return found
}

// ref reports whether a column reference can carry a masked value.
func (a *analyzer) ref(cr *pg_query.ColumnRef, sc *scope) bool {
	var names []string
	star := false
	for _, f := range cr.Fields {
		if s := f.GetString_(); s != nil {
			names = append(names, s.Sval)
		} else if f.GetAStar() != nil {
			star = true
		}
	}
	if len(names) > 0 && a.r.rule("", names[len(names)-1]) {
		return true
	}
	switch {
	case len(names) == 0: // a bare * as a value
		for l := sc; l != nil; l = l.parent {
			for _, it := range l.items {
				if it.taint {
					return true
				}
			}
		}
		return false
	case star: // t.* as a value: the whole row
		it := sc.find(names[len(names)-1])
		return it == nil || it.taint
	case len(names) == 1:
		// A column of some item in scope, or the whole row of an item of
		// that name: any of them.
		name := names[0]
		for l := sc; l != nil; l = l.parent {
			for _, it := range l.items {
				if it.alias == name && it.taint {
					return true
				}
				if t, ok := it.column(a.r, name); ok && t {
					return true
				}
			}
		}
		return false
	default:
		// table.column, schema.table.column; or a composite column's field.
		tbl, colName := names[len(names)-2], names[len(names)-1]
		if it := sc.find(tbl); it != nil {
			t, _ := it.column(a.r, colName)
			return t
		}
		return a.ref(&pg_query.ColumnRef{Fields: cr.Fields[:1]}, sc)
	}
}

func isStar(cr *pg_query.ColumnRef) bool {
	return len(cr.Fields) > 0 && cr.Fields[len(cr.Fields)-1].GetAStar() != nil
}

// outputName is the column name PostgreSQL gives an unnamed target.
func outputName(n *pg_query.Node) string {
	switch {
	case n.GetColumnRef() != nil:
		return lastString(n.GetColumnRef().Fields)
	case n.GetFuncCall() != nil:
		return lastName(n.GetFuncCall().Funcname)
	case n.GetTypeCast() != nil:
		if name := outputName(n.GetTypeCast().Arg); name != "?column?" {
			return name
		}
		return lastName(n.GetTypeCast().TypeName.GetNames())
	}
	return "?column?"
}

func lastString(nodes []*pg_query.Node) string {
	for i := len(nodes) - 1; i >= 0; i-- {
		if s := nodes[i].GetString_(); s != nil {
			return s.Sval
		}
	}
	return ""
}

func lastName(nodes []*pg_query.Node) string { return lastString(nodes) }

// funcName splits a function's qualified name.
func funcName(nodes []*pg_query.Node) (schema, name string) {
	name = lastString(nodes)
	if len(nodes) >= 2 {
		schema = nodes[len(nodes)-2].GetString_().GetSval()
	}
	return schema, name
}

func firstFuncCall(n *pg_query.Node) *pg_query.FuncCall {
	if fc := n.GetFuncCall(); fc != nil {
		return fc
	}
	for _, it := range n.GetList().GetItems() {
		if fc := it.GetFuncCall(); fc != nil {
			return fc
		}
	}
	return nil
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// walkTree calls visit on m and, while visit returns true, on every
// message below it, depth first, through protobuf reflection so that no
// node type is skipped.
func walkTree(m protoreflect.Message, visit func(protoreflect.Message) bool) {
	if !m.IsValid() {
		return
	}
	if n, ok := m.Interface().(*pg_query.Node); ok {
		// A Node is a oneof of ~270 types: go straight to the one set.
		if c := nodeChild(n); c != nil {
			walkTree(c, visit)
		}
		return
	}
	if !visit(m) {
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				walkTree(l.Get(i).Message(), visit)
			}
		} else if !fd.IsMap() {
			walkTree(v.Message(), visit)
		}
		return true
	})
}

// nodeChild is the message a Node wraps (each oneof member is a wrapper
// whose only field points to it).
func nodeChild(n *pg_query.Node) protoreflect.Message {
	if n == nil || n.Node == nil {
		return nil
	}
	v := reflect.ValueOf(n.Node).Elem().Field(0)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return nil
	}
	if pm, ok := v.Interface().(interface{ ProtoReflect() protoreflect.Message }); ok {
		return pm.ProtoReflect()
	}
	return nil
}
