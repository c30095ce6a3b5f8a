//! What loading a policy directory can report: [`LoadError`] (the set is refused) and [`Lint`]
//! (the set loads, `ferry policy check` warns). Both point at a file, line and column.

use std::fmt;
use std::path::{Path, PathBuf};

use super::yaml::Pos;

/// One reason a policy directory did not load. Display: `FILE:LINE:COL: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}:{column}: {message}", file.display())]
pub struct LoadError {
    pub file: PathBuf,
    /// 1-based; 1 when the whole file is at fault.
    pub line: u64,
    /// 1-based; 1 when the whole file is at fault.
    pub column: u64,
    pub message: String,
}

impl LoadError {
    pub(crate) fn at(file: &Path, pos: Pos, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            line: pos.line,
            column: pos.column,
            message: message.into(),
        }
    }

    pub(crate) fn file(file: &Path, message: impl Into<String>) -> Self {
        Self::at(file, Pos::START, message)
    }
}

/// Every error found across the directory: a set with any error is never returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadErrors(pub Vec<LoadError>);

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadErrors {}

/// A warning about a policy that loads but is probably wider than its author meant.
/// Display: `FILE:LINE:COL: warning[CODE]: message`. Codes are stable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lint {
    pub file: PathBuf,
    pub line: u64,
    pub column: u64,
    pub code: &'static str,
    pub message: String,
}

impl Lint {
    pub(crate) fn at(file: &Path, pos: Pos, code: &'static str, message: String) -> Self {
        Self {
            file: file.to_path_buf(),
            line: pos.line,
            column: pos.column,
            code,
            message,
        }
    }
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
