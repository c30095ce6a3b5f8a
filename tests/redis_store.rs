//! `RedisStore` against a real `redis-server`: two store instances stand for two replicas, so
//! every assertion is about what one replica writes and the other sees.

mod common;

use std::time::Duration;

use common::redis_server::{shared_redis, unique_prefix, HoldingProxy, RedisServer};
use ferry::audit::{AuditEvent, EventJson};
use ferry::domain::Secret;
use ferry::store::{
    CacheKey, CachePut, CachedCredential, ClaimOutcome, JtiClaim, RedisSettings, RedisStore, Store,
};

fn settings(url: &str, prefix: &str) -> RedisSettings {
    RedisSettings {
        url: Some(url.into()),
        prefix: prefix.into(),
        command_timeout: Duration::from_millis(500),
        ..RedisSettings::default()
    }
}

/// Two replicas' stores on one Redis, sharing a prefix.
fn replicas(url: &str) -> (RedisStore, RedisStore, String) {
    let prefix = unique_prefix();
    (
        RedisStore::new(&settings(url, &prefix)).unwrap(),
        RedisStore::new(&settings(url, &prefix)).unwrap(),
        prefix,
    )
}

fn claim(jti: &str, ttl: Duration) -> JtiClaim {
    JtiClaim {
        slot: "s1".into(),
        key: format!("https://issuer|{jti}"),
        ttl,
    }
}

fn credential(id: &str) -> CachedCredential {
    CachedCredential {
        token: Secret::new("eyJ.fake.jwt"),
        exchange_id: None,
        revocation_epoch: None,
        credential_id: id.into(),
        issued_at: 1,
        expires_at: 2,
    }
}

#[tokio::test]
async fn a_jti_claimed_on_one_replica_is_replayed_on_another() {
    let (url, _server) = shared_redis();
    let (a, b, _) = replicas(&url);
    let c = claim("j1", Duration::from_secs(60));
    let (first, _) = a.claim_and_lookup(Some(&c), None).await.unwrap();
    let (second, _) = b.claim_and_lookup(Some(&c), None).await.unwrap();
    assert_eq!(first, ClaimOutcome::Fresh);
    assert_eq!(second, ClaimOutcome::Replayed);
    let other = claim("j2", Duration::from_secs(60));
    assert_eq!(
        b.claim_and_lookup(Some(&other), None).await.unwrap().0,
        ClaimOutcome::Fresh
    );
}

#[tokio::test]
async fn the_replay_record_lives_exactly_as_long_as_the_claim_asks() {
    let server = RedisServer::start();
    let (a, _, prefix) = replicas(&server.url());
    let c = claim("ttl", Duration::from_secs(3600 + 120));
    a.claim_and_lookup(Some(&c), None).await.unwrap();
    let keys = server.cli(&["KEYS", &format!("{prefix}*jti*")]).unwrap();
    let key = keys.lines().next().expect("a jti key");
    let pttl: i64 = server.cli(&["PTTL", key]).unwrap().trim().parse().unwrap();
    assert!(
        pttl > 3_719_000 && pttl <= 3_720_000,
        "the record must outlive exp + leeway + margin: {pttl} ms"
    );
}

#[tokio::test]
async fn a_credential_cached_by_one_replica_is_served_by_another_and_expires_with_it() {
    let (url, _server) = shared_redis();
    let (a, b, _) = replicas(&url);
    let key = CacheKey {
        slot: "s1".into(),
        id: "grant-1".into(),
    };
    let cred = credential("cred-1");
    let event = AuditEvent::default();
    let put = CachePut {
        key: &key,
        credential: &cred,
        ttl: Duration::from_millis(700),
    };
    a.commit(&EventJson::new(&event).unwrap(), Some(put))
        .await
        .unwrap();
    let (_, hit) = b.claim_and_lookup(None, Some(&key)).await.unwrap();
    let hit = hit.expect("B sees A's credential");
    assert_eq!(hit.credential_id, "cred-1");
    assert_eq!(hit.token.expose(), "eyJ.fake.jwt");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(b
        .claim_and_lookup(None, Some(&key))
        .await
        .unwrap()
        .1
        .is_none());
}

#[tokio::test]
async fn a_revocation_recorded_by_one_replica_is_seen_by_another_at_once() {
    let (url, _server) = shared_redis();
    let (a, b, _) = replicas(&url);
    assert!(!b.is_revoked("cred-9").await.unwrap());
    a.revoke("cred-9", Duration::from_secs(60)).await.unwrap();
    assert!(b.is_revoked("cred-9").await.unwrap());
    assert!(!b.is_revoked("cred-10").await.unwrap());
}

#[tokio::test]
async fn the_rate_limit_is_shared_by_replicas() {
    let (url, _server) = shared_redis();
    let (a, b, _) = replicas(&url);
    let window = Duration::from_secs(30);
    assert!(a.rate_limit("client-1", 2, window).await.unwrap().allowed);
    assert!(b.rate_limit("client-1", 2, window).await.unwrap().allowed);
    let refused = a.rate_limit("client-1", 2, window).await.unwrap();
    assert!(!refused.allowed);
    assert!(refused.retry_after > Duration::from_secs(25) && refused.retry_after <= window);
    assert!(b.rate_limit("client-2", 2, window).await.unwrap().allowed);
}

#[tokio::test]
async fn audit_events_land_in_the_stream_with_its_maxlen() {
    let server = RedisServer::start();
    let prefix = unique_prefix();
    let mut s = settings(&server.url(), &prefix);
    s.audit_stream_maxlen = 5;
    let store = RedisStore::new(&s).unwrap();
    for i in 0..300 {
        let event = AuditEvent {
            exchange_id: format!("x{i}"),
            ..AuditEvent::default()
        };
        store
            .commit(&EventJson::new(&event).unwrap(), None)
            .await
            .unwrap();
    }
    let stream = format!("{prefix}audit");
    let len: usize = server
        .cli(&["XLEN", &stream])
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        (5..300).contains(&len),
        "MAXLEN ~ 5 trims the stream: {len}"
    );
    let last = server
        .cli(&["XREVRANGE", &stream, "+", "-", "COUNT", "1"])
        .unwrap();
    assert!(last.contains("\"exchange_id\":\"x299\""), "{last}");
}

#[tokio::test]
async fn an_unreachable_redis_is_unavailable_within_the_timeout() {
    let server = RedisServer::not_started();
    let store = RedisStore::new(&settings(&server.url(), "x:")).unwrap();
    let started = std::time::Instant::now();
    assert!(store.ping().await.is_err());
    assert!(store
        .claim_and_lookup(Some(&claim("j", Duration::from_secs(5))), None)
        .await
        .is_err());
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_flushed_redis_is_noticed_and_counted() {
    let server = RedisServer::start();
    let (a, b, _) = replicas(&server.url());
    a.ping().await.unwrap();
    a.ping().await.unwrap();
    b.ping().await.unwrap();
    assert_eq!((a.state_losses(), b.state_losses()), (0, 0));
    server.cli(&["FLUSHALL"]).unwrap();
    a.ping().await.unwrap();
    assert_eq!(a.state_losses(), 1);
    // `a` set the marker anew before `b` looked: `b` notices all the same.
    b.ping().await.unwrap();
    assert_eq!(b.state_losses(), 1, "every replica counts the loss");
    a.ping().await.unwrap();
    b.ping().await.unwrap();
    assert_eq!((a.state_losses(), b.state_losses()), (1, 1), "once");
}

#[test]
fn a_malformed_redis_url_is_a_configuration_error() {
    assert!(RedisStore::new(&settings("http://127.0.0.1:1", "x:")).is_err());
}

#[tokio::test]
async fn rediss_connects_over_tls_to_a_server_of_the_configured_ca_only() {
    let ca = common::redis_server::TestCa::new();
    let (_server, tls_port) = ca.start_server();
    let url = format!("rediss://127.0.0.1:{tls_port}");
    let prefix = unique_prefix();
    let mut trusted = settings(&url, &prefix);
    trusted.tls_ca_file = Some(ca.path("ca.pem").into());
    let (a, b) = (
        RedisStore::new(&trusted).unwrap(),
        RedisStore::new(&trusted).unwrap(),
    );
    let c = claim("tls", Duration::from_secs(60));
    assert_eq!(
        a.claim_and_lookup(Some(&c), None).await.unwrap().0,
        ClaimOutcome::Fresh
    );
    assert_eq!(
        b.claim_and_lookup(Some(&c), None).await.unwrap().0,
        ClaimOutcome::Replayed
    );

    let untrusted = RedisStore::new(&settings(&url, &prefix)).unwrap();
    assert!(
        untrusted.ping().await.is_err(),
        "a certificate from an unknown CA is refused"
    );
}

#[tokio::test]
async fn without_the_audit_stream_a_commit_only_caches() {
    let server = RedisServer::start();
    let prefix = unique_prefix();
    let mut s = settings(&server.url(), &prefix);
    s.audit_stream = false;
    let store = RedisStore::new(&s).unwrap();
    assert!(!store.keeps_audit_stream());
    let key = CacheKey {
        slot: "s".into(),
        id: "g".into(),
    };
    let cred = credential("c");
    let put = CachePut {
        key: &key,
        credential: &cred,
        ttl: Duration::from_secs(60),
    };
    store
        .commit(&EventJson::new(&AuditEvent::default()).unwrap(), Some(put))
        .await
        .unwrap();
    assert!(store
        .claim_and_lookup(None, Some(&key))
        .await
        .unwrap()
        .1
        .is_some());
    let len = server.cli(&["XLEN", &format!("{prefix}audit")]).unwrap();
    assert_eq!(len.trim(), "0");
}

/// Connections to Redis stay bounded: one per thread that uses the store (in `ferry serve`, one
/// per HTTP worker), reused for every later command on that thread — never one per request.
#[test]
fn each_thread_reuses_one_connection_and_threads_do_not_share_one() {
    use std::sync::{Arc, Barrier};
    const THREADS: usize = 3;
    let server = RedisServer::start();
    let store = Arc::new(RedisStore::new(&settings(&server.url(), "conn:")).unwrap());
    // Every thread runs two bursts of commands; the connections are counted after each.
    let (burst_done, next_burst) = (
        Arc::new(Barrier::new(THREADS + 1)),
        Arc::new(Barrier::new(THREADS + 1)),
    );
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (store, done, next) = (store.clone(), burst_done.clone(), next_burst.clone());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                for burst in 0..2 {
                    rt.block_on(async {
                        for i in 0..20 {
                            let c = claim(&format!("t{t}-{burst}-{i}"), Duration::from_secs(5));
                            store.claim_and_lookup(Some(&c), None).await.unwrap();
                        }
                    });
                    done.wait();
                    next.wait();
                }
            })
        })
        .collect();
    let clients = || {
        let list = server.cli(&["CLIENT", "LIST"]).unwrap_or_default();
        // Not counting `redis-cli` itself.
        list.lines().filter(|l| !l.contains("cmd=client")).count()
    };
    for burst in 0..2 {
        burst_done.wait();
        assert_eq!(
            clients(),
            THREADS,
            "burst {burst}: one connection per thread"
        );
        next_burst.wait();
    }
    handles.into_iter().for_each(|h| h.join().unwrap());
}

/// A connection whose server stops answering without closing it (every command times out; no
/// reset comes) is replaced after the stall window: the store recovers without a restart.
#[tokio::test(flavor = "current_thread")]
async fn a_connection_that_stops_answering_is_replaced() {
    let server = RedisServer::start();
    let proxy = HoldingProxy::start(server.port, Duration::from_secs(3600));
    let store = RedisStore::new(&RedisSettings {
        command_timeout: Duration::from_millis(200),
        connect_timeout: Duration::from_millis(200),
        ..settings(&proxy.url(), &unique_prefix())
    })
    .unwrap();
    store.ping().await.expect("control: through the proxy");
    // From here on, this connection's commands go nowhere; a new connection is served.
    proxy.hold_next(b"SET");
    let stalled = std::time::Instant::now();
    assert!(store.ping().await.is_err(), "the held command times out");
    loop {
        if store.ping().await.is_ok() {
            break;
        }
        assert!(
            stalled.elapsed() < Duration::from_secs(10),
            "the stalled connection was never replaced"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Not before the stall window (2 × 200 ms, or 2 × 200 ms + 1 s): a slow server keeps it.
    assert!(
        stalled.elapsed() >= Duration::from_millis(1400),
        "{:?}",
        stalled.elapsed()
    );
}
