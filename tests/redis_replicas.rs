//! Two real `ferry serve` processes (the built binary) on one Redis behave as one broker: a token
//! exchanged on A is refused on B, a credential cached by A is served by B, both replicas'
//! events reach the shared audit stream, and `ferry audit tail` prints them.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::redis_server::{shared_redis, unique_prefix, RedisCluster};
use common::replica::{start_replica, wait_ready, Replica};
use common::*;

/// What both replicas present as their public URL (the load balancer's, in production).
const PUBLIC_URL: &str = "https://ferry.replicas.test";

async fn exchange(
    client: &reqwest::Client,
    replica: &Replica,
    token: &str,
) -> (u16, serde_json::Value) {
    let response = client
        .post(format!("{}/token", replica.base_url))
        .header("content-type", rfc8693::FORM_CONTENT_TYPE)
        .body(rfc8693::exchange_form(token, DEPLOY_AUDIENCE, None))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (
        status,
        serde_json::from_slice(&response.bytes().await.unwrap()).unwrap(),
    )
}

/// The records of a replica's audit file.
fn file_records(replica: &Replica) -> Vec<serde_json::Value> {
    replica
        .audit_text()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .collect()
}

fn exchange_id(event: &serde_json::Value) -> String {
    event["exchange_id"].as_str().unwrap().to_string()
}

/// `ferry audit tail ARGS` on `redis_url`, given in the environment as `ferry serve` reads it
/// (a password stays off the command line), and its output lines as they come.
fn spawn_tail(redis_url: &str, args: &[&str]) -> (std::process::Child, mpsc::Receiver<String>) {
    let (child, stdout, _stderr) = spawn_tail_with_stderr(redis_url, args);
    (child, stdout)
}

/// [`spawn_tail`], with the lines of its standard error too.
fn spawn_tail_with_stderr(
    redis_url: &str,
    args: &[&str],
) -> (
    std::process::Child,
    mpsc::Receiver<String>,
    mpsc::Receiver<String>,
) {
    spawn_tail_in(&[("FERRY_STORE__REDIS__URL", redis_url)], args)
}

/// `ferry audit tail ARGS` with `env` (and no other `FERRY_*` variable): its child, and the
/// lines of its standard output and standard error as they come.
fn spawn_tail_in(
    env: &[(&str, &str)],
    args: &[&str],
) -> (
    std::process::Child,
    mpsc::Receiver<String>,
    mpsc::Receiver<String>,
) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferry"));
    for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("FERRY_")) {
        command.env_remove(name);
    }
    let mut child = command
        .envs(env.iter().copied())
        .args(["audit", "tail"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = |pipe: Box<dyn std::io::Read + Send>| {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        rx
    };
    let stdout = lines(Box::new(child.stdout.take().unwrap()));
    let stderr = lines(Box::new(child.stderr.take().unwrap()));
    (child, stdout, stderr)
}

/// Runs `ferry audit tail --json --from-start` until it printed `n` lines.
fn tail_lines(redis_url: &str, prefix: &str, n: usize) -> Vec<serde_json::Value> {
    let (mut child, rx) = spawn_tail(redis_url, &["--prefix", prefix, "--json", "--from-start"]);
    let lines: Vec<_> = (0..n)
        .map(|_| {
            rx.recv_timeout(Duration::from_secs(10))
                .expect("tail prints events")
        })
        .map(|l| serde_json::from_str(&l).expect("a JSON event per line"))
        .collect();
    let _ = child.kill();
    let _ = child.wait();
    lines
}

/// Two replicas on `redis_url`: replay refused across them, the cache shared. Returns the
/// exchange ids each replica recorded in its own JSONL file.
/// Returns the records of A's and B's audit files.
async fn two_replicas_scenario(
    redis_url: &str,
    prefix: &str,
) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
    let issuer = DevIssuer::start("127.0.0.1:0");
    let policies = tempfile::tempdir().unwrap();
    std::fs::write(
        policies.path().join("issuers.yaml"),
        fixture::issuers_yaml(&issuer.url()),
    )
    .unwrap();
    std::fs::write(policies.path().join("demo-deploy.yaml"), DEPLOY_POLICY).unwrap();
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("signing-key.pem");
    let client = reqwest::Client::builder().no_proxy().build().unwrap();

    let replica = || {
        start_replica(
            policies.path(),
            &key_file,
            PUBLIC_URL,
            redis_url,
            prefix,
            &[],
        )
    };
    // A first, so that it generates the signing key both replicas use.
    let a = replica();
    wait_ready(&client, &a).await;
    let b = replica();
    wait_ready(&client, &b).await;

    let claims = Claims::github(&issuer.url(), PUBLIC_URL);
    let first = issuer.sign(&claims, Alg::RS256, None);
    let (status, minted) = exchange(&client, &a, &first).await;
    assert_eq!(status, 200, "{minted}");

    let (status, replayed) = exchange(&client, &b, &first).await;
    assert_eq!(status, 400, "replayed on the other replica: {replayed}");
    assert_eq!(replayed["error"], "invalid_request");

    let again = issuer.sign(&claims.clone().jti("second-token"), Alg::RS256, None);
    let (status, reused) = exchange(&client, &b, &again).await;
    assert_eq!(status, 200, "{reused}");
    assert_eq!(
        reused["access_token"], minted["access_token"],
        "B serves the credential A cached"
    );
    let records = (file_records(&a), file_records(&b));

    // Revoked (through the store, as the admin API does): a replica that never saw the grant
    // does not serve it either (one server: the revocation epoch moved on; a Cluster: the
    // entry was deleted), and mints a new one.
    let revoked = jwt_part(minted["access_token"].as_str().unwrap(), 1)["jti"]
        .as_str()
        .unwrap()
        .to_string();
    let now = ferry::domain::unix_now();
    let revocation = ferry::store::Revocation {
        kind: ferry::store::RevocationKind::Credential,
        value: revoked,
        created_at: now,
        block_until: now + 600,
        keep_until: now + 600,
        issued_through: None,
        reason: None,
        by: None,
    };
    let store = common::redis_server::store_at(redis_url, prefix);
    ferry::store::Store::put_revocation(&store, &revocation)
        .await
        .unwrap();
    let c = replica();
    wait_ready(&client, &c).await;
    let third = issuer.sign(&claims.clone().jti("third-token"), Alg::RS256, None);
    let (status, fresh) = exchange(&client, &c, &third).await;
    assert_eq!(status, 200, "{fresh}");
    assert!(
        fresh["access_token"] != minted["access_token"],
        "C never serves the revoked credential"
    );
    records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replica_processes_on_one_redis_behave_as_one_broker() {
    let (redis_url, _server) = shared_redis();
    let prefix = unique_prefix();
    let (from_a, from_b) = two_replicas_scenario(&redis_url, &prefix).await;
    assert_eq!((from_a.len(), from_b.len()), (1, 2));
    // From the start: A's, B's two, and the third replica's.
    let stream = tail_lines(&redis_url, &prefix, 4);
    for record in from_a.iter().chain(&from_b) {
        let id = exchange_id(record);
        let entry = stream.iter().find(|e| exchange_id(e) == id);
        let entry = entry.unwrap_or_else(|| panic!("event {id} is in the shared stream"));
        // The stream holds the event the file chained: the same members, without the links.
        let mut event = record.clone();
        for link in ["seq", "prev_hash", "hash"] {
            event.as_object_mut().unwrap().remove(link);
        }
        assert_eq!(entry, &event, "the stream and the file record one event");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replica_processes_on_a_redis_cluster_behave_as_one_broker() {
    let cluster = RedisCluster::start();
    let prefix = unique_prefix();
    let (from_a, from_b) = two_replicas_scenario(&cluster.url(), &prefix).await;
    let stream = cluster
        .cli(&["XRANGE", &format!("{prefix}audit"), "-", "+"])
        .unwrap();
    for id in from_a.iter().chain(&from_b).map(exchange_id) {
        assert!(
            stream.contains(id.as_str()),
            "event {id} is in the shared stream"
        );
    }
}

/// `ferry audit tail` without `--from-start` starts at the live end, and an event appended while
/// it reconnects (or between two reads) is printed: it follows from the last id it knew, never
/// from a newer end.
#[test]
fn audit_tail_prints_what_was_appended_while_it_reconnected() {
    let server = common::redis_server::RedisServer::start();
    let prefix = unique_prefix();
    let stream = format!("{prefix}audit");
    let add = |id: &str| append_event(&server, &stream, id);
    add("before");
    let (mut child, rx) = spawn_tail(&server.url(), &["--json", "--prefix", &prefix]);
    // Until the tail is blocked in its read, then cut its connection and append at once.
    until_blocked_in_a_read(&server);
    server.cli(&["CLIENT", "KILL", "TYPE", "normal"]).unwrap();
    add("while-reconnecting");
    let line = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the event appended while the tail reconnected");
    let _ = child.kill();
    let _ = child.wait();
    let event: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(event["exchange_id"], "while-reconnecting", "{line}");
}

/// `ferry audit tail --json` prints an event whose strings hold characters JSON allows raw (C1,
/// bidi controls) with those escaped, as the same JSON value.
#[test]
fn audit_tail_json_prints_hostile_text_escaped() {
    let server = common::redis_server::RedisServer::start();
    let prefix = unique_prefix();
    let subject = "repo:acme/api\u{9b}2J\u{202e}";
    let event = serde_json::json!({ "exchange_id": "x", "subject": subject }).to_string();
    assert!(event.contains('\u{9b}'), "serde_json leaves C1 raw");
    server
        .cli(&["XADD", &format!("{prefix}audit"), "*", "event", &event])
        .unwrap();
    let (mut child, rx) = spawn_tail(
        &server.url(),
        &["--json", "--from-start", "--prefix", &prefix],
    );
    let line = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("tail prints the event");
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        !line.contains('\u{9b}') && !line.contains('\u{202e}'),
        "{line:?}"
    );
    let printed: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(printed["subject"], subject, "{line}");
}

/// Waits until a client of `server` is blocked in `XREAD` (the tail, waiting for events).
fn until_blocked_in_a_read(server: &common::redis_server::RedisServer) {
    let started = std::time::Instant::now();
    while !server
        .cli(&["CLIENT", "LIST"])
        .unwrap_or_default()
        .contains("cmd=xread")
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "tail never read"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A tail that was held up while the stream was trimmed says how many events it never saw, then
/// goes on with what is left. A tail started before the stream exists follows it once it does.
#[test]
fn audit_tail_says_how_many_events_were_trimmed_before_it_read_them() {
    let server = common::redis_server::RedisServer::start();
    let prefix = unique_prefix();
    let stream = format!("{prefix}audit");
    let add = |n: usize| {
        let event = format!(r#"{{"exchange_id":"e{n}"}}"#);
        // Exact trimming to three entries, where a replica trims with `~`.
        server
            .cli(&["XADD", &stream, "MAXLEN", "3", "*", "event", &event])
            .unwrap();
    };
    let (child, stdout, stderr) =
        spawn_tail_with_stderr(&server.url(), &["--json", "--prefix", &prefix]);
    until_blocked_in_a_read(&server);
    add(1);
    let first: serde_json::Value =
        serde_json::from_str(&stdout.recv_timeout(Duration::from_secs(10)).unwrap()).unwrap();
    assert_eq!(
        first["exchange_id"], "e1",
        "the stream did not exist when the tail began"
    );
    until_blocked_in_a_read(&server);
    // Continued and stopped for good however the test ends (a panic while it is stopped
    // would leave it behind).
    struct Stopped(std::process::Child);
    impl Drop for Stopped {
        fn drop(&mut self) {
            let _ = Command::new("kill")
                .args(["-CONT", &self.0.id().to_string()])
                .status();
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let child = Stopped(child);
    let pid = child.0.id().to_string();
    let signal = |s: &str| {
        assert!(Command::new("kill")
            .args([s, &pid])
            .status()
            .unwrap()
            .success());
    };
    signal("-STOP");
    // e2 is handed to the stopped tail's blocked read; e3..e11 come after, and trimming to
    // three leaves e9..e11: e2..e8 are gone before the tail can print them.
    for n in 2..=11 {
        add(n);
    }
    signal("-CONT");
    let printed: Vec<String> = (0..3)
        .map(|_| {
            let line = stdout.recv_timeout(Duration::from_secs(10)).unwrap();
            serde_json::from_str::<serde_json::Value>(&line).unwrap()["exchange_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(printed, ["e9", "e10", "e11"]);
    let warning = stderr
        .recv_timeout(Duration::from_secs(10))
        .expect("a warning about the gap");
    drop(child);
    assert!(
        warning.contains("7 event(s) were trimmed"),
        "e2..e8 never printed: {warning}"
    );
}

/// `ferry audit tail` finds the Redis where `ferry serve` does: in the config file (under either
/// name of the URL, with its prefix), and says so plainly when nothing names one.
#[test]
fn audit_tail_reads_the_redis_settings_serve_reads() {
    let server = common::redis_server::RedisServer::start();
    let prefix = unique_prefix();
    server
        .cli(&[
            "XADD",
            &format!("{prefix}audit"),
            "*",
            "event",
            r#"{"exchange_id":"from-file"}"#,
        ])
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ferry.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\nredis_url = \"{}\"\n[store.redis]\nprefix = \"{prefix}\"\n",
            server.url()
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let (mut child, stdout, _) =
        spawn_tail_in(&[], &["--config", config, "--json", "--from-start"]);
    let line = stdout
        .recv_timeout(Duration::from_secs(10))
        .expect("the event");
    let _ = child.kill();
    let _ = child.wait();
    assert!(line.contains("from-file"), "{line}");

    let (mut child, _, stderr) = spawn_tail_in(&[], &["--json"]);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(2));
    let said: Vec<String> = stderr.iter().collect();
    assert!(said.concat().contains("no Redis named"), "{said:?}");
}

/// Under an ACL that refuses `XINFO`, the tail still follows the stream from its live end
/// (found with `XREVRANGE`) and says that it cannot check for gaps.
#[test]
fn audit_tail_follows_without_xinfo_and_says_it_cannot_check_for_gaps() {
    let server = common::redis_server::RedisServer::start();
    let prefix = unique_prefix();
    let stream = format!("{prefix}audit");
    server
        .cli(&[
            "ACL", "SETUSER", "tail", "on", ">tail-pw", "~*", "+@all", "-xinfo",
        ])
        .unwrap();
    let add = |id: &str| append_event(&server, &stream, id);
    add("before");
    let url = server.url().replace("redis://", "redis://tail:tail-pw@");
    let (child, stdout, stderr) = spawn_tail_with_stderr(&url, &["--json", "--prefix", &prefix]);
    let said = stderr
        .recv_timeout(Duration::from_secs(10))
        .expect("a warning");
    until_blocked_in_a_read(&server);
    add("after");
    let line = stdout
        .recv_timeout(Duration::from_secs(10))
        .expect("the new event");
    let mut child = child;
    let _ = child.kill();
    let _ = child.wait();
    assert!(said.contains("cannot check for trimmed events"), "{said}");
    // The tail is gone: its standard error ends, with nothing more to say.
    let again: Vec<String> = stderr.iter().collect();
    assert!(again.is_empty(), "said once: {again:?}");
    assert!(line.contains("\"after\""), "from the live end: {line}");
}

/// `XADD stream * event {"exchange_id": id}`: an audit entry, as a replica appends one.
fn append_event(server: &common::redis_server::RedisServer, stream: &str, id: &str) {
    let event = format!(r#"{{"exchange_id":"{id}"}}"#);
    server.cli(&["XADD", stream, "*", "event", &event]).unwrap();
}
