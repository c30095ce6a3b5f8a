#!/usr/bin/env bash
# Exchange throughput on Redis with many live revocations by credential id: they are looked up
# by id, never listed, so N revoked credentials should cost an exchange nothing. Runs cache
# hits with no revocation, then with N written straight into the store's layout (as `ferry admin
# revoke --credential` would leave them, without minting N admin calls).
#
#   bash benches/redis_revocations.sh [N=5000] [TOKENS=20000] [CONCURRENCY=64]
set -euo pipefail
cd "$(dirname "$0")/.."
REVOKED=${1:-5000} N=${2:-20000} C=${3:-64}

. benches/redis_common.sh

revoke_many() { # N -> N credential revocations live for an hour, in RESP for redis-cli --pipe
  python3 - "$1" <<'PY'
import json, sys, time
n, now = int(sys.argv[1]), int(time.time())
def cmd(*args):
    out = [f"*{len(args)}\r\n"]
    for a in map(str, args):
        out.append(f"${len(a.encode())}\r\n{a}\r\n")
    return "".join(out)
for i in range(n):
    field = f"credential:{i:032x}"
    entry = {"kind": "credential", "value": f"{i:032x}", "created_at": now,
             "block_until": now, "keep_until": now + 3600, "by": "bench"}
    sys.stdout.write(cmd("HSET", "ferry:{revocations}", field, json.dumps(entry)))
    sys.stdout.write(cmd("ZADD", "ferry:{revocations}:expiry", now + 3600, field))
PY
}

run() { # -> exchanges/s of cache hits
  rm -rf "$work/data"
  FERRY_LOG__LEVEL=warn FERRY_AUDIT__FSYNC=never \
    "$FERRY_BIN" serve --data-dir "$work/data" --listen "127.0.0.1:$PORT" \
    --redis "redis://127.0.0.1:$RPORT" >"$work/serve.log" 2>&1 &
  pid=$!
  wait_ready "$PORT"
  local gen=(./target/release/examples/loadgen --broker "http://127.0.0.1:$PORT"
    --issuer-keys "$work/issuer-keys" --mode hit)
  warm_up "${gen[@]}"
  "${gen[@]}" --tokens "$N" --concurrency "$C" >"$work/gen.out" 2>/dev/null
  require_granted "$N" "$(cat "$work/gen.out")"
  awk '/^throughput/ {print $2}' "$work/gen.out"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
}

printf 'cache hits, no revocation          %8s exchanges/s\n' "$(run)"
revoke_many "$REVOKED" | redis-cli -p "$RPORT" --pipe >/dev/null
live=$(redis-cli -p "$RPORT" HLEN 'ferry:{revocations}')
printf 'cache hits, %6s credentials revoked %6s exchanges/s\n' "$live" "$(run)"
