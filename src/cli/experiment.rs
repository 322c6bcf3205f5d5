//! The experiment commands: `run` (a preset or a spec file), `presets`, `report`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use modewise_dln::{BackendKind, Divergence, StopFlag};
use modewise_experiments::resources::LONG_RUN_SECONDS;
use modewise_experiments::sweep::{MANIFEST, Shard};
use modewise_experiments::{
    CheckedExperiment, Estimate, ExperimentError, ExperimentSpec, Override, PRESETS, Progress, Results, RunOptions,
    Shadowed, Table, Timings, check_destination, execute, execute_all, preset, preset_toml, verdict_table,
};

use super::{EXIT_DIVERGED, typed};

/// Arguments of `modewise run`.
#[derive(Debug, Args, Default)]
pub struct RunArgs {
    /// A preset name (see `modewise presets`) or a spec file (`*.toml`); default `demo`.
    pub what: Option<String>,
    /// Override a spec field, e.g. `--set train.lr=0.02` or `--set variants[0].set.train.steps=100`
    /// (repeatable). A `train.*` override applies to every run: it replaces a variant's own value
    /// of that field (a note says so); an override of one variant wins over it.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = typed::<Override>())]
    pub set: Vec<Override>,
    /// Results directory (default `data/<name>`; for `demo`, one subdirectory per experiment,
    /// published together). A symbolic link is followed.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Hardware backend for every run, overriding the spec: ndarray, flex, wgpu or cuda (cuda in a
    /// build with `--features cuda`).
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
    /// Results directory (default `data/sweeps/<name>`), Hive-partitioned by run index and
    /// marked by its manifest `sweep.toml`; a directory holding anything else is refused.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Run only shard I of N (`I/N`, 0-based). Without it, Slurm's job-array variables give
    /// the shard: SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_MAX −
    /// SLURM_ARRAY_TASK_MIN + 1 (any first index, `--array=1-10` too), or SLURM_ARRAY_TASK_ID
    /// of SLURM_ARRAY_TASK_COUNT; without those, the whole sweep.
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
    /// Print the number of points, the shard sizes and the output directory, and exit without
    /// running or writing anything (to size a job array).
    #[arg(long)]
    pub dry_run: bool,
}

/// Arguments of `modewise presets`.
#[derive(Debug, Args)]
pub struct PresetsArgs {
    /// Print this preset's spec as TOML, which `modewise run FILE` runs as printed (a starting
    /// point for your own spec files; `demo`, several specs, prints as `[[experiment]]` tables).
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
    if let Some(b) = backend {
        built("--backend", b)?;
    }
    let path = Path::new(what);
    let specs = if what.ends_with(".toml") || path.is_file() {
        let text = std::fs::read_to_string(path).map_err(|e| ExperimentError::Invalid {
            field: "spec file".into(),
            rule: format!("must exist and be readable ({what}: {e})"),
        })?;
        let specs = ExperimentSpec::several_from_toml(&text, overrides)?;
        let several = specs.len() > 1;
        specs
            .into_iter()
            .map(|(spec, shadowed)| {
                note_shadowed(several.then_some(spec.name.as_str()), &shadowed);
                spec
            })
            .collect()
    } else {
        let presets = preset(what)?;
        let several = presets.len() > 1;
        let mut specs = Vec::new();
        for p in presets {
            let (spec, shadowed) = p.with_overrides_noting(overrides)?;
            note_shadowed(several.then_some(spec.name.as_str()), &shadowed);
            specs.push(spec);
        }
        specs
    };
    let on_backend = |s: ExperimentSpec| match backend {
        Some(b) => s.with_backend(b),
        None => s,
    };
    Ok(specs.into_iter().map(|s| on_backend(s).check()).collect::<Result<_, _>>()?)
}

/// Prints a note for each variant's setting that a `--set` (or a swept key) replaced: an
/// override of a `train` field applies to every run (see [`modewise_experiments::Shadowed`]).
fn note_shadowed(experiment: Option<&str>, shadowed: &[Shadowed]) {
    let prefix = experiment.map_or(String::new(), |e| format!("{e}: "));
    for s in shadowed {
        eprintln!("note: {prefix}{s}");
    }
}

/// A stop flag raised by the first Ctrl-C (SIGINT) or SIGTERM (what Slurm sends at the end of
/// a job's time): the running command then stops cleanly at its next check, in whatever phase
/// (training, overlays and verdicts, writing, figures). A second signal exits at once with
/// status 130 (SIGINT) or 143 (SIGTERM).
fn stop_on_signals() -> anyhow::Result<StopFlag> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for (signal, status) in [(SIGINT, super::EXIT_INTERRUPTED), (SIGTERM, super::EXIT_TERMINATED)] {
        signal_hook::flag::register_conditional_shutdown(signal, i32::from(status), flag.clone())?;
        signal_hook::flag::register(signal, flag.clone())?;
    }
    signal_hook::flag::register(SIGTERM, super::terminated())?;
    Ok(StopFlag::from(flag))
}

/// Warns before work estimated to take longer than an hour (at the documented single-core
/// rates of `modewise_experiments::resources`).
fn warn_if_long(what: &str, estimate: &Estimate) {
    if estimate.seconds() > LONG_RUN_SECONDS {
        eprintln!(
            "warning: {what} is estimated to take about {} on one core (training {}, theory ensembles {}); Ctrl-C \
             or SIGTERM stops it cleanly",
            estimate.describe_time(),
            modewise_experiments::resources::describe_seconds(estimate.training_seconds),
            modewise_experiments::resources::describe_seconds(estimate.overlay_seconds),
        );
    }
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
    super::set_out_given(args.out.is_some());
    let experiments = load(&what, &args.set, args.backend)?;
    let several = experiments.len() > 1;
    // Several specs run as one unit named after the preset, or the file that holds them.
    let stem = Path::new(&what).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let name = if several { stem.as_str() } else { experiments[0].name() };
    let dir = args.out.clone().unwrap_or_else(|| Path::new("data").join(name));
    // Refuse before any training when the destination is taken.
    check_destination(&dir, args.force)?;
    let mut estimate = Estimate::default();
    for e in &experiments {
        estimate.training_seconds += e.estimate().training_seconds;
        estimate.overlay_seconds += e.estimate().overlay_seconds;
    }
    warn_if_long(name, &estimate);
    let options = RunOptions { out: Some(dir.clone()), force: args.force, stop: stop_on_signals()? };
    let bar = progress_bar();
    let mut on_progress = progress_handler(&bar);
    let outcomes = if several {
        execute_all(&experiments, &dir, &options, &mut on_progress)
    } else {
        execute(&experiments[0], &options, &mut on_progress).map(|o| vec![o])
    };
    bar.finish_and_clear();
    let (mut all, mut divergences, mut members, mut timings) = (Vec::new(), Vec::new(), 0, Timings::default());
    for (experiment, outcome) in experiments.iter().zip(outcomes?) {
        for warning in &outcome.warnings {
            eprintln!("warning: {}: {warning}", experiment.name());
        }
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
        Progress::Phase { name, phase } => {
            bar.set_message(format!("{name}: {phase}"));
            if bar.is_hidden() {
                eprintln!("{name}: {phase}");
            }
        }
        Progress::Checked { points, estimate } => {
            warn_if_long(&format!("this shard's {points} runs"), estimate);
        }
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
    use modewise_experiments::sweep::{Sweep, SweepOptions, default_dir, run_shard};
    super::set_out_given(args.out.is_some());
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
    let sweep = Sweep::parse(&text, &overrides)?;
    note_shadowed(None, sweep.shadowed());
    let dir = args.out.clone().unwrap_or_else(|| default_dir(sweep.name()));
    if args.dry_run {
        print!("{}", dry_run(&sweep, shard, args.shard.is_some(), &dir));
        return Ok(0);
    }
    let options = SweepOptions { resume: args.resume, force: args.force, stop: stop_on_signals()? };
    let bar = progress_bar();
    let mut on_progress = progress_handler(&bar);
    let outcome = run_shard(&sweep, &dir, shard, &options, &mut on_progress);
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

/// What `modewise sweep --dry-run` prints: the points, the shards (this one, from `--shard` or
/// Slurm's variables, and the sizes of all `N`) and the output directory.
fn dry_run(sweep: &modewise_experiments::sweep::Sweep, shard: Shard, flag: bool, dir: &Path) -> String {
    let n = sweep.len();
    let size = |i: usize| (n + shard.count - 1 - i) / shard.count;
    let from = if flag {
        "--shard"
    } else if shard == Shard::ALL {
        "no --shard and no Slurm array: the whole sweep"
    } else {
        "Slurm's array variables"
    };
    let sizes: Vec<usize> = (0..shard.count).map(size).collect();
    let (min, max) = (sizes.iter().min().copied().unwrap_or(0), sizes.iter().max().copied().unwrap_or(0));
    let spread = if min == max { format!("{max} points each") } else { format!("{min} to {max} points each") };
    format!(
        "sweep {}: {n} points\nshard {}/{} ({from}): {} points (indices {})\nall {} shards: {spread}\nresults \
         directory: {}\n",
        sweep.name(),
        shard.index,
        shard.count,
        size(shard.index),
        if shard.count == 1 { format!("0 to {}", n - 1) } else { format!("{} + k·{}", shard.index, shard.count) },
        shard.count,
        dir.display()
    )
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

/// `modewise report DIR`: the directory must hold the four tables of a run (a sweep's
/// directory is refused: its tables are datasets); a figure that cannot be drawn is a warning.
pub fn report(args: ReportArgs) -> anyhow::Result<()> {
    let dir = &args.dir;
    let refuse = |why: String| ExperimentError::Invalid {
        field: "DIR".into(),
        rule: format!("must be a results directory written by `modewise run` (got {}: {why})", dir.display()),
    };
    if !dir.is_dir() {
        return Err(refuse(if dir.exists() { "not a directory".into() } else { "no such directory".into() }).into());
    }
    if dir.join(MANIFEST).exists() {
        return Err(refuse("a sweep's directory; read its tables as datasets".into()).into());
    }
    if let Some(missing) = Table::ALL.iter().map(|t| t.file_name()).find(|f| !dir.join(f).is_file()) {
        return Err(refuse(format!("it has no {missing}")).into());
    }
    let stop = stop_on_signals()?;
    let results = Results::load(dir)?;
    let drawn = results.draw_within(dir, &stop)?;
    print!("{}", verdict_table(&results.verdicts));
    for f in drawn.written {
        eprintln!("figure {}", f.display());
    }
    for warning in drawn.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(())
}

/// Refuses a backend this build lacks (`cuda` without the cargo feature), naming `flag`.
pub(crate) fn built(flag: &str, backend: BackendKind) -> anyhow::Result<()> {
    if !backend.built() {
        anyhow::bail!(modewise_dln::InvalidParameter::new(
            flag,
            format!(
                "this modewise was built without the {backend} backend: rebuild it with `cargo build --release --features {backend}`"
            ),
            backend.name()
        ));
    }
    Ok(())
}
