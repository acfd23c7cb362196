package sqlpolicy

// Statements about the server, its files and table maintenance: ALTER
// SYSTEM, LOAD, CREATE TABLESPACE, CHECKPOINT, LOCK, VACUUM, ANALYZE,
// REINDEX, CLUSTER and REFRESH MATERIALIZED VIEW.

import (
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func (a *analysis) alterSystem(s *pg_query.AlterSystemStmt) {
	a.enter("ALTER SYSTEM")
	a.writes = true
	detail := "ALTER SYSTEM"
	if set := s.Setstmt; set != nil {
		detail += " " + setDetail(set)
	}
	a.flag("sql-alter-system", "ALTER SYSTEM", detail, nil)
}

func (a *analysis) load(s *pg_query.LoadStmt) {
	a.enter("LOAD")
	a.flag("sql-server-file", "LOAD", "LOAD "+strconv.Quote(s.Filename)+" loads a library from the server's disk", nil)
}

func (a *analysis) createTablespace(s *pg_query.CreateTableSpaceStmt) {
	a.enter("CREATE TABLESPACE")
	a.writes = true
	a.flag("sql-server-file", "CREATE TABLESPACE", "CREATE TABLESPACE "+quoteIdent(s.Tablespacename)+" LOCATION "+quoteLiteral(s.Location), nil)
}

func (a *analysis) checkpoint() {
	a.base(a.enter("CHECKPOINT"), "sql-admin", "CHECKPOINT", "CHECKPOINT")
}

func (a *analysis) lock(s *pg_query.LockStmt) {
	a.base(a.enter("LOCK"), "sql-lock", "LOCK", "LOCK TABLE "+objectNames(s.Relations), rvListRaw(s.Relations)...)
}

// vacuum: VACUUM and ANALYZE are allowed; VACUUM FULL rewrites the table
// under an exclusive lock.
func (a *analysis) vacuum(s *pg_query.VacuumStmt) {
	k := "ANALYZE"
	if s.IsVacuumcmd {
		k = "VACUUM"
	}
	full := false
	for _, o := range s.Options {
		if d := o.GetDefElem(); d != nil && strings.EqualFold(d.Defname, "full") {
			full = defElemTrue(d)
		}
	}
	var names, tables []string
	for _, r := range s.Rels {
		if vr := r.GetVacuumRelation(); vr != nil && vr.Relation != nil {
			names = append(names, rangeVarName(vr.Relation))
			tables = append(tables, rvRaw(vr.Relation)...)
		}
	}
	detail := strings.TrimSpace(k + " " + strings.Join(names, ", "))
	if full && s.IsVacuumcmd {
		a.writes = true
		a.base(a.enter("VACUUM FULL"), "sql-maintenance", "VACUUM FULL", strings.Replace(detail, "VACUUM", "VACUUM FULL", 1), tables...)
		return
	}
	a.base(a.enter(k), "sql-vacuum", k, detail, tables...)
}

func (a *analysis) reindex(s *pg_query.ReindexStmt) {
	what := strings.TrimPrefix(s.Kind.String(), "REINDEX_OBJECT_")
	name := rangeVarName(s.Relation)
	if name == "" {
		name = quoteIdent(s.Name)
	}
	a.writes = true
	a.base(a.enter("REINDEX"), "sql-maintenance", "REINDEX", "REINDEX "+what+" "+name, rvRaw(s.Relation)...)
}

func (a *analysis) cluster(s *pg_query.ClusterStmt) {
	a.writes = true
	a.base(a.enter("CLUSTER"), "sql-maintenance", "CLUSTER", strings.TrimSpace("CLUSTER "+rangeVarName(s.Relation)), rvRaw(s.Relation)...)
}

func (a *analysis) refreshMatView(s *pg_query.RefreshMatViewStmt) {
	a.writes = true
	a.base(a.enter("REFRESH MATERIALIZED VIEW"), "sql-write", "REFRESH MATERIALIZED VIEW", "REFRESH MATERIALIZED VIEW "+rangeVarName(s.Relation), rvRaw(s.Relation)...)
}
