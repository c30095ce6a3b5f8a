use super::*;

fn facts(id: &str, sub: &str, policy: &str, iat: i64) -> CredentialFacts {
    CredentialFacts {
        credential_id: id.into(),
        exchange_id: Some(format!("ex-{id}")),
        subject: sub.into(),
        actors: Vec::new(),
        policy: policy.into(),
        issued_at: iat,
        derived_from: Vec::new(),
        derived_policies: Vec::new(),
    }
}

fn rev(kind: RevocationKind, value: &str, created: i64, block_until: i64) -> Revocation {
    Revocation {
        kind,
        value: value.into(),
        created_at: created,
        block_until,
        keep_until: created + 86_400,
        issued_through: None,
        reason: None,
        by: None,
    }
}

#[test]
fn a_credential_revocation_matches_only_that_credential() {
    let list = [rev(RevocationKind::Credential, "c1", 100, 100)];
    assert!(revoking(&list, &facts("c1", "s", "p", 50), 200).is_some());
    assert!(revoking(&list, &facts("c2", "s", "p", 50), 200).is_none());
}

#[test]
fn an_exchange_revocation_matches_the_credentials_that_exchange_minted() {
    let list = [rev(RevocationKind::Exchange, "ex-c1", 100, 100)];
    assert!(revoking(&list, &facts("c1", "s", "p", 50), 200).is_some());
    assert!(revoking(&list, &facts("c2", "s", "p", 50), 200).is_none());
}

#[test]
fn a_subject_kill_switch_revokes_earlier_credentials_of_matching_subjects_only() {
    let list = [rev(RevocationKind::Subject, "repo:acme/api:*", 100, 500)];
    let sub = "repo:acme/api:ref:refs/heads/main";
    assert!(revoking(&list, &facts("c1", sub, "p", 100), 200).is_some());
    assert!(
        revoking(&list, &facts("c1", sub, "p", 101), 200).is_none(),
        "issued after the switch"
    );
    assert!(revoking(&list, &facts("c1", "repo:acme/web:x", "p", 50), 200).is_none());
}

#[test]
fn a_kill_switch_covers_credentials_stamped_by_a_clock_running_ahead() {
    // A replica whose clock runs 30 s ahead was already past its kill-switch read when the
    // switch was stored: its credential, and a hop made from another policy's credential, say
    // `iat` 130 against a `created_at` of 100.
    let mut policy = rev(RevocationKind::Policy, "deploy", 100, 3700);
    let mut subject = rev(RevocationKind::Subject, "repo:*", 100, 3700);
    let ahead = facts("c1", "repo:acme", "deploy", 130);
    let mut hop = facts("c2", "agent", "agents", 130);
    hop.derived_policies = vec!["deploy".into()];
    // An entry of an earlier build has no reach: both escape it (what the reach closes).
    let earlier = [policy.clone(), subject.clone()];
    assert!(revoking(&earlier, &ahead, 200).is_none());
    assert!(revoking(&earlier, &hop, 200).is_none());
    policy.reach_past_creation(Duration::from_secs(60));
    subject.reach_past_creation(Duration::from_secs(60));
    let list = [policy, subject];
    assert!(revoking(&list[..1], &ahead, 200).is_some());
    assert!(revoking(&list[..1], &hop, 200).is_some(), "a derived hop");
    assert!(revoking(&list[1..], &ahead, 200).is_some(), "by subject");
    assert!(
        revoking(&list, &facts("c3", "repo:acme", "deploy", 161), 200).is_none(),
        "past the reach"
    );
}

#[test]
fn a_kill_switch_blocks_new_exchanges_until_its_expiry_and_no_longer() {
    let list = [
        rev(RevocationKind::Policy, "deploy", 100, 160),
        rev(RevocationKind::Credential, "c1", 100, 100),
    ];
    assert!(blocking(&list, &["s"], "deploy", 159).is_some());
    assert!(blocking(&list, &["s"], "deploy", 160).is_none());
    assert!(blocking(&list, &["s"], "other", 120).is_none());
    assert!(
        revoking(&list, &facts("c9", "s", "deploy", 90), 170).is_some(),
        "lifting the block does not revive earlier credentials"
    );
}

#[test]
fn expired_entries_revoke_nothing() {
    let mut r = rev(RevocationKind::Credential, "c1", 100, 100);
    r.keep_until = 150;
    assert!(revoking(&[r], &facts("c1", "s", "p", 50), 150).is_none());
}

#[test]
fn facts_come_from_ferry_credential_claims() {
    let claims = serde_json::json!({
        "jti": "c1", "sub": "s", "client_id": "p", "iat": 7,
        "ferry": { "exchange_id": "e1" }
    });
    let f = CredentialFacts::from_claims(claims.as_object().unwrap()).unwrap();
    assert_eq!(f.exchange_id.as_deref(), Some("e1"));
    assert_eq!(f.issued_at, 7);
    assert!(
        CredentialFacts::from_claims(serde_json::json!({"jti": "c1"}).as_object().unwrap())
            .is_none()
    );
}

#[test]
fn a_stored_pattern_that_does_not_compile_blocks_everyone() {
    let huge = "?".repeat(200_000);
    assert!(
        subject_pattern(&huge).is_err(),
        "control: too big to compile"
    );
    let list = [rev(RevocationKind::Subject, &huge, 100, 500)];
    assert!(blocking(&list, &["anything"], "p", 200).is_some());
    let ok = [rev(RevocationKind::Subject, "repo:a/*", 100, 500)];
    assert!(blocking(&ok, &["repo:b/x"], "p", 200).is_none());
}

#[test]
fn a_subject_kill_switch_covers_an_agent_as_actor_and_every_credential_it_acts_in() {
    let agent = "spiffe://agents.example.org/agents/support-bot";
    let list = [rev(RevocationKind::Subject, agent, 100, 200)];
    assert!(
        blocking(&list, &["alice"], "tickets", 150).is_none(),
        "control"
    );
    assert!(
        blocking(&list, &["alice", agent], "tickets", 150).is_some(),
        "the agent acting for alice"
    );
    let mut acted = facts("c1", "alice", "tickets", 50);
    assert!(revoking(&list, &acted, 150).is_none(), "control");
    acted.actors = vec![
        "spiffe://agents.example.org/agents/summarizer".into(),
        agent.into(),
    ];
    assert!(
        revoking(&list, &acted, 150).is_some(),
        "an earlier actor of the chain"
    );
}

#[test]
fn an_act_chain_is_read_nearest_first_and_stops_at_a_link_without_sub() {
    let act = serde_json::json!({ "sub": "b", "act": { "sub": "a", "act": { "iss": "x" } } });
    assert_eq!(act_subjects(Some(&act)), ["b", "a"]);
    assert!(act_subjects(None).is_empty());
    let mut deep = serde_json::json!({ "sub": "last" });
    for i in 0..100 {
        deep = serde_json::json!({ "sub": format!("s{i}"), "act": deep });
    }
    assert_eq!(act_subjects(Some(&deep)).len(), MAX_ACT_LINKS, "bounded");
}

#[test]
fn revoking_a_credential_or_its_exchange_covers_every_credential_derived_from_it() {
    let mut hop = facts("c2", "alice", "tickets-hop", 50);
    hop.derived_from = vec!["credential:c1".into(), "exchange:ex-c1".into()];
    for list in [
        [rev(RevocationKind::Credential, "c1", 100, 100)],
        [rev(RevocationKind::Exchange, "ex-c1", 100, 100)],
    ] {
        assert!(revoking(&list, &hop, 200).is_some(), "{list:?}");
        assert!(revoking(&list, &facts("c3", "alice", "p", 50), 200).is_none());
    }
    assert_eq!(
        hop.revocation_ids(),
        [
            "credential:c2",
            "exchange:ex-c2",
            "credential:c1",
            "exchange:ex-c1"
        ],
        "what a store looks up for it"
    );
}

#[test]
fn a_lineage_is_read_from_the_ferry_claims_and_a_malformed_one_is_no_facts() {
    let claims = |derived: serde_json::Value| {
        serde_json::json!({
            "jti": "c2", "sub": "alice", "client_id": "p", "iat": 1,
            "ferry": { "exchange_id": "ex-c2", "derived_from": derived },
        })
        .as_object()
        .unwrap()
        .clone()
    };
    let facts = CredentialFacts::from_claims(&claims(serde_json::json!(["credential:c1"])));
    assert_eq!(facts.unwrap().derived_from, ["credential:c1"]);
    assert!(CredentialFacts::from_claims(&claims(serde_json::json!("credential:c1"))).is_none());
    assert!(CredentialFacts::from_claims(&claims(serde_json::json!([1]))).is_none());
    let long: Vec<String> = (0..=MAX_LINEAGE)
        .map(|i| format!("credential:c{i}"))
        .collect();
    assert!(CredentialFacts::from_claims(&claims(serde_json::json!(long))).is_none());
}

#[test]
fn a_policy_kill_switch_covers_the_credentials_derived_from_that_policys_credentials() {
    let mut hop = facts("c2", "alice", "tickets-hop", 50);
    hop.derived_policies = vec!["tickets".into()];
    let switch = [rev(RevocationKind::Policy, "tickets", 100, 100)];
    assert!(revoking(&switch, &hop, 200).is_some());
    assert!(
        revoking(&switch, &facts("c3", "alice", "tickets-hop", 50), 200).is_none(),
        "control: a hop not made from a tickets credential"
    );
    let mut later = hop.clone();
    later.issued_at = 150;
    assert!(
        revoking(&switch, &later, 200).is_none(),
        "issued after the switch"
    );
    let claims = serde_json::json!({
        "jti": "c2", "sub": "alice", "client_id": "tickets-hop", "iat": 1,
        "ferry": { "derived_policies": ["tickets"] },
    });
    let read = CredentialFacts::from_claims(claims.as_object().unwrap()).unwrap();
    assert_eq!(read.derived_policies, ["tickets"]);
    let long: Vec<String> = (0..=MAX_LINEAGE).map(|i| format!("p{i}")).collect();
    let claims = serde_json::json!({
        "jti": "c2", "sub": "alice", "client_id": "p", "iat": 1,
        "ferry": { "derived_policies": long },
    });
    assert!(CredentialFacts::from_claims(claims.as_object().unwrap()).is_none());
}
