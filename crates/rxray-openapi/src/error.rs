//! The one error a spec can fail to load with: the file, the JSON pointer and the line where known.
use std::fmt;

/// A spec that cannot be used, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// The file as the user named it.
    pub file: String,
    /// The JSON pointer of the offending node (RFC 6901), when the error is about one.
    pub pointer: Option<String>,
    /// 1-based line and column in the file, when known.
    pub line: Option<usize>,
    pub col: Option<usize>,
    pub message: String,
}

impl SpecError {
    pub(crate) fn at(file: &str, pointer: &str, message: impl Into<String>) -> Self {
        SpecError { file: file.into(), pointer: Some(pointer.into()), line: None, col: None, message: message.into() }
    }

    /// Fills in the line of the pointer from the text.
    pub(crate) fn located(mut self, text: &str) -> Self {
        if let (Some(p), None) = (&self.pointer, self.line) {
            if let Some(pos) = crate::text::locate(text, p) {
                self.line = Some(pos.line);
                self.col = Some(pos.col);
            }
        }
        self
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
            if let Some(c) = self.col {
                write!(f, ":{c}")?;
            }
        }
        write!(f, ": ")?;
        if let Some(p) = &self.pointer {
            write!(f, "at #{p}: ")?;
        }
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for SpecError {}
