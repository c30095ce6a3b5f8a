//! The `spiffe` issuer kind in `issuers.yaml`: a trust domain and its SPIFFE bundle
//! (`bundle_url` or `bundle_file`) instead of a URL, with JWT-SVID defaults.
//!
//! ```yaml
//! mesh:
//!   kind: spiffe
//!   trust_domain: prod.example.org
//!   bundle_url: https://spire.prod.example.org/bundle   # or bundle_file: keys/prod.bundle.json
//! ```

use std::path::Path;

use serde_saphyr::Spanned;

use super::{algorithms, file_or_url, is_loopback, parse_age, Entry, Pinned, Pos, Problems};
use crate::domain::{IssuerName, TrustDomain};
use crate::issuer::{BundleLocation, IssuerKind, IssuerSpec, KeySourceSpec};

pub(super) fn build(
    name: IssuerName,
    entry: &Spanned<Entry>,
    base_dir: &Path,
) -> Result<IssuerSpec, Problems> {
    let e = &entry.value;
    let mut problems = Vec::new();
    for (field, value) in [
        ("url", &e.url),
        ("jwks_url", &e.jwks_url),
        ("jwks_file", &e.jwks_file),
    ] {
        if let Some(v) = value {
            let msg = format!(
                "kind `spiffe` takes no `{field}`: its issuer is its trust domain and its keys \
                 come from `bundle_url` or `bundle_file`"
            );
            problems.push((Pos::of(v), msg));
        }
    }
    let trust_domain = match &e.trust_domain {
        Some(td) => td
            .value
            .parse::<TrustDomain>()
            .map_err(|err| problems.push((Pos::of(td), format!("`trust_domain`: {err}"))))
            .ok(),
        None => {
            let msg = "`trust_domain` is required for kind `spiffe`, e.g. `prod.example.org`";
            problems.push((Pos::of(entry), msg.to_string()));
            None
        }
    };
    let bundle = bundle_location(entry, base_dir, &mut problems);
    let preset = IssuerKind::Spiffe.preset();
    let algorithms = algorithms(e, &preset, &mut problems);
    let max_token_age = match &e.max_token_age {
        Some(s) => parse_age(s, &mut problems),
        None => preset.max_token_age,
    };
    match (trust_domain, bundle) {
        (Some(trust_domain), Some(bundle)) if problems.is_empty() => Ok(IssuerSpec {
            name,
            kind: IssuerKind::Spiffe,
            issuer_url: trust_domain.id(),
            keys: KeySourceSpec::SpiffeBundle {
                trust_domain,
                bundle,
            },
            algorithms,
            max_token_age,
            require_jti: e.require_jti.unwrap_or(false),
            insecure_http: e.insecure_http.as_ref().is_some_and(|b| b.value),
        }),
        _ => Err(problems),
    }
}

fn bundle_location(
    entry: &Spanned<Entry>,
    base_dir: &Path,
    problems: &mut Problems,
) -> Option<BundleLocation> {
    let e = &entry.value;
    let insecure = e.insecure_http.as_ref().is_some_and(|b| b.value);
    let files = ("bundle_file", &e.bundle_file, "bundle_url", &e.bundle_url);
    match file_or_url(files, insecure, base_dir, problems)? {
        Some(Pinned::File(path)) => Some(BundleLocation::File(path)),
        Some(Pinned::Url(url)) => {
            if let Some(flag) = e.insecure_http.as_ref().filter(|f| f.value) {
                if !is_loopback(&url) {
                    let msg = "`insecure_http: true` is only allowed for loopback hosts";
                    problems.push((Pos::of(flag), msg.to_string()));
                }
            }
            Some(BundleLocation::Url(url))
        }
        None => {
            let msg = "kind `spiffe` needs `bundle_url` or `bundle_file`";
            problems.push((Pos::of(entry), msg.to_string()));
            None
        }
    }
}

/// Other kinds take no SPIFFE fields: a `bundle_url` under `kind: oidc` is a mistake, not a
/// setting to ignore.
pub(super) fn refuse_spiffe_fields(e: &Entry, kind: IssuerKind, problems: &mut Problems) {
    for (field, value) in [
        ("trust_domain", &e.trust_domain),
        ("bundle_url", &e.bundle_url),
        ("bundle_file", &e.bundle_file),
    ] {
        if let Some(v) = value {
            let msg = format!(
                "`{field}` is only for kind `spiffe`, not `{}`",
                kind.as_str()
            );
            problems.push((Pos::of(v), msg));
        }
    }
}
