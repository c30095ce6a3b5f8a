//! `kind: ferry` in `issuers.yaml`: this broker as an issuer, so its own credentials can be
//! subject tokens (the second hop of a delegation chain).
//!
//! Its URL is the broker's public URL (`url:` may be written, and must then equal it: checked
//! when the verifier is built) and its keys are the broker's signing keys, handed over in
//! process: `jwks_url`, `jwks_file` and `insecure_http` make no sense here and are refused.

use crate::domain::IssuerName;
use crate::issuer::{IssuerKind, IssuerSpec, KeySourceSpec};

use super::{algorithms, parse_age, Entry, Pos, Problems};
use serde_saphyr::Spanned;

/// Placeholder URL of a `ferry` issuer without `url:`: the verifier fills in the broker's.
pub(crate) const BROKER_URL: &str = "";

pub(super) fn build(name: IssuerName, entry: &Spanned<Entry>) -> Result<IssuerSpec, Problems> {
    let e = &entry.value;
    let mut problems = Vec::new();
    let refused = [
        ("jwks_url", e.jwks_url.as_ref().map(Pos::of)),
        ("jwks_file", e.jwks_file.as_ref().map(Pos::of)),
        ("insecure_http", e.insecure_http.as_ref().map(Pos::of)),
    ];
    for (field, pos) in refused {
        if let Some(pos) = pos {
            let msg = format!(
                "`{field}` does not apply to kind `ferry`: its keys are the broker's own signing keys"
            );
            problems.push((pos, msg));
        }
    }
    if let Some(u) = &e.url {
        if url::Url::parse(&u.value).is_err() {
            problems.push((Pos::of(u), format!("`{}` is not a valid URL", u.value)));
        }
    }
    let algorithms = algorithms(e, &IssuerKind::Ferry.preset(), &mut problems);
    let max_token_age = e
        .max_token_age
        .as_ref()
        .and_then(|s| parse_age(s, &mut problems));
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(IssuerSpec {
        name,
        kind: IssuerKind::Ferry,
        issuer_url: e
            .url
            .as_ref()
            .map_or(BROKER_URL.to_string(), |u| u.value.clone()),
        keys: KeySourceSpec::Broker,
        algorithms,
        max_token_age,
        // Ferry credentials always carry a jti: each is exchanged at most once.
        require_jti: e.require_jti.unwrap_or(true),
        insecure_http: false,
    })
}
