//! The broker as its own issuer (`kind: ferry`): its credentials verify against its own signing
//! keys, handed over in process, so a delegation chain's next hop never fetches anything.
//!
//! [`Verifier::new`] leaves `ferry` issuers without keys (every lookup fails closed);
//! [`Verifier::with_broker`] gives them the broker's JWKS and public URL.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use super::{IssuerEntry, KeySetupError, Verifier};
use crate::issuer::{FetchError, IssuerKeys, IssuerKind, KeyFetcher, BROKER_URL};

/// What a `ferry` issuer is: the broker's public URL (`iss` of its credentials) and JWKS.
#[derive(Debug, Clone)]
pub struct BrokerKeys {
    pub public_url: String,
    /// The document served at `/.well-known/jwks.json`.
    pub jwks: Value,
}

/// Keys known in process; `None` until the broker's are handed over (fails closed).
pub(super) struct BrokerFetcher(pub Option<Vec<Value>>);

#[async_trait]
impl KeyFetcher for BrokerFetcher {
    async fn fetch(&self) -> Result<Vec<Value>, FetchError> {
        self.0.clone().ok_or(FetchError::BadDocument {
            what: "broker keys".to_string(),
            reason: "a `ferry` issuer is usable only inside `ferry serve`".to_string(),
        })
    }
}

impl Verifier {
    /// Gives every `ferry` issuer the broker's URL and keys. A `ferry` issuer whose `url:` is
    /// not the broker's public URL is a configuration error (its credentials could never verify).
    pub fn with_broker(mut self, broker: &BrokerKeys) -> Result<Verifier, KeySetupError> {
        let keys: Vec<Value> = match broker.jwks.get("keys") {
            Some(Value::Array(keys)) => keys.clone(),
            _ => Vec::new(),
        };
        let fetch = self.fetch.clone();
        for entry in self
            .issuers
            .iter_mut()
            .filter(|e| e.spec.kind == IssuerKind::Ferry)
        {
            if entry.spec.issuer_url == BROKER_URL {
                entry.spec.issuer_url = broker.public_url.clone();
            } else if entry.spec.issuer_url != broker.public_url {
                return Err(KeySetupError::KeyUrl {
                    issuer: entry.spec.name.clone(),
                    reason: format!(
                        "a `ferry` issuer is this broker: `url` must be its public URL {:?}, found {:?}",
                        broker.public_url, entry.spec.issuer_url
                    ),
                });
            }
            let fetcher = Arc::new(BrokerFetcher(Some(keys.clone())));
            *entry = IssuerEntry {
                keys: Arc::new(IssuerKeys::new(
                    entry.spec.name.clone(),
                    entry.spec.algorithms.clone(),
                    fetcher,
                    fetch.clone(),
                )),
                spec: entry.spec.clone(),
            };
        }
        let urls: Vec<&str> = self
            .issuers
            .iter()
            .map(|e| e.spec.issuer_url.as_str())
            .collect();
        if let Some(dup) = urls
            .iter()
            .enumerate()
            .find(|(i, u)| urls[..*i].contains(u))
        {
            return Err(KeySetupError::DuplicateIssuerUrl(dup.1.to_string()));
        }
        Ok(self)
    }
}
