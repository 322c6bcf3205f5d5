//! Experiments: specs and presets for the paper's claims, theory overlays and verdicts, Polars
//! tables written atomically to Parquet, SVG figures, and sweeps.
//!
//! A library user writes (or loads) a spec, checks it, runs it into a results directory and
//! reads the tables back, as typed rows or as Polars data frames:
//!
//! ```
//! use modewise_experiments::{ExperimentSpec, RunOptions, Table, TrajectoryRow, execute, read_parquet, read_rows};
//!
//! let spec = ExperimentSpec::from_toml(
//!     r#"
//!     name = "tiny"
//!     analysis = "saddle"
//!     [train]
//!     dims = [4, 6, 4]
//!     lr = 0.05
//!     steps = 200
//!     seeds = [1, 2]
//!     [train.teacher.spectrum]
//!     kind = "list"
//!     s = [2.0, 1.0]
//!     "#,
//!     &[],
//! )?;
//! let experiment = spec.check()?;
//! let dir = tempfile::tempdir().expect("a temporary directory");
//! let options = RunOptions { out: Some(dir.path().join("tiny")), ..RunOptions::default() };
//! let outcome = execute(&experiment, &options, &mut |_progress| {})?;
//! assert!(outcome.verdicts.iter().all(|v| v.run_id == "tiny"));
//!
//! // Typed rows: one per member, probe step and mode.
//! let rows: Vec<TrajectoryRow> = read_rows(&Table::Trajectories.path_in(&outcome.dir))?;
//! assert_eq!(rows.iter().filter(|r| r.member == 0 && r.k == 0).count(), experiment.plans()[0].train.probe_steps().len());
//! // Or a Polars data frame of any table.
//! let runs = read_parquet(&Table::Runs.path_in(&outcome.dir))?;
//! assert_eq!(runs.height(), 2);
//! # Ok::<(), modewise_experiments::ExperimentError>(())
//! ```
//!
//! The tables and every column are documented in the repository's `data/README.md`; the theory
//! behind the overlays and verdicts in `docs/theory.md`.

#![warn(missing_docs)]

mod checkpoint;
pub mod dose;
mod error;
mod experiment;
mod figures;
pub mod finite_lr;
mod formats;
pub mod html;
mod io;
mod output;
pub mod presets;
mod publish;
mod report;
pub mod resources;
mod run;
pub mod scaling;
mod spec;
mod stats;
pub mod sweep;
pub mod sweep_report;
mod table;
mod verdicts;

pub use checkpoint::{CHECKPOINT_FORMAT, CheckpointProblem};
pub use error::{DestinationProblem, ExperimentError, SweepProgress};
pub use experiment::{ExperimentOutcome, RunOptions, check_destination, default_dir, execute, execute_all};
pub use formats::FigureFormat;
pub use io::{read_metadata, read_parquet, read_rows};
pub use output::{GIT_COMMIT, INVOCATION_KEYS, RunContext, claim_lines, set_run_context, verdict_table};
pub use presets::{PRESETS, preset, preset_toml};
pub use report::{Drawn, FIGURE_DEADLINE, Results, draw_figures};
pub use resources::Estimate;
pub use run::{Phase, Progress, RunResult, Timings};
pub use spec::{Analysis, CheckedExperiment, Control, ExperimentSpec, Overlays, Override, RunPlan, Shadowed, Variant};
pub use table::{
    Claim, Expected, Overlay, Quantity, RunRow, Scalar, Status, Table, TheoryRow, TrajectoryRow, Verdict, columns_of,
};
