#!/usr/bin/env bash
# Driver compatibility of bastion's database tunnel (issue #23): the test
# suites of pgx and lib/pq, at pinned versions from the Go module proxy, run
# against a real PostgreSQL twice, directly and through `ssh -L` into
# bastion (a target whose policy file allows every SQL statement the policy
# can allow), and are compared test by test. Prints per suite the pass,
# fail and skip counts and wall time of both runs, and every test that
# fails only through the tunnel; exits 1 if one of those is not in
# scripts/compat-expected.txt (`suite TestName  # reason` per line).
#
# Usage: scripts/compat.sh  (make compat). Environment:
#   COMPAT_SHORT=1     a subset of both suites (make test runs it)
#   COMPAT_SUITES      "pgx pq" (default) or one of them
#   COMPAT_OUT         where the raw outputs go (default bin/compat): per
#                      suite and run the go test -json stream, its stderr,
#                      and tunnel-only-failures.txt with each failure's output;
#                      bastion's log, its denials and approvals; the servers' logs
#   COMPAT_TIMEOUT     go test -timeout per package (default 10m)
#   BIN                a bastion binary to use (default: built from this tree)
#
# Each suite gets its own cluster set up as its CI sets it up (pgx:
# ci/setup_test.bash and testsetup/; lib/pq: testdata/postgres), on
# 127.0.0.1 with password authentication, TLS on; the environment of each
# run is what the suite's CI gives it, with the host, port and socket of the
# tunnel and no passwords in the tunnel run (bastion injects them). pgx's
# unix-socket test goes through `ssh -L SOCKET:target:5432`.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
PGX=github.com/jackc/pgx/v5@v5.13.0
PQ=github.com/lib/pq@v1.12.3
SUITES=${COMPAT_SUITES:-pgx pq}
SHORT=${COMPAT_SHORT:-}
OUT=${COMPAT_OUT:-bin/compat}
TIMEOUT=${COMPAT_TIMEOUT:-10m}
EXPECTED=$repo/scripts/compat-expected.txt
want() { [[ " $SUITES " == *" $1 "* ]]; }
say() { echo "compat [${SECONDS}s]: $*" >&2; }

# The suites read PG* and PGX_* variables: only the ones set below count.
while read -r v; do unset "$v"; done < <(compgen -e | grep -E '^PG')

mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
rm -f "$OUT"/*.json "$OUT"/*.stderr "$OUT"/*.log "$OUT"/*.txt
work=$(mktemp -d "${TMPDIR:-/tmp}/bastion-compat.XXXXXX")
chmod 755 "$work"
pids=()
clusters=()
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$pgbin/initdb" ] || { echo "compat: PostgreSQL not installed (make deps)" >&2; exit 1; }
# initdb and postgres refuse to run as root.
asdb() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for c in "${clusters[@]}"; do
    cp "$c/log" "$OUT/postgres-$(basename "$c").log" 2>/dev/null || true
    asdb "$pgbin/pg_ctl" -D "$c/data" -m immediate stop >/dev/null 2>&1 || true
  done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# free_port: a loopback port nothing listens on now.
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}
wait_port() { for _ in $(seq 400); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.05; done; return 1; }
now() { date +%s.%N; }

# --- sources, through the Go module proxy
# fetch MODULE@VERSION DIR: a writable copy of the module's source in DIR.
fetch() {
  local src
  src=$(go mod download -json "$1" | awk -F'"' '$2 == "Dir" {print $4}')
  [ -d "$src" ] || { echo "compat: go mod download $1 gave no source directory" >&2; exit 1; }
  cp -r "$src" "$2" && chmod -R u+w "$2"
}

# --- PostgreSQL
# init_pg NAME HBA CONF: a cluster in $work/NAME on a free port, with the
# superuser postgres (trust on its socket); sets port_NAME. start_pg NAME
# starts it, psql_as NAME DB ARGS... runs psql as postgres on its socket.
init_pg() {
  local d=$work/$1 port
  port=$(free_port)
  mkdir -p "$d/sock"
  [ "$(id -u)" -ne 0 ] || chown -R postgres "$d"
  asdb "$pgbin/initdb" -D "$d/data" -U postgres -E UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=reject >"$d/initdb.log" 2>&1 ||
    { cat "$d/initdb.log" >&2; exit 1; }
  printf '%s\n' "$2" | asdb tee "$d/data/pg_hba.conf" >/dev/null
  printf "listen_addresses = '127.0.0.1'\nport = %s\nunix_socket_directories = '%s'\n%s\n" "$port" "$d/sock" "$3" |
    asdb tee -a "$d/data/postgresql.conf" >/dev/null
  printf -v "port_$1" %s "$port"
}
start_pg() {
  clusters+=("$work/$1")
  asdb "$pgbin/pg_ctl" -D "$work/$1/data" -l "$work/$1/log" -w -t 60 start >/dev/null || { cat "$work/$1/log" >&2; exit 1; }
}
psql_as() { local n=$1 db=$2 port=port_$1; shift 2; "$pgbin/psql" -X -q -v ON_ERROR_STOP=1 -h "$work/$n/sock" -p "${!port}" -U postgres -d "$db" "$@"; }
# server_certs NAME CERT KEY CA: TLS files into NAME's data directory.
server_certs() {
  local d=$work/$1/data
  cp "$2" "$d/server.crt" && cp "$3" "$d/server.key" && cp "$4" "$d/root.crt"
  chmod 600 "$d/server.key"
  [ "$(id -u)" -ne 0 ] || chown postgres "$d/server.crt" "$d/server.key" "$d/root.crt"
}
tls_conf="ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
ssl_ca_file = 'root.crt'"

mkdir -p "$work/bastion-cfg"
dbs=""
if want pgx; then
  say "fetching $PGX, setting up its PostgreSQL"
  fetch "$PGX" "$work/src-pgx"
  # ci/setup_test.bash: pg_hba and TLS from testsetup/, certificates from
  # testsetup/generate_certs.go, then testsetup/postgresql_setup.sql.
  mkdir -p "$work/pgx-certs"
  (cd "$work/pgx-certs" && go run "$work/src-pgx/testsetup/generate_certs.go" >/dev/null)
  init_pg pgx "$(cat "$work/src-pgx/testsetup/pg_hba.conf")" "$tls_conf"
  c=$work/pgx-certs
  server_certs pgx "$c/localhost.crt" "$c/localhost.key" "$c/ca.pem"
  start_pg pgx
  psql_as pgx postgres -c 'create database pgx_test'
  psql_as pgx pgx_test -f "$work/src-pgx/testsetup/postgresql_setup.sql" >/dev/null
  echo secret >"$work/bastion-cfg/pgx.password"
  dbs+="  - {name: pgx, addr: 127.0.0.1:$port_pgx, database: pgx_test, user: pgx_md5, password_file: $work/bastion-cfg/pgx.password}
"
fi
if want pq; then
  say "fetching $PQ, setting up its PostgreSQL"
  fetch "$PQ" "$work/src-pq"
  # testdata/postgres: its pg_hba (10-hba.sh) with pqgo, the suite's own
  # superuser, moved from the image's trust to a password; TLS with
  # testdata/ssl; the roles of 20-config.sql.
  pqpw=$(head -c 12 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
  hba=$(sed -n '/^# TYPE/,/^EOF/p' "$work/src-pq/testdata/postgres/docker-entrypoint-initdb.d/10-hba.sh" | grep -v '^EOF' |
    awk '$1 == "host" && $2 == "all" && $3 == "all" && $5 == "trust" {print "host all pqgo all scram-sha-256"} {print}')
  init_pg pq "$hba" "$tls_conf"
  s=$work/src-pq/testdata/ssl
  server_certs pq "$s/server.crt" "$s/server.key" "$s/root.crt"
  start_pg pq
  psql_as pq postgres -c "create role pqgo superuser login password '$pqpw'" -c 'create database pqgo owner pqgo'
  grep -v '^alter system' "$work/src-pq/testdata/postgres/docker-entrypoint-initdb.d/20-config.sql" | psql_as pq pqgo -f - >/dev/null
  echo "$pqpw" >"$work/bastion-cfg/pq.password"
  dbs+="  - {name: pq, addr: 127.0.0.1:$port_pq, database: pqgo, user: pqgo, password_file: $work/bastion-cfg/pq.password}
"
fi

# --- bastion: dev mode (embedded issuer, a logged-in agent), one target per
# suite, every SQL rule that can allow set to allow (sql-parse-error cannot
# be), no planner estimates (sql.max_rows: 0), and a short approval timeout
# so that a statement held anyway fails in seconds instead of waiting 5m.
say "bastion"
BIN=${BIN:-}
if [ -z "$BIN" ]; then
  BIN=$work/bastion
  go build -o "$BIN" ./cmd/bastion
fi
go build -o "$work/compatreport" ./scripts/compatreport
bd=$work/bastion-data
"$BIN" init --data-dir "$bd" >/dev/null
{
  printf 'version: 1\nsql:\n  max_rows: 0\n  rules:\n'
  grep -o '{ID: "sql-[a-z-]*"' shellpolicy/sqlpolicy/rules.go | cut -d'"' -f2 | grep -vx sql-parse-error |
    while read -r id; do printf '    - id: %s\n      decision: allow\n' "$id"; done
} >"$work/bastion-cfg/policy.yaml"
cat >"$bd/bastion.yaml" <<EOF
certs: {default_ttl: 4h, max_ttl: 4h}
policy: {file: $work/bastion-cfg/policy.yaml}
approvals: {timeout: 10s}
databases:
$dbs
EOF
"$BIN" policy lint --config "$bd/bastion.yaml" "$work/bastion-cfg/policy.yaml" >/dev/null
"$BIN" policy check --policy "$work/bastion-cfg/policy.yaml" --sql 'DROP TABLE t' >/dev/null ||
  { echo "compat: the allow-everything policy does not allow DROP" >&2; exit 1; }
"$BIN" dev --data-dir "$bd" --ssh-addr "127.0.0.1:$(free_port)" --http-addr "127.0.0.1:$(free_port)" >"$work/dev.log" 2>&1 &
pids+=($!)
for _ in $(seq 400); do [ -f "$bd/client/ssh_config" ] && break; sleep 0.05; done
[ -f "$bd/client/ssh_config" ] || { cat "$work/dev.log" >&2; echo "compat: bastion dev did not start" >&2; exit 1; }

# --- the agent's tunnels: one SSH connection, a TCP port per target and a
# unix socket for pgx's socket test.
fwd=()
if want pgx; then
  tport_pgx=$(free_port)
  mkdir -p "$work/tsock"
  fwd+=(-L "127.0.0.1:$tport_pgx:pgx:5432" -L "$work/tsock/.s.PGSQL.$tport_pgx:pgx:5432")
fi
if want pq; then tport_pq=$(free_port); fwd+=(-L "127.0.0.1:$tport_pq:pq:5432"); fi
ssh -F "$bd/client/ssh_config" -o BatchMode=yes -o ExitOnForwardFailure=yes -o ServerAliveInterval=30 -N "${fwd[@]}" bastion 2>"$work/ssh.log" &
pids+=($!)
for p in ${tport_pgx:-} ${tport_pq:-}; do wait_port "$p" || { cat "$work/ssh.log" >&2; echo "compat: the tunnel did not open" >&2; exit 1; }; done

# --- the runs
# The short form: tests of each feature a driver leans on (simple and
# extended protocol, COPY in and out, LISTEN/NOTIFY, binary formats,
# pipeline and batch, cancel, pools, errors with their SQLSTATE).
pgx_pkgs=./...
pgx_re=.
pq_re=.
if [ -n "$SHORT" ]; then
  pgx_pkgs=". ./pgconn ./pgxpool ./stdlib"
  pgx_re='^(TestExec|TestExecFailure|TestConnSimpleProtocol|TestPrepare|TestQueryRowErrors|TestConnExec|TestConnExecParams|TestConnExecPrepared|TestConnPrepareSyntaxError|TestConnExecMultipleQueriesError|TestConnDeallocate|TestConnQueryRowConstraintErrors|TestConnCopyFromSmall|TestConnCopyToSmall|TestConnCopyFrom|TestConnCopyFromBinary|TestListenNotify|TestConnWaitForNotification|TestConnOnNotification|TestConnQueryRowPgxBinary|TestSendBatchPreservesResultFormats|TestConnSendBatch|TestConnExecBatch|TestPipelineQuery|TestPipelinePrepare|TestPoolSendBatch|TestConnCancelRequest|TestConnContextCanceledCancelsRunningQueryOnServer|TestStmtExecContextCancel|TestPoolAcquireAndConnRelease|TestPoolQuery|TestPoolAcquireAllIdle|TestConnPoolQueryConcurrentLoad)$'
  # lib/pq's Listener tests that wait 100 ms for a connection panic when it
  # takes longer, also directly on a loaded machine: the ListenerConn ones.
  pq_re='^(TestSimpleQuery|TestExec|TestBindError|TestParseErrorInExtendedQuery|TestErrorSQLState|TestErrorOnExec|TestErrorOnQuery|TestCopyInMultipleValues|TestCopyInStmt|TestCopyInNull|TestListenerConnListen|TestListenerConnUnlisten|TestConnectorWithNotificationHandler_Simple|TestContextCancelQuery|TestQueryCancelRace|TestStmtQueryContext|TestStmtExecContext)$'
fi

# gotest SUITE OUTPUT ENV... -- GO-TEST-ARGS...: go test -json in the
# suite's source with ENV, appended to OUTPUT.json and OUTPUT.stderr; adds
# its wall time to elapsed. -trimpath keeps the source's directory, new each
# run, out of the build cache's keys: pgx's tests compile once (minutes on 2
# cores), not every run.
elapsed=0
gotest() {
  local dir=$work/src-$1 o=$2 envs=() t0; shift 2
  while [ "$1" != -- ]; do envs+=("$1"); shift; done; shift
  t0=$(now)
  (cd "$dir" && env "${envs[@]}" nice -n 10 go test -trimpath -vet=off -count=1 -json -timeout "$TIMEOUT" "$@" </dev/null >>"$o.json" 2>>"$o.stderr") || true
  elapsed=$(awk -v e="$elapsed" -v a="$t0" -v b="$(now)" 'BEGIN {printf "%.1f", e + b - a}')
}
# pkgs SUITE, pattern SUITE: what go test runs of the suite or its short form.
pkgs() { if [ "$1" = pgx ]; then echo "$pgx_pkgs"; else echo ./...; fi; }
pattern() { if [ "$1" = pgx ]; then echo "$pgx_re"; else echo "$pq_re"; fi; }
# run SUITE MODE ENV...: the suite (or its short form) with ENV, into
# $OUT/SUITE.MODE.json. The top-level tests a run leaves unfinished (its test
# binary died: a panic, the -timeout) run again, while that leaves fewer (a
# crashing test fails and is not run again; at most 20 times), so that a
# crash does not hide the rest of the suite.
declare -A wall
run() {
  local suite=$1 mode=$2 p files i; shift 2
  read -ra p < <(pkgs "$suite")
  say "$suite $mode"
  elapsed=0
  gotest "$suite" "$OUT/$suite.$mode" "$@" -- -run "$(pattern "$suite")" "${p[@]}"
  files=(-"$mode" "$OUT/$suite.$mode.json")
  : >"$work/missing.prev"
  for i in $(seq 20); do
    "$work/compatreport" -missing -list "$OUT/$suite.list.json" "${files[@]}" >"$work/missing"
    [ -s "$work/missing" ] && ! cmp -s "$work/missing" "$work/missing.prev" || break
    say "$suite $mode: again, the tests a crashed test binary left ($i)"
    while read -r pkg re; do gotest "$suite" "$OUT/$suite.$mode.rerun$i" "$@" -- -run "$re" "$pkg"; done <"$work/missing"
    files+=(-"$mode" "$OUT/$suite.$mode.rerun$i.json")
    cp "$work/missing" "$work/missing.prev"
  done
  echo "${files[@]}" >"$work/$suite.$mode.files"
  wall[$suite.$mode]=$elapsed
}
# list SUITE ENV...: its top-level tests, into $OUT/SUITE.list.json, and
# the test binaries built, so that no run's wall time includes compiling.
# (lib/pq's TestMain connects after listing: ENV is the direct run's.)
list() {
  local suite=$1 p; shift
  say "$suite: building its tests"
  read -ra p < <(pkgs "$suite")
  (cd "$work/src-$suite" && env "$@" nice -n 10 go test -trimpath -vet=off -list "$(pattern "$suite")" -json "${p[@]}" \
    </dev/null >"$OUT/$suite.list.json" 2>"$OUT/$suite.list.stderr") || true
  if grep -q '"Action":"build-fail"' "$OUT/$suite.list.json" || ! grep -q '"Output":"Test' "$OUT/$suite.list.json"; then
    grep -h '"Action":"build-output"' "$OUT/$suite.list.json" | tail -20 >&2
    tail -20 "$OUT/$suite.list.stderr" >&2
    echo "compat: $suite does not build" >&2
    exit 1
  fi
}
if want pgx; then
  c=$work/pgx-certs
  # .github/workflows/ci.yml (PostgreSQL 14-18; TLS_CONN_STRING and
  # SCRAM_PLUS are left out there too; OAuth needs PostgreSQL 18).
  pgx_env() { # HOST PORT SOCKETDIR PASSWORD-PART
    echo "PGX_TEST_DATABASE=host=$1 port=$2 user=pgx_md5 $4dbname=pgx_test"
    echo "PGX_TEST_UNIX_SOCKET_CONN_STRING=host=$3 port=$2 dbname=pgx_test"
    echo "PGX_TEST_TCP_CONN_STRING=host=$1 port=$2 user=pgx_md5 $4dbname=pgx_test"
    echo "PGX_TEST_SCRAM_PASSWORD_CONN_STRING=host=$1 port=$2 user=pgx_scram $4dbname=pgx_test channel_binding=disable"
    echo "PGX_TEST_MD5_PASSWORD_CONN_STRING=host=$1 port=$2 user=pgx_md5 $4dbname=pgx_test"
    echo "PGX_TEST_PLAIN_PASSWORD_CONN_STRING=host=$1 port=$2 user=pgx_pw $4dbname=pgx_test"
    echo "PGX_SSL_PASSWORD=certpw"
    echo "PGX_TEST_TLS_CLIENT_CONN_STRING=host=localhost port=$2 user=pgx_sslcert sslmode=verify-full sslrootcert=$c/ca.pem sslcert=$c/pgx_sslcert.crt sslkey=$c/pgx_sslcert.key dbname=pgx_test"
  }
  mapfile -t e < <(pgx_env 127.0.0.1 "$port_pgx" "$work/pgx/sock" "password=secret ")
  list pgx "${e[@]}"
  run pgx direct "${e[@]}"
  mapfile -t e < <(pgx_env 127.0.0.1 "$tport_pgx" "$work/tsock" "")
  run pgx tunnel "${e[@]}"
fi
if want pq; then
  # README "Running tests". CI runs it twice, PQTEST_BINARY_PARAMETERS=no
  # and yes: this is the first; PQTEST_BINARY_PARAMETERS=yes make compat
  # runs the second.
  e=(PGHOST=127.0.0.1 PGPORT="$port_pq" PGUSER=pqgo PGPASSWORD="$pqpw" PGDATABASE=pqgo PGSSLMODE=disable)
  list pq "${e[@]}"
  run pq direct "${e[@]}"
  run pq tunnel PGHOST=127.0.0.1 PGPORT="$tport_pq" PGUSER=pqgo PGDATABASE=pqgo PGSSLMODE=disable
fi

# --- what bastion refused or held, for diagnosis
cp "$work/dev.log" "$OUT/bastion.log"
for dec in deny approve; do "$BIN" audit search --data-dir "$bd" --decision "$dec" --json >"$OUT/bastion-$dec.jsonl" 2>/dev/null || true; done

# --- the comparison
status=0
echo
for suite in pgx pq; do
  want "$suite" || continue
  [ "$suite" = pgx ] && ver=${PGX#*@} || ver=${PQ#*@}
  read -ra df <"$work/$suite.direct.files"
  read -ra tf <"$work/$suite.tunnel.files"
  "$work/compatreport" -suite "$suite" -list "$OUT/$suite.list.json" "${df[@]}" "${tf[@]}" \
    -wall-direct "${wall[$suite.direct]}" -wall-tunnel "${wall[$suite.tunnel]}" -expected "$EXPECTED" \
    -details "$OUT/tunnel-only-failures.txt" -version "$ver${SHORT:+, short form}" -reruns $(( (${#df[@]} + ${#tf[@]}) / 2 - 2 )) || status=$?
  echo
done
for f in "$OUT"/bastion-deny.jsonl "$OUT"/bastion-approve.jsonl; do
  n=$(grep -c . "$f" 2>/dev/null || true)
  [ "${n:-0}" -eq 0 ] || echo "bastion: ${n} $(basename "$f" .jsonl | cut -d- -f2) audit events ($f)"
done
echo "raw outputs: $OUT"
exit "$status"
