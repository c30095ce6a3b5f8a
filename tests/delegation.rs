//! RFC 8693 delegation end to end: a person's token plus an agent's JWT-SVID (issuer `mesh`, kind
//! `spiffe`, through the real server and its bundle fetch) become a credential
//! that names both (`sub` + `act`), narrowed to what both may have; every rule is also shown
//! refusing a request built to break it, next to the same setup granting a valid one.

mod common;

use common::agents::{Agents, SUMMARIZER, SUPPORT_BOT, TICKETS, TICKETS_POLICY, TRIAGE};
use common::{assert_generic, assert_oauth_error, jwt_part, Fixture};
use serde_json::json;

/// Asserts the generic refusal and returns the audit reason.
async fn refused(agents: &Agents, subject: &str, actor: &str, scope: Option<&str>) -> String {
    let (status, body) = agents.delegate(subject, actor, scope).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_request", "{body}");
    assert_generic(body["error_description"].as_str().unwrap());
    let event = agents.app.last_audit_event();
    assert_eq!(event["decision"], "deny", "{event}");
    event["reason"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn delegated_credential_keeps_the_subject_and_names_the_actor_as_rfc8693_shows() {
    let agents = Agents::spawn().await;
    let credential = agents.first_hop(SUPPORT_BOT, Some("tickets:read")).await;
    let claims = agents.app.verify_credential(&credential, TICKETS).await;
    assert_eq!(claims["sub"], "alice");
    assert_eq!(
        claims["act"],
        json!({ "sub": SUPPORT_BOT }),
        "exactly {{sub, iss}} of the actor, nothing else (a JWT-SVID has no iss: its SPIFFE ID \
         names its trust domain)"
    );
    assert_eq!(claims["scope"], "tickets:read");
}

#[tokio::test]
async fn audit_event_names_subject_every_actor_policy_and_scopes_granted_and_refused() {
    let agents = Agents::spawn().await;
    let scope = Some("tickets:read tickets:admin");
    let credential = agents.first_hop(SUPPORT_BOT, scope).await;
    assert_eq!(jwt_part(&credential, 1)["scope"], "tickets:read");
    let event = agents.app.last_audit_event();
    assert_eq!(event["decision"], "allow");
    assert_eq!(event["subject"], "alice");
    assert_eq!(event["issuer"], "local-ci");
    assert_eq!(event["policy"], "tickets");
    assert_eq!(event["actors"], json!([{ "sub": SUPPORT_BOT }]));
    assert_eq!(event["scopes_granted"], json!(["tickets:read"]));
    assert_eq!(event["scopes_refused"], json!(["tickets:admin"]));
    assert!(event["actor_token_sha256"].as_str().unwrap().len() == 64);
    assert!(event["actor_token_jti"].is_string());
    let text = std::fs::read_to_string(agents.app.audit_path()).unwrap();
    assert!(
        !text.contains(&credential),
        "the credential is never in the audit trail"
    );
}

#[tokio::test]
async fn granted_scopes_are_the_request_the_grant_and_the_actor_allowance_intersected() {
    let agents = Agents::spawn().await;
    let all = agents.first_hop(SUPPORT_BOT, None).await;
    assert_eq!(
        jwt_part(&all, 1)["scope"],
        "tickets:comment tickets:read",
        "no scope asked: the grant narrowed to the actor's allowance (never tickets:admin)"
    );
    let person = agents.person_token(&agents.alice());
    let actor = agents.agent_token(&agents.agent(SUPPORT_BOT));
    let reason = refused(&agents, &person, &actor, Some("tickets:admin")).await;
    assert_eq!(reason, "delegation_scope_empty");
}

#[tokio::test]
async fn an_actor_the_policy_does_not_name_is_refused() {
    let agents = Agents::spawn().await;
    agents.first_hop(SUPPORT_BOT, None).await;
    let person = agents.person_token(&agents.alice());
    let outsider = agents.agent_token(&agents.agent("spiffe://agents.example.org/jobs/batch"));
    assert_eq!(
        refused(&agents, &person, &outsider, None).await,
        "actor_not_allowed"
    );
    let person = agents.person_token(&agents.alice());
    let elsewhere =
        agents.agent_token(&agents.agent(SUPPORT_BOT).audience("https://other.example"));
    assert_eq!(
        refused(&agents, &person, &elsewhere, None).await,
        "actor_not_allowed",
        "an actor token addressed to someone else"
    );
    // An actor that itself acts for someone: its chain would vanish under alice's.
    let person = agents.person_token(&agents.alice());
    let acting = agents.agent_token(&agents.agent(SUPPORT_BOT).set(
        "act",
        json!({ "sub": "spiffe://agents.example.org/agents/hidden" }),
    ));
    assert_eq!(
        refused(&agents, &person, &acting, None).await,
        "actor_not_allowed",
        "an actor token with an act chain of its own"
    );
}

#[tokio::test]
async fn an_actor_token_is_refused_by_a_policy_without_a_delegation_block() {
    let plain = TICKETS_POLICY.split("delegation:").next().unwrap();
    let agents = Agents::spawn_with(Fixture::empty().policy("tickets", plain)).await;
    let (status, body, _) = agents
        .app
        .exchange(&common::deploy_form(
            &agents.person_token(&agents.alice()),
            &[],
        ))
        .await;
    assert_eq!(
        status, 400,
        "control: alice alone asks for the wrong audience: {body}"
    );
    let alone = vec![
        ("grant_type", common::rfc8693::GRANT_TYPE_TOKEN_EXCHANGE),
        ("subject_token_type", common::rfc8693::TOKEN_TYPE_JWT),
        ("audience", TICKETS),
    ];
    let person = agents.person_token(&agents.alice());
    let mut form = alone.clone();
    form.push(("subject_token", &person));
    let (status, body, _) = agents.app.exchange(&form).await;
    assert_eq!(status, 200, "control: alice alone is granted: {body}");
    let person = agents.person_token(&agents.alice());
    let actor = agents.agent_token(&agents.agent(SUPPORT_BOT));
    assert_eq!(
        refused(&agents, &person, &actor, None).await,
        "delegation_not_allowed"
    );
}

#[tokio::test]
async fn expired_replayed_and_unknown_issuer_actor_tokens_are_refused() {
    let agents = Agents::spawn().await;
    let person = agents.person_token(&agents.alice());
    let actor = agents.agent_token(&agents.agent(SUPPORT_BOT));
    let (status, body) = agents.delegate(&person, &actor, None).await;
    assert_eq!(status, 200, "control: {body}");

    let fresh_person = agents.person_token(&agents.alice());
    assert_eq!(
        refused(&agents, &fresh_person, &actor, None).await,
        "actor_token_replayed"
    );
    let (status, body) = agents
        .delegate(
            &fresh_person,
            &agents.agent_token(&agents.agent(SUPPORT_BOT)),
            None,
        )
        .await;
    assert_eq!(
        status, 200,
        "the refused replay did not use up the subject token: {body}"
    );

    let expired = agents.agent(SUPPORT_BOT).expires_in(-600);
    let person = agents.person_token(&agents.alice());
    let reason = refused(&agents, &person, &agents.agent_token(&expired), None).await;
    assert_eq!(reason, "actor_token_expired");

    // A JWT-SVID of a trust domain no issuer is bound to.
    let stranger = common::DevIssuer::start("127.0.0.1:0");
    let unknown = stranger.sign(
        &agents.agent("spiffe://elsewhere.example.org/agents/support-bot"),
        common::Alg::ES256,
        None,
    );
    let person = agents.person_token(&agents.alice());
    assert_eq!(
        refused(&agents, &person, &unknown, None).await,
        "actor_unknown_issuer"
    );
    assert_eq!(
        stranger.jwks_fetches(),
        0,
        "nothing is fetched for an unknown issuer"
    );
}

#[tokio::test]
async fn may_act_in_the_subject_token_must_name_the_actor() {
    let agents = Agents::spawn().await;
    let allowed = agents.alice().set("may_act", json!({ "sub": SUPPORT_BOT }));
    let actor = agents.agent_token(&agents.agent(SUPPORT_BOT));
    let (status, body) = agents
        .delegate(&agents.person_token(&allowed), &actor, None)
        .await;
    assert_eq!(status, 200, "may_act names the actor: {body}");

    let other = agents.alice().set("may_act", json!({ "sub": SUMMARIZER }));
    let actor = agents.agent_token(&agents.agent(SUPPORT_BOT));
    let reason = refused(&agents, &agents.person_token(&other), &actor, None).await;
    assert_eq!(reason, "may_act_mismatch");
    let wrong_iss = agents.alice().set(
        "may_act",
        json!({ "sub": SUPPORT_BOT, "iss": "https://elsewhere" }),
    );
    let actor = agents.agent_token(&agents.agent(SUPPORT_BOT));
    let reason = refused(&agents, &agents.person_token(&wrong_iss), &actor, None).await;
    assert_eq!(reason, "may_act_mismatch");
}

#[tokio::test]
async fn a_second_hop_nests_the_chain_and_a_third_is_refused_by_max_depth() {
    let agents = Agents::spawn().await;
    let first = agents.first_hop(SUPPORT_BOT, Some("tickets:read")).await;
    let sub_agent = agents.agent_token(&agents.agent(SUMMARIZER));
    let (status, body) = agents.delegate(&first, &sub_agent, None).await;
    assert_eq!(status, 200, "second hop: {body}");
    let second = body["access_token"].as_str().unwrap().to_string();
    let claims = agents.app.verify_credential(&second, TICKETS).await;
    assert_eq!(claims["sub"], "alice");
    assert_eq!(
        claims["act"],
        json!({ "sub": SUMMARIZER, "act": { "sub": SUPPORT_BOT } }),
        "new actor outside, old chain inside"
    );
    assert_eq!(
        claims["scope"], "tickets:read",
        "scopes only narrow along the chain"
    );
    let event = agents.app.last_audit_event();
    assert_eq!(event["actors"][0]["sub"], SUMMARIZER);
    assert_eq!(event["actors"][1]["sub"], SUPPORT_BOT);

    let third = agents.agent_token(&agents.agent(TRIAGE));
    assert_eq!(
        refused(&agents, &second, &third, None).await,
        "delegation_too_deep"
    );
}

#[tokio::test]
async fn a_revoked_credential_is_not_exchanged_for_the_next_hop() {
    let agents = Agents::spawn().await;
    let broker = common::lifecycle::Broker::new(&agents.app.base_url);
    let kept = agents.first_hop(SUPPORT_BOT, Some("tickets:read")).await;
    let revoked = agents.first_hop(SUPPORT_BOT, Some("tickets:read")).await;
    let sub_agent = || agents.agent_token(&agents.agent(SUMMARIZER));
    let (status, body) = agents.delegate(&kept, &sub_agent(), None).await;
    assert_eq!(status, 200, "control: a live credential goes on: {body}");

    assert_eq!(broker.revoke(&revoked).await, 200);
    assert_eq!(
        refused(&agents, &revoked, &sub_agent(), None).await,
        "subject_token_revoked"
    );
    let event = agents.app.last_audit_event();
    assert_eq!(event["revocation"]["kind"], "credential", "{event}");
    assert_eq!(
        event["revocation"]["value"],
        jwt_part(&revoked, 1)["jti"],
        "the entry that refused it is recorded"
    );
    assert!(event.get("credential_id").is_none(), "nothing issued");
}

#[tokio::test]
async fn a_delegated_credential_is_not_exchanged_without_its_actor() {
    let agents = Agents::spawn().await;
    let first = agents.first_hop(SUPPORT_BOT, None).await;
    let form = vec![
        ("grant_type", common::rfc8693::GRANT_TYPE_TOKEN_EXCHANGE),
        ("subject_token", first.as_str()),
        ("subject_token_type", common::rfc8693::TOKEN_TYPE_JWT),
        ("audience", TICKETS),
    ];
    let got = agents.app.exchange(&form).await;
    assert_oauth_error(&got, 400, "invalid_request");
    assert_eq!(agents.app.last_audit_event()["reason"], "actor_required");
}

#[tokio::test]
async fn the_lifetime_is_bounded_by_both_tokens() {
    let agents = Agents::spawn().await;
    let person = agents.person_token(&agents.alice());
    let actor = agents.agent_token(&agents.agent(SUPPORT_BOT).expires_in(120));
    let (status, body) = agents.delegate(&person, &actor, None).await;
    assert_eq!(status, 200, "{body}");
    let expires_in = body["expires_in"].as_u64().unwrap();
    assert!(
        (100..=120).contains(&expires_in),
        "bounded by the actor: {expires_in}"
    );

    let person = agents.person_token(&agents.alice().expires_in(90));
    let actor = agents.agent_token(&agents.agent(SUPPORT_BOT));
    let (status, body) = agents.delegate(&person, &actor, None).await;
    assert_eq!(status, 200, "{body}");
    let expires_in = body["expires_in"].as_u64().unwrap();
    assert!(
        (70..=90).contains(&expires_in),
        "bounded by the subject: {expires_in}"
    );
}

#[tokio::test]
async fn a_ferry_issuer_whose_url_is_not_the_brokers_refuses_to_start() {
    let fixture =
        Fixture::empty().issuer("  broker:\n    kind: ferry\n    url: https://elsewhere.example\n");
    let error = common::startup_error(fixture).await;
    assert!(error.contains("must be its public URL"), "{error}");
    let fixture = Fixture::empty().issuer("  broker:\n    kind: ferry\n");
    common::spawn_app(fixture).await;
}

#[tokio::test]
async fn after_a_hot_reload_the_broker_still_verifies_its_own_credentials() {
    let fixture = Fixture::empty()
        .policy("tickets", TICKETS_POLICY)
        .policy("tickets-hop", common::agents::TICKETS_HOP_POLICY)
        .settings(|s| s.policies.reload_interval = std::time::Duration::from_millis(50));
    let agents = Agents::spawn_with(fixture).await;
    // Once the broker answers, its directory watcher has taken its first look.
    agents.first_hop(SUPPORT_BOT, None).await;
    let extra = TICKETS_POLICY.replace("subject: alice", "subject: bob");
    std::fs::write(agents.app.policies_dir.join("tickets-bob.yaml"), extra).unwrap();
    agents.app.wait_for_loaded_policies(3).await;
    let first = agents.first_hop(SUPPORT_BOT, None).await;
    let sub_agent = agents.agent_token(&agents.agent(SUMMARIZER));
    let (status, body) = agents.delegate(&first, &sub_agent, None).await;
    assert_eq!(
        status, 200,
        "the reloaded `ferry` issuer has the broker's keys: {body}"
    );
}

#[tokio::test]
async fn a_revoked_credential_does_not_act_for_anyone() {
    common::agents::a_revoked_ferry_actor_is_refused(Fixture::empty()).await;
}

/// A `ferry admin token` for `app` (the bootstrap credential, from its signing key file).
async fn admin_token(app: &common::TestApp) -> String {
    let args = [
        "admin".to_string(),
        "token".into(),
        "--data-dir".into(),
        app.data_dir.display().to_string(),
        "--public-url".into(),
        app.base_url.clone(),
        "--subject".into(),
        "ferry-admin:oncall".into(),
    ];
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(&args)
            .env_remove("FERRY_CREDENTIAL__AUDIENCE")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A subject kill switch on an agent covers it as an actor: it acts for no one while the block
/// lasts, and a credential it acted in before stays revoked after the block is lifted: refused
/// as a next hop's subject token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_switch_on_an_agent_stops_it_acting_and_revokes_what_it_acted_in() {
    let agents = Agents::spawn().await;
    // Two credentials support-bot acts in (each next hop claims the one it presents).
    let earlier = agents.first_hop(SUPPORT_BOT, Some("tickets:read")).await;
    let also_earlier = agents.first_hop(SUPPORT_BOT, Some("tickets:read")).await;
    let admin = admin_token(&agents.app).await;
    let broker = common::lifecycle::Broker::new(&agents.app.base_url);
    let (status, body, _) = broker
        .admin_revoke(&admin, "subject", SUPPORT_BOT, Some("1s"))
        .await;
    assert_eq!(status, 201, "{body}");

    let person = || agents.person_token(&agents.alice());
    let support_bot = || agents.agent_token(&agents.agent(SUPPORT_BOT));
    let next = || agents.agent_token(&agents.agent(SUMMARIZER));
    assert_eq!(
        refused(&agents, &person(), &support_bot(), None).await,
        "kill_switch"
    );
    let event = agents.app.last_audit_event();
    assert_eq!(event["revocation"]["value"], SUPPORT_BOT, "{event}");
    assert_eq!(
        refused(&agents, &earlier, &next(), None).await,
        "kill_switch",
        "the chain of the credential presented names it"
    );
    agents.first_hop(TRIAGE, Some("tickets:read")).await;

    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    agents.first_hop(SUPPORT_BOT, Some("tickets:read")).await;
    assert_eq!(
        refused(&agents, &also_earlier, &next(), None).await,
        "subject_token_revoked",
        "a credential it acted in before the block stays revoked"
    );
}

/// A Ferry credential re-exchanged without an actor cannot outlive itself: otherwise each
/// re-exchange would renew it, and it would live for ever without the person's IdP being asked
/// again.
#[tokio::test]
async fn a_ferry_credential_exchanged_alone_does_not_outlive_itself() {
    let agents = Agents::spawn().await;
    let exchange = |subject: String, ttl: Option<&'static str>| {
        let agents = &agents;
        async move {
            let mut form = vec![
                ("grant_type", common::rfc8693::GRANT_TYPE_TOKEN_EXCHANGE),
                ("subject_token", subject.as_str()),
                ("subject_token_type", common::rfc8693::TOKEN_TYPE_JWT),
                ("audience", TICKETS),
            ];
            if let Some(ttl) = ttl {
                form.push(("ttl_seconds", ttl));
            }
            let (status, body, _) = agents.app.exchange(&form).await;
            assert_eq!(status, 200, "{body}");
            (
                body["access_token"].as_str().unwrap().to_string(),
                body["expires_in"].as_u64().unwrap(),
            )
        }
    };
    let (short, expires_in) = exchange(agents.person_token(&agents.alice()), Some("30")).await;
    assert!(expires_in <= 30, "{expires_in}");
    let (again, expires_in) = exchange(short, None).await;
    assert!(
        expires_in <= 30,
        "bounded by the credential presented, not the policy's 10m: {expires_in}"
    );
    assert_eq!(jwt_part(&again, 1)["sub"], "alice");
}

/// Revoking a credential cuts off every hop already made from it, not only the next ones: a
/// credential exchanged from it names it in `ferry.derived_from`, and a revocation of any
/// credential there covers it.
/// Alice's own credential (the root) and a hop support-bot made from it.
async fn root_and_hop(agents: &Agents) -> (String, String) {
    let form = vec![
        ("grant_type", common::rfc8693::GRANT_TYPE_TOKEN_EXCHANGE),
        ("subject_token", ""),
        ("subject_token_type", common::rfc8693::TOKEN_TYPE_JWT),
        ("audience", TICKETS),
    ];
    let person = agents.person_token(&agents.alice());
    let mut own = form.clone();
    own[1].1 = &person;
    let (status, body, _) = agents.app.exchange(&own).await;
    assert_eq!(status, 200, "{body}");
    let root = body["access_token"].as_str().unwrap().to_string();
    let support_bot = agents.agent_token(&agents.agent(SUPPORT_BOT));
    let (status, body) = agents.delegate(&root, &support_bot, None).await;
    assert_eq!(
        status, 200,
        "a hop made from alice's own credential: {body}"
    );
    (root, body["access_token"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn revoking_a_credential_cuts_off_the_hops_already_made_from_it() {
    let agents = Agents::spawn().await;
    let broker = common::lifecycle::Broker::new(&agents.app.base_url);
    let (root, hop) = root_and_hop(&agents).await;
    let root_id = jwt_part(&root, 1)["jti"].as_str().unwrap().to_string();
    assert!(
        jwt_part(&hop, 1)["ferry"]["derived_from"]
            .as_array()
            .unwrap()
            .contains(&json!(format!("credential:{root_id}"))),
        "the hop names what it was made from"
    );

    assert_eq!(broker.revoke(&root).await, 200);
    let next = agents.agent_token(&agents.agent(SUMMARIZER));
    assert_eq!(
        refused(&agents, &hop, &next, None).await,
        "subject_token_revoked",
        "the hop made from the revoked credential"
    );
    let event = agents.app.last_audit_event();
    assert_eq!(event["revocation"]["value"], root_id.as_str(), "{event}");
}

/// A policy kill switch cuts off the hops made from that policy's credentials, though they
/// were granted by another policy: each names the policies it derives from in
/// `ferry.derived_policies`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_kill_switch_cuts_off_the_hops_made_from_that_policys_credentials() {
    let agents = Agents::spawn().await;
    let (root, hop) = root_and_hop(&agents).await;
    let root_policy = jwt_part(&root, 1)["client_id"]
        .as_str()
        .unwrap()
        .to_string();
    let hop_claims = jwt_part(&hop, 1);
    assert_ne!(
        hop_claims["client_id"],
        root_policy.as_str(),
        "{hop_claims}"
    );
    assert_eq!(
        hop_claims["ferry"]["derived_policies"],
        json!([root_policy])
    );
    let next = || agents.agent_token(&agents.agent(SUMMARIZER));

    let admin = admin_token(&agents.app).await;
    let broker = common::lifecycle::Broker::new(&agents.app.base_url);
    let (status, body, _) = broker
        .admin_revoke(&admin, "policy", &root_policy, Some("1s"))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        refused(&agents, &hop, &next(), None).await,
        "subject_token_revoked",
        "the hop, granted by another policy, made from a credential of the one switched off"
    );
    let event = agents.app.last_audit_event();
    assert_eq!(
        event["revocation"]["value"],
        root_policy.as_str(),
        "{event}"
    );
}
