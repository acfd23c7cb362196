package sqlpolicy

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// TestCacheReturnsFreshVerdict: for every row of the classification table
// and a custom classifier, the first (filling) and second (hitting) call
// return exactly what an uncached classification returns, and a caller
// changing its copy does not change the next caller's.
func TestCacheReturnsFreshVerdict(t *testing.T) {
	custom, err := New([]Rule{{ID: "no-users", Decision: deny, Tables: []string{"users"}, Message: "no users"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Classifier{Default(), custom} {
		for _, tc := range classifyCases {
			want := c.classify(tc.sql)
			for i := range 2 {
				got := c.Classify(tc.sql)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("call %d of Classify(%q) = %+v, uncached %+v", i, tc.sql, got, want)
				}
				if len(got.Statements) > 0 {
					got.Statements[0].Result.Rule = "changed by a caller"
				}
			}
		}
	}
	// The two classifiers keep separate caches: the same text gets each
	// one's own verdict.
	if d, c := Default().Classify("SELECT * FROM users").Decision, custom.Classify("SELECT * FROM users").Decision; d != allow || c != deny {
		t.Fatalf("default %v, custom %v: want allow and deny", d, c)
	}
}

// TestCacheKeysOnExactText: texts that differ only in a literal are judged
// each on its own, however many times the other was seen.
func TestCacheKeysOnExactText(t *testing.T) {
	c, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	pairs := [][2]string{
		{"DELETE FROM t WHERE 1 = 2", "DELETE FROM t WHERE 1 = 1"},
		{"DELETE FROM t WHERE name LIKE 'a%'", "DELETE FROM t WHERE name LIKE '%'"},
		{"SELECT set_config('application_name', 'x', false)", "SELECT set_config('role', 'x', false)"},
		{"UPDATE t SET a = 1 WHERE id = id + 1", "UPDATE t SET a = 1 WHERE id = id + 0 OR true"},
	}
	for _, p := range pairs {
		for range 3 {
			if got := c.Classify(p[0]).Decision; got != allow {
				t.Fatalf("%q: %v, want allow", p[0], got)
			}
		}
		if got := c.Classify(p[1]).Decision; got == allow {
			t.Fatalf("%q allowed after %q was cached", p[1], p[0])
		}
	}
}

// TestCacheBounded: the cache holds at most cacheMaxBytes of text and does
// not keep texts longer than cacheMaxText.
func TestCacheBounded(t *testing.T) {
	c, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	long := "SELECT '" + strings.Repeat("x", cacheMaxText) + "'"
	c.Classify(long)
	if n := len(c.seen.m); n != 0 {
		t.Fatalf("a %d-byte text was cached", len(long))
	}
	// Each text is held twice: as the key and as its statement's text.
	q := "SELECT " + strings.Repeat("1 + ", 1000) + "%06d"
	per := 2 * len(fmt.Sprintf(q, 0))
	most, prev := 0, 0
	for i := 0; ; i++ {
		c.Classify(fmt.Sprintf(q, i))
		if c.seen.bytes > cacheMaxBytes {
			t.Fatalf("the cache holds %d bytes, over its %d", c.seen.bytes, cacheMaxBytes)
		}
		n := len(c.seen.m)
		if n < prev {
			if n != 1 {
				t.Fatalf("over the bound the cache should start over; it holds %d texts", n)
			}
			break
		}
		prev, most = n, max(most, n)
	}
	if most != cacheMaxBytes/per {
		t.Fatalf("the cache held at most %d texts of %d bytes, want %d", most, per, cacheMaxBytes/per)
	}
	if got := c.Classify(fmt.Sprintf(q, 0)); got.Decision != allow {
		t.Fatalf("after the reset: %+v", got.Result)
	}
}

// TestCacheConcurrent runs many goroutines over a few texts (with -race).
func TestCacheConcurrent(t *testing.T) {
	c, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	texts := []string{"SELECT 1", "DROP TABLE t", "DELETE FROM t", "DELETE FROM t WHERE id = 1"}
	want := make([]Outcome, len(texts))
	for i, q := range texts {
		want[i] = c.classify(q)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				k := (g + i) % len(texts)
				if got := c.Classify(texts[k]); !reflect.DeepEqual(got, want[k]) {
					t.Errorf("%q: %+v, want %+v", texts[k], got, want[k])
					return
				}
			}
		})
	}
	wg.Wait()
}
