//! The `ferry` command line: `serve`, `policy check|test|explain|schema`, `audit verify|list|tail`,
//! `keys generate`, `admin token|revoke|unblock|list`. The policy-authoring tools are in `authoring`, their text output in `render`.
//!
//! Exit codes are part of the interface CI pipelines script against: 0 success, 1 a check
//! failed (policy errors, broken audit chain), 2 usage or startup errors.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::{Overrides, Settings, SigningAlgorithm};
use crate::credential::{generate_pkcs8, write_new_key_file, SigningKey};
use crate::policy::PolicySet;

mod admin;
mod admin_token;
mod audit_list;
mod authoring;
pub(crate) mod render;

pub use admin::{admin, AdminCommand};
pub use audit_list::{audit_list, ListArgs};
pub use authoring::{policy_explain, policy_schema, policy_test, ExplainArgs};

#[derive(Debug, Parser)]
#[command(name = "ferry", version, about = "Workload identity federation broker")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the broker.
    Serve(ServeArgs),
    /// Work with trust policies.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Work with the audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Manage Ferry's signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Revoke credentials, set and lift kill switches, mint a bootstrap admin credential.
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// TOML config file (flags > FERRY_* environment > file > defaults).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:8080.
    #[arg(long)]
    pub listen: Option<String>,
    /// Trust-policy directory.
    #[arg(long)]
    pub policies: Option<PathBuf>,
    /// Directory for the signing key and the audit file.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Public URL of this broker (iss of minted credentials, default audience).
    #[arg(long)]
    pub public_url: Option<String>,
    /// Share replay set, credential cache, revocations and the audit stream through Redis:
    /// `redis://HOST:PORT/DB`, `rediss://…`, or `redis+cluster://HOST:PORT,HOST:PORT`.
    #[arg(long, value_name = "URL")]
    pub redis: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Load a policy directory exactly as `serve` does and report every problem and warning.
    Check {
        /// Policy directory (default: trust-policies).
        dir: Option<PathBuf>,
        /// Treat warnings as errors (exit 1).
        #[arg(long)]
        strict: bool,
    },
    /// Run the cases in DIR/tests/*.test.yaml offline; exit 1 if any fails.
    Test {
        /// Policy directory (default: trust-policies).
        dir: Option<PathBuf>,
    },
    /// Show, for each candidate policy, every condition with pass/fail, and the decision.
    Explain(ExplainArgs),
    /// Print JSON Schema for policy, issuers, guardrails and test files.
    Schema {
        /// Only one: policy, issuers, guardrails or test.
        kind: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check an audit file's hash chain and report the first broken link.
    Verify { file: PathBuf },
    /// List exchanges; `--audit-mode` shows what audit-mode policies and guardrails would do.
    List(ListArgs),
    /// Follow the Redis audit stream every replica appends to, printing events as they come.
    Tail {
        /// The config file `ferry serve` reads: its `store.redis` settings (URL or Cluster
        /// nodes, prefix, CA), which the `FERRY_STORE__REDIS__*` environment and the flags
        /// below override, as for `serve`. A URL from the environment or the file keeps a
        /// password out of `ps` and the shell history.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// The Redis the replicas share (`redis://HOST:PORT/DB`, `rediss://…`,
        /// `redis+cluster://HOST:PORT,HOST:PORT`).
        #[arg(long, value_name = "URL")]
        redis: Option<String>,
        /// Key prefix of the deployment (`store.redis.prefix`, `ferry:` unless set).
        #[arg(long)]
        prefix: Option<String>,
        /// One JSON event per line instead of a table.
        #[arg(long)]
        json: bool,
        /// Start with the events already in the stream.
        #[arg(long)]
        from_start: bool,
        /// PEM CA certificate for a `rediss://` server with a private CA
        /// (`store.redis.tls_ca_file`).
        #[arg(long, value_name = "FILE")]
        tls_ca_file: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KeyAlgorithm {
    Es256,
    Eddsa,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Write a new signing key (PKCS#8 PEM, mode 0600) and print its kid.
    Generate {
        #[arg(long, value_enum, default_value = "es256")]
        algorithm: KeyAlgorithm,
        /// Where to write it; refuses to overwrite.
        #[arg(long)]
        out: PathBuf,
    },
}

impl ServeArgs {
    pub fn settings(&self) -> Result<Settings, crate::config::ConfigError> {
        let overrides = Overrides {
            listen: self.listen.clone(),
            policies: self.policies.clone(),
            data_dir: self.data_dir.clone(),
            public_url: self.public_url.clone(),
            redis: self.redis.clone(),
        };
        Settings::load(self.config.as_deref(), &overrides)
    }
}

/// `ferry policy check`: errors as `FILE:LINE:COL: message`, warnings as
/// `FILE:LINE:COL: warning[CODE]: message`, then a one-line summary. `strict`: warnings fail.
pub fn policy_check(dir: &Path, strict: bool) -> ExitCode {
    match PolicySet::load(dir) {
        Ok(set) => {
            for lint in set.warnings() {
                println!("{lint}");
            }
            println!(
                "ok: {} policies and {} issuers in {} (version {}), {} warnings",
                set.len(),
                set.issuers().len(),
                dir.display(),
                &set.version()[..set.version().len().min(12)],
                set.warnings().len()
            );
            if strict && !set.warnings().is_empty() {
                println!("error: --strict: {} warnings", set.warnings().len());
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            println!("{errors}");
            println!("error: {} problems in {}", errors.0.len(), dir.display());
            ExitCode::from(1)
        }
    }
}

/// `ferry audit verify FILE`.
pub fn audit_verify(file: &Path) -> ExitCode {
    match crate::audit::verify_chain(file) {
        Ok(report) => {
            println!(
                "ok: {} events, chain intact (last hash {})",
                report.events, report.last_hash
            );
            ExitCode::SUCCESS
        }
        Err(broken) => {
            println!("broken: {}: {broken}", file.display());
            ExitCode::from(1)
        }
    }
}

/// What `ferry audit tail` was given on its command line.
pub struct TailArgs {
    pub config: Option<PathBuf>,
    pub redis: Option<String>,
    pub prefix: Option<String>,
    pub tls_ca_file: Option<PathBuf>,
    pub json: bool,
    pub from_start: bool,
}

/// `ferry audit tail`: runs until interrupted. The Redis settings come from the same layers as
/// `serve`'s (file, environment, flags).
pub fn audit_tail(args: TailArgs) -> ExitCode {
    let overrides = Overrides {
        redis: args.redis,
        ..Overrides::default()
    };
    let mut redis = match Settings::load_store(args.config.as_deref(), &overrides) {
        Ok(store) => store.redis,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(prefix) = args.prefix {
        redis.prefix = prefix;
    }
    if args.tls_ca_file.is_some() {
        redis.tls_ca_file = args.tls_ca_file;
    }
    if redis.url.as_deref().is_none_or(|u| u.trim().is_empty()) && redis.nodes.is_empty() {
        eprintln!(
            "error: no Redis named: give --redis URL, or store.redis.url / store.redis.nodes in \
             --config FILE or the environment (FERRY_STORE__REDIS__URL)"
        );
        return ExitCode::from(2);
    }
    let options = crate::audit::TailOptions {
        redis,
        json: args.json,
        from_start: args.from_start,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(crate::audit::tail(&options, &mut std::io::stdout())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// `ferry keys generate`.
pub fn keys_generate(algorithm: KeyAlgorithm, out: &Path) -> ExitCode {
    let alg = match algorithm {
        KeyAlgorithm::Es256 => SigningAlgorithm::ES256,
        KeyAlgorithm::Eddsa => SigningAlgorithm::EdDSA,
    };
    let result = generate_pkcs8(alg).and_then(|der| {
        write_new_key_file(out, &der)?;
        SigningKey::from_pkcs8(&der, alg).map_err(|k| format!("not a {k} key"))
    });
    match result {
        Ok(key) => {
            println!(
                "wrote {} ({}, kid {})",
                out.display(),
                key.algorithm(),
                key.kid()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}: {e}", out.display());
            ExitCode::from(2)
        }
    }
}
