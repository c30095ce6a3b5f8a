//! The Redis store on a local three-master Redis Cluster that the test starts: the keys of one
//! exchange share a slot (the claim script would fail with CROSSSLOT otherwise), replicas share
//! state across nodes, and a node restart or a manual failover of every master costs at most a
//! few fast 503s (and, for the failover, loses no replay record).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::redis_server::{store_at, unique_prefix, use_redis, RedisCluster};
use common::*;
use ferry::store::{CacheKey, CachePut, CachedCredential, ClaimOutcome, JtiClaim, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_replay_cache_revocations_and_limits_across_cluster_nodes() {
    let cluster = RedisCluster::start();
    let prefix = unique_prefix();
    let (a, b) = (
        store_at(&cluster.url(), &prefix),
        store_at(&cluster.url(), &prefix),
    );
    let mut slots = std::collections::BTreeSet::new();
    // Many tags, so the keys spread over all three masters.
    for i in 0..30 {
        let slot = format!("tag{i}");
        let claim = JtiClaim {
            slot: slot.clone(),
            key: format!("iss|jti-{i}"),
            ttl: Duration::from_secs(60),
        };
        let key = CacheKey {
            slot: slot.clone(),
            id: format!("grant-{i}"),
        };
        let (fresh, none) = a.claim_and_lookup(Some(&claim), Some(&key)).await.unwrap();
        assert_eq!((fresh, none.is_none()), (ClaimOutcome::Fresh, true));
        let cred = CachedCredential {
            token: ferry::domain::Secret::new("jwt"),
            exchange_id: None,
            revocation_epoch: None,
            credential_id: format!("c{i}"),
            issued_at: 0,
            expires_at: 1,
        };
        let put = CachePut {
            key: &key,
            credential: &cred,
            ttl: Duration::from_secs(60),
        };
        a.commit(
            &ferry::audit::EventJson::new(&ferry::audit::AuditEvent::default()).unwrap(),
            Some(put),
        )
        .await
        .unwrap();
        let (replayed, hit) = b.claim_and_lookup(Some(&claim), Some(&key)).await.unwrap();
        assert_eq!(replayed, ClaimOutcome::Replayed);
        assert_eq!(hit.unwrap().credential_id, format!("c{i}"));
        a.revoke(&format!("c{i}"), Duration::from_secs(60))
            .await
            .unwrap();
        assert!(b.is_revoked(&format!("c{i}")).await.unwrap());
        slots.insert(slot);
    }
    let window = Duration::from_secs(30);
    assert!(a.rate_limit("k", 1, window).await.unwrap().allowed);
    assert!(!b.rate_limit("k", 1, window).await.unwrap().allowed);
    let len = cluster.cli(&["XLEN", &format!("{prefix}audit")]).unwrap();
    assert_eq!(len.trim(), "30");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchanges_on_a_cluster_survive_a_node_restart_with_fast_503s_at_most() {
    let mut cluster = RedisCluster::start();
    let prefix = unique_prefix();
    let app = spawn_app(Fixture::deploy().settings(use_redis(&cluster.url(), &prefix))).await;
    let first = app.token();
    let (status, body, _) = app.exchange_token(&first, None).await;
    assert_eq!(status, 200, "{body}");
    let replay = app.exchange_token(&first, None).await;
    assert_eq!(replay.0, 400, "replay refused on a cluster");

    // Restart the node that serves the audit stream, which every exchange writes to.
    let stream = format!("{prefix}audit");
    cluster.node_for(&stream).restart();
    cluster.wait_until_ok();
    let len = cluster.cli(&["XLEN", &stream]).unwrap();
    assert_eq!(len.trim(), "0", "the node restarted empty");
    until_granted(&app).await;
    for _ in 0..5 {
        let (status, body, _) = app.exchange_token(&app.token(), None).await;
        assert_eq!(status, 200, "after the restart: {body}");
    }
}

/// Exchanges until one is granted; every answer on the way is a fast 503.
async fn until_granted(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let started = Instant::now();
        let got = app.exchange_token(&app.token(), None).await;
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "no request hangs"
        );
        if got.0 == 200 {
            return;
        }
        assert_oauth_error(&got, 503, "temporarily_unavailable");
        assert!(
            Instant::now() < deadline,
            "service did not resume: {:?}",
            got.1
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_failover_of_every_master_keeps_replay_records_and_costs_only_fast_503s() {
    let cluster = Arc::new(RedisCluster::start_with_replicas(1));
    let prefix = unique_prefix();
    let app = spawn_app(Fixture::deploy().settings(use_redis(&cluster.url(), &prefix))).await;
    let first = app.token();
    let (status, body, _) = app.exchange_token(&first, None).await;
    assert_eq!(status, 200, "{body}");

    // Every slot moves to another node (the replica of its master) while requests keep landing.
    let moving = cluster.clone();
    let failovers = tokio::task::spawn_blocking(move || {
        let masters = moving.masters();
        assert_eq!(masters.len(), 3);
        for master in masters {
            moving.failover(master);
        }
    });
    let (mut granted, mut during) = (1, 0);
    while !failovers.is_finished() {
        let started = Instant::now();
        let got = app.exchange_token(&app.token(), None).await;
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "no request hangs"
        );
        during += 1;
        if got.0 == 200 {
            granted += 1;
        } else {
            assert_oauth_error(&got, 503, "temporarily_unavailable");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    failovers.await.unwrap();
    assert!(during > 0, "requests landed during the failovers");

    until_granted(&app).await;
    // The first token's jti record was written before the failover: the promoted replica has it.
    let replay = app.exchange_token(&first, None).await;
    assert_eq!(replay.0, 400, "replay still refused after the failover");
    let len: usize = cluster
        .cli(&["XLEN", &format!("{prefix}audit")])
        .and_then(|l| l.trim().parse().ok())
        .expect("XLEN");
    assert!(
        len > granted,
        "every granted exchange kept its stream entry ({len} <= {granted})"
    );
}

/// A seed node that accepts connections and never answers makes the first Cluster connection
/// take longer than one command may wait. The attempt goes on in the background, past the
/// timeout of the request that started it, so the replica connects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_seed_node_does_not_keep_the_replica_from_connecting() {
    let cluster = RedisCluster::start();
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_seed = format!("redis://127.0.0.1:{}", silent.local_addr().unwrap().port());
    let mut nodes = vec![silent_seed];
    nodes.extend(cluster.nodes.iter().map(|n| n.url()));
    let store = ferry::store::RedisStore::new(&ferry::store::RedisSettings {
        nodes,
        prefix: unique_prefix(),
        command_timeout: Duration::from_millis(300),
        connect_timeout: Duration::from_millis(300),
        ..ferry::store::RedisSettings::default()
    })
    .unwrap();
    let started = Instant::now();
    while store.ping().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never connected past the silent seed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(silent);
}
