# Shared by the benches/redis_*.sh scripts (sourced, from the repository root). Builds the broker
# (unless FERRY_BIN names one) and the load generator, makes a scratch dir ($work), starts a
# throwaway redis-server on $RPORT ($rpid), and on exit stops it, the broker ($pid) and a proxy
# ($ppid) if the script started them.

# The example policies address the broker as http://127.0.0.1:8080.
: "${PORT:=${FERRY_LOAD_PORT:-8080}}"
: "${RPORT:=${FERRY_LOAD_REDIS_PORT:-6391}}"

if [ -z "${FERRY_BIN:-}" ]; then
  cargo build --quiet --release --bin ferry --example loadgen
  FERRY_BIN=./target/release/ferry
else
  cargo build --quiet --release --example loadgen
fi
work=$(mktemp -d)
redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
  >"$work/redis.log" 2>&1 &
rpid=$!
pid=
ppid=
trap 'kill $pid $ppid $rpid 2>/dev/null || true; rm -rf "$work"' EXIT
sleep 0.5

# wait_ready PORT: until the broker on PORT answers /readyz (5 s at most).
wait_ready() {
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$1/readyz" >/dev/null && return; sleep 0.1; done
}

# require_granted N OUTPUT: a run in which not every exchange was granted measured the wrong path.
require_granted() {
  grep -q "^ok (200) *$1\$" <<<"$2" || { echo "$2" >&2; echo "not every exchange was granted" >&2; exit 1; }
}

# warm_up LOADGEN...: until a short run is granted in full. The generator's loopback issuer only
# runs while a generator does, so the broker's first key fetch may have failed and be in its
# retry cooldown; this also loads the scripts and opens the connections.
warm_up() {
  for _ in $(seq 30); do
    "$@" --tokens 200 --concurrency 8 2>/dev/null | grep -q '^ok (200) *200$' && return
    sleep 1
  done
  echo "the broker never granted a warm-up run" >&2
  exit 1
}
