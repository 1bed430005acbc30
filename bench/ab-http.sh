#!/usr/bin/env bash
# A/B of two builds under the same HTTP load: is this change faster than REV?
# On this VM whole-run throughput drifts ±30 % over minutes, so comparing two
# bench:http runs taken apart says little; this alternates a baseline build and
# the working tree round by round, each against a fresh server and data dir,
# and prints the ratio of every round and their median.
#
#   npm run bench:ab -- REV [MODE] [FSYNC] [ROUNDS] [CONNECTIONS]
#   e.g. npm run bench:ab -- HEAD~1 add always 5
#
# MODE: add | query | mix (bench/wrk/poolq.lua; 10-value appends, 1000 pools),
# FSYNC: always | never, ROUNDS (default 4), CONNECTIONS (default 32).
# Needs wrk (apt-get install wrk). Servers run on CPU 0 and wrk on CPU 1 when
# taskset exists, as in bench:http. Each round: prefill 1 s, warm-up 1 s, 5 s measured.
set -euo pipefail

REV=${1:?usage: bench/ab-http.sh REV [MODE] [FSYNC] [ROUNDS] [CONNECTIONS]}
MODE=${2:-add}
FSYNC=${3:-never}
ROUNDS=${4:-4}
CONNS=${5:-32}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
command -v wrk >/dev/null || { echo "bench:ab needs wrk (apt-get install wrk)" >&2; exit 2; }
PIN_SERVER=() PIN_LOAD=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then PIN_SERVER=(taskset -c 0) PIN_LOAD=(taskset -c 1); fi

WORK=$(mktemp -d /tmp/poolq-ab-XXXXXX)
SERVER_PID=
cleanup() {
  [ -n "$SERVER_PID" ] && kill -9 "$SERVER_PID" 2>/dev/null || true
  git -C "$ROOT" worktree remove --force "$WORK/base" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "building $REV ($(git -C "$ROOT" rev-parse --short "$REV")) and the working tree …"
git -C "$ROOT" worktree add --detach -q "$WORK/base" "$REV"
ln -s "$ROOT/node_modules" "$WORK/base/node_modules"
(cd "$WORK/base" && npm run build >/dev/null 2>&1)
(cd "$ROOT" && npm run build >/dev/null 2>&1)

PORT=18411
# utime + stime of a process and all its threads, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# One round against the build in $1: prints requests/s.
measure() {
  local dir=$1 data="$WORK/data"
  rm -rf "$data"
  GLIBC_TUNABLES=glibc.malloc.hugetlb=1 MALLOC_MMAP_THRESHOLD_=131072 "${PIN_SERVER[@]}" \
    node "$dir/dist/src/main.js" --port "$PORT" --data-dir "$data" --fsync "$FSYNC" --log-level warn >/dev/null 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
  local wrk=("${PIN_LOAD[@]}" wrk -t1 -s "$ROOT/bench/wrk/poolq.lua" "http://127.0.0.1:$PORT")
  "${wrk[@]}" -c8 -d1s -- add 1000 10 >/dev/null
  "${wrk[@]}" -c"$CONNS" -d1s -- "$MODE" 1000 10 >/dev/null
  local ticks0 ticks1 json
  ticks0=$(cpu_ticks "$SERVER_PID")
  json=$("${wrk[@]}" -c"$CONNS" -d5s -- "$MODE" 1000 10 | sed -n 's/^WRK_JSON //p')
  ticks1=$(cpu_ticks "$SERVER_PID")
  # "requests/s server-CPU-µs-per-request"
  node -e 'const r=JSON.parse(process.argv[1]);console.log(r.rps.toFixed(0), ((process.argv[2]/process.argv[3])*1e6/r.requests).toFixed(2))' "$json" "$((ticks1 - ticks0))" "$(getconf CLK_TCK)"
  kill -9 "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
}

echo "$MODE, --fsync $FSYNC, $CONNS connections, $ROUNDS rounds (req/s, and the server's CPU time per request:"
echo "user + system of all its threads over the measured 5 s, over the requests answered; steadier than req/s here)"
ratios=() cpu_ratios=()
for round in $(seq "$ROUNDS"); do
  read -r base base_cpu < <(measure "$WORK/base")
  read -r new new_cpu < <(measure "$ROOT")
  ratio=$(node -e "console.log(($new / $base).toFixed(3))")
  cpu_ratio=$(node -e "console.log(($base_cpu / $new_cpu).toFixed(3))")
  ratios+=("$ratio") cpu_ratios+=("$cpu_ratio")
  echo "  round $round: $REV $base/s ${base_cpu} µs   working tree $new/s ${new_cpu} µs   req/s ratio $ratio   CPU/request ratio (base/new) $cpu_ratio"
done
median() { printf '%s\n' "$@" | sort -n | node -e 'const a=require("fs").readFileSync(0,"utf8").trim().split("\n").map(Number);const m=a.length>>1;console.log(a.length%2?a[m]:((a[m-1]+a[m])/2).toFixed(3))'; }
echo "median req/s ratio (working tree / $REV): $(median "${ratios[@]}")"
echo "median CPU-per-request ratio ($REV / working tree; > 1: the working tree does less work per request): $(median "${cpu_ratios[@]}")"
