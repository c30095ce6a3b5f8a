//! Delegation on the Redis store against a real `redis-server`: both tokens' `jti`s are claimed
//! in the exchange's first round trip (all or nothing on one server), and a delegated exchange
//! still costs two round trips; on a Cluster (the two records on different slots) delegation
//! works and a replayed actor token is still refused.

mod common;

use std::time::Duration;

use common::agents::{Agents, SUMMARIZER, SUPPORT_BOT, TICKETS_HOP_POLICY, TICKETS_POLICY};
use common::redis_server::{
    quiet_state_checks, replicas_at, shared_redis, unique_prefix, use_redis, RedisCluster,
    RedisServer,
};
use common::Fixture;
use ferry::store::{ClaimOutcome, JtiClaim, Store};

fn claim(slot: &str, key: &str) -> JtiClaim {
    JtiClaim {
        slot: slot.into(),
        key: key.into(),
        ttl: Duration::from_secs(60),
    }
}

#[tokio::test]
async fn an_actor_jti_is_single_use_across_replicas_and_a_refused_pair_records_nothing() {
    let (url, _server) = shared_redis();
    let (a, b) = replicas_at(&url);
    let actor = claim("agent", "mesh|a1");
    let first = a
        .claim_guarded(
            &[claim("alice", "idp|s1"), actor.clone()],
            None,
            None,
            None,
            &[],
        )
        .await
        .unwrap();
    assert_eq!(first.claims, [ClaimOutcome::Fresh, ClaimOutcome::Fresh]);
    let next_subject = claim("alice", "idp|s2");
    let pair = b
        .claim_guarded(&[next_subject.clone(), actor], None, None, None, &[])
        .await
        .unwrap();
    assert_eq!(pair.claims, [ClaimOutcome::Fresh, ClaimOutcome::Replayed]);
    assert_eq!(
        b.claim_and_lookup(Some(&next_subject), None)
            .await
            .unwrap()
            .0,
        ClaimOutcome::Fresh,
        "the refused pair did not use up the subject's jti"
    );
}

/// Agents on their own Redis server (quiet: nothing else talks to it), after one delegation:
/// scripts loaded, connection made.
async fn warmed_up_agents() -> (RedisServer, Agents) {
    let server = RedisServer::start();
    let fixture = Fixture::empty()
        .policy("tickets", TICKETS_POLICY)
        .policy("tickets-hop", TICKETS_HOP_POLICY)
        .settings(use_redis(&server.url(), &unique_prefix()))
        .settings(quiet_state_checks);
    let agents = Agents::spawn_with(fixture).await;
    agents.first_hop(SUPPORT_BOT, None).await;
    (server, agents)
}

#[tokio::test]
async fn a_delegated_exchange_costs_at_most_two_round_trips_to_redis() {
    let (server, agents) = warmed_up_agents().await;

    let before = server.traffic();
    let first = agents.first_hop(SUMMARIZER, None).await;
    let sent = server.traffic().since(&before);
    assert_eq!(sent.round_trips, 2, "the script, then the commit: {sent:?}");
    assert_eq!(sent.calls("evalsha"), 1, "{sent:?}");
    // Commands a script runs count in commandstats too: these are its own (the kill switches
    // with HGETALL, the revocation epoch with HMGET) and the commit's (XADD, SET).
    let known = [
        "evalsha", "set", "get", "exists", "xadd", "hgetall", "hmget",
    ];
    assert!(
        sent.calls.keys().all(|n| known.contains(&n.as_str())),
        "nothing outside the script and the commit: {sent:?}"
    );
    assert_eq!(
        sent.calls("exists"),
        2,
        "both tokens' jti checked inside the first script"
    );
    assert!(!first.is_empty());
}

#[tokio::test]
async fn after_a_script_cache_flush_the_first_scripted_exchange_takes_one_round_trip_more() {
    let (server, agents) = warmed_up_agents().await;
    assert_eq!(server.cli(&["SCRIPT", "FLUSH"]).as_deref(), Some("OK\n"));

    let before = server.traffic();
    let first = agents.first_hop(SUMMARIZER, None).await;
    let sent = server.traffic().since(&before);
    assert!(!first.is_empty(), "granted after the flush");
    assert_eq!(
        sent.round_trips, 3,
        "EVALSHA answered NOSCRIPT, one EVAL with the body, the commit: {sent:?}"
    );
    assert_eq!(sent.calls("script|load"), 0, "no SCRIPT LOAD: {sent:?}");
    assert_eq!(sent.calls("eval"), 1, "{sent:?}");

    let before = server.traffic();
    agents.first_hop(SUPPORT_BOT, None).await;
    let sent = server.traffic().since(&before);
    assert_eq!(
        sent.round_trips, 2,
        "the EVAL put the script back: {sent:?}"
    );
    assert_eq!(sent.calls("eval"), 0, "{sent:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_both_tokens_are_claimed_and_a_replayed_actor_is_refused() {
    let cluster = RedisCluster::start();
    let fixture = Fixture::empty()
        .policy("tickets", TICKETS_POLICY)
        .settings(use_redis(&cluster.url(), &unique_prefix()));
    let agents = Agents::spawn_with(fixture).await;
    let actor = agents.agent_token(&agents.agent(SUPPORT_BOT));
    let person = agents.person_token(&agents.alice());
    let (status, body) = agents.delegate(&person, &actor, None).await;
    assert_eq!(status, 200, "control: delegation on a cluster: {body}");
    let other_person = agents.person_token(&agents.alice());
    let (status, body) = agents.delegate(&other_person, &actor, None).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        agents.app.last_audit_event()["reason"],
        "actor_token_replayed"
    );
}

/// On a Cluster the actor's `jti` lives on another slot than the script's claims, so it is set
/// beside the script. An exchange refused for a replay of the other token or by the rate limit
/// gives it back: the unused token may be presented again, as on one server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_a_refused_delegation_gives_back_the_token_it_did_not_use() {
    let cluster = RedisCluster::start();
    let limited = TICKETS_POLICY.replace("  ttl: 15m\n", "  ttl: 15m\n  rate_limit: 1/s\n");
    assert_ne!(
        limited, TICKETS_POLICY,
        "the rate limit went into the policy"
    );
    let fixture = Fixture::empty()
        .policy("tickets", &limited)
        .settings(use_redis(&cluster.url(), &unique_prefix()));
    let agents = Agents::spawn_with(fixture).await;
    let token = |agents: &Agents| agents.agent_token(&agents.agent(SUPPORT_BOT));
    let first = agents.person_token(&agents.alice());
    let (status, body) = agents.delegate(&first, &token(&agents), None).await;
    assert_eq!(status, 200, "control: delegation on a cluster: {body}");

    // Refused by the rate limit: the actor token is not used up.
    let (person, actor) = (agents.person_token(&agents.alice()), token(&agents));
    let (status, body) = agents.delegate(&person, &actor, None).await;
    assert_eq!(status, 429, "{body}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = agents.delegate(&person, &actor, None).await;
    assert_eq!(status, 200, "the rate-limited pair, retried: {body}");

    // Refused because the subject token is a replay: the fresh actor token is not used up.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let actor = token(&agents);
    let (status, body) = agents.delegate(&first, &actor, None).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(agents.app.last_audit_event()["reason"], "token_replayed");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let person = agents.person_token(&agents.alice());
    let (status, body) = agents.delegate(&person, &actor, None).await;
    assert_eq!(status, 200, "the actor token of the refused replay: {body}");
}

#[tokio::test]
async fn a_revoked_credential_does_not_act_for_anyone_on_redis() {
    let (url, _server) = shared_redis();
    let fixture = Fixture::empty().settings(use_redis(&url, &unique_prefix()));
    common::agents::a_revoked_ferry_actor_is_refused(fixture).await;
}
