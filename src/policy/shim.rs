//! Placeholder with the agreed signatures until the policy branch is merged.
use std::fmt;
use std::path::{Path, PathBuf};

use crate::issuer::IssuerSpec;

pub struct PolicySet;
impl PolicySet {
    pub fn load(_: &Path) -> Result<PolicySet, LoadErrors> {
        Ok(PolicySet)
    }
    pub fn issuers(&self) -> &[IssuerSpec] {
        &[]
    }
    pub fn version(&self) -> &str {
        ""
    }
    pub fn len(&self) -> usize {
        0
    }
    pub fn is_empty(&self) -> bool {
        true
    }
    pub fn warnings(&self) -> &[Lint] {
        &[]
    }
}
#[derive(Debug)]
pub struct LoadError {
    pub file: PathBuf,
    pub line: u64,
    pub column: u64,
    pub message: String,
}
#[derive(Debug)]
pub struct LoadErrors(pub Vec<LoadError>);
impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.0 {
            writeln!(
                f,
                "{}:{}:{}: {}",
                e.file.display(),
                e.line,
                e.column,
                e.message
            )?;
        }
        Ok(())
    }
}
impl std::error::Error for LoadErrors {}
#[derive(Debug)]
pub struct Lint {
    pub file: PathBuf,
    pub line: u64,
    pub column: u64,
    pub code: &'static str,
    pub message: String,
}
impl fmt::Display for Lint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: warning[{}]: {}",
            self.file.display(),
            self.line,
            self.column,
            self.code,
            self.message
        )
    }
}
