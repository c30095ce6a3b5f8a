#!/usr/bin/env bash
# Instructions redis-server executes per exchange, under callgrind: a count that does not move
# with what else the machine is doing (unlike the CPU times of benches/redis_load.sh). Replays
# the commands of N exchanges, one pipelined stream per shape, against a throwaway server:
#
#   lua miss         the first-round-trip script (GUARDED, from the source) + a Lua commit
#                    (the commit script before it became plain commands)
#   multi miss       the same commands as plain miss, each round trip a MULTI/EXEC transaction
#                    (with an HSETNX of the epoch), as an earlier build sent them
#   plain miss       what a miss sends: SET NX, GET, HGETALL, HMGET pipelined; XADD, SET
#   lua hit          GUARDED reading the cached record, checking its ids, appending the hit
#                    (store.redis.hits_in_one_round_trip)
#   multi hit        as plain hit, in transactions
#   plain hit        what a hit sends by default: the plain first round trip, then XADD
#
# Records and events have the sizes of real ones (~1.2 KB and ~0.9 KB).
#   bash benches/redis_instructions.sh [N=3000] [PORT=6394]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-3000} PORT=${2:-6394}
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
work=$(mktemp -d)
trap 'redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

python3 - "$N" "$work" <<'EOF'
import hashlib, re, sys
n, work = int(sys.argv[1]), sys.argv[2]
src = open('src/store/redis/lifecycle.rs').read()
guarded = re.search(r'GUARDED_LUA: &str = r#"(.*?)"#;', src, re.S).group(1)
old_commit = """
local i = 1
if ARGV[1] ~= '' then
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'event', ARGV[2])
  i = 2
end
if KEYS[i] then redis.call('SET', KEYS[i], ARGV[3], 'PX', ARGV[4]) end
return 1
"""
sha = lambda s: hashlib.sha1(s.encode()).hexdigest()
event = '{"time":"2026-12-01T14:55:57.785Z","exchange_id":"01a2321a-f759-720b-9fa2-b69a79453704","x":"' + 'a' * 780 + '"}'
head = event[:-1]
record = ('{"credential_id":"01a2321af759720b9fa2b69b3fb90dd9","issued_at":1796136957,'
          '"expires_at":2000000000,"revocation_epoch":"e1","token":"' + 'e' * 1000 +
          '","exchange_id":"01a2321a-f759-720b-9fa2-b69a79453704"}')
tag = lambda i: '%012x' % (i * 2654435761 % (1 << 48))
jti = lambda i: 'b:{%s}:jti:%s' % (tag(i), hashlib.sha256(b'j%d' % i).hexdigest())
cred = lambda i: 'b:{%s}:cred:%s' % (tag(i), hashlib.sha256(b'c%d' % i).hexdigest())
hit_key = 'b:{hit}:cred:g'
def writer(name):
    f = open('%s/%s.resp' % (work, name), 'wb')
    def cmd(*a):
        a = [str(x).encode() for x in a]
        f.write(b'*%d\r\n' % len(a) + b''.join(b'$%d\r\n%s\r\n' % (len(x), x) for x in a))
    return f, cmd
f, cmd = writer('setup')
cmd('SCRIPT', 'LOAD', guarded); cmd('SCRIPT', 'LOAD', old_commit)
cmd('HSET', 'b:{revocations}', '~epoch', 'e1')
cmd('SET', hit_key, record)
f.close()
def multi_first(i, key):
    cmd('MULTI'); cmd('HGETALL', 'b:{killswitches}')
    cmd('HSETNX', 'b:{revocations}', '~epoch', 'e1'); cmd('HMGET', 'b:{revocations}', '~epoch')
    cmd('SET', jti(i), 1, 'NX', 'PX', 3720000); cmd('GET', key); cmd('EXEC')
def plain_first(i, key):
    cmd('SET', jti(i), 1, 'NX', 'PX', 3720000); cmd('GET', key)
    cmd('HGETALL', 'b:{killswitches}'); cmd('HMGET', 'b:{revocations}', '~epoch')
xadd = lambda: cmd('XADD', 'b:audit', 'MAXLEN', '~', 100000, '*', 'event', event)
shapes = {
    'lua miss': lambda i: (
        cmd('EVALSHA', sha(guarded), 4, 'b:{revocations}', 'b:{killswitches}', jti(i), cred(i),
            0, '', '', 1, 3720000, 1),
        cmd('EVALSHA', sha(old_commit), 2, 'b:audit', cred(i), 100000, event, record, 900000)),
    'multi miss': lambda i: (
        multi_first(i, cred(i)),
        cmd('MULTI'), xadd(), cmd('SET', cred(i), record, 'PX', 900000), cmd('EXEC')),
    'plain miss': lambda i: (
        plain_first(i, cred(i)), xadd(), cmd('SET', cred(i), record, 'PX', 900000)),
    'lua hit': lambda i: cmd(
        'EVALSHA', sha(guarded), 5, 'b:{revocations}', 'b:{killswitches}', jti(i), hit_key,
        'b:audit', 0, '', '', 1, 3720000, 1, head, 2000000000 - 600, 900, 100000),
    'multi hit': lambda i: (multi_first(i, hit_key), cmd('MULTI'), xadd(), cmd('EXEC')),
    'plain hit': lambda i: (plain_first(i, hit_key), xadd()),
}
for name, shape in shapes.items():
    f, cmd = writer(name.replace(' ', '_'))
    for i in range(n):
        shape(i)
    f.close()
EOF

count() { # shape -> instructions per exchange
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/cg.out" \
    redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no \
    >/dev/null 2>"$work/cg.log" &
  local vg=$!
  for _ in $(seq 100); do redis-cli -p "$PORT" PING >/dev/null 2>&1 && break; sleep 0.2; done
  redis-cli -p "$PORT" --pipe <"$work/setup.resp" >/dev/null
  callgrind_control -i on "$vg" >/dev/null 2>&1
  redis-cli -p "$PORT" --pipe <"$work/$1.resp" | grep -q "errors: 0" \
    || { echo "$1: the replay had errors" >&2; exit 1; }
  callgrind_control -i off "$vg" >/dev/null 2>&1
  redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
  wait "$vg" 2>/dev/null || true
  awk -v n="$N" '/Collected/ { gsub(",", "", $4); printf "%d", $4 / n }' "$work/cg.log"
}
printf '%-12s %s\n' shape 'instructions per exchange (redis-server)'
for shape in lua_miss multi_miss plain_miss lua_hit multi_hit plain_hit; do
  printf '%-12s %s\n' "${shape/_/ }" "$(count "$shape")"
done
