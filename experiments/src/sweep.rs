//! Sweeps: a spec plus lists of values for any fields, expanded to their product with
//! deterministic run ids, run in shards into a Hive-partitioned directory, resumable.
//!
//! Layout: `DIR/<table>/run_index=<i>/part.parquet` ([`Table::part_path`]) for the tables
//! `runs`, `trajectories`, `theory` and `summary`, where `i` is the run's position in the
//! expansion. Polars (`scan_parquet("DIR/trajectories/**/*.parquet", hive_partitioning=True)`),
//! pyarrow (`pyarrow.dataset.dataset("DIR/trajectories", partitioning="hive")`) and DuckDB
//! (`read_parquet('DIR/trajectories/*/*.parquet', hive_partitioning = true)`) read each table as
//! one dataset. A run is complete when its `summary` part exists: it is written last, each part
//! atomically, so `resume` skips exactly the complete runs and redoes any other (after removing
//! its partial parts).

use std::collections::BTreeMap;
use std::path::Path;

use modewise_dln::{Divergence, DlnError, StopFlag};

use crate::ExperimentError;
use crate::error::{DestinationProblem, SweepProgress};
use crate::io::{check_destination, create_destination};
use crate::output::write_tables;
use crate::run::{Progress, Timings, train_and_analyse};
use crate::spec::{CheckedExperiment, ExperimentSpec, Override, apply_one, assign};
use crate::table::{Table, Verdict};

/// One shard of `N`: runs with index `i mod N = I`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This shard, `0 ≤ index < count`.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

impl Shard {
    /// The whole sweep as one shard.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Checks `index < count`, `count ≥ 1`.
    pub fn new(index: usize, count: usize) -> Result<Self, ExperimentError> {
        if count == 0 || index >= count {
            return Err(ExperimentError::Invalid {
                field: "shard".into(),
                rule: format!("needs 0 ≤ I < N and N ≥ 1 (got {index}/{count})"),
            });
        }
        Ok(Self { index, count })
    }

    /// The shard from Slurm's job-array variables, when set.
    pub fn from_slurm() -> Result<Option<Self>, ExperimentError> {
        match (std::env::var("SLURM_ARRAY_TASK_ID"), std::env::var("SLURM_ARRAY_TASK_COUNT")) {
            (Ok(i), Ok(n)) => format!("{i}/{n}").parse().map(Some),
            _ => Ok(None),
        }
    }
}

impl std::str::FromStr for Shard {
    type Err = ExperimentError;

    /// Parses `I/N`; errors name the field `shard`.
    fn from_str(text: &str) -> Result<Self, ExperimentError> {
        let bad = |rule: String| ExperimentError::Invalid { field: "shard".into(), rule };
        let (i, n) = text.split_once('/').ok_or_else(|| bad(format!("must be I/N (got `{text}`)")))?;
        let index: usize = i.trim().parse().map_err(|_| bad(format!("I must be a whole number (got `{i}`)")))?;
        let count: usize = n.trim().parse().map_err(|_| bad(format!("N must be a whole number (got `{n}`)")))?;
        Self::new(index, count)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// A point of the sweep: its index, id and the checked experiment it runs.
#[derive(Debug, Clone)]
pub struct SweepPoint {
    /// Position in the expansion (the Hive partition value).
    pub index: usize,
    /// `<name>/<key>=<value>,…` from the last segment of each swept key.
    pub label: String,
    /// The checked experiment of this point.
    pub experiment: CheckedExperiment,
}

/// Expands a sweep file's text (with overrides; `sweep.<field>` keys replace a swept list) into
/// its points, each checked, in a deterministic order: keys sorted, the last key varying
/// fastest, values in the order given. A swept key is any override key (see [`Override`]).
pub fn expand(text: &str, overrides: &[Override]) -> Result<Vec<SweepPoint>, ExperimentError> {
    let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| ExperimentError::Invalid {
        field: "sweep file".into(),
        rule: format!("malformed TOML: {}", e.message().replace('\n', " ")),
    })?;
    let mut sweep = match table.remove("sweep") {
        Some(toml::Value::Table(t)) => t,
        Some(other) => {
            return Err(ExperimentError::Invalid {
                field: "sweep".into(),
                rule: format!("must be a table of field = [values] (got {})", other.type_str()),
            });
        }
        None => {
            return Err(ExperimentError::Invalid {
                field: "sweep".into(),
                rule: "is missing: a sweep file needs a [sweep] table of field = [values]".into(),
            });
        }
    };
    for o in overrides {
        match o.key().strip_prefix("sweep.") {
            Some(key) => assign(&mut sweep, key, o.value().clone())?,
            None => apply_one(&mut table, o)?,
        }
    }
    let mut axes: BTreeMap<String, Vec<toml::Value>> = BTreeMap::new();
    flatten_axes("", &sweep, &mut axes)?;
    let base = ExperimentSpec::from_table(table.clone())?;
    let mut points = vec![(String::new(), table)];
    for (key, values) in &axes {
        let short = key.rsplit('.').next().unwrap_or(key);
        let mut next = Vec::new();
        for (label, t) in &points {
            for v in values {
                let mut t = t.clone();
                apply_one(&mut t, &Override::new(key, v)?)?;
                let shown = match v {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let sep = if label.is_empty() { "" } else { "," };
                next.push((format!("{label}{sep}{short}={shown}"), t));
            }
        }
        points = next;
    }
    points
        .into_iter()
        .enumerate()
        .map(|(index, (label, mut t))| {
            let name = format!("{}-{index}", base.name);
            t.insert("name".into(), toml::Value::String(name));
            let experiment = ExperimentSpec::from_table(t)
                .and_then(|s| s.check())
                .map_err(|e| e.within(&format!("sweep point {index} ({label}):")))?;
            Ok(SweepPoint { index, label: format!("{}/{label}", base.name), experiment })
        })
        .collect()
}

fn flatten_axes(
    prefix: &str,
    t: &toml::Table,
    out: &mut BTreeMap<String, Vec<toml::Value>>,
) -> Result<(), ExperimentError> {
    for (k, v) in t {
        let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match v {
            toml::Value::Array(a) if !a.is_empty() => {
                out.insert(key, a.clone());
            }
            toml::Value::Table(inner) => flatten_axes(&key, inner, out)?,
            other => {
                return Err(ExperimentError::Invalid {
                    field: format!("sweep.{key}"),
                    rule: format!("must be a non-empty list of values (got {other})"),
                });
            }
        }
    }
    Ok(())
}

/// What a shard did.
#[derive(Debug, Clone, Default)]
pub struct SweepOutcome {
    /// Runs trained now.
    pub ran: Vec<usize>,
    /// Runs skipped because complete (`resume`).
    pub skipped: Vec<usize>,
    /// Verdicts of the runs trained now.
    pub verdicts: Vec<Verdict>,
    /// The diverged members of the runs trained now: the run id beside the trainer's record.
    pub divergences: Vec<(String, Divergence)>,
    /// Members of the runs trained now.
    pub members: usize,
    /// Where the time of the runs trained now went.
    pub timings: Timings,
}

/// How a shard treats results already in its directory, and when it stops.
#[derive(Debug, Clone, Default)]
pub struct SweepOptions {
    /// Skip complete runs; redo the others (removing their partial parts first).
    pub resume: bool,
    /// Redo every run of the shard: their parts are removed before the first run starts.
    pub force: bool,
    /// Checked while training: once requested, the current run is discarded and the shard stops
    /// (the runs already complete stay, for `resume`).
    pub stop: StopFlag,
}

/// Removes every part of run `index` (complete or not, and temporary files left by a kill).
fn remove_run(dir: &Path, index: usize) -> Result<(), ExperimentError> {
    for &table in Table::ALL {
        let run_dir = table.partition(dir, index);
        if run_dir.exists() {
            std::fs::remove_dir_all(&run_dir).map_err(|source| ExperimentError::Io { path: run_dir, source })?;
        }
    }
    Ok(())
}

/// Runs the points of one shard into `dir`. Without `resume` or `force`, a directory that
/// already holds parts of this shard is refused. Parts are written atomically, `summary` last,
/// so a run is either complete or redone by `resume`.
pub fn run_shard(
    points: &[SweepPoint],
    dir: &Path,
    shard: Shard,
    options: &SweepOptions,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<SweepOutcome, ExperimentError> {
    let mine: Vec<&SweepPoint> = points.iter().filter(|p| p.index % shard.count == shard.index).collect();
    check_destination(dir, |dir| {
        if options.resume || options.force {
            return None;
        }
        let first = mine.iter().find(|p| Table::ALL.iter().any(|t| t.partition(dir, p.index).exists()))?;
        Some(DestinationProblem::SweepTaken { run: first.index })
    })?;
    create_destination(dir, dir)?;
    if options.force {
        // All at once, so that a forced sweep interrupted and then resumed holds no old run.
        for p in &mine {
            remove_run(dir, p.index)?;
        }
    }
    let mut outcome = SweepOutcome::default();
    for (n, point) in mine.iter().enumerate() {
        if options.resume && !options.force && Table::Summary.part_path(dir, point.index).exists() {
            outcome.skipped.push(point.index);
            continue;
        }
        if options.stop.is_requested() {
            return Err(interrupted(dir, &outcome, None));
        }
        remove_run(dir, point.index)?;
        let describe = |_| (point.label.clone(), n, mine.len());
        let a = match train_and_analyse(&point.experiment, describe, &options.stop, progress) {
            Err(ExperimentError::Dln(DlnError::Interrupted { .. })) => {
                return Err(interrupted(dir, &outcome, Some(point.index)));
            }
            other => other?,
        };
        let (results, theory, verdicts) = (a.results, a.theory, a.verdicts);
        outcome.timings.add(&a.timings);
        let started = std::time::Instant::now();
        write_tables(|table| table.part_path(dir, point.index), point.experiment.spec(), &results, &theory, &verdicts)?;
        outcome.timings.parquet += started.elapsed().as_secs_f64();
        outcome.divergences.extend(results.iter().flat_map(|r| r.divergences_by_run()));
        outcome.members += results.iter().map(|r| r.plan.train.params().seeds.len()).sum::<usize>();
        outcome.ran.push(point.index);
        outcome.verdicts.extend(verdicts);
    }
    Ok(outcome)
}

/// The error of an interrupted shard: what is complete, and what was discarded.
fn interrupted(dir: &Path, outcome: &SweepOutcome, discarded: Option<usize>) -> ExperimentError {
    ExperimentError::SweepInterrupted(SweepProgress {
        dir: dir.to_path_buf(),
        completed: outcome.ran.len(),
        before: outcome.skipped.len(),
        discarded,
    })
}
