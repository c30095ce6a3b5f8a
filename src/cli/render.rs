//! Plain-text rendering of explanations and test outcomes for people: one row per condition,
//! `PASS`/`FAIL`, the `FILE:LINE:COL` it was written at, expected and actual.

use std::fmt::Write;
use std::path::Path;

use serde_json::Value;

use crate::domain::printable;
use crate::exchange::{CaseOutcome, Explanation, PolicyExplain};
use crate::verify::VerifiedToken;

/// The whole explanation, as `ferry policy explain` prints it.
pub fn explanation(e: &Explanation, token: &VerifiedToken, verified: bool, dir: &Path) -> String {
    let mut out = String::new();
    let how = if verified {
        "signature verified with the issuer's keys"
    } else {
        "decoded only, signature NOT verified (add --verify to check it)"
    };
    let _ = writeln!(out, "token:     {how}");
    let _ = writeln!(
        out,
        "issuer:    {}   subject: {}",
        printable(token.issuer.as_str()),
        printable(&token.subject)
    );
    let _ = writeln!(
        out,
        "policy set {}",
        &e.policy_set_version[..e.policy_set_version.len().min(12)]
    );
    out.push_str(&trace(e, dir));
    out
}

/// Policies, guardrails and the decision (shared with `ferry policy test` failures).
pub fn trace(e: &Explanation, dir: &Path) -> String {
    let mut out = String::new();
    if e.policies.is_empty() {
        let _ = writeln!(out, "\nno policy for this issuer");
    }
    for p in &e.policies {
        out.push_str(&policy(p, dir));
    }
    let _ = writeln!(out, "\nguardrails:");
    if e.guardrails.is_empty() {
        let _ = writeln!(out, "  none applied");
    }
    for g in &e.guardrails {
        let at = dir.join(&g.file);
        let desc = g
            .description
            .as_deref()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        let on = g
            .matched_token
            .map(|t| format!(" on the {t} token"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {:<10} {}{desc}{on}  at {}:{}:{}",
            g.effect,
            g.rule,
            at.display(),
            g.line,
            g.column
        );
    }
    let _ = write!(out, "\ndecision:  {} ({})", e.decision, e.reason);
    if let Some(p) = &e.policy {
        let _ = write!(out, " policy {p}");
    }
    if let Some(g) = &e.granted {
        let _ = write!(
            out,
            ": audience {} scopes `{}` ttl {}s",
            g.audience, g.scopes, g.ttl_seconds
        );
    }
    out.push('\n');
    out
}

fn policy(p: &PolicyExplain, dir: &Path) -> String {
    let mut out = String::new();
    let verdict = match (&p.skipped, p.holds) {
        (Some(why), _) => format!("not a candidate: {why}"),
        (None, true) => "all conditions hold".to_string(),
        (None, false) => "fails".to_string(),
    };
    let _ = writeln!(out, "\npolicy {} ({}): {verdict}", p.policy, p.mode);
    let file = dir.join(&p.file);
    for c in &p.conditions {
        let at = format!("{}:{}:{}", file.display(), c.line, c.column);
        let actual = match &c.actual {
            Some(v) => short(v),
            None => "(missing)".to_string(),
        };
        let _ = writeln!(
            out,
            "  {} {at:<40} {:<28} expected {}  actual {actual}",
            if c.passed { "PASS" } else { "FAIL" },
            c.path,
            c.expected
        );
    }
    out
}

fn short(v: &Value) -> String {
    let s = printable(&v.to_string()).into_owned();
    if s.chars().count() > 120 {
        format!("{}...", s.chars().take(117).collect::<String>())
    } else {
        s
    }
}

/// One test case line; failures add what was expected and the trace, indented.
pub fn case(o: &CaseOutcome, dir: &Path) -> String {
    if o.passed {
        return format!("ok    {}: {}\n", o.policy, o.name);
    }
    let mut out = format!(
        "FAIL  {}: {} ({})\n      expected {}, got {}\n",
        o.policy, o.name, o.location, o.expected, o.got
    );
    if let Some(t) = &o.trace {
        for line in trace(t, dir).lines() {
            let _ = writeln!(out, "      {line}");
        }
    }
    out
}
