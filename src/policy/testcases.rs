//! Policy test files (POLICY.md "Policy tests"): `tests/<name>.test.yaml`, read as strictly as
//! policy files. Running them is `exchange::testrun`'s job; this module only reads them.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};
use serde_saphyr::Spanned;

use super::error::LoadError;
use super::yaml::{self, Pos};

/// One `*.test.yaml` file.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Ferry policy test file")]
pub struct TestFile {
    /// The policy under test: an `allow` case must be granted by this policy.
    pub policy: String,
    #[schemars(with = "Vec<TestCase>")]
    pub cases: Vec<Spanned<TestCase>>,
}

/// One case: a token's claims, a request, and the expected outcome.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    pub name: String,
    /// The subject token's payload. `iss` selects the issuer (default: the policy's); a
    /// missing `aud` means the token is addressed to the broker; a missing `exp` is 10 minutes
    /// from now. Signatures are not involved.
    pub claims: Map<String, Value>,
    #[serde(default)]
    pub request: TestRequest,
    /// The actor token's payload (RFC 8693 `actor_token`, delegation): `iss` selects its
    /// issuer (required); a missing `aud` means the broker; a missing `exp` is 10 minutes on.
    #[serde(default)]
    pub actor: Option<Map<String, Value>>,
    pub expect: Expect,
}

/// The RFC 8693 form fields a case sends (all optional).
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestRequest {
    pub audience: Option<String>,
    /// Space-separated scopes, as in the form.
    pub scope: Option<String>,
    pub ttl_seconds: Option<u64>,
    /// Name the policy instead of searching.
    pub policy: Option<String>,
}

/// `allow`, or `{ deny: CODE }` with a stable denial code (e.g. `claim_mismatch`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    Allow,
    Deny(String),
}

/// A case with where it was written.
#[derive(Debug)]
pub struct LocatedCase {
    pub file: PathBuf,
    pub line: u64,
    pub case: TestCase,
}

/// Every `tests/*.test.yaml` under `dir`, sorted by file name: `(policy, cases)` per file.
pub fn load_tests(dir: &Path) -> Result<Vec<(String, Vec<LocatedCase>)>, Vec<LoadError>> {
    let tests = dir.join("tests");
    let mut names: Vec<PathBuf> = match std::fs::read_dir(&tests) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().ends_with(".test.yaml"))
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for path in names {
        let parsed = std::fs::read_to_string(&path)
            .map_err(|e| LoadError::file(&path, format!("cannot read: {e}")))
            .and_then(|text| yaml::parse::<TestFile>(&path, &text));
        match parsed {
            Ok(f) => {
                let cases = f
                    .cases
                    .into_iter()
                    .map(|c| LocatedCase {
                        file: path.clone(),
                        line: Pos::of(&c).line,
                        case: c.value,
                    })
                    .collect();
                out.push((f.policy, cases));
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}
