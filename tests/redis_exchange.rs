//! `/token` on the Redis store against a real `redis-server` that each test starts and stops:
//! the round-trip budget, and the faults (down at startup, slow, killed mid-load, restarted).

mod common;

use std::time::{Duration, Instant};

use common::redis_server::{unique_prefix, use_redis, RedisServer};
use common::*;

async fn spawn_on(server: &RedisServer) -> TestApp {
    spawn_app(Fixture::deploy().settings(use_redis(&server.url(), &unique_prefix()))).await
}

/// Commands that reached Redis between two `INFO commandstats` snapshots, minus the
/// `INFO` that took the second snapshot.
fn commands_since(
    server: &RedisServer,
    before: &std::collections::BTreeMap<String, u64>,
) -> Vec<(String, u64)> {
    let after = server.command_calls();
    after
        .into_iter()
        .filter_map(|(name, calls)| {
            let delta = calls - before.get(&name).copied().unwrap_or(0) - u64::from(name == "info");
            (delta > 0).then_some((name, delta))
        })
        .collect()
}

#[tokio::test]
async fn an_exchange_costs_at_most_two_round_trips_to_redis() {
    let server = RedisServer::start();
    let app = spawn_on(&server).await;
    // Warm up: scripts loaded, connection made.
    assert_eq!(app.exchange_token(&app.token(), None).await.0, 200);

    for (label, claims) in [
        ("cache miss", app.claims().set("run_id", "424242")),
        ("cache hit", app.claims().set("run_id", "424242")),
    ] {
        let before = server.command_calls();
        let (status, body, _) = app.exchange_token(&app.sign(&claims), None).await;
        assert_eq!(status, 200, "{label}: {body}");
        let commands = commands_since(&server, &before);
        let scripts: u64 = commands
            .iter()
            .filter(|(n, _)| n == "evalsha" || n == "eval")
            .map(|(_, c)| c)
            .sum();
        // Every other command counted here ran inside those scripts (commandstats counts
        // the commands a script calls): HGETALL of the revocations + SET NX + GET in the first,
        // XADD (+ SET) in the second.
        let nested: Vec<_> = commands
            .iter()
            .filter(|(n, _)| !["evalsha", "eval"].contains(&n.as_str()))
            .collect();
        assert_eq!(scripts, 2, "{label}: two round trips, got {commands:?}");
        assert!(
            nested
                .iter()
                .all(|(n, _)| ["set", "get", "xadd", "hgetall"].contains(&n.as_str())),
            "{label}: nothing outside the two scripts: {commands:?}"
        );
    }
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
