//! The tickets service of the agent example, alone: `cargo run --example tickets_server -- \
//! --broker http://127.0.0.1:8080` serves `GET /tickets` on 127.0.0.1:8103 and accepts only
//! credentials that verify against the broker's JWKS and carry `tickets:read`.

#[path = "tickets.rs"]
mod tickets;

use clap::Parser;

#[derive(Parser)]
#[command(about = "A resource server that verifies Ferry's delegated credentials")]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    broker: String,
    #[arg(long, default_value = "127.0.0.1:8103")]
    bind: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let addr = tickets::start(&args.bind, &args.broker)?;
    println!(
        "tickets service on http://{addr}/tickets, trusting {}",
        args.broker
    );
    loop {
        std::thread::park();
    }
}
