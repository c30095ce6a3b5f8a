//! The Lua scripts of `RedisStore`. A script is one command and one round trip, runs
//! atomically, and stops at the first failing call. Every key a script touches is passed in
//! `KEYS`, as Redis Cluster requires.

/// KEYS: [jti?, credential?]; ARGV: [claim ttl ms or "", "1" to look up].
/// Returns `{replayed (0|1), cached credential or false}`.
pub const CLAIM_AND_LOOKUP: &str = r"
local replayed, i = 0, 1
if ARGV[1] ~= '' then
  if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then replayed = 1 end
  i = 2
end
local cached = false
if ARGV[2] == '1' then cached = redis.call('GET', KEYS[i]) end
return {replayed, cached}
";

/// KEYS: [counter]; ARGV: [window ms]. Returns `{count, remaining ms}`.
pub const RATE: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {n, ttl}
";
