package sqlpolicy

// Schema, privilege and maintenance statements.

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func (a *analysis) createType(name string) {
	a.writes = true
	a.base(a.enter("CREATE TYPE"), "sql-create", "CREATE TYPE", "CREATE TYPE "+name)
}

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

var alterDrops = map[pg_query.AlterTableType]string{
	pg_query.AlterTableType_AT_DropColumn:              "DROP COLUMN",
	pg_query.AlterTableType_AT_DropConstraint:          "DROP CONSTRAINT",
	pg_query.AlterTableType_AT_DropNotNull:             "DROP NOT NULL",
	pg_query.AlterTableType_AT_DropExpression:          "DROP EXPRESSION",
	pg_query.AlterTableType_AT_DropIdentity:            "DROP IDENTITY",
	pg_query.AlterTableType_AT_DropInherit:             "NO INHERIT",
	pg_query.AlterTableType_AT_DropOf:                  "NOT OF",
	pg_query.AlterTableType_AT_DetachPartition:         "DETACH PARTITION",
	pg_query.AlterTableType_AT_DetachPartitionFinalize: "DETACH PARTITION FINALIZE",
}

// foreignOption judges an OPTIONS entry of a foreign table, server or
// wrapper: file_fdw reads a server file for "filename" and runs a shell
// command for "program", like COPY.
func (a *analysis) foreignOption(d *pg_query.DefElem) {
	if d.Defaction == pg_query.DefElemAction_DEFELEM_DROP {
		return
	}
	val, _ := constString(d.Arg)
	if val == "" {
		val = d.Arg.GetString_().GetSval()
	}
	switch strings.ToLower(d.Defname) {
	case "program":
		a.flag("sql-copy-program", a.kind, a.kind+" OPTIONS (program "+quoteLiteral(truncate(val, 60))+")", nil)
	case "filename":
		a.flag("sql-server-file", a.kind, a.kind+" OPTIONS (filename "+quoteLiteral(truncate(val, 60))+")", nil)
	}
}

func (a *analysis) alterTable(s *pg_query.AlterTableStmt) {
	a.foreign = a.foreign || s.Objtype == pg_query.ObjectType_OBJECT_FOREIGN_TABLE
	k := "ALTER " + objectTypeName(s.Objtype)
	root := a.enter(k)
	a.writes = true
	name := rangeVarName(s.Relation)
	tables := rvRaw(s.Relation)
	var first string
	for _, n := range s.Cmds {
		c := n.GetAlterTableCmd()
		if c == nil {
			continue
		}
		desc := alterCmdName(c)
		if first == "" {
			first = desc
		}
		switch c.Subtype {
		case pg_query.AlterTableType_AT_ChangeOwner:
			a.flag("sql-privilege", k, k+" "+name+" OWNER TO "+roleName(c.Newowner), tables)
		case pg_query.AlterTableType_AT_DisableRowSecurity, pg_query.AlterTableType_AT_NoForceRowSecurity:
			a.flag("sql-privilege", k, k+" "+name+" "+desc, tables)
		}
		if _, ok := alterDrops[c.Subtype]; ok {
			a.flag("sql-alter-drop", k, k+" "+name+" "+desc, tables)
		}
	}
	detail := k + " " + name
	if first != "" {
		detail += " " + first
	}
	if len(s.Cmds) > 1 {
		detail += ", …"
	}
	a.base(root, "sql-ddl", k, detail, tables...)
}

func alterCmdName(c *pg_query.AlterTableCmd) string {
	verb, ok := alterDrops[c.Subtype]
	if !ok {
		verb = kindFromTypeName(strings.TrimPrefix(c.Subtype.String(), "AT_"))
	}
	var obj string
	switch {
	case c.Name != "":
		obj = quoteIdent(c.Name)
	case c.Def.GetColumnDef() != nil:
		obj = quoteIdent(c.Def.GetColumnDef().Colname)
	case c.Def.GetConstraint() != nil && c.Def.GetConstraint().Conname != "":
		obj = quoteIdent(c.Def.GetConstraint().Conname)
	case c.Def.GetPartitionCmd() != nil:
		obj = rangeVarName(c.Def.GetPartitionCmd().Name)
	}
	return strings.TrimSpace(verb + " " + obj)
}

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

func transactionKind(k pg_query.TransactionStmtKind) string {
	switch k {
	case pg_query.TransactionStmtKind_TRANS_STMT_BEGIN:
		return "BEGIN"
	case pg_query.TransactionStmtKind_TRANS_STMT_START:
		return "START TRANSACTION"
	case pg_query.TransactionStmtKind_TRANS_STMT_COMMIT:
		return "COMMIT"
	case pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK:
		return "ROLLBACK"
	case pg_query.TransactionStmtKind_TRANS_STMT_SAVEPOINT:
		return "SAVEPOINT"
	case pg_query.TransactionStmtKind_TRANS_STMT_RELEASE:
		return "RELEASE"
	case pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK_TO:
		return "ROLLBACK TO SAVEPOINT"
	case pg_query.TransactionStmtKind_TRANS_STMT_PREPARE:
		return "PREPARE TRANSACTION"
	case pg_query.TransactionStmtKind_TRANS_STMT_COMMIT_PREPARED:
		return "COMMIT PREPARED"
	case pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK_PREPARED:
		return "ROLLBACK PREPARED"
	}
	return "TRANSACTION"
}

func isRelation(t pg_query.ObjectType) bool {
	switch t {
	case pg_query.ObjectType_OBJECT_TABLE, pg_query.ObjectType_OBJECT_VIEW, pg_query.ObjectType_OBJECT_MATVIEW,
		pg_query.ObjectType_OBJECT_FOREIGN_TABLE, pg_query.ObjectType_OBJECT_SEQUENCE, pg_query.ObjectType_OBJECT_INDEX:
		return true
	}
	return false
}

func ownedName(rel *pg_query.RangeVar, obj *pg_query.Node) string {
	if rel != nil {
		return rangeVarName(rel)
	}
	if obj != nil {
		return objectName(obj)
	}
	return "?"
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
