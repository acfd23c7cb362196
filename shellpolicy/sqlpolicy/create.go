package sqlpolicy

// Statements that create new objects: tables, indexes, views, sequences,
// schemas, types, domains, statistics, foreign tables, triggers, rules,
// languages and extensions. Creating is allowed (sql-create) unless it
// replaces something, hands ownership away or reaches outside the database.

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func (a *analysis) createTable(s *pg_query.CreateStmt) {
	a.writes = true
	a.base(a.enter("CREATE TABLE"), "sql-create", "CREATE TABLE", "CREATE TABLE "+rangeVarName(s.Relation), rvRaw(s.Relation)...)
}

func (a *analysis) createTableAs(s *pg_query.CreateTableAsStmt) {
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
}

func (a *analysis) createIndex(s *pg_query.IndexStmt) {
	a.writes = true
	detail := "CREATE INDEX "
	if s.Idxname != "" {
		detail += quoteIdent(s.Idxname) + " "
	}
	a.base(a.enter("CREATE INDEX"), "sql-create", "CREATE INDEX", detail+"ON "+rangeVarName(s.Relation), rvRaw(s.Relation)...)
}

// createView: CREATE OR REPLACE VIEW changes what an existing view shows.
func (a *analysis) createView(s *pg_query.ViewStmt) {
	a.writes = true
	root := a.enter("CREATE VIEW")
	if s.Replace {
		a.base(root, "sql-ddl", "CREATE VIEW", "CREATE OR REPLACE VIEW "+rangeVarName(s.View), rvRaw(s.View)...)
	} else {
		a.base(root, "sql-create", "CREATE VIEW", "CREATE VIEW "+rangeVarName(s.View), rvRaw(s.View)...)
	}
}

func (a *analysis) createSequence(s *pg_query.CreateSeqStmt) {
	a.writes = true
	a.base(a.enter("CREATE SEQUENCE"), "sql-create", "CREATE SEQUENCE", "CREATE SEQUENCE "+rangeVarName(s.Sequence), rvRaw(s.Sequence)...)
}

// createSchema: a schema created for another role is a privilege change.
func (a *analysis) createSchema(s *pg_query.CreateSchemaStmt) {
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
}

// createType covers CREATE TYPE in all its forms: enum, composite, range
// and base (DefineStmt).
func (a *analysis) createType(name string) {
	a.writes = true
	a.base(a.enter("CREATE TYPE"), "sql-create", "CREATE TYPE", "CREATE TYPE "+name)
}

func (a *analysis) createDomain(s *pg_query.CreateDomainStmt) {
	a.writes = true
	a.base(a.enter("CREATE DOMAIN"), "sql-create", "CREATE DOMAIN", "CREATE DOMAIN "+stringList(s.Domainname, true))
}

// define: CREATE AGGREGATE, OPERATOR, COLLATION, TEXT SEARCH ... are schema
// changes; a new type (not CREATE OR REPLACE) is a plain creation.
func (a *analysis) define(s *pg_query.DefineStmt) {
	if s.Kind == pg_query.ObjectType_OBJECT_TYPE && !s.Replace {
		a.createType(stringList(s.Defnames, true))
		return
	}
	k := "CREATE " + objectTypeName(s.Kind)
	a.writes = true
	a.base(a.enter(k), "sql-ddl", k, k+" "+stringList(s.Defnames, true))
}

func (a *analysis) createStatistics(s *pg_query.CreateStatsStmt) {
	a.writes = true
	a.base(a.enter("CREATE STATISTICS"), "sql-create", "CREATE STATISTICS", "CREATE STATISTICS "+stringList(s.Defnames, true))
}

// createForeignTable marks the analysis foreign, so that its OPTIONS are
// judged by foreignOption.
func (a *analysis) createForeignTable(s *pg_query.CreateForeignTableStmt) {
	a.writes, a.foreign = true, true
	var rel *pg_query.RangeVar
	if s.BaseStmt != nil {
		rel = s.BaseStmt.Relation
	}
	a.base(a.enter("CREATE FOREIGN TABLE"), "sql-ddl", "CREATE FOREIGN TABLE", "CREATE FOREIGN TABLE "+rangeVarName(rel)+" SERVER "+quoteIdent(s.Servername), rvRaw(rel)...)
}

func (a *analysis) createTrigger(s *pg_query.CreateTrigStmt) {
	a.writes = true
	a.base(a.enter("CREATE TRIGGER"), "sql-ddl", "CREATE TRIGGER", "CREATE TRIGGER "+quoteIdent(s.Trigname)+" ON "+rangeVarName(s.Relation), rvRaw(s.Relation)...)
}

func (a *analysis) createRule(s *pg_query.RuleStmt) {
	a.writes = true
	a.base(a.enter("CREATE RULE"), "sql-ddl", "CREATE RULE", "CREATE RULE "+quoteIdent(s.Rulename)+" ON "+rangeVarName(s.Relation), rvRaw(s.Relation)...)
}

func (a *analysis) createLanguage(s *pg_query.CreatePLangStmt) {
	root := a.enter("CREATE LANGUAGE")
	a.writes = true
	a.base(root, "sql-ddl", "CREATE LANGUAGE", "CREATE LANGUAGE "+quoteIdent(s.Plname))
	if untrustedLanguage(s.Plname) {
		a.flag("sql-untrusted-language", "CREATE LANGUAGE", "CREATE LANGUAGE "+quoteIdent(s.Plname), nil)
	}
}

// createExtension: an extension that is an untrusted language runs server
// code; adminpack and file_fdw read and write server files.
func (a *analysis) createExtension(s *pg_query.CreateExtensionStmt) {
	root := a.enter("CREATE EXTENSION")
	a.writes = true
	a.base(root, "sql-ddl", "CREATE EXTENSION", "CREATE EXTENSION "+quoteIdent(s.Extname))
	switch {
	case untrustedLanguage(s.Extname):
		a.flag("sql-untrusted-language", "CREATE EXTENSION", "CREATE EXTENSION "+quoteIdent(s.Extname), nil)
	case s.Extname == "adminpack" || s.Extname == "file_fdw":
		a.flag("sql-server-file", "CREATE EXTENSION", "CREATE EXTENSION "+quoteIdent(s.Extname), nil)
	}
}
