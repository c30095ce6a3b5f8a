//! Connections to Redis: multiplexed, auto-reconnecting connections to a single server
//! (`redis://`, `rediss://` over rustls) or to a Redis Cluster (`redis+cluster://h:p,h:p` or a
//! list of seed nodes).
//!
//! A single server gets one connection per thread that uses the store (in `ferry serve`, one
//! per HTTP worker, plus one for the background checks): a multiplexed connection's I/O runs in
//! a task on the runtime that first used it, and each HTTP worker has a runtime of its own, so
//! one shared connection would cost every command two cross-thread wake-ups (worker → I/O task
//! → worker). With one per worker, a command and its reply stay on the worker's thread. A
//! cluster keeps one connection per replica (its client already holds one per node).
//!
//! Both are lazy: Ferry starts while Redis is down, answers 503 until it is up, and recovers
//! without a restart. Every command is bounded by the caller's timeout (`RedisStore::run`), so
//! a reconnect in progress never holds a request past it.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::io::tcp::TcpSettings;
use redis::{
    Cmd, IntoConnectionInfo, Pipeline, ProtocolVersion, RedisFuture, TlsCertificates, Value,
};

use super::RedisSettings;

/// Where to connect, parsed from the settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Single(String),
    Cluster(Vec<String>),
}

impl Target {
    /// `nodes` wins when given; `redis+cluster://a:1,b:2` (or `rediss+cluster://`) names seeds.
    pub fn parse(settings: &RedisSettings) -> Result<Target, String> {
        if !settings.nodes.is_empty() {
            return Ok(Target::Cluster(settings.nodes.clone()));
        }
        let url = settings
            .url
            .as_deref()
            .ok_or("store.backend is redis but store.redis.url is not set (use --redis URL)")?;
        for (scheme, plain) in [
            ("redis+cluster://", "redis://"),
            ("rediss+cluster://", "rediss://"),
        ] {
            if let Some(rest) = url.strip_prefix(scheme) {
                let nodes = rest
                    .trim_end_matches('/')
                    .split(',')
                    .filter(|n| !n.is_empty())
                    .map(|n| format!("{plain}{n}"))
                    .collect::<Vec<_>>();
                return if nodes.is_empty() {
                    Err(format!("{url}: no cluster nodes"))
                } else {
                    Ok(Target::Cluster(nodes))
                };
            }
        }
        if url.starts_with("redis://") || url.starts_with("rediss://") {
            Ok(Target::Single(url.to_string()))
        } else {
            Err(format!(
                "{url}: expected redis://, rediss://, redis+cluster:// or rediss+cluster://"
            ))
        }
    }
}

/// The replica's one connection handle, cheap to clone per command.
#[derive(Clone)]
pub enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

/// Owns the connections (or the means to make them on first use).
pub enum Connector {
    Single(Box<PerThread>),
    Cluster(Box<LazyCluster>),
}

/// One lazily connected [`ConnectionManager`] per thread, all to the same server.
pub struct PerThread {
    client: redis::Client,
    config: ConnectionManagerConfig,
    managers: thread_local::ThreadLocal<ConnectionManager>,
}

pub struct LazyCluster {
    client: ClusterClient,
    connection: tokio::sync::Mutex<Option<ClusterConnection>>,
}

/// `TCP_NODELAY`: an exchange's commands are small and answered one by one; Nagle's algorithm
/// would hold them back behind delayed ACKs (the cache-hit path measured slower than the miss
/// path before this).
fn tcp_settings() -> TcpSettings {
    TcpSettings::default().set_nodelay(true)
}

/// The private CA to trust instead of the system roots, if configured.
fn tls_certificates(ca_file: Option<&std::path::Path>) -> Result<Option<TlsCertificates>, String> {
    let Some(path) = ca_file else {
        return Ok(None);
    };
    let pem = std::fs::read(path).map_err(|e| format!("tls_ca_file {}: {e}", path.display()))?;
    Ok(Some(TlsCertificates {
        client_tls: None,
        root_cert: Some(pem),
    }))
}

/// `url` parsed, refusing RESP3 (`?protocol=resp3`): the store reads RESP2 replies (an
/// `HGETALL` as a flat array), and would otherwise answer every exchange with 503.
fn resp2_connection_info(url: &str) -> Result<redis::ConnectionInfo, String> {
    let info = url.into_connection_info().map_err(|e| e.to_string())?;
    match info.redis_settings().protocol() {
        ProtocolVersion::RESP2 => Ok(info),
        _ => Err(format!(
            "{}: only RESP2 is supported; remove `protocol=` from the URL",
            redacted(url)
        )),
    }
}

/// `url` without its password, for an error message.
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "store.redis.url".to_string(),
    }
}

impl Connector {
    pub fn new(
        target: &Target,
        ca_file: Option<&std::path::Path>,
        timeout: Duration,
        connect_timeout: Duration,
    ) -> Result<Connector, String> {
        let certs = tls_certificates(ca_file)?;
        match target {
            Target::Single(url) => {
                let info = resp2_connection_info(url)?.set_tcp_settings(tcp_settings());
                let client = match certs {
                    Some(certs) => redis::Client::build_with_tls(info, certs),
                    None => redis::Client::open(info),
                }
                .map_err(|e| e.to_string())?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(connect_timeout))
                    .set_response_timeout(Some(timeout))
                    // Few, short retries: a request waits at most its own timeout anyway, and
                    // the next command after a failure starts a fresh reconnect.
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_millis(200));
                Ok(Connector::Single(Box::new(PerThread {
                    client,
                    config,
                    managers: thread_local::ThreadLocal::new(),
                })))
            }
            Target::Cluster(nodes) => {
                for node in nodes {
                    resp2_connection_info(node)?;
                }
                let mut builder = ClusterClient::builder(nodes.clone())
                    .connection_timeout(connect_timeout)
                    .response_timeout(timeout)
                    .tcp_settings(tcp_settings())
                    .retries(2);
                if let Some(certs) = certs {
                    builder = builder.certs(certs);
                }
                let client = builder.build().map_err(|e| e.to_string())?;
                Ok(Connector::Cluster(Box::new(LazyCluster {
                    client,
                    connection: tokio::sync::Mutex::new(None),
                })))
            }
        }
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, Connector::Cluster(_))
    }

    /// A handle for one operation; connects a cluster on first use.
    pub async fn get(&self) -> redis::RedisResult<Conn> {
        match self {
            Connector::Single(local) => local
                .managers
                .get_or_try(|| {
                    ConnectionManager::new_lazy_with_config(
                        local.client.clone(),
                        local.config.clone(),
                    )
                })
                .map(|manager| Conn::Single(manager.clone())),
            Connector::Cluster(lazy) => {
                let mut slot = lazy.connection.lock().await;
                if let Some(conn) = slot.as_ref() {
                    return Ok(Conn::Cluster(conn.clone()));
                }
                let conn = lazy.client.get_async_connection().await?;
                *slot = Some(conn.clone());
                Ok(Conn::Cluster(conn))
            }
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str) -> RedisSettings {
        RedisSettings {
            url: Some(url.into()),
            ..RedisSettings::default()
        }
    }

    #[test]
    fn urls_choose_a_single_server_or_a_cluster() {
        assert_eq!(
            Target::parse(&settings("redis://127.0.0.1:6379/2")).unwrap(),
            Target::Single("redis://127.0.0.1:6379/2".into())
        );
        assert_eq!(
            Target::parse(&settings("rediss://r.example:6380")).unwrap(),
            Target::Single("rediss://r.example:6380".into())
        );
        assert_eq!(
            Target::parse(&settings("redis+cluster://a:1,b:2")).unwrap(),
            Target::Cluster(vec!["redis://a:1".into(), "redis://b:2".into()])
        );
        assert!(Target::parse(&settings("http://a:1")).is_err());
        assert!(Target::parse(&settings("redis+cluster://")).is_err());
        assert!(Target::parse(&RedisSettings::default()).is_err());
    }

    #[test]
    fn resp3_is_refused_with_the_password_left_out() {
        let connect = |url: &str| {
            Connector::new(
                &Target::parse(&settings(url)).unwrap(),
                None,
                Duration::from_millis(100),
                Duration::from_millis(100),
            )
        };
        assert!(connect("redis://127.0.0.1:6379/0").is_ok());
        assert!(connect("redis://127.0.0.1:6379/0?protocol=resp2").is_ok());
        let error = connect("redis://u:s3cret@127.0.0.1:6379/0?protocol=resp3")
            .err()
            .expect("RESP3 refused");
        assert!(error.contains("only RESP2"), "{error}");
        assert!(!error.contains("s3cret"), "{error}");
        let error = connect("redis+cluster://127.0.0.1:7000,127.0.0.1:7001/?protocol=resp3")
            .err()
            .expect("RESP3 refused on a Cluster");
        assert!(error.contains("only RESP2"), "{error}");
    }
}
