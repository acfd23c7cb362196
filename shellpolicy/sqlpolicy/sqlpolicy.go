// Package sqlpolicy classifies SQL statements with the real PostgreSQL
// parser (pg_query_go) and decides, by each statement's most consequential
// effect, whether bastion allows it, holds it for approval, or denies it.
//
// The default policy (DefaultRules) in short:
//
//   - deny: DROP of anything, TRUNCATE, COPY ... PROGRAM, server file access
//     (COPY to or from a server file, pg_read_file, lo_export, ... anywhere in
//     the statement, file_fdw options, LOAD), ALTER SYSTEM, code in untrusted
//     languages, settings that make the server read strings differently from
//     this parser (standard_conforming_strings off, client_encoding SJIS and
//     kin), and SQL that does not parse;
//   - approve: DELETE and UPDATE (and MERGE) whose WHERE does not restrict
//     them to some rows, ALTER ... DROP, other schema changes, GRANT and
//     REVOKE, role changes (CREATE ROLE, SET ROLE, set_config('role', ...)),
//     LOCK, opaque code (DO, CALL, EXECUTE, dblink), backend signals and
//     other admin functions, sensitive settings, VACUUM FULL, CLUSTER,
//     REINDEX;
//   - allow: reads, INSERT, DELETE and UPDATE with a restricting WHERE,
//     creating new tables, indexes, views, sequences, schemas and types,
//     EXPLAIN (EXPLAIN ANALYZE is judged as the statement it runs),
//     transaction control, ordinary SET/SHOW/RESET, PREPARE (judged by the
//     statement prepared), cursors, LISTEN/NOTIFY, plain VACUUM and ANALYZE.
//
// Data-modifying CTEs, statements inside CREATE RULE and CREATE SCHEMA,
// SQL function bodies, the SQL inside PL/pgSQL bodies and DO blocks
// (including string constants given to EXECUTE), and SQL given as text to
// the functions that run it (ts_stat, ts_rewrite, query_to_xml, crosstab,
// connectby, xpath_table, dblink...: see querytext.go) are judged too, the
// call taking the stricter verdict; such a text that is not a constant is
// approve. A string of several statements takes the strictest verdict.
//
// The judgement is static. A WHERE restricts unless it is true for every
// row by construction (see restricts): WHERE true, 1 = 1, x OR true,
// id = id, id IS NOT NULL, a OR NOT a, x < 5 OR x >= 5, LIKE '%',
// id IN (SELECT id FROM t) and a self-join on the same key count as every
// row; id > 0 restricts, even if it holds for every row. A function, view
// or trigger that already exists in the database is judged by its name
// only. psql backslash commands are not SQL and do not parse.
package sqlpolicy

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	pgparser "github.com/pganalyze/pg_query_go/v6/parser"

	"github.com/bastion-dev/bastion/policy"
)

// Statement is one statement of a classified SQL string.
type Statement struct {
	Text   string        // this statement's text, trimmed, without its ';'
	Kind   string        // e.g. "SELECT", "DELETE", "DROP TABLE", "ALTER TABLE"
	Result policy.Result // the verdict for this statement alone
	Reads  bool          // it returns or reads data
	Writes bool          // it changes data, the schema or server state
}

// Outcome is the verdict for a whole SQL string: the strictest result of
// its statements (the first one on a tie), and each statement with its own.
// Statements is empty when the string holds no statement or cannot be
// parsed.
type Outcome struct {
	policy.Result
	Statements []Statement
}

// Classifier is a compiled SQL policy. It is immutable and safe for
// concurrent use. The zero value and a nil *Classifier apply the default
// policy. Classifiers made by Default and New remember the verdicts of the
// texts they have classified (see verdicts and Verdict).
type Classifier struct {
	rules  *ruleset  // nil means the default policy
	seen   *verdicts // nil: no cache
	shapes *shapes   // nil: no cache by shape (see Verdict)
}

var defaultRules = func() *ruleset {
	rs, err := compile(nil)
	if err != nil {
		panic("sqlpolicy: built-in rules do not compile: " + err.Error()) // impossible: covered by tests
	}
	return rs
}()

var defaultClassifier = &Classifier{rules: defaultRules, seen: &verdicts{}, shapes: &shapes{}}

// Default returns the classifier for the built-in policy.
func Default() *Classifier { return defaultClassifier }

// New returns a classifier for the built-in rules overridden and extended
// by rules (see Rule). An error names each bad rule by position and id:
// it joins one *RuleError per bad rule, in list order.
func New(rules []Rule) (*Classifier, error) {
	rs, err := compile(rules)
	if err != nil {
		return nil, err
	}
	return &Classifier{rules: rs, seen: &verdicts{}, shapes: &shapes{}}, nil
}

// Classify is Default().Classify(sql).Result; shellpolicy uses it for
// psql -c.
func Classify(sql string) policy.Result { return Default().Classify(sql).Result }

func (c *Classifier) ruleset() *ruleset {
	if c == nil || c.rules == nil {
		return defaultRules
	}
	return c.rules
}

// Classify parses sql as PostgreSQL 17 does and judges each statement.
func (c *Classifier) Classify(sql string) Outcome {
	var seen *verdicts
	if c != nil {
		seen = c.seen
	}
	if out, ok := seen.get(sql); ok {
		return out
	}
	out := c.classify(sql)
	seen.put(sql, out)
	return out
}

// classify is Classify without the cache.
func (c *Classifier) classify(sql string) Outcome {
	out, _ := c.classifyTree(sql)
	return out
}

// classifyTree is classify that also returns the parse tree (nil when sql
// does not parse).
func (c *Classifier) classifyTree(sql string) (Outcome, *pg_query.ParseResult) {
	rs := c.ruleset()
	if i := strings.IndexByte(sql, 0); i >= 0 {
		// The server reads a query string up to its first NUL; what the
		// parser here would see and what the server runs could differ.
		return Outcome{Result: parseError(rs, sql, "SQL contains a NUL byte", utf8.RuneCountInString(sql[:i])+1)}, nil
	}
	tree, err := pg_query.Parse(sql)
	if err != nil {
		var pe *pgparser.Error
		if errors.As(err, &pe) {
			return Outcome{Result: parseError(rs, sql, pe.Message, pe.Cursorpos)}, nil
		}
		return Outcome{Result: parseError(rs, sql, err.Error(), 0)}, nil
	}
	if len(tree.Stmts) == 0 {
		return Outcome{Result: resultOf(rs.base["sql-empty"], "no SQL statement")}, tree
	}
	out := Outcome{Statements: make([]Statement, 0, len(tree.Stmts))}
	for i, raw := range tree.Stmts {
		st := rs.statement(raw.Stmt, statementText(sql, raw))
		if i == 0 || st.Result.Stricter(out.Result) {
			out.Result = st.Result
		}
		out.Statements = append(out.Statements, st)
	}
	return out, tree
}

// statement judges one top-level statement: each finding under the rules,
// then the rules a policy added; the strictest wins.
func (rs *ruleset) statement(n *pg_query.Node, text string) Statement {
	a := analyze(n, 0)
	st := Statement{Text: text, Kind: a.kind, Reads: a.reads, Writes: a.writes}
	if st.Kind == "" {
		st.Kind = kindFromTypeName(nodeTypeName(n))
	}
	best, weak, have := policy.Result{}, false, false
	consider := func(r policy.Result, w bool) {
		if !have || r.Stricter(best) || r.Decision == best.Decision && weak && !w {
			best, weak, have = r, w, true
		}
	}
	for _, f := range a.findings {
		consider(rs.result(f), f.weak)
	}
	if !have {
		// Unreachable for statements the parser produces; fail closed.
		consider(resultOf(rs.base["sql-ddl"], st.Kind), false)
	}
	for _, r := range rs.extra {
		if table, fn, ok := r.match.matchesStatement(a); ok {
			detail := st.Kind
			if table != "" {
				detail += " touching " + table
			}
			if fn != "" {
				detail += " calling " + fn + "()"
			}
			consider(resultOf(r.Rule, detail), false)
		}
	}
	st.Result = best
	return st
}

// statementText cuts one statement out of the input by the parser's byte
// offsets; a length of 0 means "to the end".
func statementText(sql string, raw *pg_query.RawStmt) string {
	start, end := int(raw.StmtLocation), len(sql)
	if raw.StmtLen > 0 {
		end = start + int(raw.StmtLen)
	}
	if start < 0 || start > end || end > len(sql) {
		return strings.TrimSpace(sql)
	}
	return strings.TrimSpace(sql[start:end])
}

// parseError is the deny for SQL the parser rejects, with the parser's
// message and where it stopped (cursor is 1-based, in characters).
func parseError(rs *ruleset, sql, msg string, cursor int) policy.Result {
	detail := "cannot parse SQL: " + msg
	if cursor > 0 {
		line, col, n := 1, 1, 0
		for _, r := range sql {
			if n++; n >= cursor {
				break
			}
			if r == '\n' {
				line, col = line+1, 1
			} else {
				col++
			}
		}
		detail += fmt.Sprintf(" at position %d (line %d, column %d)", cursor, line, col)
	}
	return resultOf(rs.base["sql-parse-error"], detail)
}

// ClassifySetting judges a run-time parameter that a client sets outside
// SQL: a parameter of the startup message (client_encoding=SJIS) or a
// "-c name=value" in its options parameter. These change how the server
// reads every later statement or which role runs it, just as SET does, so a
// proxy checks them with the same rules. Splitting the options string is
// the caller's part.
func (c *Classifier) ClassifySetting(name, value string) policy.Result {
	rs := c.ruleset()
	name = strings.ToLower(strings.TrimSpace(name))
	detail := "startup parameter " + name + "=" + truncate(value, 40)
	a := &analysis{kind: "SET"}
	if a.setting(name, value, true, "SET", detail, nil) {
		return resultOf(rs.base["sql-session"], detail)
	}
	best := rs.result(a.findings[0])
	for _, f := range a.findings[1:] {
		if r := rs.result(f); r.Stricter(best) {
			best = r
		}
	}
	return best
}
