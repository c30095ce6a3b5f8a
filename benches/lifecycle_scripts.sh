#!/usr/bin/env bash
# Redis-side cost of an exchange's first round trip with and without the lifecycle checks:
# the old claim+lookup script against GUARDED (kill switches, revocations by id, GCRA step,
# claim, lookup), as
# `usec_per_call` of EVALSHA in INFO commandstats under redis-benchmark (random jti keys).
# Usage: bash benches/lifecycle_scripts.sh [PORT]   (starts and stops its own redis-server)
set -euo pipefail
PORT=${1:-6479}
cd "$(dirname "$0")/.."
redis-server --port "$PORT" --save "" --appendonly no --bind 127.0.0.1 >/dev/null 2>&1 &
SERVER=$!
trap 'kill $SERVER; wait $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 50); do redis-cli -p "$PORT" PING >/dev/null 2>&1 && break; sleep 0.1; done
lua() { python3 -c "import re,sys; print(re.search(r'$1: &str = r(#?)\"(.*?)\"\1;', open('$2').read(), re.S).group(2))"; }
R="redis-cli -p $PORT"
# Separate assignments, so that a script the pattern no longer finds stops the bench (set -e).
OLD_LUA=$(lua CLAIM_AND_LOOKUP src/store/redis/scripts.rs)
NEW_LUA=$(lua GUARDED_LUA src/store/redis/lifecycle.rs)
OLD=$($R SCRIPT LOAD "$OLD_LUA")
NEW=$($R SCRIPT LOAD "$NEW_LUA")
$R SET 'b{s}:cred:g' "$(head -c 900 /dev/zero | tr '\0' x)" >/dev/null
run() {
  $R CONFIG RESETSTAT >/dev/null
  redis-benchmark -p "$PORT" -n 50000 -c 8 -r 100000000 -q "$@" >/dev/null
  $R INFO commandstats | grep cmdstat_evalsha | sed 's/.*usec_per_call=\([0-9.]*\).*/\1/'
}
JTI='b{s}:jti:__rand_int__' CRED='b{s}:cred:g' GCRA='b{s}:gcra:__rand_int__'
REVS='b{revocations}' KILL='b{killswitches}'
# GUARDED's ARGV: revocation ids (count, ids), rate limit, period, claims (n, ttls), lookup.
echo "claim+lookup (before)             $(run EVALSHA "$OLD" 2 "$JTI" "$CRED" 60000 1) us"
echo "guarded, no revocations           $(run EVALSHA "$NEW" 4 "$REVS" "$KILL" "$JTI" "$CRED" 0 '' '' 1 60000 1) us"
echo "guarded, rate limit               $(run EVALSHA "$NEW" 5 "$REVS" "$KILL" "$GCRA" "$JTI" "$CRED" 0 1000 60000 1 60000 1) us"
for i in $(seq 1 10); do
  $R HSET "$KILL" "subject:repo:x$i/*" "{\"kind\":\"subject\",\"value\":\"repo:x$i/*\",\"created_at\":1,\"block_until\":9999999999,\"keep_until\":9999999999,\"by\":\"ops\"}" >/dev/null
done
echo "guarded, 10 kill switches         $(run EVALSHA "$NEW" 4 "$REVS" "$KILL" "$JTI" "$CRED" 0 '' '' 1 60000 1) us"
echo "guarded, 10 switches + rate       $(run EVALSHA "$NEW" 5 "$REVS" "$KILL" "$GCRA" "$JTI" "$CRED" 0 1000 60000 1 60000 1) us"
# 10,000 credentials revoked by id: a delegation's next hop looks up its subject's two ids.
python3 -c "
import sys
for i in range(10000):
    v = '{\"kind\":\"credential\",\"value\":\"c%d\",\"created_at\":1,\"block_until\":1,\"keep_until\":9999999999}' % i
    sys.stdout.write('HSET $REVS credential:c%d %s\n' % (i, v.replace(' ', '')))
" | $R >/dev/null
echo "guarded, 10k revoked, 2 ids       $(run EVALSHA "$NEW" 4 "$REVS" "$KILL" "$JTI" "$CRED" 2 credential:c7 exchange:e7 '' '' 1 60000 1) us"
