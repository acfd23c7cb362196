package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/identity"
)

// marshalLine is encode as it was before appendEvent, on json.Marshal, and
// with the hash computed afresh (HMAC-SHA256 under key, SHA-256 without):
// the lines appendLine must reproduce byte for byte.
func marshalLine(key []byte, e Event, prev string) ([]byte, string, error) {
	e.Time = e.Time.UTC()
	e.Prev, e.Hash = prev, ""
	b, err := json.Marshal(e)
	if err != nil {
		return nil, "", err
	}
	var hash string
	if key == nil {
		sum := sha256.Sum256(b)
		hash = hex.EncodeToString(sum[:])
	} else {
		mac := hmac.New(sha256.New, key)
		mac.Write(b)
		hash = hex.EncodeToString(mac.Sum(nil))
	}
	line := make([]byte, 0, len(b)+hashSuffixLen+1)
	line = append(line, b[:len(b)-1]...)
	line = append(line, `,"hash":"`...)
	line = append(line, hash...)
	line = append(line, "\"}\n"...)
	return line, hash, nil
}

// checkEvent checks appendEvent and appendLine against json.Marshal. It
// returns appendEvent's ok.
func checkEvent(t *testing.T, e Event) bool {
	t.Helper()
	want, werr := json.Marshal(e)
	got, ok := appendEvent([]byte("xx"), &e)
	if ok {
		if werr != nil {
			t.Fatalf("appendEvent wrote %s; json.Marshal fails: %v", got[2:], werr)
		}
		if !bytes.Equal(got[2:], want) {
			t.Fatalf("appendEvent:\n got %s\nwant %s", got[2:], want)
		}
	}

	const prev = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	for _, key := range [][]byte{nil, testKey} {
		c := newChain(key)
		for range 2 { // the second time on the chain's reused HMAC state
			wantLine, wantHash, werr := marshalLine(key, e, prev)
			dst := []byte("line before\n")
			gotLine, gotHash, err := c.appendLine(dst, e, prev)
			switch {
			case (err == nil) != (werr == nil):
				t.Fatalf("appendLine error %v, json.Marshal error %v", err, werr)
			case err != nil:
				if string(gotLine) != "line before\n" {
					t.Fatalf("appendLine changed dst on error: %q", gotLine)
				}
			case string(gotLine) != "line before\n"+string(wantLine) || gotHash != wantHash:
				t.Fatalf("appendLine (keyed %v):\n got %s %s\nwant %s %s", key != nil, gotLine, gotHash, wantLine, wantHash)
			}
			if err == nil {
				if computed, claimed, ok := c.lineHash(gotLine[len(dst) : len(gotLine)-1]); !ok || computed != claimed {
					t.Fatalf("lineHash of the line appendLine wrote: %s, claimed %s, ok %v", computed, claimed, ok)
				}
			}
		}
	}
	return ok
}

func TestAppendEvent(t *testing.T) {
	t.Parallel()
	ts := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	full := &identity.Provenance{Kind: identity.KindAgent, Subject: "deploy-bot", Issuer: "https://idp.example",
		Sponsor: "alice", Task: "OPS-42", Role: "ops"}
	tricky := "<script>alert('x&y')</script> \"q\" \\ \b\f\n\r\t\x00\x01\x1f\x7f é 日本 \u2028\u2029 \U0001F600 \xff \xe2\x80 \xed\xa0\x80 end"
	type named string
	cycle := map[string]any{}
	cycle["self"] = cycle
	deep := map[string]any{"v": 1}
	for range maxDepth + 2 {
		deep = map[string]any{"d": deep}
	}

	tests := []struct {
		name string
		e    Event
		ok   bool // appendEvent writes it itself
	}{
		{"zero", Event{}, true},
		{"type only", Event{Time: ts, Type: ServerStart}, true},
		{"all fields", Event{Time: ts, Type: Query, Identity: full, Session: "s1", Source: "10.0.0.7:5000", Decision: "allow",
			Rule: "sql-read", Detail: map[string]any{"rows": int64(2)}, Seq: 12, Prev: "p", Hash: "h"}, true},
		{"largest seq", Event{Time: ts, Seq: math.MaxUint64}, true},
		{"identity kind and subject", Event{Time: ts, Type: Command, Identity: &identity.Provenance{Kind: identity.KindHuman, Subject: "bob"}}, true},
		{"empty identity", Event{Time: ts, Identity: &identity.Provenance{}}, true},
		{"identity some omitempty", Event{Time: ts, Identity: &identity.Provenance{Kind: "x", Sponsor: "s", Role: "r"}}, true},
		{"only rule and prev", Event{Time: ts, Rule: "r", Prev: "p"}, true},
		{"only source and hash", Event{Time: ts, Source: "s", Hash: "h"}, true},
		{"tricky strings", Event{Time: ts, Type: tricky, Identity: &identity.Provenance{Kind: identity.Kind(tricky), Subject: tricky, Task: tricky},
			Session: tricky, Source: tricky, Decision: tricky, Rule: tricky, Detail: map[string]any{tricky: tricky, "list": []string{tricky, ""}}}, true},
		{"every control byte", Event{Time: ts, Type: func() string {
			var b strings.Builder
			for c := range 0x80 {
				b.WriteByte(byte(c))
			}
			return b.String()
		}()}, true},
		{"invalid utf-8 only", Event{Time: ts, Type: "\x80\xbf\xc0\xc1\xf5\xff", Session: "\xf0\x9f\x98"}, true},
		{"nil detail", Event{Time: ts, Type: Command, Detail: nil}, true},
		{"empty detail", Event{Time: ts, Type: Command, Detail: map[string]any{}}, true},
		{"sorted keys", Event{Time: ts, Detail: map[string]any{"b": 1, "a": 2, "B": 3, "": 4, "a\x00": 5, "é": 6, "<": 7, "aa": 8, "ab": 9, "z": 10}}, true},
		{"detail types", Event{Time: ts, Detail: map[string]any{
			"string": "s", "true": true, "false": false, "nil": nil,
			"int": -1, "int8": int8(-128), "int16": int16(-32768), "int32": int32(math.MinInt32), "int64": int64(math.MinInt64),
			"uint": uint(math.MaxUint), "uint8": uint8(255), "uint16": uint16(65535), "uint32": uint32(math.MaxUint32), "uint64": uint64(math.MaxUint64),
			"strings": []string{"a", "<b>"}, "no strings": []string{}, "nil strings": []string(nil),
			"map": map[string]any{"y": 1, "x": []string{"z"}}, "empty map": map[string]any{}, "nil map": map[string]any(nil),
			"time": time.Date(2026, 1, 2, 3, 4, 5, 600, time.FixedZone("", -(3*3600+30*60))),
		}}, true},
		{"floats", Event{Time: ts, Detail: map[string]any{
			"0": 0.0, "-0": math.Copysign(0, -1), "1": 1.0, "0.1": 0.1, "-1.5": -1.5, "1e20": 1e20, "1e21": 1e21, "123456789e13": 123456789e13,
			"1e-6": 1e-6, "9.99e-7": 9.99e-7, "1e-7": 1e-7, "5e-324": 5e-324, "max": math.MaxFloat64, "1/3": 1.0 / 3,
			"f32 0.1": float32(0.1), "f32 1e21": float32(1e21), "f32 1e-6": float32(1e-6), "f32 1e-7": float32(1e-7),
			"f32 max": float32(math.MaxFloat32), "f32 tiny": float32(math.SmallestNonzeroFloat32), "f32 -0": float32(math.Copysign(0, -1)),
		}}, true},
		{"nested maps", Event{Time: ts, Detail: map[string]any{"a": map[string]any{"b": map[string]any{"c": map[string]any{"<": "&"}}}}}, true},
		{"time with nanoseconds in a zone", Event{Time: time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.FixedZone("CET", 3600)), Type: Command}, true},
		{"time with trailing zero nanoseconds", Event{Time: time.Date(2026, 3, 1, 12, 0, 0, 120000000, time.UTC)}, true},
		{"local time with monotonic reading", Event{Time: time.Now()}, true},
		{"year 0", Event{Time: time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)}, true},
		{"year 9999", Event{Time: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)}, true},
		{"zone offset 23:59", Event{Time: time.Date(2026, 3, 1, 12, 0, 0, 0, time.FixedZone("", -(23*3600+59*60)))}, true},
		{"zone offset under a minute", Event{Time: time.Date(2026, 3, 1, 12, 0, 0, 0, time.FixedZone("", -59))}, true},

		// Left to json.Marshal: it fails on these, or appendEvent does not
		// know the type.
		{"year -1", Event{Time: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)}, false},
		{"year 10000", Event{Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, false},
		{"zone offset 24:00", Event{Time: time.Date(2026, 3, 1, 12, 0, 0, 0, time.FixedZone("", 24*3600))}, false},
		{"zone offset 100:00", Event{Time: time.Date(2026, 3, 1, 12, 0, 0, 0, time.FixedZone("", -100*3600))}, false},
		{"detail time year 10000", Event{Time: ts, Detail: map[string]any{"t": time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}, false},
		{"NaN", Event{Time: ts, Detail: map[string]any{"f": math.NaN()}}, false},
		{"+Inf", Event{Time: ts, Detail: map[string]any{"f": math.Inf(1)}}, false},
		{"float32 -Inf", Event{Time: ts, Detail: map[string]any{"f": float32(math.Inf(-1))}}, false},
		{"named string", Event{Time: ts, Detail: map[string]any{"s": named("x")}}, false},
		{"identity kind", Event{Time: ts, Detail: map[string]any{"kind": identity.KindAgent}}, false},
		{"bytes", Event{Time: ts, Detail: map[string]any{"b": []byte("<x>")}}, false},
		{"any slice", Event{Time: ts, Detail: map[string]any{"l": []any{1, "a"}}}, false},
		{"int slice", Event{Time: ts, Detail: map[string]any{"l": []int{1}}}, false},
		{"pointer", Event{Time: ts, Detail: map[string]any{"p": new(int)}}, false},
		{"struct", Event{Time: ts, Detail: map[string]any{"p": *full}}, false},
		{"raw message", Event{Time: ts, Detail: map[string]any{"r": json.RawMessage(`{"a" : 1}`)}}, false},
		{"number", Event{Time: ts, Detail: map[string]any{"n": json.Number("12")}}, false},
		{"error", Event{Time: ts, Detail: map[string]any{"err": ErrClosed}}, false},
		{"duration", Event{Time: ts, Detail: map[string]any{"d": time.Second}}, false},
		{"map of strings", Event{Time: ts, Detail: map[string]any{"m": map[string]string{"a": "b"}}}, false},
		{"channel", Event{Time: ts, Detail: map[string]any{"c": make(chan int)}}, false},
		{"function", Event{Time: ts, Detail: map[string]any{"f": func() {}}}, false},
		{"unsupported after supported", Event{Time: ts, Detail: map[string]any{"a": "x", "b": map[string]any{"c": complex(1, 2)}}}, false},
		{"deep", Event{Time: ts, Detail: map[string]any{"deep": deep}}, false},
		{"cycle", Event{Time: ts, Detail: cycle}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if ok := checkEvent(t, tt.e); ok != tt.ok {
				t.Errorf("appendEvent ok = %v, want %v", ok, tt.ok)
			}
			// encode writes times in UTC: check that form too.
			e := tt.e
			e.Time = e.Time.UTC()
			checkEvent(t, e)
		})
	}
}

func FuzzAppendEvent(f *testing.F) {
	f.Add("query", "s1", "<script>&</script>", "SELECT 1", uint16(0xffff), int64(-42), uint64(1<<63), 0.1, int64(1772366400), int64(5), int32(3600))
	f.Add("\u2028\u2029", "\xff\xfe", "a\x00\x1f\x7f\"\\", "é日\U0001F600", uint16(0x5555), int64(0), uint64(0), 1e21, int64(-62135596800), int64(0), int32(0))
	f.Add("", "", "", "", uint16(0), int64(math.MaxInt64), uint64(math.MaxUint64), 1e-7, int64(253402300800), int64(999999999), int32(-86400))
	f.Add("a", "b", "\xed\xa0\x80", "\xe2\x80", uint16(0xaaaa), int64(math.MinInt64), uint64(7), math.Copysign(0, -1), int64(-62135596801), int64(1), int32(-360000))
	f.Add("x", "x", "x", "x", uint16(0x0f0f), int64(1), uint64(1), math.Inf(1), int64(0), int64(-1), int32(59))
	f.Add("k", "<", ">", "&", uint16(0xf0f0), int64(3), uint64(3), 123456789e13, int64(1<<40), int64(1e9), int32(86399))
	f.Fuzz(func(t *testing.T, s1, s2, s3, s4 string, mask uint16, i int64, u uint64, x float64, sec, nsec int64, offset int32) {
		// Each bit of mask sets one field or detail entry, so that every
		// combination of omitempty fields comes up.
		set := func(bit int, s string) string {
			if mask&(1<<bit) == 0 {
				return ""
			}
			return s
		}
		e := Event{Time: time.Unix(sec, nsec).In(time.FixedZone("", int(offset))), Type: s1,
			Session: set(0, s2), Source: set(1, s3), Decision: set(2, s4), Rule: set(3, s1), Prev: set(4, s2), Hash: set(5, s3)}
		if mask&(1<<6) != 0 {
			e.Identity = &identity.Provenance{Kind: identity.Kind(s4), Subject: s3,
				Issuer: set(7, s1), Sponsor: set(8, s2), Task: set(9, s3), Role: set(10, s4)}
		}
		if mask&(1<<11) != 0 {
			e.Detail = map[string]any{}
		}
		if mask&(1<<12) != 0 {
			e.Detail = map[string]any{s1: s2, s2: i, s3: []string{s1, s4}, s4: x,
				"int": int(i), "int32": int32(i), "uint32": uint32(u), "uint64": u, "bool": i&1 == 0, "nil": nil,
				"float32": float32(x), "time": time.Unix(i, int64(u%1e9)).UTC()}
		}
		if mask&(1<<14) != 0 {
			e.Seq = u
		}
		if mask&(1<<13) != 0 {
			if e.Detail == nil {
				e.Detail = map[string]any{}
			}
			e.Detail["nested"] = map[string]any{s2: map[string]any{s3: u, s4: []string(nil)}, s1: map[string]any(nil), "e": map[string]any{}}
		}
		want, err := json.Marshal(e)
		got, ok := appendEvent(nil, &e)
		// Everything here is of a type appendEvent writes itself: it must
		// give up exactly where json.Marshal fails.
		if ok != (err == nil) {
			t.Fatalf("appendEvent ok = %v; json.Marshal error: %v", ok, err)
		}
		if ok && !bytes.Equal(got, want) {
			t.Fatalf("appendEvent:\n got %s\nwant %s", got, want)
		}
		checkEvent(t, e)
	})
}

func BenchmarkEncode(b *testing.B) {
	e := Event{Time: time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC), Type: Query,
		Identity: &identity.Provenance{Kind: identity.KindAgent, Subject: "deploy-bot", Issuer: "https://idp.example", Role: "ops"},
		Session:  "3f2a9c41", Source: "10.0.0.7:52344", Decision: "allow", Rule: "sql-read",
		Detail: map[string]any{"target": "orders-db", "statement": "SELECT id, status, total FROM orders WHERE customer_id = $1",
			"duration_ms": int64(3), "rows": int64(12)}}
	const prev = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	// json.Marshal is encode before appendEvent (and before the key).
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := marshalLine(nil, e, prev); err != nil {
				b.Fatal(err)
			}
		}
	})
	// appendLine encodes into a buffer reused across batches, and hashes
	// with the chain's reused HMAC state, as commit does; legacy is the
	// unkeyed SHA-256 chain, for comparison.
	for _, c := range []struct {
		name string
		key  []byte
	}{{"appendLine", testKey}, {"appendLine-legacy", nil}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			ch := newChain(c.key)
			e := e
			e.Seq = 123456
			if c.key == nil {
				e.Seq = 0
			}
			var buf []byte
			for b.Loop() {
				var err error
				if buf, _, err = ch.appendLine(buf[:0], e, prev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
