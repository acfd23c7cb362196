package sqlpolicy

// SQL given as text to a function that runs it. ts_stat('SELECT
// to_tsvector(pg_read_file(''/etc/passwd''))') runs a pg_read_file the
// statement around it never names, so the text is parsed and judged as the
// statement it is, and the call takes the stricter of the two verdicts.
//
// The functions are those of PostgreSQL 15's catalog, core and contrib,
// whose C code hands an argument to SPI (the server's "run this SQL"
// interface) or to another server (dblink): found by listing pg_proc's
// functions with a text argument and reading what each does with it. Their
// argument lists are in the comments below, as pg_proc has them.
//
//   - ts_stat(query text [, weights text]) and ts_rewrite(query tsquery,
//     select text) run their text as a query; query_to_xml,
//     query_to_xmlschema and query_to_xml_and_xmlschema(query text, nulls
//     boolean, tableforest boolean, targetns text) too.
//   - tablefunc: crosstab(source_sql text [, category_sql text | N
//     integer]) and crosstab2/3/4(source_sql text) run their texts;
//     connectby(relname, keyid_fld, parent_keyid_fld [, orderby_fld],
//     start_with, max_depth [, branch_delim]) pastes its first texts into a
//     SELECT it runs, unquoted, so they are SQL too.
//   - xml2: xpath_table(key, document, relname, xpaths, criteria) runs
//     "SELECT key, document FROM relname WHERE criteria", pasted unquoted.
//   - dblink: dblink and dblink_exec([connname,] sql [, fail_on_error]),
//     dblink_open([connname,] cursorname, sql [, fail_on_error]) and
//     dblink_send_query(connname, sql) run their sql on another server,
//     over a connection bastion does not see; they stay opaque whatever the
//     text, and the text can make them stricter still.
//
// Not query text: table_to_xml, table_to_xmlschema and
// table_to_xml_and_xmlschema take a regclass (a table's name, which is
// recorded as a table the statement reads); cursor_to_xml and
// cursor_to_xmlschema fetch from a cursor declared by a statement of its
// own; dblink_build_sql_* return SQL without running it.
//
// A text that is not a constant string (a column, a concatenation, $1, a
// function's result, a cast that could truncate it) is not known before it
// runs: the call is opaque (approve), and any string constant inside it
// that parses as SQL is judged too. A function of one of these names in
// another schema is treated the same (functions are matched by name).

import (
	"errors"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	pgparser "github.com/pganalyze/pg_query_go/v6/parser"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// queryFunc is a function that runs SQL given as text.
type queryFunc struct {
	// opaque: the call needs approval whatever its text. dblink runs it on
	// another server; query_to_xml returns the query's rows whole inside
	// one xml value, where no column rule can follow them.
	opaque bool
	// texts returns the SQL the call runs. ok is false when some of it is
	// not known before the call runs (an argument is not a constant).
	texts func(args callArgs) (sql []string, ok bool)
}

var queryFuncs = map[string]queryFunc{
	"ts_stat":                    {texts: queryArg(0, "query")},
	"ts_rewrite":                 {texts: tsRewrite},
	"query_to_xml":               {opaque: true, texts: queryArg(0, "query")},
	"query_to_xmlschema":         {opaque: true, texts: queryArg(0, "query")},
	"query_to_xml_and_xmlschema": {opaque: true, texts: queryArg(0, "query")},
	"crosstab":                   {texts: crosstab},
	"crosstab2":                  {texts: queryArg(0, "")},
	"crosstab3":                  {texts: queryArg(0, "")},
	"crosstab4":                  {texts: queryArg(0, "")},
	"connectby":                  {texts: connectby},
	"xpath_table":                {texts: xpathTable},
	"dblink":                     {opaque: true, texts: dblink},
	"dblink_exec":                {opaque: true, texts: dblink},
	"dblink_open":                {opaque: true, texts: dblinkOpen},
	"dblink_send_query":          {opaque: true, texts: positional(2, 1)},
}

// regclassFuncs take a table by name (a regclass) as their first argument
// and read all of it.
var regclassFuncs = set("table_to_xml", "table_to_xmlschema", "table_to_xml_and_xmlschema")

// callArgs are a call's arguments: positional ones first, then those given
// by name (f(a, name => b)), as Postgres requires.
type callArgs struct {
	pos   []*pg_query.Node
	named map[string]*pg_query.Node
}

func newCallArgs(args []*pg_query.Node) callArgs {
	var c callArgs
	for _, n := range args {
		if na := n.GetNamedArgExpr(); na != nil {
			if c.named == nil {
				c.named = map[string]*pg_query.Node{}
			}
			c.named[strings.ToLower(na.Name)] = na.Arg
			continue
		}
		c.pos = append(c.pos, n)
	}
	return c
}

func (c callArgs) n() int { return len(c.pos) + len(c.named) }

// text is the constant string of positional argument i.
func (c callArgs) text(i int) (string, bool) {
	if i >= len(c.pos) {
		return "", false
	}
	return queryConst(c.pos[i])
}

// queryArg is the text of positional argument i, or of the argument named
// name (when the function's argument has a name in pg_proc).
func queryArg(i int, name string) func(callArgs) ([]string, bool) {
	return func(c callArgs) ([]string, bool) {
		if n, ok := c.named[name]; ok && name != "" {
			s, ok := queryConst(n)
			return []string{s}, ok
		}
		if len(c.named) > 0 && i >= len(c.pos) {
			return nil, false // a name this function does not have: fail closed
		}
		s, ok := c.text(i)
		return []string{s}, ok
	}
}

// positional is the text of argument i of a call with n arguments; other
// calls of the name have no query text. Functions without argument names
// take no named arguments.
func positional(n, i int) func(callArgs) ([]string, bool) {
	return func(c callArgs) ([]string, bool) {
		if len(c.named) > 0 {
			return nil, false
		}
		if len(c.pos) != n {
			return nil, true
		}
		s, ok := c.text(i)
		return []string{s}, ok
	}
}

// tsRewrite: ts_rewrite(query tsquery, select text) runs its second
// argument; ts_rewrite(query, target, substitute) takes three tsqueries.
func tsRewrite(c callArgs) ([]string, bool) { return positional(2, 1)(c) }

// crosstab(source_sql) and crosstab(source_sql, N integer) run one text,
// crosstab(source_sql, category_sql) two. A second argument that is neither
// a string nor an integer constant could be either.
func crosstab(c callArgs) ([]string, bool) {
	if len(c.named) > 0 || len(c.pos) == 0 {
		return nil, len(c.pos) == 0 && len(c.named) == 0
	}
	src, ok := c.text(0)
	out := []string{src}
	if len(c.pos) >= 2 {
		if !isIntConst(c.pos[1]) {
			cat, catOK := c.text(1)
			out, ok = append(out, cat), ok && catOK
		}
	}
	return out, ok
}

// connectby builds, as tablefunc.c's build_tuplestore_recursively does,
//
//	SELECT key, parent FROM rel WHERE parent = 'start' AND key IS NOT NULL AND key <> parent [ORDER BY orderby]
//
// from its unquoted texts; start_with is quoted, so its value is not SQL.
// With six arguments the form depends on which of the fifth and sixth is
// the integer max_depth; when the call does not show it, both are judged.
func connectby(c callArgs) ([]string, bool) {
	if len(c.named) > 0 {
		return nil, false
	}
	build := func(orderby bool) (string, bool) {
		rel, ok1 := c.text(0)
		key, ok2 := c.text(1)
		parent, ok3 := c.text(2)
		sql := "SELECT " + key + ", " + parent + " FROM " + rel + " WHERE " + parent + " = 'x' AND " +
			key + " IS NOT NULL AND " + key + " <> " + parent
		ok := ok1 && ok2 && ok3
		if orderby {
			o, ok4 := c.text(3)
			sql += " ORDER BY " + o
			ok = ok && ok4
		}
		return sql, ok
	}
	var forms []bool
	switch n := len(c.pos); {
	case n < 5:
		return nil, true // no such function
	case n == 5:
		forms = []bool{false}
	case n == 6 && isIntConst(c.pos[4]):
		forms = []bool{false}
	case n == 6 && isIntConst(c.pos[5]):
		forms = []bool{true}
	case n == 6:
		forms = []bool{false, true}
	default:
		forms = []bool{true}
	}
	var out []string
	ok := true
	for _, f := range forms {
		s, sok := build(f)
		out, ok = append(out, s), ok && sok
	}
	return out, ok
}

// xpathTable is the query xml2's xpath_table runs: its texts pasted into
// "SELECT %s, %s FROM %s WHERE %s" (contrib/xml2/xpath.c).
func xpathTable(c callArgs) ([]string, bool) {
	if len(c.named) > 0 {
		return nil, false
	}
	if len(c.pos) != 5 {
		return nil, true
	}
	key, ok1 := c.text(0)
	doc, ok2 := c.text(1)
	rel, ok3 := c.text(2)
	cond, ok4 := c.text(4)
	return []string{"SELECT " + key + ", " + doc + " FROM " + rel + " WHERE " + cond}, ok1 && ok2 && ok3 && ok4
}

// dblink and dblink_exec: (sql), (sql, fail_on_error boolean),
// (connname, sql), (connname, sql, fail_on_error). With two arguments the
// second tells them apart: a boolean, or a string (Postgres resolves an
// untyped literal to text first).
func dblink(c callArgs) ([]string, bool) {
	if len(c.named) > 0 {
		return nil, false
	}
	switch len(c.pos) {
	case 1:
		return positional(1, 0)(c)
	case 2:
		if isBoolConst(c.pos[1]) {
			return positional(2, 0)(c)
		}
		if _, ok := c.text(1); ok {
			return positional(2, 1)(c)
		}
		return nil, false
	case 3:
		return positional(3, 1)(c)
	}
	return nil, true
}

// dblinkOpen: (cursorname, sql), (cursorname, sql, fail_on_error),
// (connname, cursorname, sql), (connname, cursorname, sql, fail_on_error).
func dblinkOpen(c callArgs) ([]string, bool) {
	if len(c.named) > 0 {
		return nil, false
	}
	switch len(c.pos) {
	case 2:
		return positional(2, 1)(c)
	case 3:
		if isBoolConst(c.pos[2]) {
			return positional(3, 1)(c)
		}
		if _, ok := c.text(2); ok {
			return positional(3, 2)(c)
		}
		return nil, false
	case 4:
		return positional(4, 2)(c)
	}
	return nil, true
}

func isBoolConst(n *pg_query.Node) bool {
	c, ok := constValue(n)
	return ok && !c.null && c.kind == 'b'
}

func isIntConst(n *pg_query.Node) bool {
	c, ok := constValue(n)
	return ok && !c.null && c.kind == 'n' && !c.isStr && c.n.IsInt()
}

// queryConst is the value of a string constant given as query text: a
// plain, E'...', U&'...' or dollar-quoted string (the parser has resolved its
// quoting), seen through casts to text or varchar without a length. Any
// other cast could change the text the function runs ('...'::varchar(13)
// and ::name cut it short, ::char keeps one character), so the text is
// then not known.
func queryConst(n *pg_query.Node) (string, bool) {
	for tc := n.GetTypeCast(); tc != nil; tc = n.GetTypeCast() {
		tn := tc.TypeName
		if tn == nil || len(tn.Names) == 0 || len(tn.Typmods) > 0 || len(tn.ArrayBounds) > 0 || tn.Setof {
			return "", false
		}
		switch tn.Names[len(tn.Names)-1].GetString_().GetSval() {
		case "text", "varchar":
		default:
			return "", false
		}
		n = tc.Arg
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

// queryCall judges a call of a function that runs SQL given as text.
func (a *analysis) queryCall(fc *pg_query.FuncCall, q queryFunc, call, kind string, fn []string) {
	args := newCallArgs(fc.Args)
	texts, known := q.texts(args)
	if fc.FuncVariadic || fc.AggStar {
		texts, known = nil, false
	}
	switch {
	case !known:
		a.flag("sql-opaque", kind, call+" runs SQL given as a string that is not a constant", nil, fn...)
		// What it is built from can still be judged: a constant that
		// parses as SQL, e.g. the format string of format('DROP TABLE %I', t).
		for _, arg := range fc.Args {
			for _, s := range argStrings(arg) {
				a.queryText(call, s, true)
			}
		}
	case q.opaque:
		a.flag("sql-opaque", kind, call+" runs SQL given as a string", nil, fn...)
	}
	for _, s := range texts {
		// A text with unknown parts is only a guess at what runs.
		a.queryText(call, s, !known)
	}
}

// queryText judges SQL that a call runs. A fragment only guessed at
// (loose) is judged when it parses and ignored when it does not; a text the
// call will run must parse.
func (a *analysis) queryText(call, src string, loose bool) {
	if strings.TrimSpace(src) == "" {
		return
	}
	where := "in the query given to " + call
	if a.depth >= maxBodyDepth {
		a.flag("sql-opaque", a.kind, "SQL text nested too deep "+where, nil)
		return
	}
	tree, err := pg_query.Parse(src)
	if err != nil {
		if !loose {
			a.flag("sql-parse-error", a.kind, "cannot parse the query given to "+call+": "+parseMessage(err), nil)
		}
		return
	}
	for _, rs := range tree.Stmts {
		a.absorb(analyze(rs.Stmt, a.depth+1), where)
	}
}

func parseMessage(err error) string {
	var pe *pgparser.Error
	if errors.As(err, &pe) {
		return pe.Message
	}
	return err.Error()
}

// argStrings are the texts to try as SQL in an argument that is not a
// constant: a concatenation of constants ('SELECT ' || 'pg_read_file(...)')
// joined up, and each string constant in it, with format()'s placeholders
// filled in.
func argStrings(n *pg_query.Node) []string {
	var out []string
	if s, ok := concatConst(n, 0); ok {
		out = append(out, s)
	}
	fill := strings.NewReplacer("%I", "x", "%L", "'x'", "%s", "x")
	walkNode(n, func(m protoreflect.Message) bool {
		if c, ok := m.Interface().(*pg_query.A_Const); ok {
			if s, ok := c.Val.(*pg_query.A_Const_Sval); ok && strings.TrimSpace(s.Sval.Sval) != "" {
				out = append(out, fill.Replace(s.Sval.Sval))
			}
		}
		return true
	})
	return out
}

// concatConst folds a || b of string constants.
func concatConst(n *pg_query.Node, depth int) (string, bool) {
	if s, ok := queryConst(n); ok {
		return s, true
	}
	x := n.GetAExpr()
	if x == nil || x.Kind != pg_query.A_Expr_Kind_AEXPR_OP || stringList(x.Name, false) != "||" || depth > 100 {
		return "", false
	}
	l, lok := concatConst(x.Lexpr, depth+1)
	r, rok := concatConst(x.Rexpr, depth+1)
	return l + r, lok && rok
}

// regclassCall records the table a table_to_xml-style call reads, when it
// is named by a constant, so that rules about that table see it.
func (a *analysis) regclassCall(fc *pg_query.FuncCall) {
	if len(fc.Args) == 0 {
		return
	}
	arg := fc.Args[0]
	if na := arg.GetNamedArgExpr(); na != nil {
		arg = na.Arg
	}
	name, ok := constString(arg)
	if !ok {
		return
	}
	// regclass reads the name as an identifier, possibly qualified and
	// quoted: as a relation in FROM would be.
	tree, err := pg_query.Parse("TABLE " + name)
	if err != nil || len(tree.Stmts) != 1 {
		return
	}
	s := tree.Stmts[0].Stmt.GetSelectStmt()
	if s == nil || len(s.FromClause) != 1 {
		return
	}
	if rv := s.FromClause[0].GetRangeVar(); rv != nil {
		a.tables = append(a.tables, rawName(rv.Schemaname, rv.Relname))
		a.shown = append(a.shown, rangeVarName(rv))
	}
}
