package masking

import (
	"strings"
	"testing"
)

// invisibles are inserted between the characters of a secret; a terminal
// shows the secret whole.
var invisibles = []struct{ name, b string }{
	{"bel", "\a"}, {"nul", "\x00"}, {"del", "\x7f"}, {"so si", "\x0e\x0f"},
	{"other c0", "\x01\x02\x1c\x1f"},
	{"csi", "\x1b[0m"}, {"osc title", "\x1b]0;x\x07"}, {"osc st", "\x1b]2;title\x1b\\"},
	{"dcs", "\x1bPq#0\x1b\\"}, {"apc", "\x1b_hidden\x1b\\"}, {"pm", "\x1b^x\x1b\\"}, {"sos", "\x1bXy\x1b\\"},
	{"zwsp", "\u200b"}, {"zwnj", "\u200c"}, {"zwj", "\u200d"}, {"lrm", "\u200e"}, {"rlm", "\u200f"},
	{"word joiner", "\u2060"}, {"invisible times", "\u2062"}, {"bom", "\ufeff"}, {"soft hyphen", "\u00ad"},
	{"rlo", "\u202e"}, {"lri", "\u2066"}, {"pdi", "\u2069"}, {"alm", "\u061c"}, {"cgj", "\u034f"},
	{"variation selector", "\ufe0f"}, {"mongolian fvs", "\u180b"}, {"tag", "\U000E0041"},
	{"c1 csi", "\u009b"}, {"many", "\u200b\x00\x1b]0;t\x07\u00ad"},
}

func TestInvisibleInsideSecret(t *testing.T) {
	t.Parallel()
	for _, sec := range []struct{ name, in, want string }{
		{"aws", "key " + tAWS + " ok", "key " + mk("aws-access-key") + " ok"},
		{"github", "t=" + tGHP + "\n", "t=" + mk("github-token") + "\n"},
		{"password", "password=hunter2xyz9\n", "password=" + mk("password") + "\n"},
		{"hash", "root:" + tSHA512Crypt + ":1::", "root:" + mk("password-hash") + ":1::"},
	} {
		for _, inv := range invisibles {
			t.Run(sec.name+"/"+inv.name, func(t *testing.T) {
				t.Parallel()
				// Insert the bytes at a few places inside the secret.
				v := strings.Index(sec.in, "=") + 1
				if v == 0 {
					v = strings.IndexAny(sec.in, " :") + 1
				}
				for _, at := range []int{v + 1, v + 3, v + 8} {
					in := sec.in[:at] + inv.b + sec.in[at:]
					if got := maskBytes(t, in); got != sec.want {
						t.Fatalf("at %d: Bytes(%q)\n got %q\nwant %q", at, in, got, sec.want)
					}
					for _, chunks := range splits(in) {
						if got := stream(Default(), chunks); got != sec.want {
							t.Fatalf("at %d: writes %q\n got %q\nwant %q", at, chunks, got, sec.want)
						}
					}
				}
			})
		}
	}
}

func TestInvisibleKeptOutsideSecrets(t *testing.T) {
	t.Parallel()
	cases := []maskCase{
		same("zero width in prose", "a\u200bb c\u00add \ufeffe\n"),
		same("bell and backspace", "done\a 50%\b\b\b75%\n"),
		same("osc title", "\x1b]0;user@host: ~\x07$ "),
		same("bidi isolates in a name", "file \u2066name\u2069.txt\n"),
		same("unicode text", "café 日本 “quoted” — ok\n"),
		same("cut zero width at the end", "text \xe2\x80"),
		{"secret in a title", "\x1b]0;psql postgres://u:S3cretPw@db\x07$ ", "\x1b]0;psql postgres://u:" + mk("url-password") + "@db\x07$ "},
		{"secret in a hyperlink", "\x1b]8;;https://x/?token=" + tGHP + "\x1b\\link\x1b]8;;\x1b\\", "\x1b]8;;https://x/?token=" + mk("github-token") + "\x1b\\link\x1b]8;;\x1b\\"},
		{"invisibles around a secret stay", "\u200b" + tAWS + "\a\n", "\u200b" + mk("aws-access-key") + "\a\n"},
		{"backspace overwrite", "key " + tAWS[:10] + "X\b" + tAWS[10:] + " ok", "key " + mk("aws-access-key") + " ok"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := maskBytes(t, tc.in); got != tc.want {
				t.Fatalf("Bytes\n got %q\nwant %q", got, tc.want)
			}
			for _, chunks := range splits(tc.in) {
				if got := stream(Default(), chunks); got != tc.want {
					t.Fatalf("writes %q\n got %q\nwant %q", chunks, got, tc.want)
				}
			}
		})
	}
}

func TestInvisibleEventSpan(t *testing.T) {
	t.Parallel()
	var evs []Event
	m := New(Options{OnMask: func(e Event) { evs = append(evs, e) }})
	in := "k " + tAWS[:4] + "\u200b\x00" + tAWS[4:] + " x"
	m.Bytes([]byte(in))
	if len(evs) != 1 || evs[0].Offset != 2 || evs[0].Length != len(tAWS)+4 {
		t.Fatalf("events %+v", evs)
	}
}
