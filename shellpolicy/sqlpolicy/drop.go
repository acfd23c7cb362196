package sqlpolicy

// Statements that destroy objects or empty tables: DROP in all its forms
// and TRUNCATE. Each is a flag (never the weak baseline), so no other
// finding of the statement speaks over it.

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func (a *analysis) drop(s *pg_query.DropStmt) {
	k := "DROP " + objectTypeName(s.RemoveType)
	a.enter(k)
	a.writes = true
	var tables []string
	for _, o := range s.Objects {
		if l := o.GetList(); l != nil && isRelation(s.RemoveType) {
			tables = append(tables, stringList(l.Items, false))
		}
	}
	a.flag("sql-drop", k, k+" "+objectNames(s.Objects), tables)
}

func (a *analysis) dropDatabase(s *pg_query.DropdbStmt) {
	a.enter("DROP DATABASE")
	a.writes = true
	a.flag("sql-drop", "DROP DATABASE", "DROP DATABASE "+quoteIdent(s.Dbname), nil)
}

func (a *analysis) dropRole(s *pg_query.DropRoleStmt) {
	a.enter("DROP ROLE")
	a.writes = true
	a.flag("sql-drop", "DROP ROLE", "DROP ROLE "+roleNames(s.Roles), nil)
}

func (a *analysis) dropOwned(s *pg_query.DropOwnedStmt) {
	a.enter("DROP OWNED")
	a.writes = true
	a.flag("sql-drop", "DROP OWNED", "DROP OWNED BY "+roleNames(s.Roles), nil)
}

func (a *analysis) dropTablespace(s *pg_query.DropTableSpaceStmt) {
	a.enter("DROP TABLESPACE")
	a.writes = true
	a.flag("sql-drop", "DROP TABLESPACE", "DROP TABLESPACE "+quoteIdent(s.Tablespacename), nil)
}

func (a *analysis) dropSubscription(s *pg_query.DropSubscriptionStmt) {
	a.enter("DROP SUBSCRIPTION")
	a.writes = true
	a.flag("sql-drop", "DROP SUBSCRIPTION", "DROP SUBSCRIPTION "+quoteIdent(s.Subname), nil)
}

func (a *analysis) dropUserMapping(s *pg_query.DropUserMappingStmt) {
	a.enter("DROP USER MAPPING")
	a.writes = true
	a.flag("sql-drop", "DROP USER MAPPING", "DROP USER MAPPING FOR "+roleName(s.User)+" SERVER "+quoteIdent(s.Servername), nil)
}

func (a *analysis) truncateStmt(s *pg_query.TruncateStmt) {
	a.enter("TRUNCATE")
	a.writes = true
	a.flag("sql-truncate", "TRUNCATE", "TRUNCATE "+objectNames(s.Relations), rvListRaw(s.Relations))
}

// isRelation reports whether a DROP of this type names relations, whose
// names a scoped sql-drop override matches as tables.
func isRelation(t pg_query.ObjectType) bool {
	switch t {
	case pg_query.ObjectType_OBJECT_TABLE, pg_query.ObjectType_OBJECT_VIEW, pg_query.ObjectType_OBJECT_MATVIEW,
		pg_query.ObjectType_OBJECT_FOREIGN_TABLE, pg_query.ObjectType_OBJECT_SEQUENCE, pg_query.ObjectType_OBJECT_INDEX:
		return true
	}
	return false
}
