#!/usr/bin/env bash
# End-to-end figures, side by side with the reference in the same run:
# bastion vs OpenSSH's sshd on this machine (connection + command round trip,
# exec output throughput, PTY output throughput). Prints ratios, and the
# CPU each server used for the same work (from its cgroup): throughput on a
# 2-core machine shared by client, server and database moves with load, the
# CPU a server spends per run or per transaction much less.
# Usage: scripts/bench.sh  (after `make build`); ROUNDS, SIZE_MB, TP_RUNS,
# PGBENCH_TIME and PG_RUNS tune it; PARTS picks a subset of "ssh pg"
# (default both), PG_LINES a subset of "select mix extended one" (default
# all).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-30}
SIZE_MB=${SIZE_MB:-256}
BIN=${BIN:-bin/bastion}
PARTS=${PARTS:-ssh pg}
want() { [[ " $PARTS " == *" $1 "* ]]; }
work=$(mktemp -d /tmp/bastion-bench.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
[ -z "${BENCH_DEBUG:-}" ] || trap "cat \"$work/sshd.log\" >&2; cleanup" EXIT

# Each server runs in its own cgroup, so that its CPU time counts every
# process it starts (sshd's privilege-separated children are reaped by
# nobody who would add them to sshd's own times). cgroup v2 reports
# cpu.stat usage_usec with or without the cpu controller; v1 needs cpuacct.
cgroot=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts)
cgfile=cpu.stat
if [ -z "$cgroot" ] && [ -d /sys/fs/cgroup/cpuacct ]; then cgroot=/sys/fs/cgroup/cpuacct; cgfile=cpuacct.usage; fi
cgs=()
# cg_new NAME: a cgroup for one server; prints its directory, or nothing.
cg_new() { local d="$cgroot/bastion-bench-$$-$1"; [ -n "$cgroot" ] && mkdir "$d" 2>/dev/null && echo "$d"; }
# cg_enter DIR: moves the calling (sub)shell into DIR, if there is one.
# A failure leaves the figure at 0 and the benchmark running.
cg_enter() { [ -z "$1" ] || echo "$BASHPID" 2>/dev/null >"$1/cgroup.procs" || echo "bench: cannot enter $1; its CPU figure will read 0" >&2; }
# cg_cpu DIR: CPU seconds used in it so far; "nan" without a cgroup.
cg_cpu() {
  if [ -z "$1" ]; then echo nan; return; fi
  if [ "$cgfile" = cpu.stat ]; then awk '$1 == "usage_usec" {print $2/1e6}' "$1/cpu.stat"; else awk '{print $1/1e9}' "$1/cpuacct.usage"; fi
}

# Figures are comparable only on the same kind of machine: say which.
echo "machine: $(nproc) cores, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), Linux $(uname -r), $(date -u +%F)"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Both servers run commands as one throwaway account with an empty home,
# so neither pays for the other's shell start-up files (Debian's bash reads
# ~/.bashrc when started by sshd).
user=bastionbench$$
useradd -r -M -p "*" -d "$work/home" -s /bin/bash "$user"  # "*": no password, not locked (sshd without PAM refuses locked accounts)
mkdir -p "$work/home" && chown "$user" "$work/home"
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; for d in "${cgs[@]}"; do xargs -r kill 2>/dev/null <"$d/cgroup.procs"; sleep 0.1; rmdir "$d" 2>/dev/null || true; done; userdel "$user" 2>/dev/null || true; rm -rf "$work"; }

# --- PostgreSQL on loopback with password auth (for the tunnel figures)
if want pg; then
  pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  pgport=$(free_port)
  mkdir -p "$work/pg" && chown postgres "$work/pg"
  pgpass=$(head -c 12 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
  echo "$pgpass" > "$work/pgpass"; chown postgres "$work/pgpass"
  runuser -u postgres -- "$pgbin/initdb" -D "$work/pg/data" -U postgres --auth=scram-sha-256 --pwfile="$work/pgpass" >"$work/initdb.log" 2>&1
  runuser -u postgres -- "$pgbin/postgres" -D "$work/pg/data" -c listen_addresses=127.0.0.1 -c port="$pgport" \
    -c unix_socket_directories="$work/pg" -c max_connections=50 >"$work/pg.log" 2>&1 &
  pids+=($!)
  export PGPASSWORD=$pgpass
  for _ in $(seq 200); do "$pgbin/pg_isready" -q -h 127.0.0.1 -p "$pgport" && break; sleep 0.05; done
  "$pgbin/pgbench" -i -q -s 10 -h 127.0.0.1 -p "$pgport" -U postgres postgres >/dev/null 2>&1
fi

# --- bastion (dev mode: embedded issuer, demo agent logged in)
"$BIN" init --data-dir "$work/bastion" >/dev/null
printf 'exec:\n  default_user: %s\n  dir: %s\n' "$user" "$work/home" > "$work/bastion/bastion.yaml"
dbflag=()
want pg && dbflag=(--db-target "benchdb=postgres://postgres:$pgpass@127.0.0.1:$pgport/postgres")
cg_b=$(cg_new bastion); [ -z "$cg_b" ] || cgs+=("$cg_b")
( cg_enter "$cg_b"; exec "$BIN" dev --data-dir "$work/bastion" "${dbflag[@]}" --ssh-addr "127.0.0.1:$(free_port)" --http-addr "127.0.0.1:$(free_port)" >"$work/dev.log" 2>&1 ) &
pids+=($!)
for _ in $(seq 200); do [ -f "$work/bastion/client/ssh_config" ] && break; sleep 0.05; done
[ -f "$work/bastion/client/ssh_config" ] || { cat "$work/dev.log"; echo "bastion dev did not start" >&2; exit 1; }
B=(ssh -F "$work/bastion/client/ssh_config" -o BatchMode=yes bastion)

# --- OpenSSH sshd on loopback, same machine, key auth as the current user
port=$(free_port)
ssh-keygen -q -t ed25519 -N '' -f "$work/hostkey"
ssh-keygen -q -t ed25519 -N '' -f "$work/userkey"
cp "$work/userkey.pub" "$work/authorized_keys"; chmod 600 "$work/authorized_keys"; chown "$user" "$work/authorized_keys"  # sshd reads it as the user
mkdir -p /run/sshd
cg_o=$(cg_new sshd); [ -z "$cg_o" ] || cgs+=("$cg_o")
( cg_enter "$cg_o"; exec /usr/sbin/sshd -D -e -f /dev/null -p "$port" -o ListenAddress=127.0.0.1 -o HostKey="$work/hostkey" \
  -o AuthorizedKeysFile="$work/authorized_keys" -o PermitRootLogin=prohibit-password -o PasswordAuthentication=no \
  -o KbdInteractiveAuthentication=no -o UsePAM=no -o StrictModes=no -o PidFile=none -o PrintMotd=no -o PrintLastLog=no 2>"$work/sshd.log" ) &
pids+=($!)
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
O=(ssh -p "$port" -i "$work/userkey" -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR "$user@127.0.0.1")

now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

if want ssh; then
  # Round trip: connect, authenticate, run `true`, exit.
  rt() { local -n cmd=$1; for _ in $(seq "$ROUNDS"); do s=$(now); "${cmd[@]}" true; e=$(now); echo $(( (e-s)/1000 )); done | median; }
  "${B[@]}" true && "${O[@]}" true   # warm up
  b_rt=$(rt B); o_rt=$(rt O)

  # Throughput: cat a text file through each.
  big="$work/big.txt"
  python3 - "$big" "$SIZE_MB" <<'PY'
import sys, random
random.seed(1)
words = "the quick brown fox jumps over lazy dog error warn info GET POST /api/v1/users 200 404 latency_ms=12 user=alice request_id".split()
line_pool = [" ".join(random.choice(words) for _ in range(12)) + "\n" for _ in range(4096)]
blob = "".join(line_pool).encode()
n = int(sys.argv[2]) * 1024 * 1024
with open(sys.argv[1], "wb") as f:
    while n > 0:
        f.write(blob[:n]); n -= len(blob)
PY
  chmod 644 "$big"
  # One MB/s figure per run; bastion and sshd runs alternate (B O B O ...)
  # so that drift in the machine's load hits both, and each side's figure
  # is the median of its TP_RUNS runs.
  TP_RUNS=${TP_RUNS:-5}
  # tp1 B|O: one run's MB/s; the server's CPU seconds for it go to $work/cpu.b|o.
  tp1() {
    local -n cmd=$1; local cg=$cg_b; [ "$1" = O ] && cg=$cg_o
    local c0; c0=$(cg_cpu "$cg"); s=$(now); "${cmd[@]}" "cat $big" >/dev/null; e=$(now)
    sleep 0.2  # the session's last processes exit
    echo "$(cg_cpu "$cg") $c0" | awk '{print $1-$2}' >>"$work/cpu.${1,,}"
    echo $(( SIZE_MB * 1000000000 / (e-s) ))
  }
  tpt1() { local -n cmd=$1; s=$(now); "${cmd[@]:0:${#cmd[@]}-1}" -tt "${cmd[-1]}" "cat $big" >/dev/null 2>&1 </dev/null; e=$(now); echo $(( SIZE_MB * 1000000000 / (e-s) )); }
  : >"$work/tp.b"; : >"$work/tp.o"; : >"$work/pty.b"; : >"$work/pty.o"; : >"$work/cpu.b"; : >"$work/cpu.o"
  for _ in $(seq "$TP_RUNS"); do tp1 B >>"$work/tp.b"; tp1 O >>"$work/tp.o"; done
  b_tp=$(median <"$work/tp.b"); o_tp=$(median <"$work/tp.o")

  # PTY: the same cat with a terminal on both sides.
  for _ in $(seq "$TP_RUNS"); do tpt1 B >>"$work/pty.b"; tpt1 O >>"$work/pty.o"; done
  b_pty=$(median <"$work/pty.b"); o_pty=$(median <"$work/pty.o")
  # The spread of the pairwise ratios (run i of bastion / run i of sshd).
  spread() { paste "$work/$1.b" "$work/$1.o" | awk '{r=$1/$2; if (NR==1||r<lo) lo=r; if (NR==1||r>hi) hi=r} END {printf "runs %.2f-%.2f", lo, hi}'; }

  # Recording's cost: the same exec through an in-process bastion with and
  # without its recording (bastion has no such switch; the Go benchmark
  # swaps the recording out), median of 3 runs each.
  recb=$(go test ./bastion -run '^$' -bench 'ExecOutput' -benchtime 5x -count 3 2>&1)
  rec_on=$(awk '/recording=true/ {print int($(NF-1))}' <<<"$recb" | median)
  rec_off=$(awk '/recording=false/ {print int($(NF-1))}' <<<"$recb" | median)
  [ -n "$rec_on" ] && [ -n "$rec_off" ] || { echo "$recb" >&2; echo "recording benchmark failed" >&2; exit 1; }

  printf '\n%-44s %12s %12s %8s\n' "end to end (median)" bastion sshd ratio
  printf '%-44s %10sus %10sus %7.2fx  (target <= 1.2x)\n' "ssh HOST true (connect+auth+exec)" "$b_rt" "$o_rt" "$(awk "BEGIN{print $b_rt/$o_rt}")"
  printf '%-44s %8sMB/s %8sMB/s %7.2fx  (target >= 0.9x; %s)\n' "exec 'cat ${SIZE_MB}MB' (masking+recording on)" "$b_tp" "$o_tp" "$(awk "BEGIN{print $b_tp/$o_tp}")" "$(spread tp)"
  printf '%-44s %8sMB/s %8sMB/s %7.2fx  (target >= 0.9x; %s)\n' "pty 'cat ${SIZE_MB}MB' (ssh -tt)" "$b_pty" "$o_pty" "$(awk "BEGIN{print $b_pty/$o_pty}")" "$(spread pty)"
  b_cpu=$(median <"$work/cpu.b"); o_cpu=$(median <"$work/cpu.o")
  printf '%-44s %11.2fs %11.2fs %7.2fx  (server and cat, CPU seconds per run)\n' "  server CPU, exec 'cat ${SIZE_MB}MB'" "$b_cpu" "$o_cpu" "$(awk "BEGIN{print $b_cpu/$o_cpu}")"
  printf '\n%-44s %12s %12s %8s\n' "recording overhead (in-process bastion)" "recording" "none" ratio
  printf '%-44s %8sMB/s %8sMB/s %7.2fx\n' "exec 'cat 64MB' (masking on in both)" "$rec_on" "$rec_off" "$(awk "BEGIN{print $rec_on/$rec_off}")"
fi

if want pg; then
  # The exec runs leave gigabytes of recordings to write back; let that not
  # land on the first pgbench runs (it slows every fsync on the disk).
  sync
  # Postgres: pgbench direct, through an OpenSSH -L tunnel (via the sshd
  # above), and through bastion's -L tunnel (policy, masking, recording on).
  # Each figure is the median of PG_RUNS runs of PGT seconds; the three
  # paths take turns (bastion, OpenSSH, direct, bastion, ...) so that load
  # drift hits all of them, and the spread of the pairwise bastion/OpenSSH
  # ratios is shown.
  PGT=${PGBENCH_TIME:-20} # -T 20: the runs the tunnel's 0.9x target is stated for
  PG_RUNS=${PG_RUNS:-3}
  pgb() { "$pgbin/pgbench" -n -c 8 -j 2 -T "$PGT" "$@" -h 127.0.0.1 -U postgres postgres 2>/dev/null | awk '/^tps/ {print int($3)}'; }
  # pgc CGROUP FILE PGBENCH-ARGS...: pgb, and the server's CPU microseconds
  # per transaction (its CPU over tps * seconds) appended to FILE.
  pgc() {
    local cg=$1 f=$2; shift 2
    local c0 tps; c0=$(cg_cpu "$cg"); tps=$(pgb "$@")
    echo "$(cg_cpu "$cg") $c0 $tps" | awk -v t="$PGT" '{print int(($1-$2)*1e6/($3*t))}' >>"$f"
    echo "$tps"
  }
  lo=$(free_port); lb=$(free_port)
  "${O[@]:0:${#O[@]}-1}" -N -L "127.0.0.1:$lo:127.0.0.1:$pgport" "${O[-1]}" & pids+=($!)
  "${B[@]:0:${#B[@]}-1}" -N -L "127.0.0.1:$lb:benchdb:5432" "${B[-1]}" & pids+=($!)
  for p in $lo $lb; do for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && break; sleep 0.05; done; done
  # pgline NAME TARGET-NOTE PGBENCH-ARGS...: runs and prints one line.
  pgline() {
    local name=$1 note=$2; shift 2
    : >"$work/pg.b"; : >"$work/pg.o"; : >"$work/pg.d"; : >"$work/pgcpu.b"; : >"$work/pgcpu.o"
    for _ in $(seq "$PG_RUNS"); do
      pgc "$cg_b" "$work/pgcpu.b" "$@" -p "$lb" >>"$work/pg.b"
      pgc "$cg_o" "$work/pgcpu.o" "$@" -p "$lo" >>"$work/pg.o"
      pgb "$@" -p "$pgport" >>"$work/pg.d"
    done
    local b o d
    b=$(median <"$work/pg.b"); o=$(median <"$work/pg.o"); d=$(median <"$work/pg.d")
    printf '%-44s %12s %12s %7.2fx %12s  (%s%s)\n' "$name" "$b" "$o" "$(awk "BEGIN{print $b/$o}")" "$d" "$note" "$(paste "$work/pg.b" "$work/pg.o" | awk '{r=$1/$2; if (NR==1||r<lo) lo=r; if (NR==1||r>hi) hi=r} END {printf "runs %.2f-%.2f", lo, hi}')"
    b=$(median <"$work/pgcpu.b"); o=$(median <"$work/pgcpu.o")
    printf '%-44s %10sus %10sus %7.2fx  (server CPU per transaction)\n' "  server CPU" "$b" "$o" "$(awk "BEGIN{print $b/$o}")"
  }
  printf '\n%-44s %12s %12s %8s %12s\n' "pgbench -c 8 -j 2 -T $PGT, median of $PG_RUNS (tps)" "bastion -L" "openssh -L" ratio direct
  PG_LINES=${PG_LINES:-select mix extended one}
  line() { [[ " $PG_LINES " == *" $1 "* ]]; }
  if line select; then pgline "select-only (-S)" "target >= 0.9x; " -S; fi
  if line mix; then pgline "default mix (TPC-B like)" "target >= 0.9x; "; fi
  # The extended protocol, as drivers (pgx, JDBC, psycopg) speak it: the
  # same Parse text every time, new parameters in Bind.
  if line extended; then pgline "select-only, extended protocol (-M extended)" "" -S -M extended; fi
  # One client: each transaction is one round trip, so 1/tps is the
  # latency a tunnel adds to every statement (the mix holds row locks
  # across seven of them).
  if line one; then pgline "select-only, one client (-c 1 -j 1)" "1e6/tps = us per round trip; " -S -c 1 -j 1; fi
fi
