//! Typed errors of the experiments crate.

use std::path::PathBuf;

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
    /// A spec, a sweep or an option broke a rule; `field` names it as users write it.
    #[error("{field}: {rule}")]
    Invalid {
        /// The offending field or option.
        field: String,
        /// The rule, in words, with the offending value.
        rule: String,
    },
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
