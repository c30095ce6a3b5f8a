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
//! a reconnect in progress never holds a request past it. A Cluster connects in a task of its
//! own, which a request's timeout does not cancel: with a seed node that does not answer, the
//! first connection takes longer than one request may wait.
//!
//! A connection on which nothing has succeeded for [`stall_window`] is replaced
//! ([`Connector::note`]). redis-rs reconnects only after a dropped connection or an I/O error,
//! so without this a connection whose server went away without a reset (a host that died, a
//! network that drops packets: every command just times out), or whose first handshake got an
//! error reply (kept and answered to every later command), would stay broken until a restart.
//! The kernel gives up on unacknowledged data after the same window (`TCP_USER_TIMEOUT`), and
//! keepalive probes find an idle connection whose peer is gone.

use std::cell::RefCell;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::future::{BoxFuture, FutureExt, Shared};

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
                // `[user:password@]h:p,h:p[/][?options]`: the credentials and the options are
                // every node's, not only the first's (or the last's).
                let (hosts, options) = match rest.split_once('?') {
                    Some((hosts, query)) => (hosts, format!("?{query}")),
                    None => (rest, String::new()),
                };
                let (userinfo, hosts) = match hosts.rsplit_once('@') {
                    Some((userinfo, hosts)) => (format!("{userinfo}@"), hosts),
                    None => (String::new(), hosts),
                };
                let nodes = hosts
                    .trim_end_matches('/')
                    .split(',')
                    .filter(|n| !n.is_empty())
                    .map(|n| format!("{plain}{userinfo}{n}{options}"))
                    .collect::<Vec<_>>();
                return if nodes.is_empty() {
                    Err(format!("{}: no cluster nodes", redacted(url)))
                } else {
                    Ok(Target::Cluster(nodes))
                };
            }
        }
        if url.starts_with("redis://") || url.starts_with("rediss://") {
            Ok(Target::Single(url.to_string()))
        } else {
            Err(format!(
                "{}: expected redis://, rediss://, redis+cluster:// or rediss+cluster://",
                redacted(url)
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
    stall: Duration,
    managers: thread_local::ThreadLocal<RefCell<Local>>,
}

/// A thread's connection, and since when its commands have failed with no success between.
struct Local {
    manager: ConnectionManager,
    failing_since: Option<Instant>,
}

type Connecting = Shared<BoxFuture<'static, redis::RedisResult<ClusterConnection>>>;

pub struct LazyCluster {
    client: ClusterClient,
    stall: Duration,
    state: Mutex<ClusterState>,
}

struct ClusterState {
    /// The connection, or the attempt in progress; `None` before the first use and after a
    /// failed attempt or a stall.
    connection: Option<Connecting>,
    failing_since: Option<Instant>,
}

/// How long a connection may go without one command succeeding before it is replaced: twice the
/// command timeout, and longer than a connection attempt may take (two tries of
/// `connect_timeout` and a second), so a slow connect is not started over before it is done. A
/// slow server that answers within that keeps its connection, so commands sent after a
/// timed-out one stay behind it.
pub fn stall_window(command_timeout: Duration, connect_timeout: Duration) -> Duration {
    (command_timeout * 2).max(connect_timeout * 2 + Duration::from_secs(1))
}

/// `TCP_NODELAY`: an exchange's commands are small and answered one by one; Nagle's algorithm
/// would hold them back behind delayed ACKs (the cache-hit path measured slower than the miss
/// path before this). `TCP_USER_TIMEOUT` and keepalive: the kernel drops a connection whose
/// peer stopped acknowledging (a dead host: no reset ever comes), and redis-rs then reconnects.
fn tcp_settings(stall: Duration) -> TcpSettings {
    let keepalive = redis::io::tcp::socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(5))
        .with_interval(Duration::from_secs(1))
        .with_retries(3);
    let tcp = TcpSettings::default()
        .set_nodelay(true)
        .set_keepalive(keepalive);
    #[cfg(target_os = "linux")]
    let tcp = tcp.set_user_timeout(stall);
    #[cfg(not(target_os = "linux"))]
    let _ = stall;
    tcp
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
        Ok(mut parsed) if parsed.password().is_some() => match parsed.set_password(Some("***")) {
            Ok(()) => parsed.to_string(),
            Err(()) => "store.redis.url".to_string(),
        },
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
        let stall = stall_window(timeout, connect_timeout);
        match target {
            Target::Single(url) => {
                let info = resp2_connection_info(url)?.set_tcp_settings(tcp_settings(stall));
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
                    stall,
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
                    .tcp_settings(tcp_settings(stall))
                    .retries(2);
                if let Some(certs) = certs {
                    builder = builder.certs(certs);
                }
                let client = builder.build().map_err(|e| e.to_string())?;
                Ok(Connector::Cluster(Box::new(LazyCluster {
                    client,
                    stall,
                    state: Mutex::new(ClusterState {
                        connection: None,
                        failing_since: None,
                    }),
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
            Connector::Single(local) => {
                let cell = local.managers.get_or_try(|| {
                    local.manager().map(|manager| {
                        RefCell::new(Local {
                            manager,
                            failing_since: None,
                        })
                    })
                })?;
                let manager = cell.borrow().manager.clone();
                Ok(Conn::Single(manager))
            }
            Connector::Cluster(lazy) => {
                let attempt = lazy.connecting();
                match attempt.clone().await {
                    Ok(conn) => Ok(Conn::Cluster(conn)),
                    Err(e) => {
                        // Forget the failed attempt (not a newer one): the next call retries.
                        let mut state = lazy.state.lock().unwrap_or_else(|p| p.into_inner());
                        if state
                            .connection
                            .as_ref()
                            .is_some_and(|c| c.ptr_eq(&attempt))
                        {
                            state.connection = None;
                        }
                        Err(e)
                    }
                }
            }
        }
    }

    /// Tells the connector how a store operation on this thread's connection (a Cluster's:
    /// the replica's) ended. After [`stall_window`] without a success, the connection is
    /// replaced: the next operation starts a fresh one.
    pub fn note(&self, succeeded: bool) {
        let now = Instant::now();
        match self {
            Connector::Single(local) => {
                let Some(cell) = local.managers.get() else {
                    return;
                };
                let mut this = cell.borrow_mut();
                if stalled(&mut this.failing_since, succeeded, now, local.stall) {
                    if let Ok(manager) = local.manager() {
                        tracing::warn!(
                            stall = ?local.stall,
                            "Redis commands on this connection failed for the stall window; replacing it"
                        );
                        *this = Local {
                            manager,
                            failing_since: None,
                        };
                    }
                }
            }
            Connector::Cluster(lazy) => {
                let mut state = lazy.state.lock().unwrap_or_else(|p| p.into_inner());
                if stalled(&mut state.failing_since, succeeded, now, lazy.stall) {
                    // A connection, not an attempt still in progress (that would never finish).
                    let connected = state.connection.as_ref().and_then(Shared::peek);
                    if connected.is_some_and(Result::is_ok) {
                        state.connection = None;
                        tracing::warn!(
                            stall = ?lazy.stall,
                            "Redis Cluster commands failed for the stall window; reconnecting"
                        );
                    }
                    state.failing_since = None;
                }
            }
        }
    }
}

/// Whether a connection has stalled: its commands have failed for `stall`, with no success in
/// between. The clock starts at the first failure after a success, not at the last success, so
/// a connection idle for a while is not replaced by one slow answer.
fn stalled(
    failing_since: &mut Option<Instant>,
    succeeded: bool,
    now: Instant,
    stall: Duration,
) -> bool {
    if succeeded {
        *failing_since = None;
        return false;
    }
    let since = *failing_since.get_or_insert(now);
    now.duration_since(since) >= stall
}

impl PerThread {
    /// A new lazily connecting manager (it connects on its first command).
    fn manager(&self) -> redis::RedisResult<ConnectionManager> {
        ConnectionManager::new_lazy_with_config(self.client.clone(), self.config.clone())
    }
}

impl LazyCluster {
    /// The connection, or the attempt in progress, starting one if there is none. The attempt
    /// runs in a task of its own: a caller that stops waiting (its timeout) does not cancel it.
    fn connecting(&self) -> Connecting {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state
            .connection
            .get_or_insert_with(|| {
                let client = self.client.clone();
                let task = tokio::spawn(async move { client.get_async_connection().await });
                async move {
                    task.await.unwrap_or_else(|e| {
                        Err(redis::RedisError::from((
                            redis::ErrorKind::Io,
                            "cluster connection task ended",
                            e.to_string(),
                        )))
                    })
                }
                .boxed()
                .shared()
            })
            .clone()
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
        assert_eq!(
            Target::parse(&settings("rediss+cluster://u:pw@a:1,b:2/?protocol=resp2")).unwrap(),
            Target::Cluster(vec![
                "rediss://u:pw@a:1?protocol=resp2".into(),
                "rediss://u:pw@b:2?protocol=resp2".into()
            ]),
            "the credentials and options are every seed's"
        );
        assert!(Target::parse(&settings("http://a:1")).is_err());
        for wrong in [
            "Valkey://:s3cret@a:1",
            "redis+cluster://:s3cret@/",
            "http://u:s3cret@a",
        ] {
            let error = Target::parse(&settings(wrong)).unwrap_err();
            assert!(!error.contains("s3cret"), "{wrong}: {error}");
        }
        assert!(Target::parse(&settings("redis+cluster://")).is_err());
        assert!(Target::parse(&RedisSettings::default()).is_err());
    }

    #[test]
    fn only_failures_for_the_whole_window_stall_a_connection() {
        let (stall, t0) = (Duration::from_secs(2), Instant::now());
        let mut since = None;
        assert!(
            !stalled(&mut since, false, t0, stall),
            "after a long idle: one failure"
        );
        assert!(!stalled(
            &mut since,
            false,
            t0 + Duration::from_secs(1),
            stall
        ));
        assert!(
            stalled(&mut since, false, t0 + stall, stall),
            "failing for the window"
        );
        let mut since = None;
        assert!(!stalled(&mut since, false, t0, stall));
        assert!(!stalled(
            &mut since,
            true,
            t0 + Duration::from_secs(1),
            stall
        ));
        assert!(
            !stalled(&mut since, false, t0 + Duration::from_secs(3), stall),
            "a success restarts the clock"
        );
    }

    #[test]
    fn a_dead_peer_is_given_up_by_the_kernel_within_the_stall_window() {
        let ms = Duration::from_millis;
        assert_eq!(stall_window(ms(500), ms(500)), ms(2000));
        assert_eq!(stall_window(ms(5000), ms(500)), ms(10_000));
        assert_eq!(stall_window(ms(100), ms(2000)), ms(5000));
        let tcp = tcp_settings(ms(2000));
        assert!(tcp.nodelay());
        #[cfg(target_os = "linux")]
        assert_eq!(tcp.user_timeout(), Some(ms(2000)));
        assert!(tcp.keepalive().is_some(), "idle connections are probed");
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
