package sqlpolicy

import (
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// TestWalkMatchesReflection checks the Node shortcut in walk against a
// plain protoreflect traversal: both must reach the same messages.
func TestWalkMatchesReflection(t *testing.T) {
	t.Parallel()
	var slow func(m protoreflect.Message, n *int)
	slow = func(m protoreflect.Message, n *int) {
		*n++
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			if fd.Kind() != protoreflect.MessageKind {
				return true
			}
			if fd.IsList() {
				for i := 0; i < v.List().Len(); i++ {
					slow(v.List().Get(i).Message(), n)
				}
			} else {
				slow(v.Message(), n)
			}
			return true
		})
	}
	for _, tc := range classifyCases {
		tree, err := pg_query.Parse(tc.sql)
		if err != nil {
			continue
		}
		for _, rs := range tree.Stmts {
			var fast, want int
			walkNode(rs.Stmt, func(protoreflect.Message) bool { fast++; return true })
			slow(rs.Stmt.ProtoReflect(), &want)
			if fast != want {
				t.Errorf("%s: walk visited %d messages, reflection %d", tc.name, fast, want)
			}
		}
	}
}

func TestNodeTypeName(t *testing.T) {
	t.Parallel()
	tree, err := pg_query.Parse("ALTER TEXT SEARCH DICTIONARY d (x = 1); SELECT 1")
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"AlterTsdictionaryStmt", "SelectStmt"} {
		if got := nodeTypeName(tree.Stmts[i].Stmt); got != want {
			t.Errorf("nodeTypeName = %q, want %q", got, want)
		}
	}
	if got := kindFromTypeName("CreateConversionStmt"); got != "CREATE CONVERSION" {
		t.Errorf("kindFromTypeName = %q", got)
	}
	if nodeTypeName(&pg_query.Node{}) != "" || nodeChild(&pg_query.Node{}) != nil {
		t.Error("empty Node has a type")
	}
}

// TestConstantFolding pins what the WHERE analysis folds. Every "true",
// "false" and "null" below was checked against PostgreSQL 15.18 with
// SELECT CASE WHEN (e) IS NULL THEN 'null' WHEN (e) THEN 'true' ELSE 'false' END.
// "unknown" marks expressions bastion declines to fold, mostly because a
// cast rounds or truncates (where Postgres says true for all of them).
func TestConstantFolding(t *testing.T) {
	t.Parallel()
	names := map[truth]string{tDep: "row", tTrue: "true", tFalse: "false", tNull: "null", tIndep: "unknown"}
	for expr, want := range map[string]string{
		"true": "true", "false": "false", "NULL": "null", "1=1": "true", "1=0": "false",
		"'a'='a'": "true", "'a'<>'b'": "true", "1<2": "true", "2>=1.5": "true", "1e3 = 1000": "true",
		"NOT false": "true", "NOT NULL": "null", "true OR NULL": "true", "false AND NULL": "false",
		"NULL IS NULL": "true", "1 IS NOT NULL": "true", "'yes'": "true", "'no'": "false",
		"'t'::boolean": "true", "'of'::bool": "false", "'on'": "true", "1::boolean": "true",
		"0::boolean": "false", "true IS TRUE": "true", "NULL IS UNKNOWN": "true",
		"false IS NOT TRUE": "true", "(1=1) IS NOT FALSE": "true", "1 IS DISTINCT FROM 2": "true",
		"NULL IS NOT DISTINCT FROM NULL": "true", "1 IS DISTINCT FROM NULL": "true",
		"'1'::int = 1": "true", "'1.50'::numeric = 1.5": "true",
		"9007199254740993 > 9007199254740992": "true", "-1 < 0": "true", "'abc' = 'abc '": "false",
		"'A' = 'a'": "false", "NOT (1 = 1 AND 2 = 3)": "true", "1 = 1 OR 1 = 0": "true",
		"'true'::text::boolean": "true", "1 <> 1": "false", "2 <= 2": "true", "3 > 3": "false",
		"' 7 '::int = 7": "true", "1.0::int = 1": "true", "'yes'::bool = true": "true",
		"1.5::int = 2": "unknown", "'abc'::char(5) = 'abc  '": "unknown",
		"'abcdef'::varchar(3) = 'abc'": "unknown", "B'1111' = X'F'": "unknown",
		"16777217::float4 = 16777216": "unknown", "1.55::numeric(2,1) = 1.6": "unknown",
		"'b' > 'a'": "unknown", "'1e3'::int = 1000": "unknown", "0.1 + 0.2 = 0.3": "unknown",
		"x = 1": "row", "x = x": "true", "x <> x": "false", "NOT x IS NULL": "true",
	} {
		tree, err := pg_query.Parse("SELECT " + expr)
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		n := tree.Stmts[0].Stmt.GetSelectStmt().TargetList[0].GetResTarget().Val
		if got := names[eval(n, target{name: "t"}, false)]; got != want {
			t.Errorf("%s folds to %s, want %s", expr, got, want)
		}
	}
}
