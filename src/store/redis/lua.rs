//! Calling the Lua scripts: by hash (`EVALSHA`), with one fallback that costs one round trip.
//!
//! `redis::Script` answers `NOSCRIPT` (the server's script cache was flushed, or the server
//! restarted or failed over without it) with `SCRIPT LOAD` and then `EVALSHA` again: two round
//! trips more, so the exchange that met the flush took four. A [`LuaCall`] answers it with one
//! `EVAL` carrying the body instead, which runs the script and puts it back in the server's
//! cache: one round trip more, once per script per flush; every later call goes by hash. The
//! body is never sent otherwise: sending it with every call would make `redis-server` read and
//! hash a few kilobytes per exchange (not measured here; the hash is the cheaper path by
//! construction).

use redis::aio::ConnectionLike;
use redis::{Cmd, ErrorKind, FromRedisValue, RedisResult, ServerErrorKind, ToRedisArgs};

/// A script: its body and the SHA-1 `EVALSHA` names it by.
pub struct Lua {
    code: &'static str,
    hash: String,
}

impl Lua {
    pub fn new(code: &'static str) -> Self {
        Lua {
            code,
            hash: redis::Script::new(code).get_hash().to_owned(),
        }
    }

    /// A call to fill with keys and arguments (in `KEYS` and `ARGV` order).
    pub fn prepare_invoke(&self) -> LuaCall<'_> {
        LuaCall {
            lua: self,
            keys: Vec::new(),
            args: Vec::new(),
        }
    }
}

pub struct LuaCall<'a> {
    lua: &'a Lua,
    keys: Vec<Vec<u8>>,
    args: Vec<Vec<u8>>,
}

impl LuaCall<'_> {
    pub fn key(&mut self, key: impl ToRedisArgs) -> &mut Self {
        self.keys.extend(key.to_redis_args());
        self
    }

    pub fn arg(&mut self, arg: impl ToRedisArgs) -> &mut Self {
        self.args.extend(arg.to_redis_args());
        self
    }

    /// `EVALSHA`, or after `NOSCRIPT` one `EVAL` with the body (see the module docs).
    pub async fn invoke_async<T: FromRedisValue>(
        &self,
        con: &mut impl ConnectionLike,
    ) -> RedisResult<T> {
        match self
            .command("EVALSHA", &self.lua.hash)
            .query_async(con)
            .await
        {
            Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                tracing::warn!(
                    "redis had lost a Ferry script (script cache flushed, or a restart or \
                     failover); it is sent again with this call"
                );
                self.command("EVAL", self.lua.code).query_async(con).await
            }
            answer => answer,
        }
    }

    fn command(&self, name: &str, script: &str) -> Cmd {
        let mut cmd = redis::cmd(name);
        cmd.arg(script)
            .arg(self.keys.len())
            .arg(&self.keys)
            .arg(&self.args);
        cmd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_names_the_script_by_its_sha1_and_its_keys_before_its_arguments() {
        let lua = Lua::new("return 1");
        // SHA-1 of "return 1".
        assert_eq!(lua.hash, "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
        let mut call = lua.prepare_invoke();
        call.key("k1").arg(7).key("k2").arg("a");
        let packed = call.command("EVALSHA", &lua.hash).get_packed_command();
        let text = String::from_utf8(packed).unwrap();
        let parts: Vec<&str> = text
            .split("\r\n")
            .filter(|p| !p.starts_with(['*', '$']))
            .collect();
        assert_eq!(
            parts,
            ["EVALSHA", &*lua.hash, "2", "k1", "k2", "7", "a", ""],
            "{text:?}"
        );
    }
}
