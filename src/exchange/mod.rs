//! The exchange: request parsing, the pure decision, and the service that does the I/O around it.

mod decide;
mod decision;
pub mod form;
mod request;
mod service;
#[cfg(test)]
mod service_tests;

pub use decide::decide;
pub use decision::{
    ConditionFailure, DecideContext, Decision, Denial, DenyReason, Grant, Observation, PolicyTrace,
};
pub use form::{ExchangeRequest, RequestError, TokenType};
pub use request::Requested;
pub use service::{
    Active, ExchangeError, ExchangeService, ExchangeSettings, RequestMeta, TokenResponse,
};
