//! The `ferry` binary's scripted interface: exit codes and output formats that CI pipelines and
//! operators depend on (`policy check`, `audit verify`, `keys generate`).

use std::path::Path;
use std::process::{Command, Output};

fn ferry(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("ferry runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const ISSUERS: &str = "issuers:\n  ci:\n    kind: oidc\n    url: https://ci.example\n";
const GOOD: &str = "issuer: ci\nsubject: { glob: \"repo:acme/api:*\" }\ngrant:\n  audience: https://deploy\n  scopes: [deploy]\n  ttl: 5m\n";

#[test]
fn policy_check_passes_the_shipped_example_policies() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = ferry(&["policy", "check", "trust-policies"], root);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(stdout(&out).starts_with("ok: "), "{}", stdout(&out));
}

#[test]
fn policy_check_exits_1_and_prints_file_line_col_for_every_broken_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("issuers.yaml"), ISSUERS).unwrap();
    std::fs::write(dir.path().join("good.yaml"), GOOD).unwrap();
    std::fs::write(
        dir.path().join("typo.yaml"),
        GOOD.replace("subject:", "subjekt:"),
    )
    .unwrap();
    std::fs::write(dir.path().join("ttl.yaml"), GOOD.replace("5m", "2d")).unwrap();
    let out = ferry(
        &["policy", "check", dir.path().to_str().unwrap()],
        dir.path(),
    );
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.iter().any(|l| l.ends_with("typo.yaml:2:1: unknown field `subjekt`, expected one of description, issuer, audience, subject, claims, normalized, any_of, when, grant, mode, delegation")), "{text}");
    assert!(lines.iter().any(|l| l.contains("ttl.yaml:6:8: ")), "{text}");
    assert!(
        lines.last().unwrap().starts_with("error: 2 problems"),
        "{text}"
    );
}

#[test]
fn audit_verify_exits_0_with_the_count_and_1_on_a_broken_chain() {
    let root = tempfile::tempdir().unwrap();
    let trail = root.path().join("audit.jsonl");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        use ferry::audit::{AuditEvent, AuditSink, FsyncPolicy, JsonlAuditSink};
        let sink = JsonlAuditSink::open(&trail, FsyncPolicy::Never).unwrap();
        for i in 0..3 {
            let event = AuditEvent {
                exchange_id: format!("ex-{i}"),
                reason: "granted".into(),
                ..AuditEvent::default()
            };
            sink.append(&event).await.unwrap();
        }
    });
    let out = ferry(&["audit", "verify", "audit.jsonl"], root.path());
    assert!(out.status.success());
    assert!(
        stdout(&out).starts_with("ok: 3 events, chain intact"),
        "{}",
        stdout(&out)
    );

    let text = std::fs::read_to_string(&trail)
        .unwrap()
        .replace("ex-1", "ex-9");
    std::fs::write(&trail, text).unwrap();
    let out = ferry(&["audit", "verify", "audit.jsonl"], root.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("line 2"), "{}", stdout(&out));
}

#[test]
fn keys_generate_writes_a_private_key_readable_by_its_owner_only_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let out = ferry(&["keys", "generate", "--out", "k.pem"], dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout(&out).contains("kid "), "{}", stdout(&out));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("k.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let again = ferry(&["keys", "generate", "--out", "k.pem"], dir.path());
    assert_eq!(
        again.status.code(),
        Some(2),
        "an existing key is never overwritten"
    );
}

#[test]
fn serve_refuses_a_group_readable_signing_key() {
    let dir = tempfile::tempdir().unwrap();
    assert!(ferry(
        &["keys", "generate", "--out", "data/signing-key.pem"],
        dir.path()
    )
    .status
    .success());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = dir.path().join("data/signing-key.pem");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
        let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("trust-policies");
        let out = ferry(
            &[
                "serve",
                "--data-dir",
                "data",
                "--listen",
                "127.0.0.1:0",
                "--policies",
                policies.to_str().unwrap(),
            ],
            dir.path(),
        );
        assert_eq!(out.status.code(), Some(2));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("chmod 600"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
