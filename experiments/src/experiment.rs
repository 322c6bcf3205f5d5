//! Running a whole experiment into a results directory: validation first, training, overlays,
//! verdicts, tables and figures written into a staging directory that is renamed into place.

use std::path::{Path, PathBuf};

use modewise_dln::BackendKind;

use crate::ExperimentError;
use crate::output::write_tables;
use crate::report::draw_figures;
use crate::run::{Progress, Verdict, train_and_analyse};
use crate::spec::ExperimentSpec;

/// Options of a run that are not part of the spec.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Results directory (default `data/<name>`).
    pub out: Option<PathBuf>,
    /// Backend for every run, overriding the spec's.
    pub backend: Option<BackendKind>,
    /// Replace an existing results directory.
    pub force: bool,
}

/// What an experiment produced.
#[derive(Debug, Clone)]
pub struct ExperimentOutcome {
    /// The results directory.
    pub dir: PathBuf,
    /// The verdicts.
    pub verdicts: Vec<Verdict>,
    /// Number of diverged members over all runs.
    pub diverged: usize,
    /// Number of members over all runs.
    pub members: usize,
    /// The figures written.
    pub figures: Vec<PathBuf>,
}

/// The default results directory of an experiment: `data/<name>`.
pub fn default_dir(spec: &ExperimentSpec) -> PathBuf {
    Path::new("data").join(&spec.name)
}

/// Checks that `dir` may receive results: refuses an existing, non-empty directory unless
/// `force`, and an output path that is a file.
pub fn check_destination(dir: &Path, force: bool) -> Result<(), ExperimentError> {
    if dir.is_file() {
        return Err(ExperimentError::Invalid {
            field: "out".into(),
            rule: format!("must be a directory, but {} is a file", dir.display()),
        });
    }
    let non_empty = dir.read_dir().map(|mut it| it.next().is_some()).unwrap_or(false);
    if non_empty && !force {
        return Err(ExperimentError::Invalid {
            field: "out".into(),
            rule: format!("{} already holds results; pass --force to replace them", dir.display()),
        });
    }
    Ok(())
}

/// Runs every run of `spec` and writes the results directory.
pub fn execute(
    spec: &ExperimentSpec,
    options: &RunOptions,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<ExperimentOutcome, ExperimentError> {
    let mut spec = spec.clone();
    if let Some(b) = options.backend {
        spec.train.backend = b;
        for v in &mut spec.variants {
            v.set.remove("backend");
        }
    }
    let plans = spec.runs()?;
    let dir = options.out.clone().unwrap_or_else(|| default_dir(&spec));
    check_destination(&dir, options.force)?;
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|source| ExperimentError::Io { path: parent.to_path_buf(), source })?;
    // Probe that the parent is writable before training.
    let staging = parent.join(format!(
        ".{}.staging-{}",
        dir.file_name().map_or("results".into(), |n| n.to_string_lossy().into_owned()),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir(&staging).map_err(|source| ExperimentError::Io { path: staging.clone(), source })?;
    let result = (|| {
        let total = plans.len();
        let a = train_and_analyse(&spec, &plans, |i| (plans[i].run_id.clone(), i, total), progress)?;
        let (results, theory, verdicts) = (a.results, a.theory, a.verdicts);
        write_tables(&staging, &spec, &results, &theory, &verdicts)?;
        let diverged = results.iter().map(|r| r.diverged.len()).sum();
        let members = results.iter().map(|r| r.plan.train.params().seeds.len()).sum();
        Ok::<_, ExperimentError>((verdicts, diverged, members))
    })();
    let (verdicts, diverged, members) = match result {
        Ok(x) => x,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    let figures = match draw_figures(&staging) {
        Ok(f) => f,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|source| ExperimentError::Io { path: dir.clone(), source })?;
    }
    std::fs::rename(&staging, &dir).map_err(|source| ExperimentError::Io { path: dir.clone(), source })?;
    let figures = figures.iter().filter_map(|f| f.file_name()).map(|n| dir.join(n)).collect();
    Ok(ExperimentOutcome { dir, verdicts, diverged, members, figures })
}
