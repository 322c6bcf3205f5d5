//! Running an experiment: training every run (and, where the verdicts need it, its
//! population-gradient-descent reference from the same initial weights), then its theory overlays
//! (the rows of the `theory` table) and verdicts (the rows of `summary`, `crate::verdicts`).

use std::time::Instant;

use modewise_dln::{DataSource, Divergence, InitScheme, ProbeRecord, StopFlag, TrainSpec, Trainer};
use modewise_theory::rng::Ensemble;
use modewise_theory::{
    Coordinate, Dynamics, EnsembleParams, EnsembleStats, Mode, RefineParams, RefinedEnsemble, StationaryOptions,
    TimeGrid,
};

use crate::ExperimentError;
use crate::checkpoint::{Checkpoints, Saved, Scope};
use crate::dose::DoseRow;
use crate::spec::{Analysis, CheckedExperiment, ExperimentSpec, RunPlan};
use crate::stats::PerStep;
use crate::table::{Overlay, TheoryRow, Verdict};
use crate::verdicts::{self, ENSEMBLE_PATHS, Judge, Series};

/// Progress of a running experiment.
#[derive(Debug, Clone)]
pub enum Progress<'a> {
    /// A run starts.
    RunStarted {
        /// Its id.
        run_id: &'a str,
        /// Its position and the number of runs.
        index: usize,
        /// Number of runs.
        total: usize,
        /// SGD steps it will take.
        steps: u64,
    },
    /// Training reached a step: every `check_every` steps and at every probe (once per step,
    /// not per member).
    Step {
        /// Steps taken.
        step: u64,
    },
    /// A run continues from its checkpoint (`resume`): from step `step`, or, when `done`, not
    /// at all (it had finished before the interruption).
    Resumed {
        /// Its id.
        run_id: &'a str,
        /// The step of the checkpoint.
        step: u64,
        /// Whether the run was complete.
        done: bool,
    },
    /// A run ended.
    RunDone {
        /// Its id.
        run_id: &'a str,
    },
    /// A sweep's shard was checked, before any work: its runs and what they are estimated to
    /// cost together.
    Checked {
        /// Runs in the shard.
        points: usize,
        /// Their estimate (memory: the largest run's; time: all of them).
        estimate: &'a crate::resources::Estimate,
    },
    /// A phase after training starts.
    Phase {
        /// The run (overlays) or the experiment (writing, figures) it concerns.
        name: &'a str,
        /// Which phase.
        phase: Phase,
    },
}

/// The phases of an experiment after a run's training, as [`Progress::Phase`] reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The theory overlays and verdicts of a run.
    Overlays,
    /// Writing the Parquet tables.
    Writing,
    /// Drawing the figures.
    Figures,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Overlays => "computing the theory overlays and verdicts",
            Self::Writing => "writing the tables",
            Self::Figures => "drawing the figures",
        })
    }
}

/// The measurements of one run.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// The plan it ran.
    pub plan: RunPlan,
    /// Every probe record.
    pub records: Vec<ProbeRecord>,
    /// The trainer's record of each diverged member, in the order detected.
    pub divergences: Vec<Divergence>,
    /// Wall-clock seconds of training (all members together, probes included).
    pub wall_seconds: f64,
    /// Of which probing.
    pub probe_seconds: f64,
}

impl RunResult {
    /// Each diverged member's record, beside the run id (for the final report).
    pub fn divergences_by_run(&self) -> impl Iterator<Item = (String, Divergence)> + '_ {
        self.divergences.iter().map(|d| (self.plan.run_id.clone(), d.clone()))
    }
}

/// Where an experiment's wall-clock time went, in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    /// SGD steps, data generation included.
    pub training: f64,
    /// Probes: weights read back, mode matrix, alignment, balance, drift and diffusion.
    pub probes: f64,
    /// Theory overlays (gradient flow, SDE and chain ensembles, stationary densities) and verdicts.
    pub overlays: f64,
    /// Building and writing the Parquet tables.
    pub parquet: f64,
    /// Drawing the figures.
    pub figures: f64,
}

impl Timings {
    /// The sum of the parts.
    pub fn total(&self) -> f64 {
        self.training + self.probes + self.overlays + self.parquet + self.figures
    }

    /// Adds `other`'s times to these.
    pub fn add(&mut self, other: &Timings) {
        self.training += other.training;
        self.probes += other.probes;
        self.overlays += other.overlays;
        self.parquet += other.parquet;
        self.figures += other.figures;
    }

    /// `training 5.10 s (72%), probes …`: each part with its share of the total.
    pub fn describe(&self) -> String {
        let total = self.total().max(f64::MIN_POSITIVE);
        [
            ("training", self.training),
            ("probes", self.probes),
            ("overlays and verdicts", self.overlays),
            ("parquet", self.parquet),
            ("figures", self.figures),
        ]
        .iter()
        .map(|(name, t)| format!("{name} {t:.2} s ({:.1}%)", 100.0 * t / total))
        .collect::<Vec<_>>()
        .join(", ")
    }
}

/// Trains one run, reporting progress; a requested `stop` ends it with
/// [`modewise_dln::DlnError::Interrupted`].
///
/// With `checkpoints`, it continues from the run's checkpoint where there is one (a run done
/// there is not trained again) and, when the plan's `checkpoint_every` is set, saves its state
/// every `checkpoint_every` steps and its records once done.
pub(crate) fn train_run(
    plan: &RunPlan,
    stop: &StopFlag,
    progress: &mut dyn FnMut(Progress<'_>),
    checkpoints: Option<Scope<'_>>,
) -> Result<RunResult, ExperimentError> {
    let started = Instant::now();
    let params = plan.train.params();
    let key = checkpoints.map(|c| c.key(&plan.run_id));
    let saved = match (checkpoints, &key) {
        (Some(c), Some(key)) => c.checkpoints.load(key, params)?,
        _ => None,
    };
    let (mut trainer, records, wall_before) = match saved {
        Some(Saved::Done { records, divergences, wall_seconds, probe_seconds }) => {
            progress(Progress::Resumed { run_id: &plan.run_id, step: params.steps, done: true });
            progress(Progress::Step { step: params.steps });
            return Ok(RunResult { plan: plan.clone(), records, divergences, wall_seconds, probe_seconds });
        }
        Some(Saved::Training { state, records, wall_seconds }) => {
            progress(Progress::Resumed { run_id: &plan.run_id, step: state.step(), done: false });
            (Trainer::resume(&plan.train, state)?, records, wall_seconds)
        }
        None => (Trainer::new(&plan.train)?, Vec::new(), 0.0),
    };
    trainer.set_stop_flag(stop.clone());
    let records = std::cell::RefCell::new(records);
    let save = |progress: Saved| match (checkpoints, &key) {
        (Some(c), Some(key)) if params.checkpoint_every > 0 => c.checkpoints.save(key, params, progress),
        _ => Ok(()),
    };
    // Both the probes and the ticks report steps: one channel, each step once.
    let progress = std::cell::RefCell::new(progress);
    let last_step = std::cell::Cell::new(u64::MAX);
    let report_step = |step: u64| {
        if last_step.replace(step) != step {
            (progress.borrow_mut())(Progress::Step { step });
        }
    };
    let report = trainer.run_checkpointed(
        |r: &ProbeRecord| -> Result<(), ExperimentError> {
            report_step(r.step);
            records.borrow_mut().push(r.clone());
            Ok(())
        },
        report_step,
        |state| {
            let wall_seconds = wall_before + started.elapsed().as_secs_f64();
            save(Saved::Training { state: state.clone(), records: records.borrow().clone(), wall_seconds })
        },
    )?;
    let result = RunResult {
        plan: plan.clone(),
        records: records.into_inner(),
        divergences: report.divergences,
        wall_seconds: wall_before + started.elapsed().as_secs_f64(),
        probe_seconds: report.probe_seconds,
    };
    save(Saved::Done {
        records: result.records.clone(),
        divergences: result.divergences.clone(),
        wall_seconds: result.wall_seconds,
        probe_seconds: result.probe_seconds,
    })?;
    Ok(result)
}

/// Runs, overlays and verdicts of a list of plans.
#[derive(Debug, Default)]
pub struct Analysed {
    /// One result per plan.
    pub results: Vec<RunResult>,
    /// The overlays.
    pub theory: Vec<TheoryRow>,
    /// The verdicts.
    pub verdicts: Vec<Verdict>,
    /// Claim 4's dose–response rows (`relax` only).
    pub dose: Vec<DoseRow>,
    /// Time spent training, probing and analysing.
    pub timings: Timings,
}

/// Whether a run's verdicts need its population-GD reference: claim 1 always (its times and its
/// premise come from it), the others for starts off the aligned form (their overlays' `w₀`).
pub fn needs_reference(spec: &ExperimentSpec, plan: &RunPlan) -> bool {
    match spec.analysis {
        Analysis::None => false,
        Analysis::Saddle | Analysis::Relax => true,
        Analysis::Stationary | Analysis::SdeVsSgd | Analysis::Scaling => !aligned(plan.train.params().init.clone()),
    }
}

/// Whether a start is on the aligned form, where `w₀ = a₀^L` is exact.
fn aligned(init: InitScheme) -> bool {
    matches!(init, InitScheme::AlignedBalanced { .. } | InitScheme::Unbalanced { .. })
}

/// The population-gradient-descent reference of a plan: the same parameters (seeds, streams,
/// initial weights, `η`, steps, probe schedule, `σ` and `B` for the probes) with
/// `data.source = population` (`docs/theory.md` §9.1).
pub fn reference_plan(plan: &RunPlan) -> Result<RunPlan, ExperimentError> {
    let mut params = plan.train.params().clone();
    params.data.source = DataSource::Population;
    // Clones of a deterministic step all agree: the reference has no use for them.
    params.n_clones = 0;
    Ok(RunPlan {
        run_id: format!("{}/reference", plan.run_id),
        label: plan.label.clone(),
        train: params.check()?,
        control: plan.control.clone(),
    })
}

/// Trains every plan of a checked experiment and analyses it; `describe(i)` gives the progress
/// label, index and total reported for plan `i`.
///
/// With `checkpoints`, each training run is checkpointed there (and continued from there: see
/// [`train_run`]).
pub(crate) fn train_and_analyse(
    experiment: &CheckedExperiment,
    describe: impl Fn(usize) -> (String, usize, usize),
    stop: &StopFlag,
    progress: &mut dyn FnMut(Progress<'_>),
    checkpoints: Option<&Checkpoints>,
) -> Result<Analysed, ExperimentError> {
    let scope = checkpoints.map(|checkpoints| Scope { checkpoints, experiment: experiment.name() });
    let mut out = Analysed::default();
    for (i, plan) in experiment.plans().iter().enumerate() {
        let (label, index, total) = describe(i);
        progress(Progress::RunStarted { run_id: &label, index, total, steps: plan.train.params().steps });
        let r = train_run(plan, stop, progress, scope)?;
        out.timings.training += r.wall_seconds - r.probe_seconds;
        out.timings.probes += r.probe_seconds;
        let reference = if needs_reference(experiment.spec(), plan) {
            let label = format!("{label} (population-GD reference)");
            progress(Progress::RunStarted { run_id: &label, index, total, steps: plan.train.params().steps });
            let reference = train_run(&reference_plan(plan)?, stop, progress, scope)?;
            out.timings.training += reference.wall_seconds - reference.probe_seconds;
            out.timings.probes += reference.probe_seconds;
            Some(reference)
        } else {
            None
        };
        progress(Progress::Phase { name: &label, phase: Phase::Overlays });
        let started = Instant::now();
        out.verdicts.extend(analyse(experiment.spec(), &r, reference.as_ref(), &mut out.theory, stop)?);
        if experiment.spec().analysis == Analysis::Relax {
            out.dose.extend(dose_rows(&r, reference.as_ref())?);
        }
        out.timings.overlays += started.elapsed().as_secs_f64();
        progress(Progress::RunDone { run_id: &label });
        out.results.push(r);
    }
    Ok(out)
}

/// Claim 4's dose–response rows of a run, every mode ([`crate::dose`]).
pub fn dose_rows(result: &RunResult, reference: Option<&RunResult>) -> Result<Vec<DoseRow>, ExperimentError> {
    let train = &result.plan.train;
    let p = train.params();
    let records = survivors(result);
    let reference = reference.map(survivors).unwrap_or_default();
    let input = crate::dose::DoseInput {
        run_id: &result.plan.run_id,
        label: &result.plan.label,
        init: &p.init,
        t_half: (p.steps / 2) as f64 * p.lr,
        seed: p.seeds.first().copied().unwrap_or(0),
    };
    let rank = train.teacher().rank();
    // The doses are measured on the initial weights themselves (exact moments, no sampling).
    let ctx = modewise_dln::ProbeContext { sigma: p.data.sigma, lr: p.lr, batch: p.batch, n_probe: 0 };
    let mut unused = modewise_theory::rng::path_rng(0, 0);
    let initial = (0..p.seeds.len())
        .map(|m| Ok(modewise_dln::probe(&train.initial_layers(m)?, train.teacher(), &ctx, &mut unused)))
        .collect::<Result<Vec<_>, modewise_dln::DlnError>>()?;
    let mut out = Vec::new();
    for k in 0..rank {
        let mode = train.mode_params(k).check()?;
        out.extend(crate::dose::rows(&input, k, rank, &mode, &initial, &records, &reference));
    }
    Ok(out)
}

/// Mean over the members of a quantity, per probe step: `(t, mean)` in step order, over the
/// members whose value is finite.
pub fn member_mean(records: &[ProbeRecord], f: impl Fn(&ProbeRecord) -> f64) -> Vec<(f64, f64)> {
    records.iter().map(|r| (r.step, r.t, f(r))).filter(|s| s.2.is_finite()).collect::<PerStep>().means()
}

/// The initial end-to-end mode strength the overlays start from, and the rule that chose it
/// (`docs/theory.md` §9.1). It comes from the initial state, never from the data judged:
///
/// - aligned-balanced and unbalanced starts: exact, `w₀ = a₀^L` (the unbalanced factors
///   multiply to 1);
/// - other starts with a reference: the gradient-flow start through the population-GD reference
///   mean at its first probe above `s_k/10` (the alignment phase of the deterministic dynamics
///   folded into the plateau), or `|mean m_k(0)|` of the reference if it never gets there;
/// - other starts without one (experiments without verdicts): fitted the same way on the SGD
///   mean, and labelled so.
pub fn initial_strength(
    train: &TrainSpec,
    k: usize,
    mode: &Mode,
    reference: Option<&[(f64, f64)]>,
    sgd: &[(f64, f64)],
) -> (f64, String) {
    let depth = train.depth() as i32;
    let exact = |a0: &modewise_dln::ModeScale| match a0 {
        modewise_dln::ModeScale::Scalar(a) => a.powi(depth),
        modewise_dln::ModeScale::PerMode(v) => v[k].powi(depth),
    };
    match &train.params().init {
        InitScheme::AlignedBalanced { a0 } | InitScheme::Unbalanced { a0, .. } => (exact(a0), "exact a0^L".into()),
        _ => match reference {
            Some(mean) => through(mode, mean, "reference: gradient flow through the population-GD mean"),
            None => through(mode, sgd, "fitted: gradient flow through the SGD mean (no verdict uses it)"),
        },
    }
}

/// The gradient-flow start through `mean` at its first probe above `s/10`, with its rule.
fn through(mode: &Mode, mean: &[(f64, f64)], rule: &str) -> (f64, String) {
    let s = mode.s();
    match mean.iter().find(|&&(t, m)| t > 0.0 && m >= 0.1 * s) {
        Some(&(t_fit, m_fit)) => {
            let w0 = fit_w0(mode, t_fit, m_fit.min(0.999 * s));
            (w0, format!("{rule} m = {m_fit:.3e} at t = {t_fit:.3e}"))
        }
        None => {
            let w0 = mean.first().map_or(1e-12, |&(_, m)| m.abs().max(1e-12));
            (w0, format!("{rule}: |m_k(0)| (the mean never reached s/10)"))
        }
    }
}

/// The `w₀` whose gradient flow reaches `w1` at time `t` (bisection in `ln w₀`).
fn fit_w0(mode: &Mode, t: f64, w1: f64) -> f64 {
    let time = |w0: f64| mode.gf_time(w0, w1).unwrap_or(f64::INFINITY);
    let (mut lo, mut hi) = ((1e-30f64).ln(), w1.ln());
    if time(lo.exp()) < t {
        return lo.exp();
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if time(mid.exp()) > t {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (0.5 * (lo + hi)).exp()
}

/// The start every overlay of a mode shares: the run, the mode, and `w0` with its rule.
struct OverlayStart<'a> {
    run_id: &'a str,
    k: usize,
    w0: f64,
    rule: &'a str,
}

impl OverlayStart<'_> {
    /// A row of the `theory` table from this start.
    fn row(&self, overlay: Overlay, t: Option<f64>, w: Option<f64>, value: f64, variance: Option<f64>) -> TheoryRow {
        TheoryRow {
            run_id: self.run_id.into(),
            k: self.k as u32,
            member: None,
            overlay,
            t,
            w,
            value,
            variance,
            w0: self.w0,
            w0_rule: self.rule.into(),
            dt: None,
            sde_converged: None,
        }
    }

    /// An ensemble's mean and variance per recorded time, at time step `dt`.
    fn ensemble(&self, overlay: Overlay, stats: &EnsembleStats, dt: f64) -> impl Iterator<Item = TheoryRow> {
        (0..stats.times.len()).map(move |i| TheoryRow {
            dt: Some(dt),
            ..self.row(overlay, Some(stats.times[i]), None, stats.mean[i], Some(stats.variance[i]))
        })
    }

    /// The refined SDE's mean and variance per recorded time, with its accepted `dt` and
    /// whether it converged.
    fn refined(&self, refined: &RefinedEnsemble) -> impl Iterator<Item = TheoryRow> {
        self.ensemble(Overlay::Sde, &refined.stats, refined.dt)
            .map(move |row| TheoryRow { sde_converged: Some(refined.converged), ..row })
    }

    /// One member's reference trajectory and the diffusion along it.
    fn reference(&self, s: &Series) -> impl Iterator<Item = TheoryRow> {
        let member = Some(s.member as u32);
        (0..s.t.len()).flat_map(move |i| {
            [(Overlay::Reference, s.m[i]), (Overlay::ReferenceDiffusion, s.d[i])]
                .map(|(overlay, value)| TheoryRow { member, ..self.row(overlay, Some(s.t[i]), None, value, None) })
        })
    }
}

/// Points of [`Overlay::DiffusionGradientFlow`] per run and mode.
pub const DIFFUSION_FLOW_POINTS: usize = 400;

/// `D(w)` along the gradient flow from the start's `w0`: [`DIFFUSION_FLOW_POINTS`] times,
/// `t = 0` and log-spaced from `t_end · 10⁻⁴` to `t_end` (none when `t_end` is not positive).
fn diffusion_along_flow(start: &OverlayStart<'_>, mode: &Mode, t_end: f64) -> Result<Vec<TheoryRow>, ExperimentError> {
    if !(t_end.is_finite() && t_end > 0.0) {
        return Ok(Vec::new());
    }
    let grid = TimeGrid::log_spaced(t_end * 1e-4, t_end, DIFFUSION_FLOW_POINTS - 1)?;
    grid.times()
        .iter()
        .map(|&t| {
            let w = mode.gf_trajectory(start.w0, t)?;
            let d = mode.diffusion(Coordinate::EndToEnd, w);
            Ok(start.row(Overlay::DiffusionGradientFlow, Some(t), Some(w), d, None))
        })
        .collect()
}

/// The records of the members that did not diverge.
fn survivors(result: &RunResult) -> Vec<ProbeRecord> {
    result.records.iter().filter(|r| !result.divergences.iter().any(|d| d.member == r.member)).cloned().collect()
}

/// The machine epsilon of a run's training arithmetic (`train.precision`).
pub fn training_epsilon(train: &TrainSpec) -> f64 {
    match train.params().precision {
        modewise_dln::Precision::F32 => f64::from(f32::EPSILON),
        modewise_dln::Precision::F64 => f64::EPSILON,
    }
}

/// Computes the overlays of a run and its verdicts (from the members that did not diverge);
/// `reference` is its population-GD reference, when [`needs_reference`]; a requested `stop` ends
/// the ensembles with [`modewise_theory::TheoryError::Interrupted`].
pub fn analyse(
    spec: &ExperimentSpec,
    result: &RunResult,
    reference: Option<&RunResult>,
    theory: &mut Vec<TheoryRow>,
    stop: &StopFlag,
) -> Result<Vec<Verdict>, ExperimentError> {
    let stop = stop.as_atomic();
    let train = &result.plan.train;
    let p = train.params();
    let run_id = result.plan.run_id.as_str();
    let times: Vec<f64> = train.probe_steps().iter().map(|&s| s as f64 * p.lr).collect();
    let records = survivors(result);
    let reference_records = reference.map(survivors);
    let mut verdicts = Vec::new();
    // Claim 2's decay window opens once every realisable mode is in its linear regime.
    let linear_after = (0..train.teacher().rank())
        .filter(|&k| verdicts::realisable(&p.dims, k).is_none())
        .map(|k| verdicts::linear_from(&verdicts::series(&records, k), train.teacher().s()[k]))
        .try_fold(0.0f64, |acc, t| t.map(|t| acc.max(t)));
    for k in 0..train.teacher().rank() {
        let mode = train.mode_params(k).check()?;
        let sgd = verdicts::series(&records, k);
        let refs = reference_records.as_ref().map(|r| verdicts::series(r, k));
        let sgd_mean = member_mean(&records, |r| r.probe.mode_strength[k]);
        let ref_mean = reference_records.as_ref().map(|r| member_mean(r, |r| r.probe.mode_strength[k]));
        let (w0, rule) = initial_strength(train, k, &mode, ref_mean.as_deref(), &sgd_mean);
        let start = OverlayStart { run_id, k, w0, rule: &rule };
        let o = &spec.overlays;
        if o.gradient_flow {
            for &t in &times {
                theory.push(start.row(Overlay::GradientFlow, Some(t), None, mode.gf_trajectory(w0, t)?, None));
            }
            if !aligned(p.init.clone()) && spec.analysis != Analysis::None {
                let (w0_fit, rule_fit) =
                    through(&mode, &sgd_mean, "fitted: gradient flow through the SGD mean (reported only)");
                let fitted = OverlayStart { run_id, k, w0: w0_fit, rule: &rule_fit };
                for &t in &times {
                    theory.push(fitted.row(
                        Overlay::GradientFlowFitted,
                        Some(t),
                        None,
                        mode.gf_trajectory(w0_fit, t)?,
                        None,
                    ));
                }
            }
        }
        if let Some(refs) = &refs {
            for r in refs {
                theory.extend(start.reference(r));
            }
        }
        let grid = TimeGrid::from_times(times.clone())?;
        // The overlays' paths: the run's first seed, on their own streams (modewise_theory::rng).
        let paths =
            |n: usize, streams: Ensemble| EnsembleParams::new(n, p.seeds[0], grid.clone()).on_streams(streams, k);
        if o.gradient_flow {
            theory.extend(diffusion_along_flow(&start, &mode, times.last().copied().unwrap_or(0.0))?);
        }
        if o.mean_departure {
            // Runge–Kutta steps of at most η/10: the ODE is smooth on the scale of η.
            for d in mode.mean_departure(w0, &grid, p.lr / 10.0)? {
                let w = Some(d.w_gf);
                theory.push(start.row(Overlay::MeanDepartureSde, Some(d.t), w, d.sde(), Some(d.variance)));
                theory.push(start.row(Overlay::MeanDepartureSdeNoIto, Some(d.t), w, d.sde_without_ito(), None));
                theory.push(start.row(Overlay::MeanDepartureChain, Some(d.t), w, d.chain(), None));
            }
        }
        if o.sde_paths > 0 {
            let dt = p.lr * o.sde_dt_over_lr;
            let dynamics = Dynamics::Sde { scheme: o.sde_scheme, coordinate: Coordinate::EndToEnd, dt };
            let stats = mode.ensemble_until(w0, dynamics, &paths(o.sde_paths, Ensemble::OverlaySde), stop)?;
            if o.sde_refine {
                theory.extend(start.ensemble(Overlay::SdeFixedStep, &stats, dt));
                // The same streams: level 0 of the refinement is Euler–Maruyama at dt = η on
                // the fixed-step ensemble's Brownian increments.
                let params = RefineParams {
                    max_halvings: o.sde_max_halvings,
                    ..RefineParams::new(paths(o.sde_paths, Ensemble::OverlaySde))
                };
                theory.extend(start.refined(&mode.sde_refined_or_finest(w0, &params)?));
            } else {
                theory.extend(start.ensemble(Overlay::Sde, &stats, dt));
            }
        }
        if o.chain_paths > 0 {
            let stats =
                mode.ensemble_until(w0, Dynamics::Chain, &paths(o.chain_paths, Ensemble::OverlayChain), stop)?;
            theory.extend(start.ensemble(Overlay::Chain, &stats, p.lr));
        }
        let density = if mode.sigma() > 0.0
            && (o.stationary || matches!(spec.analysis, Analysis::Stationary | Analysis::Relax))
        {
            mode.stationary_density(StationaryOptions::default()).ok()
        } else {
            None
        };
        if let (Some(d), true) = (&density, o.stationary) {
            let b = d.boltzmann();
            for (i, &w) in d.w().iter().enumerate().step_by((d.w().len() / 400).max(1)) {
                theory.push(start.row(Overlay::StationaryDensity, None, Some(w), d.density()[i], None));
                theory.push(start.row(Overlay::Boltzmann, None, Some(w), b.pdf(w), None));
            }
        }
        let judge = Judge { run_id, k, control: result.plan.control.as_ref(), seed: p.seeds[0] };
        let dims = &p.dims;
        let t_half = (p.steps / 2) as f64 * p.lr;
        let stationary = |verdicts: &mut Vec<Verdict>| {
            if mode.sigma() == 0.0 {
                let end = p.steps as f64 * p.lr;
                let residual = mode.gf_trajectory(w0, end).map_or(f64::NAN, |w| (w - mode.s()).abs() / mode.s());
                let eps = training_epsilon(train);
                verdicts.extend(verdicts::claim2(&judge, &mode, dims, &sgd, eps, linear_after, residual));
            } else {
                verdicts.extend(verdicts::claim3(&judge, &mode, dims, &sgd, density.as_ref(), t_half));
            }
        };
        let saddle = |verdicts: &mut Vec<Verdict>| {
            let refs = refs.as_deref().unwrap_or(&[]);
            verdicts.extend(verdicts::claim1(&judge, &mode, dims, &sgd, refs, p.probes.per_decade));
            verdicts.extend(verdicts::clones_verdict(&judge, &mode, dims, &p.data.source, &sgd));
        };
        match spec.analysis {
            // Its verdicts compare runs: `crate::scaling`, once every run is done.
            Analysis::None | Analysis::Scaling => {}
            Analysis::Saddle => saddle(&mut verdicts),
            Analysis::Stationary => stationary(&mut verdicts),
            Analysis::Relax => {
                saddle(&mut verdicts);
                stationary(&mut verdicts);
            }
            Analysis::SdeVsSgd => {
                let last = TimeGrid::from_times(vec![0.0, p.steps as f64 * p.lr])?;
                let ensemble = |dynamics, streams| {
                    mode.ensemble_until(
                        w0,
                        dynamics,
                        &EnsembleParams::new(ENSEMBLE_PATHS, p.seeds[0], last.clone()).on_streams(streams, k),
                        stop,
                    )
                };
                let chain = ensemble(Dynamics::Chain, Ensemble::VerdictChain)?;
                let dynamics = Dynamics::Sde {
                    scheme: o.sde_scheme,
                    coordinate: Coordinate::EndToEnd,
                    dt: p.lr * o.sde_dt_over_lr,
                };
                let sde = ensemble(dynamics, Ensemble::VerdictSde)?;
                verdicts.extend(verdicts::sde_vs_sgd(&judge, dims, &sgd, &chain, &sde));
            }
        }
    }
    Ok(verdicts)
}
