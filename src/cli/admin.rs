//! `ferry admin …`: `token` (see `admin_token`), and `revoke`, `unblock`, `list`, which call
//! the admin API of a running broker (`http::admin`) with a `ferry:admin` credential and print
//! readable tables. Exit 0 done, 1 the broker refused, 2 usage or connection errors.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::domain::printable;

use super::admin_token::{rfc3339, TokenArgs};

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Mint a short-lived `ferry:admin` credential from the signing key file (on the broker host).
    Token(TokenArgs),
    /// Revoke a credential or an exchange's credentials, or set a kill switch on a subject
    /// pattern or a policy (revokes their credentials and refuses new exchanges `--for` a while).
    Revoke(RevokeArgs),
    /// Lift a kill switch's block on new exchanges (revoked credentials stay revoked).
    Unblock(UnblockArgs),
    /// List live revocations and kill switches.
    List(BrokerArgs),
}

#[derive(Debug, Clone, Args)]
pub struct BrokerArgs {
    /// The broker's URL.
    #[arg(long, env = "FERRY_URL", default_value = "http://127.0.0.1:8080")]
    pub broker: String,
    /// A credential with scope `ferry:admin` (e.g. from `ferry admin token`).
    #[arg(long, env = "FERRY_ADMIN_TOKEN", hide_env_values = true)]
    pub token: String,
    /// How long to wait for the broker's answer (e.g. `60s`). A revocation on a Redis Cluster
    /// can take about six `store.redis.command_timeout`s (at most 5 s each); the default
    /// outlasts that.
    #[arg(long, env = "FERRY_ADMIN_TIMEOUT", default_value = "60s", value_parser = wait)]
    pub timeout: std::time::Duration,
}

#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false, id = "target")]
pub struct Target {
    /// A credential id (`jti`).
    #[arg(long, group = "target")]
    pub credential: Option<String>,
    /// An exchange id (`ferry.exchange_id` of the credentials it minted).
    #[arg(long, group = "target")]
    pub exchange: Option<String>,
    /// A subject glob (`*` any run, `?` one character), e.g. `repo:acme/api:*`.
    #[arg(long, group = "target")]
    pub subject: Option<String>,
    /// A policy name.
    #[arg(long, group = "target")]
    pub policy: Option<String>,
}

impl Target {
    fn kind_value(&self) -> (&'static str, &str) {
        let pairs = [
            ("credential", &self.credential),
            ("exchange", &self.exchange),
            ("subject", &self.subject),
            ("policy", &self.policy),
        ];
        pairs
            .into_iter()
            .find_map(|(kind, v)| v.as_deref().map(|v| (kind, v)))
            .unwrap_or(("credential", ""))
    }
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    #[command(flatten)]
    pub target: Target,
    /// Kill switches: refuse new exchanges this long (default 1h, at most 30d).
    #[arg(long = "for", value_name = "DURATION")]
    pub duration: Option<String>,
    /// Why (recorded with the revocation and in the audit trail).
    #[arg(long)]
    pub reason: Option<String>,
    #[command(flatten)]
    pub broker: BrokerArgs,
}

#[derive(Debug, Args)]
pub struct UnblockArgs {
    /// A subject pattern, exactly as it was blocked.
    #[arg(long, conflicts_with = "policy", required_unless_present = "policy")]
    pub subject: Option<String>,
    #[arg(long)]
    pub policy: Option<String>,
    #[command(flatten)]
    pub broker: BrokerArgs,
}

pub fn admin(command: &AdminCommand) -> ExitCode {
    let call = match command {
        AdminCommand::Token(args) => return super::admin_token::admin_token(args),
        AdminCommand::Revoke(args) => revoke(args),
        AdminCommand::Unblock(args) => unblock(args),
        AdminCommand::List(args) => list(args),
    };
    match call {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn revoke(args: &RevokeArgs) -> Result<ExitCode, String> {
    let (kind, value) = args.target.kind_value();
    let mut body = json!({ "kind": kind, "value": value });
    if let Some(d) = &args.duration {
        body["for"] = d.as_str().into();
    }
    if let Some(r) = &args.reason {
        body["reason"] = r.as_str().into();
    }
    let (status, answer) = call(&args.broker, "POST", "/admin/revocations", Some(body))?;
    if status != 201 {
        return Ok(refused(status, &answer));
    }
    println!("revoked {kind} {value}");
    print_table(&[answer]);
    Ok(ExitCode::SUCCESS)
}

fn unblock(args: &UnblockArgs) -> Result<ExitCode, String> {
    let (kind, value) = match (&args.subject, &args.policy) {
        (Some(s), _) => ("subject", s.as_str()),
        (None, Some(p)) => ("policy", p.as_str()),
        (None, None) => return Err("--subject or --policy is required".into()),
    };
    let body = json!({ "kind": kind, "value": value });
    let (status, answer) = call(&args.broker, "POST", "/admin/unblock", Some(body))?;
    if status != 200 {
        return Ok(refused(status, &answer));
    }
    println!("unblocked {kind} {value} (credentials it revoked stay revoked)");
    print_table(&[answer]);
    Ok(ExitCode::SUCCESS)
}

fn list(args: &BrokerArgs) -> Result<ExitCode, String> {
    let (status, answer) = call(args, "GET", "/admin/revocations", None)?;
    if status != 200 {
        return Ok(refused(status, &answer));
    }
    let entries = answer["revocations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    print_table(&entries);
    println!("{} revocations", entries.len());
    Ok(ExitCode::SUCCESS)
}

fn refused(status: u16, answer: &Value) -> ExitCode {
    eprintln!(
        "refused: {status} {}: {}",
        answer["error"].as_str().unwrap_or("-"),
        answer["error_description"].as_str().unwrap_or("-")
    );
    ExitCode::from(1)
}

/// `KIND VALUE BLOCKED-UNTIL KEPT-UNTIL BY REASON`, one line per revocation.
fn print_table(entries: &[Value]) {
    let rows: Vec<[String; 6]> = entries
        .iter()
        .map(|r| {
            // Values an admin or a token gave: escaped for the terminal.
            let text = |k: &str| printable(r[k].as_str().unwrap_or("-")).into_owned();
            let kill = matches!(r["kind"].as_str(), Some("subject" | "policy"));
            let blocked = match (kill, r["block_until"].as_i64()) {
                (true, Some(t)) if t > crate::domain::unix_now() => rfc3339(t),
                (true, Some(_)) => "lifted".into(),
                _ => "-".into(),
            };
            let kept = rfc3339(r["keep_until"].as_i64().unwrap_or(0));
            [
                text("kind"),
                text("value"),
                blocked,
                kept,
                text("by"),
                text("reason"),
            ]
        })
        .collect();
    let header = [
        "KIND",
        "VALUE",
        "BLOCKS NEW UNTIL",
        "REVOKED UNTIL",
        "BY",
        "REASON",
    ];
    let widths: Vec<usize> = (0..6)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].len())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[&str]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(&header);
    for row in &rows {
        line(&row.iter().map(String::as_str).collect::<Vec<_>>());
    }
}

/// `--timeout`: a duration above zero.
fn wait(text: &str) -> Result<std::time::Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("must be above zero".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

/// One admin API call; `Err` only when the broker could not be reached or answered garbage.
fn call(
    broker: &BrokerArgs,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<(u16, Value), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let url = format!("{}{path}", broker.broker.trim_end_matches('/'));
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(broker.timeout)
            .build()
            .map_err(|e| e.to_string())?;
        let mut request = match method {
            "GET" => client.get(&url),
            _ => client.post(&url),
        }
        .bearer_auth(&broker.token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.map_err(|e| format!("{url}: {e}"))?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| format!("{url}: {e}"))?;
        let answer = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok((status, answer))
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::BrokerArgs;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        broker: BrokerArgs,
    }

    #[test]
    fn the_default_wait_outlasts_a_cluster_revocation_at_the_longest_command_timeout() {
        let cli = Cli::try_parse_from(["ferry", "--token", "t"]).unwrap();
        // Script, the wait of two timeouts, the index read and delete, the audit commit.
        let cluster_revocation = 6 * crate::store::redis::MAX_COMMAND_TIMEOUT;
        assert!(
            cli.broker.timeout > cluster_revocation,
            "{:?}",
            cli.broker.timeout
        );
        let cli = Cli::try_parse_from(["ferry", "--token", "t", "--timeout", "90s"]).unwrap();
        assert_eq!(cli.broker.timeout, std::time::Duration::from_secs(90));
        assert!(Cli::try_parse_from(["ferry", "--token", "t", "--timeout", "0s"]).is_err());
    }
}
