//! Credential lifecycle: introspection (RFC 7662), revocation (RFC 7009), the admin API's
//! revocations and kill switches, opaque credentials and rate limits as the exchange uses them.
//!
//! Layout: `guard` (the exchange's call sites: rate-limit key, revoked cache hits, opaque
//! minting), `inspect` (is a presented credential one of ours, live and unrevoked?), `caller`
//! (authorising a caller by its own Ferry credential's scope), `request` (parsing the forms
//! and admin requests), `service` ([`LifecycleService`]:
//! introspect, revoke, admin), `record` (one audit event per request).
//!
//! Ferry governs access to itself with its own machinery: a caller presents a Ferry credential
//! (`Authorization: Bearer`), minted by an ordinary policy, whose audience is the broker's own
//! and whose scope holds `ferry:introspect` or `ferry:admin`.

pub mod caller;
pub mod guard;
pub mod inspect;
mod record;
pub mod request;
pub mod service;

pub use caller::{Caller, SCOPE_ADMIN, SCOPE_INTROSPECT};
pub use inspect::{Inspected, Inspector};
pub use request::AdminRequest;
pub use service::{LifecycleError, LifecycleService};
