package sqlpolicy

// Statements that change privileges, ownership and roles: GRANT, REVOKE,
// ALTER DEFAULT PRIVILEGES, OWNER TO, REASSIGN OWNED, row-level security
// policies, CREATE/ALTER ROLE, and the per-role and per-database settings.

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func (a *analysis) grant(s *pg_query.GrantStmt) {
	k, prep := "GRANT", " TO "
	if !s.IsGrant {
		k, prep = "REVOKE", " FROM "
	}
	privs := make([]string, 0, len(s.Privileges))
	for _, p := range s.Privileges {
		if ap := p.GetAccessPriv(); ap != nil {
			privs = append(privs, strings.ToUpper(ap.PrivName))
		}
	}
	if len(privs) == 0 {
		privs = []string{"ALL"}
	}
	on := objectTypeName(s.Objtype) + " " + objectNames(s.Objects)
	if s.Targtype == pg_query.GrantTargetType_ACL_TARGET_ALL_IN_SCHEMA {
		on = "ALL " + objectTypeName(s.Objtype) + "S IN SCHEMA " + objectNames(s.Objects)
	}
	var tables []string
	if s.Objtype == pg_query.ObjectType_OBJECT_TABLE && s.Targtype == pg_query.GrantTargetType_ACL_TARGET_OBJECT {
		tables = rvListRaw(s.Objects)
	}
	a.writes = true
	a.base(a.enter(k), "sql-privilege", k, k+" "+strings.Join(privs, ", ")+" ON "+on+prep+roleNames(s.Grantees), tables...)
}

// grantRole is GRANT or REVOKE of role membership.
func (a *analysis) grantRole(s *pg_query.GrantRoleStmt) {
	k, prep := "GRANT", " TO "
	if !s.IsGrant {
		k, prep = "REVOKE", " FROM "
	}
	a.writes = true
	a.base(a.enter(k), "sql-privilege", k, k+" "+objectNames(s.GrantedRoles)+prep+roleNames(s.GranteeRoles))
}

func (a *analysis) alterDefaultPrivileges() {
	a.writes = true
	a.base(a.enter("ALTER DEFAULT PRIVILEGES"), "sql-privilege", "ALTER DEFAULT PRIVILEGES", "ALTER DEFAULT PRIVILEGES")
}

func (a *analysis) alterOwner(s *pg_query.AlterOwnerStmt) {
	k := "ALTER " + objectTypeName(s.ObjectType)
	a.writes = true
	a.base(a.enter(k), "sql-privilege", k, k+" "+ownedName(s.Relation, s.Object)+" OWNER TO "+roleName(s.Newowner), rvRaw(s.Relation)...)
}

func (a *analysis) reassignOwned(s *pg_query.ReassignOwnedStmt) {
	a.writes = true
	a.base(a.enter("REASSIGN OWNED"), "sql-privilege", "REASSIGN OWNED", "REASSIGN OWNED BY "+roleNames(s.Roles)+" TO "+roleName(s.Newrole))
}

func (a *analysis) createPolicy(s *pg_query.CreatePolicyStmt) {
	a.writes = true
	a.base(a.enter("CREATE POLICY"), "sql-privilege", "CREATE POLICY", "CREATE POLICY "+quoteIdent(s.PolicyName)+" ON "+rangeVarName(s.Table), rvRaw(s.Table)...)
}

func (a *analysis) alterPolicy(s *pg_query.AlterPolicyStmt) {
	a.writes = true
	a.base(a.enter("ALTER POLICY"), "sql-privilege", "ALTER POLICY", "ALTER POLICY "+quoteIdent(s.PolicyName)+" ON "+rangeVarName(s.Table), rvRaw(s.Table)...)
}

// createRole covers CREATE ROLE, USER and GROUP; the kind says which.
func (a *analysis) createRole(s *pg_query.CreateRoleStmt) {
	k := "CREATE " + strings.TrimPrefix(s.StmtType.String(), "ROLESTMT_")
	a.writes = true
	a.base(a.enter(k), "sql-role", k, k+" "+quoteIdent(s.Role))
}

func (a *analysis) alterRole(s *pg_query.AlterRoleStmt) {
	a.writes = true
	a.base(a.enter("ALTER ROLE"), "sql-role", "ALTER ROLE", "ALTER ROLE "+roleName(s.Role))
}

// alterRoleSet is ALTER ROLE ... SET: the setting is judged as well, as it
// would be by SET (nestedSet).
func (a *analysis) alterRoleSet(s *pg_query.AlterRoleSetStmt) {
	detail := "ALTER ROLE " + roleName(s.Role)
	if s.Role == nil {
		detail = "ALTER ROLE ALL"
	}
	if s.Setstmt != nil {
		detail += " " + setDetail(s.Setstmt)
	}
	a.writes = true
	a.base(a.enter("ALTER ROLE"), "sql-role", "ALTER ROLE", detail)
	a.nestedSet(s.Setstmt, "ALTER ROLE", detail)
}

// alterDatabaseSet is ALTER DATABASE ... SET, judged like alterRoleSet.
func (a *analysis) alterDatabaseSet(s *pg_query.AlterDatabaseSetStmt) {
	detail := "ALTER DATABASE " + quoteIdent(s.Dbname)
	if s.Setstmt != nil {
		detail += " " + setDetail(s.Setstmt)
	}
	a.writes = true
	a.base(a.enter("ALTER DATABASE"), "sql-ddl", "ALTER DATABASE", detail)
	a.nestedSet(s.Setstmt, "ALTER DATABASE", detail)
}
