//! Experiments: specs and presets for the paper's claims, theory overlays, Polars data frames
//! written atomically to Parquet, SVG figures and sweeps.

#![warn(missing_docs)]

pub mod error;
pub mod experiment;
pub mod figures;
pub mod io;
pub mod output;
pub mod presets;
pub mod report;
pub mod run;
pub mod spec;
pub mod stats;
pub mod sweep;
pub mod table;

pub use error::{DestinationProblem, ExperimentError, SweepProgress};
pub use experiment::{ExperimentOutcome, RunOptions, execute};
pub use io::{ensemble_frame, read_metadata, read_parquet, write_parquet_atomic};
pub use presets::{PRESETS, preset, preset_toml};
pub use spec::{CheckedExperiment, ExperimentSpec, Override};
pub use table::{Claim, Overlay, Quantity, Table, Verdict};
