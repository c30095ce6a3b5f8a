//! `ferry policy test | explain | schema`: the security team's tools. Each loads the directory
//! with the one `PolicySet::load` that `serve` uses, then calls the pure `decide` (through
//! `exchange::explain` and `exchange::run_cases`). Rendering for people lives in `render`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::config::{Overrides, Settings};
use crate::domain::{json_safe, printable, unix_now, Audience, PolicyName, ScopeSet, UnixSeconds};
use crate::exchange::{
    decode_unverified, explain, run_cases, token_from_claims, ActorToken, Candidates,
    DecideContext, Requested,
};
use crate::policy::testcases::load_tests;
use crate::policy::PolicySet;
use crate::verify::{VerifiedToken, Verifier};

use super::render;

/// `ferry policy explain` arguments.
#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// The subject token (a compact JWT), from a file or `-` for standard input.
    #[arg(long)]
    pub token: String,
    /// Policy directory (default: trust-policies).
    #[arg(long)]
    pub policies: Option<PathBuf>,
    /// Explain only this policy (and name it in the request, as the `policy` form field does).
    #[arg(long)]
    pub policy: Option<String>,
    /// The requested audience (RFC 8693 `audience`).
    #[arg(long)]
    pub audience: Option<String>,
    /// The requested scopes, space-separated (RFC 6749 `scope`).
    #[arg(long)]
    pub scope: Option<String>,
    /// The actor token (RFC 8693 `actor_token`, delegation), from a file or `-`.
    #[arg(long)]
    pub actor_token: Option<String>,
    /// Also verify the signature with the issuer's keys (may fetch them).
    #[arg(long)]
    pub verify: bool,
    /// Print JSON for tools instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn policies_dir(dir: Option<PathBuf>) -> PathBuf {
    dir.unwrap_or_else(|| PathBuf::from("trust-policies"))
}

/// The audience a policy without `audience:` requires: the broker's, from the same settings
/// `serve` reads (`FERRY_*` environment; `credential.audience`, else the public URL).
fn context() -> Result<DecideContext, String> {
    let settings = Settings::load(None, &Overrides::default()).map_err(|e| e.to_string())?;
    let audience = settings
        .credential
        .audience
        .clone()
        .or(settings.server.public_url.clone())
        .unwrap_or_else(|| format!("http://{}", settings.server.listen));
    let broker_audience: Audience = audience
        .parse()
        .map_err(|_| format!("broker audience `{audience}` is not valid"))?;
    Ok(DecideContext { broker_audience })
}

fn load(dir: &Path) -> Result<PolicySet, ExitCode> {
    PolicySet::load(dir).map_err(|errors| {
        println!("{errors}");
        println!("error: {} problems in {}", errors.0.len(), dir.display());
        ExitCode::from(1)
    })
}

/// `ferry policy test [DIR]`: a line per case, the trace of each failure, `N passed, N failed`.
pub fn policy_test(dir: Option<PathBuf>) -> ExitCode {
    let dir = policies_dir(dir);
    let set = match load(&dir) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let ctx = match context() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let files = match load_tests(&dir) {
        Ok(f) => f,
        Err(errors) => {
            errors.iter().for_each(|e| println!("{e}"));
            println!(
                "error: {} problems in {}/tests",
                errors.len(),
                dir.display()
            );
            return ExitCode::from(1);
        }
    };
    let (mut passed, mut failed) = (0, 0);
    for (policy, cases) in &files {
        for outcome in run_cases(&set, policy, cases, &ctx, unix_now()) {
            print!("{}", render::case(&outcome, &dir));
            if outcome.passed {
                passed += 1;
            } else {
                failed += 1;
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// `ferry policy explain`: exit 0 once explained (allow or deny), 1 when the policies or the
/// token cannot be read (or `--verify` refuses the token), 2 on usage errors.
pub fn policy_explain(args: ExplainArgs) -> ExitCode {
    let dir = policies_dir(args.policies.clone());
    let set = match load(&dir) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let (ctx, requested) = match context().and_then(|c| Ok((c, requested(&args)?))) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let now = unix_now();
    let token =
        match read_token(&args.token).and_then(|raw| token(&raw, &set, &ctx, args.verify, now)) {
            Ok(t) => t,
            Err(e) => {
                // May quote the token (an issuer it names): escaped for the terminal.
                eprintln!("error: {}", printable(&e.to_string()));
                return ExitCode::from(1);
            }
        };
    let requested = match &args.actor_token {
        None => requested,
        Some(source) => {
            match read_token(source).and_then(|raw| self::token(&raw, &set, &ctx, args.verify, now))
            {
                Ok(actor) => Requested {
                    actor: Some(ActorToken(std::sync::Arc::new(actor))),
                    ..requested
                },
                Err(e) => {
                    eprintln!("error: actor token: {}", printable(&e.to_string()));
                    return ExitCode::from(1);
                }
            }
        }
    };
    let only = requested.policy.clone();
    let explanation = explain(
        &requested,
        &token,
        &set,
        &ctx,
        now,
        Candidates::Issuer(only.as_ref()),
    );
    if args.json {
        let mut value = serde_json::to_value(&explanation).unwrap_or_default();
        value["signature_verified"] = args.verify.into();
        let json = serde_json::to_string_pretty(&value).unwrap_or_default();
        println!("{}", json_safe(&json));
    } else {
        print!(
            "{}",
            render::explanation(&explanation, &token, args.verify, &dir)
        );
    }
    ExitCode::SUCCESS
}

fn requested(args: &ExplainArgs) -> Result<Requested, String> {
    Ok(Requested {
        audience: args
            .audience
            .as_deref()
            .map(str::parse::<Audience>)
            .transpose()
            .map_err(|e| format!("--audience: {e}"))?,
        scopes: ScopeSet::parse(args.scope.as_deref().unwrap_or_default())
            .map_err(|e| format!("--scope: {e}"))?,
        ttl: None,
        policy: args
            .policy
            .as_deref()
            .map(str::parse::<PolicyName>)
            .transpose()
            .map_err(|e| format!("--policy: {e}"))?,
        actor: None,
    })
}

fn read_token(source: &str) -> Result<String, String> {
    let mut raw = String::new();
    if source == "-" {
        std::io::stdin()
            .read_to_string(&mut raw)
            .map_err(|e| format!("standard input: {e}"))?;
    } else {
        raw = std::fs::read_to_string(source).map_err(|e| format!("{source}: {e}"))?;
    }
    Ok(raw.trim().to_string())
}

/// Decoded only, or verified with the issuer's keys (`--verify`, which may fetch them).
fn token(
    raw: &str,
    set: &PolicySet,
    ctx: &DecideContext,
    verify: bool,
    now: UnixSeconds,
) -> Result<VerifiedToken, String> {
    if !verify {
        let claims = decode_unverified(raw).map_err(|e| e.to_string())?;
        return token_from_claims(set, claims, None, &ctx.broker_audience, now)
            .map_err(|e| e.to_string());
    }
    // The same leeway, size limit and fetch limits as `serve` (FERRY_* environment).
    let settings = Settings::load(None, &Overrides::default()).map_err(|e| e.to_string())?;
    let verifier = Verifier::new(
        set.issuers(),
        settings.verify_settings(),
        settings.fetch_settings(),
    )
    .map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime
        .block_on(verifier.verify(raw, now))
        .map_err(|e| format!("the token does not verify: {e} ({})", e.code()))
}

/// `ferry policy schema [KIND]`: JSON Schema of `policy`, `issuers`, `guardrails`, `test` files.
pub fn policy_schema(kind: Option<String>) -> ExitCode {
    let all = crate::policy::schemas();
    let out = match kind.as_deref() {
        None => all,
        Some(k) => match all.get(k) {
            Some(s) => s.clone(),
            None => {
                eprintln!(
                    "error: unknown schema `{k}`, expected policy, issuers, guardrails or test"
                );
                return ExitCode::from(2);
            }
        },
    };
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    ExitCode::SUCCESS
}
