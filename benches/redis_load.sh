#!/usr/bin/env bash
# The Redis store against the in-memory one, in the same run, the way the README's Redis figures
# were measured: broker, redis-server and load generator share the machine (no pinning), and
# memory and Redis rounds alternate so that whatever else the machine does weighs on both.
# Loopback only; each round stops after N requests. Each run starts from an empty store, as the
# memory store does (a new broker process): Redis is flushed first, so a later round does not
# pay for the keys of the earlier ones (its main dictionary growing past a power of two and
# rehashing mid-run).
#
#   bash benches/redis_load.sh [ROUNDS=2] [TOKENS=20000] [CONCURRENCY=64]
#
# FERRY_BIN=path measures another build of the broker (e.g. before and after a change).
#
# Prints one line per (round, store, mode) and, at the end, the two ratios the Redis issue
# targets: Redis miss / memory miss and Redis hit / Redis miss (medians over the rounds).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-2} N=${2:-20000} C=${3:-64}

. benches/redis_common.sh

ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
run() { # store mode -> "exchanges/s broker-us/exchange redis-us/exchange loadgen-us/exchange"
  local store=$1 mode=$2 args=()
  if [ "$store" = redis ]; then
    args=(--redis "redis://127.0.0.1:$RPORT")
    redis-cli -p "$RPORT" FLUSHALL >/dev/null
  fi
  rm -rf "$work/data"
  FERRY_LOG__LEVEL=warn FERRY_AUDIT__FSYNC=never \
    "$FERRY_BIN" serve --data-dir "$work/data" --listen "127.0.0.1:$PORT" "${args[@]}" \
    >"$work/serve.log" 2>&1 &
  pid=$!
  wait_ready "$PORT"
  local gen=(./target/release/examples/loadgen --broker "http://127.0.0.1:$PORT"
    --issuer-keys "$work/issuer-keys" --mode "$mode")
  warm_up "${gen[@]}"
  local b0 r0 b1 r1 t g
  b0=$(cpu "$pid") r0=$(cpu "$rpid")
  "${gen[@]}" --tokens "$N" --concurrency "$C" >"$work/gen.out" 2>/dev/null
  t=$(awk '/^throughput/ {print $2}' "$work/gen.out")
  g=$(awk '/^cpu/ {print $2}' "$work/gen.out")
  # Only granted exchanges count: a run that was refused measured the wrong path.
  require_granted "$N" "$(cat "$work/gen.out")"
  b1=$(cpu "$pid") r1=$(cpu "$rpid")
  awk -v t="$t" -v b="$((b1 - b0))" -v r="$((r1 - r0))" -v k="$ticks" -v n="$N" -v g="$g" \
    'BEGIN { printf "%s %.1f %.1f %s\n", t, b / k / n * 1e6, r / k / n * 1e6, g }'
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
}

results=$work/results
for r in $(seq "$ROUNDS"); do
  for store in memory redis; do
    for mode in miss hit; do
      read -r t b rs g < <(run "$store" "$mode")
      printf '%-8s %-7s %-5s %8s exchanges/s  broker %6s  redis-server %5s  loadgen %5s us/exchange\n' \
        "round $r" "$store" "$mode" "$t" "$b" "$rs" "$g"
      echo "$store $mode $t $(awk -v b="$b" -v r="$rs" 'BEGIN {print b + r}')" >>"$results"
    done
  done
done
# median STORE MODE [COLUMN]: column 3 is exchanges/s, 4 the CPU per exchange of broker and
# redis-server.
median() { grep "^$1 $2 " "$results" | awk -v c="${3:-3}" '{print $c}' | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
mm=$(median memory miss) rm_=$(median redis miss) rh=$(median redis hit)
cm=$(median memory miss 4) crm=$(median redis miss 4) crh=$(median redis hit 4)
awk -v mm="$mm" -v rm="$rm_" -v rh="$rh" -v cm="$cm" -v crm="$crm" -v crh="$crh" 'BEGIN {
  printf "redis miss / memory miss  %.0f%% (target >= 85%%)\n", 100 * rm / mm
  printf "redis hit / redis miss    %.2fx (target >= 1.5x)\n", rh / rm
  # The same ratios from the CPU per exchange of broker and redis-server: what Ferry costs,
  # unmoved by idle time and by the generator, which spends more per exchange on a faster broker.
  printf "by broker + redis-server CPU per exchange: %.0f%% and %.2fx (memory miss %.1f, redis miss %.1f, redis hit %.1f us)\n", 100 * cm / crm, crm / crh, cm, crm, crh }'
