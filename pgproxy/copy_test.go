package pgproxy

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/bastion-dev/bastion/internal/pgtest"
)

func TestCopyOutMasking(t *testing.T) {
	srv := pgtest.Start(t)
	ctx := context.Background()
	direct := pgxConnect(t, srv.DSN())
	if _, err := direct.Exec(ctx, `
		CREATE TABLE users (id int, name text, password text, note text);
		INSERT INTO users VALUES (1, 'a;b "c"', '`+hunter+`', NULL), (2, 'x', NULL, 'tab	in');
		ALTER TABLE users DROP COLUMN note;
		ALTER TABLE users ADD COLUMN ssn text;
		UPDATE users SET ssn = '078-05-1120';`); err != nil {
		t.Fatal(err)
	}
	addr := serveLocal(t, &Proxy{Target: targetFor(srv)})
	pc := pgxConnect(t, clientDSN(addr, srv.Database)).PgConn()
	cases := []struct {
		name string
		sql  string
		want string // "" for binary: only checked for the secrets
	}{
		{"table", "COPY users TO STDOUT",
			"1\ta;b \"c\"\t[MASKED:password]\t[MASKED:ssn]\n2\tx\t\\N\t[MASKED:ssn]\n"},
		{"column list", "COPY users (password, id) TO STDOUT",
			"[MASKED:password]\t1\n\\N\t2\n"},
		{"query with an alias", "COPY (SELECT id, password AS p FROM users ORDER BY id) TO STDOUT",
			"1\t[MASKED:p]\n2\t\\N\n"},
		{"csv with header", "COPY (SELECT upper(password) AS up, name FROM users ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)",
			"up,name\n[MASKED:up],\"a;b \"\"c\"\"\"\n,x\n"},
		{"csv with a delimiter", "COPY users (name, password) TO STDOUT (FORMAT csv, DELIMITER ';')",
			"\"a;b \"\"c\"\"\";[MASKED:password]\nx;\n"},
		{"ordinary columns", "COPY (SELECT id, name FROM users ORDER BY id) TO STDOUT",
			"1\ta;b \"c\"\n2\tx\n"},
		{"binary", "COPY users TO STDOUT (FORMAT binary)", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if _, err := pc.CopyTo(ctx, &buf, tc.sql); err != nil {
				t.Fatal(err)
			}
			got := buf.String()
			if strings.Contains(got, hunter) || strings.Contains(got, "078-05-1120") {
				t.Errorf("a secret is shown: %q", got)
			}
			if tc.want != "" && got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
			if tc.want == "" && !strings.HasPrefix(got, "PGCOPY\n\xff\r\n\x00") {
				t.Errorf("binary copy broken: %q", got)
			}
		})
	}
}

func TestMaskCSVRow(t *testing.T) {
	t.Parallel()
	p := &copyPlan{format: 'c', delim: ',', quote: '"', escape: '"', masked: []bool{false, true, false}, repl: [][]byte{nil, []byte("M"), nil}}
	cases := []struct{ in, want string }{
		{"a,b,c\n", "a,M,c\n"},
		{"a,,c\n", "a,,c\n"},
		{`"x,y","p,""q""",z` + "\n", `"x,y",M,z` + "\n"},
		{"\"multi\nline\",\"s\"\r\n", "\"multi\nline\",M\r\n"},
		{"only", "only"},
	}
	for _, tc := range cases {
		if got := string(p.maskCSVRow([]byte(tc.in))); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
	}
	bs := &copyPlan{format: 'c', delim: ';', quote: '\'', escape: '\\', masked: []bool{true, false}, repl: [][]byte{[]byte("M"), nil}}
	if got := string(bs.maskCSVRow([]byte(`'a\';b';c`))); got != "M;c" {
		t.Errorf("escape: got %q", got)
	}
}
