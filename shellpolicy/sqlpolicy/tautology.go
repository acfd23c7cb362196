package sqlpolicy

// Conditions true for every row by construction, beyond constant folding:
// patterns that match everything, IN and BETWEEN read as the comparisons
// they are, CASE and coalesce, and ORs whose arms together cover every
// value. See restricts for the whole list.

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// matchAll are the patterns that match every string: LIKE and ILIKE
// patterns of only %, SIMILAR TO ones of only %, and regular expressions
// that match the empty string anywhere.
func matchAll(kind pg_query.A_Expr_Kind, op, p string) bool {
	switch {
	case kind == pg_query.A_Expr_Kind_AEXPR_SIMILAR:
		return p != "" && strings.Trim(p, "%") == ""
	case op == "~~" || op == "~~*":
		return p != "" && strings.Trim(p, "%") == ""
	case op == "~" || op == "~*":
		switch p {
		case "", ".*", "^", "$", "^.*", ".*$", "^.*$":
			return true
		}
	}
	return false
}

// patternMatch judges x LIKE 'pattern' (and ILIKE, SIMILAR TO, ~, ~*, in
// operator form too, and their negations): true for every non-null x when
// the pattern matches everything. ok is false when it cannot tell.
func patternMatch(x *pg_query.A_Expr, op string, t target, neg bool) (truth, bool) {
	negated := strings.HasPrefix(op, "!")
	op = strings.TrimPrefix(op, "!")
	switch op {
	case "~~", "~~*", "~", "~*":
	default:
		return 0, false
	}
	pattern := x.Rexpr
	if x.Kind == pg_query.A_Expr_Kind_AEXPR_SIMILAR {
		// SIMILAR TO 'p' is x ~ similar_to_escape('p')
		fc := pattern.GetFuncCall()
		if fc == nil || len(fc.Args) != 1 || strings.ToLower(stringList(fc.Funcname, false)) != "pg_catalog.similar_to_escape" {
			return 0, false
		}
		pattern = fc.Args[0]
	}
	p, ok := constString(pattern)
	if !ok || !matchAll(x.Kind, op, p) || deps(x.Lexpr, t) != tDep {
		return 0, false
	}
	return negate(tTrue, neg != negated), true
}

func mkNode(x *pg_query.A_Expr) *pg_query.Node {
	return &pg_query.Node{Node: &pg_query.Node_AExpr{AExpr: x}}
}

func mkOp(op string, l, r *pg_query.Node) *pg_query.Node {
	return mkNode(&pg_query.A_Expr{Kind: pg_query.A_Expr_Kind_AEXPR_OP, Name: []*pg_query.Node{pg_query.MakeStrNode(op)}, Lexpr: l, Rexpr: r})
}

func mkBool(op pg_query.BoolExprType, args ...*pg_query.Node) *pg_query.Node {
	return &pg_query.Node{Node: &pg_query.Node_BoolExpr{BoolExpr: &pg_query.BoolExpr{Boolop: op, Args: args}}}
}

// expandIn writes x IN (a, b) as x = a OR x = b, and x NOT IN (a, b) as
// x <> a AND x <> b. An IN with a subquery is a SubLink, not this. A list
// of constants after a column (id IN (1, 2, ...), often thousands long)
// restricts as it is and is not expanded.
func expandIn(x *pg_query.A_Expr, t target) (*pg_query.Node, bool) {
	items := x.Rexpr.GetList()
	if items == nil || len(items.Items) == 0 {
		return nil, false
	}
	if !isConst(x.Lexpr) {
		plain := true
		for _, it := range items.Items {
			if !isConst(it) {
				plain = false
				break
			}
		}
		if plain {
			return nil, false
		}
	}
	if len(items.Items) > maxOrArms || !t.spend(len(items.Items)) {
		t.giveUp()
		return nil, false
	}
	op, join := "=", pg_query.BoolExprType_OR_EXPR
	if stringList(x.Name, false) == "<>" {
		op, join = "<>", pg_query.BoolExprType_AND_EXPR
	}
	args := make([]*pg_query.Node, len(items.Items))
	for i, it := range items.Items {
		args[i] = mkOp(op, x.Lexpr, it)
	}
	return mkBool(join, args...), true
}

// expandBetween writes x BETWEEN a AND b as x >= a AND x <= b, NOT BETWEEN
// as its negation, and the SYMMETRIC forms as either order.
func expandBetween(x *pg_query.A_Expr) (*pg_query.Node, bool) {
	l := x.Rexpr.GetList()
	if l == nil || len(l.Items) != 2 {
		return nil, false
	}
	lo, hi := l.Items[0], l.Items[1]
	in := func(lo, hi *pg_query.Node) *pg_query.Node {
		return mkBool(pg_query.BoolExprType_AND_EXPR, mkOp(">=", x.Lexpr, lo), mkOp("<=", x.Lexpr, hi))
	}
	e := in(lo, hi)
	switch x.Kind {
	case pg_query.A_Expr_Kind_AEXPR_BETWEEN_SYM, pg_query.A_Expr_Kind_AEXPR_NOT_BETWEEN_SYM:
		e = mkBool(pg_query.BoolExprType_OR_EXPR, e, in(hi, lo))
	}
	switch x.Kind {
	case pg_query.A_Expr_Kind_AEXPR_NOT_BETWEEN, pg_query.A_Expr_Kind_AEXPR_NOT_BETWEEN_SYM:
		e = mkBool(pg_query.BoolExprType_NOT_EXPR, e)
	}
	return e, true
}

// caseExpr: a CASE whose every result (ELSE included; a missing ELSE is
// NULL) is true is true for every row; one whose every result is false is
// false.
func caseExpr(c *pg_query.CaseExpr, t target, neg bool) (truth, bool) {
	vals := make([]truth, 0, len(c.Args)+1)
	for _, w := range c.Args {
		cw := w.GetCaseWhen()
		if cw == nil {
			return 0, false
		}
		vals = append(vals, eval(cw.Result, t, neg))
	}
	if c.Defresult == nil {
		vals = append(vals, tNull)
	} else {
		vals = append(vals, eval(c.Defresult, t, neg))
	}
	return allSame(vals)
}

// coalesceExpr: coalesce(a, b, ...) is the first of its arguments that is
// not NULL. Arguments that are always NULL drop out; when the others are
// all true (or all false), so is the coalesce.
func coalesceExpr(c *pg_query.CoalesceExpr, t target, neg bool) (truth, bool) {
	var vals []truth
	for _, a := range c.Args {
		if v := eval(a, t, neg); v != tNull {
			vals = append(vals, v)
		}
	}
	if len(vals) == 0 {
		return tNull, true
	}
	return allSame(vals)
}

func allSame(vals []truth) (truth, bool) {
	for _, v := range vals {
		if v != vals[0] {
			return 0, false
		}
	}
	if vals[0] == tTrue || vals[0] == tFalse || vals[0] == tNull {
		return vals[0], true
	}
	return 0, false
}
