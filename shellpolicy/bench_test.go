package shellpolicy

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// typicalCommands are what agents send most: reads, builds, git, cluster
// and database queries, with the odd risky one.
var typicalCommands = []string{
	"ls -la /var/log",
	"cat README.md",
	"git status",
	"git diff HEAD~1 -- src/",
	"git log --oneline -20",
	"grep -rn 'TODO' src/ | head -50",
	"find . -name '*.go' -newer go.mod | wc -l",
	"kubectl get pods -n prod -o wide",
	"kubectl logs deploy/web --tail=100",
	"kubectl delete pod web-7d9f8-abcde",
	"docker ps --format '{{.Names}}'",
	"systemctl status nginx",
	"journalctl -u nginx --since '10 min ago' --no-pager",
	"tail -n 200 /var/log/syslog",
	"df -h && free -m",
	"ps aux --sort=-%mem | head",
	"curl -s https://api.example.com/health | jq .status",
	"npm test",
	"go test ./... -run TestServer",
	"make build",
	"python3 -m pytest -q tests/",
	"psql -h db -U app -c 'SELECT count(*) FROM orders WHERE created_at > now() - interval ''1 day'''",
	"cd /srv/app && git pull && make deploy",
	"rm -rf /tmp/build-1234",
	"rm -rf ./dist",
	"sudo systemctl restart app",
	"echo \"$PATH\" | tr ':' '\\n'",
	"for f in *.log; do gzip \"$f\"; done",
	"tar -czf backup.tgz ./data",
	"ssh web-1 'uptime'",
	"terraform plan -out plan.tfplan",
	"helm list -A",
	"aws s3 ls s3://bucket/logs/",
	"sed -n '1,20p' config.yaml",
	"awk '{print $1}' access.log | sort | uniq -c | sort -rn | head",
	"export FOO=bar; env | grep FOO",
	"if [ -f .env ]; then cat .env; fi",
	"du -sh * | sort -h",
	"chmod +x ./scripts/run.sh",
	"echo 'DROP TABLE users' > notes.txt",
}

// script1K is a deployment script of about 1 KB.
var script1K = func() string {
	s := `#!/bin/bash
set -euo pipefail
APP=/srv/app
RELEASE=$(date +%Y%m%d%H%M%S)
log() { echo "[$(date -Is)] $*"; }
log "deploying $RELEASE"
cd "$APP"
git fetch --all --prune
git checkout -q main
git pull --ff-only
if [ ! -d node_modules ]; then
  npm ci --no-audit
fi
npm run build
mkdir -p "$APP/releases/$RELEASE"
cp -r dist/* "$APP/releases/$RELEASE/"
ln -sfn "$APP/releases/$RELEASE" "$APP/current"
for old in $(ls -1 "$APP/releases" | sort | head -n -5); do
  rm -rf "$APP/releases/$old"
done
sudo systemctl reload nginx
curl -fsS http://localhost/health >/dev/null && log "healthy"
psql -h db -U app -c "SELECT version FROM schema_migrations ORDER BY version DESC LIMIT 1"
kubectl -n prod rollout status deploy/web --timeout=120s
log "done"
`
	for len(s) < 1024 {
		s += "echo padding line\n"
	}
	return s
}()

const nestedCommand = `bash -c "sh -c 'eval \"sudo timeout 5 nice -n 5 env -i rm -rf /tmp/x\"'"`

func BenchmarkDecide(b *testing.B) {
	p := Default()
	for _, bc := range []struct{ name, cmd string }{
		{"short", "ls -la /var/log"},
		{"script-1KB", script1K},
		{"nested", nestedCommand},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.cmd)))
			for b.Loop() {
				p.Decide(bc.cmd, Input{})
			}
		})
	}
	// latency times each of 10,000 typical commands and reports the median
	// and the 99th percentile of one decision (DESIGN.md section 11: under
	// 20 µs and 100 µs).
	b.Run("latency", func(b *testing.B) {
		const n = 10_000
		samples := make([]time.Duration, 0, n)
		for b.Loop() {
			samples = samples[:0]
			for i := range n {
				cmd := typicalCommands[i%len(typicalCommands)]
				start := time.Now()
				p.Decide(cmd, Input{})
				samples = append(samples, time.Since(start))
			}
		}
		slices.Sort(samples)
		us := func(q float64) float64 {
			return float64(samples[int(q*float64(len(samples)-1))]) / float64(time.Microsecond)
		}
		b.ReportMetric(us(0.50), "p50-µs")
		b.ReportMetric(us(0.99), "p99-µs")
		b.ReportMetric(0, "ns/op") // one op is 10,000 decisions: the percentiles are what matter
	})
}

func TestBenchInputs(t *testing.T) {
	t.Parallel()
	if len(script1K) < 1024 || len(script1K) > 1200 {
		t.Errorf("script1K is %d bytes", len(script1K))
	}
	if out := Default().Decide(script1K, Input{}); out.Rule != "rm-dynamic-target" || len(out.Findings) < 20 {
		t.Errorf("script1K: %s [rule %s], %d findings", out.Decision, out.Rule, len(out.Findings))
	}
	if out := Default().Decide(nestedCommand, Input{}); out.Rule != "rm-temp" {
		t.Errorf("nested: %s [rule %s] %s", out.Decision, out.Rule, out.Reason)
	}
	for _, cmd := range typicalCommands {
		if out := Default().Decide(cmd, Input{}); out.Rule == "parse-error" || strings.Contains(out.Reason, "too") {
			t.Errorf("typical command %q: %s", cmd, out.Reason)
		}
	}
}

// BenchmarkPathological times the inputs built to make the analysis blow up
// (limits_test.go): each is bounded by the analysis' limits, and this says
// how long the bound takes to reach.
func BenchmarkPathological(b *testing.B) {
	p := Default()
	for _, tc := range pathological {
		b.Run(strings.ReplaceAll(tc.name, " ", "-"), func(b *testing.B) {
			b.SetBytes(int64(len(tc.cmd)))
			for b.Loop() {
				p.Decide(tc.cmd, Input{})
			}
		})
	}
}
