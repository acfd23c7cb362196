package masking

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
)

// corpus returns about n bytes of varied secret-free text: log lines,
// Go source, ls -l listings, JSON, prose, CSV, digests, UUIDs and paths, as
// a bastion sees in command output. It is deterministic for a seed.
func corpus(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 42))
	var b strings.Builder
	words := strings.Fields(`the a build server request response error warning started stopped
		connection user session file directory config value result status update install package module
		function return import export data table index query cache timeout retry deploy release version
		Kubernetes Docker Postgres Linux Go Python Java agent bastion command output input stream`)
	w := func() string { return words[r.IntN(len(words))] }
	hexs := func(n int) string {
		p := make([]byte, n/2)
		for i := range p {
			p[i] = byte(r.Uint32())
		}
		return hex.EncodeToString(p)
	}
	for b.Len() < n {
		switch r.IntN(9) {
		case 0: // structured log
			fmt.Fprintf(&b, "2024-%02d-%02dT%02d:%02d:%02d.%03dZ %s %s %s=%d %s=%s latency=%dms path=/api/v1/%s/%d\n",
				r.IntN(12)+1, r.IntN(28)+1, r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(1000),
				[]string{"INFO", "WARN", "DEBUG", "ERROR"}[r.IntN(4)], w(), w(), r.IntN(100000), w(), w(), r.IntN(900), w(), r.IntN(1000))
		case 1: // Go source
			fmt.Fprintf(&b, "func (s *%sServer) Handle%s(ctx context.Context, req *%sRequest) (*Response, error) {\n\tif err := s.check(ctx, req.%s); err != nil {\n\t\treturn nil, fmt.Errorf(\"%s %%s: %%w\", req.Name, err)\n\t}\n\treturn &Response{ID: req.ID, Count: len(req.Items) + %d}, nil\n}\n\n",
				w(), strings.ToUpper(w()[:1])+w(), w(), w(), w(), r.IntN(10))
		case 2: // ls -l
			fmt.Fprintf(&b, "-rw-r--r-- 1 %s staff %7d Mar %2d %02d:%02d %s_%s.go\ndrwxr-xr-x 3 root root    4096 Jan  1 00:00 %s\n",
				w(), r.IntN(1<<20), r.IntN(28)+1, r.IntN(24), r.IntN(60), w(), w(), w())
		case 3: // JSON
			fmt.Fprintf(&b, `{"id": %d, "name": "%s-%s", "status": "%s", "tags": ["%s", "%s"], "created_at": "2024-01-%02dT10:00:00Z", "ratio": 0.%d, "enabled": true}`+"\n",
				r.IntN(1e6), w(), w(), w(), w(), w(), r.IntN(28)+1, r.IntN(1000))
		case 4: // prose
			for range 12 + r.IntN(12) {
				b.WriteString(w())
				b.WriteByte(' ')
			}
			b.WriteString("end.\n")
		case 5: // git log, digests
			fmt.Fprintf(&b, "commit %s\nAuthor: %s <%s@example.com>\n\n    Fix %s in %s\n\n", hexs(40), w(), w(), w(), w())
			fmt.Fprintf(&b, "%s  %s.tar.gz\nsha256:%s\n", hexs(64), w(), hexs(64))
		case 6: // UUIDs, CSV
			fmt.Fprintf(&b, "%s-%s-4%s-a%s-%s,%s,%d,%d.%02d\n", hexs(8), hexs(4), hexs(4)[:3], hexs(4)[:3], hexs(12), w(), r.IntN(1000), r.IntN(100), r.IntN(100))
		case 7: // base64 of ordinary text, paths
			fmt.Fprintf(&b, "%s /usr/local/lib/%s/%s.so ~/.config/%s/settings.toml\n",
				base64.StdEncoding.EncodeToString([]byte(w()+" "+w()+" "+w())), w(), w(), w())
		case 8: // shell session
			fmt.Fprintf(&b, "user@host:~/src/%s$ go test ./%s/... -run Test%s -count=1\nok  \tgithub.com/example/%s\t0.%03ds\n", w(), w(), w(), w(), r.IntN(1000))
		}
	}
	return []byte(b.String()[:n])
}

// A planted secret: text parts, some of them secret. The masked form
// replaces each secret part with [MASKED:kind].
type part struct {
	text   string
	secret bool
}

type plant struct {
	kind  string
	parts []part
}

func (p plant) in() string {
	var b strings.Builder
	for _, x := range p.parts {
		b.WriteString(x.text)
	}
	return b.String()
}

func (p plant) want() string {
	var b strings.Builder
	for _, x := range p.parts {
		if x.secret {
			b.WriteString(mk(p.kind))
		} else {
			b.WriteString(x.text)
		}
	}
	return b.String()
}

const (
	alnum  = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b64u   = alnum + "-_"
	b64std = alnum + "+/"
	hexlc  = "0123456789abcdef"
	b32    = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	pwchr  = alnum + "!#^*_+-"
)

// rnd returns n random bytes of alphabet that contain a digit, a lower-case
// and an upper-case letter where the alphabet has them.
func rnd(r *rand.Rand, alphabet string, n int) string {
	for {
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		c := classes(b)
		if c == classes([]byte(alphabet)) && !strings.ContainsRune("-_/+ ", rune(b[0])) && !strings.ContainsRune("-_ ", rune(b[n-1])) {
			return string(b)
		}
	}
}

func sec(s string) part { return part{s, true} }
func ctx(s string) part { return part{s, false} }

// generators plant one secret of each rule.
var generators = []func(r *rand.Rand) plant{
	func(r *rand.Rand) plant {
		return plant{"aws-access-key", []part{sec([]string{"AKIA", "ASIA", "AROA"}[r.IntN(3)] + rnd(r, b32, 16))}}
	},
	func(r *rand.Rand) plant {
		c := [][2]string{{"aws_secret_access_key = ", "\n"}, {"AWS_SECRET_ACCESS_KEY=", "\n"}, {`"SecretAccessKey": "`, `",`}}[r.IntN(3)]
		return plant{"aws-secret-key", []part{ctx(c[0]), sec(rnd(r, b64std, 40)), ctx(c[1])}}
	},
	func(r *rand.Rand) plant {
		return plant{"github-token", []part{sec("gh" + string("pousr"[r.IntN(5)]) + "_" + rnd(r, alnum, 36))}}
	},
	func(r *rand.Rand) plant {
		return plant{"github-token", []part{sec("github_pat_" + rnd(r, alnum, 22) + "_" + rnd(r, alnum, 59))}}
	},
	func(r *rand.Rand) plant { return plant{"gitlab-token", []part{sec("glpat-" + rnd(r, b64u, 20))}} },
	func(r *rand.Rand) plant {
		return plant{"slack-token", []part{sec("xoxb-" + rnd(r, "0123456789", 12) + "-" + rnd(r, "0123456789", 13) + "-" + rnd(r, alnum, 24))}}
	},
	func(r *rand.Rand) plant {
		return plant{"slack-webhook", []part{ctx("https://hooks.slack.com/services/"), sec("T" + rnd(r, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 8) + "/B" + rnd(r, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 8) + "/" + rnd(r, alnum, 24))}}
	},
	func(r *rand.Rand) plant {
		return plant{"stripe-key", []part{sec([]string{"sk_live_", "rk_live_", "sk_test_"}[r.IntN(3)] + rnd(r, alnum, 24+r.IntN(76)))}}
	},
	func(r *rand.Rand) plant { return plant{"google-api-key", []part{sec("AIza" + rnd(r, b64u, 35))}} },
	func(r *rand.Rand) plant {
		return plant{"google-oauth-token", []part{sec("ya29." + rnd(r, b64u, 60+r.IntN(100)))}}
	},
	func(r *rand.Rand) plant {
		return plant{"openai-api-key", []part{sec([]string{"sk-", "sk-proj-"}[r.IntN(2)] + rnd(r, alnum, 48))}}
	},
	func(r *rand.Rand) plant {
		return plant{"anthropic-api-key", []part{sec("sk-ant-api03-" + rnd(r, b64u, 93) + "-AA")}}
	},
	func(r *rand.Rand) plant { return plant{"npm-token", []part{sec("npm_" + rnd(r, alnum, 36))}} },
	func(r *rand.Rand) plant {
		return plant{"sendgrid-api-key", []part{sec("SG." + rnd(r, b64u, 22) + "." + rnd(r, b64u, 43))}}
	},
	func(r *rand.Rand) plant { return plant{"twilio-api-key", []part{sec("SK" + rnd(r, hexlc, 32))}} },
	func(r *rand.Rand) plant {
		return plant{"twilio-auth-token", []part{ctx("AC" + rnd(r, hexlc, 32) + ":"), sec(rnd(r, hexlc, 32))}}
	},
	func(r *rand.Rand) plant { return plant{"vault-token", []part{sec("hvs." + rnd(r, b64u, 90))}} },
	func(r *rand.Rand) plant {
		return plant{"vault-token", []part{ctx("VAULT_TOKEN="), sec("s." + rnd(r, alnum, 24))}}
	},
	func(r *rand.Rand) plant {
		return plant{"digitalocean-token", []part{sec("dop_v1_" + rnd(r, hexlc, 64))}}
	},
	func(r *rand.Rand) plant {
		return plant{"azure-key", []part{ctx("DefaultEndpointsProtocol=https;AccountName=a;AccountKey="), sec(rnd(r, b64std, 86) + "=="), ctx(";EndpointSuffix=core.windows.net")}}
	},
	func(r *rand.Rand) plant {
		h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","kid":"` + rnd(r, alnum, 8) + `"}`))
		p := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"` + rnd(r, alnum, 12) + `","exp":1700000000}`))
		return plant{"jwt", []part{sec(h + "." + p + "." + rnd(r, b64u, 43+r.IntN(300)))}}
	},
	func(r *rand.Rand) plant {
		label := []string{"RSA ", "EC ", "OPENSSH ", "", "ENCRYPTED "}[r.IntN(5)]
		var b strings.Builder
		b.WriteString("-----BEGIN " + label + "PRIVATE KEY-----\n")
		for range 1 + r.IntN(30) {
			b.WriteString(rnd(r, b64std, 64) + "\n")
		}
		b.WriteString("-----END " + label + "PRIVATE KEY-----")
		return plant{"private-key", []part{sec(b.String()), ctx("\n")}}
	},
	func(r *rand.Rand) plant {
		body := "-----BEGIN PRIVATE KEY-----\\n" + rnd(r, b64std, 64) + "\\n" + rnd(r, b64std, 64) + "\\n-----END PRIVATE KEY-----"
		return plant{"private-key", []part{ctx(`{"type": "service_account", "private_key": "`), sec(body), ctx(`\n", "client_id": "1"}`)}}
	},
	func(r *rand.Rand) plant {
		var b strings.Builder
		b.WriteString("-----BEGIN EC PRIVATE KEY-----\n")
		for range 1 + r.IntN(5) {
			b.WriteString(rnd(r, b64std, 64) + "\n")
		}
		b.WriteString("-----END EC PRIVATE KEY-----\n")
		enc := base64.StdEncoding.EncodeToString([]byte(b.String()))
		if r.IntN(2) == 0 {
			// base64 -w 76
			var w strings.Builder
			for len(enc) > 76 {
				w.WriteString(enc[:76] + "\n")
				enc = enc[76:]
			}
			enc = w.String() + enc
		}
		return plant{"private-key", []part{ctx("client-key-data: "), sec(enc), ctx("\n")}}
	},
	func(r *rand.Rand) plant {
		return plant{"authorization", []part{ctx(`{"auths": {"registry.example.com": {"auth": "`), sec(base64.StdEncoding.EncodeToString([]byte("user:" + rnd(r, alnum, 12)))), ctx(`"}}}`)}}
	},
	func(r *rand.Rand) plant {
		return plant{"url-password", []part{ctx([]string{"postgres", "mysql", "redis", "amqp"}[r.IntN(4)] + "://app:"), sec(rnd(r, alnum+"!*_-", 8+r.IntN(20))), ctx("@db.internal:5432/app")}}
	},
	func(r *rand.Rand) plant {
		pre := []string{"password=", "DB_PASSWORD=", "export MYSQL_PWD=", "password: ", "passwd = ", "--password "}[r.IntN(6)]
		return plant{"password", []part{ctx(pre), sec(rnd(r, pwchr, 6+r.IntN(20)))}}
	},
	func(r *rand.Rand) plant {
		return plant{"password", []part{ctx(`{"user": "app", "password": "`), sec(rnd(r, pwchr+" @:", 6+r.IntN(20))), ctx(`"}`)}}
	},
	func(r *rand.Rand) plant {
		return plant{"token", []part{ctx([]string{"token=", "ACCESS_TOKEN=", "refresh_token: "}[r.IntN(3)]), sec(rnd(r, alnum, 16+r.IntN(40)))}}
	},
	func(r *rand.Rand) plant {
		return plant{"secret", []part{ctx([]string{"client_secret=", "SECRET_KEY=", "secret: "}[r.IntN(3)]), sec(rnd(r, alnum, 16+r.IntN(40)))}}
	},
	func(r *rand.Rand) plant {
		return plant{"api-key", []part{ctx([]string{"api_key=", "X-API-Key: ", "apikey: "}[r.IntN(3)]), sec(rnd(r, alnum, 16+r.IntN(40)))}}
	},
	func(r *rand.Rand) plant {
		return plant{"authorization", []part{ctx("Authorization: " + []string{"Bearer ", "Basic ", "Token "}[r.IntN(3)]), sec(rnd(r, alnum+"+/", 16+r.IntN(40))), ctx("\r\n")}}
	},
	func(r *rand.Rand) plant {
		crypt := "./" + alnum
		h := []string{
			"SCRAM-SHA-256$4096:" + rnd(r, b64std, 22) + "==$" + rnd(r, b64std, 43) + "=:" + rnd(r, b64std, 43) + "=",
			"md5" + rnd(r, hexlc, 32),
			"$2b$" + []string{"10", "12"}[r.IntN(2)] + "$" + rnd(r, crypt, 53),
			"$6$" + rnd(r, crypt, 16) + "$" + rnd(r, crypt, 86),
			"$argon2id$v=19$m=65536,t=3,p=4$" + rnd(r, b64std, 22) + "$" + rnd(r, b64std, 43),
		}[r.IntN(5)]
		c := [][2]string{{"root:", ":19700:0:99999:7:::"}, {" app | ", "\n"}, {`{"hash": "`, `"}`}}[r.IntN(3)]
		return plant{"password-hash", []part{ctx(c[0]), sec(h), ctx(c[1])}}
	},
	func(r *rand.Rand) plant {
		return plant{"kubernetes-secret", []part{
			ctx("\napiVersion: v1\ndata:\n  password: "), sec(rnd(r, b64std, 16) + "=="),
			ctx("\n  username: "), sec(rnd(r, b64std, 8)),
			ctx("\nkind: Secret\nmetadata:\n  name: db\n")}}
	},
}

// filler returns secret-free words and separators around planted secrets.
func filler(r *rand.Rand) string {
	words := []string{"ok", "the", "build", "done", "src/main.go", "12:30:45", "2024-01-01", "-rw-r--r--", "user@host", "[INFO]", "{", "}", "(x)", "a,b", "100%", "v1.2.3", "é", "日本", "\t", "\x1b[1;32mgreen\x1b[0m", "\x1b]0;title\x07", "\r"}
	var b strings.Builder
	for range r.IntN(8) {
		b.WriteString(words[r.IntN(len(words))])
		b.WriteByte(" \n"[r.IntN(2)])
	}
	return b.String()
}
