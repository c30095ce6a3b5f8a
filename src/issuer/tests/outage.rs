//! Outages against a real loopback HTTP issuer whose answers change while the broker runs:
//! rotation over HTTP, and every kind of broken answer (HTML, 500, a 10 MB body, a redirect to
//! another host, a slow issuer) leaving the last good keys serving, up to `max_stale`, with
//! each failure counted by reason. Real time: reqwest's timeouts need a real clock.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::domain::Algorithm;
use crate::issuer::testkit::{self, claims, Reply, Switchboard, TestKey, NOW};
use crate::issuer::{FetchSettings, KeySourceSpec};
use crate::verify::{Verifier, VerifySettings};

fn jwks(keys: &[&TestKey]) -> Value {
    json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()})
}

fn settings() -> FetchSettings {
    FetchSettings {
        timeout: Duration::from_millis(300),
        refresh_cooldown: Duration::ZERO,
        min_refresh: Duration::ZERO,
        ..FetchSettings::default()
    }
}

async fn issuer(keys: &[&TestKey], fetch: FetchSettings) -> (Verifier, Arc<Switchboard>) {
    let board = Arc::new(Switchboard::default());
    let addr = testkit::serve_switchboard(board.clone()).await;
    board.set(vec![Reply::json("/jwks", &jwks(keys))]);
    let mut spec = testkit::spec(&[Algorithm::RS256]);
    spec.keys = KeySourceSpec::JwksUrl(format!("http://{addr}/jwks").parse().unwrap());
    spec.insecure_http = true;
    let v = Verifier::new(&[spec], VerifySettings::default(), fetch).unwrap();
    v.warm_up().await;
    (v, board)
}

async fn code(v: &Verifier, token: &str) -> &'static str {
    v.verify(token, NOW)
        .await
        .map_or_else(|e| e.code(), |_| "accepted")
}

fn broken_answers(other_host_port: u16) -> Vec<(&'static str, Reply)> {
    let html = Reply {
        path: "/jwks".into(),
        status: 200,
        headers: vec![("Content-Type".into(), "text/html".into())],
        body: b"<html>maintenance</html>".to_vec(),
    };
    let error = Reply {
        path: "/jwks".into(),
        status: 500,
        headers: vec![],
        body: b"oops".to_vec(),
    };
    let huge = Reply {
        body: vec![b' '; 10 * 1024 * 1024],
        ..Reply::json("/jwks", &json!({}))
    };
    let redirect = Reply {
        path: "/jwks".into(),
        status: 302,
        headers: vec![(
            "Location".into(),
            format!("http://localhost:{other_host_port}/jwks"),
        )],
        body: vec![],
    };
    vec![
        ("html", html),
        ("status", error),
        ("too_large", huge),
        ("redirect", redirect),
    ]
}

#[tokio::test]
async fn rotation_over_http_accepts_the_new_key_after_one_refresh_and_drops_the_retired_one() {
    let (old, new) = (TestKey::rsa("old"), TestKey::rsa("new"));
    let (v, board) = issuer(&[&old], settings()).await;
    board.set(vec![Reply::json("/jwks", &jwks(&[&old, &new]))]);
    assert_eq!(code(&v, &new.token("RS256", &claims())).await, "accepted");
    board.set(vec![Reply::json("/jwks", &jwks(&[&new]))]);
    // The next refresh (here forced by an unknown kid) retires `old`.
    let _ = code(&v, &TestKey::rsa("probe").token("RS256", &claims())).await;
    assert_eq!(
        code(&v, &old.token("RS256", &claims())).await,
        "unknown_key"
    );
    assert_eq!(code(&v, &new.token("RS256", &claims())).await, "accepted");
}

#[tokio::test]
async fn every_broken_answer_leaves_the_last_good_keys_serving_and_is_counted_by_reason() {
    let key = TestKey::rsa("k1");
    let (v, board) = issuer(&[&key], settings()).await;
    let (elsewhere, elsewhere_hits) = testkit::serve(vec![Reply::json("/jwks", &jwks(&[]))]).await;
    let stranger = TestKey::rsa("k2").token("RS256", &claims());
    let mut modes = broken_answers(elsewhere.port());
    modes.push(("timeout", Reply::json("/jwks", &jwks(&[&key]))));
    for (reason, reply) in modes {
        board.set(vec![reply]);
        if reason == "timeout" {
            board.set_delay(Duration::from_secs(5));
        }
        // The unknown kid forces a refresh, which fails; the request is still answered within
        // the fetch timeout (generous outer bound), as a denial, not a 503.
        let refused = tokio::time::timeout(Duration::from_secs(3), code(&v, &stranger)).await;
        assert_eq!(refused, Ok("unknown_key"), "{reason}");
        assert_eq!(
            code(&v, &key.token("RS256", &claims())).await,
            "accepted",
            "{reason}"
        );
        let status = &v.key_status()[0];
        assert!(
            status.failures.iter().any(|(r, n)| *r == reason && *n >= 1),
            "{reason}: {status:?}"
        );
        assert!(status.ready && status.keys == 1, "{reason}: {status:?}");
    }
    assert_eq!(
        elsewhere_hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "redirect not followed"
    );
}

#[tokio::test]
async fn the_last_good_keys_stop_serving_at_max_stale() {
    // Keys and tokens first: RSA key generation is slow in debug builds.
    let (key, probe) = (TestKey::rsa("k1"), TestKey::rsa("probe"));
    let (token, probe) = (
        key.token("RS256", &claims()),
        probe.token("RS256", &claims()),
    );
    let fetch = FetchSettings {
        max_stale: Duration::from_secs(2),
        ..settings()
    };
    let (v, board) = issuer(&[&key], fetch).await;
    assert_eq!(code(&v, &token).await, "accepted");
    board.set(vec![]);
    assert_eq!(
        code(&v, &probe).await,
        "unknown_key",
        "the refresh fails (404)"
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let err = v.verify(&token, NOW).await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    let status = &v.key_status()[0];
    assert!(!status.ready, "{status:?}");
    assert!(
        status.failures.iter().any(|(r, _)| *r == "status"),
        "{status:?}"
    );
}
