//! Writing an experiment's results: the four Parquet tables with their metadata, and the
//! verdict table printed at the end.

use std::path::PathBuf;

use modewise_dln::StopFlag;
use polars::prelude::*;

use crate::ExperimentError;
use crate::io::write_parquet_with;
use crate::run::RunResult;
use crate::spec::ExperimentSpec;
use crate::table::{RunRow, Table, TheoryRow, TrajectoryRow, Verdict, to_frame};

/// The modewise version written into every file.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The metadata written into every file of an experiment.
pub fn metadata(spec: &ExperimentSpec) -> Vec<(String, String)> {
    vec![
        ("modewise_version".into(), VERSION.into()),
        ("spec".into(), spec.to_toml()),
        ("seeds".into(), format!("{:?}", spec.train.seeds)),
        ("backend".into(), spec.train.backend.to_string()),
    ]
}

/// The data frame of `table` for these results.
pub fn frame(
    table: Table,
    results: &[RunResult],
    theory: &[TheoryRow],
    verdicts: &[Verdict],
) -> PolarsResult<DataFrame> {
    match table {
        Table::Runs => to_frame(&results.iter().flat_map(RunRow::of).collect::<Vec<_>>()),
        Table::Trajectories => to_frame(&results.iter().flat_map(TrajectoryRow::of).collect::<Vec<_>>()),
        Table::Theory => to_frame(theory),
        Table::Summary => to_frame(verdicts),
    }
}

/// Writes the four tables in [`Table::ALL`] order, each atomically, table `t` to `path_of(t)`
/// (creating its directory); a requested `stop` ends it between two tables with
/// [`ExperimentError::Stopped`].
pub fn write_tables(
    path_of: impl Fn(Table) -> PathBuf,
    spec: &ExperimentSpec,
    results: &[RunResult],
    theory: &[TheoryRow],
    verdicts: &[Verdict],
    stop: &StopFlag,
) -> Result<(), ExperimentError> {
    let meta = metadata(spec);
    let theory = finite_theory(theory);
    for &table in Table::ALL {
        if stop.is_requested() {
            return Err(ExperimentError::Stopped { during: "writing the tables" });
        }
        let path = path_of(table);
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|source| ExperimentError::Io { path: parent.to_path_buf(), source })?;
        }
        let mut frame = frame(table, results, &theory, verdicts)
            .map_err(|source| ExperimentError::Polars { path: path.clone(), source })?;
        write_parquet_with(&mut frame, &path, &meta)?;
    }
    Ok(())
}

/// The theory rows as written, so that the table holds no NaN or infinity: a row whose value
/// is not finite (an ensemble's mean over no finite path, a flow or density that overflowed)
/// is left out, and a variance that is not finite (it overflowed, or the paths' spread is
/// undefined) is written as null.
pub fn finite_theory(rows: &[TheoryRow]) -> Vec<TheoryRow> {
    rows.iter()
        .filter(|r| {
            r.value.is_finite() && r.w0.is_finite() && r.t.is_none_or(f64::is_finite) && r.w.is_none_or(f64::is_finite)
        })
        .map(|r| TheoryRow { variance: r.variance.filter(|v| v.is_finite()), ..r.clone() })
        .collect()
}

/// The verdict table as text: claim, run, mode, quantity, predicted, measured, holds.
pub fn verdict_table(verdicts: &[Verdict]) -> String {
    let mut out = format!(
        "{:<22} {:<32} {:>2} {:<28} {:>12} {:>12} {:>5}\n",
        "claim", "run", "k", "quantity", "predicted", "measured", "holds"
    );
    for v in verdicts {
        out.push_str(&format!(
            "{:<22} {:<32} {:>2} {:<28} {:>12.4e} {:>12.4e} {:>5}\n",
            v.claim.name(),
            v.run_id,
            v.k,
            v.quantity.name(),
            v.predicted,
            v.measured,
            if v.holds { "yes" } else { "no" }
        ));
    }
    out
}
