package sqlpolicy

import (
	"math/rand/v2"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/bastion-dev/bastion/policy"
)

func TestShapeKey(t *testing.T) {
	accepted := map[string]string{
		"SELECT abalance FROM pgbench_accounts WHERE aid = 48601;": "SELECT abalance FROM pgbench_accounts WHERE aid = 0;",
		"UPDATE t SET v = v + -12 WHERE id IN (1,22)":              "UPDATE t SET v = v + -0 WHERE id IN (0,0)",
		"insert into t1 values ('it''s', 'x\ny', 7)":               "insert into t1 values ('', '', 0)",
		"SELECT a/b%c FROM t2 WHERE x<>'' AND y>=3":                "SELECT a/b%c FROM t2 WHERE x<>'' AND y>=0", // t1, t2: identifiers
		"select 123456789": "select 0",
	}
	for in, want := range accepted {
		if got, ok := shapeKey(in); !ok || got != want {
			t.Errorf("shapeKey(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{
		"select 1234567890",       // int8
		"select 1.5", "select .5", // numeric
		"select 1e5", "select 0x1F", // exponent, hex
		"select 1_000", "select 1a", // underscores, trailing junk
		"select E'\\n'", "select x'1'", // prefixed strings
		"select 'a\\'", "select 'é'", // backslash, non-ASCII
		"select 'unterminated",
		"select 1 -- comment", "select /* c */ 1",
		"select $$x$$", "select $1",
		"select '1'::int", `select "Quoted"`,
		"select 1\x00", "select [1]", "select a@b",
		"select 'a' || 'b'",
		strings.Repeat("select 1;", shapeMaxText/9+1),
	} {
		if got, ok := shapeKey(in); ok {
			t.Errorf("shapeKey(%q) accepted: %q", in, got)
		}
	}
}

// literalRE finds the literals of a text shapeKey accepted: strings first,
// so that digits inside a string stay part of it.
var literalRE = regexp.MustCompile(`'(?:[^']|'')*'|\b[0-9]+\b`)

var (
	intPool = []string{"0", "1", "2", "7", "42", "00", "999999999"}
	strPool = []string{"''", "'%'", "'a%'", "'yes'", "'no'", "'true'", "'t'", "'off'", "'1'", "'0'", "'role'", "'x'''", "'  '"}
)

// mutate replaces each literal of sql with one of the same kind.
func mutate(sql string, r *rand.Rand) string {
	return literalRE.ReplaceAllStringFunc(sql, func(lit string) string {
		if lit[0] == '\'' {
			return strPool[r.IntN(len(strPool))]
		}
		return intPool[r.IntN(len(intPool))]
	})
}

// shapeFamilies are statements whose verdict depends on a literal next to
// ones where it does not: the cache must never carry one's verdict to the
// other.
var shapeFamilies = []string{
	"SELECT abalance FROM pgbench_accounts WHERE aid = 48601;",
	"UPDATE pgbench_accounts SET abalance = abalance + -1234 WHERE aid = 5;",
	"INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (3, 1, 5, -1234, CURRENT_TIMESTAMP);",
	"DELETE FROM t WHERE 1 = 1",
	"DELETE FROM t WHERE 1 = 2",
	"DELETE FROM t WHERE id = 5",
	"DELETE FROM t WHERE 5 = id",
	"DELETE FROM t WHERE id = 5 OR 1 = 1",
	"DELETE FROM t WHERE id = 5 AND 1 = 0",
	"DELETE FROM t WHERE a = 1 OR a <> 1",
	"DELETE FROM t WHERE a = 1 OR NOT a = 1",
	"DELETE FROM t WHERE a > 3 OR a < 7",
	"DELETE FROM t WHERE a IN (1, 2) OR a NOT IN (1, 2)",
	"DELETE FROM t WHERE name = 'x' OR name <> 'x'",
	"UPDATE t SET v = 1 WHERE a >= 10 OR a < 10",
	"DELETE FROM t WHERE name LIKE 'a%'",
	"DELETE FROM t WHERE 'yes'",
	"DELETE FROM t WHERE id + 1 = id + 1",
	"DELETE FROM t WHERE id = 1 + 1",
	"DELETE FROM t WHERE (id = 1) = (1 = 1)",
	"DELETE FROM t WHERE NOT id = 3",
	"DELETE FROM t WHERE id IS NULL OR 5 = 5",
	"DELETE FROM t WHERE id IN (1, 2) OR 'a' = 'a'",
	"UPDATE t SET a = 1 WHERE id IN (1, 2)",
	"UPDATE t SET a = 'x' WHERE id > 0",
	"UPDATE t SET a = 1 WHERE id = id",
	"UPDATE t SET a = 1 WHERE 1 <> 1",
	"UPDATE t SET a = 1 WHERE id = 3 AND 'x' = 'x' OR 'y' = 'z'",
	"SELECT set_config('role', 'x', false)",
	"SELECT set_config('application_name', 'x', false)",
	"SELECT pg_read_file('x')",
	"SELECT * FROM t WHERE a = 1 LIMIT 5",
	"SELECT 1; SELECT 'a'",
	"SELECT 1; DELETE FROM t WHERE 1 = 1",
	"SET application_name = 'x'",
	"SET role = 'admin'",
	"SET client_encoding = 'SJIS'",
	"DELETE FROM t WHERE id = 5 RETURNING 1",
	"SELECT 'x' FROM t WHERE id = 1 FOR UPDATE",
	"INSERT INTO t VALUES (1, CURRENT_TIMESTAMP(3), CURRENT_TIMESTAMP)",
}

// TestVerdictByShape: for each statement the shape cache accepts, and
// random literal variants of it, Verdict (with the cache warmed by any
// other variant) equals a fresh classification.
func TestVerdictByShape(t *testing.T) {
	stmts := append([]string{}, shapeFamilies...)
	for _, tc := range classifyCases {
		stmts = append(stmts, tc.sql)
	}
	if data, err := os.ReadFile("testdata/psql_describe.sql"); err == nil {
		stmts = append(stmts, strings.Split(string(data), "\n----\n")...)
	}
	r := rand.New(rand.NewPCG(1, 2))
	keyed, cached := 0, 0
	for _, sql := range stmts {
		if _, ok := shapeKey(sql); !ok {
			continue
		}
		keyed++
		variants := []string{sql}
		for range 12 {
			variants = append(variants, mutate(sql, r))
		}
		for _, warm := range variants {
			c := &Classifier{rules: defaultRules, seen: &verdicts{}, shapes: &shapes{}}
			if got, want := c.Verdict(warm), c.classify(warm).Result; got != want {
				t.Fatalf("Verdict(%q) = %+v, Classify %+v", warm, got, want)
			}
			if len(c.shapes.m) > 0 {
				cached++
			}
			for _, v := range variants {
				if got, want := c.Verdict(v), c.classify(v).Result; got != want {
					t.Fatalf("after %q, Verdict(%q) = %+v (%v), Classify %+v", warm, v, got, got.Decision, want)
				}
			}
		}
	}
	if keyed < 40 || cached == 0 {
		t.Fatalf("only %d statements had a shape key, %d warm-ups cached one: the test does not exercise the cache", keyed, cached)
	}
}

// TestVerdictCachesByShape: the pgbench statements are judged once per
// shape; literal-dependent ones never enter the shape cache.
func TestVerdictCachesByShape(t *testing.T) {
	c, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		q := strings.Replace("SELECT abalance FROM pgbench_accounts WHERE aid = N;", "N", strings.Repeat("7", 1+i%9), 1)
		if r := c.Verdict(q); r.Decision != policy.Allow {
			t.Fatalf("%q: %+v", q, r)
		}
	}
	if len(c.shapes.m) != 1 || len(c.seen.m) != 0 {
		t.Fatalf("100 variants of one SELECT: %d shapes, %d exact texts; want 1 and 0", len(c.shapes.m), len(c.seen.m))
	}
	// The rest of pgbench's default transaction.
	for _, q := range []string{
		"UPDATE pgbench_accounts SET abalance = abalance + -4321 WHERE aid = 77;",
		"UPDATE pgbench_tellers SET tbalance = tbalance + 12 WHERE tid = 3;",
		"INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (3, 1, 77, -4321, CURRENT_TIMESTAMP);",
	} {
		if r := c.Verdict(q); r.Decision != policy.Allow {
			t.Fatalf("%q: %+v", q, r)
		}
	}
	if len(c.shapes.m) != 4 {
		t.Fatalf("pgbench's statements: %d shapes, want 4", len(c.shapes.m))
	}
	for _, q := range []string{"DELETE FROM t WHERE 1 = 2", "DELETE FROM t WHERE name LIKE 'a%'", "DELETE FROM t WHERE id = 1 OR 1 = 0",
		"DELETE FROM t WHERE a = 1 OR a <> 2", "DELETE FROM t WHERE a > 7 OR a < 3", "DELETE FROM t WHERE NOT a = 1"} {
		if r := c.Verdict(q); r.Decision != policy.Allow {
			t.Fatalf("%q: %+v, want allow", q, r)
		}
	}
	if len(c.shapes.m) != 4 {
		t.Fatalf("literal-dependent verdicts entered the shape cache: %v", c.shapes.m)
	}
}

// FuzzVerdict: for any text and any replacement of its literals, the
// shape cache warmed with the text gives the variant its own verdict.
func FuzzVerdict(f *testing.F) {
	for _, s := range shapeFamilies {
		f.Add(s, uint64(1))
	}
	for _, tc := range classifyCases {
		f.Add(tc.sql, uint64(2))
	}
	f.Fuzz(func(t *testing.T, sql string, seed uint64) {
		if _, ok := shapeKey(sql); !ok {
			return
		}
		c := &Classifier{rules: defaultRules, seen: &verdicts{}, shapes: &shapes{}}
		if got, want := c.Verdict(sql), c.classify(sql).Result; got != want {
			t.Fatalf("Verdict(%q) = %+v, Classify %+v", sql, got, want)
		}
		v := mutate(sql, rand.New(rand.NewPCG(seed, seed>>1)))
		if got, want := c.Verdict(v), c.classify(v).Result; got != want {
			t.Fatalf("after %q, Verdict(%q) = %+v, Classify %+v", sql, v, got, want)
		}
	})
}
