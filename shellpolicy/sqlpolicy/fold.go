package sqlpolicy

// Constant folding: literals seen through exact casts, compared where the
// result is certain.

import (
	"math/big"
	"regexp"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// constant is a folded literal.
type constant struct {
	null  bool
	kind  byte // 'b' bool, 'n' number, 's' string
	b     bool
	n     *big.Rat
	s     string
	isStr bool // the literal was a quoted string (its type is still unknown)
}

// constValue folds a literal, seen through casts: 't'::boolean, '1'::int,
// 1::boolean and NULL::text are constants. Only casts whose result is
// exact are folded; a cast that rounds or truncates (1.5::int,
// 'abc'::char(5), 'x'::varchar(1), 0.1::float4) or a bit string makes the
// value unknown, which is never judged restricting.
func constValue(e *pg_query.Node) (constant, bool) {
	var casts []*pg_query.TypeName
	for e.GetTypeCast() != nil {
		tc := e.GetTypeCast()
		casts = append(casts, tc.TypeName)
		e = tc.Arg
	}
	a := e.GetAConst()
	if a == nil {
		return constant{}, false
	}
	if a.Isnull {
		return constant{null: true}, true
	}
	var c constant
	switch v := a.Val.(type) {
	case *pg_query.A_Const_Boolval:
		c = constant{kind: 'b', b: v.Boolval.Boolval}
	case *pg_query.A_Const_Ival:
		c = constant{kind: 'n', n: new(big.Rat).SetInt64(int64(v.Ival.Ival))}
	case *pg_query.A_Const_Fval:
		r, ok := new(big.Rat).SetString(v.Fval.Fval)
		if !ok {
			return constant{}, false
		}
		c = constant{kind: 'n', n: r}
	case *pg_query.A_Const_Sval:
		c = constant{kind: 's', s: v.Sval.Sval, isStr: true}
	default:
		return constant{}, false
	}
	// The innermost cast applies first.
	for i := len(casts) - 1; i >= 0; i-- {
		var ok bool
		if c, ok = castConst(c, casts[i]); !ok {
			return constant{}, false
		}
	}
	return c, true
}

// Strings cast to numbers are folded only in plain decimal notation, read
// the same by Postgres and math/big.
var (
	intText     = regexp.MustCompile(`^\s*[+-]?[0-9]+\s*$`)
	decimalText = regexp.MustCompile(`^\s*[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?\s*$`)
)

func castConst(c constant, tn *pg_query.TypeName) (constant, bool) {
	if tn == nil || len(tn.Names) == 0 || len(tn.Typmods) > 0 || len(tn.ArrayBounds) > 0 {
		return c, false
	}
	switch tn.Names[len(tn.Names)-1].GetString_().GetSval() {
	case "bool", "boolean":
		switch c.kind {
		case 's':
			b, ok := parseBool(c.s)
			return constant{kind: 'b', b: b}, ok
		case 'n':
			return constant{kind: 'b', b: c.n.Sign() != 0}, c.n.IsInt()
		}
		return c, c.kind == 'b'
	case "int2", "int4", "int8", "integer", "smallint", "bigint":
		if c.kind == 's' {
			if !intText.MatchString(c.s) {
				return c, false
			}
			r, _ := new(big.Rat).SetString(strings.TrimSpace(c.s))
			c = constant{kind: 'n', n: r}
		}
		return c, c.kind == 'n' && c.n.IsInt()
	case "numeric", "decimal":
		if c.kind == 's' {
			if !decimalText.MatchString(c.s) {
				return c, false
			}
			r, _ := new(big.Rat).SetString(strings.TrimSpace(c.s))
			c = constant{kind: 'n', n: r}
		}
		return c, c.kind == 'n'
	case "text":
		c.isStr = false
		return c, c.kind == 's'
	}
	return c, false
}

// truth is the constant used as a whole condition.
func (c constant) truth() truth {
	switch {
	case c.null:
		return tNull
	case c.kind == 'b':
		if c.b {
			return tTrue
		}
		return tFalse
	case c.kind == 's' && c.isStr:
		// WHERE 'yes' is a boolean literal to Postgres.
		if b, ok := parseBool(c.s); ok {
			if b {
				return tTrue
			}
			return tFalse
		}
	}
	return tIndep
}

// compare folds a comparison of two constants. Only what is certain is
// folded: string ordering depends on the collation, so it stays tIndep
// (which is still "not restricting").
func compare(l, r constant, op string) truth {
	if l.null || r.null {
		return tNull
	}
	var c int
	switch {
	case l.kind == 'n' && r.kind == 'n':
		c = l.n.Cmp(r.n)
	case l.kind == 'b' && r.kind == 'b':
		c = boolCmp(l.b, r.b)
	case l.kind == 's' && r.kind == 's':
		if op != "=" && op != "<>" {
			return tIndep
		}
		c = strings.Compare(l.s, r.s)
	default:
		return tIndep
	}
	var ok bool
	switch op {
	case "=":
		ok = c == 0
	case "<>":
		ok = c != 0
	case "<":
		ok = c < 0
	case "<=":
		ok = c <= 0
	case ">":
		ok = c > 0
	case ">=":
		ok = c >= 0
	default:
		return tIndep
	}
	if ok {
		return tTrue
	}
	return tFalse
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

// parseBool accepts what Postgres's boolin accepts: unique prefixes of
// true/false/yes/no, on/off, 1/0, any case, surrounding space ignored.
func parseBool(s string) (bool, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return false, false
	}
	switch {
	case strings.HasPrefix("true", s), strings.HasPrefix("yes", s), s == "on", s == "1":
		return true, true
	case strings.HasPrefix("false", s), strings.HasPrefix("no", s), s == "off", s == "of", s == "0":
		return false, true
	}
	return false, false
}
