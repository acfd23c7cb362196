package sqlpolicy

// SQL given as text to the functions that run it (querytext.go). The rows
// join classifyCases, so they seed the fuzz targets too.
var queryTextCases = []classifyCase{
	// the attacks of issue #22, item 4
	{name: "ts_stat pg_read_file", sql: "SELECT * FROM ts_stat('SELECT to_tsvector(pg_read_file(''/etc/passwd''))')", want: deny, rule: "sql-server-file", reason: "pg_read_file() (in the query given to ts_stat())"},
	{name: "ts_stat lo_export", sql: "SELECT * FROM ts_stat('SELECT to_tsvector(lo_export(16401, ''/tmp/out'')::text)')", want: deny, rule: "sql-server-file", reason: "lo_export()"},
	{name: "ts_stat terminate backend", sql: "SELECT * FROM ts_stat('SELECT to_tsvector(pg_terminate_backend(pid)::text) FROM pg_stat_activity')", want: approve, rule: "sql-admin", reason: "pg_terminate_backend() (in the query given to ts_stat())"},
	{name: "ts_stat set_config log_statement", sql: "SELECT * FROM ts_stat('SELECT to_tsvector(set_config(''log_statement'', ''none'', false))')", want: approve, rule: "sql-setting", reason: "set_config('log_statement', …)"},
	{name: "ts_stat set_config role", sql: "SELECT * FROM ts_stat('SELECT to_tsvector(set_config(''role'', ''postgres'', false))')", want: approve, rule: "sql-role"},

	// every way of writing the string resolves
	{name: "ts_stat E-string", sql: `SELECT * FROM ts_stat(E'SELECT to_tsvector(pg_read_file(\'/etc/passwd\'))')`, want: deny, rule: "sql-server-file"},
	{name: "ts_stat E-string hex escapes", sql: `SELECT * FROM ts_stat(E'SELECT to_tsvector(pg_\x72ead_file(\x27/etc/passwd\x27))')`, want: deny, rule: "sql-server-file"},
	{name: "ts_stat dollar quote", sql: "SELECT * FROM ts_stat($$SELECT to_tsvector(pg_read_file('/etc/passwd'))$$)", want: deny, rule: "sql-server-file"},
	{name: "ts_stat tagged dollar quote", sql: "SELECT * FROM ts_stat($q$SELECT to_tsvector(pg_read_file($f$/etc/passwd$f$))$q$)", want: deny, rule: "sql-server-file"},
	{name: "ts_stat unicode escape string", sql: `SELECT * FROM ts_stat(U&'SELECT to_tsvector(pg_read_fil\0065(''/etc/passwd''))')`, want: deny, rule: "sql-server-file"},
	{name: "ts_stat cast to text", sql: "SELECT * FROM ts_stat('SELECT to_tsvector(pg_read_file(''/etc/passwd''))'::text)", want: deny, rule: "sql-server-file"},
	{name: "ts_stat schema-qualified", sql: "SELECT * FROM pg_catalog.ts_stat('SELECT to_tsvector(pg_read_file(''/etc/passwd''))')", want: deny, rule: "sql-server-file"},
	{name: "ts_stat named argument", sql: "SELECT * FROM ts_stat(query => 'SELECT to_tsvector(pg_read_file(''/etc/passwd''))')", want: deny, rule: "sql-server-file"},
	{name: "ts_stat with weights", sql: "SELECT * FROM ts_stat('SELECT to_tsvector(pg_read_file(''/etc/passwd''))', 'ab')", want: deny, rule: "sql-server-file"},
	{name: "ts_stat in select list", sql: "SELECT (ts_stat('SELECT to_tsvector(pg_read_file(''/etc/passwd''))')).word", want: deny, rule: "sql-server-file"},
	{name: "ts_stat in cte", sql: "WITH w AS (SELECT * FROM ts_stat('SELECT to_tsvector(lo_export(1, ''/tmp/x'')::text)')) SELECT count(*) FROM w", want: deny, rule: "sql-server-file"},
	{name: "ts_stat inner drop", sql: "SELECT * FROM ts_stat('DROP TABLE users')", want: deny, rule: "sql-drop", reason: "DROP TABLE users (in the query given to ts_stat())"},
	{name: "ts_stat inner unrestricted delete", sql: "SELECT * FROM ts_stat('DELETE FROM t RETURNING to_tsvector(body)')", want: approve, rule: "sql-unrestricted-delete"},
	{name: "ts_stat nested in ts_stat", sql: "SELECT * FROM ts_stat('SELECT * FROM ts_stat(''SELECT to_tsvector(pg_read_file(''''/etc/passwd''''))'')')", want: deny, rule: "sql-server-file"},
	{name: "ts_stat in a DO block", sql: "DO $$BEGIN PERFORM ts_stat('SELECT to_tsvector(pg_read_file(''/etc/passwd''))'); END$$", want: deny, rule: "sql-server-file"},
	{name: "ts_stat in a function body", sql: "CREATE FUNCTION f() RETURNS SETOF record LANGUAGE sql AS $$SELECT * FROM ts_stat('SELECT to_tsvector(pg_read_file(''/etc/passwd''))')$$", want: deny, rule: "sql-server-file"},
	{name: "ts_stat too deep", sql: "SELECT * FROM ts_stat('SELECT * FROM ts_stat(''SELECT * FROM ts_stat(''''SELECT * FROM ts_stat(''''''''SELECT * FROM ts_stat(''''''''''''''''SELECT 1'''''''''''''''')'''''''')'''')'')')", want: approve, rule: "sql-opaque", reason: "nested too deep"},
	{name: "ts_stat unparseable text", sql: "SELECT * FROM ts_stat('SELEC to_tsvector(x) FROM t')", want: deny, rule: "sql-parse-error", reason: "cannot parse the query given to ts_stat()"},
	{name: "ts_stat empty text", sql: "SELECT * FROM ts_stat('')", want: allow, rule: "sql-read"},

	// a text not known before it runs is opaque
	{name: "ts_stat column", sql: "SELECT * FROM queries q, ts_stat(q.sql)", want: approve, rule: "sql-opaque", reason: "ts_stat() runs SQL given as a string that is not a constant"},
	{name: "ts_stat parameter", sql: "SELECT * FROM ts_stat($1)", want: approve, rule: "sql-opaque"},
	{name: "ts_stat concatenation", sql: "SELECT * FROM ts_stat('SELECT to_tsvector(body) FROM ' || 'docs')", want: approve, rule: "sql-opaque"},
	{name: "ts_stat concatenation judged", sql: "SELECT * FROM ts_stat('SELECT to_tsvector(' || 'pg_read_file(''/etc/passwd''))')", want: deny, rule: "sql-server-file"},
	{name: "ts_stat format judged", sql: "SELECT * FROM ts_stat(format('SELECT to_tsvector(pg_read_file(%L))', '/etc/passwd'))", want: deny, rule: "sql-server-file"},
	{name: "ts_stat function result", sql: "SELECT * FROM ts_stat(current_setting('app.q'))", want: approve, rule: "sql-opaque"},
	{name: "ts_stat truncating cast", sql: "SELECT * FROM ts_stat('SELECT to_tsvector(body) FROM docs WHERE false'::varchar(30))", want: approve, rule: "sql-opaque"},
	{name: "ts_stat name cast", sql: "SELECT * FROM ts_stat('SELECT to_tsvector(body) FROM docs'::name)", want: approve, rule: "sql-opaque"},
	{name: "ts_stat variadic", sql: "SELECT * FROM ts_stat(VARIADIC ARRAY['SELECT to_tsvector(body) FROM docs'])", want: approve, rule: "sql-opaque"},
	{name: "ts_stat unknown named argument", sql: "SELECT * FROM ts_stat(sql => 'SELECT 1')", want: approve, rule: "sql-opaque"},

	// reads stay reads
	{name: "ts_stat read", sql: "SELECT * FROM ts_stat('SELECT vector FROM apod') ORDER BY nentry DESC LIMIT 10", want: allow, rule: "sql-read", reason: "apod"},
	{name: "ts_stat read dollar quoted", sql: "SELECT * FROM ts_stat($$SELECT to_tsvector('english', body) FROM docs WHERE id < 100$$)", want: allow, rule: "sql-read"},
	{name: "ts_rewrite query text", sql: "SELECT ts_rewrite('a & b'::tsquery, 'SELECT t, s FROM aliases')", want: allow, rule: "sql-read", reason: "aliases"},
	{name: "ts_rewrite query text file read", sql: "SELECT ts_rewrite('a & b'::tsquery, 'SELECT pg_read_file(''/etc/passwd'')::tsquery, s FROM aliases')", want: deny, rule: "sql-server-file", reason: "in the query given to ts_rewrite()"},
	{name: "ts_rewrite three tsqueries", sql: "SELECT ts_rewrite('a & b'::tsquery, 'a'::tsquery, 'c'::tsquery)", want: allow, rule: "sql-read"},
	{name: "ts_rewrite computed text", sql: "SELECT ts_rewrite(q, s) FROM rewrites", want: approve, rule: "sql-opaque"},

	// the xml family: opaque, and the text can make it stricter
	{name: "query_to_xml file read", sql: "SELECT query_to_xml('SELECT pg_read_file(''/etc/passwd'')', true, false, '')", want: deny, rule: "sql-server-file", reason: "in the query given to query_to_xml()"},
	{name: "query_to_xmlschema drop", sql: "SELECT query_to_xmlschema('DROP TABLE users', true, false, '')", want: deny, rule: "sql-drop"},
	{name: "query_to_xml_and_xmlschema lo_export", sql: "SELECT query_to_xml_and_xmlschema(query => 'SELECT lo_export(1, ''/tmp/x'')', nulls => true, tableforest => false, targetns => '')", want: deny, rule: "sql-server-file"},
	{name: "table_to_xml is a read", sql: "SELECT table_to_xml('public.users', true, false, '')", want: allow, rule: "sql-read", reason: "public.users"},
	{name: "table_to_xml not query text", sql: "SELECT table_to_xml('users; DROP TABLE users', true, false, '')", want: allow, rule: "sql-read"},
	{name: "cursor_to_xml", sql: "SELECT cursor_to_xml('c', 10, true, false, '')", want: allow, rule: "sql-read"},

	// tablefunc and xml2 paste their texts into SQL they run
	{name: "crosstab read", sql: "SELECT * FROM crosstab('SELECT row_name, cat, value FROM ct ORDER BY 1, 2', 3) AS ct(row_name text, c1 text, c2 text)", want: allow, rule: "sql-read", reason: "ct"},
	{name: "crosstab category query", sql: "SELECT * FROM crosstab('SELECT a, b, c FROM t ORDER BY 1', 'SELECT lo_export(1, ''/tmp/x'')') AS ct(a text, b text)", want: deny, rule: "sql-server-file", reason: "crosstab()"},
	{name: "crosstab computed category", sql: "SELECT * FROM crosstab('SELECT a, b, c FROM t ORDER BY 1', $1) AS ct(a text, b text)", want: approve, rule: "sql-opaque"},
	{name: "crosstab2 file read", sql: "SELECT * FROM crosstab2('SELECT ''a'', ''b'', pg_read_file(''/etc/passwd'')')", want: deny, rule: "sql-server-file"},
	{name: "connectby read", sql: "SELECT * FROM connectby('tree', 'id', 'parent_id', '1', 0) AS t(id int, parent int, level int)", want: allow, rule: "sql-read", reason: "tree"},
	{name: "connectby injected relname", sql: "SELECT * FROM connectby('tree; DROP TABLE users; --', 'id', 'parent_id', '1', 0) AS t(id int, parent int, level int)", want: deny, rule: "sql-drop", reason: "in the query given to connectby()"},
	{name: "connectby injected orderby", sql: "SELECT * FROM connectby('tree', 'id', 'parent_id', 'pg_read_file(''/etc/passwd'')', '1', 0) AS t(id int, parent int, level int, pos int)", want: deny, rule: "sql-server-file"},
	{name: "connectby injected key", sql: "SELECT * FROM connectby('tree', 'pg_terminate_backend(1)::int', 'parent_id', '1', 0, '~') AS t(id int, parent int, level int, branch text)", want: approve, rule: "sql-admin"},
	{name: "connectby computed relname", sql: "SELECT * FROM connectby(tbl, 'id', 'parent_id', '1', 0) AS t(id int, parent int, level int)", want: approve, rule: "sql-opaque"},
	{name: "xpath_table read", sql: "SELECT * FROM xpath_table('id', 'xml', 'docs', '/doc/title', 'true') AS t(id int, title text)", want: allow, rule: "sql-read", reason: "docs"},
	{name: "xpath_table injected criteria", sql: "SELECT * FROM xpath_table('id', 'xml', 'docs', '/a', 'true UNION SELECT 1, pg_read_file(''/etc/passwd'')') AS t(id int, a text)", want: deny, rule: "sql-server-file", reason: "xpath_table()"},

	// dblink runs its text on another server: opaque, and judged
	{name: "dblink drop", sql: "SELECT dblink_exec('host=prod', 'DROP TABLE users')", want: deny, rule: "sql-drop", reason: "in the query given to dblink_exec()"},
	{name: "dblink one argument", sql: "SELECT * FROM dblink('TRUNCATE users') AS t(x text)", want: deny, rule: "sql-truncate"},
	{name: "dblink fail_on_error", sql: "SELECT * FROM dblink('SELECT pg_read_file(''/etc/passwd'')', false) AS t(x text)", want: deny, rule: "sql-server-file"},
	{name: "dblink three arguments", sql: "SELECT * FROM dblink('conn', 'DROP TABLE users', true) AS t(x text)", want: deny, rule: "sql-drop"},
	{name: "dblink connection string not sql", sql: "SELECT * FROM dblink('dbname=prod user=app', 'SELECT id FROM users') AS t(id int)", want: approve, rule: "sql-opaque"},
	{name: "dblink computed sql", sql: "SELECT * FROM dblink('conn', q) AS t(x text) , jobs", want: approve, rule: "sql-opaque", reason: "not a constant"},
	{name: "dblink_open", sql: "SELECT dblink_open('conn', 'cur', 'SELECT pg_read_file(''/etc/passwd'')')", want: deny, rule: "sql-server-file"},
	{name: "dblink_open two arguments", sql: "SELECT dblink_open('cur', 'SELECT id FROM users')", want: approve, rule: "sql-opaque"},
	{name: "dblink_send_query", sql: "SELECT dblink_send_query('conn', 'DROP DATABASE prod')", want: deny, rule: "sql-drop"},
	{name: "dblink_get_result has no sql", sql: "SELECT * FROM dblink_get_result('conn') AS t(x text)", want: allow, rule: "sql-read"},
	{name: "dblink_connect", sql: "SELECT dblink_connect('conn', 'host=prod')", want: approve, rule: "sql-opaque", reason: "connects to another server"},
}

func init() { classifyCases = append(classifyCases, queryTextCases...) }
