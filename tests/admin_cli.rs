//! `ferry admin token|revoke|unblock|list` against a running broker: the bootstrap credential
//! minted from the signing key file is accepted by the admin API, the commands print readable
//! tables, and the mint is in a hash-chained trail of its own.

mod common;

use std::process::{Command, Output};

use common::lifecycle::*;
use common::*;

const DEPLOY_SUBJECT: &str = "repo:acme/api:ref:refs/heads/main";

/// Runs `ferry args…` off the async runtime (the broker under test runs on it).
async fn ferry(args: &[&str], env: &[(&str, &str)]) -> Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(&args)
            .env_remove("FERRY_ADMIN_TOKEN")
            .env_remove("FERRY_URL")
            .envs(env)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn admin_token(app: &TestApp, extra: &[&str]) -> Output {
    let data_dir = app.data_dir.display().to_string();
    let mut args = vec![
        "admin",
        "token",
        "--data-dir",
        &data_dir,
        "--public-url",
        &app.base_url,
    ];
    args.extend_from_slice(extra);
    ferry(&args, &[("FERRY_CREDENTIAL__AUDIENCE", BROKER_AUDIENCE)]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_blocks_a_subject_lists_it_and_unblocks_it_from_the_command_line() {
    let app = spawn_app(lifecycle_fixture("100/min")).await;
    let broker = Broker::new(&app.base_url);
    broker
        .credential(&app.issuer, DEPLOY_SUBJECT, DEPLOY_AUDIENCE)
        .await;

    let minted = admin_token(&app, &["--subject", "ferry-admin:alice"]).await;
    assert!(minted.status.success(), "{}", text(&minted.stderr));
    let token = text(&minted.stdout).trim().to_string();
    assert_eq!(jwt_part(&token, 1)["scope"], "ferry:admin");
    assert!(text(&minted.stderr).contains("minted admin credential"));
    let env = [
        ("FERRY_ADMIN_TOKEN", token.as_str()),
        ("FERRY_URL", app.base_url.as_str()),
    ];

    let revoke = [
        "admin",
        "revoke",
        "--subject",
        "repo:acme/api:*",
        "--for",
        "1h",
        "--reason",
        "compromised runner",
    ];
    let out = ferry(&revoke, &env).await;
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("revoked subject repo:acme/api:*\nKIND "),
        "{stdout}"
    );
    assert!(
        stdout.contains("ferry-admin:alice") && stdout.contains("compromised runner"),
        "{stdout}"
    );
    let refused = broker
        .exchange_as(&app.issuer, DEPLOY_SUBJECT, DEPLOY_AUDIENCE)
        .await;
    assert_eq!(refused.0, 400, "the kill switch holds");
    assert_eq!(app.last_audit_event()["reason"], "kill_switch");

    let out = ferry(&["admin", "list"], &env).await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("subject  repo:acme/api:*"), "{stdout}");
    assert!(stdout.ends_with("1 revocations\n"), "{stdout}");

    // An unblock within the second the switch was made keeps that second blocked (it is
    // covered); this one comes later, so the exchange after it is served at once.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let out = ferry(&["admin", "unblock", "--subject", "repo:acme/api:*"], &env).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("unblocked subject repo:acme/api:*"));
    broker
        .credential(&app.issuer, DEPLOY_SUBJECT, DEPLOY_AUDIENCE)
        .await;

    let event = app.last_audit_event();
    assert_ne!(event["action"], "admin_unblock", "the exchange came after");
    let caller = jwt_part(&token, 1)["jti"].clone();
    let by_admin: Vec<_> = app
        .audit_events()
        .into_iter()
        .filter(|e| e["caller"] == caller)
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(by_admin, ["admin_revoke", "admin_list", "admin_unblock"]);
    let trail = app.data_dir.join("admin-audit.jsonl");
    let verify = ferry(&["audit", "verify", trail.to_str().unwrap()], &[]).await;
    assert!(verify.status.success(), "{}", text(&verify.stdout));
    let line = std::fs::read_to_string(&trail).unwrap();
    assert!(line.contains("\"action\":\"admin_token\"") && !line.contains(&token));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_reports_a_refusal_with_exit_code_1() {
    let app = spawn_app(lifecycle_fixture("100/min")).await;
    let broker = Broker::new(&app.base_url);
    let not_admin = broker.introspector(&app.issuer).await;
    let env = [
        ("FERRY_ADMIN_TOKEN", not_admin.as_str()),
        ("FERRY_URL", app.base_url.as_str()),
    ];
    let out = ferry(&["admin", "revoke", "--policy", "demo-deploy"], &env).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("refused: 403 insufficient_scope"),
        "{}",
        text(&out.stderr)
    );
    let usage = ferry(
        &["admin", "revoke", "--policy", "a", "--subject", "b"],
        &env,
    )
    .await;
    assert_eq!(usage.status.code(), Some(2), "one target at a time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_token_is_not_minted_without_the_key_file_or_beyond_an_hour() {
    let app = spawn_app(lifecycle_fixture("100/min")).await;
    assert!(admin_token(&app, &[]).await.status.success(), "control");
    let long = admin_token(&app, &["--ttl", "2h"]).await;
    assert_eq!(long.status.code(), Some(2));
    assert!(text(&long.stderr).contains("--ttl must be between 1s and 1h"));
    let empty = tempfile::tempdir().unwrap();
    let dir = empty.path().display().to_string();
    let out = ferry(
        &[
            "admin",
            "token",
            "--data-dir",
            &dir,
            "--public-url",
            "https://x",
        ],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no signing key"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !empty.path().join("signing-key.pem").exists(),
        "and none was generated"
    );
}
