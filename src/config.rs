//! Typed settings: defaults in code < config file (`--config ferry.toml`) < `FERRY_*` environment
//! < command-line flags.
//!
//! Environment variables map onto the file's keys with `__` between levels, e.g.
//! `FERRY_SERVER__LISTEN=0.0.0.0:8443`, `FERRY_AUDIT__FSYNC=never`, `FERRY_DATA_DIR=/var/lib/ferry`.
//! Unknown keys in the file or in `FERRY_<SECTION>__*` variables are errors, so a typo never
//! silently leaves a default in force.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::audit::FsyncPolicy;
use crate::issuer::FetchSettings;
use crate::store::RedisSettings;
use crate::verify::VerifySettings;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub server: ServerSettings,
    pub policies: PolicySettings,
    /// Where the signing key and the audit file live by default.
    pub data_dir: PathBuf,
    pub verify: VerifyConfig,
    pub keys: KeyFetchConfig,
    pub credential: CredentialSettings,
    pub store: StoreSettings,
    pub audit: AuditSettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    pub listen: String,
    /// The URL clients and resource servers use to reach Ferry: the `iss` of minted credentials
    /// and the broker's default audience. Defaults to `http(s)://<listen address>`.
    pub public_url: Option<String>,
    pub tls: Option<TlsSettings>,
    /// HTTP worker threads (default: one per core).
    pub workers: Option<usize>,
    /// Largest accepted request body; the subject-token limit is separate and smaller.
    pub max_body_bytes: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PolicySettings {
    pub dir: PathBuf,
    /// How often the directory is checked for changes (hot reload); `0s` turns polling off
    /// (`SIGHUP` still reloads).
    #[serde(with = "humantime_serde")]
    pub reload_interval: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct VerifyConfig {
    /// Clock-skew allowance for exp/nbf/iat (SECURITY.md rule 7).
    #[serde(with = "humantime_serde")]
    pub leeway: Duration,
    /// Subject tokens above this size are refused before parsing (rule 1).
    pub max_token_bytes: usize,
    /// Extra time a used `jti` is remembered beyond `exp + leeway` (rule 9).
    #[serde(with = "humantime_serde")]
    pub replay_margin: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KeyFetchConfig {
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    pub max_body_bytes: usize,
    #[serde(with = "humantime_serde")]
    pub refresh_cooldown: Duration,
    #[serde(with = "humantime_serde")]
    pub refresh_interval: Duration,
    /// Bounds on the scheduled refresh (`Cache-Control: max-age`, `spiffe_refresh_hint`).
    #[serde(with = "humantime_serde")]
    pub min_refresh: Duration,
    #[serde(with = "humantime_serde")]
    pub max_refresh: Duration,
    #[serde(with = "humantime_serde")]
    pub max_stale: Duration,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum SigningAlgorithm {
    ES256,
    EdDSA,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CredentialSettings {
    pub algorithm: SigningAlgorithm,
    /// PKCS#8 PEM signing key; default `<data_dir>/signing-key.pem`, generated on first start.
    pub key_file: Option<PathBuf>,
    /// The audience subject tokens must carry for policies that do not name one.
    /// Default: the public URL.
    pub audience: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    Memory,
    /// Shared by every replica; see `[store.redis]` and `--redis URL`.
    Redis,
}

impl StoreBackend {
    /// As the configuration spells it.
    pub fn name(self) -> &'static str {
        match self {
            StoreBackend::Memory => "memory",
            StoreBackend::Redis => "redis",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// `memory` unless set, or unless a Redis server is named (`store.redis.url`,
    /// `store.redis.nodes`, `--redis`): then `redis` (see [`StoreSettings::settle`]).
    pub backend: StoreBackend,
    /// Reuse a still-fresh credential for the same grant instead of minting a new one.
    pub cache_credentials: bool,
    pub redis: RedisSettings,
    /// Another name for `store.redis.url` (`redis_url = "…"` under `[store]`, or
    /// `FERRY_STORE__REDIS_URL`), the one the design uses. Each layer's value is moved into
    /// `store.redis.url` of that layer (`layers`), so later layers override it as usual; one
    /// layer naming different servers under both names is refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_url: Option<String>,
}

impl StoreSettings {
    /// Settles what the layers left. A configuration that names a Redis server must not run
    /// each replica on a memory store of its own: their replay records would not be shared, so
    /// a token used on one replica would pass on another. So naming a server without a
    /// `backend` selects the Redis store, and naming one with `backend = "memory"` (in any
    /// layer: a file's, say, under an environment that names the server) is refused.
    fn settle(&mut self, backend_given: bool) -> Result<(), ConfigError> {
        let given = |u: &Option<String>| u.as_deref().is_some_and(|u| !u.trim().is_empty());
        // Already moved into `redis.url`, layer by layer (`layers`).
        self.redis_url = None;
        let names_a_server = given(&self.redis.url) || !self.redis.nodes.is_empty();
        match (names_a_server, self.backend, backend_given) {
            (true, StoreBackend::Memory, false) => self.backend = StoreBackend::Redis,
            (true, StoreBackend::Memory, true) => {
                return Err(ConfigError(
                    "store.backend is \"memory\" but store.redis names a Redis server: set \
                     store.backend to \"redis\" to share state between replicas, or remove \
                     store.redis.url and store.redis.nodes"
                        .into(),
                ))
            }
            _ => {}
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSettings {
    /// Default `<data_dir>/audit.jsonl`.
    pub file: Option<PathBuf>,
    pub fsync: FsyncPolicy,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    pub format: LogFormat,
    /// An `EnvFilter` directive, e.g. `info` or `ferry=debug,actix_web=warn`. `RUST_LOG` wins.
    pub level: String,
}

/// Values given on the command line; `None` leaves the lower layers in force.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policies: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// `--redis URL`: the Redis store at that URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

/// The configuration error, with the values under `store.redis` left out: a Redis URL there may
/// hold a password, and the error is printed and logged.
fn redacted_error(error: figment::Error) -> ConfigError {
    use figment::error::{Actual, Kind};
    let hidden = || Actual::Other("a value not shown (it may hold a password)".into());
    let messages: Vec<String> = error
        .into_iter()
        .map(|mut e| {
            let under_redis = match e.path.as_slice() {
                [store] => store == "store",
                [store, key, ..] => store == "store" && (key == "redis" || key == "redis_url"),
                [] => false,
            };
            // A syntax error quotes the file's line, which may be a Redis URL with its
            // password: keep the position and the reason, not the quoted source.
            if let Kind::Message(text) = &e.kind {
                let kept: Vec<&str> = text
                    .lines()
                    .filter(|line| {
                        !line
                            .trim_start()
                            .trim_start_matches(|c: char| c.is_ascii_digit())
                            .trim_start()
                            .starts_with('|')
                    })
                    .collect();
                e.kind = Kind::Message(kept.join("\n"));
            }
            if under_redis {
                e.kind = match e.kind {
                    Kind::InvalidType(_, expected) => Kind::InvalidType(hidden(), expected),
                    Kind::InvalidValue(_, expected) => Kind::InvalidValue(hidden(), expected),
                    Kind::Unsupported(_) => Kind::Unsupported(hidden()),
                    Kind::UnsupportedKey(_, need) => Kind::UnsupportedKey(hidden(), need),
                    other => other,
                };
            }
            e.to_string()
        })
        .collect();
    ConfigError(messages.join("\n"))
}

/// What the user gave, apart from the defaults: the optional file, the environment and the
/// flags, in that order. `store.redis_url` is put in each layer's `store.redis.url`, so that a
/// later layer overrides it under either name; naming two servers under both names in one
/// layer is refused.
fn layers(config_file: Option<&Path>, overrides: &Overrides) -> Result<Figment, ConfigError> {
    let mut given = Figment::new();
    if let Some(file) = config_file {
        if !file.is_file() {
            return Err(ConfigError(format!(
                "config file {} not found",
                file.display()
            )));
        }
        let text = Figment::from(Toml::file(file));
        given = given.merge(Toml::file(file));
        let named = |key: &str| {
            text.extract_inner::<String>(key)
                .ok()
                .filter(|u| !u.trim().is_empty())
        };
        if let Some(alias) = named("store.redis_url") {
            one_server(named("store.redis.url"), &alias, "the config file")?;
            given = given.merge(Serialized::default("store.redis.url", alias));
        }
    }
    // Figment reads variable names in any case, so these do too.
    let from_env = |name: &str| {
        std::env::vars_os()
            .find(|(key, _)| key.to_str().is_some_and(|k| k.eq_ignore_ascii_case(name)))
            .and_then(|(_, value)| value.into_string().ok())
            .filter(|u| !u.trim().is_empty())
    };
    let env_alias = from_env("FERRY_STORE__REDIS_URL");
    if let Some(alias) = &env_alias {
        one_server(
            from_env("FERRY_STORE__REDIS__URL"),
            alias,
            "the environment",
        )?;
    }
    // Both names become `store.redis.url`, and of two variables for one key the later in the
    // environment would win: only one of them is let through, the one that names a server
    // (the other is blank or, as just checked, the same).
    let dropped = if env_alias.is_some() {
        "store.redis.url"
    } else {
        "store.redis_url"
    };
    let env = Env::prefixed("FERRY_")
        .split("__")
        .filter(|key| {
            // Keys arrive here upper-case, with `__` already turned into `.`.
            let section = key
                .as_str()
                .split('.')
                .next()
                .unwrap_or("")
                .to_ascii_lowercase();
            SECTIONS.contains(&section.as_str()) && !key.as_str().eq_ignore_ascii_case(dropped)
        })
        .map(|key| {
            if key.as_str().eq_ignore_ascii_case("store.redis_url") {
                "store.redis.url".into()
            } else {
                key.into()
            }
        });
    Ok(given
        .merge(env)
        .merge(Serialized::defaults(flag_layer(overrides))))
}

/// Refuses a layer that names a Redis server as `store.redis.url` and another one as
/// `store.redis_url` (the URLs are not quoted: they may hold a password).
fn one_server(url: Option<String>, alias: &str, layer: &str) -> Result<(), ConfigError> {
    match url {
        Some(url) if url.trim() != alias.trim() => Err(ConfigError(format!(
            "{layer} names different Redis servers as store.redis_url and store.redis.url: set \
             only one of them"
        ))),
        _ => Ok(()),
    }
}

/// The top-level sections an `FERRY_*` variable may address; anything else (say
/// `FERRY_TEST_REDIS_URL`, used by the test suite) is not configuration.
const SECTIONS: [&str; 9] = [
    "server",
    "policies",
    "data_dir",
    "verify",
    "keys",
    "credential",
    "store",
    "audit",
    "log",
];

impl Settings {
    /// Layers defaults, the optional file, the environment and the flags.
    pub fn load(
        config_file: Option<&Path>,
        overrides: &Overrides,
    ) -> Result<Settings, ConfigError> {
        let given = layers(config_file, overrides)?;
        // `settle` needs to know whether the user set `store.backend`.
        let backend_given = given.find_value("store.backend").is_ok();
        let mut settings: Settings = Figment::from(Serialized::defaults(Settings::default()))
            .merge(given)
            .extract()
            .map_err(redacted_error)?;
        settings.store.settle(backend_given)?;
        Ok(settings)
    }

    /// Only the `store` section of the same layers (for `ferry audit tail`, which needs no
    /// other): other sections of the file and other `FERRY_*` variables are not read.
    pub fn load_store(
        config_file: Option<&Path>,
        overrides: &Overrides,
    ) -> Result<StoreSettings, ConfigError> {
        let given = layers(config_file, overrides)?;
        let backend_given = given.find_value("store.backend").is_ok();
        let mut store: StoreSettings = Figment::from(Serialized::defaults(Settings::default()))
            .merge(given)
            .extract_inner("store")
            .map_err(redacted_error)?;
        store.settle(backend_given)?;
        Ok(store)
    }

    /// Settings for an in-process test server: port 0 on loopback, no fsync, quiet logs.
    pub fn for_tests(policies_dir: &Path, data_dir: &Path) -> Settings {
        let mut s = Settings::default();
        s.server.listen = "127.0.0.1:0".into();
        s.server.workers = Some(2);
        s.policies.dir = policies_dir.to_path_buf();
        s.data_dir = data_dir.to_path_buf();
        s.audit.fsync = FsyncPolicy::Never;
        s.log.level = "warn".into();
        s
    }

    pub fn audit_file(&self) -> PathBuf {
        self.audit
            .file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("audit.jsonl"))
    }

    pub fn signing_key_file(&self) -> PathBuf {
        self.credential
            .key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("signing-key.pem"))
    }

    /// The public URL: configured, or derived from the bound address.
    pub fn public_url_for(&self, bound: SocketAddr) -> String {
        match &self.server.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => {
                let scheme = if self.server.tls.is_some() {
                    "https"
                } else {
                    "http"
                };
                format!("{scheme}://{bound}")
            }
        }
    }

    pub fn verify_settings(&self) -> VerifySettings {
        VerifySettings {
            leeway: self.verify.leeway,
            max_token_bytes: self.verify.max_token_bytes,
        }
    }

    pub fn fetch_settings(&self) -> FetchSettings {
        FetchSettings {
            connect_timeout: self.keys.connect_timeout,
            timeout: self.keys.timeout,
            max_body_bytes: self.keys.max_body_bytes,
            refresh_cooldown: self.keys.refresh_cooldown,
            refresh_interval: self.keys.refresh_interval,
            min_refresh: self.keys.min_refresh,
            max_refresh: self.keys.max_refresh,
            max_stale: self.keys.max_stale,
        }
    }
}

/// Flags as a nested figment layer: `--listen` belongs to `server.listen`, and so on.
fn flag_layer(o: &Overrides) -> serde_json::Value {
    let mut root = serde_json::Map::new();
    let mut server = serde_json::Map::new();
    if let Some(listen) = &o.listen {
        server.insert("listen".into(), listen.clone().into());
    }
    if let Some(url) = &o.public_url {
        server.insert("public_url".into(), url.clone().into());
    }
    if !server.is_empty() {
        root.insert("server".into(), server.into());
    }
    if let Some(dir) = &o.policies {
        root.insert("policies".into(), serde_json::json!({ "dir": dir }));
    }
    if let Some(dir) = &o.data_dir {
        root.insert("data_dir".into(), serde_json::json!(dir));
    }
    if let Some(url) = &o.redis {
        root.insert(
            "store".into(),
            // `nodes` emptied too: the flag replaces the server named any way (`nodes` would
            // win over a URL).
            serde_json::json!({ "backend": "redis", "redis": { "url": url, "nodes": [] } }),
        );
    }
    root.into()
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            server: ServerSettings::default(),
            policies: PolicySettings::default(),
            data_dir: PathBuf::from(".ferry"),
            verify: VerifyConfig::default(),
            keys: KeyFetchConfig::default(),
            credential: CredentialSettings::default(),
            store: StoreSettings::default(),
            audit: AuditSettings::default(),
            log: LogSettings::default(),
        }
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            public_url: None,
            tls: None,
            workers: None,
            max_body_bytes: 64 * 1024,
        }
    }
}

impl Default for PolicySettings {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("trust-policies"),
            reload_interval: Duration::from_secs(2),
        }
    }
}

impl Default for VerifyConfig {
    fn default() -> Self {
        let v = VerifySettings::default();
        Self {
            leeway: v.leeway,
            max_token_bytes: v.max_token_bytes,
            replay_margin: Duration::from_secs(60),
        }
    }
}

impl Default for KeyFetchConfig {
    fn default() -> Self {
        let f = FetchSettings::default();
        Self {
            connect_timeout: f.connect_timeout,
            timeout: f.timeout,
            max_body_bytes: f.max_body_bytes,
            refresh_cooldown: f.refresh_cooldown,
            refresh_interval: f.refresh_interval,
            min_refresh: f.min_refresh,
            max_refresh: f.max_refresh,
            max_stale: f.max_stale,
        }
    }
}

impl Default for CredentialSettings {
    fn default() -> Self {
        Self {
            algorithm: SigningAlgorithm::ES256,
            key_file: None,
            audience: None,
        }
    }
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            backend: StoreBackend::Memory,
            cache_credentials: true,
            redis: RedisSettings::default(),
            redis_url: None,
        }
    }
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            file: None,
            fsync: FsyncPolicy::Always,
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Human,
            level: "info".into(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's Jail API returns its own large error type
mod tests {
    use super::*;
    use figment::Jail;

    #[test]
    fn flags_beat_environment_beat_file_beat_defaults() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "ferry.toml",
                "data_dir = \"/from-file\"\n[server]\nlisten = \"127.0.0.1:1111\"\npublic_url = \"https://file\"\n[audit]\nfsync = \"never\"\n",
            )?;
            jail.set_env("FERRY_SERVER__LISTEN", "127.0.0.1:2222");
            jail.set_env("FERRY_DATA_DIR", "/from-env");
            jail.set_env("FERRY_TEST_REDIS_URL", "redis://ignored");
            let flags = Overrides {
                data_dir: Some("/from-flag".into()),
                ..Overrides::default()
            };
            let s =
                Settings::load(Some(Path::new("ferry.toml")), &flags).map_err(|e| e.to_string())?;
            assert_eq!(s.data_dir, PathBuf::from("/from-flag"), "flag wins");
            assert_eq!(s.server.listen, "127.0.0.1:2222", "environment beats file");
            assert_eq!(
                s.server.public_url.as_deref(),
                Some("https://file"),
                "file beats default"
            );
            assert_eq!(s.audit.fsync, FsyncPolicy::Never);
            assert_eq!(s.policies.dir, PathBuf::from("trust-policies"), "default");
            assert_eq!(s.verify.leeway, Duration::from_secs(60));
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_in_file_or_environment_are_errors() {
        Jail::expect_with(|jail| {
            jail.create_file("typo.toml", "[server]\nlisen = \"x\"\n")?;
            let err =
                Settings::load(Some(Path::new("typo.toml")), &Overrides::default()).unwrap_err();
            assert!(err.to_string().contains("lisen"), "{err}");
            jail.set_env("FERRY_AUDIT__FSINC", "never");
            assert!(Settings::load(None, &Overrides::default()).is_err());
            Ok(())
        });
    }

    #[test]
    fn durations_are_human_readable() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "d.toml",
                "[verify]\nleeway = \"30s\"\n[keys]\nrefresh_cooldown = \"2m\"\n",
            )?;
            let s = Settings::load(Some(Path::new("d.toml")), &Overrides::default())
                .map_err(|e| e.to_string())?;
            assert_eq!(s.verify.leeway, Duration::from_secs(30));
            assert_eq!(s.keys.refresh_cooldown, Duration::from_secs(120));
            Ok(())
        });
    }

    #[test]
    fn the_redis_flag_selects_the_redis_store_and_keeps_its_file_settings() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "r.toml",
                "[store.redis]\nurl = \"redis://10.0.0.7:6379\"\nprefix = \"blue:\"\ncommand_timeout = \"150ms\"\n",
            )?;
            let flags = Overrides {
                redis: Some("redis://127.0.0.1:6390/2".into()),
                ..Overrides::default()
            };
            let s = Settings::load(Some(Path::new("r.toml")), &flags).map_err(|e| e.to_string())?;
            assert_eq!(s.store.backend, StoreBackend::Redis);
            assert_eq!(
                s.store.redis.url.as_deref(),
                Some("redis://127.0.0.1:6390/2"),
                "the flag's URL over the file's"
            );
            assert_eq!(s.store.redis.prefix, "blue:");
            assert_eq!(s.store.redis.command_timeout, Duration::from_millis(150));
            let default = Settings::load(None, &Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(default.store.backend, StoreBackend::Memory);
            Ok(())
        });
    }

    #[test]
    fn a_redis_server_named_in_the_file_or_the_environment_selects_the_redis_store() {
        let load = |file: &str| {
            Settings::load(Some(Path::new(file)), &Overrides::default()).map_err(|e| e.to_string())
        };
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file(
                "url.toml",
                "[store.redis]\nurl = \"redis://10.0.0.7:6379/1\"\n",
            )?;
            let s = load("url.toml")?;
            assert_eq!(s.store.backend, StoreBackend::Redis, "a URL alone");
            assert_eq!(
                s.store.redis.url.as_deref(),
                Some("redis://10.0.0.7:6379/1")
            );
            jail.create_file(
                "nodes.toml",
                "[store.redis]\nnodes = [\"redis://10.0.0.7:7000\"]\n",
            )?;
            assert_eq!(
                load("nodes.toml")?.store.backend,
                StoreBackend::Redis,
                "Cluster seeds"
            );
            jail.create_file(
                "redis.toml",
                "[store]\nbackend = \"redis\"\n[store.redis]\nurl = \"redis://10.0.0.7:6379\"\n",
            )?;
            assert_eq!(
                load("redis.toml")?.store.backend,
                StoreBackend::Redis,
                "both said"
            );
            jail.create_file("blank.toml", "[store.redis]\nurl = \"\"\n")?;
            assert_eq!(
                load("blank.toml")?.store.backend,
                StoreBackend::Memory,
                "an empty URL (an unset variable substituted) names no server"
            );
            jail.create_file(
                "memory.toml",
                "[store]\nbackend = \"memory\"\n[store.redis]\nurl = \"redis://10.0.0.7:6379\"\n",
            )?;
            let err = load("memory.toml").unwrap_err();
            assert!(err.contains("store.backend is \"memory\""), "{err}");
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file("empty.toml", "")?;
            jail.set_env("FERRY_STORE__REDIS__URL", "redis://10.0.0.9:6379");
            let s = load("empty.toml")?;
            assert_eq!(s.store.backend, StoreBackend::Redis, "the environment");
            assert_eq!(s.store.redis.url.as_deref(), Some("redis://10.0.0.9:6379"));
            // A file's memory backend under an environment that names a server: refused, not
            // a private memory store per replica.
            jail.create_file("dev.toml", "[store]\nbackend = \"memory\"\n")?;
            let err = load("dev.toml").unwrap_err();
            assert!(err.contains("names a Redis server"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn store_redis_url_is_another_name_for_the_redis_url() {
        let load = |file: &str, redis: Option<&str>| {
            let overrides = Overrides {
                redis: redis.map(str::to_string),
                ..Overrides::default()
            };
            Settings::load(Some(Path::new(file)), &overrides).map_err(|e| e.to_string())
        };
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file(
                "alias.toml",
                "[store]\nredis_url = \"redis://10.0.0.7:6379/2\"\n",
            )?;
            let s = load("alias.toml", None)?;
            assert_eq!(s.store.backend, StoreBackend::Redis, "it names a server");
            assert_eq!(
                s.store.redis.url.as_deref(),
                Some("redis://10.0.0.7:6379/2")
            );
            jail.create_file(
                "nodes.toml",
                "[store.redis]\nnodes = [\"redis://10.0.0.7:7000\"]\n",
            )?;
            let s = load("nodes.toml", Some("redis://10.0.0.8:6379"))?;
            assert!(
                s.store.redis.nodes.is_empty(),
                "--redis replaces Cluster nodes too"
            );
            assert_eq!(s.store.redis.url.as_deref(), Some("redis://10.0.0.8:6379"));
            let s = load("alias.toml", Some("redis://10.0.0.8:6379"))?;
            assert_eq!(
                s.store.redis.url.as_deref(),
                Some("redis://10.0.0.8:6379"),
                "--redis replaces it"
            );
            jail.create_file(
                "both.toml",
                "[store]\nredis_url = \"redis://:pw1@a:6379\"\n[store.redis]\nurl = \"redis://:pw2@b:6379\"\n",
            )?;
            let err = load("both.toml", None).unwrap_err();
            assert!(err.contains("different Redis servers"), "{err}");
            assert!(!err.contains("pw1") && !err.contains("pw2"), "{err}");
            jail.create_file(
                "same.toml",
                "[store]\nredis_url = \"redis://a:6379\"\n[store.redis]\nurl = \"redis://a:6379\"\n",
            )?;
            assert_eq!(
                load("same.toml", None)?.store.redis.url.as_deref(),
                Some("redis://a:6379")
            );
            jail.set_env("FERRY_STORE__REDIS_URL", "redis://10.0.0.9:6379");
            jail.create_file("empty.toml", "")?;
            assert_eq!(
                load("empty.toml", None)?.store.redis.url.as_deref(),
                Some("redis://10.0.0.9:6379"),
                "and in the environment"
            );
            // Layers override each other under either name: the environment beats the file.
            assert_eq!(
                load("both.toml", None).map(|s| s.store.redis.url).ok(),
                None,
                "the file alone is still refused"
            );
            jail.create_file("url.toml", "[store.redis]\nurl = \"redis://file:6379\"\n")?;
            assert_eq!(
                load("url.toml", None)?.store.redis.url.as_deref(),
                Some("redis://10.0.0.9:6379"),
                "the environment's alias beats the file's url"
            );
            jail.set_env("FERRY_STORE__REDIS_URL", "");
            jail.set_env("FERRY_STORE__REDIS__URL", "redis://env:6379");
            assert_eq!(
                load("alias.toml", None)?.store.redis.url.as_deref(),
                Some("redis://env:6379"),
                "the environment's url beats the file's alias"
            );
            // Whichever of a blank name and a given one comes later in the environment.
            jail.clear_env();
            jail.set_env("FERRY_STORE__REDIS__URL", "redis://env:6379");
            jail.set_env("FERRY_STORE__REDIS_URL", " ");
            assert_eq!(
                load("empty.toml", None)?.store.redis.url.as_deref(),
                Some("redis://env:6379"),
                "a blank alias after the url"
            );
            jail.clear_env();
            jail.set_env("FERRY_STORE__REDIS_URL", "redis://alias:6379");
            jail.set_env("FERRY_STORE__REDIS__URL", "");
            assert_eq!(
                load("empty.toml", None)?.store.redis.url.as_deref(),
                Some("redis://alias:6379"),
                "a blank url after the alias"
            );
            jail.clear_env();
            jail.set_env("ferry_store__redis__url", "redis://env:6379");
            jail.set_env("FERRY_STORE__REDIS_URL", "redis://other:6379");
            let err = load("empty.toml", None).unwrap_err();
            assert!(err.contains("the environment names different"), "{err}");
            jail.clear_env();
            jail.set_env("FERRY_STORE__REDIS__URL", "redis://env:6379");
            jail.set_env("FERRY_STORE__REDIS_URL", "redis://other:6379");
            let err = load("empty.toml", None).unwrap_err();
            assert!(err.contains("the environment names different"), "{err}");
            jail.clear_env();
            jail.set_env("FERRY_STORE__REDIS_URL", "[1]");
            let err = load("empty.toml", None).unwrap_err();
            assert!(err.contains("not shown"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn the_store_alone_loads_past_other_sections_it_does_not_need() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file(
                "ferry.toml",
                "[server]\nlisten = 7\n[store]\nredis_url = \"redis://a:6379\"\n",
            )?;
            jail.set_env("FERRY_VERIFY__LEEWAY", "not a duration");
            let path = Some(Path::new("ferry.toml"));
            assert!(Settings::load(path, &Overrides::default()).is_err());
            let store =
                Settings::load_store(path, &Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(store.redis.url.as_deref(), Some("redis://a:6379"));
            assert_eq!(store.backend, StoreBackend::Redis);
            Ok(())
        });
    }

    #[test]
    fn a_config_file_syntax_error_does_not_quote_the_line() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file(
                "ferry.toml",
                "[store.redis]\nurl = \"redis://:s3cret@x:6379\n",
            )?;
            let err = Settings::load(Some(Path::new("ferry.toml")), &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(err.contains("line 2"), "says where: {err}");
            assert!(!err.contains("s3cret"), "{err}");
            jail.set_env("FERRY_STORE", "redis://:s3cret@x");
            jail.create_file("empty.toml", "")?;
            let err = Settings::load(Some(Path::new("empty.toml")), &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(!err.contains("s3cret"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_malformed_redis_setting_is_reported_without_its_value() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file("ferry.toml", "")?;
            jail.set_env("FERRY_STORE__REDIS__NODES", "redis://:s3cret@10.0.0.9:7000");
            let err = Settings::load(Some(Path::new("ferry.toml")), &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(err.contains("STORE.REDIS.NODES"), "names the key: {err}");
            assert!(err.contains("not shown"), "{err}");
            assert!(!err.contains("s3cret"), "{err}");
            jail.clear_env();
            jail.create_file("ferry.toml", "[server]\nlisten = 5\n")?;
            let err = Settings::load(Some(Path::new("ferry.toml")), &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(err.contains("int `5`"), "other keys keep it: {err}");
            Ok(())
        });
    }

    #[test]
    fn a_missing_config_file_is_an_error_not_a_silent_default() {
        assert!(Settings::load(
            Some(Path::new("/nonexistent/ferry.toml")),
            &Overrides::default()
        )
        .is_err());
    }
}
