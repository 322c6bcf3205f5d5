//! Running a whole experiment into a results directory: validation first, training, overlays,
//! verdicts, tables and figures written into a staging directory that is renamed into place.

use std::path::{Path, PathBuf};

use modewise_dln::{Divergence, DlnError, StopFlag};

use crate::ExperimentError;
use crate::error::DestinationProblem;
use crate::io::create_destination;
use crate::output::write_tables;
use crate::report::draw_figures;
use crate::run::{Progress, Timings, train_and_analyse};
use crate::spec::{CheckedExperiment, ExperimentSpec};
use crate::table::Verdict;

/// Options of a run that are not part of the spec (a backend for every run is set on the spec,
/// with [`ExperimentSpec::with_backend`], before it is checked).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Results directory (default `data/<name>`).
    pub out: Option<PathBuf>,
    /// Replace an existing results directory.
    pub force: bool,
    /// Checked while training: once requested, the run stops and nothing is written.
    pub stop: StopFlag,
}

/// What an experiment produced.
#[derive(Debug, Clone)]
pub struct ExperimentOutcome {
    /// The results directory.
    pub dir: PathBuf,
    /// The verdicts.
    pub verdicts: Vec<Verdict>,
    /// The diverged members of all runs: the run id beside the trainer's record.
    pub divergences: Vec<(String, Divergence)>,
    /// Number of members over all runs.
    pub members: usize,
    /// The figures written.
    pub figures: Vec<PathBuf>,
    /// Where the time went.
    pub timings: Timings,
}

/// The default results directory of an experiment: `data/<name>`.
pub fn default_dir(spec: &ExperimentSpec) -> PathBuf {
    Path::new("data").join(&spec.name)
}

/// Checks that `dir` may receive an experiment's results (the one destination check of the crate):
/// an existing, non-empty directory is refused unless `force`.
pub fn check_destination(dir: &Path, force: bool) -> Result<(), ExperimentError> {
    crate::io::check_destination(dir, |dir| {
        let non_empty = dir.read_dir().map(|mut it| it.next().is_some()).unwrap_or(false);
        (non_empty && !force).then_some(DestinationProblem::Taken)
    })
}

/// Creates the staging directory of `dir` beside it (removing stale ones left by killed runs),
/// which also proves that the destination is writable before any training.
fn create_staging(dir: &Path) -> Result<PathBuf, ExperimentError> {
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    create_destination(dir, parent)?;
    let name = dir.file_name().map_or("results".into(), |n| n.to_string_lossy().into_owned());
    let prefix = format!(".{name}.staging-");
    // A staging directory whose process is gone was left by a kill: nothing in it is complete.
    // (Only where /proc tells which processes live.)
    if let (true, Ok(entries)) = (Path::new("/proc/self").exists(), parent.read_dir()) {
        for entry in entries.flatten() {
            let file_name = entry.file_name().to_string_lossy().into_owned();
            let stale = file_name
                .strip_prefix(&prefix)
                .map(|rest| rest.strip_suffix("-old").unwrap_or(rest))
                .and_then(|pid| pid.parse::<u32>().ok())
                .is_some_and(|pid| !Path::new("/proc").join(pid.to_string()).exists());
            if stale {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let staging = parent.join(format!("{prefix}{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    create_destination(dir, &staging)?;
    Ok(staging)
}

/// Moves a complete staging directory to `dir`, replacing what is there (with `force`) so
/// that `dir` always holds either the old results or the new ones, never a mix.
fn publish(staging: &Path, dir: &Path) -> Result<(), ExperimentError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ExperimentError::Io { path, source }
    };
    if dir.exists() {
        let old = PathBuf::from(format!("{}-old", staging.display()));
        std::fs::rename(dir, &old).map_err(io(dir))?;
        std::fs::rename(staging, dir).map_err(io(dir))?;
        std::fs::remove_dir_all(&old).map_err(io(&old))
    } else {
        std::fs::rename(staging, dir).map_err(io(dir))
    }
}

/// Runs every run of a checked experiment and writes the results directory: all of it, or (on
/// an error or an interruption) nothing.
pub fn execute(
    experiment: &CheckedExperiment,
    options: &RunOptions,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<ExperimentOutcome, ExperimentError> {
    let (spec, plans) = (experiment.spec(), experiment.plans());
    let dir = options.out.clone().unwrap_or_else(|| default_dir(spec));
    check_destination(&dir, options.force)?;
    let staging = create_staging(&dir)?;
    let result = (|| {
        let total = plans.len();
        let a = train_and_analyse(experiment, |i| (plans[i].run_id.clone(), i, total), &options.stop, progress)?;
        let (results, theory, verdicts, mut timings) = (a.results, a.theory, a.verdicts, a.timings);
        let started = std::time::Instant::now();
        write_tables(|table| table.path_in(&staging), spec, &results, &theory, &verdicts)?;
        timings.parquet = started.elapsed().as_secs_f64();
        let divergences = results.iter().flat_map(|r| r.divergences_by_run()).collect();
        let members = results.iter().map(|r| r.plan.train.params().seeds.len()).sum();
        let started = std::time::Instant::now();
        let figures = draw_figures(&staging)?;
        timings.figures = started.elapsed().as_secs_f64();
        publish(&staging, &dir)?;
        Ok::<_, ExperimentError>((verdicts, divergences, members, figures, timings))
    })();
    let (verdicts, divergences, members, figures, timings) = match result {
        Ok(x) => x,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(match e {
                ExperimentError::Dln(DlnError::Interrupted { step }) => ExperimentError::Interrupted {
                    detail: format!("{} stopped at step {step}; nothing was written to {}", spec.name, dir.display()),
                },
                other => other,
            });
        }
    };
    let figures = figures.iter().filter_map(|f| f.file_name()).map(|n| dir.join(n)).collect();
    Ok(ExperimentOutcome { dir, verdicts, divergences, members, figures, timings })
}
