//! The inputs of lifecycle requests, parsed and validated: the RFC 7662 / RFC 7009 form, and an
//! admin request turned into the [`Revocation`] to store.

use std::time::Duration;

use serde::Deserialize;

use super::caller::Caller;
use super::service::LifecycleError;
use crate::domain::UnixSeconds;
use crate::store::revocation::{subject_pattern, CREDENTIAL_LIFETIME_CEILING};
use crate::store::{Revocation, RevocationKind};

/// The longest block an operator can set in one call; lift it early with `unblock`.
pub const MAX_BLOCK: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// A kill switch without `for` blocks this long.
pub const DEFAULT_BLOCK: Duration = Duration::from_secs(60 * 60);

/// `POST /admin/revocations`: what to revoke, and for kill switches how long to block.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminRequest {
    pub kind: RevocationKind,
    pub value: String,
    /// Kill switches: block new exchanges this long (`1h`, `30m`; default 1h, at most 30d).
    #[serde(default, rename = "for")]
    pub duration: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// `token` (required, once) and `token_type_hint` (optional, once; a hint only) of RFC 7662
/// §2.1 / RFC 7009 §2.1. Other parameters are ignored, as both RFCs allow.
#[derive(Debug)]
pub struct TokenForm {
    pub token: String,
}

pub fn parse_token_form(body: &[u8]) -> Result<TokenForm, LifecycleError> {
    let mut token = None;
    let mut hint = false;
    for (name, value) in form_urlencoded::parse(body) {
        let seen = match name.as_ref() {
            "token" => token.replace(value.into_owned()).is_some(),
            "token_type_hint" => std::mem::replace(&mut hint, true),
            _ => false,
        };
        if seen {
            return Err(LifecycleError::InvalidRequest(format!(
                "parameter `{name}` is repeated"
            )));
        }
    }
    let token = token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| LifecycleError::InvalidRequest("parameter `token` is required".into()))?;
    Ok(TokenForm { token })
}

pub(super) fn credential_revocation(
    value: String,
    now: UnixSeconds,
    keep_until: UnixSeconds,
    caller: Option<&Caller>,
) -> Revocation {
    Revocation {
        kind: RevocationKind::Credential,
        value,
        created_at: now,
        block_until: now,
        keep_until: keep_until.max(now + 1),
        issued_through: None,
        reason: None,
        by: caller.map(|c| c.subject.clone()),
    }
}

/// Validates an admin request into the revocation to store. A kill switch reaches `reach` past
/// `now` (see [`Revocation::reach_past_creation`]) and is kept until the credentials issued up
/// to then have expired.
pub(super) fn revocation_from(
    req: AdminRequest,
    now: UnixSeconds,
    reach: Duration,
    caller: &Caller,
) -> Result<Revocation, LifecycleError> {
    let invalid = |m: String| LifecycleError::InvalidRequest(m);
    let value = req.value.trim().to_string();
    if value.is_empty() || value.len() > 1024 {
        return Err(invalid("`value` must be 1 to 1024 characters".into()));
    }
    let ceiling = now + CREDENTIAL_LIFETIME_CEILING.as_secs() as i64;
    let mut r = credential_revocation(value, now, ceiling, Some(caller));
    r.kind = req.kind;
    r.reason = req
        .reason
        .filter(|s| !s.is_empty())
        .map(|s| s.chars().take(500).collect());
    if !req.kind.is_kill_switch() {
        if req.duration.is_some() {
            return Err(invalid(
                "`for` applies only to subject and policy kill switches".into(),
            ));
        }
        return Ok(r);
    }
    if req.kind == RevocationKind::Subject {
        subject_pattern(&r.value).map_err(invalid)?;
    }
    let block = match req.duration.as_deref() {
        None => DEFAULT_BLOCK,
        Some(text) => humantime::parse_duration(text)
            .ok()
            .filter(|d| (Duration::from_secs(1)..=MAX_BLOCK).contains(d))
            .ok_or_else(|| {
                invalid(format!(
                    "`for` must be a duration between 1s and 30d, found `{text}`"
                ))
            })?,
    };
    r.block_until = now + block.as_secs() as i64;
    r.reach_past_creation(reach);
    let reached = r.issued_through.unwrap_or(now) - now;
    r.keep_until = r.block_until.max(ceiling + reached);
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller() -> Caller {
        Caller {
            credential_id: "c".into(),
            subject: "ops".into(),
            policy: "operator".into(),
        }
    }

    fn request(kind: RevocationKind, value: &str, duration: Option<&str>) -> AdminRequest {
        AdminRequest {
            kind,
            value: value.into(),
            duration: duration.map(str::to_string),
            reason: None,
        }
    }

    #[test]
    fn a_kill_switch_blocks_for_its_duration_and_is_kept_while_its_credentials_live() {
        let r = revocation_from(
            request(RevocationKind::Policy, "p", Some("2h")),
            1000,
            Duration::ZERO,
            &caller(),
        )
        .unwrap();
        assert_eq!(r.block_until, 1000 + 7200);
        assert_eq!(r.keep_until, 1000 + 86_400);
        assert_eq!(r.by.as_deref(), Some("ops"));
        let long = revocation_from(
            request(RevocationKind::Policy, "p", Some("3d")),
            0,
            Duration::ZERO,
            &caller(),
        )
        .unwrap();
        assert_eq!(
            long.keep_until,
            3 * 86_400,
            "kept at least as long as it blocks"
        );
        let default = revocation_from(
            request(RevocationKind::Subject, "s*", None),
            0,
            Duration::ZERO,
            &caller(),
        )
        .unwrap();
        assert_eq!(default.block_until, 3600);
    }

    #[test]
    fn a_kill_switch_reaches_the_clock_skew_past_its_creation_but_not_past_its_block() {
        let skew = Duration::from_secs(60);
        let switch = |duration| {
            revocation_from(
                request(RevocationKind::Policy, "p", Some(duration)),
                1000,
                skew,
                &caller(),
            )
            .unwrap()
        };
        let hour = switch("1h");
        assert_eq!(hour.issued_through, Some(1060));
        assert!(
            hour.revokes_issued_at(1060),
            "stamped by a clock 60 s ahead"
        );
        assert!(!hour.revokes_issued_at(1061));
        assert_eq!(
            hour.keep_until,
            1060 + 86_400,
            "kept until what it reaches has expired"
        );
        let short = switch("2s");
        assert_eq!(
            short.issued_through,
            Some(1001),
            "the last second it blocks"
        );
        assert!(
            !short.revokes_issued_at(1002),
            "issued once the block ended"
        );
        assert_eq!(switch("1s").issued_through, Some(1000));

        let mut lifted = hour.clone();
        lifted.unblock_at(1010);
        assert_eq!(lifted.block_until, 1010);
        assert_eq!(lifted.issued_through, Some(1009));
        assert!(!lifted.revokes_issued_at(1010), "issued after the unblock");
        let mut at_once = hour;
        at_once.unblock_at(1000);
        assert_eq!(
            (at_once.block_until, at_once.issued_through),
            (1001, Some(1000)),
            "lifted in the second it was made: that second stays blocked and covered"
        );
        assert!(!at_once.revokes_issued_at(1001));
    }

    #[test]
    fn a_credential_revocation_blocks_nothing() {
        let r = revocation_from(
            request(RevocationKind::Credential, "c1", None),
            5,
            Duration::ZERO,
            &caller(),
        )
        .unwrap();
        assert!(!r.blocks_at(5));
        assert!(revocation_from(
            request(RevocationKind::Credential, "c1", Some("1h")),
            5,
            Duration::ZERO,
            &caller()
        )
        .is_err());
    }

    #[test]
    fn token_forms_need_exactly_one_token() {
        assert_eq!(parse_token_form(b"token=a&x=y").unwrap().token, "a");
        for bad in [
            &b""[..],
            b"token=",
            b"token=a&token=b",
            b"token=a&token_type_hint=x&token_type_hint=y",
        ] {
            assert!(
                parse_token_form(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
