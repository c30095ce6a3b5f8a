//! Key fetching over HTTP: a JWKS URL, OIDC discovery that leads to one, or a SPIFFE bundle
//! endpoint; and the freshness a response announces (`Cache-Control: max-age`).
//!
//! Owns the URL rules (https only; `http://` only to loopback hosts when the issuer is marked
//! `insecure_http`), the redirect rule (same scheme, host and port, at most
//! [`MAX_REDIRECTS`]), the timeouts and the body cap. Must not fetch any URL that did not come
//! from `issuers.yaml` or from that issuer's own discovery document.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::redirect::{Attempt, Policy};
use reqwest::{Client, StatusCode};
use serde_json::Value;
use url::{Host, Url};

use super::fetch::{DocumentFormat, HttpFailure, KeyDocument};
use super::{FetchError, FetchSettings, KeyFetcher};

/// Security invariant: a redirect may never leave the configured scheme, host and port, and a
/// chain of redirects is bounded.
const MAX_REDIRECTS: usize = 3;

/// Where an [`HttpFetcher`] finds the JWKS.
pub(crate) enum HttpSource {
    Jwks(Url),
    /// `{issuer}/.well-known/openid-configuration`; the document must name exactly `issuer`.
    Discovery {
        config_url: Url,
        issuer: String,
    },
    /// A SPIFFE bundle endpoint (served over web PKI, `https_web` profile).
    SpiffeBundle(Url),
}

pub(crate) struct HttpFetcher {
    client: Client,
    source: HttpSource,
    insecure_http: bool,
    max_body_bytes: usize,
}

/// The one HTTP client for all key fetching (connection pool shared by every issuer).
pub(crate) fn build_client(settings: &FetchSettings) -> Result<Client, reqwest::Error> {
    Client::builder()
        .connect_timeout(settings.connect_timeout)
        .timeout(settings.timeout)
        .redirect(Policy::custom(same_origin_redirects))
        .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
        .build()
}

fn same_origin_redirects(attempt: Attempt<'_>) -> reqwest::redirect::Action {
    let Some(origin) = attempt.previous().first() else {
        return attempt.error("redirect without an origin");
    };
    if attempt.previous().len() > MAX_REDIRECTS {
        return attempt.error("too many redirects");
    }
    let next = attempt.url();
    let same = next.scheme() == origin.scheme()
        && next.host_str() == origin.host_str()
        && next.port_or_known_default() == origin.port_or_known_default();
    if same {
        attempt.follow()
    } else {
        attempt.error("redirect to another scheme or host")
    }
}

/// The scheme rule for every URL the broker fetches keys from.
pub(crate) fn check_fetch_url(url: &Url, insecure_http: bool) -> Result<(), FetchError> {
    let refused = |reason: &str| {
        Err(FetchError::UrlRefused {
            url: url.to_string(),
            reason: reason.to_string(),
        })
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if !insecure_http => refused("plain http needs `insecure_http: true`"),
        "http" if is_loopback(url) => Ok(()),
        "http" => refused("plain http is allowed only to loopback hosts"),
        _ => refused("only https URLs are fetched"),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

impl HttpFetcher {
    pub(crate) fn new(
        client: Client,
        source: HttpSource,
        insecure_http: bool,
        max_body_bytes: usize,
    ) -> Self {
        Self {
            client,
            source,
            insecure_http,
            max_body_bytes,
        }
    }

    /// The discovery URL for an issuer: `{issuer without trailing slash}/.well-known/...`.
    pub(crate) fn discovery_url(issuer: &Url) -> Result<Url, url::ParseError> {
        let base = issuer.as_str().trim_end_matches('/');
        Url::parse(&format!("{base}/.well-known/openid-configuration"))
    }

    /// The body of a 200 answer, and the freshness its `Cache-Control` announces.
    async fn get(&self, url: &Url) -> Result<(Vec<u8>, Option<Duration>), FetchError> {
        check_fetch_url(url, self.insecure_http)?;
        let http = |reason: HttpFailure| FetchError::Http {
            url: url.to_string(),
            reason,
        };
        let mut resp = self
            .client
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| http(short_reason(&e)))?;
        if resp.status() != StatusCode::OK {
            return Err(FetchError::Status {
                url: url.to_string(),
                status: resp.status().as_u16(),
            });
        }
        let content_type = resp.headers().get(reqwest::header::CONTENT_TYPE);
        if content_type.is_some_and(|v| v.as_bytes().starts_with(b"text/html")) {
            return Err(http(HttpFailure::Html));
        }
        let fresh_for = max_age(resp.headers());
        // Read in chunks and stop at the cap: Content-Length is not trusted.
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| http(short_reason(&e)))? {
            if body.len() + chunk.len() > self.max_body_bytes {
                return Err(FetchError::TooLarge {
                    what: format!("response from {url}"),
                    limit: self.max_body_bytes,
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, fresh_for))
    }

    async fn discover(&self, config_url: &Url, issuer: &str) -> Result<Url, FetchError> {
        let (body, _) = self.get(config_url).await?;
        let bad = |reason: &str| FetchError::BadDocument {
            what: config_url.to_string(),
            reason: reason.to_string(),
        };
        let doc = crate::verify::parse_strict_json(&body).map_err(|_| bad("not a JSON object"))?;
        let found = doc
            .get("issuer")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no `issuer`"))?;
        if found != issuer {
            return Err(FetchError::IssuerMismatch {
                expected: issuer.to_string(),
                found: found.chars().take(200).collect(),
            });
        }
        let jwks_uri = doc
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no `jwks_uri`"))?;
        let jwks_uri = Url::parse(jwks_uri).map_err(|_| bad("`jwks_uri` is not a URL"))?;
        check_fetch_url(&jwks_uri, self.insecure_http)?;
        Ok(jwks_uri)
    }
}

fn short_reason(e: &reqwest::Error) -> HttpFailure {
    if e.is_timeout() {
        HttpFailure::Timeout
    } else if e.is_redirect() {
        HttpFailure::Redirect
    } else if e.is_connect() {
        HttpFailure::Connect
    } else if e.is_body() || e.is_decode() {
        HttpFailure::Body
    } else {
        HttpFailure::Request
    }
}

/// `Cache-Control: max-age=N` as a duration; `no-cache` and `no-store` count as zero (the
/// cache's lower bound then applies). Unparseable or absent: `None`.
pub(crate) fn max_age(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::CACHE_CONTROL)?.to_str().ok()?;
    let mut found = None;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-cache" || lower == "no-store" {
            return Some(Duration::ZERO);
        }
        if let Some(n) = lower.strip_prefix("max-age=") {
            found = n.trim_matches('"').parse().ok().map(Duration::from_secs);
        }
    }
    found
}

#[async_trait]
impl KeyFetcher for HttpFetcher {
    async fn fetch(&self) -> Result<Vec<Value>, FetchError> {
        self.fetch_document().await.map(|doc| doc.keys)
    }

    async fn fetch_document(&self) -> Result<KeyDocument, FetchError> {
        let (url, format) = match &self.source {
            HttpSource::Jwks(url) => (url.clone(), DocumentFormat::Jwks),
            HttpSource::Discovery { config_url, issuer } => (
                self.discover(config_url, issuer).await?,
                DocumentFormat::Jwks,
            ),
            HttpSource::SpiffeBundle(url) => (url.clone(), DocumentFormat::SpiffeBundle),
        };
        let (body, header_fresh_for) = self.get(&url).await?;
        let mut doc = format.parse(&body, url.as_str())?;
        // A bundle's own refresh hint wins over the HTTP header.
        doc.fresh_for = doc.fresh_for.or(header_fresh_for);
        Ok(doc)
    }
}
