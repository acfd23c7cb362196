package sqlpolicy

import (
	"strings"
	"sync"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/bastion-dev/bastion/policy"
)

// Verdict is Classify(sql).Result, for a proxy that judges every
// statement of a session. Besides the exact-text cache it remembers
// verdicts by shape: the text with the value of each literal blanked out,
// so that "... WHERE aid = 48601" and "... WHERE aid = 7" (pgbench, and
// any client that inlines its values) are judged once.
//
// A verdict is kept by shape only when the literals provably cannot change
// it, which takes two things:
//
//   - shapeKey accepts only text whose tokens it reads exactly as
//     Postgres does: ASCII, short integers, plain quoted strings, no
//     comments, dollar quotes, escapes, casts or parameters. Two texts with
//     one key then differ only in literal values, and the parser builds the
//     same tree for both, values aside.
//   - literalFree accepts only trees in which the rules never look at a
//     literal's value: SELECT, INSERT, UPDATE and DELETE built from
//     columns, operators and constants, without function calls, casts,
//     subqueries or CTEs; in the WHERE of an UPDATE or DELETE, where
//     constant folding (WHERE 1 = 1) decides the verdict, only comparisons
//     of a column with a constant or a column.
//
// And only an allow is kept: any other verdict is judged afresh every time.
func (c *Classifier) Verdict(sql string) policy.Result {
	if c == nil || c.shapes == nil {
		return c.Classify(sql).Result
	}
	if r, ok := c.seen.result(sql); ok {
		return r
	}
	key, keyed := shapeKey(sql)
	if keyed {
		if r, hit := c.shapes.get(key); hit {
			return r
		}
	}
	out, tree := c.classifyTree(sql)
	if keyed && out.Decision == policy.Allow && tree != nil && literalFree(tree) {
		c.shapes.put(key, out.Result)
	} else {
		c.seen.put(sql, out)
	}
	return out.Result
}

// shapes remembers allow verdicts by shape key, bounded like verdicts.
type shapes struct {
	mu    sync.RWMutex
	m     map[string]policy.Result
	bytes int
}

func (s *shapes) get(key string) (policy.Result, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.m[key]
	return r, ok
}

func (s *shapes) put(key string, r policy.Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil || s.bytes+len(key) > cacheMaxBytes {
		s.m, s.bytes = make(map[string]policy.Result), 0
	}
	s.m[key] = r
	s.bytes += len(key)
}

// shapeMaxText is the longest text shapeKey reads.
const shapeMaxText = 4 << 10

// shapeKey returns sql with every integer literal written as 0 and every
// string literal as an empty string, or false when sql holds anything it
// does not read exactly as the Postgres lexer does. What it accepts: ASCII
// letters, digits and _ (keywords and identifiers, kept as they are),
// integers of up to nine digits (always an int4 constant), strings in
// single quotes with doubled quotes inside and no backslash, whitespace,
// and the punctuation ( ) , ; . * = < > + - / % in any sequence (except
// the comment starts -- and /*). Everything else
// (comments, dollar quotes, prefixed strings such as E'...', quoted
// identifiers, decimals and exponents, casts, $n parameters, non-ASCII
// bytes) is refused.
func shapeKey(sql string) (string, bool) {
	if len(sql) > shapeMaxText {
		return "", false
	}
	var b strings.Builder
	b.Grow(len(sql))
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case isIdentByte(c) && !isDigit(c):
			j := i + 1
			for j < len(sql) && isIdentByte(sql[j]) {
				j++
			}
			if j < len(sql) && sql[j] == '\'' {
				return "", false // E'...', B'...', X'...', N'...'
			}
			b.WriteString(sql[i:j])
			i = j
		case isDigit(c):
			if i > 0 && sql[i-1] == '.' {
				return "", false // .5 is a decimal
			}
			j := i + 1
			for j < len(sql) && isDigit(sql[j]) {
				j++
			}
			if j-i > 9 || j < len(sql) && (isIdentByte(sql[j]) || sql[j] == '.') {
				return "", false // int8 or numeric, 1e5, 0x1F, 1_000, 1.5, 1a
			}
			b.WriteByte('0')
			i = j
		case c == '\'':
			j := i + 1
			for {
				if j >= len(sql) {
					return "", false // unterminated
				}
				d := sql[j]
				if d == '\'' {
					if j+1 < len(sql) && sql[j+1] == '\'' {
						j += 2
						continue
					}
					break
				}
				if d == '\\' || d >= 0x80 || d < 0x20 && d != '\t' && d != '\n' && d != '\r' {
					return "", false
				}
				j++
			}
			b.WriteString("''")
			i = j + 1
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			b.WriteByte(c)
			i++
		case strings.IndexByte("(),;.*=<>+-/%", c) >= 0:
			if i+1 < len(sql) && (c == '-' && sql[i+1] == '-' || c == '/' && sql[i+1] == '*') {
				return "", false // a comment
			}
			b.WriteByte(c)
			i++
		default:
			return "", false
		}
	}
	return b.String(), true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isIdentByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || isDigit(c)
}

// literalFree reports whether the rules' verdict on tree cannot depend on
// the value of any constant in it (see Verdict).
func literalFree(tree *pg_query.ParseResult) bool {
	for _, raw := range tree.Stmts {
		n := raw.Stmt
		var where *pg_query.Node
		switch s := n.GetNode().(type) {
		case *pg_query.Node_SelectStmt, *pg_query.Node_InsertStmt:
		case *pg_query.Node_UpdateStmt:
			where = s.UpdateStmt.WhereClause
		case *pg_query.Node_DeleteStmt:
			where = s.DeleteStmt.WhereClause
		default:
			return false
		}
		if where != nil && !plainWhere(where) || !plainTree(n) {
			return false
		}
	}
	return true
}

// plainTree reports whether every node under n is one whose handling by
// the rules never reads a constant's value.
func plainTree(n *pg_query.Node) bool {
	ok := true
	walkNode(n, func(m protoreflect.Message) bool {
		switch v := m.Interface().(type) {
		case *pg_query.Node, *pg_query.SelectStmt, *pg_query.InsertStmt, *pg_query.UpdateStmt, *pg_query.DeleteStmt,
			*pg_query.ResTarget, *pg_query.ColumnRef, *pg_query.String, *pg_query.A_Star, *pg_query.RangeVar,
			*pg_query.Alias, *pg_query.BoolExpr, *pg_query.SortBy, *pg_query.List, *pg_query.NullTest,
			*pg_query.JoinExpr, *pg_query.Integer, *pg_query.Boolean:
		case *pg_query.SQLValueFunction:
			// CURRENT_TIMESTAMP(3) keeps its literal in typmod; -1 is
			// the form without one.
			ok = v.Typmod == -1
		case *pg_query.A_Const:
			switch v.Val.(type) {
			case nil, *pg_query.A_Const_Ival, *pg_query.A_Const_Sval, *pg_query.A_Const_Boolval:
			default:
				ok = false
			}
		case *pg_query.A_Expr:
			ok = ok && (v.Kind == pg_query.A_Expr_Kind_AEXPR_OP || v.Kind == pg_query.A_Expr_Kind_AEXPR_IN)
		default:
			ok = false
		}
		return ok
	})
	return ok
}

// plainWhere reports whether a WHERE is only ANDs of comparisons of a
// column with a constant or another column, IN lists of constants, and IS
// [NOT] NULL on a column: restricts then judges it by which columns it
// reads, never by a constant's value. An OR or a NOT is not plain: whether
// its arms together cover every row depends on their constants (a = 1 OR
// a <> 1 does, a = 1 OR a <> 2 does not; a > 3 OR a < 7 does, a > 7 OR
// a < 3 does not).
func plainWhere(e *pg_query.Node) bool {
	switch v := e.GetNode().(type) {
	case *pg_query.Node_BoolExpr:
		if v.BoolExpr.Boolop != pg_query.BoolExprType_AND_EXPR {
			return false
		}
		for _, a := range v.BoolExpr.Args {
			if !plainWhere(a) {
				return false
			}
		}
		return true
	case *pg_query.Node_NullTest:
		return v.NullTest.Arg.GetColumnRef() != nil
	case *pg_query.Node_AExpr:
		x := v.AExpr
		l, r := x.Lexpr, x.Rexpr
		switch x.Kind {
		case pg_query.A_Expr_Kind_AEXPR_OP:
			if _, cmp := negatedOp[stringList(x.Name, false)]; !cmp {
				return false
			}
			if l.GetColumnRef() == nil {
				l, r = r, l
			}
			return l.GetColumnRef() != nil && (r.GetColumnRef() != nil || plainConst(r))
		case pg_query.A_Expr_Kind_AEXPR_IN:
			items := r.GetList()
			if l.GetColumnRef() == nil || items == nil {
				return false
			}
			for _, it := range items.Items {
				if !plainConst(it) {
					return false
				}
			}
			return true
		}
	}
	return false
}

// plainConst is a non-null integer or string constant.
func plainConst(n *pg_query.Node) bool {
	c := n.GetAConst()
	if c == nil || c.Isnull {
		return false
	}
	switch c.Val.(type) {
	case *pg_query.A_Const_Ival, *pg_query.A_Const_Sval:
		return true
	}
	return false
}
