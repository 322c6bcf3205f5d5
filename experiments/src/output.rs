//! Writing an experiment's results: the four Parquet tables with their metadata, and the
//! verdict table printed at the end.

use std::path::PathBuf;

use modewise_dln::StopFlag;
use polars::prelude::*;

use crate::ExperimentError;
use crate::dose::DoseRow;
use crate::io::write_parquet_with;
use crate::run::RunResult;
use crate::spec::ExperimentSpec;
use crate::table::{Claim, Expected, Quantity, RunRow, Table, TheoryRow, TrajectoryRow, Verdict, to_frame};

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
    dose: &[DoseRow],
) -> PolarsResult<DataFrame> {
    match table {
        Table::Runs => to_frame(&results.iter().flat_map(RunRow::of).collect::<Vec<_>>()),
        Table::Trajectories => to_frame(&results.iter().flat_map(TrajectoryRow::of).collect::<Vec<_>>()),
        Table::Theory => to_frame(theory),
        Table::DoseResponse => to_frame(dose),
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
    dose: &[DoseRow],
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
        let mut frame = frame(table, results, &theory, verdicts, dose)
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

/// The verdict table as text: one line per verdict (claim, run, mode, quantity, predicted,
/// measured, its 95% interval, tolerance, number of seeds, holds, expected), the rule of each
/// quantity, the verdicts whose outcome is not the expected one, and one line per claim
/// ([`claim_lines`]).
pub fn verdict_table(verdicts: &[Verdict]) -> String {
    let mut out = format!(
        "{:<22} {:<34} {:>2} {:<28} {:>11} {:>11} {:>11} {:>11} {:>9} {:>4} {:>5} {:>8}\n",
        "claim", "run", "k", "quantity", "predicted", "measured", "ci_low", "ci_high", "tol", "n", "holds", "expected"
    );
    for v in verdicts {
        out.push_str(&format!(
            "{:<22} {:<34} {:>2} {:<28} {:>11.4e} {:>11.4e} {:>11.4e} {:>11.4e} {:>9.2e} {:>4} {:>5} {:>8}\n",
            v.claim.name(),
            v.run_id,
            v.k,
            v.quantity.name(),
            v.predicted,
            v.measured,
            v.ci_low,
            v.ci_high,
            v.tolerance,
            v.n,
            if v.holds { "yes" } else { "no" },
            v.expected.name()
        ));
    }
    let mut rules: Vec<(Quantity, &str)> = Vec::new();
    for v in verdicts {
        if !rules.iter().any(|(q, _)| *q == v.quantity) {
            rules.push((v.quantity, &v.criterion));
        }
    }
    if !rules.is_empty() {
        out.push_str("rules (holds iff; pred = predicted, CI = [ci_low, ci_high], tol = tolerance):\n");
        for (q, rule) in rules {
            out.push_str(&format!("  {:<28} {rule}\n", q.name()));
        }
    }
    let unexpected: Vec<&Verdict> = verdicts.iter().filter(|v| !v.as_expected()).collect();
    if !unexpected.is_empty() {
        out.push_str("not as expected (findings):\n");
        for v in unexpected {
            let what = if v.holds { "holds, expected to fail" } else { "fails" };
            let why = if v.premise.is_empty() { String::new() } else { format!(" ({})", v.premise) };
            out.push_str(&format!("  {} k={} {}: {what}{why}\n", v.run_id, v.k, v.quantity.name()));
        }
    }
    for line in claim_lines(verdicts) {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// One line per claim present: `claim 1 (peak before learned): 18 of 18 hold; 2 of 2 controls
/// fail as expected`, counting the verdicts expected to hold and those expected to fail (the
/// negative controls) apart.
pub fn claim_lines(verdicts: &[Verdict]) -> Vec<String> {
    Claim::ALL
        .iter()
        .filter(|c| verdicts.iter().any(|v| v.claim == **c))
        .map(|&c| {
            let of = |e: Expected| verdicts.iter().filter(move |v| v.claim == c && v.expected == e);
            let (hold, holding) = (of(Expected::Hold).count(), of(Expected::Hold).filter(|v| v.holds).count());
            let (fail, failing) = (of(Expected::Fail).count(), of(Expected::Fail).filter(|v| !v.holds).count());
            let label = match c.name().split_once(' ') {
                Some((n, rest)) if n.chars().all(|ch| ch.is_ascii_digit()) => format!("claim {n} ({rest})"),
                _ => c.name().to_string(),
            };
            format!("{label}: {holding} of {hold} hold; {failing} of {fail} controls fail as expected")
        })
        .collect()
}
