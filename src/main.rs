//! The `ferry` binary: parse the command line, set up logging, run. Everything else is in the
//! library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use ferry::cli::{self, AuditCommand, Cli, Command, KeysCommand, PolicyCommand, ServeArgs};
use ferry::startup::Application;
use ferry::telemetry;

/// Exchanges allocate many short-lived strings and JSON values from several threads; mimalloc's
/// thread-local free lists measured markedly cheaper than glibc malloc on the /token path.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Policy(PolicyCommand::Check { dir, strict }) => cli::policy_check(
            &dir.unwrap_or_else(|| PathBuf::from("trust-policies")),
            strict,
        ),
        Command::Policy(PolicyCommand::Test { dir }) => cli::policy_test(dir),
        Command::Policy(PolicyCommand::Explain(args)) => cli::policy_explain(args),
        Command::Policy(PolicyCommand::Schema { kind }) => cli::policy_schema(kind),
        Command::Audit(AuditCommand::Verify { file }) => cli::audit_verify(&file),
        Command::Audit(AuditCommand::List(args)) => cli::audit_list(&args),
        Command::Audit(AuditCommand::Tail {
            config,
            redis,
            prefix,
            json,
            from_start,
            tls_ca_file,
        }) => cli::audit_tail(cli::TailArgs {
            config,
            redis,
            prefix,
            tls_ca_file,
            json,
            from_start,
        }),
        Command::Keys(KeysCommand::Generate { algorithm, out }) => {
            cli::keys_generate(algorithm, &out)
        }
        Command::Admin(command) => cli::admin(&command),
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    let settings = match args.settings() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&settings.log);
    let result = actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings)
            .await
            .map_err(|e| e.to_string())?;
        app.run_until_stopped().await.map_err(|e| e.to_string())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
