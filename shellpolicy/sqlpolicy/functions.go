package sqlpolicy

import (
	"encoding/json"
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Functions are matched by name whatever their schema, so that a
// pg_catalog.pg_read_file and a look-alike in another schema are treated
// the same.
var (
	// serverFileFuncs read, list or write files on the database server.
	serverFileFuncs = set("pg_read_file", "pg_read_binary_file", "pg_stat_file",
		"pg_ls_dir", "pg_ls_logdir", "pg_ls_waldir", "pg_ls_tmpdir", "pg_ls_archive_statusdir",
		"pg_ls_logicalsnapdir", "pg_ls_logicalmapdir", "pg_ls_replslotdir", "pg_ls_summariesdir",
		"lo_import", "lo_export",
		// adminpack
		"pg_file_write", "pg_file_rename", "pg_file_unlink", "pg_file_sync", "pg_logdir_ls",
		"pg_file_read", "pg_file_length")

	// opaqueFuncs open connections to other servers, for dblink to run
	// SQL on (the functions that run SQL given as text are queryFuncs).
	opaqueFuncs = set("dblink_connect", "dblink_connect_u")

	// adminFuncs signal other backends or change server-wide state.
	adminFuncs = set("pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf",
		"pg_rotate_logfile", "pg_promote", "pg_switch_wal", "pg_create_restore_point",
		"pg_backup_start", "pg_backup_stop", "pg_start_backup", "pg_stop_backup",
		"pg_wal_replay_pause", "pg_wal_replay_resume",
		"pg_create_physical_replication_slot", "pg_create_logical_replication_slot",
		"pg_drop_replication_slot", "pg_copy_physical_replication_slot",
		"pg_copy_logical_replication_slot", "pg_replication_slot_advance",
		"pg_logical_slot_get_changes", "pg_logical_slot_get_binary_changes",
		"pg_replication_origin_create", "pg_replication_origin_drop",
		"pg_stat_reset", "pg_stat_reset_shared", "pg_stat_reset_single_table_counters",
		"pg_stat_reset_single_function_counters", "pg_stat_reset_slru",
		"pg_stat_reset_replication_slot", "pg_stat_reset_subscription_stats",
		"pg_log_backend_memory_contexts", "pg_import_system_collations")

	// writeFuncs change data although they are called from a SELECT.
	writeFuncs = set("nextval", "setval", "lo_create", "lo_creat", "lo_unlink", "lo_put",
		"lo_from_bytea", "pg_notify")

	// sensitiveSettings weaken triggers, logging, read-only mode or checks.
	sensitiveSettings = set("session_replication_role", "allow_system_table_mods",
		"zero_damaged_pages", "ignore_checksum_failure", "ignore_system_indexes",
		"ignore_invalid_pages", "default_transaction_read_only", "transaction_read_only",
		"backslash_quote", "escape_string_warning", "check_function_bodies")
)

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

func sensitiveSetting(name string) bool {
	return sensitiveSettings[name] || strings.HasPrefix(name, "log_") || strings.HasPrefix(name, "pgaudit.")
}

// untrustedLanguage reports whether code in lang runs with the server's
// operating-system rights: C, internal, and the "u" (untrusted) variants
// of the procedural languages.
func untrustedLanguage(lang string) bool {
	lang = strings.ToLower(lang)
	switch lang {
	case "c", "internal", "plsh", "plr":
		return true
	}
	return strings.HasPrefix(lang, "pl") && strings.HasSuffix(lang, "u")
}

func (a *analysis) funcCall(fc *pg_query.FuncCall) {
	if len(fc.Funcname) == 0 {
		return
	}
	name := strings.ToLower(fc.Funcname[len(fc.Funcname)-1].GetString_().GetSval())
	qualified := strings.ToLower(stringList(fc.Funcname, false))
	a.funcs = append(a.funcs, qualified)
	fn := []string{qualified}
	kind := a.kind
	if kind == "" {
		kind = "SELECT"
	}
	call := stringList(fc.Funcname, true) + "()"
	switch {
	case serverFileFuncs[name]:
		a.flag("sql-server-file", kind, call, nil, fn...)
	case opaqueFuncs[name]:
		a.flag("sql-opaque", kind, call+" connects to another server to run SQL on", nil, fn...)
	case queryFuncs[name].texts != nil:
		a.queryCall(fc, queryFuncs[name], call, kind, fn)
	case regclassFuncs[name]:
		a.regclassCall(fc)
	case adminFuncs[name]:
		a.writes = true
		a.flag("sql-admin", kind, call, nil, fn...)
	case writeFuncs[name]:
		a.writes = true
		a.flag("sql-write", kind, call+" changes data", nil, fn...)
	case name == "set_config":
		a.setConfig(fc, kind, fn)
	}
}

// setConfig judges set_config(name, value, is_local) like the SET it is.
func (a *analysis) setConfig(fc *pg_query.FuncCall, kind string, fn []string) {
	if len(fc.Args) < 2 {
		return
	}
	name, ok := constString(fc.Args[0])
	if !ok {
		a.flag("sql-setting", kind, "set_config() with a computed setting name", nil, fn...)
		return
	}
	name = strings.ToLower(name)
	val, known := constString(fc.Args[1])
	a.setting(name, val, known, kind, "set_config('"+name+"', …)", fn)
}

// setting judges a change of the named setting, by SET, set_config or
// ALTER ROLE/DATABASE ... SET. It reports whether the change is an ordinary
// one.
func (a *analysis) setting(name, val string, known bool, kind, detail string, fn []string) bool {
	switch {
	case name == "role":
		// SET ROLE NONE (or 'none') goes back to the session user; a role
		// spelled "None" is another role.
		if known && val == "none" {
			return true
		}
		a.flag("sql-role", kind, detail, nil, fn...)
	case name == "session_authorization":
		a.flag("sql-role", kind, detail, nil, fn...)
	case name == "standard_conforming_strings":
		if b, ok := parseBool(val); known && ok && b {
			return true
		}
		a.flag("sql-string-syntax", kind, detail, nil, fn...)
	case name == "client_encoding":
		if known && !unsafeClientEncoding(val) {
			return true
		}
		a.flag("sql-string-syntax", kind, detail, nil, fn...)
	case sensitiveSetting(name):
		a.flag("sql-setting", kind, detail, nil, fn...)
	default:
		return true
	}
	return false
}

// unsafeClientEncoding reports whether a client encoding has multibyte
// characters whose later bytes can be a backslash or quote. With such an
// encoding the server reads E'\x95\” as a string that ends where the
// parser here, which reads UTF-8, sees an escaped quote: the two would
// split statements differently. Names are compared the way Postgres's
// clean_encoding_name does, ignoring case and punctuation.
func unsafeClientEncoding(enc string) bool {
	var b strings.Builder
	for _, r := range strings.ToLower(enc) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	switch b.String() {
	case "sjis", "shiftjis", "shiftjis2004", "mskanji", "win932", "windows932",
		"big5", "win950", "windows950", "gbk", "win936", "windows936", "cp936",
		"uhc", "win949", "windows949", "cp949", "johab", "gb18030":
		return true
	}
	return false
}

func (a *analysis) setStmt(s *pg_query.VariableSetStmt) {
	name := strings.ToLower(s.Name)
	switch s.Kind {
	case pg_query.VariableSetKind_VAR_RESET_ALL:
		a.base(a.enter("RESET"), "sql-session", "RESET", "RESET ALL")
		return
	case pg_query.VariableSetKind_VAR_RESET:
		a.base(a.enter("RESET"), "sql-session", "RESET", "RESET "+name)
		return
	case pg_query.VariableSetKind_VAR_SET_MULTI:
		// SET TRANSACTION ..., SET SESSION CHARACTERISTICS AS TRANSACTION ...
		a.base(a.enter("SET TRANSACTION"), "sql-transaction", "SET TRANSACTION", "SET "+s.Name)
		return
	}
	root := a.enter("SET")
	detail := setDetail(s)
	if s.Kind == pg_query.VariableSetKind_VAR_SET_DEFAULT {
		// back to the default: never a change of role or parser mode
		a.base(root, "sql-session", "SET", detail)
		return
	}
	val, known := settingValue(s)
	if a.setting(name, val, known, "SET", detail, nil) {
		a.base(root, "sql-session", "SET", detail)
	}
}

// settingValue is the constant a SET gives its setting, if it gives one.
func settingValue(s *pg_query.VariableSetStmt) (string, bool) {
	if s.Kind != pg_query.VariableSetKind_VAR_SET_VALUE {
		return "", false
	}
	vals := make([]string, 0, len(s.Args))
	for _, arg := range s.Args {
		v, ok := setArg(arg)
		if !ok {
			return "", false
		}
		vals = append(vals, v)
	}
	return strings.Join(vals, ", "), true
}

// setDetail writes a SET for a reason: "SET search_path = app, public",
// "SET ROLE admin", "SET LOCAL lock_timeout = 5s".
func setDetail(s *pg_query.VariableSetStmt) string {
	name := strings.ToLower(s.Name)
	detail, sep := "SET "+name, " = "
	switch name {
	case "role":
		detail, sep = "SET ROLE", " "
	case "session_authorization":
		detail, sep = "SET SESSION AUTHORIZATION", " "
	}
	if s.IsLocal {
		detail = strings.Replace(detail, "SET ", "SET LOCAL ", 1)
	}
	switch s.Kind {
	case pg_query.VariableSetKind_VAR_SET_DEFAULT:
		return detail + sep + "DEFAULT"
	case pg_query.VariableSetKind_VAR_RESET, pg_query.VariableSetKind_VAR_RESET_ALL:
		return "RESET " + name
	}
	if val, ok := settingValue(s); ok && val != "" {
		detail += sep + truncate(val, 40)
	}
	return detail
}

// nestedSet judges the SET inside ALTER ROLE/DATABASE ... SET, which takes
// effect at the next login.
func (a *analysis) nestedSet(s *pg_query.VariableSetStmt, kind, detail string) {
	if s == nil || s.Kind != pg_query.VariableSetKind_VAR_SET_VALUE {
		return
	}
	val, known := settingValue(s)
	a.setting(strings.ToLower(s.Name), val, known, kind, detail, nil)
}

func setArg(n *pg_query.Node) (string, bool) {
	if s, ok := constString(n); ok {
		return s, true
	}
	c := n.GetAConst()
	if c == nil {
		return "", false
	}
	switch v := c.Val.(type) {
	case *pg_query.A_Const_Ival:
		return strconv.Itoa(int(v.Ival.Ival)), true
	case *pg_query.A_Const_Fval:
		return v.Fval.Fval, true
	case *pg_query.A_Const_Boolval:
		return strconv.FormatBool(v.Boolval.Boolval), true
	}
	return "", false
}

// functionOptions returns the LANGUAGE and AS options of CREATE FUNCTION
// and DO.
func functionOptions(opts []*pg_query.Node) (lang string, body []string) {
	for _, o := range opts {
		d := o.GetDefElem()
		if d == nil {
			continue
		}
		switch d.Defname {
		case "language":
			lang = strings.ToLower(d.Arg.GetString_().GetSval())
		case "as":
			if l := d.Arg.GetList(); l != nil {
				for _, it := range l.Items {
					body = append(body, it.GetString_().GetSval())
				}
			} else if s := d.Arg.GetString_(); s != nil {
				body = append(body, s.Sval)
			}
		}
	}
	return lang, body
}

func (a *analysis) createFunction(s *pg_query.CreateFunctionStmt) {
	k := "CREATE FUNCTION"
	if s.IsProcedure {
		k = "CREATE PROCEDURE"
	}
	root := a.enter(k)
	a.writes = true
	lang, body := functionOptions(s.Options)
	if lang == "" && s.SqlBody != nil {
		lang = "sql"
	}
	name := stringList(s.Funcname, true)
	detail := k + " " + name
	if s.Replace {
		detail = strings.Replace(detail, "CREATE ", "CREATE OR REPLACE ", 1)
	}
	a.base(root, "sql-ddl", k, detail)
	if untrustedLanguage(lang) {
		a.flag("sql-untrusted-language", k, detail+" LANGUAGE "+lang, nil)
		return
	}
	if len(body) == 1 {
		switch lang {
		case "sql":
			a.sqlBody(body[0], "in the body of "+name)
		case "plpgsql":
			a.plpgsqlBody(body[0], "in the body of "+name)
		}
	}
}

func (a *analysis) doStmt(s *pg_query.DoStmt) {
	root := a.enter("DO")
	a.reads, a.writes = true, true
	lang, body := functionOptions(s.Args)
	if lang == "" {
		lang = "plpgsql"
	}
	if untrustedLanguage(lang) {
		a.flag("sql-untrusted-language", "DO", "DO block in LANGUAGE "+lang, nil)
		return
	}
	a.base(root, "sql-opaque", "DO", "DO block in LANGUAGE "+lang)
	if lang == "plpgsql" && len(body) == 1 {
		a.plpgsqlBody(body[0], "in the DO block")
	}
}

// sqlBody classifies the statements of a LANGUAGE sql function body and
// keeps what they do. A body that does not parse is opaque.
func (a *analysis) sqlBody(src, where string) {
	if a.depth >= maxBodyDepth {
		a.flag("sql-opaque", a.kind, "code nested too deep "+where, nil)
		return
	}
	tree, err := pg_query.Parse(src)
	if err != nil {
		a.flag("sql-opaque", a.kind, "unreadable SQL "+where, nil)
		return
	}
	for _, rs := range tree.Stmts {
		a.absorb(analyze(rs.Stmt, a.depth+1), where)
	}
}

// plpgsqlBody finds the SQL inside a PL/pgSQL body with the PL/pgSQL
// parser and classifies it: DROP TABLE inside a DO block is a DROP. The
// block stays opaque (approve) whatever is found, because control flow and
// dynamic SQL are beyond a static check; this only makes it stricter.
func (a *analysis) plpgsqlBody(body, where string) {
	if a.depth >= maxBodyDepth {
		a.flag("sql-opaque", a.kind, "code nested too deep "+where, nil)
		return
	}
	tag := "$bastion$"
	for i := 0; strings.Contains(body, tag); i++ {
		tag = "$bastion" + strconv.Itoa(i) + "$"
	}
	js, err := pg_query.ParsePlPgSqlToJSON("CREATE FUNCTION bastion_body() RETURNS void LANGUAGE plpgsql AS " + tag + body + tag)
	if err != nil {
		return
	}
	var tree any
	if json.Unmarshal([]byte(js), &tree) != nil {
		return
	}
	for _, q := range plpgsqlQueries(tree, false, nil) {
		for _, alts := range q.candidates() {
			for _, src := range alts {
				t, err := pg_query.Parse(src)
				if err != nil {
					continue
				}
				for _, rs := range t.Stmts {
					a.absorb(analyze(rs.Stmt, a.depth+1), where)
				}
				break
			}
		}
	}
}

// plQuery is one SQL fragment of a PL/pgSQL body.
type plQuery struct {
	text    string
	mode    int  // the PL/pgSQL parse mode: 0 a statement, 2 an expression, 3+ an assignment
	dynamic bool // the expression of an EXECUTE: its string constants are SQL too
}

func plpgsqlQueries(v any, dynamic bool, out []plQuery) []plQuery {
	switch t := v.(type) {
	case map[string]any:
		for k, c := range t {
			if k == "PLpgSQL_expr" {
				if e, ok := c.(map[string]any); ok {
					q, _ := e["query"].(string)
					mode, _ := e["parseMode"].(float64)
					out = append(out, plQuery{text: q, mode: int(mode), dynamic: dynamic})
				}
				continue
			}
			out = plpgsqlQueries(c, dynamic || k == "PLpgSQL_stmt_dynexecute" || k == "PLpgSQL_stmt_dynfors" || k == "PLpgSQL_stmt_open", out)
		}
	case []any:
		for _, c := range t {
			out = plpgsqlQueries(c, dynamic, out)
		}
	}
	return out
}

// candidates are the texts to parse for a fragment: groups of
// alternatives, of which the first that parses is classified.
func (q plQuery) candidates() [][]string {
	text := q.text
	if q.mode >= 3 {
		if i := strings.Index(text, ":="); i >= 0 {
			text = text[i+2:]
		} else if i := strings.Index(text, "="); i >= 0 {
			text = text[i+1:]
		}
	}
	if q.mode == 0 {
		return [][]string{{text}}
	}
	out := [][]string{{"SELECT " + text}}
	if q.dynamic {
		// EXECUTE 'DROP TABLE ' || t and EXECUTE format('TRUNCATE %I', t):
		// each string constant is tried as SQL, placeholders filled in.
		if t, err := pg_query.Parse("SELECT " + text); err == nil {
			for _, s := range stringConstants(t) {
				s = strings.NewReplacer("%I", "x", "%L", "'x'", "%s", "x").Replace(s)
				out = append(out, []string{s, s + " x"})
			}
		}
	}
	return out
}

func stringConstants(t *pg_query.ParseResult) []string {
	var out []string
	for _, rs := range t.Stmts {
		walkNode(rs.Stmt, func(m protoreflect.Message) bool {
			if c, ok := m.Interface().(*pg_query.A_Const); ok {
				if s, ok := c.Val.(*pg_query.A_Const_Sval); ok && strings.TrimSpace(s.Sval.Sval) != "" {
					out = append(out, s.Sval.Sval)
				}
			}
			return true
		})
	}
	return out
}

// absorb takes in what a body's statement does, each finding marked with
// where it was found.
func (a *analysis) absorb(b *analysis, where string) {
	for _, f := range b.findings {
		f.weak = false
		f.detail += " (" + where + ")"
		a.findings = append(a.findings, f)
	}
	a.kinds = append(a.kinds, b.kinds...)
	a.tables = append(a.tables, b.tables...)
	a.shown = append(a.shown, b.shown...)
	a.funcs = append(a.funcs, b.funcs...)
	a.reads = a.reads || b.reads
	a.writes = a.writes || b.writes
}
