//! `ferry admin token`: mints a bootstrap `ferry:admin` credential with the broker's signing key
//! file, on the broker host (whoever can read that file can mint any credential anyway).
//!
//! The credential is an ordinary Ferry JWT (`client_id` `ferry-admin-token`, audience the
//! broker's own, at most 1 h). The mint is audited in a hash-chained JSONL trail of its own,
//! `<data dir>/admin-audit.jsonl` (the broker holds a lock on its own trail), and on the shared
//! Redis audit stream when the broker is configured with Redis; every use of the credential is
//! then an event in the broker's trail, with this credential's id as `caller`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::Map;

use super::ServeArgs;
use crate::audit::{append_serialized, AuditEvent, JsonlAuditSink, Outcome};
use crate::config::{Settings, StoreBackend};
use crate::credential::{JwtMinter, MintRequest, Minted, Minter, SigningKey};
use crate::domain::{unix_now, ScopeSet};
use crate::lifecycle::SCOPE_ADMIN;
use crate::store::{RedisStore, Store};

/// The `client_id` of bootstrap admin credentials (no policy grants them).
pub const ADMIN_TOKEN_CLIENT: &str = "ferry-admin-token";
const MAX_TTL: Duration = Duration::from_secs(60 * 60);

#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Lifetime (at most 1h).
    #[arg(long, default_value = "10m")]
    pub ttl: String,
    /// The credential's subject (default `ferry-admin:$USER`).
    #[arg(long)]
    pub subject: Option<String>,
}

pub fn admin_token(args: &TokenArgs) -> ExitCode {
    match mint(args) {
        Ok((token, event)) => {
            eprintln!(
                "minted admin credential {} for {} (expires {}; audited in admin-audit.jsonl)",
                event.credential_id.as_deref().unwrap_or("-"),
                event.subject.as_deref().unwrap_or("-"),
                rfc3339(event.credential_expires_at.unwrap_or(0)),
            );
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn mint(args: &TokenArgs) -> Result<(String, AuditEvent), String> {
    let settings = args.serve.settings().map_err(|e| e.to_string())?;
    let ttl = humantime::parse_duration(&args.ttl)
        .ok()
        .filter(|d| (Duration::from_secs(1)..=MAX_TTL).contains(d))
        .ok_or_else(|| format!("--ttl must be between 1s and 1h, found `{}`", args.ttl))?;
    let key_file = settings.signing_key_file();
    if !key_file.exists() {
        return Err(format!(
            "no signing key at {} (start the broker once, or set credential.key_file)",
            key_file.display()
        ));
    }
    let key = SigningKey::load_or_generate(&key_file, settings.credential.algorithm)
        .map_err(|e| e.to_string())?;
    let public_url = public_url(&settings)?;
    let audience = settings
        .credential
        .audience
        .clone()
        .unwrap_or(public_url.clone());
    let subject = args.subject.clone().unwrap_or_else(|| {
        format!(
            "ferry-admin:{}",
            std::env::var("USER").unwrap_or_else(|_| "unknown".into())
        )
    });
    let minter = JwtMinter::new(key, public_url);
    let scopes = ScopeSet::parse(SCOPE_ADMIN).map_err(|e| e.to_string())?;
    let event_id = uuid::Uuid::now_v7().to_string();
    let minted = minter
        .mint(&MintRequest {
            subject: &subject,
            audience: &audience,
            policy: ADMIN_TOKEN_CLIENT,
            policy_file: "-",
            policy_set: "-",
            scopes: &scopes,
            ttl_seconds: ttl.as_secs(),
            now: unix_now(),
            exchange_id: &event_id,
            source_issuer: "signing-key-file",
            claims: &Map::new(),
            act: None,
            derived_from: &[],
            derived_policies: &[],
        })
        .map_err(|e| e.to_string())?;
    let event = mint_event(event_id, subject, audience, &minted);
    record(&settings, &event)?;
    Ok((minted.token.expose().to_string(), event))
}

/// The audit record of a mint: who, for which audience, which credential id, until when.
fn mint_event(id: String, subject: String, audience: String, minted: &Minted) -> AuditEvent {
    AuditEvent {
        time: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        exchange_id: id,
        action: Some("admin_token".into()),
        decision: Some(Outcome::Allow),
        reason: "minted".into(),
        policy: Some(ADMIN_TOKEN_CLIENT.into()),
        subject: Some(subject),
        audience: Some(audience),
        scopes_granted: vec![SCOPE_ADMIN.into()],
        credential_id: Some(minted.id.clone()),
        credential_expires_at: Some(minted.expires_at),
        ..AuditEvent::default()
    }
}

/// The broker's public URL as `serve` computes it (configured, or from the listen address).
fn public_url(settings: &Settings) -> Result<String, String> {
    if settings.server.public_url.is_some() {
        return Ok(settings.public_url_for(([0, 0, 0, 0], 0).into()));
    }
    let addr = settings
        .server
        .listen
        .parse()
        .map_err(|_| "set --public-url (the listen address is not an IP:port)".to_string())?;
    Ok(settings.public_url_for(addr))
}

/// Appends the mint to `admin-audit.jsonl` and, with Redis, to the shared stream. Either
/// failing is an error, and the credential is not printed.
fn record(settings: &Settings, event: &AuditEvent) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let path = settings.data_dir.join("admin-audit.jsonl");
        let sink = JsonlAuditSink::open(&path, settings.audit.fsync).map_err(|e| e.to_string())?;
        let json = append_serialized(&sink, event)
            .await
            .map_err(|e| e.to_string())?;
        if settings.store.backend == StoreBackend::Redis && settings.store.redis.audit_stream {
            let store: Arc<dyn Store> =
                Arc::new(RedisStore::new(&settings.store.redis).map_err(|e| e.to_string())?);
            store.commit(&json, None).await.map_err(|e| e.to_string())?;
        }
        Ok(())
    })
}

pub(super) fn rfc3339(unix: i64) -> String {
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(unix.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}
