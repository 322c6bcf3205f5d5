//! Typed errors of the theory crate: invalid parameters and numerical failures.

/// Everything that can go wrong in this crate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TheoryError {
    /// A parameter broke its rule; `field` is the parameter's name as users write it
    /// (`depth`, `s`, `sigma`, `lr`, `batch`, `w0`, `paths`, …).
    #[error("{field}: {rule} (got {value})")]
    InvalidParameter {
        /// The parameter's name.
        field: String,
        /// The rule it must satisfy, in words.
        rule: String,
        /// The offending value as written.
        value: String,
    },
    /// A quantity is undefined or could not be computed reliably for valid parameters.
    #[error("{what}: {reason}")]
    Numerical {
        /// What was being computed.
        what: &'static str,
        /// Why it failed.
        reason: String,
    },
}

impl TheoryError {
    /// Builds an [`TheoryError::InvalidParameter`].
    pub fn invalid(field: impl Into<String>, rule: impl Into<String>, value: impl ToString) -> Self {
        Self::InvalidParameter { field: field.into(), rule: rule.into(), value: value.to_string() }
    }

    /// The name of the offending field, if the error is about one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::InvalidParameter { field, .. } => Some(field),
            Self::Numerical { .. } => None,
        }
    }
}
