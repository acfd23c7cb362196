package sqlpolicy

import (
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// finding is one thing a statement does that a rule judges. Its kind,
// tables and funcs are what a scoped override matches against.
type finding struct {
	rule   string   // built-in rule id
	detail string   // what was found, e.g. "DROP TABLE users"
	kind   string   // the kind of the (possibly nested) statement it is about
	tables []string // the relations it is about, as "name" or "schema.name"
	funcs  []string // the function it is about
	weak   bool     // the top-level statement's baseline; any other finding of the same decision wins over it
}

// analysis collects what one top-level statement does: every statement,
// relation and function call in its tree, bodies of SQL functions and DO
// blocks included.
type analysis struct {
	kind     string // the top-level statement's kind
	rootSeen bool
	findings []finding
	kinds    []string
	tables   []string // raw names, for matching
	shown    []string // the same, quoted for reasons
	funcs    []string
	reads    bool
	writes   bool
	foreign  bool // in a foreign table, server or wrapper definition, whose options file_fdw reads
	depth    int  // how many bodies deep (a DO block inside a function body...)
	readIdx  int  // index+1 of the top-level read finding, whose detail lists the tables
}

// maxBodyDepth bounds the parsing of bodies inside bodies.
const maxBodyDepth = 4

func analyze(stmt *pg_query.Node, depth int) *analysis {
	a := &analysis{depth: depth}
	walkNode(stmt, a.visit)
	if a.readIdx > 0 {
		f := &a.findings[a.readIdx-1]
		if names := summarize(a.shown); names != "" {
			f.detail += " from " + names
		}
		f.tables = a.tables
	}
	return a
}

// summarize lists up to three distinct relation names.
func summarize(tables []string) string {
	var out []string
	seen := map[string]bool{}
	for _, t := range tables {
		if seen[t] {
			continue
		}
		seen[t] = true
		if len(out) == 3 {
			out = append(out, "…")
			break
		}
		out = append(out, t)
	}
	return strings.Join(out, ", ")
}

func (a *analysis) visit(m protoreflect.Message) bool {
	switch v := m.Interface().(type) {
	case *pg_query.RangeVar:
		a.tables = append(a.tables, rawName(v.Schemaname, v.Relname))
		a.shown = append(a.shown, rangeVarName(v))
	case *pg_query.FuncCall:
		a.funcCall(v)
	case *pg_query.DefElem:
		if a.foreign {
			a.foreignOption(v)
		}
	case *pg_query.Node:
		return a.node(v)
	}
	return true
}

// enter records a statement of the given kind and reports whether it is
// the top-level one.
func (a *analysis) enter(kind string) bool {
	root := !a.rootSeen
	a.rootSeen = true
	if root {
		a.kind = kind
	}
	a.kinds = append(a.kinds, kind)
	return root
}

// base records the ordinary verdict of a statement: weak at top level,
// where anything else found in the tree should speak instead.
func (a *analysis) base(root bool, rule, kind, detail string, tables ...string) {
	a.findings = append(a.findings, finding{rule: rule, detail: detail, kind: kind, tables: tables, weak: root})
}

// flag records a notable finding.
func (a *analysis) flag(rule, kind, detail string, tables []string, funcs ...string) {
	a.findings = append(a.findings, finding{rule: rule, detail: detail, kind: kind, tables: tables, funcs: funcs})
}

func rvRaw(rv *pg_query.RangeVar) []string {
	if rv == nil {
		return nil
	}
	return []string{rawName(rv.Schemaname, rv.Relname)}
}

func rvListRaw(nodes []*pg_query.Node) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, rvRaw(n.GetRangeVar())...)
	}
	return out
}

// node classifies statement nodes; other nodes just lead further down.
func (a *analysis) node(n *pg_query.Node) bool {
	switch v := n.Node.(type) {
	case *pg_query.Node_SelectStmt:
		if a.rootSeen {
			return true // a subquery: its reads are part of the statement
		}
		return a.selectStmt(v.SelectStmt)
	case *pg_query.Node_InsertStmt:
		s := v.InsertStmt
		root := a.enter("INSERT")
		a.writes = true
		a.reads = a.reads || root && len(s.ReturningList) > 0
		a.base(root, "sql-write", "INSERT", "INSERT INTO "+rangeVarName(s.Relation), rvRaw(s.Relation)...)
	case *pg_query.Node_DeleteStmt:
		s := v.DeleteStmt
		root := a.enter("DELETE")
		a.writes = true
		a.reads = a.reads || root && len(s.ReturningList) > 0
		a.dml(root, "DELETE", "DELETE FROM "+rangeVarName(s.Relation), "sql-unrestricted-delete", s.WhereClause, s.Relation, s.UsingClause, s.WithClause)
	case *pg_query.Node_UpdateStmt:
		s := v.UpdateStmt
		root := a.enter("UPDATE")
		a.writes = true
		a.reads = a.reads || root && len(s.ReturningList) > 0
		a.dml(root, "UPDATE", "UPDATE "+rangeVarName(s.Relation), "sql-unrestricted-update", s.WhereClause, s.Relation, s.FromClause, s.WithClause)
	case *pg_query.Node_MergeStmt:
		a.merge(v.MergeStmt)
	case *pg_query.Node_CopyStmt:
		a.copyStmt(v.CopyStmt)
	case *pg_query.Node_ExplainStmt:
		return a.explain(v.ExplainStmt)
	case *pg_query.Node_VariableSetStmt:
		a.setStmt(v.VariableSetStmt)
	case *pg_query.Node_VariableShowStmt:
		root := a.enter("SHOW")
		a.reads = true
		a.base(root, "sql-session", "SHOW", "SHOW "+v.VariableShowStmt.Name)
	case *pg_query.Node_TransactionStmt:
		k := transactionKind(v.TransactionStmt.Kind)
		a.base(a.enter(k), "sql-transaction", k, k)
	case *pg_query.Node_ConstraintsSetStmt:
		a.base(a.enter("SET CONSTRAINTS"), "sql-transaction", "SET CONSTRAINTS", "SET CONSTRAINTS")

	// creating new objects
	case *pg_query.Node_CreateStmt:
		s := v.CreateStmt
		a.writes = true
		a.base(a.enter("CREATE TABLE"), "sql-create", "CREATE TABLE", "CREATE TABLE "+rangeVarName(s.Relation), rvRaw(s.Relation)...)
	case *pg_query.Node_CreateTableAsStmt:
		s := v.CreateTableAsStmt
		k := "CREATE TABLE AS"
		switch {
		case s.IsSelectInto:
			k = "SELECT INTO"
		case s.Objtype == pg_query.ObjectType_OBJECT_MATVIEW:
			k = "CREATE MATERIALIZED VIEW"
		}
		a.writes, a.reads = true, true
		var rel *pg_query.RangeVar
		if s.Into != nil {
			rel = s.Into.Rel
		}
		a.base(a.enter(k), "sql-create", k, k+" "+rangeVarName(rel), rvRaw(rel)...)
	case *pg_query.Node_IndexStmt:
		s := v.IndexStmt
		a.writes = true
		detail := "CREATE INDEX "
		if s.Idxname != "" {
			detail += quoteIdent(s.Idxname) + " "
		}
		a.base(a.enter("CREATE INDEX"), "sql-create", "CREATE INDEX", detail+"ON "+rangeVarName(s.Relation), rvRaw(s.Relation)...)
	case *pg_query.Node_ViewStmt:
		s := v.ViewStmt
		a.writes = true
		root := a.enter("CREATE VIEW")
		if s.Replace {
			a.base(root, "sql-ddl", "CREATE VIEW", "CREATE OR REPLACE VIEW "+rangeVarName(s.View), rvRaw(s.View)...)
		} else {
			a.base(root, "sql-create", "CREATE VIEW", "CREATE VIEW "+rangeVarName(s.View), rvRaw(s.View)...)
		}
	case *pg_query.Node_CreateSeqStmt:
		s := v.CreateSeqStmt
		a.writes = true
		a.base(a.enter("CREATE SEQUENCE"), "sql-create", "CREATE SEQUENCE", "CREATE SEQUENCE "+rangeVarName(s.Sequence), rvRaw(s.Sequence)...)
	case *pg_query.Node_CreateSchemaStmt:
		s := v.CreateSchemaStmt
		a.writes = true
		root := a.enter("CREATE SCHEMA")
		name := quoteIdent(s.Schemaname)
		if s.Schemaname == "" {
			name = roleName(s.Authrole)
		}
		if s.Authrole != nil {
			a.base(root, "sql-privilege", "CREATE SCHEMA", "CREATE SCHEMA "+name+" AUTHORIZATION "+roleName(s.Authrole))
		} else {
			a.base(root, "sql-create", "CREATE SCHEMA", "CREATE SCHEMA "+name)
		}
	case *pg_query.Node_CreateEnumStmt:
		a.createType(stringList(v.CreateEnumStmt.TypeName, true))
	case *pg_query.Node_CompositeTypeStmt:
		a.createType(rangeVarName(v.CompositeTypeStmt.Typevar))
	case *pg_query.Node_CreateRangeStmt:
		a.createType(stringList(v.CreateRangeStmt.TypeName, true))
	case *pg_query.Node_CreateDomainStmt:
		a.writes = true
		a.base(a.enter("CREATE DOMAIN"), "sql-create", "CREATE DOMAIN", "CREATE DOMAIN "+stringList(v.CreateDomainStmt.Domainname, true))
	case *pg_query.Node_DefineStmt:
		s := v.DefineStmt
		if s.Kind == pg_query.ObjectType_OBJECT_TYPE && !s.Replace {
			a.createType(stringList(s.Defnames, true))
			break
		}
		k := "CREATE " + objectTypeName(s.Kind)
		a.writes = true
		a.base(a.enter(k), "sql-ddl", k, k+" "+stringList(s.Defnames, true))
	case *pg_query.Node_CreateStatsStmt:
		a.writes = true
		a.base(a.enter("CREATE STATISTICS"), "sql-create", "CREATE STATISTICS", "CREATE STATISTICS "+stringList(v.CreateStatsStmt.Defnames, true))

	// dropping and emptying
	case *pg_query.Node_DropStmt:
		s := v.DropStmt
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
	case *pg_query.Node_DropdbStmt:
		a.enter("DROP DATABASE")
		a.writes = true
		a.flag("sql-drop", "DROP DATABASE", "DROP DATABASE "+quoteIdent(v.DropdbStmt.Dbname), nil)
	case *pg_query.Node_DropRoleStmt:
		a.enter("DROP ROLE")
		a.writes = true
		a.flag("sql-drop", "DROP ROLE", "DROP ROLE "+roleNames(v.DropRoleStmt.Roles), nil)
	case *pg_query.Node_DropOwnedStmt:
		a.enter("DROP OWNED")
		a.writes = true
		a.flag("sql-drop", "DROP OWNED", "DROP OWNED BY "+roleNames(v.DropOwnedStmt.Roles), nil)
	case *pg_query.Node_DropTableSpaceStmt:
		a.enter("DROP TABLESPACE")
		a.writes = true
		a.flag("sql-drop", "DROP TABLESPACE", "DROP TABLESPACE "+quoteIdent(v.DropTableSpaceStmt.Tablespacename), nil)
	case *pg_query.Node_DropSubscriptionStmt:
		a.enter("DROP SUBSCRIPTION")
		a.writes = true
		a.flag("sql-drop", "DROP SUBSCRIPTION", "DROP SUBSCRIPTION "+quoteIdent(v.DropSubscriptionStmt.Subname), nil)
	case *pg_query.Node_DropUserMappingStmt:
		a.enter("DROP USER MAPPING")
		a.writes = true
		a.flag("sql-drop", "DROP USER MAPPING", "DROP USER MAPPING FOR "+roleName(v.DropUserMappingStmt.User)+" SERVER "+quoteIdent(v.DropUserMappingStmt.Servername), nil)
	case *pg_query.Node_TruncateStmt:
		s := v.TruncateStmt
		a.enter("TRUNCATE")
		a.writes = true
		a.flag("sql-truncate", "TRUNCATE", "TRUNCATE "+objectNames(s.Relations), rvListRaw(s.Relations))

	// server and files
	case *pg_query.Node_AlterSystemStmt:
		a.enter("ALTER SYSTEM")
		a.writes = true
		detail := "ALTER SYSTEM"
		if s := v.AlterSystemStmt.Setstmt; s != nil {
			detail += " " + setDetail(s)
		}
		a.flag("sql-alter-system", "ALTER SYSTEM", detail, nil)
	case *pg_query.Node_LoadStmt:
		a.enter("LOAD")
		a.flag("sql-server-file", "LOAD", "LOAD "+strconv.Quote(v.LoadStmt.Filename)+" loads a library from the server's disk", nil)
	case *pg_query.Node_CreateTableSpaceStmt:
		s := v.CreateTableSpaceStmt
		a.enter("CREATE TABLESPACE")
		a.writes = true
		a.flag("sql-server-file", "CREATE TABLESPACE", "CREATE TABLESPACE "+quoteIdent(s.Tablespacename)+" LOCATION "+quoteLiteral(s.Location), nil)
	case *pg_query.Node_CheckPointStmt:
		a.base(a.enter("CHECKPOINT"), "sql-admin", "CHECKPOINT", "CHECKPOINT")

	// privileges and roles
	case *pg_query.Node_GrantStmt:
		a.grant(v.GrantStmt)
	case *pg_query.Node_GrantRoleStmt:
		s := v.GrantRoleStmt
		k, prep := "GRANT", " TO "
		if !s.IsGrant {
			k, prep = "REVOKE", " FROM "
		}
		a.writes = true
		a.base(a.enter(k), "sql-privilege", k, k+" "+objectNames(s.GrantedRoles)+prep+roleNames(s.GranteeRoles))
	case *pg_query.Node_AlterDefaultPrivilegesStmt:
		a.writes = true
		a.base(a.enter("ALTER DEFAULT PRIVILEGES"), "sql-privilege", "ALTER DEFAULT PRIVILEGES", "ALTER DEFAULT PRIVILEGES")
	case *pg_query.Node_AlterOwnerStmt:
		s := v.AlterOwnerStmt
		k := "ALTER " + objectTypeName(s.ObjectType)
		a.writes = true
		a.base(a.enter(k), "sql-privilege", k, k+" "+ownedName(s.Relation, s.Object)+" OWNER TO "+roleName(s.Newowner), rvRaw(s.Relation)...)
	case *pg_query.Node_ReassignOwnedStmt:
		a.writes = true
		a.base(a.enter("REASSIGN OWNED"), "sql-privilege", "REASSIGN OWNED", "REASSIGN OWNED BY "+roleNames(v.ReassignOwnedStmt.Roles)+" TO "+roleName(v.ReassignOwnedStmt.Newrole))
	case *pg_query.Node_CreatePolicyStmt:
		s := v.CreatePolicyStmt
		a.writes = true
		a.base(a.enter("CREATE POLICY"), "sql-privilege", "CREATE POLICY", "CREATE POLICY "+quoteIdent(s.PolicyName)+" ON "+rangeVarName(s.Table), rvRaw(s.Table)...)
	case *pg_query.Node_AlterPolicyStmt:
		s := v.AlterPolicyStmt
		a.writes = true
		a.base(a.enter("ALTER POLICY"), "sql-privilege", "ALTER POLICY", "ALTER POLICY "+quoteIdent(s.PolicyName)+" ON "+rangeVarName(s.Table), rvRaw(s.Table)...)
	case *pg_query.Node_CreateRoleStmt:
		s := v.CreateRoleStmt
		k := "CREATE " + strings.TrimPrefix(s.StmtType.String(), "ROLESTMT_")
		a.writes = true
		a.base(a.enter(k), "sql-role", k, k+" "+quoteIdent(s.Role))
	case *pg_query.Node_AlterRoleStmt:
		a.writes = true
		a.base(a.enter("ALTER ROLE"), "sql-role", "ALTER ROLE", "ALTER ROLE "+roleName(v.AlterRoleStmt.Role))
	case *pg_query.Node_AlterRoleSetStmt:
		s := v.AlterRoleSetStmt
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
	case *pg_query.Node_AlterDatabaseSetStmt:
		s := v.AlterDatabaseSetStmt
		detail := "ALTER DATABASE " + quoteIdent(s.Dbname)
		if s.Setstmt != nil {
			detail += " " + setDetail(s.Setstmt)
		}
		a.writes = true
		a.base(a.enter("ALTER DATABASE"), "sql-ddl", "ALTER DATABASE", detail)
		a.nestedSet(s.Setstmt, "ALTER DATABASE", detail)
	case *pg_query.Node_CreateForeignTableStmt:
		s := v.CreateForeignTableStmt
		a.writes, a.foreign = true, true
		var rel *pg_query.RangeVar
		if s.BaseStmt != nil {
			rel = s.BaseStmt.Relation
		}
		a.base(a.enter("CREATE FOREIGN TABLE"), "sql-ddl", "CREATE FOREIGN TABLE", "CREATE FOREIGN TABLE "+rangeVarName(rel)+" SERVER "+quoteIdent(s.Servername), rvRaw(rel)...)

	// other schema changes
	case *pg_query.Node_AlterTableStmt:
		a.alterTable(v.AlterTableStmt)
	case *pg_query.Node_AlterDomainStmt:
		s := v.AlterDomainStmt
		root := a.enter("ALTER DOMAIN")
		a.writes = true
		name := stringList(s.TypeName, true)
		switch s.Subtype {
		case "X":
			a.base(root, "sql-ddl", "ALTER DOMAIN", "ALTER DOMAIN "+name)
			a.flag("sql-alter-drop", "ALTER DOMAIN", "ALTER DOMAIN "+name+" DROP CONSTRAINT "+quoteIdent(s.Name), nil)
		case "N":
			a.base(root, "sql-ddl", "ALTER DOMAIN", "ALTER DOMAIN "+name)
			a.flag("sql-alter-drop", "ALTER DOMAIN", "ALTER DOMAIN "+name+" DROP NOT NULL", nil)
		default:
			a.base(root, "sql-ddl", "ALTER DOMAIN", "ALTER DOMAIN "+name)
		}
	case *pg_query.Node_RenameStmt:
		s := v.RenameStmt
		k := "ALTER " + objectTypeName(s.RenameType)
		if s.RenameType == pg_query.ObjectType_OBJECT_COLUMN || s.RenameType == pg_query.ObjectType_OBJECT_TABCONSTRAINT {
			k = "ALTER " + objectTypeName(s.RelationType)
		}
		rule := "sql-ddl"
		if s.RenameType == pg_query.ObjectType_OBJECT_ROLE {
			rule = "sql-role"
		}
		what := ownedName(s.Relation, s.Object)
		if s.Subname != "" {
			what += " RENAME " + quoteIdent(s.Subname)
		} else {
			what += " RENAME"
		}
		a.writes = true
		a.base(a.enter(k), rule, k, k+" "+what+" TO "+quoteIdent(s.Newname), rvRaw(s.Relation)...)
	case *pg_query.Node_AlterObjectSchemaStmt:
		s := v.AlterObjectSchemaStmt
		k := "ALTER " + objectTypeName(s.ObjectType)
		a.writes = true
		a.base(a.enter(k), "sql-ddl", k, k+" "+ownedName(s.Relation, s.Object)+" SET SCHEMA "+quoteIdent(s.Newschema), rvRaw(s.Relation)...)
	case *pg_query.Node_CreateFunctionStmt:
		a.createFunction(v.CreateFunctionStmt)
	case *pg_query.Node_DoStmt:
		a.doStmt(v.DoStmt)
	case *pg_query.Node_CreatePlangStmt:
		s := v.CreatePlangStmt
		root := a.enter("CREATE LANGUAGE")
		a.writes = true
		a.base(root, "sql-ddl", "CREATE LANGUAGE", "CREATE LANGUAGE "+quoteIdent(s.Plname))
		if untrustedLanguage(s.Plname) {
			a.flag("sql-untrusted-language", "CREATE LANGUAGE", "CREATE LANGUAGE "+quoteIdent(s.Plname), nil)
		}
	case *pg_query.Node_CreateExtensionStmt:
		s := v.CreateExtensionStmt
		root := a.enter("CREATE EXTENSION")
		a.writes = true
		a.base(root, "sql-ddl", "CREATE EXTENSION", "CREATE EXTENSION "+quoteIdent(s.Extname))
		switch {
		case untrustedLanguage(s.Extname):
			a.flag("sql-untrusted-language", "CREATE EXTENSION", "CREATE EXTENSION "+quoteIdent(s.Extname), nil)
		case s.Extname == "adminpack" || s.Extname == "file_fdw":
			a.flag("sql-server-file", "CREATE EXTENSION", "CREATE EXTENSION "+quoteIdent(s.Extname), nil)
		}
	case *pg_query.Node_CreateTrigStmt:
		s := v.CreateTrigStmt
		a.writes = true
		a.base(a.enter("CREATE TRIGGER"), "sql-ddl", "CREATE TRIGGER", "CREATE TRIGGER "+quoteIdent(s.Trigname)+" ON "+rangeVarName(s.Relation), rvRaw(s.Relation)...)
	case *pg_query.Node_RuleStmt:
		s := v.RuleStmt
		a.writes = true
		a.base(a.enter("CREATE RULE"), "sql-ddl", "CREATE RULE", "CREATE RULE "+quoteIdent(s.Rulename)+" ON "+rangeVarName(s.Relation), rvRaw(s.Relation)...)
	case *pg_query.Node_CommentStmt:
		s := v.CommentStmt
		a.writes = true
		a.base(a.enter("COMMENT"), "sql-ddl", "COMMENT", "COMMENT ON "+objectTypeName(s.Objtype)+" "+objectName(s.Object))

	// locks, maintenance
	case *pg_query.Node_LockStmt:
		s := v.LockStmt
		a.base(a.enter("LOCK"), "sql-lock", "LOCK", "LOCK TABLE "+objectNames(s.Relations), rvListRaw(s.Relations)...)
	case *pg_query.Node_VacuumStmt:
		a.vacuum(v.VacuumStmt)
	case *pg_query.Node_ReindexStmt:
		s := v.ReindexStmt
		what := strings.TrimPrefix(s.Kind.String(), "REINDEX_OBJECT_")
		name := rangeVarName(s.Relation)
		if name == "" {
			name = quoteIdent(s.Name)
		}
		a.writes = true
		a.base(a.enter("REINDEX"), "sql-maintenance", "REINDEX", "REINDEX "+what+" "+name, rvRaw(s.Relation)...)
	case *pg_query.Node_ClusterStmt:
		s := v.ClusterStmt
		a.writes = true
		a.base(a.enter("CLUSTER"), "sql-maintenance", "CLUSTER", strings.TrimSpace("CLUSTER "+rangeVarName(s.Relation)), rvRaw(s.Relation)...)
	case *pg_query.Node_RefreshMatViewStmt:
		s := v.RefreshMatViewStmt
		a.writes = true
		a.base(a.enter("REFRESH MATERIALIZED VIEW"), "sql-write", "REFRESH MATERIALIZED VIEW", "REFRESH MATERIALIZED VIEW "+rangeVarName(s.Relation), rvRaw(s.Relation)...)

	// opaque code
	case *pg_query.Node_CallStmt:
		a.reads = true
		name := ""
		if fc := v.CallStmt.Funccall; fc != nil {
			name = stringList(fc.Funcname, true)
		}
		a.base(a.enter("CALL"), "sql-opaque", "CALL", "CALL "+name)
	case *pg_query.Node_ExecuteStmt:
		a.reads = true
		a.base(a.enter("EXECUTE"), "sql-opaque", "EXECUTE", "EXECUTE "+quoteIdent(v.ExecuteStmt.Name)+" runs a prepared statement")

	// session
	case *pg_query.Node_PrepareStmt:
		a.base(a.enter("PREPARE"), "sql-session", "PREPARE", "PREPARE "+quoteIdent(v.PrepareStmt.Name))
	case *pg_query.Node_DeallocateStmt:
		name := "ALL"
		if !v.DeallocateStmt.Isall {
			name = quoteIdent(v.DeallocateStmt.Name)
		}
		a.base(a.enter("DEALLOCATE"), "sql-session", "DEALLOCATE", "DEALLOCATE "+name)
	case *pg_query.Node_DiscardStmt:
		a.base(a.enter("DISCARD"), "sql-session", "DISCARD", "DISCARD "+strings.TrimPrefix(v.DiscardStmt.Target.String(), "DISCARD_"))
	case *pg_query.Node_ListenStmt:
		a.base(a.enter("LISTEN"), "sql-session", "LISTEN", "LISTEN "+quoteIdent(v.ListenStmt.Conditionname))
	case *pg_query.Node_UnlistenStmt:
		a.base(a.enter("UNLISTEN"), "sql-session", "UNLISTEN", strings.TrimSpace("UNLISTEN "+v.UnlistenStmt.Conditionname))
	case *pg_query.Node_NotifyStmt:
		a.base(a.enter("NOTIFY"), "sql-session", "NOTIFY", "NOTIFY "+quoteIdent(v.NotifyStmt.Conditionname))
	case *pg_query.Node_DeclareCursorStmt:
		a.reads = true
		a.base(a.enter("DECLARE CURSOR"), "sql-read", "DECLARE CURSOR", "DECLARE "+quoteIdent(v.DeclareCursorStmt.Portalname)+" CURSOR")
	case *pg_query.Node_FetchStmt:
		k := "FETCH"
		if v.FetchStmt.Ismove {
			k = "MOVE"
		}
		a.reads = true
		a.base(a.enter(k), "sql-read", k, k+" "+quoteIdent(v.FetchStmt.Portalname))
	case *pg_query.Node_ClosePortalStmt:
		name := v.ClosePortalStmt.Portalname
		if name == "" {
			name = "ALL"
		} else {
			name = quoteIdent(name)
		}
		a.base(a.enter("CLOSE"), "sql-session", "CLOSE", "CLOSE "+name)
	case *pg_query.Node_ReturnStmt, *pg_query.Node_PlassignStmt:
		// parts of SQL function bodies; their expressions are walked
	default:
		typ := nodeTypeName(n)
		if !strings.HasSuffix(typ, "Stmt") {
			return true
		}
		// Every other statement changes the schema or server objects:
		// ALTER EXTENSION, CREATE DATABASE, CREATE SERVER, CREATE CAST...
		k := kindFromTypeName(typ)
		a.writes = true
		a.foreign = a.foreign || strings.Contains(typ, "Foreign") || strings.Contains(typ, "Fdw") || strings.Contains(typ, "UserMapping")
		a.base(a.enter(k), "sql-ddl", k, k)
	}
	return true
}
