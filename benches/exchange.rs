//! The cost of one exchange in process (no HTTP, no store round trip, no audit I/O), and the
//! floor under it: the one signature verify and the one signature an exchange cannot avoid.
//!
//! `cargo bench --bench exchange` (add `-- verify` etc. to filter).

use std::path::Path;
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    EcdsaKeyPair, KeyPair, RsaKeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED_SIGNING,
    RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use ferry::config::SigningAlgorithm;
use ferry::credential::{generate_pkcs8, JwtMinter, MintRequest, Minter, SigningKey};
use ferry::domain::{ScopeSet, UnixSeconds};
use ferry::exchange::{decide, DecideContext, Decision, Requested};
use ferry::issuer::normalize::normalize;
use ferry::issuer::{FetchSettings, IssuerKind};
use ferry::policy::PolicySet;
use ferry::verify::{Verifier, VerifySettings};
use serde_json::{json, Value};

const ISS: &str = "https://token.ci.example";
const AUD: &str = "https://ferry.bench";

struct Issuer {
    key: RsaKeyPair,
    rng: SystemRandom,
}

impl Issuer {
    fn new() -> Self {
        Self {
            key: RsaKeyPair::generate(KeySize::Rsa2048).unwrap(),
            rng: SystemRandom::new(),
        }
    }

    fn jwks(&self) -> Value {
        let public = self.key.public_key();
        let n = aws_lc_rs::rsa::PublicKeyComponents::<Vec<u8>>::from(public);
        json!({"keys": [{"kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig",
            "n": URL_SAFE_NO_PAD.encode(&n.n), "e": URL_SAFE_NO_PAD.encode(&n.e)}]})
    }

    fn token(&self, i: u64, now: UnixSeconds) -> String {
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT","kid":"k1"}"#);
        let claims = json!({
            "iss": ISS, "aud": AUD, "sub": format!("repo:acme/api{i}:ref:refs/heads/main"),
            "jti": format!("jti-{i}"), "iat": now, "nbf": now, "exp": now + 300,
            "repository": format!("acme/api{i}"), "repository_id": "123456789",
            "repository_owner": "acme", "repository_owner_id": "4242", "ref": "refs/heads/main",
            "ref_type": "branch", "ref_protected": "true", "event_name": "push", "actor": "octocat",
            "actor_id": "1", "run_id": format!("{i}"), "run_attempt": "1",
            "workflow": "deploy", "sha": "0123456789abcdef0123456789abcdef01234567",
            "job_workflow_ref": "acme/workflows/.github/workflows/deploy.yml@refs/tags/v1.2.3",
            "runner_environment": "github-hosted",
        });
        let msg = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
        let mut sig = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &self.rng, msg.as_bytes(), &mut sig)
            .unwrap();
        format!("{msg}.{}", URL_SAFE_NO_PAD.encode(sig))
    }
}

fn issuers_yaml(jwks_file: &Path) -> String {
    format!(
        "issuers:\n  ci:\n    kind: oidc\n    url: {ISS}\n    jwks_file: {}\n    algorithms: [RS256]\n",
        jwks_file.display()
    )
}

/// `n` policies for the one issuer; policy `i` pins subject `repo:acme/api{i}:ref:refs/heads/main`
/// exactly, like a security team writing one policy per repository.
fn policies(n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| {
            let yaml = format!(
                "issuer: ci\naudience: {AUD}\nsubject: \"repo:acme/api{i}:ref:refs/heads/main\"\n\
                 claims:\n  repository_id: \"123456789\"\n  ref: {{ glob: \"refs/heads/*\" }}\n  \
                 actor: {{ not: {{ one_of: [\"dependabot[bot]\"] }} }}\n\
                 grant:\n  audience: https://deploy.acme.internal\n  scopes: [deploy:api, read:artifacts]\n  \
                 ttl: 15m\n  claims:\n    repository: repository\n    run_id: run_id\n"
            );
            (format!("p{i:05}.yaml"), yaml)
        })
        .collect()
}

struct Fixture {
    _dir: tempfile::TempDir,
    issuer: Issuer,
    verifier: Verifier,
    small: PolicySet,
    large: PolicySet,
    minter: JwtMinter,
    rt: tokio::runtime::Runtime,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let issuer = Issuer::new();
    let jwks = dir.path().join("ci.jwks.json");
    std::fs::write(&jwks, issuer.jwks().to_string()).unwrap();
    let yaml = issuers_yaml(&jwks);
    let small = PolicySet::from_sources(&yaml, &policies(1), dir.path()).unwrap();
    let large = PolicySet::from_sources(&yaml, &policies(10_000), dir.path()).unwrap();
    let verifier = Verifier::new(
        small.issuers(),
        VerifySettings::default(),
        FetchSettings::default(),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(verifier.warm_up());
    let der = generate_pkcs8(SigningAlgorithm::ES256).unwrap();
    let minter = JwtMinter::new(
        SigningKey::from_pkcs8(&der, SigningAlgorithm::ES256).unwrap(),
        AUD,
    );
    Fixture {
        _dir: dir,
        issuer,
        verifier,
        small,
        large,
        minter,
        rt,
    }
}

fn now() -> UnixSeconds {
    ferry::domain::unix_now()
}

fn context() -> DecideContext {
    DecideContext {
        broker_audience: AUD.parse().unwrap(),
    }
}

fn floor(c: &mut Criterion, f: &Fixture) {
    let token = f.issuer.token(0, now());
    let (msg, sig) = token.rsplit_once('.').unwrap();
    let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
    let public = f.issuer.key.public_key().as_ref().to_vec();
    let parsed = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &public)
        .parse()
        .unwrap();
    c.bench_function("floor/rs256_verify_aws_lc", |b| {
        b.iter(|| parsed.verify_sig(msg.as_bytes(), &sig).unwrap())
    });
    let rng = SystemRandom::new();
    let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref()).unwrap();
    c.bench_function("floor/es256_sign_aws_lc", |b| {
        b.iter(|| pair.sign(&rng, msg.as_bytes()).unwrap())
    });
}

fn stages(c: &mut Criterion, f: &Fixture) {
    let t = now();
    let token = f.issuer.token(0, t);
    c.bench_function("verify/rs256_github_shaped", |b| {
        b.iter(|| f.rt.block_on(f.verifier.verify(&token, t)).unwrap())
    });
    let verified = f.rt.block_on(f.verifier.verify(&token, t)).unwrap();
    // What the verifier adds per token for the normalised claims of a GitHub-kind issuer.
    c.bench_function("normalize/github_shaped", |b| {
        b.iter(|| normalize(IssuerKind::GithubActions, &verified.claims))
    });
    let requested = Requested {
        scopes: ScopeSet::parse("deploy:api").unwrap(),
        ..Requested::default()
    };
    for (name, set) in [
        ("decide/1_policy", &f.small),
        ("decide/10000_policies", &f.large),
    ] {
        c.bench_function(name, |b| {
            b.iter(|| {
                assert!(matches!(
                    decide(&requested, &verified, set, &context(), t),
                    Decision::Allow(_)
                ))
            })
        });
    }
    let Decision::Allow(grant) = decide(&requested, &verified, &f.small, &context(), t) else {
        unreachable!()
    };
    c.bench_function("mint/es256_rfc9068", |b| {
        b.iter(|| {
            f.minter
                .mint(&mint_request(&grant, &verified.subject, t))
                .unwrap()
        })
    });
}

fn mint_request<'a>(
    g: &'a ferry::exchange::Grant,
    subject: &'a str,
    t: UnixSeconds,
) -> MintRequest<'a> {
    MintRequest {
        subject,
        audience: g.audience.as_str(),
        policy: g.policy.as_str(),
        policy_file: &g.policy_file,
        policy_set: "bench",
        scopes: &g.scopes,
        ttl_seconds: g.ttl_seconds,
        now: t,
        exchange_id: "bench",
        source_issuer: "ci",
        claims: &g.claims,
        act: None,
        derived_from: &[],
        derived_policies: &[],
    }
}

/// verify + decide (10,000 policies) + mint: the CPU an exchange needs before I/O.
fn whole(c: &mut Criterion, f: &Fixture) {
    let t = now();
    let tokens: Vec<String> = (0..64).map(|i| f.issuer.token(i, t)).collect();
    let requested = Requested::default();
    let mut i = 0;
    c.bench_function("exchange/verify_decide10k_mint", |b| {
        b.iter_batched(
            || {
                i = (i + 1) % tokens.len();
                &tokens[i]
            },
            |token| {
                let v = f.rt.block_on(f.verifier.verify(token, t)).unwrap();
                let Decision::Allow(g) = decide(&requested, &v, &f.large, &context(), t) else {
                    panic!("denied")
                };
                f.minter.mint(&mint_request(&g, &v.subject, t)).unwrap()
            },
            BatchSize::SmallInput,
        )
    });
}

/// `PolicySet::load` of a directory of 10,000 policy files plus issuers and guardrails: what
/// `serve` start-up, `policy check` and every hot reload pay.
fn load(c: &mut Criterion, f: &Fixture) {
    let dir = tempfile::tempdir().unwrap();
    let jwks = f._dir.path().join("ci.jwks.json");
    std::fs::write(dir.path().join("issuers.yaml"), issuers_yaml(&jwks)).unwrap();
    let guardrails =
        "max_ttl: 1h\ndeny:\n  - description: bots\n    claims: { actor: { glob: '*[bot]' } }\n";
    std::fs::write(dir.path().join("guardrails.yaml"), guardrails).unwrap();
    for (name, yaml) in policies(10_000) {
        std::fs::write(dir.path().join(name), yaml).unwrap();
    }
    // The same directory with a distinct glob subject per policy: 10,000 different patterns
    // to compile (the repeated `refs/heads/*` above compiles once per load).
    let globs = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let text = text
            .replace(":ref:refs/heads/main\"", ":*\"")
            .replace("subject: \"", "subject: { glob: \"");
        let text = text.replace(":*\"\n", ":*\" }\n");
        std::fs::write(globs.path().join(path.file_name().unwrap()), text).unwrap();
    }
    let mut group = c.benchmark_group("policy");
    group.sample_size(10);
    for (name, d) in [
        ("load_10k_files", &dir),
        ("load_10k_files_distinct_globs", &globs),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let set = PolicySet::load(d.path()).unwrap();
                assert_eq!(set.len(), 10_000);
                set
            })
        });
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    let f = fixture();
    load(c, &f);
    floor(c, &f);
    stages(c, &f);
    whole(c, &f);
}

criterion_group! {
    name = exchange;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = benches
}
criterion_main!(exchange);
