//! Typed errors of the experiments crate.

use std::path::PathBuf;

use modewise_theory::InvalidParameter;
use modewise_theory::error::field_within;
use polars::prelude::PolarsError;

/// Errors of the experiments crate.
#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    /// A data frame could not be built, written or read.
    #[error("{path}: {source}")]
    Polars {
        /// The file concerned.
        path: PathBuf,
        /// The cause.
        source: PolarsError,
    },
    /// A spec, a sweep or an option could not be read or broke a rule of its own; `field` names
    /// it as users write it.
    #[error("{field}: {rule}")]
    Invalid {
        /// The offending field or option.
        field: String,
        /// The rule, in words, with the offending value.
        rule: String,
    },
    /// A parameter broke its rule (the workspace's one parameter error; a broken rule in the
    /// DLN or theory crate may also arrive inside [`Dln`](Self::Dln) or
    /// [`Theory`](Self::Theory): [`invalid_parameter`](Self::invalid_parameter) finds it).
    #[error(transparent)]
    InvalidParameter(#[from] InvalidParameter),
    /// An error of the DLN crate.
    #[error(transparent)]
    Dln(#[from] modewise_dln::DlnError),
    /// An error of the theory crate.
    #[error(transparent)]
    Theory(#[from] modewise_theory::TheoryError),
    /// A figure could not be drawn.
    #[error("{path}: drawing failed: {reason}")]
    Figure {
        /// The file concerned.
        path: PathBuf,
        /// The cause.
        reason: String,
    },
    /// A stop was requested (Ctrl-C); `detail` says what was kept and what was discarded.
    #[error("interrupted: {detail}")]
    Interrupted {
        /// What was kept and what was discarded.
        detail: String,
    },
    /// A file could not be created, renamed or opened.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl ExperimentError {
    /// The broken parameter rule, if the error is one (of this crate, the DLN crate or the
    /// theory crate).
    pub fn invalid_parameter(&self) -> Option<&InvalidParameter> {
        match self {
            Self::InvalidParameter(p) => Some(p),
            Self::Dln(e) => e.invalid_parameter(),
            Self::Theory(e) => e.invalid_parameter(),
            _ => None,
        }
    }

    /// The same error with the field it names placed inside `prefix` (see
    /// [`InvalidParameter::within`]): a broken parameter rule, wherever it came from, becomes
    /// [`ExperimentError::InvalidParameter`]; a spec error has its field prefixed the same way.
    /// Other errors are returned unchanged.
    pub fn within(self, prefix: &str) -> Self {
        if let Some(p) = self.invalid_parameter() {
            return Self::InvalidParameter(p.clone().within(prefix));
        }
        match self {
            Self::Invalid { field, rule } => Self::Invalid { field: field_within(prefix, &field), rule },
            other => other,
        }
    }
}
