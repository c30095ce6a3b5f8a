//! [`PolicySet`]: the immutable, loaded and compiled policy directory, and the loader that builds
//! it. `load` is the only function in `policy` that touches the file system (besides checking
//! that a `jwks_file` exists); everything else is pure.
//!
//! A set with any error is never returned: errors from every file are collected first.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use crate::domain::{IssuerName, PolicyName};
use crate::issuer::{IssuerKind, IssuerSpec};

use super::error::{Lint, LoadError, LoadErrors};
use super::guardrails::{self, Guardrails, GUARDRAILS_FILE};
use super::index::Index;
use super::model::Policy;
use super::{file, issuers, lint, lint_set};

const ISSUERS_FILE: &str = "issuers.yaml";

/// A loaded policy directory. Immutable once built; share it behind an `Arc`.
#[derive(Debug)]
pub struct PolicySet {
    issuers: Vec<IssuerSpec>,
    /// In file-name order: the order `decide` tries them in.
    policies: Vec<Policy>,
    by_name: HashMap<PolicyName, usize>,
    index: Index,
    guardrails: Guardrails,
    version: String,
    warnings: Vec<Lint>,
}

impl PolicySet {
    /// Loads `dir` (POLICY.md "Layout"): `issuers.yaml`, one policy per `*.yaml`/`*.yml`;
    /// `guardrails.yaml` when present; `tests/` and other subdirectories are ignored.
    pub fn load(dir: &Path) -> Result<PolicySet, LoadErrors> {
        let mut errors = Vec::new();
        let mut issuers_text = None;
        let mut guardrails_text = None;
        let mut policies = Vec::new();
        for (name, path) in yaml_files(dir, &mut errors) {
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) => {
                    errors.push(LoadError::file(&path, format!("cannot read: {e}")));
                    continue;
                }
            };
            match name.as_str() {
                ISSUERS_FILE => issuers_text = Some(text),
                "issuers.yml" => errors.push(LoadError::file(&path, "rename to issuers.yaml")),
                GUARDRAILS_FILE => guardrails_text = Some(text),
                "guardrails.yml" => {
                    errors.push(LoadError::file(&path, "rename to guardrails.yaml"))
                }
                _ => policies.push((name, text)),
            }
        }
        let Some(issuers_text) = issuers_text else {
            errors.push(LoadError::file(
                &dir.join(ISSUERS_FILE),
                "issuers.yaml is missing",
            ));
            return Err(LoadErrors(errors));
        };
        let sources = Sources {
            issuers: &issuers_text,
            guardrails: guardrails_text.as_deref(),
            policies: &policies,
        };
        match Self::build(&sources, dir) {
            Ok(set) if errors.is_empty() => Ok(set),
            Ok(_) => Err(LoadErrors(errors)),
            Err(LoadErrors(more)) => {
                errors.extend(more);
                Err(LoadErrors(errors))
            }
        }
    }

    /// Same as [`PolicySet::load`], from in-memory sources: the `issuers.yaml` text and
    /// `(file name, text)` per policy (the policy name is the file stem). `base_dir` resolves
    /// relative `jwks_file`s and prefixes file names in errors.
    pub fn from_sources(
        issuers_yaml: &str,
        policies: &[(String, String)],
        base_dir: &Path,
    ) -> Result<PolicySet, LoadErrors> {
        let sources = Sources {
            issuers: issuers_yaml,
            guardrails: None,
            policies,
        };
        Self::build(&sources, base_dir)
    }

    /// [`PolicySet::from_sources`] with a `guardrails.yaml` text too.
    pub fn from_sources_with_guardrails(
        issuers_yaml: &str,
        guardrails_yaml: &str,
        policies: &[(String, String)],
        base_dir: &Path,
    ) -> Result<PolicySet, LoadErrors> {
        let sources = Sources {
            issuers: issuers_yaml,
            guardrails: Some(guardrails_yaml),
            policies,
        };
        Self::build(&sources, base_dir)
    }

    fn build(src: &Sources, base_dir: &Path) -> Result<PolicySet, LoadErrors> {
        super::compile::with_pattern_cache(|| Self::compile(src, base_dir))
    }

    fn compile(src: &Sources, base_dir: &Path) -> Result<PolicySet, LoadErrors> {
        let (issuers_yaml, policies) = (src.issuers, src.policies);
        let mut errors = Vec::new();
        let issuers_path = base_dir.join(ISSUERS_FILE);
        let issuers = issuers::parse(&issuers_path, issuers_yaml, base_dir).unwrap_or_else(|e| {
            errors.extend(e);
            Vec::new()
        });
        let known: BTreeSet<IssuerName> = issuers.iter().map(|i| i.name.clone()).collect();
        let guardrails = match src.guardrails {
            Some(text) => guardrails::parse(&base_dir.join(GUARDRAILS_FILE), text, &known)
                .unwrap_or_else(|e| {
                    errors.extend(e);
                    Guardrails::default()
                }),
            None => Guardrails::default(),
        };
        let mut sorted: Vec<&(String, String)> = policies.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        let mut compiled: Vec<Policy> = Vec::new();
        let mut by_name = HashMap::new();
        for (file_name, text) in sorted {
            let display = base_dir.join(file_name);
            let Some(name) = policy_name(file_name, &display, &mut errors) else {
                continue;
            };
            if by_name.contains_key(&name) {
                errors.push(LoadError::file(
                    &display,
                    format!("policy `{name}` is defined twice"),
                ));
                continue;
            }
            match file::parse(name.clone(), Path::new(file_name), &display, text, &known) {
                Ok(p) => {
                    by_name.insert(name, compiled.len());
                    compiled.push(p);
                }
                Err(e) => errors.extend(e),
            }
        }
        if !errors.is_empty() {
            return Err(LoadErrors(errors));
        }
        let kinds: HashMap<&IssuerName, IssuerKind> =
            issuers.iter().map(|i| (&i.name, i.kind)).collect();
        let mut warnings: Vec<Lint> = compiled
            .iter()
            .flat_map(|p| lint::check(p, kinds[&p.issuer], &base_dir.join(&p.file)))
            .collect();
        warnings.extend(lint_set::check(
            &compiled,
            &issuers,
            issuers_yaml,
            &guardrails,
            base_dir,
        ));
        Ok(PolicySet {
            version: version(issuers_yaml, src.guardrails, policies),
            guardrails,
            index: Index::build(&compiled),
            issuers,
            policies: compiled,
            by_name,
            warnings,
        })
    }

    pub fn issuers(&self) -> &[IssuerSpec] {
        &self.issuers
    }

    /// Lower-case hex SHA-256 over every loaded file (see `version`).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The number of policies.
    pub fn len(&self) -> usize {
        self.policies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// Lints for `ferry policy check`; they never stop a set from loading.
    pub fn warnings(&self) -> &[Lint] {
        &self.warnings
    }

    /// Policy names in file-name order.
    pub fn policy_names(&self) -> impl Iterator<Item = &PolicyName> {
        self.policies.iter().map(|p| &p.name)
    }

    pub(crate) fn policy(&self, i: usize) -> &Policy {
        &self.policies[i]
    }

    pub(crate) fn position(&self, name: &PolicyName) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    pub(crate) fn index(&self) -> &Index {
        &self.index
    }

    pub(crate) fn guardrails(&self) -> &Guardrails {
        &self.guardrails
    }
}

/// The texts of one policy directory.
struct Sources<'a> {
    issuers: &'a str,
    guardrails: Option<&'a str>,
    /// `(file name, text)`.
    policies: &'a [(String, String)],
}

/// `*.yaml` / `*.yml` regular files directly in `dir`, sorted by name. Subdirectories (`tests/`,
/// key folders) and other files are not the loader's business.
fn yaml_files(dir: &Path, errors: &mut Vec<LoadError>) -> Vec<(String, PathBuf)> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            errors.push(LoadError::file(
                dir,
                format!("cannot read the policy directory: {e}"),
            ));
            return Vec::new();
        }
    };
    let mut files: Vec<(String, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
        .filter(|(n, _)| !n.starts_with('.') && (n.ends_with(".yaml") || n.ends_with(".yml")))
        .collect();
    files.sort();
    files
}

fn policy_name(file_name: &str, display: &Path, errors: &mut Vec<LoadError>) -> Option<PolicyName> {
    let stem = file_name
        .strip_suffix(".yaml")
        .or_else(|| file_name.strip_suffix(".yml"));
    let Some(stem) = stem else {
        errors.push(LoadError::file(
            display,
            "policy files end in .yaml or .yml",
        ));
        return None;
    };
    stem.parse()
        .map_err(|e| {
            errors.push(LoadError::file(
                display,
                format!("{e} (the policy name is the file stem)"),
            ))
        })
        .ok()
}

/// SHA-256 over `(relative path, bytes)` of every file, sorted by path; each file is framed as
/// `path NUL length(u64 BE) bytes` so no two different sets hash alike.
fn version(issuers_yaml: &str, guardrails: Option<&str>, policies: &[(String, String)]) -> String {
    let mut files: Vec<(&str, &str)> = policies
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    files.push((ISSUERS_FILE, issuers_yaml));
    files.extend(guardrails.map(|g| (GUARDRAILS_FILE, g)));
    files.sort();
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for (path, text) in files {
        ctx.update(path.as_bytes());
        ctx.update(&[0]);
        ctx.update(&(text.len() as u64).to_be_bytes());
        ctx.update(text.as_bytes());
    }
    ctx.finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
