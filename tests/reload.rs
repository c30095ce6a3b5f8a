//! Hot reload: a changed policy directory is loaded, checked and swapped in atomically; a broken
//! one is rejected while the last good set keeps serving requests (readyz and the metric say
//! so); `SIGHUP` reloads too. Waits poll `/readyz` with a deadline, never a fixed sleep.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::*;
use serde_json::Value;

const BROKEN: &str = "issuer: no-such-issuer\ngrant: { audience: a, scopes: [x], ttl: 1m }\n";

async fn readyz(app: &TestApp) -> Value {
    app.get_json("/readyz").await.1
}

/// Polls `/readyz` until `done` holds (at most 20 s; the reload itself takes milliseconds).
async fn wait_for(app: &TestApp, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..400 {
        let r = readyz(app).await;
        if done(&r) {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("readyz never got there: {}", readyz(app).await);
}

/// Counts only grow; another test's SIGHUP (same process) may add a reload of this app too.
fn at_least(readyz: &Value, counter: &str, n: u64) -> bool {
    readyz["policies"]["reload"][counter].as_u64() >= Some(n)
}

fn polling() -> Fixture {
    Fixture::deploy().settings(|s| s.policies.reload_interval = Duration::from_millis(50))
}

#[tokio::test]
async fn a_broken_set_is_rejected_and_the_last_good_one_keeps_serving_requests() {
    let app = spawn_app(polling()).await;
    let version = readyz(&app).await["policies"]["version"].clone();
    let stop = AtomicBool::new(false);
    let traffic = async {
        let mut statuses = Vec::new();
        while !stop.load(Ordering::SeqCst) || statuses.len() < 5 {
            statuses.push(app.exchange_token(&app.token(), None).await.0);
        }
        statuses
    };
    let breaker = async {
        std::fs::write(app.policies_dir.join("broken.yaml"), BROKEN).unwrap();
        let r = wait_for(&app, |r| at_least(r, "rejected", 1)).await;
        stop.store(true, Ordering::SeqCst);
        r
    };
    let (statuses, r) = tokio::join!(traffic, breaker);
    assert!(
        statuses.iter().all(|s| *s == 200),
        "every request was served: {statuses:?}"
    );
    assert_eq!(
        r["policies"]["version"], version,
        "the old set still serves"
    );
    let error = r["policies"]["reload"]["last_error"]
        .as_str()
        .unwrap_or_default();
    assert!(
        error.contains("broken.yaml:1:9: unknown issuer `no-such-issuer`"),
        "{r}"
    );
    let (_, metrics, _) = app.get("/metrics").await;
    assert!(
        metrics.contains("ferry_policy_reloads_total{result=\"rejected\"}"),
        "{metrics}"
    );
    let event = {
        app.exchange_token(&app.token(), None).await;
        app.last_audit_event()
    };
    assert_eq!(event["policy_set_version"], version);
}

#[tokio::test]
async fn a_good_change_is_swapped_in_and_recorded_with_its_version() {
    let app = spawn_app(polling()).await;
    let before = readyz(&app).await["policies"]["version"].clone();
    let stricter = DEPLOY_POLICY.replace("ref: refs/heads/main", "ref: refs/heads/release");
    std::fs::write(app.policies_dir.join("demo-deploy.yaml"), stricter).unwrap();
    let r = wait_for(&app, |r| at_least(r, "applied", 1)).await;
    let after = r["policies"]["version"].clone();
    assert_ne!(after, before);
    let (status, _, _) = app.exchange_token(&app.token(), None).await;
    assert_eq!(status, 400, "the new policy decides");
    let event = app.last_audit_event();
    assert_eq!(event["policy_set_version"], after);
    assert_eq!(event["policy_file"], "demo-deploy.yaml");
    assert_eq!(event["reason"], "claim_mismatch");
}

#[tokio::test]
async fn sighup_reloads_the_policy_directory() {
    let app =
        spawn_app(Fixture::deploy().settings(|s| s.policies.reload_interval = Duration::ZERO))
            .await;
    std::fs::write(app.policies_dir.join("broken.yaml"), BROKEN).unwrap();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let r = wait_for(&app, |r| at_least(r, "rejected", 1)).await;
    assert_eq!(
        r["ready"], true,
        "a rejected reload does not make the broker unready"
    );
}
