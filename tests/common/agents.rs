//! Delegation fixtures: a person's IdP (the app's `local-ci` dev issuer, subject `alice`), the
//! agents' SPIFFE trust domain `agents.example.org` (issuer `mesh`, kind `spiffe`: a dev issuer
//! serving its keys as a bundle and signing JWT-SVIDs, as the agent example does), and the
//! broker itself as issuer `broker` (kind `ferry`) so its credentials can be exchanged again.

use reqwest::StatusCode;
use serde_json::Value;

use super::{rfc8693, spawn_app, Alg, Claims, DevIssuer, Fixture, TestApp};

pub const TICKETS: &str = "https://tickets.example.org";
pub const SUPPORT_BOT: &str = "spiffe://agents.example.org/agents/support-bot";
pub const SUMMARIZER: &str = "spiffe://agents.example.org/agents/summarizer";
pub const TRIAGE: &str = "spiffe://agents.example.org/agents/triage";

/// alice's tickets, which agents of the mesh may use for her, two levels deep at most.
pub const TICKETS_POLICY: &str = r#"
issuer: local-ci
subject: alice
grant:
  audience: https://tickets.example.org
  scopes: [tickets:read, tickets:comment, tickets:admin]
  ttl: 15m
delegation:
  actors:
    - issuer: mesh
      subject: { glob: "spiffe://agents.example.org/agents/*" }
      scopes: [tickets:read, tickets:comment]
  max_depth: 2
"#;

/// The next hop: a Ferry credential for alice, exchanged by another agent.
pub const TICKETS_HOP_POLICY: &str = r#"
issuer: broker
audience: https://tickets.example.org
subject: alice
grant:
  audience: https://tickets.example.org
  scopes: [tickets:read, tickets:comment]
  ttl: 10m
delegation:
  actors:
    - issuer: mesh
      subject: { glob: "spiffe://agents.example.org/agents/*" }
      scopes: [tickets:read, tickets:comment]
  max_depth: 2
"#;

/// The agents' trust domain.
pub const AGENTS_TRUST_DOMAIN: &str = "agents.example.org";

/// `mesh`: the agents' trust domain, whose JWT-SVIDs must carry a `jti` (actor replay
/// protection); `broker`: this broker.
pub fn mesh_issuers(mesh: &DevIssuer) -> String {
    format!(
        "  mesh:\n    kind: spiffe\n    trust_domain: {AGENTS_TRUST_DOMAIN}\n    bundle_url: {}\n    insecure_http: true\n    algorithms: [ES256]\n    require_jti: true\n  broker:\n    kind: ferry\n",
        mesh.bundle_url()
    )
}

/// A broker with the tickets policies, and the mesh issuer.
pub struct Agents {
    pub app: TestApp,
    pub mesh: DevIssuer,
}

impl Agents {
    pub async fn spawn() -> Agents {
        Agents::spawn_with(
            Fixture::empty()
                .policy("tickets", TICKETS_POLICY)
                .policy("tickets-hop", TICKETS_HOP_POLICY),
        )
        .await
    }

    /// `fixture` plus the mesh and broker issuers.
    pub async fn spawn_with(fixture: Fixture) -> Agents {
        let mesh = DevIssuer::start("127.0.0.1:0");
        let app = spawn_app(fixture.issuer(&mesh_issuers(&mesh))).await;
        Agents { app, mesh }
    }

    /// alice's token from her IdP, addressed to the broker.
    pub fn alice(&self) -> Claims {
        self.app.claims().subject("alice")
    }

    pub fn person_token(&self, claims: &Claims) -> String {
        self.app.sign(claims)
    }

    /// An agent's JWT-SVID addressed to the broker: `sub`, `aud` as a list, `exp`, `iat` as
    /// SPIRE issues them (no `iss`), plus the `jti` this trust domain's entry requires.
    pub fn agent(&self, spiffe_id: &str) -> Claims {
        let now = super::now();
        Claims::from_value(serde_json::json!({
            "sub": spiffe_id, "aud": [self.app.base_url], "exp": now + 300, "iat": now,
            "jti": uuid::Uuid::now_v7().to_string(),
        }))
    }

    pub fn agent_token(&self, claims: &Claims) -> String {
        self.mesh.sign(claims, Alg::ES256, None)
    }

    /// `POST /token` with a subject and an actor token, for the tickets audience.
    pub async fn delegate(
        &self,
        subject: &str,
        actor: &str,
        scope: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut form = vec![
            ("grant_type", rfc8693::GRANT_TYPE_TOKEN_EXCHANGE),
            ("subject_token", subject),
            ("subject_token_type", rfc8693::TOKEN_TYPE_JWT),
            ("actor_token", actor),
            ("actor_token_type", rfc8693::TOKEN_TYPE_JWT),
            ("audience", TICKETS),
        ];
        if let Some(scope) = scope {
            form.push(("scope", scope));
        }
        let (status, body, _) = self.app.exchange(&form).await;
        (status, body)
    }

    /// alice's token plus a fresh token of `agent`: the first hop, which must be granted.
    pub async fn first_hop(&self, agent: &str, scope: Option<&str>) -> String {
        let person = self.person_token(&self.alice());
        let actor = self.agent_token(&self.agent(agent));
        let (status, body) = self.delegate(&person, &actor, scope).await;
        assert_eq!(status, 200, "first hop: {body}");
        body["access_token"].as_str().unwrap().to_string()
    }
}

/// A delegation whose actor is a Ferry credential: the agent's own, which it got for the broker
/// (an actor token must be addressed to the broker).
const TICKETS_FOR_FERRY_ACTORS: &str = r#"
issuer: local-ci
subject: alice
grant:
  audience: https://tickets.example.org
  scopes: [tickets:read]
  ttl: 15m
delegation:
  actors:
    - issuer: broker
      subject: { glob: "spiffe://agents.example.org/agents/*" }
      scopes: [tickets:read]
"#;

/// An agent acts for alice with a Ferry credential of its own as the actor token; once that
/// credential is revoked, it acts for no one (`actor_token_revoked`, the entry recorded).
/// `fixture` chooses the store.
pub async fn a_revoked_ferry_actor_is_refused(fixture: Fixture) {
    let fixture = fixture
        .policy("tickets-ferry-actors", TICKETS_FOR_FERRY_ACTORS)
        .settings(|s| s.policies.reload_interval = std::time::Duration::from_millis(50));
    let agents = &Agents::spawn_with(fixture).await;
    // The agents' own policy names the broker's URL, known only now: a hot reload brings it.
    let (_, ready) = agents.app.get_json("/readyz").await;
    assert_eq!(ready["policies"]["loaded"], 1, "{ready}");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let own = format!(
        "issuer: mesh\nsubject: {{ glob: \"spiffe://agents.example.org/agents/*\" }}\n\
         grant:\n  audience: {}\n  scopes: [agents:act]\n  ttl: 10m\n",
        agents.app.base_url
    );
    std::fs::write(agents.app.policies_dir.join("agents-own.yaml"), own).unwrap();
    agents.app.wait_for_loaded_policies(2).await;
    // Each hop claims its actor token's jti, so each needs a credential of its own: two agents
    // (one agent asking twice would be served the same credential from the cache).
    let own_credential = |agent: &'static str| async move {
        let svid = agents.agent_token(&agents.agent(agent));
        let form = [
            ("grant_type", rfc8693::GRANT_TYPE_TOKEN_EXCHANGE),
            ("subject_token", svid.as_str()),
            ("subject_token_type", rfc8693::TOKEN_TYPE_JWT),
            ("audience", agents.app.base_url.as_str()),
        ];
        let (status, body, _) = agents.app.exchange(&form).await;
        assert_eq!(status, 200, "the agent's own credential: {body}");
        body["access_token"].as_str().unwrap().to_string()
    };
    let person = || agents.person_token(&agents.alice());
    let (kept, revoked) = (
        own_credential(SUPPORT_BOT).await,
        own_credential(SUMMARIZER).await,
    );
    let (status, body) = agents.delegate(&person(), &kept, None).await;
    assert_eq!(
        status, 200,
        "control: a live credential acts: {}",
        body["error"]
    );
    let issued = body["access_token"].as_str().unwrap();
    let claims = agents.app.verify_credential(issued, TICKETS).await;
    assert_eq!(claims["act"]["sub"], SUPPORT_BOT, "{claims}");

    let broker = super::lifecycle::Broker::new(&agents.app.base_url);
    assert_eq!(broker.revoke(&revoked).await, StatusCode::OK);
    let (status, body) = agents.delegate(&person(), &revoked, None).await;
    assert_eq!(status, 400, "refused: {}", body["error"]);
    assert_eq!(body["error"], "invalid_request");
    let event = agents.app.last_audit_event();
    assert_eq!(event["decision"], "deny", "{event}");
    assert_eq!(event["reason"], "actor_token_revoked", "{event}");
    assert_eq!(event["revocation"]["kind"], "credential", "{event}");
    assert_eq!(
        event["revocation"]["value"],
        super::jwt_part(&revoked, 1)["jti"],
        "the entry that refused it is recorded"
    );
    assert!(event.get("credential_id").is_none(), "nothing issued");
}
