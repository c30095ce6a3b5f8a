//! `ferry serve` child processes (the built binary) sharing one Redis, for tests that need two
//! real replicas. Each gets its own data directory and port; all share a policy directory, a
//! signing key file and a public URL. Killed by pid on drop.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub struct Replica {
    child: Child,
    pub base_url: String,
    pub data_dir: tempfile::TempDir,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Replica {
    pub fn audit_text(&self) -> String {
        std::fs::read_to_string(self.data_dir.path().join("audit.jsonl")).unwrap_or_default()
    }
}

/// Starts a replica on `redis_url`/`prefix` with extra `FERRY_*` settings in `env`, and waits
/// until it logged its listen address.
pub fn start_replica(
    policies: &Path,
    key_file: &Path,
    public_url: &str,
    redis_url: &str,
    prefix: &str,
    env: &[(&str, &str)],
) -> Replica {
    let data_dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferry"));
    command
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--public-url",
            public_url,
        ])
        .arg("--policies")
        .arg(policies)
        .arg("--data-dir")
        .arg(data_dir.path())
        .args(["--redis", redis_url])
        .env("FERRY_STORE__REDIS__PREFIX", prefix)
        .env("FERRY_CREDENTIAL__KEY_FILE", key_file)
        .env("FERRY_AUDIT__FSYNC", "never")
        .env("FERRY_LOG__LEVEL", "info")
        .env("FERRY_LOG__FORMAT", "json")
        .env("FERRY_SERVER__WORKERS", "1")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("the ferry binary starts");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // Keep draining so the replica never blocks on a full pipe.
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let event: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if let Some(addr) = event["listen"].as_str() {
                let _ = tx.send(addr.to_string());
            }
        }
    });
    let Ok(addr) = rx.recv_timeout(Duration::from_secs(20)) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the replica did not log its listen address");
    };
    Replica {
        child,
        base_url: format!("http://{addr}"),
        data_dir,
    }
}

pub async fn wait_ready(client: &reqwest::Client, replica: &Replica) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ready = client
            .get(format!("{}/readyz", replica.base_url))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200);
        if ready {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} never ready",
            replica.base_url
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
