package sqlpolicy

// Queries and data changes: SELECT, INSERT, DELETE, UPDATE, MERGE, COPY,
// EXPLAIN.

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func (a *analysis) selectStmt(s *pg_query.SelectStmt) bool {
	k := "SELECT"
	if len(s.ValuesLists) > 0 {
		k = "VALUES"
	}
	into := s.IntoClause
	for l := s; into == nil && l != nil; l = l.Larg {
		into = l.IntoClause
	}
	a.reads = true
	if into != nil {
		a.writes = true
		a.base(a.enter("SELECT INTO"), "sql-create", "SELECT INTO", "SELECT INTO "+rangeVarName(into.Rel), rvRaw(into.Rel)...)
		return true
	}
	a.base(a.enter(k), "sql-read", k, k)
	a.readIdx = len(a.findings)
	return true
}

func (a *analysis) insertStmt(s *pg_query.InsertStmt) {
	root := a.enter("INSERT")
	a.writes = true
	a.reads = a.reads || root && len(s.ReturningList) > 0
	a.base(root, "sql-write", "INSERT", "INSERT INTO "+rangeVarName(s.Relation), rvRaw(s.Relation)...)
}

func (a *analysis) deleteStmt(s *pg_query.DeleteStmt) {
	root := a.enter("DELETE")
	a.writes = true
	a.reads = a.reads || root && len(s.ReturningList) > 0
	a.dml(root, "DELETE", "DELETE FROM "+rangeVarName(s.Relation), "sql-unrestricted-delete", s.WhereClause, s.Relation, s.UsingClause, s.WithClause)
}

func (a *analysis) updateStmt(s *pg_query.UpdateStmt) {
	root := a.enter("UPDATE")
	a.writes = true
	a.reads = a.reads || root && len(s.ReturningList) > 0
	a.dml(root, "UPDATE", "UPDATE "+rangeVarName(s.Relation), "sql-unrestricted-update", s.WhereClause, s.Relation, s.FromClause, s.WithClause)
}

// dml judges a DELETE or UPDATE by its WHERE clause; from is its USING
// (DELETE) or FROM (UPDATE) list.
func (a *analysis) dml(root bool, kind, detail, unrestricted string, where *pg_query.Node, rel *pg_query.RangeVar, from []*pg_query.Node, with *pg_query.WithClause) {
	switch v := whereRestricts(where, newTarget(rel, from, with)); {
	case v == restricting:
		a.base(root, "sql-write", kind, detail, rvRaw(rel)...)
	case where == nil:
		a.flag(unrestricted, kind, detail+" has no WHERE clause", rvRaw(rel))
	case v == tooComplex:
		a.flag(unrestricted, kind, detail+" has a WHERE clause too complex to check", rvRaw(rel))
	default:
		a.flag(unrestricted, kind, detail+" has a WHERE clause that holds for every row", rvRaw(rel))
	}
}

func (a *analysis) merge(s *pg_query.MergeStmt) {
	root := a.enter("MERGE")
	a.writes = true
	var from []*pg_query.Node
	if s.SourceRelation != nil {
		from = []*pg_query.Node{s.SourceRelation}
	}
	t := newTarget(s.Relation, from, s.WithClause)
	onRestricts := restricts(s.JoinCondition, t)
	detail := "MERGE INTO " + rangeVarName(s.Relation)
	for _, n := range s.MergeWhenClauses {
		w := n.GetMergeWhenClause()
		if w == nil {
			continue
		}
		rule, verb := "", ""
		switch w.CommandType {
		case pg_query.CmdType_CMD_DELETE:
			rule, verb = "sql-unrestricted-delete", "DELETE"
		case pg_query.CmdType_CMD_UPDATE:
			rule, verb = "sql-unrestricted-update", "UPDATE"
		default:
			continue
		}
		if restricts(w.Condition, t) {
			continue
		}
		switch w.MatchKind {
		case pg_query.MergeMatchKind_MERGE_WHEN_MATCHED:
			if !onRestricts {
				a.flag(rule, "MERGE", detail+" WHEN MATCHED THEN "+verb+" with an ON condition that holds for every row", rvRaw(s.Relation))
			}
		case pg_query.MergeMatchKind_MERGE_WHEN_NOT_MATCHED_BY_SOURCE:
			a.flag(rule, "MERGE", detail+" WHEN NOT MATCHED BY SOURCE THEN "+verb+" without a condition", rvRaw(s.Relation))
		}
	}
	a.base(root, "sql-write", "MERGE", detail, rvRaw(s.Relation)...)
}

func (a *analysis) copyStmt(s *pg_query.CopyStmt) {
	root := a.enter("COPY")
	what := rangeVarName(s.Relation)
	if s.Relation == nil {
		what = "(query)"
	}
	dir := " TO "
	if s.IsFrom {
		dir = " FROM "
	}
	if s.IsFrom {
		a.writes = true
	} else {
		a.reads = true
	}
	switch {
	case s.IsProgram:
		a.flag("sql-copy-program", "COPY", "COPY "+what+dir+"PROGRAM "+quoteLiteral(truncate(s.Filename, 60)), rvRaw(s.Relation))
	case s.Filename != "":
		a.flag("sql-server-file", "COPY", "COPY "+what+dir+quoteLiteral(truncate(s.Filename, 60)), rvRaw(s.Relation))
	case s.IsFrom:
		a.base(root, "sql-write", "COPY", "COPY "+what+" FROM STDIN", rvRaw(s.Relation)...)
	default:
		a.base(root, "sql-read", "COPY", "COPY "+what+" TO STDOUT", rvRaw(s.Relation)...)
	}
}

// explain: plain EXPLAIN only plans, so nothing under it runs; EXPLAIN
// ANALYZE runs its statement and is judged as that statement.
func (a *analysis) explain(s *pg_query.ExplainStmt) bool {
	analyze := false
	for _, o := range s.Options {
		if d := o.GetDefElem(); d != nil && strings.EqualFold(d.Defname, "analyze") {
			analyze = defElemTrue(d)
		}
	}
	a.reads = true
	if !analyze {
		a.base(a.enter("EXPLAIN"), "sql-explain", "EXPLAIN", "EXPLAIN")
		return false
	}
	a.base(a.enter("EXPLAIN ANALYZE"), "sql-read", "EXPLAIN ANALYZE", "EXPLAIN ANALYZE")
	a.readIdx = len(a.findings)
	return true
}

// defElemTrue reads a boolean option the way Postgres's defGetBoolean does;
// anything it cannot read counts as true (fail closed for ANALYZE, FULL).
func defElemTrue(d *pg_query.DefElem) bool {
	if d.Arg == nil {
		return true
	}
	switch v := d.Arg.Node.(type) {
	case *pg_query.Node_String_:
		if b, ok := parseBool(v.String_.Sval); ok {
			return b
		}
	case *pg_query.Node_Integer:
		return v.Integer.Ival != 0
	case *pg_query.Node_Boolean:
		return v.Boolean.Boolval
	case *pg_query.Node_AConst:
		if c, ok := constValue(d.Arg); ok {
			return c.truth() != tFalse
		}
	}
	return true
}
