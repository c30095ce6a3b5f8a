//! Placeholder with the agreed signature until the policy branch is merged.
use super::{DecideContext, Decision, Denial, DenyReason, Requested};
use crate::domain::UnixSeconds;
use crate::policy::PolicySet;
use crate::verify::VerifiedToken;

pub fn decide(
    _: &Requested,
    _: &VerifiedToken,
    _: &PolicySet,
    _: &DecideContext,
    _: UnixSeconds,
) -> Decision {
    Decision::Deny(Denial {
        reason: DenyReason::NoPolicy,
        policy: None,
        trace: vec![],
        observations: vec![],
    })
}
