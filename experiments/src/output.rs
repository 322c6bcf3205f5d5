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
use crate::table::{
    Claim, Expected, Quantity, RunRow, Scalar, Table, TheoryRow, TrajectoryRow, Verdict, constant_column, to_frame,
};

/// The modewise version written into every file.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git commit modewise was built from (`-dirty` when its work tree had uncommitted changes;
/// `unknown` when built without git).
pub const GIT_COMMIT: &str = env!("MODEWISE_GIT_COMMIT");

/// The metadata keys that differ from one invocation to the next for the same results (when
/// and how the command ran); everything else in the metadata, and every value in the tables,
/// is the same for the same spec and seeds on the same backend and build.
pub const INVOCATION_KEYS: [&str; 4] = ["started_at", "ended_at", "command_line", "threads"];

/// What the metadata records of the process that runs an experiment, set once by the program
/// ([`set_run_context`]).
#[derive(Debug, Clone)]
pub struct RunContext {
    /// The command line, arguments separated by spaces.
    pub command_line: String,
    /// Worker threads of the CPU backends and the theory ensembles.
    pub threads: usize,
    /// When the command started.
    pub started: std::time::SystemTime,
}

static CONTEXT: std::sync::OnceLock<RunContext> = std::sync::OnceLock::new();

/// Records the process's [`RunContext`] for the metadata of the tables it writes (the first
/// call wins; without one, the command line and thread count read `unknown`).
pub fn set_run_context(context: RunContext) {
    let _ = CONTEXT.set(context);
}

/// A time as RFC 3339 in UTC, to the second (`2025-01-31T12:00:00Z`).
pub fn rfc3339(time: std::time::SystemTime) -> String {
    let secs = time.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days since 1970-01-01 to a civil date (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rest / 3600, rest % 3600 / 60, rest % 60)
}

/// This machine's host name (`unknown` where it cannot be read).
fn host() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that many bytes.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    if ok && end > 0 { String::from_utf8_lossy(&buf[..end]).into_owned() } else { "unknown".into() }
}

/// The device the runs of `backend` train on: the CPU's model name for the CPU backends (from
/// /proc/cpuinfo), `wgpu` for the GPU backend (the adapter is wgpu's choice, not recorded).
fn device(backend: modewise_dln::BackendKind) -> String {
    if backend == modewise_dln::BackendKind::Wgpu {
        return "wgpu (the best adapter wgpu finds)".into();
    }
    let model = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|info| {
        info.lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, m)| m.trim().to_string())
    });
    format!("cpu: {}", model.unwrap_or_else(|| std::env::consts::ARCH.to_string()))
}

/// The metadata written into every file of an experiment: the modewise version, the spec, the
/// seeds and backend, and the run's provenance (the git commit of the build, start and end
/// time in UTC, host, command line, thread count and device).
pub fn metadata(spec: &ExperimentSpec) -> Vec<(String, String)> {
    let context = CONTEXT.get();
    let unknown = || "unknown".to_string();
    vec![
        ("modewise_version".into(), VERSION.into()),
        ("spec".into(), spec.to_toml()),
        ("seeds".into(), format!("{:?}", spec.train.seeds)),
        ("backend".into(), spec.train.backend.to_string()),
        ("git_commit".into(), GIT_COMMIT.into()),
        ("started_at".into(), context.map_or_else(unknown, |c| rfc3339(c.started))),
        ("ended_at".into(), rfc3339(std::time::SystemTime::now())),
        ("host".into(), host()),
        ("command_line".into(), context.map_or_else(unknown, |c| c.command_line.clone())),
        ("threads".into(), context.map_or_else(unknown, |c| c.threads.to_string())),
        ("device".into(), device(spec.train.backend)),
    ]
}

/// The data frame of `table` for these results.
pub fn frame(
    table: Table,
    results: &[RunResult],
    theory: &[TheoryRow],
    verdicts: &[Verdict],
    dose: &[DoseRow],
    scaling: &crate::scaling::Scaled,
) -> PolarsResult<DataFrame> {
    match table {
        Table::Runs => to_frame(&results.iter().flat_map(RunRow::of).collect::<Vec<_>>()),
        Table::Trajectories => to_frame(&results.iter().flat_map(TrajectoryRow::of).collect::<Vec<_>>()),
        Table::Theory => to_frame(theory),
        Table::DoseResponse => to_frame(dose),
        Table::Scaling => to_frame(&scaling.fits),
        Table::ScalingPoints => to_frame(&scaling.points),
        Table::Summary => to_frame(verdicts),
    }
}

/// Writes the tables in [`Table::ALL`] order (the `scaling` ones only where they have rows), each atomically, table `t` to `path_of(t)`
/// (creating its directory); a requested `stop` ends it between two tables with
/// [`ExperimentError::Stopped`].
pub fn write_tables(
    path_of: impl Fn(Table) -> PathBuf,
    spec: &ExperimentSpec,
    rows: TableRows<'_>,
    stop: &StopFlag,
) -> Result<(), ExperimentError> {
    write_tables_with(path_of, spec, rows, &[], stop)
}

/// What the tables of a run are made of.
#[derive(Debug, Clone, Copy)]
pub struct TableRows<'a> {
    /// The runs (`runs`, `trajectories`).
    pub results: &'a [RunResult],
    /// The overlays (`theory`).
    pub theory: &'a [TheoryRow],
    /// The verdicts (`summary`).
    pub verdicts: &'a [Verdict],
    /// Claim 4's rows (`dose_response`).
    pub dose: &'a [DoseRow],
    /// The `scaling` analysis's rows (`scaling`, `scaling_points`; written only where there
    /// are some).
    pub scaling: &'a crate::scaling::Scaled,
    /// A dose study's runs in spec order: `dose_response` is then written as one Hive dataset
    /// with a part per run ([`write_dose_partitions`]) instead of one file; `None` elsewhere.
    pub dose_parts: Option<&'a [&'a str]>,
}

/// [`write_tables`] with `coordinates`: columns of one value each, written last in every
/// table (a sweep point's `sweep_<key>` columns).
pub fn write_tables_with(
    path_of: impl Fn(Table) -> PathBuf,
    spec: &ExperimentSpec,
    rows: TableRows<'_>,
    coordinates: &[(String, Scalar)],
    stop: &StopFlag,
) -> Result<(), ExperimentError> {
    let meta = metadata(spec);
    let theory = finite_theory(rows.theory);
    for &table in Table::ALL {
        let empty = match table {
            Table::Scaling => rows.scaling.fits.is_empty(),
            Table::ScalingPoints => rows.scaling.points.is_empty(),
            _ => false,
        };
        if empty && !table.per_run() {
            continue;
        }
        if stop.is_requested() {
            return Err(ExperimentError::Stopped { during: "writing the tables" });
        }
        if let (Table::DoseResponse, Some(run_ids)) = (table, rows.dose_parts) {
            let dir = path_of(table).parent().map(std::path::Path::to_path_buf).unwrap_or_default();
            write_dose_partitions(&dir, &meta, run_ids, rows.dose)?;
            continue;
        }
        let path = path_of(table);
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|source| ExperimentError::Io { path: parent.to_path_buf(), source })?;
        }
        let polars = |source| ExperimentError::Polars { path: path.clone(), source };
        let mut frame = frame(table, rows.results, &theory, rows.verdicts, rows.dose, rows.scaling).map_err(polars)?;
        for (name, value) in coordinates {
            frame.with_column(constant_column(name, value, frame.height())).map_err(polars)?;
        }
        write_parquet_with(&mut frame, &path, &meta)?;
    }
    Ok(())
}

/// Writes the `dose_response` rows of a dose experiment (`analysis = "relax"`) as one Hive
/// dataset in its results directory `dir`, in place of `dose_response.parquet`: the rows of run `i` of `run_ids` (the experiment's runs, its
/// variants in spec order) to `dir/dose_response/run_index=<i>/part.parquet`
/// ([`Table::part_path`]), for each run with rows. Each row carries its variant (`label`) and
/// its dose covariates (`depth`, `dose_*`) as columns; the partition value `run_index` is the
/// folder's name.
fn write_dose_partitions(
    dir: &std::path::Path,
    meta: &[(String, String)],
    run_ids: &[&str],
    dose: &[DoseRow],
) -> Result<(), ExperimentError> {
    for (i, run_id) in run_ids.iter().enumerate() {
        let rows: Vec<DoseRow> = dose.iter().filter(|r| r.run_id == *run_id).cloned().collect();
        if rows.is_empty() {
            continue;
        }
        let part = Table::DoseResponse.partition(dir, i);
        std::fs::create_dir_all(&part).map_err(|source| ExperimentError::Io { path: part.clone(), source })?;
        let path = Table::DoseResponse.part_path(dir, i);
        let mut frame = to_frame(&rows).map_err(|source| ExperimentError::Polars { path: path.clone(), source })?;
        write_parquet_with(&mut frame, &path, meta)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_in_utc() {
        let at = |secs: u64| rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_709_208_000 + 3 * 3600 + 4 * 60 + 5), "2024-02-29T15:04:05Z");
        assert_eq!(at(4_102_444_799), "2099-12-31T23:59:59Z");
    }
}
