//! `ferry audit list FILE`: the audit trail for people, one line per exchange; `--audit-mode`
//! keeps only exchanges where a `mode: audit` policy or guardrail recorded what it would have
//! done, and shows each of those would-be outcomes with the condition that decided it.

use std::path::Path;
use std::process::ExitCode;

use serde_json::Value;

use crate::domain::{json_safe, printable};

/// Filters for `ferry audit list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// The JSONL audit file.
    pub file: std::path::PathBuf,
    /// Only exchanges with would-allow / would-deny records (audit-mode policies, guardrails).
    #[arg(long)]
    pub audit_mode: bool,
    /// Only exchanges that name this policy (deciding, or observed in audit mode).
    #[arg(long)]
    pub policy: Option<String>,
    /// Print the matching events as JSON lines instead.
    #[arg(long)]
    pub json: bool,
}

pub fn audit_list(args: &ListArgs) -> ExitCode {
    let text = match std::fs::read_to_string(&args.file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {}: {e}", args.file.display());
            return ExitCode::from(1);
        }
    };
    let mut shown = 0;
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            eprintln!("error: {}:{}: not a JSON event", args.file.display(), n + 1);
            return ExitCode::from(1);
        };
        if !keep(&event, args) {
            continue;
        }
        shown += 1;
        if args.json {
            println!("{}", json_safe(&event.to_string()));
        } else {
            print!("{}", render(&event, &args.file));
        }
    }
    if !args.json {
        println!("{shown} events");
    }
    ExitCode::SUCCESS
}

/// The would-be outcomes of an event: audit-mode policies and audit-mode guardrails.
fn would_be(event: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for o in event["observations"].as_array().into_iter().flatten() {
        let why = match &o["failed"] {
            Value::Null => String::new(),
            f => format!(
                ": {} at line {} expected {} actual {}",
                s(&f["path"]),
                f["line"],
                s(&f["expected"]),
                f.get("actual")
                    .map_or("(missing)".to_string(), Value::to_string)
            ),
        };
        out.push(format!(
            "policy {} would {}{why}",
            s(&o["policy"]),
            s(&o["would"])
        ));
    }
    let guardrails = event["guardrails"]
        .as_array()
        .or(event["trace"]["guardrails"].as_array());
    for g in guardrails.into_iter().flatten() {
        if s(&g["effect"]).starts_with("would_") {
            out.push(format!(
                "guardrail {} {} (guardrails.yaml line {})",
                s(&g["rule"]),
                s(&g["effect"]).replace('_', " "),
                g["line"]
            ));
        }
    }
    out
}

fn keep(event: &Value, args: &ListArgs) -> bool {
    if args.audit_mode && would_be(event).is_empty() {
        return false;
    }
    let Some(name) = &args.policy else {
        return true;
    };
    s(&event["policy"]) == name
        || event["observations"]
            .as_array()
            .is_some_and(|os| os.iter().any(|o| s(&o["policy"]) == name))
}

/// Every value is [`printable`]: an event's strings come from tokens, which anyone can shape.
fn render(event: &Value, _file: &Path) -> String {
    let mut out = format!(
        "{} {:<5} {:<18} policy={} subject={}\n",
        printable(s(&event["time"])),
        printable(s(&event["decision"])),
        printable(s(&event["reason"])),
        printable(or_dash(&event["policy"])),
        printable(or_dash(&event["subject"])),
    );
    for line in would_be(event) {
        out.push_str(&format!("    {}\n", printable(&line)));
    }
    out
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

fn or_dash(v: &Value) -> &str {
    v.as_str().unwrap_or("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_shows_hostile_text_escaped() {
        let event = serde_json::json!({
            "time": "2026-01-01T00:00:00.000Z", "decision": "deny", "reason": "no_policy",
            "subject": "x\u{1b}]0;owned\u{7}\nforged",
        });
        let line = render(&event, Path::new("audit.jsonl"));
        assert_eq!(line.matches('\n').count(), 1, "one line: {line:?}");
        assert!(
            !line.contains('\u{1b}') && !line.contains('\u{7}'),
            "{line:?}"
        );
        assert!(
            line.contains("subject=x\\u{1b}]0;owned\\u{7}\\u{a}forged"),
            "{line}"
        );
    }
}
