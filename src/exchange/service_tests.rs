//! The service's own promises, with in-memory edges: one audit event per exchange, no
//! credential without a written audit record or a store answer, replay and cache behaviour, and
//! no secret in any audit event.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use serde_json::json;

use super::service::presented_credentials;
use super::*;
use crate::audit::{AuditSink, MemoryAuditSink, Outcome};
use crate::config::SigningAlgorithm;
use crate::credential::{generate_pkcs8, JwtMinter, SigningKey};
use crate::domain::{unix_now, Algorithm};
use crate::exchange::form;
use crate::issuer::testkit::{self, TestKey, ISS};
use crate::issuer::FetchSettings;
use crate::policy::PolicySet;
use crate::store::{
    CacheKey, CachedCredential, ClaimOutcome, JtiClaim, MemoryStore, RateDecision, Store,
    StoreError,
};
use crate::telemetry::Metrics;

const POLICY: &str = "issuer: test\naudience: https://ferry.test\nsubject: { glob: \"repo:acme/api:*\" }\n\
    grant:\n  audience: https://deploy.acme.internal\n  scopes: [deploy:api, read:artifacts]\n  ttl: 15m\n";

struct Harness {
    service: ExchangeService,
    audit: Arc<MemoryAuditSink>,
    key: TestKey,
}

fn harness(store: Arc<dyn Store>) -> Harness {
    harness_with(store, POLICY)
}

fn harness_with(store: Arc<dyn Store>, policy: &str) -> Harness {
    let key = TestKey::rsa("k1");
    let issuers = format!("issuers:\n  test:\n    kind: oidc\n    url: {ISS}\n    jwks_url: {ISS}/jwks\n    algorithms: [RS256]\n");
    let policies = PolicySet::from_sources(
        &issuers,
        &[("deploy.yaml".into(), policy.into())],
        std::path::Path::new("."),
    )
    .unwrap();
    let (verifier, _) = testkit::verifier(
        testkit::spec(&[Algorithm::RS256]),
        vec![key.jwk()],
        FetchSettings::default(),
    );
    let audit = Arc::new(MemoryAuditSink::new());
    let der = generate_pkcs8(SigningAlgorithm::ES256).unwrap();
    let service = ExchangeService {
        active: ArcSwap::from_pointee(Active { policies, verifier }),
        store,
        audit: audit.clone() as Arc<dyn AuditSink>,
        minter: Arc::new(JwtMinter::new(
            SigningKey::from_pkcs8(&der, SigningAlgorithm::ES256).unwrap(),
            "https://ferry.test",
        )),
        metrics: Arc::new(Metrics::new()),
        context: DecideContext {
            broker_audience: "https://ferry.test".parse().unwrap(),
        },
        settings: ExchangeSettings {
            leeway: Duration::from_secs(60),
            replay_margin: Duration::from_secs(60),
            cache_credentials: true,
        },
    };
    Harness {
        service,
        audit,
        key,
    }
}

impl Harness {
    fn token(&self, jti: &str) -> String {
        let now = unix_now();
        let mut claims = testkit::claims();
        claims["jti"] = json!(jti);
        claims["iat"] = json!(now - 5);
        claims["nbf"] = json!(now - 5);
        claims["exp"] = json!(now + 300);
        self.key.token("RS256", &claims)
    }

    async fn exchange(&self, token: &str, extra: &str) -> Result<TokenResponse, ExchangeError> {
        let body = format!(
            "grant_type={}&subject_token={token}&subject_token_type={}{extra}",
            form::GRANT_TYPE_TOKEN_EXCHANGE,
            TokenType::Jwt.uri()
        );
        self.service
            .exchange(form::parse(body.as_bytes()), &RequestMeta::default())
            .await
    }
}

/// A store that is down.
struct DownStore;

#[async_trait::async_trait]
impl Store for DownStore {
    async fn claim_and_lookup(
        &self,
        _: Option<&JtiClaim>,
        _: Option<&CacheKey>,
    ) -> Result<(ClaimOutcome, Option<CachedCredential>), StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    async fn cache_put(
        &self,
        _: &CacheKey,
        _: &CachedCredential,
        _: Duration,
    ) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    async fn ping(&self) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    async fn revoke(&self, _: &str, _: Duration) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    async fn is_revoked(&self, _: &str) -> Result<bool, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    async fn rate_limit(&self, _: &str, _: u32, _: Duration) -> Result<RateDecision, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    async fn revocations(&self) -> Result<Vec<crate::store::Revocation>, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    async fn revocations_for(
        &self,
        _: &[String],
    ) -> Result<Vec<crate::store::Revocation>, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    async fn put_revocation(&self, _: &crate::store::Revocation) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    async fn rate_gcra(&self, _: &crate::store::RateLimit) -> Result<RateDecision, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    async fn opaque_put(&self, _: &str, _: &str, _: Duration) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    async fn opaque_get(&self, _: &str) -> Result<Option<String>, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    async fn opaque_delete(&self, _: &str) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
}

#[tokio::test]
async fn a_valid_token_gets_a_credential_and_one_allow_event() {
    let h = harness(Arc::new(MemoryStore::new()));
    let r = h
        .exchange(&h.token("a"), "&scope=deploy:api")
        .await
        .unwrap();
    assert_eq!(r.scope, "deploy:api");
    let events = h.audit.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].decision, Some(Outcome::Allow));
    assert_eq!(events[0].policy.as_deref(), Some("deploy"));
    assert_eq!(events[0].scopes_granted, vec!["deploy:api"]);
}

#[tokio::test]
async fn no_credential_leaves_when_the_audit_record_cannot_be_written() {
    let h = harness(Arc::new(MemoryStore::new()));
    h.audit.set_failing(true);
    let err = h.exchange(&h.token("a"), "").await.unwrap_err();
    assert!(
        matches!(err, ExchangeError::Unavailable("audit_unavailable")),
        "{err:?}"
    );
    // Counted as the error it was, not as the allow that was not released.
    let counted = |labels: &[&str]| h.service.metrics.exchanges.with_label_values(labels).get();
    assert_eq!(counted(&["error", "audit_unavailable"]), 1);
    assert_eq!(counted(&["allow", "granted"]), 0);
}

#[tokio::test]
async fn no_credential_is_issued_when_the_store_is_down_and_the_attempt_is_recorded() {
    let h = harness(Arc::new(DownStore));
    let err = h.exchange(&h.token("a"), "").await.unwrap_err();
    assert!(
        matches!(err, ExchangeError::Unavailable("store_unavailable")),
        "{err:?}"
    );
    let events = h.audit.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].decision, Some(Outcome::Error));
    assert_eq!(events[0].reason, "store_unavailable");
    assert!(events[0].credential_id.is_none());
}

/// A shared store whose audit stream answers its first `refused` appends with a timeout
/// (claims and lookups still work). Every append reaches it: `streamed` holds them all, as a
/// server may carry out a command whose reply timed out.
/// With `hits_first`, it appends a cache hit's `allow` to the stream in the first round trip,
/// as one Redis server does under `hits_in_one_round_trip`.
struct StreamDownStore {
    inner: MemoryStore,
    refused: usize,
    hits_first: bool,
    streamed: std::sync::Mutex<Vec<serde_json::Value>>,
}

impl StreamDownStore {
    fn refusing(refused: usize) -> Self {
        StreamDownStore {
            inner: MemoryStore::new(),
            refused,
            hits_first: false,
            streamed: Default::default(),
        }
    }

    fn streamed(&self) -> Vec<serde_json::Value> {
        self.streamed.lock().unwrap().clone()
    }

    /// The appends once there are `n` (corrections are sent in the background), or after a
    /// second, whatever there is.
    async fn streamed_when(&self, n: usize) -> Vec<serde_json::Value> {
        for _ in 0..200 {
            if self.streamed().len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.streamed()
    }
}

#[async_trait::async_trait]
impl Store for StreamDownStore {
    async fn claim_and_lookup(
        &self,
        claim: Option<&JtiClaim>,
        key: Option<&CacheKey>,
    ) -> Result<(ClaimOutcome, Option<CachedCredential>), StoreError> {
        self.inner.claim_and_lookup(claim, key).await
    }
    async fn cache_put(
        &self,
        k: &CacheKey,
        c: &CachedCredential,
        t: Duration,
    ) -> Result<(), StoreError> {
        self.inner.cache_put(k, c, t).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
    fn keeps_audit_stream(&self) -> bool {
        true
    }
    fn records_hits_first(&self, _: &CacheKey, _: crate::domain::UnixSeconds) -> bool {
        self.hits_first
    }
    async fn claim_guarded(
        &self,
        claims: &[JtiClaim],
        cache_key: Option<&CacheKey>,
        rate: Option<&crate::store::RateLimit>,
        hit: Option<&crate::store::HitRecord<'_>>,
        revocation_ids: &[String],
    ) -> Result<crate::store::Guarded, StoreError> {
        let mut guarded = (self.inner)
            .claim_guarded(claims, cache_key, rate, None, revocation_ids)
            .await?;
        if hit.is_some() && guarded.cached.is_some() {
            let head = json!({"decision": "allow", "cache": "hit", "from": "first round trip"});
            self.streamed.lock().unwrap().push(head);
            guarded.hit_recorded = true;
        }
        Ok(guarded)
    }
    async fn commit(
        &self,
        event: &crate::audit::EventJson,
        cache: Option<crate::store::CachePut<'_>>,
    ) -> Result<(), StoreError> {
        {
            let mut streamed = self.streamed.lock().unwrap();
            streamed.push(serde_json::from_slice(event.as_bytes()).unwrap());
            if streamed.len() <= self.refused {
                return Err(StoreError::Unavailable("stream append timed out".into()));
            }
        }
        match cache {
            Some(put) => self.inner.cache_put(put.key, put.credential, put.ttl).await,
            None => Ok(()),
        }
    }
    async fn revoke(&self, id: &str, ttl: Duration) -> Result<(), StoreError> {
        self.inner.revoke(id, ttl).await
    }
    async fn is_revoked(&self, id: &str) -> Result<bool, StoreError> {
        self.inner.is_revoked(id).await
    }
    async fn rate_limit(&self, k: &str, l: u32, w: Duration) -> Result<RateDecision, StoreError> {
        self.inner.rate_limit(k, l, w).await
    }
    async fn revocations(&self) -> Result<Vec<crate::store::Revocation>, StoreError> {
        self.inner.revocations().await
    }
    async fn revocations_for(
        &self,
        ids: &[String],
    ) -> Result<Vec<crate::store::Revocation>, StoreError> {
        self.inner.revocations_for(ids).await
    }
    async fn put_revocation(&self, r: &crate::store::Revocation) -> Result<(), StoreError> {
        self.inner.put_revocation(r).await
    }
    async fn rate_gcra(&self, l: &crate::store::RateLimit) -> Result<RateDecision, StoreError> {
        self.inner.rate_gcra(l).await
    }
    async fn opaque_put(&self, d: &str, r: &str, t: Duration) -> Result<(), StoreError> {
        self.inner.opaque_put(d, r, t).await
    }
    async fn opaque_get(&self, d: &str) -> Result<Option<String>, StoreError> {
        self.inner.opaque_get(d).await
    }
    async fn opaque_delete(&self, d: &str) -> Result<(), StoreError> {
        self.inner.opaque_delete(d).await
    }
}

#[tokio::test]
async fn a_failed_audit_stream_append_issues_no_credential() {
    let h = harness(Arc::new(StreamDownStore::refusing(usize::MAX)));
    let err = h.exchange(&h.token("a"), "").await.unwrap_err();
    assert!(
        matches!(err, ExchangeError::Unavailable("audit_unavailable")),
        "{err:?}"
    );
    // The append, then the correction that the stream refused as well (in the background).
    let failures = || h.service.metrics.audit_failures.get();
    for _ in 0..200 {
        if failures() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(failures(), 2, "both failed stream appends are counted");
}

#[tokio::test]
async fn an_opaque_credential_is_not_released_when_its_record_and_stream_entry_fail() {
    let opaque = format!("{POLICY}  credential: opaque\n");
    let h = harness_with(Arc::new(MemoryStore::new()), &opaque);
    let granted = h.exchange(&h.token("a"), "").await.expect("control");
    assert!(
        crate::credential::opaque::looks_opaque(granted.access_token.expose()),
        "control: an opaque credential"
    );

    let h = harness_with(Arc::new(StreamDownStore::refusing(usize::MAX)), &opaque);
    let err = h.exchange(&h.token("a"), "").await.unwrap_err();
    assert!(
        matches!(err, ExchangeError::Unavailable("store_unavailable")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_withheld_allow_is_corrected_in_the_stream_as_in_the_file() {
    let opaque = format!("{POLICY}  credential: opaque\n");
    for policy in [POLICY, &opaque] {
        // The commit's reply times out, though the append reached the stream.
        let store = Arc::new(StreamDownStore::refusing(1));
        let h = harness_with(store.clone(), policy);
        let err = h.exchange(&h.token("a"), "").await.unwrap_err();
        assert!(matches!(err, ExchangeError::Unavailable(_)), "{err:?}");
        let filed = h.audit.events();
        let [allowed, withheld] = &filed[..] else {
            panic!("the allow and its correction: {filed:?}")
        };
        assert_eq!(allowed.decision, Some(Outcome::Allow));
        assert_eq!(withheld.decision, Some(Outcome::Error));
        // The correction is sent in the background: the refusal does not wait for it.
        let streamed = store.streamed_when(2).await;
        let [first, last] = &streamed[..] else {
            panic!("{policy}: the stream holds the allow and then its correction: {streamed:?}")
        };
        assert_eq!(first["decision"], "allow", "{first}");
        assert_eq!(last["decision"], "error", "{last}");
        assert_eq!(last["reason"], err.code(), "{last}");
        assert_eq!(last["exchange_id"], first["exchange_id"]);
        assert_eq!(last["exchange_id"].as_str(), Some(&*withheld.exchange_id));
        assert!(last.get("scopes_granted").is_none(), "{last}");
    }
}

#[tokio::test]
async fn a_hit_recorded_in_the_first_round_trip_is_corrected_in_the_stream_when_the_file_fails() {
    let store = Arc::new(StreamDownStore {
        hits_first: true,
        ..StreamDownStore::refusing(0)
    });
    let h = harness(store.clone());
    h.exchange(&h.token("a"), "").await.expect("the miss");
    h.audit.set_failing(true);
    let err = h.exchange(&h.token("b"), "").await.unwrap_err();
    assert!(
        matches!(err, ExchangeError::Unavailable("audit_unavailable")),
        "{err:?}"
    );
    let streamed = store.streamed_when(3).await;
    let [miss, hit, correction] = &streamed[..] else {
        panic!("the miss, the hit's allow and its correction: {streamed:?}")
    };
    assert_eq!(miss["decision"], "allow", "{miss}");
    assert_eq!(hit["from"], "first round trip", "{hit}");
    assert_eq!(correction["decision"], "error", "{correction}");
    assert_eq!(correction["reason"], "audit_unavailable", "{correction}");
    assert_eq!(correction["cache"], "hit", "{correction}");
    assert!(correction.get("scopes_granted").is_none(), "{correction}");
}

#[tokio::test]
async fn the_stream_is_corrected_even_when_the_file_refuses_the_correction() {
    // The stream append's reply times out (it was carried out), then the disk fills up.
    let store = Arc::new(StreamDownStore::refusing(1));
    let h = harness(store.clone());
    h.audit.fail_after(1);
    let err = h.exchange(&h.token("a"), "").await.unwrap_err();
    assert!(matches!(err, ExchangeError::Unavailable(_)), "{err:?}");
    assert_eq!(h.audit.len(), 1, "the file holds only the allow");
    let streamed = store.streamed_when(2).await;
    let [allowed, correction] = &streamed[..] else {
        panic!("the allow and its correction: {streamed:?}")
    };
    assert_eq!(allowed["decision"], "allow", "{allowed}");
    assert_eq!(correction["decision"], "error", "{correction}");
    assert_eq!(correction["exchange_id"], allowed["exchange_id"]);
}

#[tokio::test]
async fn every_exchange_records_exactly_one_event_whatever_its_outcome() {
    let h = harness(Arc::new(MemoryStore::new()));
    let token = h.token("a");
    let _ = h.exchange(&token, "").await; // allow
    let _ = h.exchange(&token, "").await; // replay
    let _ = h.exchange("not-a-jwt", "").await; // malformed token
    let _ = h
        .service
        .exchange(form::parse(b"grant_type=password"), &RequestMeta::default())
        .await;
    let _ = h.exchange(&h.token("b"), "&scope=admin").await; // scope outside every grant
    let events = h.audit.events();
    assert!(
        events[1].scopes_granted.is_empty(),
        "a refused exchange records no granted scopes"
    );
    let reasons: Vec<String> = events.into_iter().map(|e| e.reason).collect();
    assert_eq!(
        reasons,
        [
            "granted",
            "token_replayed",
            "malformed_token",
            "unsupported_grant_type",
            "scope_not_allowed"
        ]
    );
}

#[tokio::test]
async fn a_second_token_for_the_same_grant_reuses_the_cached_credential() {
    let h = harness(Arc::new(MemoryStore::new()));
    let first = h.exchange(&h.token("a"), "").await.unwrap();
    let second = h.exchange(&h.token("b"), "").await.unwrap();
    assert_eq!(first.access_token, second.access_token);
    let narrower = h
        .exchange(&h.token("c"), "&scope=deploy:api")
        .await
        .unwrap();
    assert_ne!(
        narrower.access_token, first.access_token,
        "a narrower grant is a different credential"
    );
    let shorter = h.exchange(&h.token("d"), "&ttl_seconds=60").await.unwrap();
    assert_ne!(
        shorter.access_token, first.access_token,
        "must not outlive the request"
    );
    assert!(shorter.expires_in <= 60);
    let caches: Vec<_> = h.audit.events().into_iter().map(|e| e.cache).collect();
    assert_eq!(caches[1], Some(crate::audit::CacheUse::Hit));
}

#[tokio::test]
async fn audit_events_hold_hashes_and_ids_never_tokens_or_credentials() {
    let h = harness(Arc::new(MemoryStore::new()));
    let token = h.token("a");
    let credential = h.exchange(&token, "").await.unwrap().access_token;
    let text = serde_json::to_string(&h.audit.events()).unwrap();
    let signature = token.rsplit('.').next().unwrap();
    assert!(
        !text.contains(signature),
        "subject token leaked into the audit event"
    );
    assert!(
        !text.contains(credential.expose().rsplit('.').next().unwrap()),
        "credential leaked"
    );
    let event = &h.audit.events()[0];
    assert_eq!(event.token_sha256.as_ref().unwrap().len(), 64);
}

/// A verified token of `issuer` with these claims (only what `presented_credentials` reads).
fn verified(issuer: &str, claims: serde_json::Value) -> crate::verify::VerifiedToken {
    crate::verify::VerifiedToken {
        issuer: issuer.parse().unwrap(),
        subject: claims["sub"].as_str().unwrap_or_default().to_string(),
        audiences: Vec::new(),
        expires_at: unix_now() + 60,
        issued_at: None,
        jti: claims["jti"].as_str().map(str::to_string),
        claims: claims.as_object().cloned().unwrap_or_default(),
        normalized: Default::default(),
        token_sha256: String::new(),
        algorithm: Algorithm::ES256,
        key_id: None,
    }
}

#[test]
fn a_presented_ferry_credential_is_checked_by_its_role_and_only_ferry_ones_are() {
    let credential = |jti: &str| {
        json!({ "sub": "alice", "jti": jti, "client_id": "tickets", "iat": 1,
                "ferry": { "exchange_id": format!("ex-{jti}") } })
    };
    let broker = |name: &crate::domain::IssuerName| name.as_str() == "broker";
    let subject = verified("broker", credential("s1"));
    let actor = verified("broker", credential("a1"));
    let got = presented_credentials(&subject, Some(&actor), broker).unwrap();
    let roles: Vec<(&str, Vec<String>)> = got
        .iter()
        .map(|(facts, code)| (*code, facts.revocation_ids()))
        .collect();
    assert_eq!(
        roles,
        [
            (
                "subject_token_revoked",
                vec!["credential:s1".into(), "exchange:ex-s1".into()]
            ),
            (
                "actor_token_revoked",
                vec!["credential:a1".into(), "exchange:ex-a1".into()]
            ),
        ]
    );
    // A token of another issuer is not a Ferry credential: nothing to check.
    let ci = verified("github", credential("s2"));
    assert!(presented_credentials(&ci, Some(&actor), broker)
        .unwrap()
        .iter()
        .all(|(_, code)| *code == "actor_token_revoked"));
    // A Ferry credential without the claims Ferry always mints is refused, not skipped.
    let bare = verified("broker", json!({ "sub": "alice" }));
    let err = presented_credentials(&bare, None, broker).unwrap_err();
    assert!(
        matches!(err, ExchangeError::Refused("broker_credential_malformed")),
        "{err:?}"
    );
}
