//! Trust policies: the `trust-policies/` file format (POLICY.md), loaded strictly and compiled.

mod shim;
pub use shim::*;
