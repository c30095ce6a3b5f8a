//! `issuers.yaml` -> validated [`IssuerSpec`]s: kinds and their presets, key sources, algorithm
//! allowlists, and the https-only rule (plain http only for loopback with `insecure_http: true`).
//! The `spiffe` kind (trust domain and bundle instead of a URL) is built in `spiffe`.

mod spiffe;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::domain::{Algorithm, IssuerName};
use crate::issuer::{IssuerKind, IssuerSpec, KeySourceSpec, Preset};

use super::error::LoadError;
use super::yaml::{self, Pos};

mod ferry;
pub(crate) use ferry::BROKER_URL;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Ferry issuers.yaml")]
pub(crate) struct IssuersFile {
    /// Issuer name (used by policies) -> how to trust it.
    #[schemars(with = "BTreeMap<String, Entry>")]
    issuers: BTreeMap<IssuerName, Spanned<Entry>>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Entry {
    /// `oidc`, a preset (`github-actions`, `gitlab`, `buildkite`, `circleci`, `kubernetes`,
    /// `spiffe`) or `ferry` (this broker).
    #[schemars(with = "String")]
    kind: Spanned<String>,
    /// The token's exact `iss`; also the base of OIDC discovery.
    #[schemars(with = "Option<String>")]
    url: Option<Spanned<String>>,
    #[schemars(with = "Option<String>")]
    jwks_url: Option<Spanned<String>>,
    /// Pinned keys, relative to the policy directory.
    #[schemars(with = "Option<String>")]
    jwks_file: Option<Spanned<String>>,
    /// Allowlist, e.g. `[RS256, ES256]`; `none` and HMAC are refused.
    #[schemars(with = "Option<Vec<String>>")]
    algorithms: Option<Spanned<Vec<Spanned<String>>>>,
    /// `iat` must be at most this old, e.g. `1h`.
    #[schemars(with = "Option<String>")]
    max_token_age: Option<Spanned<String>>,
    require_jti: Option<bool>,
    /// Plain http, for loopback issuers only.
    #[schemars(with = "Option<bool>")]
    insecure_http: Option<Spanned<bool>>,
    /// Kind `spiffe`: the trust domain whose SPIFFE IDs this issuer vouches for, e.g.
    /// `prod.example.org`.
    #[schemars(with = "Option<String>")]
    trust_domain: Option<Spanned<String>>,
    /// Kind `spiffe`: the SPIFFE bundle endpoint (https).
    #[schemars(with = "Option<String>")]
    bundle_url: Option<Spanned<String>>,
    /// Kind `spiffe`: a pinned SPIFFE bundle, relative to the policy directory.
    #[schemars(with = "Option<String>")]
    bundle_file: Option<Spanned<String>>,
}

/// Parses `issuers.yaml`; `base_dir` resolves relative `jwks_file`s. Collects every error.
pub(crate) fn parse(
    file: &Path,
    text: &str,
    base_dir: &Path,
) -> Result<Vec<IssuerSpec>, Vec<LoadError>> {
    let parsed: IssuersFile = yaml::parse(file, text).map_err(|e| vec![e])?;
    let mut specs = Vec::new();
    let mut errors = Vec::new();
    for (name, entry) in parsed.issuers {
        match build(name, &entry, base_dir) {
            Ok(spec) => specs.push(spec),
            Err(problems) => errors.extend(
                problems
                    .into_iter()
                    .map(|(pos, msg)| LoadError::at(file, pos, msg)),
            ),
        }
    }
    if errors.is_empty() {
        Ok(specs)
    } else {
        Err(errors)
    }
}

type Problems = Vec<(Pos, String)>;

fn build(
    name: IssuerName,
    entry: &Spanned<Entry>,
    base_dir: &Path,
) -> Result<IssuerSpec, Problems> {
    let e = &entry.value;
    let mut problems = Vec::new();
    let Some(kind) = IssuerKind::parse(&e.kind.value) else {
        let known: Vec<String> = IssuerKind::ALL
            .iter()
            .map(|k| format!("`{}`", k.as_str()))
            .collect();
        let msg = format!(
            "unsupported issuer kind `{}`, expected one of {}",
            e.kind.value,
            known.join(", ")
        );
        return Err(vec![(Pos::of(&e.kind), msg)]);
    };
    let preset = kind.preset();
    if kind == IssuerKind::Spiffe {
        return spiffe::build(name, entry, base_dir);
    }
    spiffe::refuse_spiffe_fields(e, kind, &mut problems);
    if kind == IssuerKind::Ferry {
        return match ferry::build(name, entry) {
            Ok(spec) if problems.is_empty() => Ok(spec),
            Ok(_) => Err(problems),
            Err(mut more) => {
                problems.append(&mut more);
                Err(problems)
            }
        };
    }
    let insecure = e.insecure_http.as_ref().is_some_and(|b| b.value);
    let url = match (&e.url, preset.url) {
        (Some(u), _) => u.value.clone(),
        (None, Some(default)) => default.to_string(),
        (None, None) => {
            let msg = format!(
                "`url` is required for kind `{}`: {}",
                kind.as_str(),
                kind.url_hint()
            );
            return Err(vec![(Pos::of(entry), msg)]);
        }
    };
    let url_pos = e.url.as_ref().map(Pos::of).unwrap_or(Pos::of(entry));
    let parsed_url = check_url(&url, insecure, url_pos, &mut problems);
    if let (Some(flag), Some(u)) = (&e.insecure_http, &parsed_url) {
        if flag.value && !is_loopback(u) {
            let msg = "`insecure_http: true` is only allowed for loopback hosts (127.0.0.0/8, ::1, localhost)";
            problems.push((Pos::of(flag), msg.to_string()));
        }
    }
    if let Some(u) = &parsed_url {
        super::issuer_rules::check_kind_url(kind, u, &mut problems, url_pos);
    }
    let keys = key_source(e, parsed_url, insecure, base_dir, &mut problems);
    let algorithms = algorithms(e, &preset, &mut problems);
    let max_token_age = match &e.max_token_age {
        Some(s) => parse_age(s, &mut problems),
        None => preset.max_token_age,
    };
    let require_jti = e.require_jti.unwrap_or(preset.require_jti);
    match keys {
        Some(keys) if problems.is_empty() => Ok(IssuerSpec {
            name,
            kind,
            issuer_url: url,
            keys,
            algorithms,
            max_token_age,
            require_jti,
            insecure_http: insecure,
        }),
        _ => Err(problems),
    }
}

/// https, or http only to a loopback host when `insecure_http: true`.
fn check_url(s: &str, insecure: bool, pos: Pos, problems: &mut Problems) -> Option<url::Url> {
    let url = match url::Url::parse(s) {
        Ok(u) if u.host().is_some() => u,
        Ok(_) => {
            problems.push((pos, format!("`{s}` has no host")));
            return None;
        }
        Err(e) => {
            problems.push((pos, format!("`{s}` is not a valid URL: {e}")));
            return None;
        }
    };
    match url.scheme() {
        "https" => Some(url),
        "http" if insecure && is_loopback(&url) => Some(url),
        "http" => {
            let msg = format!(
                "`{s}` must use https (plain http is allowed only for loopback hosts with \
                 `insecure_http: true`)"
            );
            problems.push((pos, msg));
            None
        }
        other => {
            problems.push((
                pos,
                format!("`{s}`: scheme `{other}` is not allowed, use https"),
            ));
            None
        }
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

fn key_source(
    e: &Entry,
    url: Option<url::Url>,
    insecure: bool,
    base_dir: &Path,
    problems: &mut Problems,
) -> Option<KeySourceSpec> {
    let files = ("jwks_file", &e.jwks_file, "jwks_url", &e.jwks_url);
    match file_or_url(files, insecure, base_dir, problems)? {
        Some(Pinned::File(path)) => Some(KeySourceSpec::JwksFile(path)),
        Some(Pinned::Url(u)) => Some(KeySourceSpec::JwksUrl(u)),
        None => url.map(KeySourceSpec::Discovery),
    }
}

/// Where a key document comes from when the entry names one.
pub(super) enum Pinned {
    /// A file, resolved against the policy directory (it must exist at load time).
    File(std::path::PathBuf),
    /// A URL, https (plain http only for loopback with `insecure_http`).
    Url(url::Url),
}

type FileAndUrl<'a> = (
    &'static str,
    &'a Option<Spanned<String>>,
    &'static str,
    &'a Option<Spanned<String>>,
);

/// `(file field, file, url field, url)`: at most one of the two (`Some(None)`: neither);
/// `None` when a problem was recorded.
pub(super) fn file_or_url(
    (file_field, file, url_field, url): FileAndUrl<'_>,
    insecure: bool,
    base_dir: &Path,
    problems: &mut Problems,
) -> Option<Option<Pinned>> {
    match (file, url) {
        (Some(f), Some(_)) => {
            let msg = format!("set either `{file_field}` or `{url_field}`, not both");
            problems.push((Pos::of(f), msg));
            None
        }
        (Some(f), None) => {
            let path = base_dir.join(&f.value);
            if path.is_file() {
                Some(Some(Pinned::File(path)))
            } else {
                let msg = format!(
                    "{file_field} `{}` not found (looked at {})",
                    f.value,
                    path.display()
                );
                problems.push((Pos::of(f), msg));
                None
            }
        }
        (None, Some(u)) => {
            check_url(&u.value, insecure, Pos::of(u), problems).map(|u| Some(Pinned::Url(u)))
        }
        (None, None) => Some(None),
    }
}

fn algorithms(e: &Entry, preset: &Preset, problems: &mut Problems) -> Vec<Algorithm> {
    let Some(list) = &e.algorithms else {
        return preset.algorithms.to_vec();
    };
    if list.value.is_empty() {
        problems.push((
            Pos::of(list),
            "`algorithms` must list at least one algorithm".to_string(),
        ));
    }
    let mut algs = Vec::new();
    for a in &list.value {
        match a.value.parse::<Algorithm>() {
            Ok(alg) if !algs.contains(&alg) => algs.push(alg),
            Ok(_) => {}
            Err(err) => problems.push((Pos::of(a), err.to_string())),
        }
    }
    algs
}

fn parse_age(s: &Spanned<String>, problems: &mut Problems) -> Option<Duration> {
    let positive = Duration::from_nanos(1)..=Duration::MAX;
    yaml::duration_in(s, "max_token_age", positive, "more than zero", problems)
}
