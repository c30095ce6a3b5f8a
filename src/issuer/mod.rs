//! Issuer keys: where they come from (pinned JWKS files, JWKS URLs, OIDC discovery) and the
//! in-memory cache that serves them to the verifier.
//!
//! Only URLs written in `issuers.yaml` (or discovered from them) are ever fetched: nothing in a
//! token can make the broker contact a host.

mod spec;

pub use spec::{IssuerKind, IssuerSpec, KeySourceSpec};
mod shim;
pub use shim::*;
