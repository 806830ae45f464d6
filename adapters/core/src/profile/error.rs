//! Located profile errors.

use std::fmt;
use std::path::PathBuf;

/// One error in one profile file, located as precisely as the loader can.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ProfileError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line, when the error can be tied to a place in the file.
    pub line: Option<usize>,
    /// 1-based column (in characters), with `line`.
    pub column: Option<usize>,
    /// The field, as a path like `parameters[2].range.min`, when known.
    pub field: Option<String>,
    /// What is wrong and what was expected.
    pub message: String,
    /// The text of the offending line, for display.
    pub snippet: Option<String>,
}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": ")?;
        if let Some(field) = &self.field {
            write!(f, "field `{field}`: ")?;
        }
        write!(f, "{}", self.message)
    }
}
