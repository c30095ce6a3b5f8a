//! The [`KeyFetcher`] trait (where an issuer's JWKS comes from), its error type, the pinned-file
//! implementation and the in-memory test implementation.
//!
//! A fetcher returns raw JWK objects and nothing else: it does not parse keys (that is `jwk`),
//! does not cache and does not decide when to fetch (that is `cache`).

use std::path::PathBuf;

use async_trait::async_trait;
use serde_json::Value;

/// Why a key fetch failed. Messages name a path, a URL or a reason; never a body or a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("reading {path}: {reason}")]
    File { path: String, reason: String },
    #[error("GET {url}: {reason}")]
    Http { url: String, reason: String },
    #[error("GET {url}: HTTP status {status}")]
    Status { url: String, status: u16 },
    #[error("{what} is larger than {limit} bytes")]
    TooLarge { what: String, limit: usize },
    #[error("{what} is not a valid document: {reason}")]
    BadDocument { what: String, reason: String },
    #[error("URL {url} refused: {reason}")]
    UrlRefused { url: String, reason: String },
    #[error("discovery document names issuer {found:?}, expected {expected:?}")]
    IssuerMismatch { expected: String, found: String },
    #[error("the JWKS holds no usable signing key")]
    NoUsableKeys,
    #[cfg(test)]
    #[error("test fetcher failure: {0}")]
    Test(String),
}

/// Where one issuer's keys come from. Implementations: [`FileFetcher`], `HttpFetcher` (JWKS URL
/// or OIDC discovery), and the in-memory `MemoryFetcher` in tests.
#[async_trait]
pub(crate) trait KeyFetcher: Send + Sync {
    /// The JWK objects of the issuer's current JWKS, unparsed.
    async fn fetch(&self) -> Result<Vec<Value>, FetchError>;
}

/// Splits a JWKS document (`{"keys": [...]}`) into its JWK objects. Duplicate JSON keys are
/// refused here as everywhere else.
pub(crate) fn jwks_keys(body: &[u8], what: &str) -> Result<Vec<Value>, FetchError> {
    let bad = |reason: &str| FetchError::BadDocument {
        what: what.to_string(),
        reason: reason.to_string(),
    };
    let doc = crate::verify::parse_strict_json(body).map_err(|_| bad("not a JSON object"))?;
    match doc.get("keys") {
        Some(Value::Array(keys)) => Ok(keys.clone()),
        _ => Err(bad("no `keys` array")),
    }
}

/// Pinned keys: a JWKS file written by an operator. Read on every fetch so an operator can
/// rotate the file without a restart.
pub(crate) struct FileFetcher {
    path: PathBuf,
    max_bytes: usize,
}

impl FileFetcher {
    pub(crate) fn new(path: PathBuf, max_bytes: usize) -> Self {
        Self { path, max_bytes }
    }
}

#[async_trait]
impl KeyFetcher for FileFetcher {
    async fn fetch(&self) -> Result<Vec<Value>, FetchError> {
        let what = self.path.display().to_string();
        let body = tokio::fs::read(&self.path)
            .await
            .map_err(|e| FetchError::File {
                path: what.clone(),
                reason: e.kind().to_string(),
            })?;
        if body.len() > self.max_bytes {
            return Err(FetchError::TooLarge {
                what,
                limit: self.max_bytes,
            });
        }
        jwks_keys(&body, &what)
    }
}

/// Test fetcher: serves whatever the test set, counts calls, and can be slowed down so that
/// concurrent callers overlap (single-flight tests).
#[cfg(test)]
pub(crate) struct MemoryFetcher {
    answer: std::sync::Mutex<Result<Vec<Value>, String>>,
    calls: std::sync::atomic::AtomicUsize,
    delay: std::time::Duration,
}

#[cfg(test)]
impl MemoryFetcher {
    pub(crate) fn new(keys: Vec<Value>) -> Self {
        Self {
            answer: std::sync::Mutex::new(Ok(keys)),
            calls: Default::default(),
            delay: std::time::Duration::ZERO,
        }
    }

    pub(crate) fn with_delay(mut self, delay: std::time::Duration) -> Self {
        self.delay = delay;
        self
    }

    pub(crate) fn serve(&self, keys: Vec<Value>) {
        *self.answer.lock().unwrap() = Ok(keys);
    }

    pub(crate) fn fail(&self, reason: &str) {
        *self.answer.lock().unwrap() = Err(reason.to_string());
    }

    pub(crate) fn calls(&self) -> usize {
        self.calls.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[cfg(test)]
#[async_trait]
impl KeyFetcher for MemoryFetcher {
    async fn fetch(&self) -> Result<Vec<Value>, FetchError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        self.answer
            .lock()
            .unwrap()
            .clone()
            .map_err(FetchError::Test)
    }
}
