package sqlpolicy

// ORs whose arms together hold for every row: complements (a OR NOT a,
// x < 5 OR x >= 5), arms on one expression that cover the number line, and
// an arm that holds wherever the others do not.

import (
	"math/big"
	"slices"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// orArm is one arm of an OR, flattened: e, or NOT e when neg is set.
type orArm struct {
	e   *pg_query.Node
	neg bool
}

// flattenOr lists the arms of an OR, nested ORs and negated ANDs (NOT (a
// AND b) is NOT a OR NOT b) included.
func flattenOr(args []*pg_query.Node, neg bool, out []orArm) []orArm {
	for _, a := range args {
		if len(out) > maxOrArms {
			return out
		}
		if b := a.GetBoolExpr(); b != nil {
			switch {
			case b.Boolop == pg_query.BoolExprType_NOT_EXPR:
				out = flattenOr(b.Args, !neg, out)
				continue
			case b.Boolop == pg_query.BoolExprType_OR_EXPR && !neg, b.Boolop == pg_query.BoolExprType_AND_EXPR && neg:
				out = flattenOr(b.Args, neg, out)
				continue
			}
		}
		out = append(out, orArm{a, neg})
	}
	return out
}

// canonicalCmp writes each comparison as =, < or > or the negation of one:
// x <> c is NOT x = c, x >= c is NOT x < c.
var canonicalCmp = map[string]struct {
	op  string
	not bool
}{"=": {"=", false}, "<>": {"=", true}, "!=": {"=", true}, "<": {"<", false}, ">=": {"<", true}, ">": {">", false}, "<=": {">", true}}

var mirrorCmp = map[string]string{"=": "=", "<": ">", ">": "<"}

func isConst(n *pg_query.Node) bool {
	_, ok := constValue(n)
	return ok
}

// atom writes an arm as a base condition and whether the arm is that base
// (pos) or its negation, so that x < 5 and x >= 5, a and NOT a, x IS NULL
// and x IS NOT NULL are seen as complements. A comparison with a constant
// puts the constant on the right.
func atom(e *pg_query.Node, neg bool) (base *pg_query.Node, pos bool) {
	flip := false
	switch v := e.GetNode().(type) {
	case *pg_query.Node_AExpr:
		x := v.AExpr
		op := stringList(x.Name, false)
		switch x.Kind {
		case pg_query.A_Expr_Kind_AEXPR_OP:
			if c, ok := canonicalCmp[op]; ok {
				l, r, cop := x.Lexpr, x.Rexpr, c.op
				if isConst(l) && !isConst(r) {
					l, r, cop = r, l, mirrorCmp[cop]
				}
				return mkOp(cop, l, r), c.not == neg
			}
			if strings.HasPrefix(op, "!~") {
				return mkOp(op[1:], x.Lexpr, x.Rexpr), neg
			}
		case pg_query.A_Expr_Kind_AEXPR_LIKE, pg_query.A_Expr_Kind_AEXPR_ILIKE, pg_query.A_Expr_Kind_AEXPR_SIMILAR:
			b := &pg_query.A_Expr{Kind: x.Kind, Name: []*pg_query.Node{pg_query.MakeStrNode(strings.TrimPrefix(op, "!"))}, Lexpr: x.Lexpr, Rexpr: x.Rexpr}
			return mkNode(b), strings.HasPrefix(op, "!") == neg
		case pg_query.A_Expr_Kind_AEXPR_IN:
			b := &pg_query.A_Expr{Kind: x.Kind, Name: []*pg_query.Node{pg_query.MakeStrNode("=")}, Lexpr: x.Lexpr, Rexpr: x.Rexpr}
			return mkNode(b), (op == "<>") == neg
		case pg_query.A_Expr_Kind_AEXPR_BETWEEN, pg_query.A_Expr_Kind_AEXPR_NOT_BETWEEN:
			b := &pg_query.A_Expr{Kind: pg_query.A_Expr_Kind_AEXPR_BETWEEN, Lexpr: x.Lexpr, Rexpr: x.Rexpr}
			return mkNode(b), (x.Kind == pg_query.A_Expr_Kind_AEXPR_NOT_BETWEEN) == neg
		case pg_query.A_Expr_Kind_AEXPR_BETWEEN_SYM, pg_query.A_Expr_Kind_AEXPR_NOT_BETWEEN_SYM:
			b := &pg_query.A_Expr{Kind: pg_query.A_Expr_Kind_AEXPR_BETWEEN_SYM, Lexpr: x.Lexpr, Rexpr: x.Rexpr}
			return mkNode(b), (x.Kind == pg_query.A_Expr_Kind_AEXPR_NOT_BETWEEN_SYM) == neg
		case pg_query.A_Expr_Kind_AEXPR_DISTINCT, pg_query.A_Expr_Kind_AEXPR_NOT_DISTINCT:
			b := &pg_query.A_Expr{Kind: pg_query.A_Expr_Kind_AEXPR_DISTINCT, Lexpr: x.Lexpr, Rexpr: x.Rexpr}
			return mkNode(b), (x.Kind == pg_query.A_Expr_Kind_AEXPR_NOT_DISTINCT) == neg
		}
	case *pg_query.Node_NullTest:
		flip = v.NullTest.Nulltesttype == pg_query.NullTestType_IS_NOT_NULL
		b := &pg_query.NullTest{Arg: v.NullTest.Arg, Nulltesttype: pg_query.NullTestType_IS_NULL}
		return &pg_query.Node{Node: &pg_query.Node_NullTest{NullTest: b}}, flip == neg
	case *pg_query.Node_BooleanTest:
		typ := v.BooleanTest.Booltesttype
		switch typ {
		case pg_query.BoolTestType_IS_NOT_TRUE:
			typ, flip = pg_query.BoolTestType_IS_TRUE, true
		case pg_query.BoolTestType_IS_NOT_FALSE:
			typ, flip = pg_query.BoolTestType_IS_FALSE, true
		case pg_query.BoolTestType_IS_NOT_UNKNOWN:
			typ, flip = pg_query.BoolTestType_IS_UNKNOWN, true
		}
		b := &pg_query.BooleanTest{Arg: v.BooleanTest.Arg, Booltesttype: typ}
		return &pg_query.Node{Node: &pg_query.Node_BooleanTest{BooleanTest: b}}, flip == neg
	}
	return e, !neg
}

// covers reports whether the arms of an OR together hold for every row:
// two of them are complements (a OR NOT a, x = 'k' OR x <> 'k'), or the
// arms comparing one expression with numbers cover the whole number line
// (x < 5 OR x >= 5, x <= 0 OR x BETWEEN 0 AND 9 OR x > 9, x IN (1, 2) OR
// x NOT IN (1, 2)). NULLs are left aside, as for IS NOT NULL.
func covers(args []*pg_query.Node, neg bool, t target) bool {
	arms := flattenOr(args, neg, nil)
	if len(arms) > maxOrArms {
		t.giveUp()
		return false
	}
	if len(arms) < 2 {
		return false
	}
	type seen struct {
		base *pg_query.Node
		pos  bool
	}
	atoms := map[uint64][]seen{}
	type line struct {
		expr *pg_query.Node
		ivs  []interval
	}
	lines := map[uint64][]*line{}
	var ands []orArm
	for _, a := range arms {
		if isAnd(a) {
			ands = append(ands, a)
		}
		base, pos := atom(a.e, a.neg)
		h := exprHash(base, t)
		for _, s := range atoms[h] {
			if s.pos != pos && sameExprIn(s.base, base, t) {
				return true
			}
		}
		atoms[h] = append(atoms[h], seen{base, pos})

		expr, ivs, ok := intervals(base, pos)
		if !ok {
			continue
		}
		h = exprHash(expr, t)
		var l *line
		for _, c := range lines[h] {
			if sameExprIn(c.expr, expr, t) {
				l = c
				break
			}
		}
		if l == nil {
			l = &line{expr: expr}
			lines[h] = append(lines[h], l)
		}
		l.ivs = append(l.ivs, ivs...)
	}
	for _, ls := range lines {
		for _, l := range ls {
			if t.spend(len(l.ivs)) && coversLine(l.ivs) {
				return true
			}
		}
	}
	// a OR b OR (NOT a AND NOT b): an arm that is a conjunction holds
	// wherever the others do not, if the complement of each of its
	// conjuncts is another arm (a constant true conjunct needs none).
	has := func(base *pg_query.Node, pos bool) bool {
		for _, s := range atoms[exprHash(base, t)] {
			if s.pos == pos && sameExprIn(s.base, base, t) {
				return true
			}
		}
		return false
	}
	for _, a := range ands {
		all := true
		for _, c := range flattenAnd(a, nil) {
			if k, ok := constValue(c.e); ok && negate(k.truth(), c.neg) == tTrue {
				continue
			}
			if base, pos := atom(c.e, c.neg); !has(base, !pos) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// isAnd reports whether an arm is a conjunction: a AND b, or NOT (a OR b).
func isAnd(a orArm) bool {
	b := a.e.GetBoolExpr()
	return b != nil && (b.Boolop == pg_query.BoolExprType_AND_EXPR && !a.neg || b.Boolop == pg_query.BoolExprType_OR_EXPR && a.neg)
}

// flattenAnd lists the conjuncts of an arm that is a conjunction.
func flattenAnd(a orArm, out []orArm) []orArm {
	for _, c := range a.e.GetBoolExpr().Args {
		x := orArm{c, a.neg}
		for nb := c.GetBoolExpr(); nb != nil && nb.Boolop == pg_query.BoolExprType_NOT_EXPR && len(nb.Args) == 1; nb = x.e.GetBoolExpr() {
			x = orArm{nb.Args[0], !x.neg}
		}
		if isAnd(x) {
			out = flattenAnd(x, out)
		} else {
			out = append(out, x)
		}
	}
	return out
}

// interval is a set of numbers; a nil bound is unbounded.
type interval struct {
	lo, hi     *big.Rat
	loIn, hiIn bool
}

func numConst(n *pg_query.Node) (*big.Rat, bool) {
	c, ok := constValue(n)
	if !ok || c.null || c.kind != 'n' {
		return nil, false
	}
	return c.n, true
}

// intervals is the set of values of expr for which an atom holds, when it
// compares expr with numbers.
func intervals(base *pg_query.Node, pos bool) (*pg_query.Node, []interval, bool) {
	x := base.GetAExpr()
	if x == nil || isConst(x.Lexpr) {
		return nil, nil, false
	}
	switch x.Kind {
	case pg_query.A_Expr_Kind_AEXPR_OP:
		c, ok := numConst(x.Rexpr)
		if !ok {
			return nil, nil, false
		}
		var ivs []interval
		switch op := stringList(x.Name, false); {
		case op == "=" && pos:
			ivs = []interval{{lo: c, hi: c, loIn: true, hiIn: true}}
		case op == "=":
			ivs = []interval{{hi: c}, {lo: c}}
		case op == "<" && pos:
			ivs = []interval{{hi: c}}
		case op == "<":
			ivs = []interval{{lo: c, loIn: true}}
		case op == ">" && pos:
			ivs = []interval{{lo: c}}
		case op == ">":
			ivs = []interval{{hi: c, hiIn: true}}
		default:
			return nil, nil, false
		}
		return x.Lexpr, ivs, true
	case pg_query.A_Expr_Kind_AEXPR_BETWEEN, pg_query.A_Expr_Kind_AEXPR_BETWEEN_SYM:
		l := x.Rexpr.GetList()
		if l == nil || len(l.Items) != 2 {
			return nil, nil, false
		}
		lo, ok1 := numConst(l.Items[0])
		hi, ok2 := numConst(l.Items[1])
		if !ok1 || !ok2 {
			return nil, nil, false
		}
		if x.Kind == pg_query.A_Expr_Kind_AEXPR_BETWEEN_SYM && lo.Cmp(hi) > 0 {
			lo, hi = hi, lo
		}
		if pos {
			return x.Lexpr, []interval{{lo: lo, hi: hi, loIn: true, hiIn: true}}, true
		}
		return x.Lexpr, []interval{{hi: lo}, {lo: hi}}, true
	case pg_query.A_Expr_Kind_AEXPR_IN:
		items := x.Rexpr.GetList()
		if items == nil {
			return nil, nil, false
		}
		var pts []*big.Rat
		for _, it := range items.Items {
			if c, ok := constValue(it); ok && c.null {
				if !pos {
					return x.Lexpr, nil, true // NOT IN (..., NULL) is never true
				}
				continue
			}
			c, ok := numConst(it)
			if !ok {
				return nil, nil, false
			}
			pts = append(pts, c)
		}
		var ivs []interval
		if pos {
			for _, p := range pts {
				ivs = append(ivs, interval{lo: p, hi: p, loIn: true, hiIn: true})
			}
			return x.Lexpr, ivs, true
		}
		slices.SortFunc(pts, func(a, b *big.Rat) int { return a.Cmp(b) })
		var prev *big.Rat
		for _, p := range pts {
			ivs = append(ivs, interval{lo: prev, hi: p})
			prev = p
		}
		return x.Lexpr, append(ivs, interval{lo: prev}), true
	}
	return nil, nil, false
}

// coversLine reports whether the intervals' union is every number.
func coversLine(ivs []interval) bool {
	live := make([]interval, 0, len(ivs))
	for _, iv := range ivs {
		if iv.lo != nil && iv.hi != nil {
			if c := iv.lo.Cmp(iv.hi); c > 0 || c == 0 && !(iv.loIn && iv.hiIn) {
				continue // empty
			}
		}
		live = append(live, iv)
	}
	slices.SortFunc(live, func(a, b interval) int {
		switch {
		case a.lo == nil && b.lo == nil:
			return 0
		case a.lo == nil:
			return -1
		case b.lo == nil:
			return 1
		}
		if c := a.lo.Cmp(b.lo); c != 0 {
			return c
		}
		switch {
		case a.loIn == b.loIn:
			return 0
		case a.loIn:
			return -1
		}
		return 1
	})
	if len(live) == 0 || live[0].lo != nil {
		return false
	}
	// Covered from -inf up to cur (cur itself if curIn).
	var cur *big.Rat
	curIn, started := false, false
	for _, iv := range live {
		if started && iv.lo != nil {
			if c := iv.lo.Cmp(cur); c > 0 || c == 0 && !iv.loIn && !curIn {
				return false // a gap that no later interval can fill
			}
		}
		if iv.hi == nil {
			return true
		}
		if !started {
			cur, curIn, started = iv.hi, iv.hiIn, true
			continue
		}
		if c := iv.hi.Cmp(cur); c > 0 {
			cur, curIn = iv.hi, iv.hiIn
		} else if c == 0 {
			curIn = curIn || iv.hiIn
		}
	}
	return false
}
