//! What the store adds to one exchange: the two store calls of an exchange (`claim_and_lookup`,
//! then `commit` with a credential to cache) on the in-memory store and on a real Redis, one
//! at a time (latency) and 64 in flight (throughput of one multiplexed connection).
//!
//! `cargo bench --bench store`. Starts its own `redis-server` on a free port (stopped at the
//! end) unless `FERRY_BENCH_REDIS_URL` names one.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ferry::audit::{AuditEvent, EventJson};
use ferry::domain::Secret;
use ferry::store::{
    CacheKey, CachePut, CachedCredential, JtiClaim, MemoryStore, RedisSettings, RedisStore, Store,
};

struct Server(Option<Child>);

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn redis() -> (String, Server) {
    if let Ok(url) = std::env::var("FERRY_BENCH_REDIS_URL") {
        return (url, Server(None));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server");
    std::thread::sleep(Duration::from_millis(300));
    (format!("redis://127.0.0.1:{port}"), Server(Some(child)))
}

/// One exchange's store work: claim a fresh jti and look up the grant, then append the audit
/// event and cache the new credential.
async fn exchange(store: &dyn Store, i: u64, event: &AuditEvent, cred: &CachedCredential) {
    let slot = format!("{:012x}", i % 4096);
    let claim = JtiClaim {
        slot: slot.clone(),
        key: format!("iss|{i}-{}", uuid::Uuid::now_v7()),
        ttl: Duration::from_secs(600),
    };
    let key = CacheKey {
        slot,
        id: format!("grant-{i}"),
    };
    store
        .claim_and_lookup(Some(&claim), Some(&key))
        .await
        .unwrap();
    let put = CachePut {
        key: &key,
        credential: cred,
        ttl: Duration::from_secs(600),
    };
    // Serialized per exchange, as the exchange service does once for the file and the stream.
    let event = EventJson::new(event).unwrap();
    store.commit(&event, Some(put)).await.unwrap();
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    // The Redis connection's background tasks are spawned on the current runtime.
    let _guard = rt.enter();
    let (url, _server) = redis();
    let settings = RedisSettings {
        url: Some(url),
        prefix: format!("bench{}:", std::process::id()),
        audit_stream_maxlen: 10_000,
        ..RedisSettings::default()
    };
    let stores: Vec<(&str, Arc<dyn Store>)> = vec![
        ("memory", Arc::new(MemoryStore::new())),
        ("redis", Arc::new(RedisStore::new(&settings).unwrap())),
    ];
    let event = AuditEvent {
        exchange_id: "0190f1e2-aaaa-7bbb-8ccc-000000000000".into(),
        reason: "granted".into(),
        subject: Some("repo:acme/api:ref:refs/heads/main".into()),
        ..AuditEvent::default()
    };
    let cred = CachedCredential {
        token: Secret::new("x".repeat(600)),
        exchange_id: None,
        revocation_epoch: None,
        credential_id: "0190f1e2bbbb7ccc8ddd000000000000".into(),
        issued_at: 0,
        expires_at: 900,
    };
    let mut group = c.benchmark_group("store_exchange");
    for (name, store) in &stores {
        let mut i = 0u64;
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("{name}/sequential"), |b| {
            b.iter(|| {
                i += 1;
                rt.block_on(exchange(store.as_ref(), i, &event, &cred))
            })
        });
        group.throughput(Throughput::Elements(64));
        group.bench_function(format!("{name}/64_in_flight"), |b| {
            b.iter(|| {
                i += 64;
                rt.block_on(async {
                    let all = (0..64).map(|k| exchange(store.as_ref(), i + k, &event, &cred));
                    futures_util::future::join_all(all).await
                })
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = store;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = benches
}
criterion_main!(store);
