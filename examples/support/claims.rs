//! A claims builder for GitHub-Actions-shaped tokens.
//!
//! The defaults are exactly what GitHub's OIDC provider sends for a push to `main` of `acme/api`
//! (every custom claim is a string, including ids and booleans), so policies are tested against
//! the real shape and type-strict matching is exercised for free.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{json, Map, Value};

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    let elapsed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    elapsed.as_secs() as i64
}

fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    aws_lc_rs::rand::fill(&mut bytes).expect("system randomness");
    u64::from_le_bytes(bytes)
}

/// The payload of a subject token, built up with chained setters.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims(Map<String, Value>);

impl Claims {
    /// A push to `refs/heads/main` of `acme/api` by `octocat`, issued now, valid for 300 s, with a
    /// random `jti` and `run_id`.
    pub fn github(issuer_url: &str, audience: &str) -> Claims {
        let now = now();
        let run_id = (random_u64() % 9_000_000_000 + 1_000_000_000).to_string();
        let sha = format!(
            "{:016x}{:016x}{:08x}",
            random_u64(),
            random_u64(),
            random_u64() as u32
        );
        let value = json!({
            "jti": uuid::Uuid::now_v7().to_string(),
            "sub": "repo:acme/api:ref:refs/heads/main",
            "aud": audience,
            "ref": "refs/heads/main",
            "sha": sha,
            "repository": "acme/api",
            "repository_owner": "acme",
            "repository_owner_id": "4242",
            "repository_visibility": "private",
            "repository_id": "123456789",
            "run_id": run_id,
            "run_number": "42",
            "run_attempt": "1",
            "runner_environment": "github-hosted",
            "actor": "octocat",
            "actor_id": "583231",
            "workflow": "Deploy",
            "workflow_ref": "acme/api/.github/workflows/deploy.yml@refs/heads/main",
            "workflow_sha": sha,
            "head_ref": "",
            "base_ref": "",
            "event_name": "push",
            "ref_type": "branch",
            "ref_protected": "true",
            "job_workflow_ref": "acme/api/.github/workflows/deploy.yml@refs/heads/main",
            "job_workflow_sha": sha,
            "iss": issuer_url,
            "nbf": now,
            "iat": now,
            "exp": now + 300,
        });
        match value {
            Value::Object(map) => Claims(map),
            _ => unreachable!("json! of an object literal is an object"),
        }
    }

    /// Claims from a JSON object (the provider builders in `provider_claims.rs` use this).
    pub fn from_value(value: Value) -> Claims {
        match value {
            Value::Object(map) => Claims(map),
            other => panic!("claims must be a JSON object, got {other}"),
        }
    }

    /// Sets any claim to any JSON value.
    pub fn set(mut self, key: &str, value: impl Into<Value>) -> Claims {
        self.0.insert(key.to_string(), value.into());
        self
    }

    pub fn remove(mut self, key: &str) -> Claims {
        self.0.remove(key);
        self
    }

    pub fn subject(self, sub: &str) -> Claims {
        self.set("sub", sub)
    }

    pub fn audience(self, aud: impl Into<Value>) -> Claims {
        self.set("aud", aud)
    }

    pub fn jti(self, jti: &str) -> Claims {
        self.set("jti", jti)
    }

    /// A job running in a deployment environment: GitHub then also puts the environment, not
    /// the ref, in `sub`.
    pub fn environment(self, name: &str) -> Claims {
        let repository = self.get_str("repository").unwrap_or("acme/api").to_string();
        self.set("environment", name)
            .subject(&format!("repo:{repository}:environment:{name}"))
    }

    /// `exp` = now + `secs` (negative for an already expired token).
    pub fn expires_in(self, secs: i64) -> Claims {
        self.set("exp", now() + secs)
    }

    /// Sets `iat` (absolute Unix seconds).
    pub fn issued_at(self, iat: i64) -> Claims {
        self.set("iat", iat)
    }

    pub fn not_before(self, nbf: i64) -> Claims {
        self.set("nbf", nbf)
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str)
    }

    pub fn to_value(&self) -> Value {
        Value::Object(self.0.clone())
    }

    /// The payload as compact JSON text, for crafted tokens.
    pub fn to_json(&self) -> String {
        Value::Object(self.0.clone()).to_string()
    }
}

impl Serialize for Claims {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}
