//! RFC 9068 JWT access tokens.
//!
//! The header never changes for a key, so it is encoded once; each mint serialises the claims,
//! base64url-encodes them and signs with the pre-parsed key (no per-call key parsing).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::{KeyError, MintError, MintRequest, Minted, Minter, SigningKey};
use crate::domain::Secret;

pub struct JwtMinter {
    key: SigningKey,
    issuer: String,
    header_b64: String,
    jwks: Value,
}

impl JwtMinter {
    pub fn new(key: SigningKey, issuer: impl Into<String>) -> Self {
        let header = json!({ "alg": key.algorithm(), "typ": "at+jwt", "kid": key.kid() });
        let header_b64 = URL_SAFE_NO_PAD.encode(header.to_string());
        let jwks = json!({ "keys": [key.public_jwk()] });
        Self {
            key,
            issuer: issuer.into(),
            header_b64,
            jwks,
        }
    }

    pub fn key_id(&self) -> &str {
        self.key.kid()
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    client_id: &'a str,
    scope: String,
    jti: &'a str,
    iat: i64,
    nbf: i64,
    exp: i64,
    ferry: FerryClaims<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    act: Option<&'a Value>,
    #[serde(flatten)]
    copied: &'a Map<String, Value>,
}

/// Ferry's own provenance claims: which exchange, which source issuer, which policy, from
/// which file of which policy-set version.
#[derive(Serialize)]
struct FerryClaims<'a> {
    exchange_id: &'a str,
    issuer: &'a str,
    policy: &'a str,
    policy_file: &'a str,
    policy_set: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    derived_from: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    derived_policies: &'a [String],
}

impl Minter for JwtMinter {
    fn mint(&self, r: &MintRequest<'_>) -> Result<Minted, MintError> {
        let id = uuid::Uuid::now_v7().simple().to_string();
        let expires_at = r.now + r.ttl_seconds as i64;
        let claims = Claims {
            iss: &self.issuer,
            sub: r.subject,
            aud: r.audience,
            client_id: r.policy,
            scope: r.scopes.to_scope_string(),
            jti: &id,
            iat: r.now,
            nbf: r.now,
            exp: expires_at,
            ferry: FerryClaims {
                exchange_id: r.exchange_id,
                issuer: r.source_issuer,
                policy: r.policy,
                policy_file: r.policy_file,
                policy_set: r.policy_set,
                derived_from: r.derived_from,
                derived_policies: r.derived_policies,
            },
            act: r.act,
            copied: r.claims,
        };
        let payload = serde_json::to_vec(&claims).map_err(|_| MintError::Encode)?;
        let mut token = String::with_capacity(self.header_b64.len() + payload.len() * 4 / 3 + 100);
        token.push_str(&self.header_b64);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        let signature = self
            .key
            .sign(token.as_bytes())
            .map_err(|_: KeyError| MintError::Key(KeyError::Sign))?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut token);
        Ok(Minted {
            token: Secret::new(token),
            id,
            issued_at: r.now,
            expires_at,
        })
    }

    fn jwks(&self) -> &Value {
        &self.jwks
    }

    fn issuer(&self) -> &str {
        &self.issuer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SigningAlgorithm;
    use crate::credential::generate_pkcs8;
    use crate::domain::ScopeSet;
    use jsonwebtoken::{decode, decode_header, jwk::Jwk, Algorithm, DecodingKey, Validation};

    fn minter(alg: SigningAlgorithm) -> JwtMinter {
        let der = generate_pkcs8(alg).unwrap();
        JwtMinter::new(
            SigningKey::from_pkcs8(&der, alg).unwrap(),
            "https://ferry.test",
        )
    }

    fn mint(m: &JwtMinter, now: i64) -> Minted {
        let scopes = ScopeSet::parse("deploy:api read:artifacts").unwrap();
        let mut copied = Map::new();
        copied.insert("repository".into(), "acme/api".into());
        m.mint(&MintRequest {
            subject: "repo:acme/api:ref:refs/heads/main",
            audience: "https://deploy.acme.internal",
            policy: "deploy-api",
            policy_file: "deploy-api.yaml",
            policy_set: "abc123",
            scopes: &scopes,
            ttl_seconds: 900,
            now,
            exchange_id: "ex-1",
            source_issuer: "github",
            claims: &copied,
            act: None,
            derived_from: &[],
            derived_policies: &[],
        })
        .unwrap()
    }

    fn verify_with_jwks(m: &JwtMinter, token: &str, alg: Algorithm) -> Value {
        let header = decode_header(token).unwrap();
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        assert_eq!(header.kid.as_deref(), Some(m.key_id()));
        let jwk: Jwk = serde_json::from_value(m.jwks()["keys"][0].clone()).unwrap();
        let mut v = Validation::new(alg);
        v.set_audience(&["https://deploy.acme.internal"]);
        v.set_issuer(&["https://ferry.test"]);
        decode::<Value>(token, &DecodingKey::from_jwk(&jwk).unwrap(), &v)
            .unwrap()
            .claims
    }

    #[test]
    fn es256_credentials_verify_with_the_published_jwks() {
        let m = minter(SigningAlgorithm::ES256);
        let now = crate::domain::unix_now();
        let minted = mint(&m, now);
        let claims = verify_with_jwks(&m, minted.token.expose(), Algorithm::ES256);
        assert_eq!(claims["sub"], "repo:acme/api:ref:refs/heads/main");
        assert_eq!(claims["client_id"], "deploy-api");
        assert_eq!(claims["scope"], "deploy:api read:artifacts");
        assert_eq!(claims["jti"], minted.id.as_str());
        assert_eq!(claims["exp"], now + 900);
        assert_eq!(claims["repository"], "acme/api");
        assert_eq!(claims["ferry"]["exchange_id"], "ex-1");
        assert_eq!(claims["ferry"]["issuer"], "github");
        assert_eq!(claims["ferry"]["policy_file"], "deploy-api.yaml");
        assert_eq!(claims["ferry"]["policy_set"], "abc123");
    }

    #[test]
    fn eddsa_credentials_verify_with_the_published_jwks() {
        let m = minter(SigningAlgorithm::EdDSA);
        let minted = mint(&m, crate::domain::unix_now());
        verify_with_jwks(&m, minted.token.expose(), Algorithm::EdDSA);
        assert_eq!(m.jwks()["keys"][0]["kty"], "OKP");
    }

    #[test]
    fn kid_is_the_rfc7638_thumbprint_and_stable_for_a_key() {
        let der = generate_pkcs8(SigningAlgorithm::ES256).unwrap();
        let a = SigningKey::from_pkcs8(&der, SigningAlgorithm::ES256).unwrap();
        let b = SigningKey::from_pkcs8(&der, SigningAlgorithm::ES256).unwrap();
        assert_eq!(a.kid(), b.kid());
        assert_eq!(a.kid().len(), 43);
        let other = minter(SigningAlgorithm::ES256);
        assert_ne!(a.kid(), other.key_id());
    }

    #[test]
    fn each_credential_gets_a_fresh_id() {
        let m = minter(SigningAlgorithm::ES256);
        assert_ne!(mint(&m, 1_700_000_000).id, mint(&m, 1_700_000_000).id);
    }
}
