//! Running whole experiments into a results directory: validation first, training, overlays,
//! verdicts, tables and figures written into a staging directory that is put in place in one
//! atomic step (see [`crate::publish`]) — one experiment, or several (the demo) as one unit.

use std::path::{Path, PathBuf};

use modewise_dln::{Divergence, StopFlag};

use crate::ExperimentError;
use crate::checkpoint::{Checkpoints, checkpoint_dir};
use crate::error::DestinationProblem;
use crate::formats::FigureFormat;
use crate::output::{TableRows, write_tables};
use crate::publish::{Created, Destination, Lock, clean_stale, create_staging, publish};
use crate::report::Results;
use crate::run::{Phase, Progress, Timings, train_and_analyse};
use crate::spec::{CheckedExperiment, ExperimentSpec};
use crate::sweep::MANIFEST;
use crate::table::Verdict;

/// Options of a run that are not part of the spec (a backend for every run is set on the spec,
/// with [`ExperimentSpec::with_backend`], before it is checked).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Results directory (default `data/<name>`).
    pub out: Option<PathBuf>,
    /// Replace an existing results directory (and discard a checkpoint of an unfinished run).
    pub force: bool,
    /// Continue the unfinished run whose checkpoint is beside the results directory (written
    /// every `train.checkpoint_every` steps, see `crate::checkpoint`): runs done there are not
    /// trained again, the run in progress continues from its last checkpoint, and the results
    /// are bit for bit those of an uninterrupted run. Without it, a checkpoint there is refused
    /// unless `force`.
    pub resume: bool,
    /// Checked in every phase (training, overlays and verdicts, writing, figures): once
    /// requested, the run stops and nothing is written.
    pub stop: StopFlag,
    /// The figures' formats besides SVG, which is always written (`report.html` inlines it).
    pub formats: Vec<FigureFormat>,
}

/// What an experiment produced.
#[derive(Debug, Clone)]
pub struct ExperimentOutcome {
    /// The results directory.
    pub dir: PathBuf,
    /// The verdicts.
    pub verdicts: Vec<Verdict>,
    /// Claim 4's dose–response rows (`relax` only; [`crate::dose`]).
    pub dose: Vec<crate::dose::DoseRow>,
    /// The diverged members of all runs: the run id beside the trainer's record.
    pub divergences: Vec<(String, Divergence)>,
    /// Number of members over all runs.
    pub members: usize,
    /// The figures written (SVG, then the other formats asked for).
    pub figures: Vec<PathBuf>,
    /// The results directory's `report.html`, where it was written.
    pub report: Option<PathBuf>,
    /// The figures that could not be drawn, each with its reason (the tables are complete).
    pub warnings: Vec<String>,
    /// Where the time went.
    pub timings: Timings,
}

/// The default results directory of an experiment: `data/<name>`.
pub fn default_dir(spec: &ExperimentSpec) -> PathBuf {
    Path::new("data").join(&spec.name)
}

/// Checks that `dir` may receive an experiment's results (the one destination check of a
/// run), before any work: an existing, non-empty directory is refused unless `force`, a
/// sweep's directory always, and so are paths that cannot hold results (a file, a symbolic
/// link to nothing, the root, a name longer than 255 bytes).
pub fn check_destination(dir: &Path, force: bool) -> Result<(), ExperimentError> {
    check_resolved(&Destination::resolve(dir)?, force)
}

/// [`check_destination`] of a resolved destination.
fn check_resolved(dest: &Destination, force: bool) -> Result<(), ExperimentError> {
    if dest.dir.join(MANIFEST).exists() {
        return Err(dest.refuse(DestinationProblem::IsSweep));
    }
    let non_empty = dest.dir.read_dir().map(|mut it| it.next().is_some()).unwrap_or(false);
    if non_empty && !force {
        return Err(dest.refuse(DestinationProblem::Taken));
    }
    Ok(())
}

/// Runs `work` in a staging directory beside `dir` and puts what it wrote in place of `dir`
/// (see [`crate::publish`]): the destination is checked first, locked against other writers
/// and checked again under the lock. On an error or a stop nothing is published, and the
/// staging directory and any directory created on the way are removed.
///
/// The checkpoint beside `dir` of a run of `experiments` is opened under the lock too (see
/// [`Checkpoints::open`]) and handed to `work`; it is removed once the results are published,
/// and kept on an error or a stop (for `resume`).
fn into_staging<T>(
    dir: &Path,
    experiments: &[&CheckedExperiment],
    options: &RunOptions,
    work: impl FnOnce(&Path, Option<&Checkpoints>) -> Result<T, ExperimentError>,
) -> Result<T, ExperimentError> {
    let dest = Destination::resolve(dir)?;
    check_resolved(&dest, options.force)?;
    let mut created = Created::create(dir, &dest.parent)?;
    let result = (|| {
        let lock = Lock::acquire(&dest)?;
        // What a killed writer left goes first (old results it had moved aside come back), so
        // that the check under the lock sees the destination as it really is.
        clean_stale(&dest, &lock);
        check_resolved(&dest, options.force)?;
        let checkpoints = Checkpoints::open(&dest, experiments, options.resume, options.force)?;
        let staging = create_staging(&dest, &lock)?;
        let done = work(&staging, checkpoints.as_ref()).and_then(|out| {
            if options.stop.is_requested() {
                return Err(ExperimentError::Stopped { during: "publishing the results" });
            }
            publish(&staging, &dest, &lock)?;
            if let Some(c) = &checkpoints {
                c.remove()?;
            }
            Ok(out)
        });
        if done.is_err() {
            let _ = std::fs::remove_dir_all(&staging);
        }
        done
    })();
    if result.is_err() {
        created.undo();
    }
    result
}

/// An error of a run into `dir` as reported: a stop says where it came and that nothing was
/// written.
/// When a checkpoint of the run is kept beside `dir`, the message says so, and how to resume.
fn reported(err: ExperimentError, what: &str, dir: &Path) -> ExperimentError {
    match err.stop_point() {
        Some(at) => {
            let kept = Destination::resolve(dir)
                .map(|d| checkpoint_dir(&d))
                .ok()
                .filter(|c| c.exists())
                .map_or(String::new(), |c| {
                    format!("; its checkpoint in {} is kept: rerun with `resume` to continue from it", c.display())
                });
            ExperimentError::Interrupted {
                detail: format!("{what} stopped {at}; nothing was written to {}{kept}", dir.display()),
            }
        }
        None => err,
    }
}

/// Trains, analyses and writes one experiment into `out` (tables, then figures), which is
/// inside a staging directory; the outcome names the files as they will be once `out` is
/// published as `published`.
fn run_into(
    experiment: &CheckedExperiment,
    out: &Path,
    published: &Path,
    stop: &StopFlag,
    formats: &[FigureFormat],
    progress: &mut dyn FnMut(Progress<'_>),
    checkpoints: Option<&Checkpoints>,
) -> Result<ExperimentOutcome, ExperimentError> {
    let (spec, plans) = (experiment.spec(), experiment.plans());
    let total = plans.len();
    let a = train_and_analyse(experiment, |i| (plans[i].run_id.clone(), i, total), stop, progress, checkpoints)?;
    let (results, theory, mut verdicts, dose, mut timings) = (a.results, a.theory, a.verdicts, a.dose, a.timings);
    let scaling = if spec.analysis == crate::spec::Analysis::Scaling {
        let started = std::time::Instant::now();
        let scaled = crate::scaling::analyse(experiment, &results, stop)?;
        verdicts.extend(scaled.verdicts.iter().cloned());
        timings.overlays += started.elapsed().as_secs_f64();
        scaled
    } else {
        crate::scaling::Scaled::default()
    };
    progress(Progress::Phase { name: spec.name.as_str(), phase: Phase::Writing });
    let started = std::time::Instant::now();
    std::fs::create_dir_all(out).map_err(|source| ExperimentError::Io { path: out.to_path_buf(), source })?;
    // A dose study's rows as one Hive dataset, a part per variant (data/README.md).
    let run_ids: Vec<&str> = plans.iter().map(|p| p.run_id.as_str()).collect();
    let dose_parts = (spec.analysis == crate::spec::Analysis::Relax).then_some(run_ids.as_slice());
    let rows = TableRows {
        results: &results,
        theory: &theory,
        verdicts: &verdicts,
        dose: &dose,
        scaling: &scaling,
        dose_parts,
    };
    write_tables(|table| table.path_in(out), spec, rows, stop)?;
    timings.parquet = started.elapsed().as_secs_f64();
    progress(Progress::Phase { name: spec.name.as_str(), phase: Phase::Figures });
    let started = std::time::Instant::now();
    let loaded = Results::load(out)?;
    let mut drawn = loaded.draw_within_as(out, stop, formats)?;
    let report = match crate::html::write_report(out, published, &loaded) {
        Ok(page) => Some(published.join(page.file_name().unwrap_or_default())),
        Err(e) => {
            drawn.warnings.push(format!("{} was not written: {e}", crate::html::REPORT_HTML));
            None
        }
    };
    timings.figures = started.elapsed().as_secs_f64();
    let divergences = results.iter().flat_map(|r| r.divergences_by_run()).collect();
    let members = results.iter().map(|r| r.plan.train.params().seeds.len()).sum();
    let figures =
        drawn.written.iter().chain(&drawn.converted).filter_map(|f| f.file_name()).map(|n| published.join(n)).collect();
    Ok(ExperimentOutcome {
        dir: published.to_path_buf(),
        verdicts,
        dose,
        divergences,
        members,
        figures,
        report,
        warnings: drawn.warnings,
        timings,
    })
}

/// Runs every run of a checked experiment and writes the results directory
/// (`options.out`, default `data/<name>`): all of it, or (on an error or a stop) nothing.
pub fn execute(
    experiment: &CheckedExperiment,
    options: &RunOptions,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<ExperimentOutcome, ExperimentError> {
    let dir = options.out.clone().unwrap_or_else(|| default_dir(experiment.spec()));
    into_staging(&dir, &[experiment], options, |staging, checkpoints| {
        run_into(experiment, staging, &dir, &options.stop, &options.formats, progress, checkpoints)
    })
    .map_err(|e| reported(e, experiment.name(), &dir))
}

/// Runs several experiments into one results directory `dir`, each into `dir/<name>/`, and
/// publishes them as one unit: `dir` holds either all the old results or all the new ones
/// (`options.out` is not used).
pub fn execute_all(
    experiments: &[CheckedExperiment],
    dir: &Path,
    options: &RunOptions,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Vec<ExperimentOutcome>, ExperimentError> {
    let what = experiments.iter().map(CheckedExperiment::name).collect::<Vec<_>>().join(", ");
    let all: Vec<&CheckedExperiment> = experiments.iter().collect();
    into_staging(dir, &all, options, |staging, checkpoints| {
        let mut outcomes = Vec::new();
        for e in experiments {
            let out = staging.join(e.name());
            outcomes.push(run_into(
                e,
                &out,
                &dir.join(e.name()),
                &options.stop,
                &options.formats,
                progress,
                checkpoints,
            )?);
        }
        // The directory's own page links each experiment's.
        let index: Vec<(PathBuf, Vec<Verdict>)> =
            outcomes.iter().map(|o: &ExperimentOutcome| (o.dir.clone(), o.verdicts.clone())).collect();
        if let Err(e) = crate::html::write_index(staging, dir, &index)
            && let Some(last) = outcomes.last_mut()
        {
            last.warnings.push(format!("{} was not written: {e}", crate::html::REPORT_HTML));
        }
        Ok(outcomes)
    })
    .map_err(|e| reported(e, &what, dir))
}
