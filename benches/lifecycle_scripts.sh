#!/usr/bin/env bash
# Redis-side cost of an exchange's first round trip with and without the lifecycle checks:
# the old claim+lookup script against GUARDED (revocation list, GCRA step, claim, lookup), as
# `usec_per_call` of EVALSHA in INFO commandstats under redis-benchmark (random jti keys).
# Usage: bash benches/lifecycle_scripts.sh [PORT]   (starts and stops its own redis-server)
set -euo pipefail
PORT=${1:-6479}
cd "$(dirname "$0")/.."
redis-server --port "$PORT" --save "" --appendonly no --bind 127.0.0.1 >/dev/null 2>&1 &
SERVER=$!
trap 'kill $SERVER' EXIT
sleep 0.5
lua() { python3 -c "import re,sys; print(re.search(r'$1: &str = r\"(.*?)\";', open('$2').read(), re.S).group(1))"; }
R="redis-cli -p $PORT"
OLD=$($R SCRIPT LOAD "$(lua CLAIM_AND_LOOKUP src/store/redis/scripts.rs)")
NEW=$($R SCRIPT LOAD "$(lua GUARDED_LUA src/store/redis/lifecycle.rs)")
$R SET 'b{s}:cred:g' "$(head -c 900 /dev/zero | tr '\0' x)" >/dev/null
run() {
  $R CONFIG RESETSTAT >/dev/null
  redis-benchmark -p "$PORT" -n 50000 -c 8 -r 100000000 -q "$@" >/dev/null
  $R INFO commandstats | grep cmdstat_evalsha | sed 's/.*usec_per_call=\([0-9.]*\).*/\1/'
}
JTI='b{s}:jti:__rand_int__' CRED='b{s}:cred:g' GCRA='b{s}:gcra:__rand_int__' REVS='b{revocations}'
echo "claim+lookup (before)           $(run EVALSHA "$OLD" 2 "$JTI" "$CRED" 60000 1) us"
echo "guarded, no revocations         $(run EVALSHA "$NEW" 3 "$REVS" "$JTI" "$CRED" 1 '' '' 60000 1) us"
echo "guarded, rate limit             $(run EVALSHA "$NEW" 4 "$REVS" "$GCRA" "$JTI" "$CRED" 1 1000 60000 60000 1) us"
for i in $(seq 1 10); do
  $R HSET "$REVS" "subject:repo:x$i/*" "{\"kind\":\"subject\",\"value\":\"repo:x$i/*\",\"created_at\":1,\"block_until\":9999999999,\"keep_until\":9999999999,\"by\":\"ops\"}" >/dev/null
done
echo "guarded, 10 live revocations    $(run EVALSHA "$NEW" 3 "$REVS" "$JTI" "$CRED" 1 '' '' 60000 1) us"
echo "guarded, 10 revocations + rate  $(run EVALSHA "$NEW" 4 "$REVS" "$GCRA" "$JTI" "$CRED" 1 1000 60000 60000 1) us"
