package sqlpolicy

import (
	"reflect"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// walk calls visit on m and, while visit returns true, on every message
// below it, depth first. It goes through protobuf reflection so that no node
// type of the parse tree is ever skipped: a function call hidden in a
// CHECK constraint, a CTE or a rule action is still seen.
func walk(m protoreflect.Message, visit func(protoreflect.Message) bool) {
	if !m.IsValid() || !visit(m) {
		return
	}
	if m.Descriptor() == nodeDescriptor {
		// A Node is a oneof of some 270 node types; Range would test each
		// for presence, which costs more than the parse. Go straight to
		// the one that is set.
		if c := nodeChild(m.Interface().(*pg_query.Node)); c != nil {
			walk(c, visit)
		}
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.GroupKind {
			return true
		}
		switch {
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				walk(l.Get(i).Message(), visit)
			}
		case fd.IsMap():
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				if fd.MapValue().Kind() == protoreflect.MessageKind {
					walk(mv.Message(), visit)
				}
				return true
			})
		default:
			walk(v.Message(), visit)
		}
		return true
	})
}

var nodeDescriptor = (&pg_query.Node{}).ProtoReflect().Descriptor()

// walkNode walks the tree under n; a nil node is an empty tree.
func walkNode(n *pg_query.Node, visit func(protoreflect.Message) bool) {
	if n != nil {
		walk(n.ProtoReflect(), visit)
	}
}

// sameExpr reports whether two expressions are the same tree, ignoring the
// source locations that the parser records in most nodes.
func sameExpr(a, b *pg_query.Node) bool {
	if a == nil || b == nil {
		return a == b
	}
	return sameMessage(a.ProtoReflect(), b.ProtoReflect())
}

func sameMessage(a, b protoreflect.Message) bool {
	if a.Descriptor() != b.Descriptor() || a.IsValid() != b.IsValid() {
		return false
	}
	fields := a.Descriptor().Fields()
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
		if !sameValue(fd, a.Get(fd), b.Get(fd)) {
			return false
		}
	}
	return true
}

func sameValue(fd protoreflect.FieldDescriptor, a, b protoreflect.Value) bool {
	isMsg := fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind
	if fd.IsList() {
		la, lb := a.List(), b.List()
		if la.Len() != lb.Len() {
			return false
		}
		for i := 0; i < la.Len(); i++ {
			if isMsg && !sameMessage(la.Get(i).Message(), lb.Get(i).Message()) ||
				!isMsg && !la.Get(i).Equal(lb.Get(i)) {
				return false
			}
		}
		return true
	}
	if isMsg {
		return sameMessage(a.Message(), b.Message())
	}
	return a.Equal(b)
}

// nodeChild is the message a Node wraps. Every member of the Node oneof
// is a wrapper struct whose only field points to a node message; reading it
// through reflect is much cheaper than protoreflect's WhichOneof.
func nodeChild(n *pg_query.Node) protoreflect.Message {
	if n == nil || n.Node == nil {
		return nil
	}
	v := reflect.ValueOf(n.Node).Elem().Field(0)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return nil
	}
	if pm, ok := v.Interface().(interface{ ProtoReflect() protoreflect.Message }); ok {
		return pm.ProtoReflect()
	}
	return nil
}

// nodeTypeName is the parse node's type, e.g. "AlterTsdictionaryStmt".
func nodeTypeName(n *pg_query.Node) string {
	if n == nil || n.Node == nil {
		return ""
	}
	return strings.TrimPrefix(reflect.TypeOf(n.Node).Elem().Name(), "Node_")
}

// quoteIdent writes an identifier the way psql would need it typed.
func quoteIdent(s string) string {
	if s == "" {
		return `""`
	}
	for i, r := range s {
		if !(r >= 'a' && r <= 'z' || r == '_' || i > 0 && (r >= '0' && r <= '9' || r == '$')) {
			return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
		}
	}
	return s
}

// rangeVarName is "schema.name" or "name", quoted where needed.
func rangeVarName(rv *pg_query.RangeVar) string {
	if rv == nil {
		return ""
	}
	name := quoteIdent(rv.Relname)
	if rv.Schemaname != "" {
		name = quoteIdent(rv.Schemaname) + "." + name
	}
	return name
}

// rawName is the unquoted "schema.name" or "name" used for matching.
func rawName(schema, name string) string {
	if schema != "" {
		return schema + "." + name
	}
	return name
}

// stringList joins a list of String nodes (a qualified name) with dots.
func stringList(nodes []*pg_query.Node, quote bool) string {
	parts := make([]string, 0, len(nodes))
	for _, n := range nodes {
		s := n.GetString_().GetSval()
		if n.GetAStar() != nil {
			s = "*"
		} else if quote {
			s = quoteIdent(s)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ".")
}

// objectName names an object of a DROP, COMMENT, ALTER ... OWNER, etc.
func objectName(n *pg_query.Node) string {
	switch v := n.GetNode().(type) {
	case *pg_query.Node_String_:
		return quoteIdent(v.String_.Sval)
	case *pg_query.Node_List:
		return stringList(v.List.Items, true)
	case *pg_query.Node_ObjectWithArgs:
		return stringList(v.ObjectWithArgs.Objname, true)
	case *pg_query.Node_TypeName:
		return stringList(v.TypeName.Names, true)
	case *pg_query.Node_RangeVar:
		return rangeVarName(v.RangeVar)
	case *pg_query.Node_RoleSpec:
		return roleName(v.RoleSpec)
	case *pg_query.Node_Integer:
		return "oid"
	}
	return "?"
}

func objectNames(nodes []*pg_query.Node) string {
	parts := make([]string, 0, len(nodes))
	for _, n := range nodes {
		parts = append(parts, objectName(n))
	}
	return strings.Join(parts, ", ")
}

func roleName(r *pg_query.RoleSpec) string {
	if r == nil {
		return ""
	}
	switch r.Roletype {
	case pg_query.RoleSpecType_ROLESPEC_CURRENT_ROLE:
		return "CURRENT_ROLE"
	case pg_query.RoleSpecType_ROLESPEC_CURRENT_USER:
		return "CURRENT_USER"
	case pg_query.RoleSpecType_ROLESPEC_SESSION_USER:
		return "SESSION_USER"
	case pg_query.RoleSpecType_ROLESPEC_PUBLIC:
		return "PUBLIC"
	}
	return quoteIdent(r.Rolename)
}

func roleNames(nodes []*pg_query.Node) string {
	parts := make([]string, 0, len(nodes))
	for _, n := range nodes {
		parts = append(parts, roleName(n.GetRoleSpec()))
	}
	return strings.Join(parts, ", ")
}

// objectTypeName turns OBJECT_MATVIEW into "MATERIALIZED VIEW".
func objectTypeName(t pg_query.ObjectType) string {
	switch t {
	case pg_query.ObjectType_OBJECT_MATVIEW:
		return "MATERIALIZED VIEW"
	case pg_query.ObjectType_OBJECT_FDW:
		return "FOREIGN DATA WRAPPER"
	case pg_query.ObjectType_OBJECT_FOREIGN_SERVER:
		return "SERVER"
	case pg_query.ObjectType_OBJECT_TSCONFIGURATION:
		return "TEXT SEARCH CONFIGURATION"
	case pg_query.ObjectType_OBJECT_TSDICTIONARY:
		return "TEXT SEARCH DICTIONARY"
	case pg_query.ObjectType_OBJECT_TSPARSER:
		return "TEXT SEARCH PARSER"
	case pg_query.ObjectType_OBJECT_TSTEMPLATE:
		return "TEXT SEARCH TEMPLATE"
	case pg_query.ObjectType_OBJECT_OPCLASS:
		return "OPERATOR CLASS"
	case pg_query.ObjectType_OBJECT_OPFAMILY:
		return "OPERATOR FAMILY"
	case pg_query.ObjectType_OBJECT_TABCONSTRAINT:
		return "CONSTRAINT"
	case pg_query.ObjectType_OBJECT_LARGEOBJECT:
		return "LARGE OBJECT"
	case pg_query.ObjectType_OBJECT_STATISTIC_EXT:
		return "STATISTICS"
	}
	s := strings.TrimPrefix(t.String(), "OBJECT_")
	return strings.ReplaceAll(s, "_", " ")
}

// stmtKinds names the statements whose type name is not their command.
var stmtKinds = map[string]string{
	"CreatedbStmt":                 "CREATE DATABASE",
	"AlterDatabaseStmt":            "ALTER DATABASE",
	"AlterDatabaseRefreshCollStmt": "ALTER DATABASE",
	"CreateForeignServerStmt":      "CREATE SERVER",
	"AlterForeignServerStmt":       "ALTER SERVER",
	"CreateFdwStmt":                "CREATE FOREIGN DATA WRAPPER",
	"AlterFdwStmt":                 "ALTER FOREIGN DATA WRAPPER",
	"AlterTsdictionaryStmt":        "ALTER TEXT SEARCH DICTIONARY",
	"AlterTsconfigurationStmt":     "ALTER TEXT SEARCH CONFIGURATION",
	"CreateOpClassStmt":            "CREATE OPERATOR CLASS",
	"CreateOpFamilyStmt":           "CREATE OPERATOR FAMILY",
	"AlterOpFamilyStmt":            "ALTER OPERATOR FAMILY",
	"CreateAmStmt":                 "CREATE ACCESS METHOD",
	"CreateEventTrigStmt":          "CREATE EVENT TRIGGER",
	"AlterEventTrigStmt":           "ALTER EVENT TRIGGER",
	"SecLabelStmt":                 "SECURITY LABEL",
	"AlterSeqStmt":                 "ALTER SEQUENCE",
	"AlterExtensionContentsStmt":   "ALTER EXTENSION",
	"AlterObjectDependsStmt":       "ALTER EXTENSION DEPENDS",
	"AlterEnumStmt":                "ALTER TYPE",
	"AlterTypeStmt":                "ALTER TYPE",
	"AlterStatsStmt":               "ALTER STATISTICS",
	"AlterTableSpaceOptionsStmt":   "ALTER TABLESPACE",
	"AlterTableMoveAllStmt":        "ALTER TABLE",
}

// kindFromTypeName is the fallback statement kind: "AlterTsdictionaryStmt"
// becomes "ALTER TSDICTIONARY".
func kindFromTypeName(name string) string {
	if k, ok := stmtKinds[name]; ok {
		return k
	}
	name = strings.TrimSuffix(name, "Stmt")
	var b strings.Builder
	for i, r := range name {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return strings.ToUpper(b.String())
}

// constString is the value of a string constant, seen through casts.
func constString(n *pg_query.Node) (string, bool) {
	for n.GetTypeCast() != nil {
		n = n.GetTypeCast().Arg
	}
	c := n.GetAConst()
	if c == nil || c.Isnull {
		return "", false
	}
	if s, ok := c.Val.(*pg_query.A_Const_Sval); ok {
		return s.Sval.Sval, true
	}
	return "", false
}

// truncate shortens s for a reason line.
func truncate(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
