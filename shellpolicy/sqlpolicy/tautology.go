package sqlpolicy

// Conditions true for every row by construction, beyond constant folding:
// patterns that match everything, IN and BETWEEN read as the comparisons
// they are, CASE and coalesce, and ORs whose arms together cover every
// value. See restricts for the whole list.

import (
	"hash/fnv"
	"math/big"
	"slices"
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
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

// sameExprIn is sameExpr for two expressions of a condition on t: a column
// written without a table (outside a subquery) is t's column, so id and
// t.id are the same.
func sameExprIn(a, b *pg_query.Node, t target) bool {
	if a == nil || b == nil {
		return a == b
	}
	if !t.spend(1) {
		return false
	}
	n := 0
	same := sameMessageIn(a.ProtoReflect(), b.ProtoReflect(), t.name, false, &n)
	t.spend(n)
	return same
}

var (
	columnRefDescriptor  = (&pg_query.ColumnRef{}).ProtoReflect().Descriptor()
	selectStmtDescriptor = (&pg_query.SelectStmt{}).ProtoReflect().Descriptor()
)

// columnName is a column reference's qualifier and name, the qualifier
// filled in with tname for an unqualified column outside subqueries.
func columnName(c *pg_query.ColumnRef, tname string, inSub bool) (q, col string, ok bool) {
	f := c.Fields
	if len(f) == 0 || f[len(f)-1].GetString_() == nil {
		return "", "", false
	}
	col = f[len(f)-1].GetString_().GetSval()
	switch {
	case len(f) == 1 && !inSub && tname != "":
		return tname, col, true
	case len(f) == 2 && f[0].GetString_() != nil:
		return f[0].GetString_().GetSval(), col, true
	}
	return "", "", false
}

func sameMessageIn(a, b protoreflect.Message, tname string, inSub bool, n *int) bool {
	*n++
	d := a.Descriptor()
	if d != b.Descriptor() || a.IsValid() != b.IsValid() {
		return false
	}
	if d == nodeDescriptor {
		// Straight to the member of the oneof that is set (see walk).
		ca, cb := nodeChild(a.Interface().(*pg_query.Node)), nodeChild(b.Interface().(*pg_query.Node))
		if ca == nil || cb == nil {
			return ca == nil && cb == nil
		}
		return sameMessageIn(ca, cb, tname, inSub, n)
	}
	if d == columnRefDescriptor && a.IsValid() {
		qa, ca, oka := columnName(a.Interface().(*pg_query.ColumnRef), tname, inSub)
		qb, cb, okb := columnName(b.Interface().(*pg_query.ColumnRef), tname, inSub)
		if oka && okb {
			return qa == qb && ca == cb
		}
	}
	if d == selectStmtDescriptor {
		inSub = true
	}
	fields := d.Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if fd.Name() == "location" || fd.Name() == "stmt_location" {
			continue
		}
		if fd.ContainingOneof() != nil && !a.Has(fd) && !b.Has(fd) {
			continue
		}
		if a.Has(fd) != b.Has(fd) {
			return false
		}
		isMsg := fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind
		va, vb := a.Get(fd), b.Get(fd)
		switch {
		case fd.IsList() && isMsg:
			la, lb := va.List(), vb.List()
			if la.Len() != lb.Len() {
				return false
			}
			for j := 0; j < la.Len(); j++ {
				if !sameMessageIn(la.Get(j).Message(), lb.Get(j).Message(), tname, inSub, n) {
					return false
				}
			}
		case isMsg && !fd.IsMap():
			if !sameMessageIn(va.Message(), vb.Message(), tname, inSub, n) {
				return false
			}
		default:
			if !sameValue(fd, va, vb) {
				return false
			}
		}
	}
	return true
}

// exprHash is a hash of e that sameExprIn-equal expressions share. The
// hashes of the nodes below a subquery-free level are remembered for the
// WHERE (arms of nested ORs are hashed again for each OR around them).
func exprHash(e *pg_query.Node, t target) uint64 {
	var hash func(m protoreflect.Message, inSub bool) uint64
	hash = func(m protoreflect.Message, inSub bool) uint64 {
		if !m.IsValid() {
			return 0
		}
		if t.st != nil && !inSub {
			if v, ok := t.st.hashes[m]; ok {
				return v
			}
		}
		d := m.Descriptor()
		if d == nodeDescriptor {
			c := nodeChild(m.Interface().(*pg_query.Node))
			if c == nil {
				return 0
			}
			return hash(c, inSub)
		}
		t.spend(1)
		h := fnv.New64a()
		var b []byte
		h.Write(append(b, d.FullName()...))
		if d == columnRefDescriptor {
			if q, c, ok := columnName(m.Interface().(*pg_query.ColumnRef), t.name, inSub); ok {
				h.Write([]byte(q))
				h.Write([]byte{0})
				h.Write([]byte(c))
				return h.Sum64()
			}
		}
		sub := inSub || d == selectStmtDescriptor
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			if fd.Name() == "location" || fd.Name() == "stmt_location" {
				return true
			}
			b = strconv.AppendInt(b[:0], int64(fd.Number()), 10)
			isMsg := fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind
			switch {
			case fd.IsList() && isMsg:
				for i := 0; i < v.List().Len(); i++ {
					b = strconv.AppendUint(append(b, ' '), hash(v.List().Get(i).Message(), sub), 16)
				}
			case isMsg && !fd.IsMap():
				b = strconv.AppendUint(append(b, ' '), hash(v.Message(), sub), 16)
			case fd.Kind() == protoreflect.StringKind && !fd.IsList():
				b = append(append(b, ' '), v.String()...)
			}
			h.Write(b)
			return true
		})
		v := h.Sum64()
		if t.st != nil && !inSub {
			if t.st.hashes == nil {
				t.st.hashes = map[protoreflect.Message]uint64{}
			}
			t.st.hashes[m] = v
		}
		return v
	}
	return hash(e.ProtoReflect(), false)
}
