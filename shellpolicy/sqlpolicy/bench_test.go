package sqlpolicy

import (
	"strconv"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// benchQueries are a typical application read, the catalog query psql
// sends for the columns of \d users, and a restricted delete.
var benchQueries = []struct{ name, sql string }{
	{"select", "SELECT id, email, created_at FROM users WHERE org_id = 42 AND active ORDER BY created_at DESC LIMIT 50"},
	{"psql-d", `SELECT a.attname,
  pg_catalog.format_type(a.atttypid, a.atttypmod),
  (SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid, true)
   FROM pg_catalog.pg_attrdef d
   WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.atthasdef),
  a.attnotnull,
  (SELECT c.collname FROM pg_catalog.pg_collation c, pg_catalog.pg_type t
   WHERE c.oid = a.attcollation AND t.oid = a.atttypid AND a.attcollation <> t.typcollation) AS attcollation,
  a.attidentity,
  a.attgenerated
FROM pg_catalog.pg_attribute a
WHERE a.attrelid = '16385' AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum;`},
	{"delete-where", "DELETE FROM sessions WHERE user_id = 7 AND expires_at < now()"},
}

// BenchmarkClassify is the per-statement parse+classify cost of a text
// not seen before (select, psql-d, ...) and of one seen before
// (seen/select, ...).
func BenchmarkClassify(b *testing.B) {
	for _, mode := range []struct {
		prefix string
		run    func(string) Outcome
	}{{"", Default().classify}, {"seen/", Default().Classify}} {
		for _, q := range benchQueries {
			b.Run(mode.prefix+q.name, func(b *testing.B) {
				b.ReportAllocs()
				mode.run(q.sql)
				for b.Loop() {
					mode.run(q.sql)
				}
			})
		}
	}
}

// BenchmarkParse is pg_query.Parse alone, to show what classification adds.
func BenchmarkParse(b *testing.B) {
	for _, q := range benchQueries {
		b.Run(q.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := pg_query.Parse(q.sql); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerdictShape is Verdict for pgbench -S: each text new, its
// shape seen before.
func BenchmarkVerdictShape(b *testing.B) {
	b.ReportAllocs()
	Default().Verdict("SELECT abalance FROM pgbench_accounts WHERE aid = 1;")
	i := 0
	for b.Loop() {
		i++
		Default().Verdict("SELECT abalance FROM pgbench_accounts WHERE aid = " + strconv.Itoa(i%1000000) + ";")
	}
}
