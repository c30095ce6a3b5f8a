//! The exchange: request parsing, the pure decision (with `delegation`, RFC 8693 actor rules),
//! and the service that does the I/O around it (`actor`: the actor token's verification and
//! replay claim).

mod actor;
mod decide;
mod decision;
mod delegation;
mod explain;
pub mod form;
mod guard;
mod issue;
mod offline;
mod request;
mod service;
#[cfg(test)]
mod service_tests;
mod testrun;

pub use decide::decide;
pub use decision::{
    ConditionFailure, ConditionResult, DecideContext, Decision, Denial, DenyReason, Grant,
    GuardrailHit, Observation, PolicyTrace,
};
pub use delegation::{ActorToken, ChainLink, Delegation};
pub use explain::{
    audit_trace, explain, explain_decision, Candidates, Explanation, Granted, PolicyExplain,
};
pub use form::{ExchangeRequest, RequestError, TokenType};
pub use offline::{decode_unverified, token_from_claims, OfflineTokenError};
pub use request::Requested;
pub use service::{
    Active, ExchangeError, ExchangeService, ExchangeSettings, RequestMeta, TokenResponse,
};
pub use testrun::{run_cases, CaseOutcome};
