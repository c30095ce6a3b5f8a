//! Credential lifecycle across two real `ferry serve` replicas on one Redis: every revocation
//! kind made at one replica holds at the other at once, kill switches block and expire on both,
//! rate limits are one budget, and opaque credentials are never in clear in Redis or in either
//! replica's audit file. Also: the lifecycle checks keep an exchange at two round trips.

mod common;

use std::time::Duration;

use common::lifecycle::*;
use common::redis_server::{
    command_names, quiet_state_checks, shared_redis, unique_prefix, use_redis, RedisServer,
};
use common::replica::{start_replica, wait_ready, Replica};
use common::*;

const PUBLIC_URL: &str = "https://ferry.replicas.test";
const DEPLOY_SUBJECT: &str = "repo:acme/api:ref:refs/heads/main";

/// Two replicas (A, B) with the lifecycle policies on `redis_url`.
struct Pair {
    issuer: DevIssuer,
    a: Replica,
    b: Replica,
    _dirs: Vec<tempfile::TempDir>,
}

impl Pair {
    async fn start(redis_url: &str, prefix: &str) -> Pair {
        let issuer = DevIssuer::start("127.0.0.1:0");
        let policies = tempfile::tempdir().unwrap();
        let dir = policies.path();
        std::fs::write(
            dir.join("issuers.yaml"),
            fixture::issuers_yaml(&issuer.url()),
        )
        .unwrap();
        for (name, yaml) in policy_files("2/min") {
            std::fs::write(dir.join(format!("{name}.yaml")), yaml).unwrap();
        }
        let keys = tempfile::tempdir().unwrap();
        let key_file = keys.path().join("signing-key.pem");
        let env = [("FERRY_CREDENTIAL__AUDIENCE", BROKER_AUDIENCE)];
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        // A first: it generates the signing key both replicas use.
        let a = start_replica(dir, &key_file, PUBLIC_URL, redis_url, prefix, &env);
        wait_ready(&client, &a).await;
        let b = start_replica(dir, &key_file, PUBLIC_URL, redis_url, prefix, &env);
        wait_ready(&client, &b).await;
        Pair {
            issuer,
            a,
            b,
            _dirs: vec![policies, keys],
        }
    }

    fn brokers(&self) -> (Broker, Broker) {
        (Broker::new(&self.a.base_url), Broker::new(&self.b.base_url))
    }
}

fn jti(credential: &str) -> String {
    jwt_part(credential, 1)["jti"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_revocation_kind_made_at_one_replica_holds_at_the_other() {
    let (url, _server) = shared_redis();
    let pair = Pair::start(&url, &unique_prefix()).await;
    let (a, b) = pair.brokers();
    let issuer = &pair.issuer;
    let admin = a.operator(issuer).await;
    let rs = b.introspector(issuer).await;

    // By credential id, at A; seen at B.
    let c1 = a.credential(issuer, DEPLOY_SUBJECT, DEPLOY_AUDIENCE).await;
    assert!(
        b.is_active(&rs, &c1).await,
        "control: B introspects A's credential"
    );
    assert_eq!(
        a.admin_revoke(&admin, "credential", &jti(&c1), None)
            .await
            .0,
        201
    );
    assert!(!b.is_active(&rs, &c1).await);

    // By exchange id, at A, of a credential B minted.
    let c2 = b.credential(issuer, OPAQUE_SUBJECT, DEPLOY_AUDIENCE).await;
    let (_, body, _) = b.introspect(Some(&rs), &c2).await;
    assert_eq!(body["active"], true);
    let c3 = b.credential(issuer, DEPLOY_SUBJECT, DEPLOY_AUDIENCE).await;
    let exchange_id = jwt_part(&c3, 1)["ferry"]["exchange_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        a.admin_revoke(&admin, "exchange", &exchange_id, None)
            .await
            .0,
        201
    );
    assert!(!a.is_active(&rs, &c3).await);
    assert!(!b.is_active(&rs, &c3).await);

    // By the holder (RFC 7009), at B; seen at A.
    assert_eq!(b.revoke(&c2).await, 200);
    assert!(!a.is_active(&rs, &c2).await);

    // A subject kill switch set at A blocks B, then expires.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        a.admin_revoke(&admin, "subject", "repo:acme/api:*", Some("2s"))
            .await
            .0,
        201
    );
    let refused = b.exchange_as(issuer, DEPLOY_SUBJECT, DEPLOY_AUDIENCE).await;
    assert_oauth_error(&refused, 400, "invalid_request");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    b.credential(issuer, DEPLOY_SUBJECT, DEPLOY_AUDIENCE).await;

    // A policy kill switch set at B blocks A until A lifts it.
    assert_eq!(
        b.admin_revoke(&admin, "policy", "opaque-deploy", Some("1h"))
            .await
            .0,
        201
    );
    let refused = a.exchange_as(issuer, OPAQUE_SUBJECT, DEPLOY_AUDIENCE).await;
    assert_oauth_error(&refused, 400, "invalid_request");
    // Past the second the switch was made in, which an unblock keeps blocked.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        a.admin_unblock(&admin, "policy", "opaque-deploy").await.0,
        200
    );
    b.credential(issuer, OPAQUE_SUBJECT, DEPLOY_AUDIENCE).await;

    let reasons: Vec<String> = [&pair.a, &pair.b]
        .iter()
        .flat_map(|r| {
            r.audit_text()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .map(|l| serde_json::from_str::<serde_json::Value>(&l).unwrap())
        .filter(|e| e["reason"] == "kill_switch")
        .map(|e| e["revocation"]["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        reasons,
        ["policy", "subject"],
        "each refusal names its switch"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_are_one_budget_across_replicas_with_a_correct_retry_after() {
    let (url, _server) = shared_redis();
    let pair = Pair::start(&url, &unique_prefix()).await;
    let (a, b) = pair.brokers();
    let issuer = &pair.issuer;
    a.credential(issuer, LIMITED_SUBJECT, DEPLOY_AUDIENCE).await;
    b.credential(issuer, LIMITED_SUBJECT, DEPLOY_AUDIENCE).await;
    for broker in [&a, &b] {
        let refused = broker
            .exchange_as(issuer, LIMITED_SUBJECT, DEPLOY_AUDIENCE)
            .await;
        assert_oauth_error(&refused, 429, "temporarily_unavailable");
        let retry: u64 = refused.2["retry-after"].to_str().unwrap().parse().unwrap();
        assert!(
            (29..=30).contains(&retry),
            "2/min: next slot in 30 s, got {retry}"
        );
    }
    let other = "repo:acme/limited:ref:refs/heads/other";
    a.credential(issuer, other, DEPLOY_AUDIENCE).await;
}

/// Every key under `prefix` with its contents (strings, hashes, streams), as text.
fn redis_contents(server: &RedisServer, prefix: &str) -> String {
    let keys = server
        .cli(&["--scan", "--pattern", &format!("{prefix}*")])
        .unwrap();
    let mut out = String::new();
    for key in keys.lines().filter(|k| !k.is_empty()) {
        let kind = server.cli(&["TYPE", key]).unwrap();
        let value = match kind.trim() {
            "string" => server.cli(&["GET", key]),
            "hash" => server.cli(&["HGETALL", key]),
            "stream" => server.cli(&["XRANGE", key, "-", "+"]),
            other => panic!("unexpected key type {other} for {key}"),
        };
        out.push_str(&format!("{key}\n{}\n", value.unwrap()));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opaque_credentials_are_never_in_clear_in_redis_or_the_audit_files() {
    let server = RedisServer::start();
    let prefix = unique_prefix();
    let pair = Pair::start(&server.url(), &prefix).await;
    let (a, b) = pair.brokers();
    let rs = b.introspector(&pair.issuer).await;
    let opaque = a
        .credential(&pair.issuer, OPAQUE_SUBJECT, DEPLOY_AUDIENCE)
        .await;
    assert!(opaque.starts_with("fy_"));
    assert!(
        b.is_active(&rs, &opaque).await,
        "B finds A's opaque credential"
    );

    let contents = redis_contents(&server, &prefix);
    let digest = ferry::domain::sha256_hex(opaque.as_bytes());
    assert!(
        contents.contains(&format!("{prefix}{{opaque:{digest}}}")),
        "stored under its SHA-256: {contents}"
    );
    assert!(contents.contains(DEPLOY_SUBJECT) || contents.contains(OPAQUE_SUBJECT));
    for text in [contents, pair.a.audit_text(), pair.b.audit_text()] {
        assert!(!text.contains(&opaque), "no opaque credential in clear");
        assert!(!text.contains(&opaque[3..]), "not even without its prefix");
    }
}

#[tokio::test]
async fn lifecycle_checks_keep_an_exchange_at_two_round_trips() {
    let server = RedisServer::start();
    let app = spawn_app(
        lifecycle_fixture("100/min")
            .settings(use_redis(&server.url(), &unique_prefix()))
            .settings(quiet_state_checks),
    )
    .await;
    let broker = Broker::new(&app.base_url);
    let admin = broker.operator(&app.issuer).await;
    // A live kill switch on another subject, so the list the script reads is not empty.
    assert_eq!(
        broker
            .admin_revoke(&admin, "subject", "repo:evil/*", Some("1h"))
            .await
            .0,
        201
    );
    broker
        .credential(&app.issuer, LIMITED_SUBJECT, DEPLOY_AUDIENCE)
        .await;

    let before = server.traffic();
    broker
        .credential(&app.issuer, LIMITED_SUBJECT, DEPLOY_AUDIENCE)
        .await;
    let sent = server.traffic().since(&before);
    assert_eq!(sent.round_trips, 2, "{sent:?}");
    assert_eq!(sent.calls("evalsha"), 1, "the first round trip: {sent:?}");
    for inside in ["hgetall", "time"] {
        assert!(
            sent.calls(inside) >= 1,
            "{inside} runs inside the first script"
        );
    }
    for outside in ["hset", "exists", "incr"] {
        assert_eq!(sent.calls(outside), 0, "{outside}");
    }

    // An opaque credential's record is written with the audit stream entry: two as well (the
    // first one also loads the script).
    let introspector = broker.introspector(&app.issuer).await;
    broker
        .credential(&app.issuer, OPAQUE_SUBJECT, DEPLOY_AUDIENCE)
        .await;
    let monitor = server.monitor();
    let before = server.traffic();
    let opaque = broker
        .credential(&app.issuer, OPAQUE_SUBJECT, DEPLOY_AUDIENCE)
        .await;
    let trips = server.traffic().since(&before).round_trips;
    // What the broker sent: the plain first round trip (no rate limit on this policy, nothing
    // to look up in the cache), then the record written with the audit stream entry.
    let sent = monitor.client_commands(|_| false);
    assert_eq!(
        command_names(&sent),
        ["SET", "HGETALL", "HMGET", "XADD", "SET"],
        "opaque, command by command: {sent:#?}"
    );
    assert_eq!(trips, 2, "opaque: two round trips");
    assert!(
        broker.is_active(&introspector, &opaque).await,
        "its record was stored"
    );
}

#[test]
fn a_bootstrap_admin_credential_is_recorded_on_the_shared_audit_stream() {
    let server = RedisServer::start();
    let prefix = unique_prefix();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("signing-key.pem");
    let ferry = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(args)
            .env("FERRY_STORE__REDIS__PREFIX", &prefix)
            .output()
            .unwrap()
    };
    let generated = ferry(&["keys", "generate", "--out", key.to_str().unwrap()]);
    assert!(generated.status.success());
    let data_dir = dir.path().to_str().unwrap();
    let url = server.url();
    let args = [
        "admin",
        "token",
        "--data-dir",
        data_dir,
        "--public-url",
        PUBLIC_URL,
        "--redis",
        &url,
    ];
    let out = ferry(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap();
    let id = jti(token.trim());
    let stream = server
        .cli(&["XRANGE", &format!("{prefix}audit"), "-", "+"])
        .unwrap();
    assert!(
        stream.contains("admin_token") && stream.contains(&id),
        "{stream}"
    );
    assert!(
        !stream.contains(token.trim()),
        "the credential itself is not recorded"
    );
    server.cli(&["SHUTDOWN", "NOSAVE"]);
    let down = ferry(&args);
    assert_eq!(down.status.code(), Some(2), "no stream, no credential");
    assert!(down.stdout.is_empty());
}
