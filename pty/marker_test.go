package pty

import (
	"bytes"
	"strings"
	"testing"
)

const testNonce = "00112233445566778899aabbccddeeff"

func mk(n, status string) string { return markerOSC + testNonce + ";" + n + ";" + status + "\a" }

// scanAll scans the stream cut at the given offsets and returns the output
// and the markers, with each marker's position in the output.
func scanAll(stream string, cuts []int) (string, []marker, []int) {
	sc := newScanner(testNonce)
	var out bytes.Buffer
	var marks []marker
	var at []int
	prev := 0
	for _, c := range append(cuts, len(stream)) {
		if c < prev || c > len(stream) {
			continue
		}
		sc.scan([]byte(stream[prev:c]), func(p []byte) { out.Write(p) }, func(m marker) {
			marks = append(marks, m)
			at = append(at, out.Len())
		})
		prev = c
	}
	sc.flush(func(p []byte) { out.Write(p) })
	return out.String(), marks, at
}

var markerCases = []struct {
	name   string
	stream string
	out    string
	marks  []marker
}{
	{"plain output", "hello\r\n", "hello\r\n", nil},
	{"marker alone", mk("5", "0"), "", []marker{{5, 0}}},
	{"output then marker", "a\r\n" + mk("12", "130") + "b", "a\r\nb", []marker{{12, 130}}},
	{"two markers", mk("1", "0") + mk("2", "1"), "", []marker{{1, 0}, {2, 1}}},
	{"other nonce is output", markerOSC + strings.Repeat("f", 32) + ";1;0\a", markerOSC + strings.Repeat("f", 32) + ";1;0\a", nil},
	{"other OSC is output", "\x1b]0;title\a\x1b[31mred", "\x1b]0;title\a\x1b[31mred", nil},
	{"malformed status", markerOSC + testNonce + ";1;x\a", markerOSC + testNonce + ";1;x\a", nil},
	{"missing number", markerOSC + testNonce + ";;0\a", markerOSC + testNonce + ";;0\a", nil},
	{"too many digits", markerOSC + testNonce + ";1234567890;0\a", markerOSC + testNonce + ";1234567890;0\a", nil},
	{"truncated at end", "x" + markerOSC + testNonce + ";1", "x" + markerOSC + testNonce + ";1", nil},
	{"escape at end", "x\x1b", "x\x1b", nil},
	{"marker inside other escapes", "\x1b\x1b" + mk("3", "2") + "\x1b[0m", "\x1b\x1b\x1b[0m", []marker{{3, 2}}},
}

func TestScanner(t *testing.T) {
	t.Parallel()
	for _, tc := range markerCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Every way of cutting the stream in two gives the same result.
			for cut := 0; cut <= len(tc.stream); cut++ {
				out, marks, _ := scanAll(tc.stream, []int{cut})
				if out != tc.out {
					t.Fatalf("cut %d: output %q, want %q", cut, out, tc.out)
				}
				if len(marks) != len(tc.marks) {
					t.Fatalf("cut %d: markers %+v, want %+v", cut, marks, tc.marks)
				}
				for i := range marks {
					if marks[i] != tc.marks[i] {
						t.Fatalf("cut %d: marker %d = %+v, want %+v", cut, i, marks[i], tc.marks[i])
					}
				}
			}
		})
	}
}

func TestScannerOrder(t *testing.T) {
	t.Parallel()
	// A marker is reported after the output before it and before the
	// output after it, so the prompt never overtakes a command's output.
	_, marks, at := scanAll("before"+mk("1", "0")+"after", []int{3, 9, 40})
	if len(marks) != 1 || at[0] != len("before") {
		t.Fatalf("marker at %v, want after %d bytes", at, len("before"))
	}
}

func FuzzScanner(f *testing.F) {
	for _, tc := range markerCases {
		f.Add(tc.stream, uint16(3), uint16(17))
	}
	f.Fuzz(func(t *testing.T, stream string, c1, c2 uint16) {
		out, marks, _ := scanAll(stream, []int{int(c1) % (len(stream) + 1), int(c2) % (len(stream) + 1)})
		whole, wholeMarks, _ := scanAll(stream, nil)
		if out != whole || len(marks) != len(wholeMarks) {
			t.Fatalf("cutting changed the result: %q %v vs %q %v", out, marks, whole, wholeMarks)
		}
		if len(out) > len(stream) {
			t.Fatalf("output %q longer than input %q", out, stream)
		}
		// Without this session's marker prefix, the stream passes unchanged.
		if !strings.Contains(stream, markerOSC+testNonce+";") && (out != stream || len(marks) > 0) {
			t.Fatalf("stream %q changed to %q, markers %v", stream, out, marks)
		}
		if strings.Count(stream, markerOSC+testNonce+";") < len(marks) {
			t.Fatalf("%d markers from %q", len(marks), stream)
		}
	})
}

func TestIncomplete(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		src  string
		want bool
	}{
		{"echo hi", false},
		{"echo 'a", true},
		{`echo "a`, true},
		{"echo $(ls", true},
		{"if true; then", true},
		{"for i in 1 2; do\necho $i", true},
		{"for i in 1 2; do\necho $i\ndone", false},
		{"case x in", true},
		{"f() {", true},
		{"echo a &&", true},
		{"echo a |", true},
		{"cat <<EOF", true},
		{"cat <<-EOF\n\tx", true},
		{"cat <<EOF\nx\nEOF", false},
		{"echo a \\", true},
		{"echo a \\\\", false},
		{"echo a # comment \\", false},
		{"echo )", false}, // a syntax error more input cannot fix goes to Check
		{"fi", false},
	} {
		if got := incomplete(tc.src); got != tc.want {
			t.Errorf("incomplete(%q) = %v, want %v", tc.src, got, tc.want)
		}
	}
}
