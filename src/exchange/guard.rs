//! Guardrails inside `decide` (POLICY.md "guardrails.yaml"): the issuer allowlist before any
//! policy, then, on the grant a policy would give, the deny rules, the scope ceiling and the
//! lifetime ceiling. Pure, like `decide`.
//!
//! Precedence: a guardrail only ever narrows or refuses; nothing here can widen a grant. In
//! `mode: audit` nothing is enforced: each rule that would have applied is recorded instead.

use crate::domain::ScopeSet;
use crate::policy::{holds, DenyRule, Guardrails, Mode};
use crate::verify::VerifiedToken;

use super::decision::{DenyReason, GuardrailHit};

/// The guardrails and what they did to one request.
pub(super) struct Guard<'a> {
    g: &'a Guardrails,
    pub hits: Vec<GuardrailHit>,
}

impl<'a> Guard<'a> {
    pub fn new(g: &'a Guardrails) -> Self {
        Guard {
            g,
            hits: Vec::new(),
        }
    }

    /// `issuers_allowed`, checked before any policy.
    pub fn issuer(&mut self, token: &VerifiedToken) -> Result<(), DenyReason> {
        let Some(allowed) = &self.g.issuers_allowed else {
            return Ok(());
        };
        if allowed.value.contains(&token.issuer) {
            return Ok(());
        }
        self.refuse(
            "issuers_allowed".to_string(),
            None,
            allowed.pos,
            DenyReason::IssuerNotAllowed,
        )
    }

    /// Deny rules, then the scope ceiling, on what a policy would grant. `explicit`: the scopes
    /// were asked for (else they are all of the policy's, and the ceiling narrows them).
    ///
    /// A deny rule is matched against every token of the exchange: the subject token and, in a
    /// delegation, the actor token. An agent a rule covers gets nothing by acting for someone
    /// it does not cover.
    pub fn grant(
        &mut self,
        token: &VerifiedToken,
        actor: Option<&VerifiedToken>,
        scopes: &mut ScopeSet,
        explicit: bool,
    ) -> Result<(), DenyReason> {
        for (i, rule) in self.g.deny.iter().enumerate() {
            let on = if applies(rule, token, scopes) {
                None
            } else if actor.is_some_and(|a| applies(rule, a, scopes)) {
                Some("actor")
            } else {
                continue;
            };
            let name = format!("deny[{i}]");
            let desc = Some(rule.description.clone());
            let refused = self.refuse(name, desc, rule.pos, DenyReason::GuardrailDenied);
            if let Some(hit) = self.hits.last_mut() {
                hit.matched_token = on;
            }
            refused?;
        }
        let Some(ceiling) = &self.g.scopes_allowed else {
            return Ok(());
        };
        let allowed: ScopeSet = scopes
            .iter()
            .filter(|s| ceiling.value.iter().any(|p| p.regex.is_match(s.as_str())))
            .cloned()
            .collect();
        if allowed.len() == scopes.len() {
            return Ok(());
        }
        if !explicit && !allowed.is_empty() && self.g.mode == Mode::Enforce {
            *scopes = allowed;
            self.hit("scopes_allowed", ceiling.pos, "capped");
            return Ok(());
        }
        let reason = DenyReason::ScopeAboveCeiling;
        self.refuse("scopes_allowed".to_string(), None, ceiling.pos, reason)
    }

    /// `max_ttl`: the lifetime ceiling.
    pub fn ttl(&mut self, ttl: &mut u64) {
        let Some(max) = &self.g.max_ttl else { return };
        let max_secs = max.value.as_secs();
        if *ttl <= max_secs {
            return;
        }
        match self.g.mode {
            Mode::Enforce => {
                *ttl = max_secs;
                self.hit("max_ttl", max.pos, "capped");
            }
            Mode::Audit => self.hit("max_ttl", max.pos, "would_cap"),
        }
    }

    /// Records a rule that refuses: an error when enforced, only a record in audit mode.
    fn refuse(
        &mut self,
        rule: String,
        description: Option<String>,
        pos: crate::policy::Pos,
        reason: DenyReason,
    ) -> Result<(), DenyReason> {
        let enforced = self.g.mode == Mode::Enforce;
        self.hits.push(GuardrailHit {
            rule,
            description,
            file: self.g.file.display().to_string(),
            line: pos.line,
            column: pos.column,
            effect: if enforced { "denied" } else { "would_deny" },
            matched_token: None,
        });
        if enforced {
            Err(reason)
        } else {
            Ok(())
        }
    }

    fn hit(&mut self, rule: &str, pos: crate::policy::Pos, effect: &'static str) {
        self.hits.push(GuardrailHit {
            rule: rule.to_string(),
            description: None,
            file: self.g.file.display().to_string(),
            line: pos.line,
            column: pos.column,
            effect,
            matched_token: None,
        });
    }
}

/// Whether a deny rule covers this token and these scopes.
fn applies(rule: &DenyRule, token: &VerifiedToken, scopes: &ScopeSet) -> bool {
    rule.issuer.as_ref().is_none_or(|i| *i == token.issuer)
        && rule.conditions.iter().all(|c| holds(c, token))
        && (rule.scopes.is_empty()
            || scopes
                .iter()
                .any(|s| rule.scopes.iter().any(|p| p.regex.is_match(s.as_str()))))
}
