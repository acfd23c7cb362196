package sqlpolicy

import (
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

// node classifies statement nodes; other nodes just lead further down. It
// is a dispatch table: each statement kind has its own handler, grouped in
// files by concern (dml.go, create.go, drop.go, ddl.go, privilege.go,
// maintenance.go, session.go, functions.go). It reports whether the walk
// goes on into the node's children.
func (a *analysis) node(n *pg_query.Node) bool {
	switch v := n.Node.(type) {
	// queries and data changes (dml.go)
	case *pg_query.Node_SelectStmt:
		if a.rootSeen {
			return true // a subquery: its reads are part of the statement
		}
		return a.selectStmt(v.SelectStmt)
	case *pg_query.Node_InsertStmt:
		a.insertStmt(v.InsertStmt)
	case *pg_query.Node_DeleteStmt:
		a.deleteStmt(v.DeleteStmt)
	case *pg_query.Node_UpdateStmt:
		a.updateStmt(v.UpdateStmt)
	case *pg_query.Node_MergeStmt:
		a.merge(v.MergeStmt)
	case *pg_query.Node_CopyStmt:
		a.copyStmt(v.CopyStmt)
	case *pg_query.Node_ExplainStmt:
		return a.explain(v.ExplainStmt)

	// settings, transactions and session state (functions.go, session.go)
	case *pg_query.Node_VariableSetStmt:
		a.setStmt(v.VariableSetStmt)
	case *pg_query.Node_VariableShowStmt:
		a.showStmt(v.VariableShowStmt)
	case *pg_query.Node_TransactionStmt:
		a.transactionStmt(v.TransactionStmt)
	case *pg_query.Node_ConstraintsSetStmt:
		a.constraintsSet()

	// creating new objects (create.go)
	case *pg_query.Node_CreateStmt:
		a.createTable(v.CreateStmt)
	case *pg_query.Node_CreateTableAsStmt:
		a.createTableAs(v.CreateTableAsStmt)
	case *pg_query.Node_IndexStmt:
		a.createIndex(v.IndexStmt)
	case *pg_query.Node_ViewStmt:
		a.createView(v.ViewStmt)
	case *pg_query.Node_CreateSeqStmt:
		a.createSequence(v.CreateSeqStmt)
	case *pg_query.Node_CreateSchemaStmt:
		a.createSchema(v.CreateSchemaStmt)
	case *pg_query.Node_CreateEnumStmt:
		a.createType(stringList(v.CreateEnumStmt.TypeName, true))
	case *pg_query.Node_CompositeTypeStmt:
		a.createType(rangeVarName(v.CompositeTypeStmt.Typevar))
	case *pg_query.Node_CreateRangeStmt:
		a.createType(stringList(v.CreateRangeStmt.TypeName, true))
	case *pg_query.Node_CreateDomainStmt:
		a.createDomain(v.CreateDomainStmt)
	case *pg_query.Node_DefineStmt:
		a.define(v.DefineStmt)
	case *pg_query.Node_CreateStatsStmt:
		a.createStatistics(v.CreateStatsStmt)
	case *pg_query.Node_CreateForeignTableStmt:
		a.createForeignTable(v.CreateForeignTableStmt)

	// dropping and emptying (drop.go)
	case *pg_query.Node_DropStmt:
		a.drop(v.DropStmt)
	case *pg_query.Node_DropdbStmt:
		a.dropDatabase(v.DropdbStmt)
	case *pg_query.Node_DropRoleStmt:
		a.dropRole(v.DropRoleStmt)
	case *pg_query.Node_DropOwnedStmt:
		a.dropOwned(v.DropOwnedStmt)
	case *pg_query.Node_DropTableSpaceStmt:
		a.dropTablespace(v.DropTableSpaceStmt)
	case *pg_query.Node_DropSubscriptionStmt:
		a.dropSubscription(v.DropSubscriptionStmt)
	case *pg_query.Node_DropUserMappingStmt:
		a.dropUserMapping(v.DropUserMappingStmt)
	case *pg_query.Node_TruncateStmt:
		a.truncateStmt(v.TruncateStmt)

	// server and files (maintenance.go)
	case *pg_query.Node_AlterSystemStmt:
		a.alterSystem(v.AlterSystemStmt)
	case *pg_query.Node_LoadStmt:
		a.load(v.LoadStmt)
	case *pg_query.Node_CreateTableSpaceStmt:
		a.createTablespace(v.CreateTableSpaceStmt)
	case *pg_query.Node_CheckPointStmt:
		a.checkpoint()

	// privileges and roles (privilege.go)
	case *pg_query.Node_GrantStmt:
		a.grant(v.GrantStmt)
	case *pg_query.Node_GrantRoleStmt:
		a.grantRole(v.GrantRoleStmt)
	case *pg_query.Node_AlterDefaultPrivilegesStmt:
		a.alterDefaultPrivileges()
	case *pg_query.Node_AlterOwnerStmt:
		a.alterOwner(v.AlterOwnerStmt)
	case *pg_query.Node_ReassignOwnedStmt:
		a.reassignOwned(v.ReassignOwnedStmt)
	case *pg_query.Node_CreatePolicyStmt:
		a.createPolicy(v.CreatePolicyStmt)
	case *pg_query.Node_AlterPolicyStmt:
		a.alterPolicy(v.AlterPolicyStmt)
	case *pg_query.Node_CreateRoleStmt:
		a.createRole(v.CreateRoleStmt)
	case *pg_query.Node_AlterRoleStmt:
		a.alterRole(v.AlterRoleStmt)
	case *pg_query.Node_AlterRoleSetStmt:
		a.alterRoleSet(v.AlterRoleSetStmt)
	case *pg_query.Node_AlterDatabaseSetStmt:
		a.alterDatabaseSet(v.AlterDatabaseSetStmt)

	// other schema changes (ddl.go, create.go, functions.go)
	case *pg_query.Node_AlterTableStmt:
		a.alterTable(v.AlterTableStmt)
	case *pg_query.Node_AlterDomainStmt:
		a.alterDomain(v.AlterDomainStmt)
	case *pg_query.Node_RenameStmt:
		a.rename(v.RenameStmt)
	case *pg_query.Node_AlterObjectSchemaStmt:
		a.alterObjectSchema(v.AlterObjectSchemaStmt)
	case *pg_query.Node_CreateFunctionStmt:
		a.createFunction(v.CreateFunctionStmt)
	case *pg_query.Node_DoStmt:
		a.doStmt(v.DoStmt)
	case *pg_query.Node_CreatePlangStmt:
		a.createLanguage(v.CreatePlangStmt)
	case *pg_query.Node_CreateExtensionStmt:
		a.createExtension(v.CreateExtensionStmt)
	case *pg_query.Node_CreateTrigStmt:
		a.createTrigger(v.CreateTrigStmt)
	case *pg_query.Node_RuleStmt:
		a.createRule(v.RuleStmt)
	case *pg_query.Node_CommentStmt:
		a.comment(v.CommentStmt)

	// locks, maintenance (maintenance.go)
	case *pg_query.Node_LockStmt:
		a.lock(v.LockStmt)
	case *pg_query.Node_VacuumStmt:
		a.vacuum(v.VacuumStmt)
	case *pg_query.Node_ReindexStmt:
		a.reindex(v.ReindexStmt)
	case *pg_query.Node_ClusterStmt:
		a.cluster(v.ClusterStmt)
	case *pg_query.Node_RefreshMatViewStmt:
		a.refreshMatView(v.RefreshMatViewStmt)

	// opaque code (session.go)
	case *pg_query.Node_CallStmt:
		a.call(v.CallStmt)
	case *pg_query.Node_ExecuteStmt:
		a.execute(v.ExecuteStmt)

	// session (session.go)
	case *pg_query.Node_PrepareStmt:
		a.prepare(v.PrepareStmt)
	case *pg_query.Node_DeallocateStmt:
		a.deallocate(v.DeallocateStmt)
	case *pg_query.Node_DiscardStmt:
		a.discard(v.DiscardStmt)
	case *pg_query.Node_ListenStmt:
		a.listen(v.ListenStmt)
	case *pg_query.Node_UnlistenStmt:
		a.unlisten(v.UnlistenStmt)
	case *pg_query.Node_NotifyStmt:
		a.notify(v.NotifyStmt)
	case *pg_query.Node_DeclareCursorStmt:
		a.declareCursor(v.DeclareCursorStmt)
	case *pg_query.Node_FetchStmt:
		a.fetch(v.FetchStmt)
	case *pg_query.Node_ClosePortalStmt:
		a.closePortal(v.ClosePortalStmt)

	case *pg_query.Node_ReturnStmt, *pg_query.Node_PlassignStmt:
		// parts of SQL function bodies; their expressions are walked
	default:
		a.otherStmt(n) // ddl.go
	}
	return true
}
