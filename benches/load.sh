#!/usr/bin/env bash
# Load test of POST /token over HTTP, the way the README's performance figures were measured:
# the broker pinned to core 0 with one worker, the load generator pinned to core 1, and the
# broker's own CPU time per exchange read from /proc. Loopback only; stops after N requests.
#
#   bash benches/load.sh [FSYNC=never|always] [MODE=miss|hit] [TOKENS=20000] [CONCURRENCY=64]
set -euo pipefail
cd "$(dirname "$0")/.."
FSYNC=${1:-never} MODE=${2:-miss} N=${3:-20000} C=${4:-64}
PORT=${FERRY_LOAD_PORT:-8080}

cargo build --quiet --release --bin ferry --example loadgen
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

FERRY_LOG__LEVEL=warn FERRY_SERVER__WORKERS=1 FERRY_AUDIT__FSYNC=$FSYNC \
  taskset -c 0 ./target/release/ferry serve --data-dir "$work/data" --listen "127.0.0.1:$PORT" \
  >"$work/serve.log" 2>&1 &
pid=$!
sleep 1
gen() { taskset -c 1 ./target/release/examples/loadgen --broker "http://127.0.0.1:$PORT" \
  --issuer-keys "$work/issuer-keys" --mode "$MODE" "$@"; }
gen --tokens 500 --concurrency 16 >/dev/null   # warm issuer keys and connections
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
before=$(cpu)
gen --tokens "$N" --concurrency "$C"
after=$(cpu)
ticks=$(getconf CLK_TCK)
awk -v b="$before" -v a="$after" -v t="$ticks" -v n="$N" \
  'BEGIN { printf "server CPU     %.2f s for %d exchanges = %.1f us/exchange\n", (a-b)/t, n, (a-b)/t/n*1e6 }'
./target/release/ferry audit verify "$work/data/audit.jsonl"
