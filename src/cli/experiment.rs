//! The experiment commands: `run` (a preset or a spec file), `presets`, `report`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use modewise_dln::{BackendKind, Divergence, StopFlag};
use modewise_experiments::resources::LONG_RUN_SECONDS;
use modewise_experiments::sweep::{MANIFEST, Shard};
use modewise_experiments::{
    CheckedExperiment, Drawn, Estimate, ExperimentError, ExperimentSpec, FigureFormat, Override, PRESETS, Progress,
    Results, RunOptions, Shadowed, Table, Timings, check_destination, execute, execute_all, preset, preset_toml,
    verdict_table,
};

use modewise_experiments::html;

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
    /// Replace an existing results directory (and discard the checkpoint of an unfinished run).
    #[arg(long)]
    pub force: bool,
    /// Continue an unfinished run from its checkpoint (written every `train.checkpoint_every`
    /// steps into `.NAME.checkpoint` beside the results directory): the same spec and flags
    /// give the results of an uninterrupted run, bit for bit.
    #[arg(long, conflicts_with = "force")]
    pub resume: bool,
    /// The figures' formats besides SVG (always written: report.html inlines it): svg, png or
    /// pdf, comma-separated or repeated (e.g. `--format png,pdf`).
    #[arg(long = "format", value_name = "FORMAT", value_delimiter = ',', value_parser = typed::<FigureFormat>())]
    pub format: Vec<FigureFormat>,
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
    /// A results directory written by `modewise run` (one experiment's, or the demo's with one
    /// per experiment) or by `modewise sweep`.
    pub dir: PathBuf,
    /// The figures' formats besides SVG (always written: report.html inlines it): svg, png or
    /// pdf, comma-separated or repeated (e.g. `--format png,pdf`).
    #[arg(long = "format", value_name = "FORMAT", value_delimiter = ',', value_parser = typed::<FigureFormat>())]
    pub format: Vec<FigureFormat>,
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
    let options = RunOptions {
        out: Some(dir.clone()),
        force: args.force,
        resume: args.resume,
        stop: stop_on_signals()?,
        formats: args.format.clone(),
    };
    let reporter = Reporter::new()?;
    let mut on_progress = |p: Progress<'_>| reporter.show(p);
    let outcomes = if several {
        execute_all(&experiments, &dir, &options, &mut on_progress)
    } else {
        execute(&experiments[0], &options, &mut on_progress).map(|o| vec![o])
    };
    reporter.finish();
    let (mut all, mut divergences, mut members, mut timings) = (Vec::new(), Vec::new(), 0, Timings::default());
    let mut dose = Vec::new();
    for (experiment, outcome) in experiments.iter().zip(outcomes?) {
        for warning in &outcome.warnings {
            eprintln!("warning: {}: {warning}", experiment.name());
        }
        eprintln!("{}: results in {}", experiment.name(), outcome.dir.display());
        if let Some(page) = &outcome.report {
            eprintln!("{}: report {}", experiment.name(), page.display());
        }
        divergences.extend(outcome.divergences);
        members += outcome.members;
        timings.add(&outcome.timings);
        all.extend(outcome.verdicts);
        dose.extend(outcome.dose);
    }
    print!("{}", verdict_table(&all));
    for line in modewise_experiments::dose::limit_lines(&modewise_experiments::dose::limits(&dose)) {
        println!("{line}");
    }
    let as_expected = all.iter().filter(|v| v.as_expected()).count();
    let summary = format!("{as_expected} of {} verdicts as the theory expects", all.len());
    Ok(finish(&divergences, members, &summary, &timings))
}

/// How often plain progress lines are written when stderr is not a terminal (seconds), unless
/// `MODEWISE_PROGRESS_SECS` says otherwise.
const PROGRESS_SECS: f64 = 30.0;

/// Progress on stderr. On a terminal: a bar of each run's steps (ticked every `check_every`
/// steps and at every probe), then a spinner of its own with the elapsed time for the phases
/// after training (overlays, writing, figures). Otherwise (a batch log): a line when a run or a
/// phase starts, and between them at most one line every `MODEWISE_PROGRESS_SECS` seconds
/// (default 30; 0: at every tick) with the step reached, or, in a phase without steps, how long
/// it has run, so that a log shows life.
struct Reporter {
    bar: ProgressBar,
    plain: Option<Plain>,
}

/// The plain-line side of a [`Reporter`]: the current status, shared with a heartbeat thread
/// that repeats it when nothing was written for a whole interval.
struct Plain {
    interval: Duration,
    state: Arc<Mutex<PlainState>>,
    stop: Option<mpsc::Sender<()>>,
    heartbeat: Option<std::thread::JoinHandle<()>>,
}

/// What a [`Plain`] reporter last said, and when.
struct PlainState {
    status: String,
    since: Instant,
    last_line: Instant,
}

impl PlainState {
    /// Writes the status with the time since it began.
    fn write(&mut self) {
        eprintln!("{} ({:.0} s)", self.status, self.since.elapsed().as_secs_f64());
        self.last_line = Instant::now();
    }
}

impl Reporter {
    /// A bar on a terminal, plain lines otherwise (at the rate of `MODEWISE_PROGRESS_SECS`).
    fn new() -> anyhow::Result<Self> {
        if std::io::stderr().is_terminal() {
            return Ok(Self { bar: ProgressBar::new(1), plain: None });
        }
        let secs = match std::env::var("MODEWISE_PROGRESS_SECS") {
            Err(_) => PROGRESS_SECS,
            Ok(v) => v.trim().parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0).ok_or_else(|| {
                ExperimentError::Invalid {
                    field: "MODEWISE_PROGRESS_SECS".into(),
                    rule: format!("must be a non-negative number of seconds (got {v:?})"),
                }
            })?,
        };
        let interval = Duration::from_secs_f64(secs);
        let now = Instant::now();
        let state = Arc::new(Mutex::new(PlainState { status: String::new(), since: now, last_line: now }));
        let (stop, stopped) = mpsc::channel::<()>();
        let shared = Arc::clone(&state);
        // The heartbeat wakes at the interval (at least every second) and repeats the status
        // when nothing was written for a whole interval: a phase without ticks still shows life.
        let wake = interval.max(Duration::from_secs(1));
        let heartbeat = std::thread::spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(wake) {
                let mut s = shared.lock().unwrap_or_else(|e| e.into_inner());
                if !s.status.is_empty() && s.last_line.elapsed() >= interval {
                    s.write();
                }
            }
        });
        let plain = Plain { interval, state, stop: Some(stop), heartbeat: Some(heartbeat) };
        Ok(Self { bar: ProgressBar::hidden(), plain: Some(plain) })
    }

    /// Sets the plain status; writes it now if `now`, or if the interval has passed.
    fn say(&self, status: String, now: bool, restart: bool) {
        if let Some(p) = &self.plain {
            let mut s = p.state.lock().unwrap_or_else(|e| e.into_inner());
            s.status = status;
            if restart {
                s.since = Instant::now();
            }
            if now || s.last_line.elapsed() >= p.interval {
                s.write();
            }
        }
    }

    /// Shows one progress event.
    fn show(&self, p: Progress<'_>) {
        let bar = &self.bar;
        match p {
            Progress::RunStarted { run_id, index, total, steps } => {
                bar.disable_steady_tick();
                bar.set_style(
                    ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} steps ({eta})")
                        .expect("a valid template")
                        .progress_chars("=> "),
                );
                bar.set_length(steps);
                bar.set_position(0);
                bar.reset_elapsed();
                bar.set_message(format!("{run_id} ({}/{total})", index + 1));
                self.say(format!("run {run_id} ({}/{total}): {steps} steps", index + 1), true, true);
            }
            Progress::Step { step } => {
                bar.set_position(step);
                let (len, msg) = (bar.length().unwrap_or(0), bar.message());
                let pct = if len > 0 { 100.0 * step as f64 / len as f64 } else { 100.0 };
                self.say(format!("{msg}: step {step} of {len} ({pct:.0}%)"), false, false);
            }
            Progress::Resumed { run_id, step, done } => {
                let line = if done {
                    format!("run {run_id}: done before the interruption (from its checkpoint)")
                } else {
                    format!("run {run_id}: resumed from its checkpoint at step {step}")
                };
                bar.println(&line);
                if self.plain.is_some() {
                    self.say(line, true, false);
                }
            }
            Progress::RunDone { .. } => {}
            Progress::Phase { name, phase } => {
                // The phases after training have no steps: a spinner of their own, with the time.
                bar.set_style(ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("a valid template"));
                bar.reset_elapsed();
                bar.set_message(format!("{name}: {phase}"));
                bar.enable_steady_tick(Duration::from_millis(200));
                self.say(format!("{name}: {phase}"), true, true);
            }
            Progress::Checked { points, estimate } => {
                warn_if_long(&format!("this shard's {points} runs"), estimate);
            }
        }
    }

    /// Clears the bar and stops the heartbeat.
    fn finish(mut self) {
        self.bar.finish_and_clear();
        if let Some(p) = &mut self.plain {
            drop(p.stop.take());
            if let Some(h) = p.heartbeat.take() {
                let _ = h.join();
            }
        }
    }
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
    let reporter = Reporter::new()?;
    let mut on_progress = |p: Progress<'_>| reporter.show(p);
    let outcome = run_shard(&sweep, &dir, shard, &options, &mut on_progress);
    reporter.finish();
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

/// `modewise report DIR`: redraws the figures and prints the verdicts of one experiment's
/// results directory (its tables), a directory of them (the demo's: each experiment), or a
/// sweep's (its Hive dataset: each point's figures in `figures/run_index=<i>/`, and figures that
/// compare the points in `figures/`). Anything else is refused; a figure that cannot be drawn
/// is a warning.
pub fn report(args: ReportArgs) -> anyhow::Result<()> {
    let dir = &args.dir;
    let refuse = |why: String| ExperimentError::Invalid {
        field: "DIR".into(),
        rule: format!(
            "must be a results directory written by `modewise run` (one experiment's tables, or a directory of \
             experiments' such as the demo's) or by `modewise sweep` (got {}: {why})",
            dir.display()
        ),
    };
    if !dir.is_dir() {
        return Err(refuse(if dir.exists() { "not a directory".into() } else { "no such directory".into() }).into());
    }
    let stop = stop_on_signals()?;
    let formats = &args.format;
    let mut pages = Vec::new();
    let (verdicts, drawn) = if dir.join(MANIFEST).exists() {
        let report = modewise_experiments::sweep_report::report_sweep(dir, &stop, formats)?;
        if report.points.is_empty() {
            return Err(refuse(format!("a sweep's directory ({MANIFEST}) with no complete point yet")).into());
        }
        eprintln!("{} complete points of the sweep", report.points.len());
        pages.extend(report.page.clone());
        (report.verdicts(), report.drawn)
    } else if holds_results(dir) {
        let results = Results::load(dir)?;
        let mut drawn = results.draw_within_as(dir, &stop, formats)?;
        page(html::write_report(dir, dir, &results), &mut pages, &mut drawn);
        (results.verdicts.clone(), drawn)
    } else {
        let experiments = experiment_dirs(dir)?;
        if experiments.is_empty() {
            let (table, none) = (Table::Runs.file_name(), "no experiment's results directory");
            return Err(refuse(format!("it has no {table}, no {MANIFEST} and {none}")).into());
        }
        let (mut verdicts, mut drawn) = (Vec::new(), Drawn::default());
        let mut index = Vec::new();
        for experiment in experiments {
            let results = Results::load(&experiment)?;
            verdicts.extend(results.verdicts.iter().cloned());
            let mut d = results.draw_within_as(&experiment, &stop, formats)?;
            page(html::write_report(&experiment, &experiment, &results), &mut pages, &mut d);
            drawn.written.extend(d.written);
            drawn.converted.extend(d.converted);
            drawn.warnings.extend(d.warnings);
            index.push((experiment, results.verdicts));
        }
        page(html::write_index(dir, dir, &index), &mut pages, &mut drawn);
        (verdicts, drawn)
    };
    print!("{}", verdict_table(&verdicts));
    for f in drawn.written.iter().chain(&drawn.converted) {
        eprintln!("figure {}", f.display());
    }
    for p in &pages {
        eprintln!("report {}", p.display());
    }
    for warning in drawn.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(())
}

/// Keeps the path of a page written, or a warning where it could not be.
fn page(written: Result<PathBuf, ExperimentError>, pages: &mut Vec<PathBuf>, drawn: &mut Drawn) {
    match written {
        Ok(p) => pages.push(p),
        Err(e) => drawn.warnings.push(format!("{} was not written: {e}", html::REPORT_HTML)),
    }
}

/// Whether `dir` holds the tables of one experiment (`dose_response` is optional: results
/// written before claim 4's study lack it).
fn holds_results(dir: &Path) -> bool {
    Table::PER_RUN.iter().filter(|&&t| t != Table::DoseResponse).all(|t| t.path_in(dir).is_file())
}

/// The subdirectories of `dir` that hold one experiment's tables, sorted by name.
fn experiment_dirs(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|source| ExperimentError::Io { path: dir.to_path_buf(), source })?;
    let mut dirs: Vec<PathBuf> =
        entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_dir() && holds_results(p)).collect();
    dirs.sort();
    Ok(dirs)
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
