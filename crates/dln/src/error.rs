//! Typed errors of the DLN crate: invalid parameters (the workspace's one
//! [`InvalidParameter`]), backend failures, interruptions.

pub use modewise_theory::InvalidParameter;

/// Everything that can go wrong in this crate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DlnError {
    /// A parameter broke its rule; its field is the parameter's path as users write it
    /// (`dims`, `teacher.spectrum.s[1]`, `init.a0`, `lr`, `batch`, …).
    #[error(transparent)]
    InvalidParameter(#[from] InvalidParameter),
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
}

impl DlnError {
    /// Builds a [`DlnError::InvalidParameter`] (see [`InvalidParameter::new`]).
    pub fn invalid(field: impl Into<String>, rule: impl Into<String>, value: impl std::fmt::Debug) -> Self {
        InvalidParameter::new(field, rule, value).into()
    }

    /// The broken parameter rule, if the error is one.
    pub fn invalid_parameter(&self) -> Option<&InvalidParameter> {
        match self {
            Self::InvalidParameter(p) => Some(p),
            Self::Backend { .. } | Self::Interrupted { .. } => None,
        }
    }

    /// The name of the offending field, if the error is about one.
    pub fn field(&self) -> Option<&str> {
        self.invalid_parameter().map(|p| p.field.as_str())
    }

    /// The same error with the field of a broken rule placed inside `prefix` (see
    /// [`InvalidParameter::within`]); other errors are returned unchanged.
    pub fn within(self, prefix: &str) -> Self {
        match self {
            Self::InvalidParameter(p) => p.within(prefix).into(),
            other => other,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = DlnError> = std::result::Result<T, E>;
