//! Sweeps: a spec plus lists of values for any fields, expanded to their product with
//! deterministic run ids, run in shards into a Hive-partitioned directory, resumable.
//!
//! Layout: `DIR/<table>/run_index=<i>/part.parquet` ([`Table::part_path`]) for the tables
//! `runs`, `trajectories`, `theory` and `summary`, where `i` is the run's position in the
//! expansion. Polars (`scan_parquet("DIR/trajectories/**/*.parquet", hive_partitioning=True)`),
//! pyarrow (`pyarrow.dataset.dataset("DIR/trajectories", partitioning="hive")`) and DuckDB
//! (`read_parquet('DIR/trajectories/*/*.parquet', hive_partitioning = true)`) read each table as
//! one dataset.
//!
//! The directory is marked as one sweep's by its manifest, [`MANIFEST`] (the sweep as run, its
//! point count and the modewise version), written before any run: a sweep refuses a non-empty
//! directory that holds another sweep's manifest, or none, and `run` refuses a sweep's
//! directory. A run is complete when its four parts exist (`summary` is written last, each
//! part atomically); `resume` skips the complete runs after checking that each of their parts
//! stores the spec this sweep expands to at that index, and redoes any other run (after
//! removing its partial parts).
//!
//! Points are built on demand from their index ([`Sweep::point`]), so a shard of a sweep of a
//! million points costs the memory of one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use modewise_dln::{Divergence, StopFlag};
use serde::{Deserialize, Serialize};

use crate::ExperimentError;
use crate::error::{DestinationProblem, SweepProgress};
use crate::io::{read_metadata, write_atomic};
use crate::output::{TableRows, VERSION, write_tables_with};
use crate::publish::{Created, Destination};
use crate::resources::Estimate;
use crate::run::{Progress, Timings, train_and_analyse};
use crate::spec::{CheckedExperiment, ExperimentSpec, Override, Shadowed, apply_one, first_difference, malformed_toml};
use crate::table::{Scalar, Table, Verdict};

/// The file that marks a directory as the results of one sweep (`DIR/sweep.toml`).
pub const MANIFEST: &str = "sweep.toml";

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

    /// The shard from Slurm's job-array variables of this process (see [`Shard::from_vars`]).
    pub fn from_slurm() -> Result<Option<Self>, ExperimentError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// The shard from Slurm's job-array variables, read with `var`: none without
    /// `SLURM_ARRAY_TASK_ID`; with it, `ID − MIN` of `MAX − MIN + 1` when
    /// `SLURM_ARRAY_TASK_MIN` and `SLURM_ARRAY_TASK_MAX` are set (any first index, e.g. a
    /// 1-based `--array=1-10`), else `ID` of `SLURM_ARRAY_TASK_COUNT` (a 0-based array). Where
    /// `SLURM_ARRAY_TASK_COUNT` is set too it must equal `MAX − MIN + 1` (a stepped or listed
    /// array, `--array=0-9:2` or `--array=1,4`, maps onto no shards). Errors name the variables.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, ExperimentError> {
        let Some(id) = var("SLURM_ARRAY_TASK_ID") else { return Ok(None) };
        let bad = |rule: String| ExperimentError::Invalid { field: "shard".into(), rule };
        let number = |name: &str, text: String| {
            text.trim().parse::<usize>().map_err(|_| bad(format!("{name} must be a whole number (got `{text}`)")))
        };
        let id = number("SLURM_ARRAY_TASK_ID", id)?;
        let count = var("SLURM_ARRAY_TASK_COUNT").map(|c| number("SLURM_ARRAY_TASK_COUNT", c)).transpose()?;
        let min = var("SLURM_ARRAY_TASK_MIN").map(|c| number("SLURM_ARRAY_TASK_MIN", c)).transpose()?;
        let max = var("SLURM_ARRAY_TASK_MAX").map(|c| number("SLURM_ARRAY_TASK_MAX", c)).transpose()?;
        let (index, n, from) = match (min, max, count) {
            (Some(min), Some(max), count) => {
                if max < min || id < min || id > max {
                    return Err(bad(format!(
                        "needs SLURM_ARRAY_TASK_MIN ≤ SLURM_ARRAY_TASK_ID ≤ SLURM_ARRAY_TASK_MAX (got {min} ≤ {id} ≤ {max})"
                    )));
                }
                if let Some(count) = count.filter(|&c| c != max - min + 1) {
                    return Err(bad(format!(
                        "SLURM_ARRAY_TASK_COUNT = {count} is not SLURM_ARRAY_TASK_MAX − SLURM_ARRAY_TASK_MIN + 1 = {}: a \
                         stepped or listed job array cannot be split into shards; use --array=A-B or pass --shard",
                        max - min + 1
                    )));
                }
                (
                    id - min,
                    max - min + 1,
                    format!("SLURM_ARRAY_TASK_ID={id}, SLURM_ARRAY_TASK_MIN={min}, SLURM_ARRAY_TASK_MAX={max}"),
                )
            }
            (None, None, Some(count)) => {
                (id, count, format!("SLURM_ARRAY_TASK_ID={id}, SLURM_ARRAY_TASK_COUNT={count}"))
            }
            _ => {
                return Err(bad(format!(
                    "SLURM_ARRAY_TASK_ID = {id} is set without SLURM_ARRAY_TASK_COUNT or SLURM_ARRAY_TASK_MIN and \
                     SLURM_ARRAY_TASK_MAX, so the number of shards is unknown; pass --shard I/N"
                )));
            }
        };
        Self::new(index, n).map(Some).map_err(|e| match e {
            ExperimentError::Invalid { field, rule } => {
                ExperimentError::Invalid { field, rule: format!("{rule} from {from}") }
            }
            other => other,
        })
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

/// A sweep file read with its overrides: the base spec and the swept lists, from which any
/// point is built on demand.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// The spec's table, overrides applied (every point starts from it).
    base: toml::Table,
    /// The swept keys (sorted) and their values in the order given.
    axes: Vec<(String, Vec<toml::Value>)>,
    /// The spec's name.
    name: String,
    /// The base spec with every field (defaults included), as TOML: what the manifest records.
    normalized: toml::Table,
    /// The number of points.
    len: usize,
    /// The variants' settings that the overrides and the swept keys replace.
    shadowed: Vec<Shadowed>,
}

impl Sweep {
    /// Reads a sweep file's text with overrides (`sweep.<field>` keys replace a swept list,
    /// others override the spec). A swept key is any override key (see [`Override`]); each
    /// must be given once (`"train.lr"` and `[sweep.train] lr` are the same key) with a
    /// non-empty list, and `[sweep]` must hold at least one. The base spec is read (its keys
    /// and types checked) here; the points' rules are checked by [`Sweep::point`].
    pub fn parse(text: &str, overrides: &[Override]) -> Result<Self, ExperimentError> {
        let mut table: toml::Table = text.parse().map_err(|e| malformed_toml("sweep file", text, &e))?;
        let sweep = match table.remove("sweep") {
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
        let mut axes: BTreeMap<String, toml::Value> = BTreeMap::new();
        flatten_axes("", &sweep, &mut axes)?;
        let mut shadowed = Vec::new();
        for o in overrides {
            match o.key().strip_prefix("sweep.") {
                Some(key) => {
                    axes.insert(key.to_string(), o.value().clone());
                }
                None => shadowed.extend(apply_one(&mut table, o)?),
            }
        }
        if axes.is_empty() {
            return Err(ExperimentError::Invalid {
                field: "sweep".into(),
                rule: "is empty: a sweep needs at least one field = [values] (a single run is `modewise run`)".into(),
            });
        }
        let axes: Vec<(String, Vec<toml::Value>)> = axes
            .into_iter()
            .map(|(key, v)| match v {
                toml::Value::Array(a) if !a.is_empty() => Ok((key, a)),
                other => Err(ExperimentError::Invalid {
                    field: format!("sweep.{key}"),
                    rule: format!("must be a non-empty list of values (got {other})"),
                }),
            })
            .collect::<Result<_, _>>()?;
        // A swept `train.*` key applies to every run of its points, as an override does.
        for (key, values) in &axes {
            shadowed.extend(apply_one(&mut table.clone(), &Override::new(key, &values[0])?)?);
        }
        let spec = ExperimentSpec::from_table(table.clone())?;
        let normalized: toml::Table = spec.to_toml().parse().expect("a spec's TOML parses");
        let name = spec.name;
        let len = axes.iter().try_fold(1usize, |n, (_, v)| n.checked_mul(v.len())).ok_or_else(|| {
            ExperimentError::Invalid {
                field: "sweep".into(),
                rule: "has more points than this machine can count".into(),
            }
        })?;
        Ok(Self { base: table, axes, name, normalized, len, shadowed })
    }

    /// The variants' settings that the overrides and the swept keys replace in every point
    /// (see [`Shadowed`]).
    pub fn shadowed(&self) -> &[Shadowed] {
        &self.shadowed
    }

    /// The number of points (the product of the lists' lengths).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the sweep has no point (never: [`Sweep::parse`] refuses an empty list).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The spec's name (each point is named `<name>-<index>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Point `index` (`< len`), checked: its position in the product of the lists, keys
    /// sorted and the last key varying fastest, values in the order given.
    pub fn point(&self, index: usize) -> Result<SweepPoint, ExperimentError> {
        let mut t = self.base.clone();
        let mut rest = index;
        let mut picks = vec![0; self.axes.len()];
        for (pick, (_, values)) in picks.iter_mut().zip(&self.axes).rev() {
            *pick = rest % values.len();
            rest /= values.len();
        }
        let mut label = String::new();
        for ((key, values), &pick) in self.axes.iter().zip(&picks) {
            let v = &values[pick];
            apply_one(&mut t, &Override::new(key, v)?)?;
            let short = key.rsplit('.').next().unwrap_or(key);
            let shown = match v {
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let sep = if label.is_empty() { "" } else { "," };
            label = format!("{label}{sep}{short}={shown}");
        }
        t.insert("name".into(), toml::Value::String(format!("{}-{index}", self.name)));
        let experiment = ExperimentSpec::from_table(t)
            .and_then(|s| s.check())
            .and_then(refuse_checkpoints)
            .map_err(|e| e.within(&format!("sweep point {index} ({label}):")))?;
        Ok(SweepPoint { index, label: format!("{}/{label}", self.name), experiment })
    }

    /// The coordinates of point `index` (`< len`) as the typed columns of every table of the
    /// sweep: `sweep_<key>` (the key's dots and brackets as `_`), each typed over its whole list
    /// (see [`crate::table::scalar_column`]: a list of integers and floats is `f64` at every point).
    pub fn coordinates(&self, index: usize) -> Vec<(String, Scalar)> {
        let mut rest = index;
        let mut out = Vec::with_capacity(self.axes.len());
        for (key, values) in self.axes.iter().rev() {
            let pick = rest % values.len();
            rest /= values.len();
            let all: Vec<Scalar> = values.iter().map(Scalar::from).collect();
            let numbers = all.iter().all(|v| matches!(v, Scalar::I64(_) | Scalar::F64(_)));
            let integers = all.iter().all(|v| matches!(v, Scalar::I64(_)));
            let value = match &all[pick] {
                Scalar::I64(i) if numbers && !integers => Scalar::F64(*i as f64),
                v => v.clone(),
            };
            out.push((column_name(key), value));
        }
        out.reverse();
        out
    }

    /// The indices of `shard`'s points, in order.
    pub fn indices(&self, shard: Shard) -> impl Iterator<Item = usize> + use<> {
        (shard.index..self.len).step_by(shard.count)
    }

    /// Checks every point of `shard` (one at a time), before any work; returns what they
    /// are estimated to cost together.
    pub fn check_shard(&self, shard: Shard) -> Result<Estimate, ExperimentError> {
        let mut total = Estimate::default();
        for i in self.indices(shard) {
            let point = self.point(i)?;
            let e = point.experiment.estimate();
            total.training_seconds += e.training_seconds;
            total.overlay_seconds += e.overlay_seconds;
            if e.bytes > total.bytes {
                total.bytes = e.bytes;
                total.largest.clone_from(&e.largest);
            }
        }
        Ok(total)
    }

    /// The sweep as run: the spec with its overrides applied (every field, defaults included)
    /// and the `[sweep]` table, as TOML.
    pub fn to_toml(&self) -> String {
        let mut t = self.normalized.clone();
        let axes: toml::Table = self.axes.iter().map(|(k, v)| (k.clone(), toml::Value::Array(v.clone()))).collect();
        t.insert("sweep".into(), toml::Value::Table(axes));
        toml::to_string(&t).expect("a sweep serialises")
    }

    /// The manifest written into the sweep's directory.
    fn manifest(&self) -> Manifest {
        Manifest { modewise_version: VERSION.into(), points: self.len, sweep: self.to_toml() }
    }
}

/// The contents of [`MANIFEST`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    /// The modewise version that wrote it.
    modewise_version: String,
    /// The number of points of the sweep.
    points: usize,
    /// The sweep as run (spec, overrides applied, and `[sweep]`), as TOML.
    sweep: String,
}

/// Refuses checkpoints in a sweep: a sweep resumes by run (`resume`), and its runs are
/// short; a long run that needs checkpoints is a `run` of its own (`crate::checkpoint`).
fn refuse_checkpoints(experiment: CheckedExperiment) -> Result<CheckedExperiment, ExperimentError> {
    if experiment.plans().iter().any(|p| p.train.params().checkpoint_every > 0) {
        return Err(ExperimentError::Invalid {
            field: "train.checkpoint_every".into(),
            rule: "must be 0 in a sweep: a sweep resumes run by run (`resume`); checkpoint a long run with `modewise \
                   run` instead"
                .into(),
        });
    }
    Ok(experiment)
}

/// The column of swept key `key`: `sweep_` and the key with every run of characters other than
/// letters and digits written as one `_` (`train.lr`: `sweep_train_lr`).
fn column_name(key: &str) -> String {
    let mut name = String::from("sweep_");
    let mut gap = false;
    for c in key.chars() {
        if c.is_ascii_alphanumeric() {
            if gap && !name.ends_with('_') {
                name.push('_');
            }
            name.push(c);
            gap = false;
        } else {
            gap = true;
        }
    }
    name
}

/// Flattens a sweep table (`"train.lr" = […]` or `[sweep.train] lr = […]`) into its dotted
/// keys; a key given twice is an error.
fn flatten_axes(prefix: &str, t: &toml::Table, out: &mut BTreeMap<String, toml::Value>) -> Result<(), ExperimentError> {
    for (k, v) in t {
        let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match v {
            toml::Value::Table(inner) => flatten_axes(&key, inner, out)?,
            other => {
                if out.insert(key.clone(), other.clone()).is_some() {
                    return Err(ExperimentError::Invalid {
                        field: format!("sweep.{key}"),
                        rule: "is given twice (a dotted key and a table name the same field)".into(),
                    });
                }
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
    /// Checked while training, computing the overlays and writing: once requested, the current
    /// run is discarded and the shard stops (the runs already complete stay, for `resume`).
    pub stop: StopFlag,
}

/// Removes every part of run `index` (complete or not, and temporary files left by a kill).
fn remove_run(dir: &Path, index: usize) -> Result<(), ExperimentError> {
    for table in Table::PER_RUN {
        let run_dir = table.partition(dir, index);
        if run_dir.exists() {
            std::fs::remove_dir_all(&run_dir).map_err(|source| ExperimentError::Io { path: run_dir, source })?;
        }
    }
    Ok(())
}

/// The entries of `dir` but the temporary files of a manifest being written (by another shard
/// of the sweep starting at the same time).
fn entries_of(dir: &Path) -> Vec<std::fs::DirEntry> {
    let temporary = format!(".{MANIFEST}.tmp-");
    dir.read_dir()
        .map(|it| it.flatten().filter(|e| !e.file_name().to_string_lossy().starts_with(&temporary)).collect())
        .unwrap_or_default()
}

/// Whether `dir` holds nothing but a sweep's table directories (a sweep written before
/// manifests existed).
fn is_unmarked_sweep(dir: &Path) -> bool {
    entries_of(dir).iter().all(|e| Table::PER_RUN.iter().any(|t| e.file_name() == t.name()) && e.path().is_dir())
}

/// Checks that `dir` is empty, missing or this sweep's directory (a manifest of the same sweep,
/// or a sweep's tables and no manifest).
fn check_sweep_dir(dest: &Destination, sweep: &Sweep) -> Result<(), ExperimentError> {
    let manifest = dest.dir.join(MANIFEST);
    match std::fs::read_to_string(&manifest) {
        Ok(text) => {
            let theirs: Manifest = toml::from_str(&text).map_err(|e| ExperimentError::Invalid {
                field: MANIFEST.into(),
                rule: format!("is not a modewise sweep manifest ({}): {}", manifest.display(), e.message()),
            })?;
            let theirs: toml::Table = theirs.sweep.parse().map_err(|e| malformed_toml(MANIFEST, &theirs.sweep, &e))?;
            let mine: toml::Table = sweep.to_toml().parse().expect("a sweep's TOML parses");
            match first_difference(&theirs, &mine) {
                Some(difference) => Err(dest.refuse(DestinationProblem::OtherSweep { difference })),
                None => Ok(()),
            }
        }
        Err(_) if !entries_of(&dest.dir).is_empty() && !is_unmarked_sweep(&dest.dir) => {
            Err(dest.refuse(DestinationProblem::NotSweep))
        }
        Err(_) => Ok(()),
    }
}

/// Whether run `point` is complete in `dir`: all four parts exist. Each existing part must store
/// the spec the sweep expands to at this index (else the directory mixes two sweeps: an error
/// naming the first difference).
fn complete(dir: &Path, point: &SweepPoint) -> Result<bool, ExperimentError> {
    let mine: toml::Table = point.experiment.spec().to_toml().parse().expect("a spec's TOML parses");
    let mut all = true;
    for table in Table::PER_RUN {
        let path = table.part_path(dir, point.index);
        if !path.exists() {
            all = false;
            continue;
        }
        let stored = read_metadata(&path).ok().and_then(|m| m.into_iter().find(|(k, _)| k == "spec")).map(|(_, v)| v);
        let theirs: Option<toml::Table> = stored.as_deref().and_then(|s| s.parse().ok());
        let difference = match &theirs {
            Some(theirs) => first_difference(theirs, &mine),
            None => Some("it stores no readable spec".into()),
        };
        if let Some(difference) = difference {
            return Err(ExperimentError::Invalid {
                field: "resume".into(),
                rule: format!(
                    "run {} ({}) comes from another sweep than this one: {difference}",
                    point.index,
                    path.display()
                ),
            });
        }
    }
    Ok(all)
}

/// Runs the points of one shard of `sweep` into `dir`.
///
/// Before any work: every point of the shard is checked, the directory must be empty, missing
/// or this sweep's (see [`MANIFEST`]), and, without `resume` or `force`, hold no part of this
/// shard. The manifest is then written (which also proves the directory writable). Parts are
/// written atomically, `summary` last, so a run is either complete or redone by `resume`.
pub fn run_shard(
    sweep: &Sweep,
    dir: &Path,
    shard: Shard,
    options: &SweepOptions,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<SweepOutcome, ExperimentError> {
    let estimate = sweep.check_shard(shard)?;
    progress(Progress::Checked { points: sweep.indices(shard).count(), estimate: &estimate });
    let dest = Destination::resolve(dir)?;
    check_sweep_dir(&dest, sweep)?;
    let dir = dest.dir.as_path();
    if !(options.resume || options.force)
        && let Some(run) = sweep.indices(shard).find(|&i| Table::PER_RUN.iter().any(|t| t.partition(dir, i).exists()))
    {
        return Err(dest.refuse(DestinationProblem::SweepTaken { run }));
    }
    if options.resume && !options.force {
        // Every part already there must come from this sweep before the directory is marked
        // as its own (a directory without a manifest is checked part by part).
        for i in sweep.indices(shard) {
            complete(dir, &sweep.point(i)?)?;
        }
    }
    let mut created = Created::create(&dest.shown, dir)?;
    let manifest = toml::to_string(&sweep.manifest()).expect("a manifest serialises");
    let written = write_atomic(&dir.join(MANIFEST), |file| {
        use std::io::Write;
        let text = format!("# The results of one modewise sweep (see `modewise sweep --help`).\n{manifest}");
        file.write_all(text.as_bytes()).map_err(|source| ExperimentError::Io { path: dir.join(MANIFEST), source })
    });
    if let Err(e) = written {
        created.undo();
        return Err(match e {
            ExperimentError::Io { path, source } => dest.refuse(DestinationProblem::Unwritable { path, source }),
            other => other,
        });
    }
    if options.force {
        // All at once, so that a forced sweep interrupted and then resumed holds no old run.
        for i in sweep.indices(shard) {
            remove_run(dir, i)?;
        }
    }
    let total = sweep.indices(shard).count();
    let mut outcome = SweepOutcome::default();
    for (n, index) in sweep.indices(shard).enumerate() {
        let point = sweep.point(index)?;
        if options.resume && !options.force && complete(dir, &point)? {
            outcome.skipped.push(index);
            continue;
        }
        if options.stop.is_requested() {
            return Err(interrupted(dir, &outcome, None));
        }
        remove_run(dir, index)?;
        let describe = |_| (point.label.clone(), n, total);
        let written = train_and_analyse(&point.experiment, describe, &options.stop, progress, None).and_then(|a| {
            let started = std::time::Instant::now();
            let spec = point.experiment.spec();
            let coordinates = sweep.coordinates(index);
            let path_of = |table: Table| table.part_path(dir, index);
            // A sweep point is one run: the scaling analysis, which compares runs, has nothing to fit.
            let none = crate::scaling::Scaled::default();
            let rows = TableRows {
                results: &a.results,
                theory: &a.theory,
                verdicts: &a.verdicts,
                dose: &a.dose,
                scaling: &none,
                dose_parts: None,
            };
            write_tables_with(path_of, spec, rows, &coordinates, &options.stop)?;
            Ok((a, started.elapsed().as_secs_f64()))
        });
        let (a, parquet) = match written {
            Err(e) if e.is_interrupted() => {
                remove_run(dir, index)?;
                return Err(interrupted(dir, &outcome, Some(index)));
            }
            other => other?,
        };
        outcome.timings.add(&a.timings);
        outcome.timings.parquet += parquet;
        outcome.divergences.extend(a.results.iter().flat_map(|r| r.divergences_by_run()));
        outcome.members += a.results.iter().map(|r| r.plan.train.params().seeds.len()).sum::<usize>();
        outcome.ran.push(index);
        outcome.verdicts.extend(a.verdicts);
    }
    Ok(outcome)
}

/// The default directory of a sweep named `name`: `data/sweeps/<name>` (a run's is
/// `data/<name>`, so the two never share one).
pub fn default_dir(name: &str) -> PathBuf {
    Path::new("data").join("sweeps").join(name)
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

#[cfg(test)]
mod tests {
    use super::*;

    const SWEEP: &str = r#"
name = "grid"
[train]
dims = [3, 4, 3]
lr = 0.05
steps = 10
[train.teacher.spectrum]
kind = "list"
s = [2.0, 1.0]
[sweep]
"train.lr" = [0.01, 0.02, 0.03]
[sweep.train.data]
sigma = [0.0, 0.5]
"#;

    #[test]
    fn points_are_built_from_their_index_in_the_product() {
        let sweep = Sweep::parse(SWEEP, &[]).unwrap();
        assert_eq!((sweep.len(), sweep.name()), (6, "grid"));
        // Keys sorted (train.data.sigma, train.lr), the last varying fastest.
        let labels: Vec<String> = (0..6).map(|i| sweep.point(i).unwrap().label).collect();
        assert_eq!(labels[0], "grid/sigma=0.0,lr=0.01");
        assert_eq!(labels[4], "grid/sigma=0.5,lr=0.02");
        let p = sweep.point(4).unwrap();
        assert_eq!((p.experiment.name(), p.experiment.spec().train.lr), ("grid-4", 0.02));
        assert_eq!(
            sweep.coordinates(4),
            [("sweep_train_data_sigma".into(), Scalar::F64(0.5)), ("sweep_train_lr".into(), Scalar::F64(0.02))]
        );
        assert_eq!(column_name("variants[0].set.train.lr"), "sweep_variants_0_set_train_lr");
        // A list of integers and floats is f64 at every point; a list of integers, i64.
        let mixed = Sweep::parse(&SWEEP.replace("sigma = [0.0, 0.5]", "sigma = [0, 0.5]"), &[]).unwrap();
        assert_eq!(mixed.coordinates(0)[0].1, Scalar::F64(0.0));
        let steps: Override = "sweep.train.steps=[10, 20]".parse().unwrap();
        let ints = Sweep::parse(SWEEP, &[steps]).unwrap();
        assert_eq!(ints.coordinates(1)[2], ("sweep_train_steps".into(), Scalar::I64(20)));
        assert_eq!(sweep.indices(Shard::new(1, 4).unwrap()).collect::<Vec<_>>(), [1, 5]);
        // `sweep.<key>` overrides replace a list however the file wrote it.
        let o: Override = "sweep.train.lr=[0.5]".parse().unwrap();
        assert_eq!(Sweep::parse(SWEEP, &[o]).unwrap().len(), 2);
        let o: Override = "sweep.train.data.sigma=[0.1, 0.2, 0.3]".parse().unwrap();
        assert_eq!(Sweep::parse(SWEEP, &[o]).unwrap().len(), 9);
    }

    #[test]
    fn a_sweep_of_millions_of_points_builds_any_point_without_the_others() {
        let list = |range: std::ops::Range<u64>| range.map(|v| v.to_string()).collect::<Vec<_>>().join(", ");
        let text = SWEEP.replace(
            "\"train.lr\" = [0.01, 0.02, 0.03]",
            &format!("\"train.teacher.seed\" = [{}]\n\"train.steps\" = [{}]", list(0..1000), list(1..1001)),
        );
        let sweep = Sweep::parse(&text, &[]).unwrap();
        assert_eq!(sweep.len(), 2_000_000);
        let last = sweep.point(1_999_999).unwrap();
        let t = &last.experiment.spec().train;
        assert_eq!((last.experiment.name(), t.steps, t.teacher.seed, t.data.sigma), ("grid-1999999", 1000, 999, 0.5));
    }

    #[test]
    fn silent_sweeps_are_errors() {
        let twice = format!("{SWEEP}[sweep.train]\nlr = [0.5]\n");
        let err = Sweep::parse(&twice, &[]).unwrap_err().to_string();
        assert_eq!(err, "sweep.train.lr: is given twice (a dotted key and a table name the same field)");
        let empty = SWEEP.split("[sweep]").next().unwrap().to_string() + "[sweep]\n";
        let err = Sweep::parse(&empty, &[]).unwrap_err().to_string();
        assert!(err.starts_with("sweep: is empty"), "{err}");
    }

    #[test]
    fn slurm_arrays_map_onto_shards_from_any_first_index() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
        };
        assert_eq!(Shard::from_vars(vars(&[])).unwrap(), None);
        const ZERO_BASED: [(&str, &str); 2] = [("SLURM_ARRAY_TASK_ID", "3"), ("SLURM_ARRAY_TASK_COUNT", "10")];
        assert_eq!(Shard::from_vars(vars(&ZERO_BASED)).unwrap(), Some(Shard::new(3, 10).unwrap()));
        const ONE_BASED: [(&str, &str); 4] = [
            ("SLURM_ARRAY_TASK_ID", "1"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_MAX", "10"),
            ("SLURM_ARRAY_TASK_COUNT", "10"),
        ];
        assert_eq!(Shard::from_vars(vars(&ONE_BASED)).unwrap(), Some(Shard::new(0, 10).unwrap()));
        const LAST: [(&str, &str); 3] =
            [("SLURM_ARRAY_TASK_ID", "10"), ("SLURM_ARRAY_TASK_MIN", "1"), ("SLURM_ARRAY_TASK_MAX", "10")];
        assert_eq!(Shard::from_vars(vars(&LAST)).unwrap(), Some(Shard::new(9, 10).unwrap()));
        let cases: [(&'static [(&'static str, &'static str)], &str); 4] = [
            (&[("SLURM_ARRAY_TASK_ID", "3")], "shard: SLURM_ARRAY_TASK_ID = 3 is set without SLURM_ARRAY_TASK_COUNT"),
            (
                &[("SLURM_ARRAY_TASK_ID", "3"), ("SLURM_ARRAY_TASK_COUNT", "2")],
                "shard: needs 0 ≤ I < N and N ≥ 1 (got 3/2) from SLURM_ARRAY_TASK_ID=3, SLURM_ARRAY_TASK_COUNT=2",
            ),
            (
                &[
                    ("SLURM_ARRAY_TASK_ID", "4"),
                    ("SLURM_ARRAY_TASK_MIN", "0"),
                    ("SLURM_ARRAY_TASK_MAX", "8"),
                    ("SLURM_ARRAY_TASK_COUNT", "5"),
                ],
                "shard: SLURM_ARRAY_TASK_COUNT = 5 is not SLURM_ARRAY_TASK_MAX − SLURM_ARRAY_TASK_MIN + 1 = 9",
            ),
            (
                &[("SLURM_ARRAY_TASK_ID", "x"), ("SLURM_ARRAY_TASK_COUNT", "2")],
                "shard: SLURM_ARRAY_TASK_ID must be a whole number",
            ),
        ];
        for (env, expected) in cases {
            let err = Shard::from_vars(vars(env)).unwrap_err().to_string();
            assert!(err.starts_with(expected), "{env:?}: {err}");
        }
    }
}
