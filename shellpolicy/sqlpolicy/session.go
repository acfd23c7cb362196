package sqlpolicy

// Session and transaction statements (SHOW, BEGIN ... COMMIT, PREPARE,
// LISTEN, cursors...) and the opaque ones that run code bastion cannot see
// from here (CALL, EXECUTE). SET is in functions.go with the settings.

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

func (a *analysis) showStmt(s *pg_query.VariableShowStmt) {
	root := a.enter("SHOW")
	a.reads = true
	a.base(root, "sql-session", "SHOW", "SHOW "+s.Name)
}

func (a *analysis) transactionStmt(s *pg_query.TransactionStmt) {
	k := transactionKind(s.Kind)
	a.base(a.enter(k), "sql-transaction", k, k)
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

func (a *analysis) constraintsSet() {
	a.base(a.enter("SET CONSTRAINTS"), "sql-transaction", "SET CONSTRAINTS", "SET CONSTRAINTS")
}

// call: the procedure's body is not visible in the statement.
func (a *analysis) call(s *pg_query.CallStmt) {
	a.reads = true
	name := ""
	if fc := s.Funccall; fc != nil {
		name = stringList(fc.Funcname, true)
	}
	a.base(a.enter("CALL"), "sql-opaque", "CALL", "CALL "+name)
}

// execute: EXECUTE alone does not say what the prepared statement does.
func (a *analysis) execute(s *pg_query.ExecuteStmt) {
	a.reads = true
	a.base(a.enter("EXECUTE"), "sql-opaque", "EXECUTE", "EXECUTE "+quoteIdent(s.Name)+" runs a prepared statement")
}

func (a *analysis) prepare(s *pg_query.PrepareStmt) {
	a.base(a.enter("PREPARE"), "sql-session", "PREPARE", "PREPARE "+quoteIdent(s.Name))
}

func (a *analysis) deallocate(s *pg_query.DeallocateStmt) {
	name := "ALL"
	if !s.Isall {
		name = quoteIdent(s.Name)
	}
	a.base(a.enter("DEALLOCATE"), "sql-session", "DEALLOCATE", "DEALLOCATE "+name)
}

func (a *analysis) discard(s *pg_query.DiscardStmt) {
	a.base(a.enter("DISCARD"), "sql-session", "DISCARD", "DISCARD "+strings.TrimPrefix(s.Target.String(), "DISCARD_"))
}

func (a *analysis) listen(s *pg_query.ListenStmt) {
	a.base(a.enter("LISTEN"), "sql-session", "LISTEN", "LISTEN "+quoteIdent(s.Conditionname))
}

func (a *analysis) unlisten(s *pg_query.UnlistenStmt) {
	a.base(a.enter("UNLISTEN"), "sql-session", "UNLISTEN", strings.TrimSpace("UNLISTEN "+s.Conditionname))
}

func (a *analysis) notify(s *pg_query.NotifyStmt) {
	a.base(a.enter("NOTIFY"), "sql-session", "NOTIFY", "NOTIFY "+quoteIdent(s.Conditionname))
}

func (a *analysis) declareCursor(s *pg_query.DeclareCursorStmt) {
	a.reads = true
	a.base(a.enter("DECLARE CURSOR"), "sql-read", "DECLARE CURSOR", "DECLARE "+quoteIdent(s.Portalname)+" CURSOR")
}

// fetch covers FETCH and MOVE.
func (a *analysis) fetch(s *pg_query.FetchStmt) {
	k := "FETCH"
	if s.Ismove {
		k = "MOVE"
	}
	a.reads = true
	a.base(a.enter(k), "sql-read", k, k+" "+quoteIdent(s.Portalname))
}

func (a *analysis) closePortal(s *pg_query.ClosePortalStmt) {
	name := s.Portalname
	if name == "" {
		name = "ALL"
	} else {
		name = quoteIdent(name)
	}
	a.base(a.enter("CLOSE"), "sql-session", "CLOSE", "CLOSE "+name)
}
