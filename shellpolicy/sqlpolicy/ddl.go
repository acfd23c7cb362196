package sqlpolicy

// Schema changes to existing objects: ALTER TABLE, ALTER DOMAIN, RENAME,
// SET SCHEMA, COMMENT, and every other statement that the dispatch table in
// analyze.go does not name.

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

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

// alterCmdName describes one ALTER TABLE subcommand, e.g. DROP COLUMN "a".
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

// alterDomain: dropping a constraint or NOT NULL loosens what the domain
// holds, like the ALTER TABLE drops.
func (a *analysis) alterDomain(s *pg_query.AlterDomainStmt) {
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
}

// rename: renaming a column or constraint is an ALTER of its relation; a
// renamed role is a role change.
func (a *analysis) rename(s *pg_query.RenameStmt) {
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
}

func (a *analysis) alterObjectSchema(s *pg_query.AlterObjectSchemaStmt) {
	k := "ALTER " + objectTypeName(s.ObjectType)
	a.writes = true
	a.base(a.enter(k), "sql-ddl", k, k+" "+ownedName(s.Relation, s.Object)+" SET SCHEMA "+quoteIdent(s.Newschema), rvRaw(s.Relation)...)
}

func (a *analysis) comment(s *pg_query.CommentStmt) {
	a.writes = true
	a.base(a.enter("COMMENT"), "sql-ddl", "COMMENT", "COMMENT ON "+objectTypeName(s.Objtype)+" "+objectName(s.Object))
}

// otherStmt judges a node the dispatch table does not name. A node that is
// not a statement (an expression, a clause) is only walked through. Every
// other statement changes the schema or server objects: ALTER EXTENSION,
// CREATE DATABASE, CREATE SERVER, CREATE CAST...
func (a *analysis) otherStmt(n *pg_query.Node) {
	typ := nodeTypeName(n)
	if !strings.HasSuffix(typ, "Stmt") {
		return
	}
	k := kindFromTypeName(typ)
	a.writes = true
	a.foreign = a.foreign || strings.Contains(typ, "Foreign") || strings.Contains(typ, "Fdw") || strings.Contains(typ, "UserMapping")
	a.base(a.enter(k), "sql-ddl", k, k)
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
