//! Newtypes shared by every layer, parsed once at the boundary ("parse, don't validate").
//!
//! Each type has private fields and a `FromStr`/`TryFrom` that is the only way in, so a value of
//! the type is always valid. Secrets are wrapped in [`Secret`] so they cannot be printed by
//! accident.

mod algorithm;
mod digest;
mod names;
mod printable;
mod scope;
mod secret;
mod spiffe;

pub use algorithm::{Algorithm, AlgorithmError};
pub use digest::{hex, sha256_hex};
pub use names::{Audience, IssuerName, NameError, PolicyName};
pub use printable::{json_line, json_safe, printable};
pub use scope::{Scope, ScopeError, ScopeSet};
pub use secret::Secret;
pub use spiffe::{SpiffeId, SpiffeIdError, TrustDomain};

/// Seconds since the Unix epoch. Pure code takes `now` as a parameter and never reads a clock.
pub type UnixSeconds = i64;

/// The current time in Unix seconds: the one place outside tests that reads the wall clock for
/// decisions (the service passes it into the pure layers).
pub fn unix_now() -> UnixSeconds {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
