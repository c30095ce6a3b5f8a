#!/usr/bin/env bash
# Instructions the broker executes per exchange, under callgrind: a count that does not move with
# what else the machine is doing (unlike the CPU times of benches/redis_load.sh), so a change of a
# few per cent on the hot path shows where an A/B run of throughput drowns in noise. Starts the
# broker under `valgrind --tool=callgrind`, warms it up, zeroes the counters, drives N exchanges
# through the load generator, dumps, and divides. User-space instructions only: the kernel's share
# (sockets, the audit file) is not counted. Under valgrind aws-lc takes its AVX code paths, not
# SHA-NI, so hashing weighs more here than on the real CPU.
#
#   bash benches/broker_instructions.sh [MODE=hit] [N=2000] [STORE=memory|redis]
#
# FERRY_BIN=path counts another build of the broker. Repeated runs of one build agree to about
# 0.05 %.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-hit} N=${2:-2000} STORE=${3:-memory}
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }

. benches/redis_common.sh

args=()
[ "$STORE" = redis ] && args=(--redis "redis://127.0.0.1:$RPORT")
rm -rf "$work/data"
# Under valgrind the broker runs some 50 times slower: the longest command timeout it accepts.
FERRY_LOG__LEVEL=warn FERRY_AUDIT__FSYNC=never FERRY_STORE__REDIS__COMMAND_TIMEOUT=5s \
  valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out" \
  "$FERRY_BIN" serve --data-dir "$work/data" --listen "127.0.0.1:$PORT" "${args[@]}" \
  >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.2; done
gen=(./target/release/examples/loadgen --broker "http://127.0.0.1:$PORT"
  --issuer-keys "$work/issuer-keys" --mode "$MODE")
warm_up "${gen[@]}"
callgrind_control -z "$pid" >/dev/null
"${gen[@]}" --tokens "$N" --concurrency 16 >"$work/gen.out" 2>/dev/null
require_granted "$N" "$(cat "$work/gen.out")"
callgrind_control -d "$pid" >/dev/null
sleep 1
total=0
for f in "$work"/callgrind.out*; do
  n=$(grep -m1 -h '^summary:' "$f" | awk '{print $2}' || true)
  [ -n "$n" ] && total=$((total + n))
done
echo "$MODE $STORE: $((total / N)) broker instructions per exchange (N=$N)"
