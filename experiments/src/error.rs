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
    /// A stop was requested while the results were written or the figures drawn (see
    /// [`ExperimentError::stop_point`]).
    #[error("interrupted while {during}")]
    Stopped {
        /// What was being done.
        during: &'static str,
    },
    /// A stop was requested (Ctrl-C); `detail` says what was kept and what was discarded.
    #[error("interrupted: {detail}")]
    Interrupted {
        /// What was kept and what was discarded.
        detail: String,
    },
    /// A stop was requested (Ctrl-C) during a sweep's shard; running the shard again with
    /// `resume` finishes it.
    #[error("interrupted: {0}; run the shard again with `resume` to finish")]
    SweepInterrupted(SweepProgress),
    /// The results directory (`out` of a run, `dir` of a sweep) cannot receive results.
    #[error("{}: {problem}", dir.display())]
    Destination {
        /// The directory.
        dir: PathBuf,
        /// What stands in the way.
        problem: DestinationProblem,
    },
    /// The checkpoint `dir` of the results directory `out` stands in the way of a run, or
    /// cannot be resumed (see `crate::checkpoint`).
    #[error("{}: checkpoint {}: {problem}", out.display(), dir.display())]
    Checkpoint {
        /// The results directory.
        out: PathBuf,
        /// Its checkpoint directory.
        dir: PathBuf,
        /// What is wrong.
        problem: crate::checkpoint::CheckpointProblem,
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

/// Why a results directory cannot receive results.
#[derive(Debug, thiserror::Error)]
pub enum DestinationProblem {
    /// The path is a file.
    #[error("is a file, not a directory")]
    IsFile,
    /// The directory holds results of a run, and `force` was not set.
    #[error("already holds results (set `force` to replace them)")]
    Taken,
    /// The sweep directory holds results of run `run` of this shard, and neither `resume` nor
    /// `force` was set.
    #[error("already holds results of run {run} (set `resume` to continue the sweep or `force` to redo it)")]
    SweepTaken {
        /// The first run of the shard found.
        run: usize,
    },
    /// The path is a symbolic link to nothing.
    #[error("is a symbolic link to {}, which does not exist", target.display())]
    DanglingLink {
        /// Where the link points.
        target: PathBuf,
    },
    /// The path names no directory below a parent (the root, `.` or `..`).
    #[error("must name a directory below its parent, not the root, `.` or `..`")]
    NoName,
    /// The directory's name is longer than a file name may be.
    #[error("has a name of {bytes} bytes; a file name may have at most 255")]
    NameTooLong {
        /// The name's length.
        bytes: usize,
    },
    /// Another process is writing the directory (it holds its lock).
    #[error("is being written by another modewise process{}", pid.map_or(String::new(), |p| format!(" (pid {p})")))]
    Busy {
        /// That process, when known.
        pid: Option<u32>,
    },
    /// The directory holds a sweep's results (a `run` would replace them).
    #[error("holds a sweep's results ({})", crate::sweep::MANIFEST)]
    IsSweep,
    /// The directory is not empty and holds no sweep manifest: it is not a sweep's directory.
    #[error("is not empty and is not a sweep's directory (it has no {})", crate::sweep::MANIFEST)]
    NotSweep,
    /// The directory holds another sweep's results.
    #[error("holds the results of another sweep: {difference}")]
    OtherSweep {
        /// The first difference between the two sweeps.
        difference: String,
    },
    /// The directory (or `path` on the way to it) cannot be created or written.
    #[error("is not writable ({}: {source})", path.display())]
    Unwritable {
        /// The path that failed.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// How far an interrupted sweep's shard got; displayed as `run 3 was discarded; 2 runs
/// completed now and 1 before are in DIR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepProgress {
    /// The sweep directory.
    pub dir: PathBuf,
    /// Runs completed by this invocation.
    pub completed: usize,
    /// Runs found complete before (with `resume`).
    pub before: usize,
    /// The run that was stopped and discarded, if one was running.
    pub discarded: Option<usize>,
}

impl std::fmt::Display for SweepProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(i) = self.discarded {
            write!(f, "run {i} was discarded; ")?;
        }
        write!(f, "{} runs completed now and {} before are in {}", self.completed, self.before, self.dir.display())
    }
}

impl ExperimentError {
    /// Where a requested stop ended the work (`at step 40`, `while computing the theory
    /// overlays and verdicts`, `while drawing the figures`), if this error is such a stop.
    pub fn stop_point(&self) -> Option<String> {
        match self {
            Self::Dln(modewise_dln::DlnError::Interrupted { step }) => Some(format!("at step {step}")),
            Self::Theory(modewise_theory::TheoryError::Interrupted) => {
                Some("while computing the theory overlays and verdicts".into())
            }
            Self::Stopped { during } => Some(format!("while {during}")),
            _ => None,
        }
    }

    /// Whether the error reports a requested stop (Ctrl-C, SIGTERM), of any phase.
    pub fn is_interrupted(&self) -> bool {
        matches!(self, Self::Interrupted { .. } | Self::SweepInterrupted(_)) || self.stop_point().is_some()
    }

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
