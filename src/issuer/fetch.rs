//! The [`KeyFetcher`] trait (where an issuer's JWKS comes from), its error type, the pinned-file
//! implementation and the in-memory test implementation.
//!
//! A fetcher returns raw JWK objects (and what the source said about their freshness) and
//! nothing else: it does not parse keys (that is `jwk`), does not cache and does not decide
//! when to fetch (that is `cache`).

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

/// Why a key fetch failed. Messages name a path, a URL or a reason; never a body or a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("reading {path}: {reason}")]
    File { path: String, reason: String },
    #[error("GET {url}: {reason}")]
    Http { url: String, reason: HttpFailure },
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
    #[error("bundle spiffe_sequence {fetched} is lower than the current {current}: kept the current keys")]
    SequenceRollback { current: u64, fetched: u64 },
    #[cfg(test)]
    #[error("test fetcher failure: {0}")]
    Test(String),
}

impl FetchError {
    /// Stable reason code for the per-issuer failure counter (`/metrics`, `/readyz`).
    pub(crate) fn code(&self) -> &'static str {
        match self {
            Self::File { .. } => "file",
            Self::Http { reason, .. } => reason.code(),
            Self::Status { .. } => "status",
            Self::TooLarge { .. } => "too_large",
            Self::BadDocument { .. } => "bad_document",
            Self::UrlRefused { .. } => "url_refused",
            Self::IssuerMismatch { .. } => "issuer_mismatch",
            Self::NoUsableKeys => "no_usable_keys",
            Self::SequenceRollback { .. } => "sequence_rollback",
            #[cfg(test)]
            Self::Test(_) => "test",
        }
    }
}

/// Why an HTTP exchange with a key source failed, typed so that metrics never match strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HttpFailure {
    #[error("timed out")]
    Timeout,
    #[error("redirect refused")]
    Redirect,
    #[error("connection failed")]
    Connect,
    #[error("reading the body failed")]
    Body,
    #[error("answered with HTML, not JSON")]
    Html,
    #[error("request failed")]
    Request,
}

impl HttpFailure {
    pub(crate) fn code(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Redirect => "redirect",
            Self::Connect => "connect",
            Self::Body => "body",
            Self::Html => "html",
            Self::Request => "request",
        }
    }
}

/// What one fetch produced: the JWK objects, and what the source said about them.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct KeyDocument {
    pub(crate) keys: Vec<Value>,
    /// How long the source says the keys stay fresh (`Cache-Control: max-age`, or a SPIFFE
    /// bundle's `spiffe_refresh_hint`); the cache clamps it to its configured bounds.
    pub(crate) fresh_for: Option<Duration>,
    /// A SPIFFE bundle's `spiffe_sequence`; the cache never lets it go backwards.
    pub(crate) sequence: Option<u64>,
}

impl KeyDocument {
    pub(crate) fn jwks(keys: Vec<Value>) -> Self {
        Self {
            keys,
            ..Self::default()
        }
    }
}

/// The format of a key document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DocumentFormat {
    /// RFC 7517 JWK Set.
    Jwks,
    /// SPIFFE bundle (a JWK Set with `spiffe_sequence`, `spiffe_refresh_hint` and `use`).
    SpiffeBundle,
}

impl DocumentFormat {
    pub(crate) fn parse(self, body: &[u8], what: &str) -> Result<KeyDocument, FetchError> {
        match self {
            Self::Jwks => jwks_keys(body, what).map(KeyDocument::jwks),
            Self::SpiffeBundle => super::bundle::parse_bundle(body, what),
        }
    }
}

/// Where one issuer's keys come from. Implementations: [`FileFetcher`], `HttpFetcher` (JWKS URL
/// or OIDC discovery), and the in-memory `MemoryFetcher` in tests.
#[async_trait]
pub(crate) trait KeyFetcher: Send + Sync {
    /// The JWK objects of the issuer's current JWKS, unparsed.
    async fn fetch(&self) -> Result<Vec<Value>, FetchError>;

    /// The keys with their freshness and sequence, what the cache uses. Sources that know
    /// neither (the default) only return their keys.
    async fn fetch_document(&self) -> Result<KeyDocument, FetchError> {
        self.fetch().await.map(KeyDocument::jwks)
    }
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

/// Pinned keys: a JWKS file (or a SPIFFE bundle file) written by an operator. Read on every
/// fetch so an operator can rotate the file without a restart.
pub(crate) struct FileFetcher {
    path: PathBuf,
    max_bytes: usize,
    format: DocumentFormat,
}

impl FileFetcher {
    pub(crate) fn new(path: PathBuf, max_bytes: usize) -> Self {
        Self {
            path,
            max_bytes,
            format: DocumentFormat::Jwks,
        }
    }

    /// A pinned SPIFFE bundle file.
    pub(crate) fn spiffe_bundle(path: PathBuf, max_bytes: usize) -> Self {
        Self {
            format: DocumentFormat::SpiffeBundle,
            ..Self::new(path, max_bytes)
        }
    }
}

#[async_trait]
impl KeyFetcher for FileFetcher {
    async fn fetch(&self) -> Result<Vec<Value>, FetchError> {
        self.fetch_document().await.map(|doc| doc.keys)
    }

    async fn fetch_document(&self) -> Result<KeyDocument, FetchError> {
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
        self.format.parse(&body, &what)
    }
}

/// Test fetcher: serves whatever the test set, counts calls, and can be slowed down so that
/// concurrent callers overlap (single-flight tests).
#[cfg(test)]
pub(crate) struct MemoryFetcher {
    answer: std::sync::Mutex<Result<KeyDocument, String>>,
    calls: std::sync::atomic::AtomicUsize,
    delay: std::time::Duration,
}

#[cfg(test)]
impl MemoryFetcher {
    pub(crate) fn new(keys: Vec<Value>) -> Self {
        Self {
            answer: std::sync::Mutex::new(Ok(KeyDocument::jwks(keys))),
            calls: Default::default(),
            delay: std::time::Duration::ZERO,
        }
    }

    pub(crate) fn with_delay(mut self, delay: std::time::Duration) -> Self {
        self.delay = delay;
        self
    }

    pub(crate) fn serve(&self, keys: Vec<Value>) {
        self.serve_document(KeyDocument::jwks(keys));
    }

    /// Serves keys with a freshness hint and/or a SPIFFE sequence number.
    pub(crate) fn serve_document(&self, doc: KeyDocument) {
        *self.answer.lock().unwrap() = Ok(doc);
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
        self.fetch_document().await.map(|doc| doc.keys)
    }

    async fn fetch_document(&self) -> Result<KeyDocument, FetchError> {
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
