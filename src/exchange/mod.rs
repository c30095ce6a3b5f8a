//! The exchange: request parsing, the pure decision, and the service that does the I/O around it.

mod decide_shim;
mod decision;
pub mod form;
mod request;
mod service;

pub use decide_shim::decide;
pub use decision::{
    ConditionFailure, DecideContext, Decision, Denial, DenyReason, Grant, Observation, PolicyTrace,
};
pub use form::{ExchangeRequest, RequestError, TokenType};
pub use request::Requested;
pub use service::{
    Active, ExchangeError, ExchangeService, ExchangeSettings, RequestMeta, TokenResponse,
};
