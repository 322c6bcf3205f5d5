//! The experiment commands: `run` (a preset or a spec file), `presets`, `report`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use modewise_dln::{BackendKind, Divergence, StopFlag};
use modewise_experiments::sweep::Shard;
use modewise_experiments::{
    CheckedExperiment, ExperimentError, ExperimentSpec, Override, PRESETS, Progress, Results, RunOptions, Timings,
    execute, preset, preset_toml, verdict_table,
};

use super::{EXIT_DIVERGED, typed};

/// Arguments of `modewise run`.
#[derive(Debug, Args, Default)]
pub struct RunArgs {
    /// A preset name (see `modewise presets`) or a spec file (`*.toml`); default `demo`.
    pub what: Option<String>,
    /// Override a spec field, e.g. `--set train.lr=0.02` or `--set variants[0].set.steps=100`
    /// (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = typed::<Override>())]
    pub set: Vec<Override>,
    /// Results directory (default `data/<name>`; for `demo`, one subdirectory per experiment).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Hardware backend for every run, overriding the spec: ndarray, flex or wgpu.
    #[arg(long, value_parser = typed::<BackendKind>())]
    pub backend: Option<BackendKind>,
    /// Replace an existing results directory.
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `modewise sweep`.
#[derive(Debug, Args)]
pub struct SweepArgs {
    /// A sweep file: a spec plus a `[sweep]` table of `field = [values]` (dotted fields).
    pub file: PathBuf,
    /// Override a spec field (repeatable); `sweep.<field>` replaces a swept list.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = typed::<Override>())]
    pub set: Vec<Override>,
    /// Results directory (default `data/<name>`), Hive-partitioned by run index.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Run only shard I of N (`I/N`, 0-based); defaults to Slurm's
    /// SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT when set, else everything.
    #[arg(long, value_name = "I/N", value_parser = typed::<Shard>())]
    pub shard: Option<Shard>,
    /// Skip runs whose results are complete; redo the others.
    #[arg(long, conflicts_with = "force")]
    pub resume: bool,
    /// Redo every run of this shard, replacing results already in the directory.
    #[arg(long)]
    pub force: bool,
    /// Hardware backend for every run, overriding the spec.
    #[arg(long, value_parser = typed::<BackendKind>())]
    pub backend: Option<BackendKind>,
}

/// Arguments of `modewise presets`.
#[derive(Debug, Args)]
pub struct PresetsArgs {
    /// Print this preset's spec as TOML (a starting point for your own spec files).
    #[arg(long, value_name = "PRESET")]
    pub show: Option<String>,
}

/// Arguments of `modewise report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A results directory written by `modewise run`.
    pub dir: PathBuf,
}

/// Loads the experiments named by `what` (a spec file or a preset) with the overrides applied,
/// on `backend` when given, and checks them.
fn load(what: &str, overrides: &[Override], backend: Option<BackendKind>) -> anyhow::Result<Vec<CheckedExperiment>> {
    let path = Path::new(what);
    let specs = if what.ends_with(".toml") || path.is_file() {
        let text = std::fs::read_to_string(path).map_err(|e| ExperimentError::Invalid {
            field: "spec file".into(),
            rule: format!("must exist and be readable ({what}: {e})"),
        })?;
        vec![ExperimentSpec::from_toml(&text, overrides)?]
    } else {
        preset(what)?.iter().map(|s| s.with_overrides(overrides)).collect::<Result<_, _>>()?
    };
    let on_backend = |s: ExperimentSpec| match backend {
        Some(b) => s.with_backend(b),
        None => s,
    };
    Ok(specs.into_iter().map(|s| on_backend(s).check()).collect::<Result<_, _>>()?)
}

/// A stop flag raised by the first Ctrl-C (the running experiment then stops cleanly at its
/// next check); a second Ctrl-C exits at once with status 130.
fn stop_on_ctrl_c() -> anyhow::Result<StopFlag> {
    use signal_hook::consts::SIGINT;
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    signal_hook::flag::register_conditional_shutdown(SIGINT, i32::from(super::EXIT_INTERRUPTED), flag.clone())?;
    signal_hook::flag::register(SIGINT, flag.clone())?;
    Ok(StopFlag::from(flag))
}

/// Peak resident memory of this process in MiB (Linux: `VmHWM` of /proc/self/status).
fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Prints the diverged members, the closing line and where the time went; returns the exit
/// status.
fn finish(divergences: &[(String, Divergence)], members: usize, summary: &str, timings: &Timings) -> u8 {
    eprintln!("time: {}", timings.describe());
    if !divergences.is_empty() {
        println!("diverged members (status `diverged` in the runs table):");
        println!("{:<32} {:>6} {:>20} {:>12} {:>12}", "run", "member", "seed", "step", "last finite");
        for (run_id, d) in divergences {
            println!("{:<32} {:>6} {:>20} {:>12} {:>12}", run_id, d.member, d.seed, d.step, d.last_finite_step);
        }
    }
    println!("{summary}; {} of {members} members diverged", divergences.len());
    if let Some(mib) = peak_memory_mib() {
        eprintln!("peak memory: {mib:.1} MiB");
    }
    if divergences.is_empty() { 0 } else { EXIT_DIVERGED }
}

/// `modewise run`.
pub fn run(args: RunArgs) -> anyhow::Result<u8> {
    let what = args.what.clone().unwrap_or_else(|| "demo".into());
    let experiments = load(&what, &args.set, args.backend)?;
    let several = experiments.len() > 1;
    let base = args.out.clone().unwrap_or_else(|| Path::new("data").join(&what));
    // Refuse before any training when a destination is taken.
    let outs: Vec<PathBuf> = experiments
        .iter()
        .map(|e| {
            if several {
                base.join(e.name())
            } else {
                args.out.clone().unwrap_or_else(|| Path::new("data").join(e.name()))
            }
        })
        .collect();
    for out in &outs {
        modewise_experiments::check_destination(out, args.force)?;
    }
    let stop = stop_on_ctrl_c()?;
    let mut all = Vec::new();
    let (mut divergences, mut members, mut timings) = (Vec::new(), 0, Timings::default());
    for (experiment, out) in experiments.iter().zip(outs) {
        let bar = progress_bar();
        let mut on_progress = progress_handler(&bar);
        let options = RunOptions { out: Some(out), force: args.force, stop: stop.clone() };
        let outcome = execute(experiment, &options, &mut on_progress);
        bar.finish_and_clear();
        let outcome = outcome?;
        eprintln!("{}: results in {}", experiment.name(), outcome.dir.display());
        divergences.extend(outcome.divergences);
        members += outcome.members;
        timings.add(&outcome.timings);
        all.extend(outcome.verdicts);
    }
    print!("{}", verdict_table(&all));
    let as_expected = all.iter().filter(|v| v.as_expected()).count();
    let summary = format!("{as_expected} of {} verdicts as the theory expects", all.len());
    Ok(finish(&divergences, members, &summary, &timings))
}

/// Shows a run's progress on `bar`, or as plain lines when the bar is hidden (not a terminal).
fn progress_handler(bar: &ProgressBar) -> impl FnMut(Progress<'_>) + '_ {
    move |p| match p {
        Progress::RunStarted { run_id, index, total, steps } => {
            bar.set_length(steps);
            bar.set_position(0);
            bar.set_message(format!("{run_id} ({}/{total})", index + 1));
            if bar.is_hidden() {
                eprintln!("run {run_id} ({}/{total}): {steps} steps", index + 1);
            }
        }
        Progress::Step { step } => bar.set_position(step),
        Progress::RunDone { .. } => {}
    }
}

fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(1);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} steps ({eta})")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar
}

/// `modewise sweep`.
pub fn sweep(args: SweepArgs) -> anyhow::Result<u8> {
    use modewise_experiments::sweep::{SweepOptions, expand, run_shard};
    let mut overrides = args.set.clone();
    if let Some(b) = args.backend {
        // An override of the base: a variant that sets its own backend keeps it.
        overrides.push(Override::new("train.backend", b)?);
    }
    let shard = match args.shard {
        Some(s) => s,
        None => Shard::from_slurm()?.unwrap_or(Shard::ALL),
    };
    let text = std::fs::read_to_string(&args.file).map_err(|e| ExperimentError::Invalid {
        field: "sweep file".into(),
        rule: format!("must exist and be readable ({}: {e})", args.file.display()),
    })?;
    let points = expand(&text, &overrides)?;
    let name = points[0].label.split('/').next().unwrap_or("sweep").to_string();
    let dir = args.out.clone().unwrap_or_else(|| Path::new("data").join(&name));
    let options = SweepOptions { resume: args.resume, force: args.force, stop: stop_on_ctrl_c()? };
    let bar = progress_bar();
    let mut on_progress = progress_handler(&bar);
    let outcome = run_shard(&points, &dir, shard, &options, &mut on_progress);
    bar.finish_and_clear();
    let outcome = outcome?;
    print!("{}", verdict_table(&outcome.verdicts));
    let summary = format!(
        "shard {}/{}: {} runs done, {} skipped as complete; results in {}",
        shard.index,
        shard.count,
        outcome.ran.len(),
        outcome.skipped.len(),
        dir.display()
    );
    Ok(finish(&outcome.divergences, outcome.members, &summary, &outcome.timings))
}

/// `modewise presets`.
pub fn presets(args: PresetsArgs) -> anyhow::Result<()> {
    match args.show {
        Some(name) => print!("{}", preset_toml(&name)?),
        None => {
            for (name, line) in PRESETS {
                println!("{name:<12} {line}");
            }
        }
    }
    Ok(())
}

/// `modewise report DIR`.
pub fn report(args: ReportArgs) -> anyhow::Result<()> {
    let results = Results::load(&args.dir)?;
    let figures = results.draw(&args.dir)?;
    print!("{}", verdict_table(&results.verdicts));
    for f in figures {
        eprintln!("figure {}", f.display());
    }
    Ok(())
}
