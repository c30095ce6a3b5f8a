//! The exchange: request parsing, the pure decision, and the service that does the I/O around it.

mod decide;
mod decision;
mod request;

pub use decide::decide;
pub use decision::{
    ConditionFailure, DecideContext, Decision, Denial, DenyReason, Grant, Observation, PolicyTrace,
};
pub use request::Requested;
