//! `/token` on the Redis store against a real `redis-server` that each test starts and stops:
//! the round-trip budget, and the faults (down at startup, slow, killed mid-load, restarted).

mod common;

use std::time::{Duration, Instant};

use common::redis_server::{
    command_names, quiet_state_checks, unique_prefix, use_redis, HoldingProxy, RedisServer,
    TrafficDelta,
};
use common::*;
use serde_json::Value;

async fn spawn_on(server: &RedisServer) -> TestApp {
    spawn_app(Fixture::deploy().settings(use_redis(&server.url(), &unique_prefix()))).await
}

/// One exchange of `claims`, counting what it sent to Redis.
async fn exchange_counting(
    server: &RedisServer,
    app: &TestApp,
    claims: &common::Claims,
    label: &str,
) -> TrafficDelta {
    let before = server.traffic();
    let (status, body, _) = app.exchange_token(&app.sign(claims), None).await;
    assert_eq!(status, 200, "{label}: {body}");
    let sent = server.traffic().since(&before);
    // The plain first round trip: SET NX of the jti, GET of the cache entry, HGETALL of the
    // kill switches, HMGET of the revocation epoch; on a likely hit under
    // hits_in_one_round_trip, the script instead, which runs the same and appends the hit
    // with XADD. The commit: XADD (+ SET of a new credential).
    let known = ["evalsha", "set", "get", "xadd", "hgetall", "hmget"];
    assert!(
        sent.calls.keys().all(|n| known.contains(&n.as_str())),
        "{label}: nothing but the first round trip and the commit: {sent:?}"
    );
    sent
}

/// The last audit stream entry and the last JSONL event, without the chain members: the same
/// event, whichever round trip appended it to the stream.
fn last_stream_and_file_events(
    server: &RedisServer,
    app: &TestApp,
    prefix: &str,
) -> (Value, Value) {
    let raw = server
        .cli(&[
            "XREVRANGE",
            &format!("{prefix}audit"),
            "+",
            "-",
            "COUNT",
            "1",
        ])
        .unwrap();
    let json = raw
        .lines()
        .find(|l| l.starts_with('{'))
        .expect("a stream entry");
    let streamed: Value = serde_json::from_str(json).unwrap();
    let mut filed = app.last_audit_event();
    for chain in ["seq", "prev_hash", "hash"] {
        filed.as_object_mut().unwrap().remove(chain);
    }
    (streamed, filed)
}

/// The file's last two records: an `allow` and the record that corrects it, when a credential
/// was withheld.
fn last_two_file_records(app: &TestApp) -> (Value, Value) {
    let mut events = app.audit_events();
    let withheld = events.pop();
    match (events.pop(), withheld) {
        (Some(allowed), Some(withheld)) => (allowed, withheld),
        _ => panic!("two records: {events:?}"),
    }
}

/// A miss, then two hits of one grant, counting round trips: a miss costs two; a hit two
/// (plain commands), or one with `hits_in_one_round_trip` (the script appends its event).
async fn miss_then_hits(hits_in_one_round_trip: bool) -> u64 {
    let server = RedisServer::start();
    let prefix = unique_prefix();
    let settings = use_redis(&server.url(), &prefix);
    let fixture = Fixture::deploy()
        .settings(settings)
        .settings(quiet_state_checks)
        .settings(move |s| s.store.redis.hits_in_one_round_trip = hits_in_one_round_trip);
    let app = spawn_app(fixture).await;
    // Warm up: connection made, the script loaded (a miss, then a likely hit, which takes it).
    for _ in 0..2 {
        let warm = app.sign(&app.claims().set("run_id", "1"));
        assert_eq!(app.exchange_token(&warm, None).await.0, 200);
    }
    assert_eq!(app.last_audit_event()["cache"], "hit");
    let grant = || app.claims().set("run_id", "424242");

    let monitor = server.monitor();
    let miss = exchange_counting(&server, &app, &grant(), "miss").await;
    let sent = monitor.client_commands(|_| false);
    assert_eq!(miss.round_trips, 2, "{miss:?}");
    assert_eq!(app.last_audit_event()["cache"], "miss");
    // In this order: the cached record is read before the epoch that vouches for it.
    assert_eq!(
        command_names(&sent),
        ["SET", "GET", "HGETALL", "HMGET", "XADD", "SET"],
        "a miss, command by command: {sent:#?}"
    );
    let mut hit_trips = Vec::new();
    for round in 0..2 {
        let label = format!("hit {round}");
        let hit = exchange_counting(&server, &app, &grant(), &label).await;
        let expected_calls = match hits_in_one_round_trip {
            // The script's own calls count as calls too.
            true => vec![
                ("evalsha", 1),
                ("get", 1),
                ("hgetall", 1),
                ("hmget", 1),
                ("set", 1),
                ("xadd", 1),
            ],
            false => vec![
                ("get", 1),
                ("hgetall", 1),
                ("hmget", 1),
                ("set", 1),
                ("xadd", 1),
            ],
        };
        let calls: Vec<(&str, u64)> = hit.calls.iter().map(|(n, c)| (n.as_str(), *c)).collect();
        assert_eq!(calls, expected_calls, "{label}: {hit:?}");
        hit_trips.push(hit.round_trips);
        let (streamed, filed) = last_stream_and_file_events(&server, &app, &prefix);
        assert_eq!(filed["cache"], "hit", "{label}");
        assert_eq!(streamed, filed, "{label}: the streamed event is the file's");
    }
    assert_eq!(hit_trips[0], hit_trips[1]);
    let streamed = server.cli(&["XLEN", &format!("{prefix}audit")]).unwrap();
    assert_eq!(
        streamed.trim(),
        "5",
        "one stream entry per exchange (two warming up), never two"
    );
    hit_trips[0]
}

#[tokio::test]
async fn a_miss_costs_two_round_trips_to_redis_and_a_hit_two_plain_ones() {
    assert_eq!(miss_then_hits(false).await, 2);
}

#[tokio::test]
async fn with_hits_in_one_round_trip_a_hit_costs_one() {
    assert_eq!(miss_then_hits(true).await, 1);
}

#[tokio::test]
async fn a_commit_whose_stream_append_fails_releases_nothing_caches_nothing_and_says_so() {
    let server = RedisServer::start();
    let prefix = unique_prefix();
    let app = spawn_app(Fixture::deploy().settings(use_redis(&server.url(), &prefix))).await;
    // The stream's key holding a string: the commit's XADD fails when the transaction runs
    // (WRONGTYPE), after its SET was queued beside it.
    let stream = format!("{prefix}audit");
    server.cli(&["SET", &stream, "not a stream"]).unwrap();
    let grant = || app.claims().set("run_id", "5150");
    let (status, body, _) = app.exchange_token(&app.sign(&grant()), None).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "temporarily_unavailable");
    assert!(body.get("access_token").is_none());
    let cached = server.cli(&["KEYS", &format!("{prefix}*:cred:*")]).unwrap();
    assert!(cached.trim().is_empty(), "the SET was undone: {cached}");
    // The file took the allow before the stream refused it; the record after it says the
    // credential was withheld, for the same exchange and credential.
    let (allowed, withheld) = &last_two_file_records(&app);
    assert_eq!(allowed["decision"], "allow", "{allowed}");
    assert_eq!(withheld["decision"], "error", "{withheld}");
    assert_eq!(withheld["reason"], "audit_unavailable");
    assert_eq!(withheld["exchange_id"], allowed["exchange_id"]);
    assert_eq!(withheld["credential_id"], allowed["credential_id"]);
    assert_eq!(withheld["cache"], "miss", "{withheld}");
    assert!(withheld.get("scopes_granted").is_none(), "{withheld}");

    server.cli(&["DEL", &stream]).unwrap();
    let (status, _, _) = app.exchange_token(&app.sign(&grant()), None).await;
    assert_eq!(status, 200);
    assert_eq!(
        app.last_audit_event()["cache"],
        "miss",
        "the credential of the failed commit is never served"
    );
    let cached = server.cli(&["KEYS", &format!("{prefix}*:cred:*")]).unwrap();
    assert_eq!(
        cached.trim().lines().count(),
        1,
        "control: a commit caches: {cached}"
    );

    // A hit whose append fails: its correction keeps `cache: hit` (the credential it would
    // have served was delivered by the exchange that minted it).
    server.cli(&["SET", &stream, "not a stream"]).unwrap();
    let (status, _, _) = app.exchange_token(&app.sign(&grant()), None).await;
    assert_eq!(status, 503);
    let (allowed, withheld) = &last_two_file_records(&app);
    assert_eq!(
        (&allowed["decision"], &allowed["cache"]),
        (&"allow".into(), &"hit".into())
    );
    assert_eq!(
        (&withheld["decision"], &withheld["cache"]),
        (&"error".into(), &"hit".into())
    );
    assert_eq!(withheld["exchange_id"], allowed["exchange_id"]);
}

#[tokio::test]
async fn on_a_hit_that_is_refused_or_revoked_the_broker_decides_and_records_it_once() {
    let server = RedisServer::start();
    let prefix = unique_prefix();
    let app = spawn_app(
        Fixture::deploy()
            .settings(use_redis(&server.url(), &prefix))
            .settings(quiet_state_checks),
    )
    .await;
    let grant = || app.claims().set("run_id", "77");
    let (_, first, _) = app.exchange_token(&app.sign(&grant()), None).await;
    let (status, hit, _) = app.exchange_token(&app.sign(&grant()), None).await;
    assert_eq!(status, 200);
    assert_eq!(
        hit["access_token"], first["access_token"],
        "served from the cache"
    );
    let xlen = || server.cli(&["XLEN", &format!("{prefix}audit")]).unwrap();
    assert_eq!(xlen().trim(), "2");

    // The cached credential revoked (through the store, as the admin API does): the next
    // exchange of the grant is not a recorded hit, gets a new credential, one event.
    let store = common::redis_server::store_at(&server.url(), &prefix);
    let revoked = jwt_part(first["access_token"].as_str().unwrap(), 1)["jti"]
        .as_str()
        .unwrap()
        .to_string();
    let now = ferry::domain::unix_now();
    ferry::store::Store::put_revocation(
        &store,
        &ferry::store::Revocation {
            kind: ferry::store::RevocationKind::Credential,
            value: revoked.clone(),
            created_at: now,
            block_until: now + 600,
            keep_until: now + 600,
            issued_through: None,
            reason: None,
            by: None,
        },
    )
    .await
    .unwrap();
    let sent = exchange_counting(&server, &app, &grant(), "revoked").await;
    assert_eq!(sent.round_trips, 2, "{sent:?}");
    let event = app.last_audit_event();
    assert_eq!(event["cache"], "miss");
    assert_ne!(event["credential_id"], revoked.as_str());
    assert_eq!(xlen().trim(), "3", "one event for that exchange");

    // A replayed token on a cached grant: refused, one deny event, nothing from the script.
    let token = app.sign(&grant());
    assert_eq!(app.exchange_token(&token, None).await.0, 200);
    let (status, _, _) = app.exchange_token(&token, None).await;
    assert_eq!(status, 400);
    let (streamed, filed) = last_stream_and_file_events(&server, &app, &prefix);
    assert_eq!(filed["reason"], "token_replayed");
    assert_eq!(streamed, filed);
    assert_eq!(xlen().trim(), "5");
}

/// Rule 9 on Redis for a token signed with an absurd `exp`: its TTL in milliseconds is past
/// `u64::MAX`, which a plain cast would have truncated to a `PX` of 384 ms. It is clamped
/// instead, so the token stays single-use.
#[tokio::test]
async fn a_token_with_an_absurd_exp_stays_single_use_on_redis() {
    let server = RedisServer::start();
    let app = spawn_on(&server).await;
    let exp = now() - 120 + 18_446_744_073_709_552;
    let token = app.sign(&app.claims().set("exp", exp));
    let (status, body, _) = app.exchange_token(&token, None).await;
    assert_eq!(status, 200, "{body}");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (_, reason) = assert_token_refused(&app, &token).await;
    assert_eq!(reason, "token_replayed");
}

#[tokio::test]
async fn redis_down_at_startup_makes_the_broker_unready_and_it_recovers_without_a_restart() {
    let mut server = RedisServer::not_started();
    let app = spawn_on(&server).await;

    let (status, ready) = app.get_json("/readyz").await;
    assert_eq!(status, 503);
    assert!(
        ready["store"].as_str().unwrap().contains("redis"),
        "{ready}"
    );
    let got = app.exchange_token(&app.token(), None).await;
    assert_oauth_error(&got, 503, "temporarily_unavailable");

    server.launch();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _) = app.get_json("/readyz").await;
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the broker never became ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body, _) = app.exchange_token(&app.token(), None).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_slow_redis_fails_requests_fast_with_503() {
    let server = RedisServer::start_with(&["--enable-debug-command", "yes"]);
    let app = spawn_on(&server).await;
    assert_eq!(app.exchange_token(&app.token(), None).await.0, 200);

    let port = server.port;
    let sleeper =
        std::thread::spawn(move || common::redis_server::redis_cli(port, &["DEBUG", "SLEEP", "3"]));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let got = app.exchange_token(&app.token(), None).await;
    let took = started.elapsed();
    assert_oauth_error(&got, 503, "temporarily_unavailable");
    assert!(
        took < Duration::from_millis(1500),
        "503 after the 300 ms timeout, took {took:?}"
    );
    sleeper.join().unwrap();

    let (status, body, _) = app.exchange_token(&app.token(), None).await;
    assert_eq!(status, 200, "service resumes: {body}");
}

/// The stream's records of `exchange_id`, oldest first.
fn streamed_records(server: &RedisServer, prefix: &str, exchange_id: &str) -> Vec<Value> {
    let raw = server
        .cli(&["XRANGE", &format!("{prefix}audit"), "-", "+"])
        .unwrap();
    raw.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["exchange_id"] == exchange_id)
        .collect()
}

/// A broker on a Redis reached through a [`HoldingProxy`] that holds a command back for a
/// second, after one exchange that went through.
async fn behind_a_holding_proxy() -> (RedisServer, HoldingProxy, String, TestApp) {
    let server = RedisServer::start();
    let proxy = HoldingProxy::start(server.port, Duration::from_secs(1));
    let prefix = unique_prefix();
    let app = spawn_app(Fixture::deploy().settings(use_redis(&proxy.url(), &prefix))).await;
    assert_eq!(
        app.exchange_token(&app.token(), None).await.0,
        200,
        "control"
    );
    (server, proxy, prefix, app)
}

/// A commit whose reply timed out may still be carried out: here the server gets it a second
/// late, as it would queued behind a slow command. The client got 503 and no credential; the
/// stream, which then holds the `allow`, gets the correction after it, as the file does.
#[tokio::test]
async fn a_commit_carried_out_after_its_timeout_is_corrected_in_the_stream_too() {
    let (server, proxy, prefix, app) = behind_a_holding_proxy().await;

    proxy.hold_next(b"XADD");
    let got = app.exchange_token(&app.token(), None).await;
    assert_oauth_error(&got, 503, "temporarily_unavailable");
    let (allowed, withheld) = &last_two_file_records(&app);
    assert_eq!(
        (&allowed["decision"], &withheld["decision"]),
        (&"allow".into(), &"error".into())
    );
    let id = withheld["exchange_id"].as_str().unwrap();
    assert_eq!(allowed["exchange_id"], id);

    let deadline = Instant::now() + Duration::from_secs(10);
    let streamed = loop {
        let streamed = streamed_records(&server, &prefix, id);
        if streamed.len() >= 2 || Instant::now() > deadline {
            break streamed;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let decisions: Vec<&Value> = streamed.iter().map(|e| &e["decision"]).collect();
    assert_eq!(
        decisions,
        ["allow", "error"],
        "the late allow, then its correction: {streamed:?}"
    );
    assert_eq!(streamed[1]["reason"], withheld["reason"]);
    assert_eq!(streamed[1]["credential_id"], allowed["credential_id"]);

    let (status, body, _) = app.exchange_token(&app.token(), None).await;
    assert_eq!(status, 200, "service resumes: {body}");
}

/// A client that hangs up mid-exchange does not cut the exchange short: it runs to its end, so
/// its audit record (here the `allow` and the correction of a commit that timed out) is whole.
#[tokio::test]
async fn an_exchange_whose_client_hangs_up_is_still_recorded_to_its_end() {
    let (_server, proxy, _prefix, app) = behind_a_holding_proxy().await;
    let before = app.audit_events().len();

    proxy.hold_next(b"XADD");
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let hung_up = impatient
        .post(format!("{}/token", app.base_url))
        .header("content-type", rfc8693::FORM_CONTENT_TYPE)
        .body(rfc8693::exchange_form(&app.token(), DEPLOY_AUDIENCE, None))
        .send()
        .await;
    assert!(hung_up.is_err(), "the client gave up before the answer");
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.audit_events().len() < before + 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (allowed, withheld) = &last_two_file_records(&app);
    assert_eq!(
        allowed["exchange_id"], withheld["exchange_id"],
        "{allowed} {withheld}"
    );
    assert_eq!(
        (&allowed["decision"], &withheld["decision"]),
        (&"allow".into(), &"error".into())
    );
}

#[tokio::test]
async fn redis_killed_mid_load_issues_no_unrecorded_credential_and_service_resumes() {
    let mut server = RedisServer::start();
    let app = spawn_on(&server).await;
    let tokens: Vec<String> = (0..120).map(|_| app.token()).collect();

    let mut requests = tokio::task::JoinSet::new();
    for (i, token) in tokens.into_iter().enumerate() {
        let (client, url) = (app.client.clone(), format!("{}/token", app.base_url));
        requests.spawn(async move {
            tokio::time::sleep(Duration::from_millis(i as u64 * 5)).await;
            let body = rfc8693::exchange_form(&token, DEPLOY_AUDIENCE, None);
            let started = Instant::now();
            let response = client
                .post(url)
                .header("content-type", rfc8693::FORM_CONTENT_TYPE)
                .body(body)
                .send()
                .await
                .expect("an answer, not a dropped connection");
            let status = response.status().as_u16();
            let body: serde_json::Value =
                serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
            (status, body, started.elapsed())
        });
    }
    tokio::time::sleep(Duration::from_millis(250)).await;
    server.stop();

    let mut issued = Vec::new();
    let mut unavailable = 0;
    while let Some(done) = requests.join_next().await {
        let (status, body, took) = done.unwrap();
        assert!(took < Duration::from_secs(3), "a request hung for {took:?}");
        match status {
            200 => issued.push(body["access_token"].as_str().unwrap().to_string()),
            503 => {
                assert_eq!(body["error"], "temporarily_unavailable");
                unavailable += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(
        !issued.is_empty() && unavailable > 0,
        "{} issued, {unavailable} refused",
        issued.len()
    );

    // Every credential that left was recorded as an allow event first.
    let recorded: std::collections::HashSet<String> = app
        .audit_events()
        .into_iter()
        .filter(|e| e["decision"] == "allow")
        .filter_map(|e| e["credential_id"].as_str().map(String::from))
        .collect();
    for credential in &issued {
        let id = jwt_part(credential, 1)["jti"].as_str().unwrap().to_string();
        assert!(
            recorded.contains(&id),
            "credential {id} left without an allow event"
        );
    }

    server.launch();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body, _) = app.exchange_token(&app.token(), None).await;
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "service did not resume: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A Redis that may evict keys (and replay records with them) is flagged on `/metrics` at each
/// state check (here `/readyz`), and no longer once its policy is changed to `noeviction`.
#[tokio::test]
async fn a_redis_that_may_evict_keys_is_flagged_on_metrics() {
    let server =
        RedisServer::start_with(&["--maxmemory", "64mb", "--maxmemory-policy", "volatile-lru"]);
    let app = spawn_on(&server).await;
    let flag = || async {
        assert_eq!(app.get_json("/readyz").await.0, 200);
        let (_, metrics, _) = app.get("/metrics").await;
        let line = metrics
            .lines()
            .find(|l| l.starts_with("ferry_store_may_evict "))
            .unwrap_or_default()
            .to_string();
        line
    };
    assert_eq!(flag().await, "ferry_store_may_evict 1");
    server
        .cli(&["CONFIG", "SET", "maxmemory-policy", "noeviction"])
        .unwrap();
    assert_eq!(flag().await, "ferry_store_may_evict 0");
    server
        .cli(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"])
        .unwrap();
    assert_eq!(flag().await, "ferry_store_may_evict 1");
    server.cli(&["CONFIG", "SET", "maxmemory", "0"]).unwrap();
    assert_eq!(
        flag().await,
        "ferry_store_may_evict 0",
        "no limit, nothing to evict for"
    );
}

#[tokio::test]
async fn a_redis_restarted_empty_is_visible_in_metrics() {
    let mut server = RedisServer::start();
    let app = spawn_on(&server).await;
    assert_eq!(app.get_json("/readyz").await.0, 200);
    server.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        app.get_json("/readyz").await;
        let (_, metrics, _) = app.get("/metrics").await;
        if metrics.contains("ferry_store_state_lost_total 1") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "state loss not counted:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A SIEM shipper reads the stream with a consumer group, as the README shows: every exchange,
/// allowed or denied, is delivered once to the group, as the JSON the file holds, and is gone
/// from the pending list once acknowledged.
#[tokio::test]
async fn a_siem_shipper_reads_every_event_once_with_a_consumer_group() {
    let server = RedisServer::start();
    let prefix = unique_prefix();
    let stream = format!("{prefix}audit");
    let cli = |args: &[&str]| server.cli(args).unwrap();
    // The shipper is there first, reading only what comes after it.
    cli(&["XGROUP", "CREATE", &stream, "siem", "$", "MKSTREAM"]);
    let app = spawn_app(Fixture::deploy().settings(use_redis(&server.url(), &prefix))).await;
    assert_eq!(app.exchange_token(&app.token(), None).await.0, 200);
    let refused = app.sign(&app.claims().set("ref", "refs/heads/dev"));
    assert_eq!(app.exchange_token(&refused, None).await.0, 400);

    let read = |consumer: &str| {
        cli(&[
            "XREADGROUP",
            "GROUP",
            "siem",
            consumer,
            "COUNT",
            "10",
            "STREAMS",
            &stream,
            ">",
        ])
    };
    let delivered = read("shipper-1");
    let events: Vec<Value> = delivered
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids = |events: &[Value]| -> Vec<(String, String)> {
        events
            .iter()
            .map(|e| (e["exchange_id"].to_string(), e["decision"].to_string()))
            .collect()
    };
    assert_eq!(ids(&events), ids(&app.audit_events()), "{delivered}");
    assert_eq!(events[1]["decision"], "deny");
    assert!(
        read("shipper-2").lines().all(|l| !l.starts_with('{')),
        "each entry goes to one consumer of the group"
    );
    let entry_ids: Vec<&str> = delivered
        .lines()
        .filter(|l| {
            l.split_once('-')
                .is_some_and(|(ms, seq)| ms.parse::<u64>().is_ok() && seq.parse::<u64>().is_ok())
        })
        .collect();
    assert_eq!(entry_ids.len(), 2, "{delivered}");
    let mut ack = vec!["XACK", stream.as_str(), "siem"];
    ack.extend(&entry_ids);
    assert_eq!(cli(&ack).trim(), "2");
    assert!(cli(&["XPENDING", &stream, "siem"]).starts_with('0'));
}
