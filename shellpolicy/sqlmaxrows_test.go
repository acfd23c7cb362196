package shellpolicy

import (
	"errors"
	"strings"
	"testing"
)

func TestSQLMaxRows(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		file string
		want int
	}{
		{"no sql section", "version: 1\n", DefaultSQLMaxRows},
		{"sql without max_rows", "version: 1\nsql:\n  rules: []\n", DefaultSQLMaxRows},
		{"set", "version: 1\nsql:\n  max_rows: 250\n", 250},
		{"zero turns the estimate off", "version: 1\nsql:\n  max_rows: 0\n", 0},
		{"largest", "version: 1\nsql:\n  max_rows: 2147483647\n", 2147483647},
		{"beside rules and targets", "version: 1\nsql:\n  rules: []\n  max_rows: 5000\n  targets:\n    prod: {}\n", 5000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse([]byte(tc.file), "p.yaml")
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := p.SQLMaxRows(); got != tc.want {
				t.Errorf("SQLMaxRows() = %d, want %d", got, tc.want)
			}
		})
	}
	if got := Default().SQLMaxRows(); got != 1000 {
		t.Errorf("Default().SQLMaxRows() = %d, want 1000", got)
	}
	if got := (*Policy)(nil).SQLMaxRows(); got != 1000 {
		t.Errorf("nil policy: SQLMaxRows() = %d, want 1000", got)
	}
}

func TestSQLMaxRowsErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		value     string
		line, col int
		msg       string // a substring of the error
	}{
		{"negative", "-1", 3, 13, "got -1"},
		{"string", `"1000"`, 3, 13, `got "1000"`},
		{"word", "many", 3, 13, `got "many"`},
		{"float", "1.5", 3, 13, `got "1.5"`},
		{"exponent", "1e3", 3, 13, `got "1e3"`},
		{"bool", "true", 3, 13, `got "true"`},
		{"too large", "2147483648", 3, 13, "got 2147483648"},
		{"hex", "0x10", 3, 13, "got 0x10"},
		{"list", "[1]", 3, 13, "got"},
		{"mapping", "{a: 1}", 3, 13, "got"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := "version: 1\nsql:\n  max_rows: " + tc.value + "\n"
			_, err := Parse([]byte(file), "p.yaml")
			var errs ParseErrors
			if !errors.As(err, &errs) || len(errs) != 1 {
				t.Fatalf("Parse(max_rows: %s) = %v, want one ParseError", tc.value, err)
			}
			e := errs[0]
			if e.Line != tc.line || e.Col != tc.col || !strings.Contains(e.Msg, "sql.max_rows: want a whole number of rows") || !strings.Contains(e.Msg, tc.msg) {
				t.Errorf("error %q at %d:%d, want %d:%d containing %q", e.Msg, e.Line, e.Col, tc.line, tc.col, tc.msg)
			}
		})
	}
	// A misspelt key names max_rows among the fields it wants.
	_, err := Parse([]byte("version: 1\nsql:\n  maxrows: 10\n"), "p.yaml")
	if err == nil || !strings.Contains(err.Error(), "p.yaml:3:3:") || !strings.Contains(err.Error(), "want max_rows, rules or targets") {
		t.Errorf("misspelt key: %v", err)
	}
}
