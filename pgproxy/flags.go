package pgproxy

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// textFlags are what one cheap pass over a statement's text tells the
// proxy before anything is parsed: whether the statement may change how
// names resolve, the schema, or rows in bulk. A word inside a string or a
// comment sets a flag too; the parse tree then decides (see treeFlags).
type textFlags uint8

const (
	// flagPath: the statement may change search_path (SET, SET SCHEMA,
	// set_config, a Unicode-escaped identifier that could spell it).
	flagPath textFlags = 1 << iota
	// flagTemp: it may create a temporary relation, which hides a
	// relation of the same name from the session only.
	flagTemp
	// flagSchema: it may change what the catalog said (CREATE, ALTER).
	flagSchema
	// flagNamed: it may DECLARE a cursor or PREPARE a statement.
	flagNamed
	// flagModify: it may UPDATE or DELETE (a planner estimate candidate).
	flagModify
)

// needle is a word scanText looks for, lower case.
type needle struct {
	word   string
	flag   textFlags
	prefix bool // the word may run on (U&"..."), else it ends at a non-identifier byte
}

// needles are indexed by the word's first byte.
var needles = [256][]needle{
	'a': {{word: "alter", flag: flagSchema}},
	'c': {{word: "create", flag: flagSchema}},
	'd': {{word: "delete", flag: flagModify}, {word: "declare", flag: flagNamed}, {word: "do", flag: flagSchema | flagPath | flagTemp}},
	'p': {{word: "prepare", flag: flagNamed}, {word: "pg_temp", flag: flagTemp}},
	's': {{word: "search_path", flag: flagPath}, {word: "schema", flag: flagPath}, {word: "set_config", flag: flagPath}},
	't': {{word: "temp", flag: flagTemp}, {word: "temporary", flag: flagTemp}},
	'u': {{word: "update", flag: flagModify}, {word: "u&", flag: flagPath, prefix: true}},
}

// scanText sets the flags whose words occur in sql as words, in any case.
func scanText(sql string) textFlags {
	var f textFlags
	for i := 0; i < len(sql); i++ {
		c := sql[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		list := needles[c]
		if len(list) == 0 || (i > 0 && identByte(sql[i-1])) {
			continue
		}
		for _, n := range list {
			if f&n.flag == n.flag || !hasPrefixFold(sql[i:], n.word) {
				continue
			}
			if end := i + len(n.word); n.prefix || end == len(sql) || !identByte(sql[end]) {
				f |= n.flag
			}
		}
	}
	return f
}

// identByte reports whether c can continue an unquoted identifier.
func identByte(c byte) bool {
	return c == '_' || c == '$' || c >= 0x80 || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// hasPrefixFold reports whether s begins with the lower-case ASCII word,
// in any case.
func hasPrefixFold(s, word string) bool {
	if len(s) < len(word) {
		return false
	}
	for i := 0; i < len(word); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != word[i] {
			return false
		}
	}
	return true
}

// treeFlags keeps those of the text's flags its parse tree confirms.
// flagNamed and flagModify are kept as they are (their users parse again).
func treeFlags(tree *pg_query.ParseResult, f textFlags) textFlags {
	keep := f & (flagNamed | flagModify)
	for _, raw := range tree.Stmts {
		n := raw.Stmt
		if f&flagSchema != 0 && changesSchema(n) {
			keep |= flagSchema
		}
		if f&(flagPath|flagTemp) == 0 {
			continue
		}
		walkTree(n.ProtoReflect(), func(m protoreflect.Message) bool {
			switch v := m.Interface().(type) {
			case *pg_query.DoStmt, *pg_query.CreateFunctionStmt:
				// Code that runs later, or now, out of sight.
				keep |= f & (flagPath | flagTemp)
			case *pg_query.VariableSetStmt:
				if v.Name == "search_path" && v.Kind != pg_query.VariableSetKind_VAR_RESET && v.Kind != pg_query.VariableSetKind_VAR_RESET_ALL {
					keep |= flagPath
				}
			case *pg_query.FuncCall:
				if _, name := funcName(v.Funcname); name == "set_config" && len(v.Args) > 0 {
					if c := v.Args[0].GetAConst(); c == nil || c.GetSval() == nil || strings.EqualFold(c.GetSval().Sval, "search_path") {
						keep |= flagPath
					}
				}
			case *pg_query.RangeVar:
				if v.Relpersistence == "t" || v.Schemaname == "pg_temp" {
					keep |= flagTemp
				}
			}
			return true
		})
	}
	return keep
}

// changesSchema reports whether a statement may change relations or
// functions the catalog describes: anything but reads, writes of rows,
// settings, transaction and cursor control and the like.
func changesSchema(n *pg_query.Node) bool {
	switch n.GetNode().(type) {
	case *pg_query.Node_SelectStmt, *pg_query.Node_InsertStmt, *pg_query.Node_UpdateStmt,
		*pg_query.Node_DeleteStmt, *pg_query.Node_MergeStmt, *pg_query.Node_ExplainStmt,
		*pg_query.Node_VariableShowStmt, *pg_query.Node_VariableSetStmt, *pg_query.Node_TransactionStmt,
		*pg_query.Node_CopyStmt, *pg_query.Node_DeclareCursorStmt, *pg_query.Node_FetchStmt,
		*pg_query.Node_ClosePortalStmt, *pg_query.Node_PrepareStmt, *pg_query.Node_ExecuteStmt,
		*pg_query.Node_DeallocateStmt, *pg_query.Node_ListenStmt, *pg_query.Node_NotifyStmt,
		*pg_query.Node_UnlistenStmt, *pg_query.Node_LockStmt, *pg_query.Node_VacuumStmt,
		*pg_query.Node_CheckPointStmt, *pg_query.Node_DiscardStmt:
		return false
	}
	return true
}
