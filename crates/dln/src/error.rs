//! Typed errors of the DLN crate: invalid parameters, incompatible shapes, backend failures.

/// Everything that can go wrong in this crate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DlnError {
    /// A parameter broke its rule; `field` is the parameter's name as users write it
    /// (`dims`, `teacher.s`, `init.a0`, `lr`, `batch`, …).
    #[error("{field}: {rule} (got {value})")]
    InvalidParameter {
        /// The parameter's name.
        field: String,
        /// The rule it must satisfy, in words.
        rule: String,
        /// The offending value as written.
        value: String,
    },
    /// The backend could not run or read back a tensor.
    #[error("backend {backend}: {reason}")]
    Backend {
        /// The backend's name.
        backend: String,
        /// What failed.
        reason: String,
    },
    /// Training stopped because a [`crate::StopFlag`] was requested (Ctrl-C).
    #[error("interrupted at step {step}")]
    Interrupted {
        /// The step reached.
        step: u64,
    },
    /// An error of the theory crate (used for the per-mode theory overlays).
    #[error(transparent)]
    Theory(#[from] modewise_theory::TheoryError),
}

impl DlnError {
    /// Builds a [`DlnError::InvalidParameter`].
    pub fn invalid(field: impl Into<String>, rule: impl Into<String>, value: impl std::fmt::Debug) -> Self {
        let value = format!("{value:?}");
        let value = value.trim_matches('"').to_string();
        Self::InvalidParameter { field: field.into(), rule: rule.into(), value }
    }

    /// The name of the offending field, if the error is about one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::InvalidParameter { field, .. } => Some(field),
            Self::Theory(e) => e.field(),
            Self::Backend { .. } | Self::Interrupted { .. } => None,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = DlnError> = std::result::Result<T, E>;

/// Checks that a float is finite and positive.
pub(crate) fn check_positive(field: &str, value: f64) -> Result<f64> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(DlnError::invalid(field, "must be finite and positive", value))
    }
}

/// Checks that a float is finite and non-negative.
pub(crate) fn check_non_negative(field: &str, value: f64) -> Result<f64> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(DlnError::invalid(field, "must be finite and non-negative", value))
    }
}

/// Checks that a float is finite.
pub(crate) fn check_finite(field: &str, value: f64) -> Result<f64> {
    if value.is_finite() { Ok(value) } else { Err(DlnError::invalid(field, "must be finite", value)) }
}
