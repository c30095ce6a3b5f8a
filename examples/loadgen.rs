//! Load generator for `POST /token`.
//!
//! `cargo run --release --example loadgen -- [--broker URL] [--tokens N] [--concurrency C]
//! [--mode miss|hit] [--issuer-bind ADDR] [--alg RS256|ES256]`
//!
//! Needs a running broker whose `local-ci` issuer points at `--issuer-bind` (the example
//! policies do). Every token is minted before the clock starts, and every request is encoded
//! up front, so the measured loop is only HTTP round trips on keep-alive connections, on one
//! thread, through a minimal HTTP/1.1 client (`support/h1_client.rs`): the generator should
//! never be what limits throughput, and it reports its own CPU per exchange. It stops after N
//! requests.
//!
//! `miss`: every token has its own subject (unique to this run too) and run id, so every
//! exchange mints a credential, even against a store that kept an earlier run's cache.
//! `hit`: identical claims except `jti`, so after the first exchange the credential cache serves.
//!
//! The generator is store-agnostic: start the broker with `--redis redis://127.0.0.1:6379` to
//! measure the Redis store, without it for the in-memory one (README, "Running several replicas
//! on Redis", has the commands and figures of both in one run).

#[path = "support/dev_issuer.rs"]
mod dev_issuer;
#[path = "support/h1_client.rs"]
mod h1_client;
#[path = "support/rfc8693.rs"]
mod rfc8693;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};

use dev_issuer::{Alg, Claims, DevIssuer};

const DEPLOY_AUDIENCE: &str = "https://deploy.acme.internal";

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    Miss,
    Hit,
}

#[derive(Parser)]
#[command(about = "Drive POST /token at a running Ferry broker and report latency")]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    broker: String,
    /// Number of exchanges (each with its own pre-minted token).
    #[arg(long, default_value_t = 20_000)]
    tokens: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    #[arg(long, value_enum, default_value_t = Mode::Miss)]
    mode: Mode,
    #[arg(long, default_value = "127.0.0.1:8090")]
    issuer_bind: String,
    #[arg(long, default_value = "RS256")]
    alg: Alg,
    /// Where the loopback issuer keeps its keys between runs (the broker caches them by kid).
    #[arg(long, default_value = ".ferry/dev-issuer")]
    issuer_keys: std::path::PathBuf,
}

/// What one worker observed; merged at the end.
struct Tally {
    latency_us: Histogram<u64>,
    /// HTTP status -> count; transport failures are counted under 0.
    statuses: BTreeMap<u16, u64>,
}

impl Tally {
    fn new() -> Tally {
        // 1 µs to 60 s at 3 significant digits.
        let latency_us = Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
        Tally {
            latency_us,
            statuses: BTreeMap::new(),
        }
    }

    fn merge(&mut self, other: Tally) {
        self.latency_us.add(other.latency_us).expect("same bounds");
        for (status, n) in other.statuses {
            *self.statuses.entry(status).or_default() += n;
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.tokens > 0 && args.concurrency > 0,
        "--tokens and --concurrency must be > 0"
    );
    let broker = args.broker.trim_end_matches('/').to_string();
    let client = reqwest::Client::builder()
        .no_proxy()
        .http1_only()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    check_broker(&client, &broker).await?;

    let issuer = DevIssuer::start_with_key_dir(&args.issuer_bind, &args.issuer_keys)
        .with_context(|| format!("issuer keys in {}", args.issuer_keys.display()))?;
    let bodies = mint_bodies(&issuer, &broker, &args);
    drop(client);
    let (started, cpu_before) = (Instant::now(), own_cpu());
    let tally = drive(&broker, bodies, args.concurrency).await?;
    let cpu = own_cpu()
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    print_report(&args, &tally, started.elapsed(), cpu);
    Ok(())
}

/// Mints one token per request on every core (RSA signing dominates) and encodes the forms.
fn mint_bodies(issuer: &DevIssuer, broker: &str, args: &Args) -> Vec<String> {
    let bar = progress_bar(args.tokens as u64, "minting ");
    let template = Claims::github(&issuer.url(), broker).expires_in(3600);
    // Misses are distinct grants in this run and in every other: a store that outlives the
    // broker (Redis) must not serve a later run's "misses" from an earlier run's cache.
    let run = uuid::Uuid::now_v7().simple().to_string();
    let run = &run[run.len() - 12..]; // the random end of the id
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = args.tokens.div_ceil(threads);
    let mut bodies = Vec::with_capacity(args.tokens);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..args.tokens)
            .step_by(chunk)
            .map(|start| {
                let (bar, template) = (&bar, &template);
                let end = (start + chunk).min(args.tokens);
                scope.spawn(move || {
                    let mint_one = |i| {
                        let body = mint_body(issuer, template, args, run, i);
                        bar.inc(1);
                        body
                    };
                    (start..end).map(mint_one).collect::<Vec<_>>()
                })
            })
            .collect();
        for worker in workers {
            bodies.extend(worker.join().expect("minting thread"));
        }
    });
    bar.finish();
    bodies
}

fn mint_body(issuer: &DevIssuer, template: &Claims, args: &Args, run: &str, i: usize) -> String {
    let mut claims = template.clone().jti(&uuid::Uuid::now_v7().to_string());
    if args.mode == Mode::Miss {
        // Still inside the demo policy's `repo:acme/api:*`, but a distinct grant every time.
        claims = claims
            .subject(&format!("repo:acme/api:environment:load-{run}-{i}"))
            .set("run_id", format!("{}", 7_000_000_000u64 + i as u64));
    }
    let token = issuer.sign(&claims, args.alg, None);
    rfc8693::exchange_form(&token, DEPLOY_AUDIENCE, Some("deploy:api"))
}

/// Runs `concurrency` workers that take the next request until all are sent.
async fn drive(broker: &str, bodies: Vec<String>, concurrency: usize) -> Result<Tally> {
    let url = url::Url::parse(broker).context("--broker")?;
    anyhow::ensure!(
        url.scheme() == "http",
        "the generator speaks plain HTTP/1.1 to a broker next to it; --broker must be http://"
    );
    let host = url.host_str().context("--broker has no host")?;
    let addr = format!("{host}:{}", url.port_or_known_default().unwrap_or(80));
    let requests: Arc<Vec<Vec<u8>>> = Arc::new(
        bodies
            .iter()
            .map(|body| h1_client::post_form(&addr, "/token", rfc8693::FORM_CONTENT_TYPE, body))
            .collect(),
    );
    let bar = progress_bar(requests.len() as u64, "exchange");
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (requests, next, bar) = (requests.clone(), next.clone(), bar.clone());
            let connection = h1_client::Connection::new(&addr);
            tokio::spawn(async move { worker(connection, &requests, &next, &bar).await })
        })
        .collect();
    let mut total = Tally::new();
    for worker in workers {
        total.merge(worker.await.expect("worker task"));
    }
    bar.finish();
    Ok(total)
}

async fn worker(
    mut connection: h1_client::Connection,
    requests: &[Vec<u8>],
    next: &AtomicUsize,
    bar: &ProgressBar,
) -> Tally {
    let mut tally = Tally::new();
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(request) = requests.get(i) else {
            return tally;
        };
        let sent = Instant::now();
        // The whole body is read: the exchange is only done when the credential has arrived.
        let status = connection.send(request).await.unwrap_or(0);
        let micros = sent.elapsed().as_micros().max(1) as u64;
        tally.latency_us.saturating_record(micros);
        *tally.statuses.entry(status).or_default() += 1;
        bar.inc(1);
    }
}

/// This process's CPU time so far (user + system, from `/proc/self/stat`; Linux only), so the
/// report can say what the generator itself cost the machine it shares with the broker.
fn own_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_secs_f64(ticks as f64 / 100.0))
}

fn print_report(args: &Args, tally: &Tally, elapsed: Duration, cpu: Option<Duration>) {
    let total = tally.latency_us.len();
    let ok = tally.statuses.get(&200).copied().unwrap_or(0);
    let h = &tally.latency_us;
    let ms = |us: u64| format!("{:.2} ms", us as f64 / 1000.0);
    let mode = if args.mode == Mode::Miss {
        "miss (new credential each)"
    } else {
        "hit (cached credential)"
    };
    println!();
    println!("{:<14} {}", "mode", mode);
    println!(
        "{:<14} {} / concurrency {}",
        "alg",
        args.alg.as_str(),
        args.concurrency
    );
    println!("{:<14} {total}", "total");
    println!("{:<14} {ok}", "ok (200)");
    for (status, n) in tally.statuses.iter().filter(|(s, _)| **s != 200) {
        let label = if *status == 0 {
            "transport".to_string()
        } else {
            format!("status {status}")
        };
        println!("{:<14} {n}", label);
    }
    println!("{:<14} {:.2} s", "duration", elapsed.as_secs_f64());
    println!(
        "{:<14} {:.0} exchanges/s",
        "throughput",
        total as f64 / elapsed.as_secs_f64()
    );
    for (label, q) in [
        ("p50", 0.50),
        ("p90", 0.90),
        ("p99", 0.99),
        ("p99.9", 0.999),
    ] {
        println!(
            "{:<14} {}",
            format!("latency {label}"),
            ms(h.value_at_quantile(q))
        );
    }
    println!("{:<14} {}", "latency max", ms(h.max()));
    if let Some(cpu) = cpu.filter(|_| total > 0) {
        let per = cpu.as_secs_f64() * 1e6 / total as f64;
        println!("{:<14} {per:.1} us/exchange (this generator)", "cpu");
    }
}

fn progress_bar(len: u64, prefix: &'static str) -> ProgressBar {
    let style = ProgressStyle::with_template("{prefix} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
        .expect("valid template")
        .progress_chars("=> ");
    ProgressBar::new(len).with_style(style).with_prefix(prefix)
}

async fn check_broker(client: &reqwest::Client, broker: &str) -> Result<()> {
    let url = format!("{broker}/healthz");
    match client.get(&url).send().await {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => bail!("{url} answered {}", response.status()),
        Err(e) => Err(e).context(format!(
            "no broker at {broker}; start it: cargo run --release -- serve"
        )),
    }
}
