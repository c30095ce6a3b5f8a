//! Building a [`Verifier`] from the issuer specs: validation of what the loader handed over,
//! and one key fetcher per issuer.
//!
//! Must not fetch anything: keys load on `warm_up` or on the first token.

use std::sync::Arc;

use super::{IssuerEntry, Verifier, VerifySettings};
use crate::domain::IssuerName;
use crate::issuer::{
    check_fetch_url, BundleLocation, FetchSettings, FileFetcher, HttpFetcher, HttpSource,
    IssuerKeys, IssuerSpec, KeyFetcher, KeySourceSpec,
};

#[derive(Debug, thiserror::Error)]
pub enum KeySetupError {
    #[error("issuer URL {0:?} is configured twice; a token's `iss` must select one issuer")]
    DuplicateIssuerUrl(String),
    #[error("issuer {0} is configured twice")]
    DuplicateName(IssuerName),
    #[error("issuer {0} allows no algorithm")]
    NoAlgorithms(IssuerName),
    #[error("issuer {issuer}: {reason}")]
    KeyUrl { issuer: IssuerName, reason: String },
    #[error("building the HTTP client for key fetching: {0}")]
    HttpClient(String),
}

impl Verifier {
    pub fn new(
        issuers: &[IssuerSpec],
        verify: VerifySettings,
        fetch: FetchSettings,
    ) -> Result<Verifier, KeySetupError> {
        let needs_http = issuers.iter().any(|s| {
            matches!(
                s.keys,
                KeySourceSpec::JwksUrl(_)
                    | KeySourceSpec::Discovery(_)
                    | KeySourceSpec::SpiffeBundle {
                        bundle: BundleLocation::Url(_),
                        ..
                    }
            )
        });
        let client = match needs_http {
            true => Some(
                crate::issuer::build_client(&fetch)
                    .map_err(|e| KeySetupError::HttpClient(e.to_string()))?,
            ),
            false => None,
        };
        let mut with_fetchers = Vec::with_capacity(issuers.len());
        for spec in issuers {
            let fetcher = fetcher_for(spec, client.as_ref(), &fetch)?;
            with_fetchers.push((spec.clone(), fetcher));
        }
        Self::with_fetchers(with_fetchers, verify, fetch)
    }

    /// For a hot reload: takes over the key caches of `old`'s issuers whose spec is unchanged,
    /// so a reload neither refetches their keys nor loses their last good keys during an
    /// issuer outage. Issuers that are new or changed keep their fresh, empty cache.
    pub fn adopt_keys_from(&mut self, old: &Verifier) {
        for entry in &mut self.issuers {
            if let Some(same) = old.issuers.iter().find(|o| o.spec == entry.spec) {
                entry.keys = same.keys.clone();
            }
        }
    }

    /// Fetches keys for the issuers that have none yet (after [`Verifier::adopt_keys_from`]:
    /// the new ones), concurrently. Never fails; see [`Verifier::key_status`].
    pub async fn warm_up_cold(&self) {
        let cold = self
            .issuers
            .iter()
            .filter(|e| !e.keys.status().ready)
            .map(|e| e.keys.refresh_gated(std::time::Duration::ZERO));
        futures_util::future::join_all(cold).await;
    }

    /// Builds a verifier over given fetchers: `new` uses the real ones, tests in-memory ones.
    pub(crate) fn with_fetchers(
        issuers: Vec<(IssuerSpec, Arc<dyn KeyFetcher>)>,
        verify: VerifySettings,
        fetch: FetchSettings,
    ) -> Result<Verifier, KeySetupError> {
        let mut entries: Vec<IssuerEntry> = Vec::with_capacity(issuers.len());
        for (spec, fetcher) in issuers {
            if entries.iter().any(|e| e.spec.issuer_url == spec.issuer_url) {
                return Err(KeySetupError::DuplicateIssuerUrl(spec.issuer_url));
            }
            if entries.iter().any(|e| e.spec.name == spec.name) {
                return Err(KeySetupError::DuplicateName(spec.name));
            }
            if spec.algorithms.is_empty() {
                return Err(KeySetupError::NoAlgorithms(spec.name));
            }
            let keys = IssuerKeys::new(
                spec.name.clone(),
                spec.algorithms.clone(),
                fetcher,
                fetch.clone(),
            );
            entries.push(IssuerEntry {
                spec,
                keys: Arc::new(keys),
            });
        }
        Ok(Verifier {
            settings: verify,
            issuers: entries,
            fetch,
        })
    }
}

fn fetcher_for(
    spec: &IssuerSpec,
    client: Option<&reqwest::Client>,
    fetch: &FetchSettings,
) -> Result<Arc<dyn KeyFetcher>, KeySetupError> {
    let url_error = |reason: String| KeySetupError::KeyUrl {
        issuer: spec.name.clone(),
        reason,
    };
    let max = fetch.max_body_bytes;
    let source = match &spec.keys {
        KeySourceSpec::JwksFile(path) => return Ok(Arc::new(FileFetcher::new(path.clone(), max))),
        KeySourceSpec::Broker => return Ok(Arc::new(super::broker::BrokerFetcher(None))),
        KeySourceSpec::SpiffeBundle { bundle, .. } => match bundle {
            BundleLocation::File(path) => {
                return Ok(Arc::new(FileFetcher::spiffe_bundle(path.clone(), max)))
            }
            BundleLocation::Url(url) => HttpSource::SpiffeBundle(url.clone()),
        },
        KeySourceSpec::JwksUrl(url) => HttpSource::Jwks(url.clone()),
        KeySourceSpec::Discovery(url) => HttpSource::Discovery {
            config_url: HttpFetcher::discovery_url(url)
                .map_err(|_| url_error(format!("cannot build a discovery URL from {url}")))?,
            issuer: spec.issuer_url.clone(),
        },
    };
    let client = client.ok_or_else(|| KeySetupError::HttpClient("no client was built".into()))?;
    let url = match &source {
        HttpSource::Jwks(url) | HttpSource::SpiffeBundle(url) => url,
        HttpSource::Discovery { config_url, .. } => config_url,
    };
    check_fetch_url(url, spec.insecure_http).map_err(|e| url_error(e.to_string()))?;
    let fetcher = HttpFetcher::new(client.clone(), source, spec.insecure_http, max);
    Ok(Arc::new(fetcher))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::policy::PolicySet;

    fn issuers(text: &str) -> Vec<IssuerSpec> {
        let set = PolicySet::from_sources(text, &[], Path::new("tp")).unwrap();
        set.issuers().to_vec()
    }

    #[test]
    fn a_reloaded_verifier_keeps_the_key_caches_of_unchanged_issuers_only() {
        let before = "issuers:\n  github:\n    kind: github-actions\n  corp:\n    kind: oidc\n    url: https://idp.example.com\n";
        let after = before.replace("idp.example.com", "idp2.example.com");
        let old = Verifier::new(&issuers(before), Default::default(), Default::default()).unwrap();
        let mut new =
            Verifier::new(&issuers(&after), Default::default(), Default::default()).unwrap();
        new.adopt_keys_from(&old);
        let keys = |v: &Verifier, name: &str| {
            v.issuers
                .iter()
                .find(|e| e.spec.name.as_str() == name)
                .unwrap()
                .keys
                .clone()
        };
        assert!(Arc::ptr_eq(&keys(&new, "github"), &keys(&old, "github")));
        assert!(
            !Arc::ptr_eq(&keys(&new, "corp"), &keys(&old, "corp")),
            "changed spec"
        );
    }
}
