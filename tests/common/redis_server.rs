//! Real Redis servers for tests: `RedisServer::start()` runs `redis-server` on a free loopback
//! port without persistence (`--save "" --appendonly no`) and stops it by its pid on drop;
//! `stop`/`restart` simulate outages on the same port. `shared_redis()` prefers the
//! server `FERRY_TEST_REDIS_URL` points at (tests then isolate themselves by key prefix).
//! `RedisCluster::start()` makes a three-master Redis Cluster of such servers.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ferry::config::{Settings, StoreBackend};

pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    extra: Vec<String>,
    /// The working directory (cluster nodes keep `nodes.conf` there across restarts).
    dir: tempfile::TempDir,
}

/// Where [`free_port`] hands ports out: below the kernel's ephemeral range (32768 and up by
/// default), so that no outgoing connection, of this process or another, can take a port
/// between the check and `redis-server` binding it. That gap can be long: `not_started` and
/// `restart` bind a port seconds after it was chosen.
const PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A free loopback port (bound, then released for the server to take). Ports are handed out in
/// turn from a start that differs per process, so one test process never hands out the same
/// port twice.
pub fn free_port() -> u16 {
    static NEXT: std::sync::OnceLock<std::sync::atomic::AtomicU32> = std::sync::OnceLock::new();
    let span = u32::from(PORTS.end - PORTS.start);
    let next = NEXT.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        std::sync::atomic::AtomicU32::new((std::process::id() ^ nanos) % span)
    });
    for _ in 0..span {
        let port = PORTS.start + (next.fetch_add(1, Ordering::Relaxed) % span) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {PORTS:?}");
}

impl RedisServer {
    pub fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// Starts a server with extra `redis-server` arguments (e.g. cluster mode).
    pub fn start_with(extra: &[&str]) -> RedisServer {
        let mut server = RedisServer {
            port: free_port(),
            child: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            dir: tempfile::tempdir().expect("redis dir"),
        };
        server.launch();
        server
    }

    /// A port on which nothing listens yet; `launch` starts the server there later.
    pub fn not_started() -> RedisServer {
        RedisServer {
            port: free_port(),
            child: None,
            extra: Vec::new(),
            dir: tempfile::tempdir().expect("redis dir"),
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn launch(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (.ci/run installs it)");
        self.child = Some(child);
        self.wait_until_up();
    }

    /// Kills the server (SIGKILL, by pid): an abrupt outage, data lost.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    fn wait_until_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.cli(&["PING"]).is_some_and(|o| o.trim() == "PONG") {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on port {} did not come up", self.port);
    }

    /// Runs `redis-cli` against this server; `None` if it could not.
    pub fn cli(&self, args: &[&str]) -> Option<String> {
        redis_cli(self.port, args)
    }
}

/// What a server had been sent at one instant: client reads (`INFO stats`,
/// `total_reads_processed`) and calls per command (`INFO commandstats`), from one `INFO`.
pub struct Traffic {
    reads: u64,
    calls: std::collections::BTreeMap<String, u64>,
}

/// What a server was sent between two [`Traffic`] snapshots.
#[derive(Debug)]
pub struct TrafficDelta {
    /// Round trips: each is one write of its commands, which the server reads at once (a few
    /// KB on loopback), so one client read each.
    pub round_trips: u64,
    /// Calls per command (commands that scripts run included), without the snapshots' `INFO`.
    pub calls: std::collections::BTreeMap<String, u64>,
}

impl TrafficDelta {
    pub fn calls(&self, name: &str) -> u64 {
        self.calls.get(name).copied().unwrap_or(0)
    }
}

impl RedisServer {
    /// A [`Traffic`] snapshot. Between two, nothing else may talk to the server: a broker
    /// under test should run with [`quiet_state_checks`].
    pub fn traffic(&self) -> Traffic {
        let text = self
            .cli(&["INFO", "stats", "commandstats"])
            .unwrap_or_default();
        let reads = text
            .lines()
            .find_map(|l| l.strip_prefix("total_reads_processed:"))
            .and_then(|n| n.trim().parse().ok())
            .expect("INFO stats has total_reads_processed");
        let calls = text
            .lines()
            .filter_map(|line| {
                let rest = line.strip_prefix("cmdstat_")?;
                let (name, stats) = rest.split_once(':')?;
                let calls = stats.split(',').next()?.strip_prefix("calls=")?;
                Some((name.to_string(), calls.parse().ok()?))
            })
            .collect();
        Traffic { reads, calls }
    }
}

impl Traffic {
    /// What was sent since `before`, less the snapshots' own: the `INFO` read of this one, and
    /// the read that saw `before`'s `redis-cli` hang up (the server counts it as a read too).
    pub fn since(&self, before: &Traffic) -> TrafficDelta {
        let calls = self
            .calls
            .iter()
            .filter_map(|(name, calls)| {
                let delta = calls
                    - before.calls.get(name).copied().unwrap_or(0)
                    - u64::from(name == "info");
                (delta > 0).then(|| (name.clone(), delta))
            })
            .collect();
        TrafficDelta {
            round_trips: self.reads - before.reads - 2,
            calls,
        }
    }
}

/// Settings change: no periodic state check (its `SET NX` of the marker) during the test, so
/// that [`Traffic`] counts only what the exchanges send.
pub fn quiet_state_checks(s: &mut Settings) {
    s.store.redis.state_check_interval = Duration::from_secs(3600);
}

/// `MONITOR`'s client commands by name, e.g. `["SET", "GET", "HGETALL"]`.
pub fn command_names(sent: &[String]) -> Vec<String> {
    sent.iter()
        .map(|c| c.split('"').nth(1).unwrap_or_default().to_uppercase())
        .collect()
}

/// `MONITOR` on one server: what clients sent, one line per command (a script's own calls are
/// left out), i.e. one per round trip when nothing is pipelined.
pub struct Monitor {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    port: u16,
}

impl RedisServer {
    /// Starts `redis-cli MONITOR`; returns once the server has acknowledged it.
    pub fn monitor(&self) -> Monitor {
        use std::io::BufRead;
        let mut child = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "MONITOR"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-cli MONITOR");
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let ok = lines
            .recv_timeout(Duration::from_secs(5))
            .expect("MONITOR answers");
        assert_eq!(ok, "OK", "MONITOR started");
        Monitor {
            child,
            lines,
            port: self.port,
        }
    }
}

impl Monitor {
    /// Stops and returns the commands clients sent (`"EVALSHA" "…" …` lines, without the
    /// timestamp), leaving out `INFO`, `PING` and whatever `skip` matches.
    pub fn client_commands(mut self, skip: impl Fn(&str) -> bool) -> Vec<String> {
        // A marker: everything sent before it has been printed once it comes back.
        let marker = format!("ferry-monitor-end-{}", std::process::id());
        redis_cli(self.port, &["ECHO", &marker]);
        let mut seen = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            if line.contains(&marker) {
                break;
            }
            seen.push(line);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        seen.into_iter()
            .filter(|l| !l.contains("[0 lua]"))
            .filter_map(|l| l.split_once("] ").map(|(_, command)| command.to_string()))
            .filter(|c| !c.starts_with("\"INFO\"") && !c.starts_with("\"PING\""))
            .filter(|c| !skip(c))
            .collect()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn redis_cli(port: u16, args: &[&str]) -> Option<String> {
    redis_cli_with(&[], port, args)
}

/// `redis-cli [flags] -p PORT args...`; stdout when it succeeds.
fn redis_cli_with(flags: &[&str], port: u16, args: &[&str]) -> Option<String> {
    let out = Command::new("redis-cli")
        .args(flags)
        .args(["-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A Redis for tests that need no fault: `FERRY_TEST_REDIS_URL`, or a server of their own
/// (returned so that it lives as long as the test).
pub fn shared_redis() -> (String, Option<RedisServer>) {
    match std::env::var("FERRY_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => (url, None),
        _ => {
            let server = RedisServer::start();
            (server.url(), Some(server))
        }
    }
}

/// A key prefix no other test (or test run) uses.
pub fn unique_prefix() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "t{}-{}-{}:",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        uuid::Uuid::now_v7().simple()
    )
}

/// A `RedisStore` at `url` with `prefix` (a replica's store, for tests of the store itself).
pub fn store_at(url: &str, prefix: &str) -> ferry::store::RedisStore {
    store_with(url, prefix, false)
}

/// Two stores on `url` under one new prefix: two replicas of one deployment.
pub fn replicas_at(url: &str) -> (ferry::store::RedisStore, ferry::store::RedisStore) {
    let prefix = unique_prefix();
    (store_at(url, &prefix), store_at(url, &prefix))
}

/// [`store_at`], recording likely hits in the first round trip when `hits_in_one_round_trip`.
pub fn store_with(
    url: &str,
    prefix: &str,
    hits_in_one_round_trip: bool,
) -> ferry::store::RedisStore {
    ferry::store::RedisStore::new(&ferry::store::RedisSettings {
        url: Some(url.into()),
        prefix: prefix.into(),
        command_timeout: Duration::from_millis(1000),
        hits_in_one_round_trip,
        ..ferry::store::RedisSettings::default()
    })
    .unwrap()
}

/// Settings change: the Redis store at `url` with `prefix` and a short command timeout.
pub fn use_redis(url: &str, prefix: &str) -> impl FnOnce(&mut Settings) + Send + 'static {
    let (url, prefix) = (url.to_string(), prefix.to_string());
    move |s: &mut Settings| {
        s.store.backend = StoreBackend::Redis;
        s.store.redis.url = Some(url);
        s.store.redis.prefix = prefix;
        s.store.redis.command_timeout = Duration::from_millis(300);
        s.store.redis.connect_timeout = Duration::from_millis(300);
    }
}

/// A three-master Redis Cluster on free loopback ports, made with `redis-cli --cluster create`.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    pub fn start() -> RedisCluster {
        RedisCluster::start_with_replicas(0)
    }

    /// Three masters with `replicas` replicas each (`redis-cli --cluster create
    /// --cluster-replicas N`); a manual `CLUSTER FAILOVER` needs at least one.
    pub fn start_with_replicas(replicas: usize) -> RedisCluster {
        let nodes: Vec<RedisServer> = (0..3 * (1 + replicas))
            .map(|_| {
                let bus = free_port().to_string();
                RedisServer::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-port",
                    &bus,
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "2000",
                ])
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli runs");
        assert!(
            out.status.success(),
            "cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let cluster = RedisCluster { nodes };
        cluster.wait_until_ok();
        if replicas > 0 {
            cluster.wait_until_replicas_synced();
        }
        cluster
    }

    /// `redis+cluster://` with every node as a seed.
    pub fn url(&self) -> String {
        let seeds: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis+cluster://{}", seeds.join(","))
    }

    /// Waits until every node reports `cluster_state:ok`.
    pub fn wait_until_ok(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let ok = self.nodes.iter().all(|n| {
                n.cli(&["CLUSTER", "INFO"])
                    .is_some_and(|info| info.contains("cluster_state:ok"))
            });
            if ok {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the cluster did not reach cluster_state:ok");
    }

    /// The node serving `key`'s slot.
    pub fn node_for(&mut self, key: &str) -> &mut RedisServer {
        let index = self.index_for(key);
        &mut self.nodes[index]
    }

    fn index_for(&self, key: &str) -> usize {
        let slot: u16 = self.nodes[0]
            .cli(&["CLUSTER", "KEYSLOT", key])
            .and_then(|s| s.trim().parse().ok())
            .expect("CLUSTER KEYSLOT");
        self.nodes
            .iter()
            .position(|n| owns_slot(n, slot))
            .expect("a node owns the slot")
    }

    /// The nodes that serve slots now.
    pub fn masters(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|n| myself_line(n).is_some_and(|l| l.contains("master")))
            .map(|n| n.port)
            .collect()
    }

    /// Promotes a replica of the master on `master_port` with a manual `CLUSTER FAILOVER` (the
    /// replica first catches up with its master, so nothing acknowledged is lost) and waits
    /// until the old master has become its replica; returns the new master's port.
    pub fn failover(&self, master_port: u16) -> u16 {
        let master_id = node_id(&self.nodes[self.index_of(master_port)]);
        let replica = self
            .nodes
            .iter()
            .find(|n| myself_line(n).is_some_and(|l| replicates(&l, &master_id)))
            .expect("the master has a replica");
        let ok = replica.cli(&["CLUSTER", "FAILOVER"]).unwrap_or_default();
        assert_eq!(ok.trim(), "OK", "CLUSTER FAILOVER");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.masters().contains(&replica.port) || self.masters().contains(&master_port) {
            assert!(Instant::now() < deadline, "the failover did not complete");
            std::thread::sleep(Duration::from_millis(50));
        }
        self.wait_until_ok();
        replica.port
    }

    fn index_of(&self, port: u16) -> usize {
        self.nodes.iter().position(|n| n.port == port).unwrap()
    }

    /// Waits until every replica reports its link to the master up and in sync.
    fn wait_until_replicas_synced(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let synced = self.nodes.iter().all(|n| {
                let info = n.cli(&["INFO", "replication"]).unwrap_or_default();
                info.contains("role:master")
                    || (info.contains("master_link_status:up")
                        && info.contains("master_sync_in_progress:0"))
            });
            if synced {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the cluster's replicas did not sync");
    }

    /// Runs `redis-cli -c` (following redirects) against the first node.
    pub fn cli(&self, args: &[&str]) -> Option<String> {
        redis_cli_with(&["-c"], self.nodes[0].port, args)
    }
}

/// `node`'s own line of `CLUSTER NODES` (the one marked `myself`).
fn myself_line(node: &RedisServer) -> Option<String> {
    let nodes = node.cli(&["CLUSTER", "NODES"])?;
    nodes
        .lines()
        .find(|l| l.contains("myself"))
        .map(str::to_string)
}

/// Whether a `CLUSTER NODES` line is a replica of `master_id`: `id addr flags master-id ...`.
fn replicates(line: &str, master_id: &str) -> bool {
    let fields: Vec<&str> = line.split_whitespace().collect();
    fields.len() > 3 && fields[2].contains("slave") && fields[3] == master_id
}

fn node_id(node: &RedisServer) -> String {
    let line = myself_line(node).expect("CLUSTER NODES");
    line.split_whitespace().next().unwrap().to_string()
}

/// Whether `node` serves `slot` (from its `CLUSTER NODES` line marked `myself`).
fn owns_slot(node: &RedisServer, slot: u16) -> bool {
    let Some(me) = myself_line(node) else {
        return false;
    };
    me.split_whitespace().skip(8).any(|range| {
        let (lo, hi) = range.split_once('-').unwrap_or((range, range));
        match (lo.parse::<u16>(), hi.parse::<u16>()) {
            (Ok(lo), Ok(hi)) => (lo..=hi).contains(&slot),
            _ => false,
        }
    })
}

/// A private CA and a server certificate for 127.0.0.1, made with the `openssl` command.
pub struct TestCa {
    pub dir: tempfile::TempDir,
}

impl TestCa {
    pub fn new() -> TestCa {
        let dir = tempfile::tempdir().expect("ca dir");
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .output()
                .expect("openssl is installed (.ci/run installs it)");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        run(&[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=ferry-test-ca",
            ],
        ]
        .concat());
        run(&[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        ]
        .concat());
        std::fs::write(dir.path().join("ext.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ]);
        TestCa { dir }
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// A server that also listens with TLS; returns it and its TLS port.
    pub fn start_server(&self) -> (RedisServer, u16) {
        let tls_port = free_port();
        let server = RedisServer::start_with(&[
            "--tls-port",
            &tls_port.to_string(),
            "--tls-cert-file",
            &self.path("server.pem"),
            "--tls-key-file",
            &self.path("server.key"),
            "--tls-ca-cert-file",
            &self.path("ca.pem"),
            "--tls-auth-clients",
            "no",
        ]);
        (server, tls_port)
    }
}

/// A loopback TCP proxy in front of a server that can hold back, once, the first bytes a client
/// sends that contain a given command (`hold_next`): they reach the server `delay` late, and so
/// does everything sent after them on that connection, in order. What a command queued behind a
/// slow one looks like to a client whose reply timed out: the server still carries it out.
/// Runs on its own thread; stops with the test process.
pub struct HoldingProxy {
    pub port: u16,
    hold: std::sync::Arc<std::sync::Mutex<Option<&'static [u8]>>>,
}

impl HoldingProxy {
    pub fn start(upstream: u16, delay: Duration) -> HoldingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy port");
        let port = listener.local_addr().unwrap().port();
        let hold = std::sync::Arc::new(std::sync::Mutex::new(None));
        let held = hold.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("proxy runtime");
            runtime.block_on(async move {
                listener.set_nonblocking(true).unwrap();
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                while let Ok((client, _)) = listener.accept().await {
                    let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    else {
                        continue;
                    };
                    tokio::spawn(forward(client, server, held.clone(), delay));
                }
            });
        });
        HoldingProxy { port, hold }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Holds back the next bytes, on any connection, that contain `command` (e.g. `b"XADD"`).
    pub fn hold_next(&self, command: &'static [u8]) {
        *self.hold.lock().unwrap() = Some(command);
    }
}

async fn forward(
    client: tokio::net::TcpStream,
    server: tokio::net::TcpStream,
    hold: std::sync::Arc<std::sync::Mutex<Option<&'static [u8]>>>,
    delay: Duration,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
    });
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = client_read.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        let held = {
            let mut hold = hold.lock().unwrap();
            let hit = hold.is_some_and(|c| chunk.windows(c.len()).any(|w| w == c));
            if hit {
                *hold = None;
            }
            hit
        };
        if held {
            tokio::time::sleep(delay).await;
        }
        if server_write.write_all(chunk).await.is_err() {
            break;
        }
    }
}
