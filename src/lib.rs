//! Ferry — a workload identity federation broker.
//!
//! A workload presents the OIDC/JWT token its platform gave it; Ferry verifies it, decides with the
//! trust policies what the workload may have, and mints a short-lived, scoped credential. Every
//! exchange, allowed or denied, leaves one audit event.
//!
//! Module map (see `../shared/design/ARCHITECTURE.md`):
//!
//! | module | owns |
//! |---|---|
//! | [`domain`] | newtypes parsed at the boundary: names, audiences, scopes, algorithms, secrets |
//! | [`policy`] | the `trust-policies/` file format: strict loading, compiled matchers, the policy index |
//! | [`reload`] | hot reload of the policy directory: load, check, swap atomically or keep the last good set |
//! | [`issuer`] | where issuer keys come from: pinned files, JWKS URLs, discovery, SPIFFE bundles; the key cache |
//! | [`verify`] | subject-token verification -> [`verify::VerifiedToken`] |
//! | [`exchange`] | request parsing, the pure `decide`, and the service that orchestrates I/O |
//! | [`credential`] | signing keys, RFC 9068 JWT credentials, the published JWKS |
//! | [`store`] | replay set and credential cache behind the `Store` trait |
//! | [`lifecycle`] | introspection, revocation, kill switches, opaque credentials, rate limits |
//! | [`audit`] | audit events and the hash-chained JSONL sink |
//! | [`http`] | routes; `http::error` is the only place errors become HTTP responses |
//! | [`config`], [`cli`], [`startup`], [`telemetry`] | settings, commands, wiring, logs and metrics |
#![forbid(unsafe_code)]

pub mod audit;
pub mod cli;
pub mod config;
pub mod credential;
pub mod domain;
pub mod exchange;
pub mod http;
pub mod issuer;
pub mod lifecycle;
pub mod policy;
pub mod reload;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod verify;
