package sqlpolicy

// Whether the WHERE of a DELETE or UPDATE (or MERGE's ON) restricts it to
// some rows: see restricts.

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// truth is what a WHERE (or MERGE ON) condition is known to select.
type truth int

const (
	tDep   truth = iota // depends on the target row: restricting
	tTrue               // true for every row: a constant, or a tautology such as id = id
	tFalse              // false for every row
	tNull               // NULL for every row, so selects nothing
	tIndep              // unknown, but not decided by the target row ($1, now(), an uncorrelated subquery)
)

// target is the table whose rows a DELETE, UPDATE or MERGE changes, and
// what the statement joins it with.
type target struct {
	name  string             // what a qualified column names it by: the alias, else the table name
	rel   *pg_query.RangeVar // the table itself
	from  []*pg_query.Node   // DELETE's USING, UPDATE's FROM, MERGE's source
	ctes  []*pg_query.Node   // the statement's WITH: CommonTableExpr nodes
	depth int                // subqueries followed so far (see maxWitnessDepth)
	st    *whereState        // shared by everything judged for one WHERE; nil: no bound
}

// whereState is the work done for one WHERE (or MERGE condition).
type whereState struct {
	work   int                             // nodes judged, compared, hashed or copied
	hashes map[protoreflect.Message]uint64 // exprHash of the condition's own nodes
}

// maxWhereWork bounds the work for one WHERE. Following subqueries and
// self-joins judges parts of it again, and comparing expressions reads
// them whole; a WHERE that needs more than this is too complex to check,
// and so does not count as restricting (nor does one whose subqueries nest
// deeper than maxWitnessDepth).
const maxWhereWork = 300000

// spend records n units of work and reports whether the budget still holds.
func (t target) spend(n int) bool {
	if t.st == nil {
		return true
	}
	t.st.work += n
	return t.st.work <= maxWhereWork
}

// giveUp marks the WHERE too complex to check.
func (t target) giveUp() {
	if t.st != nil {
		t.st.work = maxWhereWork + 1
	}
}

func newTarget(rv *pg_query.RangeVar, from []*pg_query.Node, with *pg_query.WithClause) target {
	t := target{rel: rv, from: from, st: &whereState{}}
	if with != nil {
		t.ctes = with.Ctes
	}
	if rv == nil {
		return t
	}
	t.name = rv.Relname
	if rv.Alias != nil && rv.Alias.Aliasname != "" {
		t.name = rv.Alias.Aliasname
	}
	return t
}

// restricts reports whether a WHERE clause limits a statement to some rows
// of its target rather than all of them. A condition that is true for
// every row by construction does not: constants folded (WHERE true, 1 = 1,
// 'a' = 'a', NOT false), an expression compared with itself (id = id,
// x >= x, x IS NOT DISTINCT FROM x), IS NOT NULL on a column, a pattern
// that matches everything (LIKE '%'), an OR one of whose arms is always
// true or whose arms together cover every value (a OR NOT a, x < 5 OR
// x >= 5, x IS NULL OR x IS NOT NULL), a CASE or coalesce whose every
// outcome is true, and a subquery or join that finds each row in its own
// table (id IN (SELECT id FROM t), EXISTS (SELECT 1 FROM t t2 WHERE t2.id
// = t.id), USING t t2 WHERE t.id = t2.id; see witness). An AND restricts
// when any of its arms does. A condition that never mentions the target's
// columns (WHERE $1, WHERE now() > '2020-01-01', an uncorrelated EXISTS)
// selects all rows or none, so it does not restrict either. Everything
// else restricts, even where it holds for every row in fact (id > 0).
func restricts(where *pg_query.Node, t target) bool {
	return whereRestricts(where, t) == restricting
}

// whereVerdict is what restricts found.
type whereVerdict int

const (
	restricting whereVerdict = iota
	everyRow                 // no WHERE, or one true for every row
	tooComplex               // more than maxWhereWork to judge
)

func whereRestricts(where *pg_query.Node, t target) whereVerdict {
	if where == nil {
		return everyRow
	}
	v := eval(where, t, false)
	if v == tDep || v == tFalse || v == tNull {
		if !t.selfJoinAll(where) {
			v = tDep
		} else {
			v = tTrue
		}
	}
	switch {
	case t.exhausted():
		return tooComplex
	case v == tDep || v == tFalse || v == tNull:
		return restricting
	}
	return everyRow
}

// exhausted reports whether the work for this WHERE ran out.
func (t target) exhausted() bool { return t.st != nil && t.st.work > maxWhereWork }

// maxOrArms bounds the arms of one OR (or items of an IN list) that are
// compared for coverage; more make the WHERE too complex to check.
const maxOrArms = 100000

// eval judges e, or NOT e when neg is set. Negation is pushed down to the
// leaves, so that NOT (id IS NULL) is seen as the tautology it is.
func eval(e *pg_query.Node, t target, neg bool) truth {
	if !t.spend(1) {
		return tIndep
	}
	switch v := e.GetNode().(type) {
	case *pg_query.Node_BoolExpr:
		b := v.BoolExpr
		switch b.Boolop {
		case pg_query.BoolExprType_NOT_EXPR:
			if len(b.Args) == 1 {
				return eval(b.Args[0], t, !neg)
			}
		case pg_query.BoolExprType_AND_EXPR, pg_query.BoolExprType_OR_EXPR:
			vals := make([]truth, len(b.Args))
			for i, a := range b.Args {
				vals[i] = eval(a, t, neg)
			}
			if (b.Boolop == pg_query.BoolExprType_AND_EXPR) != neg {
				return and(vals)
			}
			r := or(vals)
			if r != tTrue && covers(b.Args, neg, t) {
				return tTrue
			}
			return r
		}
	case *pg_query.Node_AConst, *pg_query.Node_TypeCast:
		if c, ok := constValue(e); ok {
			return negate(c.truth(), neg)
		}
	case *pg_query.Node_NullTest:
		isNull := v.NullTest.Nulltesttype == pg_query.NullTestType_IS_NULL
		return nullTest(v.NullTest.Arg, isNull != neg, t)
	case *pg_query.Node_BooleanTest:
		return negate(boolTest(v.BooleanTest, t), neg)
	case *pg_query.Node_AExpr:
		return aExpr(v.AExpr, t, neg)
	case *pg_query.Node_CaseExpr:
		if r, ok := caseExpr(v.CaseExpr, t, neg); ok {
			return r
		}
	case *pg_query.Node_CoalesceExpr:
		if r, ok := coalesceExpr(v.CoalesceExpr, t, neg); ok {
			return r
		}
	case *pg_query.Node_SubLink:
		if r, ok := t.witness(v.SubLink); ok {
			return negate(r, neg)
		}
		if emptySubLink(v.SubLink, t) {
			return negate(tFalse, neg) // EXISTS and IN of no rows
		}
	case *pg_query.Node_CurrentOfExpr:
		return tDep
	}
	return deps(e, t)
}

func negate(v truth, neg bool) truth {
	if neg {
		switch v {
		case tTrue:
			return tFalse
		case tFalse:
			return tTrue
		}
	}
	return v
}

func and(vals []truth) truth {
	var has [tIndep + 1]bool
	for _, v := range vals {
		has[v] = true
	}
	switch {
	case has[tFalse]:
		return tFalse
	case has[tNull]:
		return tNull
	case has[tDep]:
		return tDep
	case has[tIndep]:
		return tIndep
	}
	return tTrue
}

func or(vals []truth) truth {
	var has [tIndep + 1]bool
	for _, v := range vals {
		has[v] = true
	}
	switch {
	case has[tTrue]:
		return tTrue
	case has[tIndep]:
		return tIndep
	case has[tDep]:
		return tDep
	case has[tNull]:
		return tNull
	}
	return tFalse
}

// nullTest judges "arg IS NULL" (isNull) or "arg IS NOT NULL".
func nullTest(arg *pg_query.Node, isNull bool, t target) truth {
	if c, ok := constValue(arg); ok {
		if c.null == isNull {
			return tTrue
		}
		return tFalse
	}
	d := deps(arg, t)
	if d == tDep && !isNull {
		// IS NOT NULL on a column holds for every row of a NOT NULL or
		// primary-key column: the classic way to write "all rows".
		return tTrue
	}
	return d
}

func boolTest(b *pg_query.BooleanTest, t target) truth {
	v := eval(b.Arg, t, false)
	if v == tDep || v == tIndep {
		return v
	}
	isTrue, isFalse, isNull := v == tTrue, v == tFalse, v == tNull
	var r bool
	switch b.Booltesttype {
	case pg_query.BoolTestType_IS_TRUE:
		r = isTrue
	case pg_query.BoolTestType_IS_NOT_TRUE:
		r = !isTrue
	case pg_query.BoolTestType_IS_FALSE:
		r = isFalse
	case pg_query.BoolTestType_IS_NOT_FALSE:
		r = !isFalse
	case pg_query.BoolTestType_IS_UNKNOWN:
		r = isNull
	case pg_query.BoolTestType_IS_NOT_UNKNOWN:
		r = !isNull
	default:
		return tIndep
	}
	if r {
		return tTrue
	}
	return tFalse
}

var negatedOp = map[string]string{"=": "<>", "<>": "=", "!=": "=", "<": ">=", ">=": "<", ">": "<=", "<=": ">"}

func aExpr(x *pg_query.A_Expr, t target, neg bool) truth {
	op := stringList(x.Name, false)
	switch x.Kind {
	case pg_query.A_Expr_Kind_AEXPR_OP:
		if _, ok := negatedOp[op]; !ok {
			if r, ok := patternMatch(x, op, t, neg); ok {
				return r
			}
			break
		}
		if neg {
			op = negatedOp[op]
		}
		if op == "!=" {
			op = "<>"
		}
		l, lok := constValue(x.Lexpr)
		r, rok := constValue(x.Rexpr)
		if lok && rok {
			return compare(l, r, op)
		}
		if lok && l.null || rok && r.null {
			return tNull // x = NULL is never true
		}
		if sameExprIn(x.Lexpr, x.Rexpr, t) {
			if op == "=" || op == "<=" || op == ">=" {
				return tTrue
			}
			return tFalse
		}
	case pg_query.A_Expr_Kind_AEXPR_DISTINCT, pg_query.A_Expr_Kind_AEXPR_NOT_DISTINCT:
		distinct := (x.Kind == pg_query.A_Expr_Kind_AEXPR_DISTINCT) != neg
		l, lok := constValue(x.Lexpr)
		r, rok := constValue(x.Rexpr)
		switch {
		case lok && l.null:
			return nullTest(x.Rexpr, !distinct, t)
		case rok && r.null:
			return nullTest(x.Lexpr, !distinct, t)
		case lok && rok:
			v := compare(l, r, "=")
			if v == tTrue || v == tFalse {
				return negate(v, distinct)
			}
			return v
		case sameExprIn(x.Lexpr, x.Rexpr, t):
			return negate(tTrue, distinct)
		}
	case pg_query.A_Expr_Kind_AEXPR_LIKE, pg_query.A_Expr_Kind_AEXPR_ILIKE, pg_query.A_Expr_Kind_AEXPR_SIMILAR:
		if r, ok := patternMatch(x, op, t, neg); ok {
			return r
		}
	case pg_query.A_Expr_Kind_AEXPR_IN:
		// x IN (a, b) is x = a OR x = b; x NOT IN (a, b) is x <> a AND x <> b.
		if e, ok := expandIn(x, t); ok {
			return eval(e, t, neg)
		}
	case pg_query.A_Expr_Kind_AEXPR_BETWEEN, pg_query.A_Expr_Kind_AEXPR_NOT_BETWEEN,
		pg_query.A_Expr_Kind_AEXPR_BETWEEN_SYM, pg_query.A_Expr_Kind_AEXPR_NOT_BETWEEN_SYM:
		if e, ok := expandBetween(x); ok {
			return eval(e, t, neg)
		}
	}
	return deps(&pg_query.Node{Node: &pg_query.Node_AExpr{AExpr: x}}, t)
}

// deps says whether e reads a column of the target row. Unqualified columns
// are taken to be the target's (they may belong to a USING or FROM table;
// bastion cannot tell without the catalog). Inside a subquery only columns
// qualified with the target's name count, unless the subquery's own FROM
// rebinds that name.
func deps(e *pg_query.Node, t target) truth {
	found := false
	var visit func(m protoreflect.Message, inSub, shadowed bool) bool
	visit = func(m protoreflect.Message, inSub, shadowed bool) bool {
		switch v := m.Interface().(type) {
		case *pg_query.ColumnRef:
			if refersToTarget(v, t, inSub, shadowed) {
				found = true
			}
			return false
		case *pg_query.CurrentOfExpr:
			found = true
			return false
		case *pg_query.SelectStmt:
			sh := shadowed || bindsName(v, t.name)
			walk(m, func(c protoreflect.Message) bool {
				if c.Interface() == v {
					return true
				}
				return visit(c, true, sh)
			})
			return false
		}
		return !found
	}
	walk(e.ProtoReflect(), func(m protoreflect.Message) bool { return visit(m, false, false) })
	if found {
		return tDep
	}
	return tIndep
}

func refersToTarget(c *pg_query.ColumnRef, t target, inSub, shadowed bool) bool {
	f := c.Fields
	if len(f) == 1 {
		return !inSub
	}
	if shadowed || len(f) < 2 {
		return false
	}
	// qualifier is the name before the column (or before *).
	q := f[len(f)-2].GetString_().GetSval()
	return q != "" && q == t.name
}

// bindsName reports whether a SELECT's own FROM list introduces name.
func bindsName(s *pg_query.SelectStmt, name string) bool {
	for _, f := range s.FromClause {
		found := false
		walkNode(f, func(m protoreflect.Message) bool {
			switch v := m.Interface().(type) {
			case *pg_query.RangeVar:
				n := v.Relname
				if v.Alias != nil && v.Alias.Aliasname != "" {
					n = v.Alias.Aliasname
				}
				found = found || n == name
			case *pg_query.Alias:
				found = found || v.Aliasname == name
			case *pg_query.SelectStmt:
				return false // a derived table's inside binds nothing here
			}
			return true
		})
		if found {
			return true
		}
	}
	return false
}
