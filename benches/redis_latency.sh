#!/usr/bin/env bash
# Exchange latency with Redis "across a network": one request in flight, Redis reached through
# benches/delay_proxy.py (each chunk delayed DELAY seconds each way), so every Redis round trip
# shows in the latency. A miss costs two round trips, and so does a cache hit, unless
# FERRY_STORE__REDIS__HITS_IN_ONE_ROUND_TRIP=true (one).
#
#   bash benches/redis_latency.sh [DELAY=0.0005] [TOKENS=1500]
#
# FERRY_BIN=path measures another build of the broker. Needs python3 and port 8080 free (the
# example policies address the broker as http://127.0.0.1:8080).
set -euo pipefail
cd "$(dirname "$0")/.."
DELAY=${1:-0.0005} N=${2:-1500}
PORT=8080
. benches/redis_common.sh
PPORT=$((RPORT + 1))
python3 benches/delay_proxy.py "$DELAY" "$PPORT" "$RPORT" &
ppid=$!
FERRY_LOG__LEVEL=warn FERRY_AUDIT__FSYNC=never "$FERRY_BIN" serve --data-dir "$work/data" \
  --listen "127.0.0.1:$PORT" --redis "redis://127.0.0.1:$PPORT" >"$work/serve.log" 2>&1 &
pid=$!
wait_ready "$PORT"
gen=(./target/release/examples/loadgen --broker "http://127.0.0.1:$PORT" --issuer-keys "$work/keys")
warm_up "${gen[@]}"
for mode in miss hit; do
  out=$("${gen[@]}" --tokens "$N" --concurrency 1 --mode "$mode" 2>/dev/null)
  require_granted "$N" "$out"
  printf '%-5s %s\n' "$mode" "$(grep -E '^latency (p50|p99) ' <<<"$out" | tr -s ' ' | paste -sd ' ')"
done
