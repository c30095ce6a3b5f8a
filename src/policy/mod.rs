//! Trust policies: the `trust-policies/` file format (POLICY.md), loaded strictly and compiled.
//!
//! Layout: `set` (the [`PolicySet`] and the directory loader: the only I/O besides reading test
//! files), `issuers`, `file` and `grant`, `guardrails`, `delegation` (one YAML file or block each
//! -> validated specs), `yaml` (parser options, spanned YAML tree, error rendering), `compile`
//! (YAML -> matchers), `normalized` (the `normalized:` block),
//! `matcher` (the pure check), `when` (CEL), `eval` (a policy against a token: first failure
//! for `decide`, every condition for explain), `model` (compiled policy), `index` (lookup for
//! `decide`), `lint` and `lint_set` (warnings for `ferry policy check`), `schema` (JSON Schema
//! for editors), [`testcases`] (the `tests/*.test.yaml` format).

pub(crate) mod compile;
mod delegation;
mod error;
mod eval;
mod file;
mod grant;
mod guardrails;
mod index;
mod issuer_rules;
mod issuers;
mod lifecycle;
mod lint;
mod lint_kubernetes;
mod lint_provider;
mod lint_set;
mod lint_spiffe;
pub(crate) mod matcher;
mod model;
mod normalized;
mod schema;
mod set;
pub mod testcases;
mod when;
pub(crate) mod yaml;

pub use error::{Lint, LoadError, LoadErrors};
pub(crate) use issuers::BROKER_URL;
pub use lifecycle::{CredentialKind, RateSpec};
pub use set::PolicySet;

pub(crate) use delegation::{ActorRule, DelegationSpec, MAX_DEPTH_LIMIT};
pub(crate) use eval::{condition_rows, evaluate, evaluate_all, first_failure, holds};
pub(crate) use guardrails::{DenyRule, Guardrails};
pub(crate) use model::{Mode, Policy};
pub(crate) use normalized::grant_source;
pub use schema::schemas;
pub(crate) use yaml::Pos;

#[cfg(test)]
mod tests;
