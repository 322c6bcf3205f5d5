//! Running an experiment: training every run, then its theory overlays (the rows of the
//! `theory` table) and verdicts (the rows of `summary`).

use std::time::Instant;

use modewise_dln::{Divergence, InitScheme, ProbeRecord, StopFlag, TrainSpec, Trainer};
use modewise_theory::rng::Ensemble;
use modewise_theory::{
    Coordinate, DEFAULT_RHO, Dynamics, EnsembleParams, EnsembleStats, Mode, StationaryOptions, TimeGrid,
};

use crate::ExperimentError;
use crate::spec::{Analysis, CheckedExperiment, ExperimentSpec, RunPlan};
use crate::stats::{self, PerStep};
use crate::table::{Claim, Overlay, Quantity, TheoryRow, Verdict};

/// Relative margin by which a measured diffusion peak must exceed the diffusion at the learned
/// time to count as a peak (guards against sampling noise).
pub const PEAK_MARGIN: f64 = 0.05;

/// Relative tolerance on a variance estimated from `n_eff` independent samples: three standard
/// errors of a Gaussian sample variance, `3·sqrt(2/(n_eff − 1))`, and at least 10%.
pub fn variance_tolerance(n_eff: f64) -> f64 {
    (3.0 * (2.0 / (n_eff - 1.0).max(1.0)).sqrt()).max(0.1)
}

/// Tolerance on a Kolmogorov–Smirnov distance from `n_eff` independent samples: the 0.1% critical
/// value `1.95/sqrt(n_eff)`, and at least 0.05.
pub fn ks_tolerance(n_eff: f64) -> f64 {
    (1.95 / n_eff.max(1.0).sqrt()).max(0.05)
}

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
    /// A probe step was reached (once per step, not per member).
    Step {
        /// Steps taken.
        step: u64,
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
pub fn train_run(
    plan: &RunPlan,
    stop: &StopFlag,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<RunResult, ExperimentError> {
    let started = Instant::now();
    let mut trainer = Trainer::new(&plan.train)?;
    trainer.set_stop_flag(stop.clone());
    let mut records = Vec::new();
    let mut last_step = u64::MAX;
    let report = trainer.run(|r: &ProbeRecord| -> Result<(), ExperimentError> {
        if r.step != last_step {
            last_step = r.step;
            progress(Progress::Step { step: r.step });
        }
        records.push(r.clone());
        Ok(())
    })?;
    Ok(RunResult {
        plan: plan.clone(),
        records,
        divergences: report.divergences,
        wall_seconds: started.elapsed().as_secs_f64(),
        probe_seconds: report.probe_seconds,
    })
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
    /// Time spent training, probing and analysing.
    pub timings: Timings,
}

/// Trains every plan of a checked experiment and analyses it; `describe(i)` gives the progress
/// label, index and total reported for plan `i`.
pub fn train_and_analyse(
    experiment: &CheckedExperiment,
    describe: impl Fn(usize) -> (String, usize, usize),
    stop: &StopFlag,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Analysed, ExperimentError> {
    let mut out = Analysed::default();
    for (i, plan) in experiment.plans().iter().enumerate() {
        let (label, index, total) = describe(i);
        progress(Progress::RunStarted { run_id: &label, index, total, steps: plan.train.params().steps });
        let r = train_run(plan, stop, progress)?;
        out.timings.training += r.wall_seconds - r.probe_seconds;
        out.timings.probes += r.probe_seconds;
        progress(Progress::Phase { name: &label, phase: Phase::Overlays });
        let started = Instant::now();
        out.verdicts.extend(analyse(experiment.spec(), &r, &mut out.theory, stop)?);
        out.timings.overlays += started.elapsed().as_secs_f64();
        progress(Progress::RunDone { run_id: &label });
        out.results.push(r);
    }
    Ok(out)
}

/// Mean over the members of a quantity, per probe step: `(t, mean)` in step order, over the
/// members whose value is finite.
pub fn member_mean(records: &[ProbeRecord], f: impl Fn(&ProbeRecord) -> f64) -> Vec<(f64, f64)> {
    records.iter().map(|r| (r.step, r.t, f(r))).filter(|s| s.2.is_finite()).collect::<PerStep>().means()
}

/// Unbiased variance across members of a quantity, per probe step with at least two members:
/// `(t, variance)` in step order.
pub fn member_variance(records: &[ProbeRecord], f: impl Fn(&ProbeRecord) -> f64) -> Vec<(f64, f64)> {
    records.iter().map(|r| (r.step, r.t, f(r))).collect::<PerStep>().variances()
}

/// The initial end-to-end mode strength the overlays start from, and how it was chosen.
///
/// Aligned-balanced and unbalanced starts have the exact `w₀ = a₀^L` (the scale factors
/// multiply to 1). Other starts get an *effective* `w₀`: the gradient-flow start that reaches the
/// measured mean strength at the first probe where it exceeds `s_k / 10` at that same time
/// (fitted on the early trajectory, so the overlay's learning time matches; the alignment phase
/// of an unaligned start is folded into the plateau).
pub fn initial_strength(train: &TrainSpec, k: usize, mode: &Mode, mean: &[(f64, f64)]) -> (f64, String) {
    let depth = train.depth() as i32;
    let exact = |a0: &modewise_dln::ModeScale| match a0 {
        modewise_dln::ModeScale::Scalar(a) => a.powi(depth),
        modewise_dln::ModeScale::PerMode(v) => v[k].powi(depth),
    };
    match &train.params().init {
        InitScheme::AlignedBalanced { a0 } | InitScheme::Unbalanced { a0, .. } => (exact(a0), "exact a0^L".into()),
        _ => {
            let s = mode.s();
            match mean.iter().find(|&&(t, m)| t > 0.0 && m >= 0.1 * s) {
                Some(&(t_fit, m_fit)) => {
                    let w0 = fit_w0(mode, t_fit, m_fit.min(0.999 * s));
                    (w0, format!("fitted: gradient flow through m = {m_fit:.3e} at t = {t_fit:.3e}"))
                }
                None => {
                    let w0 = mean.first().map_or(1e-12, |&(_, m)| m.abs().max(1e-12));
                    (w0, "|m_k(0)| (mode never reached s/10)".into())
                }
            }
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
            overlay,
            t,
            w,
            value,
            variance,
            w0: self.w0,
            w0_rule: self.rule.into(),
        }
    }

    /// An ensemble's mean and variance per recorded time.
    fn ensemble(&self, overlay: Overlay, stats: &EnsembleStats) -> impl Iterator<Item = TheoryRow> {
        (0..stats.times.len())
            .map(move |i| self.row(overlay, Some(stats.times[i]), None, stats.mean[i], Some(stats.variance[i])))
    }
}

/// Computes the overlays of a run and its verdicts (from the members that did not diverge); a
/// requested `stop` ends the ensembles with [`modewise_theory::TheoryError::Interrupted`].
pub fn analyse(
    spec: &ExperimentSpec,
    result: &RunResult,
    theory: &mut Vec<TheoryRow>,
    stop: &StopFlag,
) -> Result<Vec<Verdict>, ExperimentError> {
    let stop = stop.as_atomic();
    let train = &result.plan.train;
    let p = train.params();
    let run_id = result.plan.run_id.as_str();
    let times: Vec<f64> = train.probe_steps().iter().map(|&s| s as f64 * p.lr).collect();
    // Verdicts and fitted starts use only the members that did not diverge (the trajectories
    // table keeps the others' records up to their divergence).
    let records: Vec<ProbeRecord> =
        result.records.iter().filter(|r| !result.divergences.iter().any(|d| d.member == r.member)).cloned().collect();
    let mut verdicts = Vec::new();
    for k in 0..train.teacher().rank() {
        let mode = train.mode_params(k).check()?;
        let mean = member_mean(&records, |r| r.probe.mode_strength[k]);
        let (w0, rule) = initial_strength(train, k, &mode, &mean);
        let start = OverlayStart { run_id, k, w0, rule: &rule };
        let o = &spec.overlays;
        if o.gradient_flow {
            for &t in &times {
                let w = mode.gf_trajectory(w0, t)?;
                theory.push(start.row(Overlay::GradientFlow, Some(t), None, w, None));
            }
        }
        let grid = TimeGrid::from_times(times.clone())?;
        // The overlays' paths: the run's first seed, on their own streams (modewise_theory::rng).
        let paths =
            |n: usize, streams: Ensemble| EnsembleParams::new(n, p.seeds[0], grid.clone()).on_streams(streams, k);
        if o.sde_paths > 0 {
            let dynamics =
                Dynamics::Sde { scheme: o.sde_scheme, coordinate: Coordinate::EndToEnd, dt: p.lr * o.sde_dt_over_lr };
            let stats = mode.ensemble_until(w0, dynamics, &paths(o.sde_paths, Ensemble::OverlaySde), stop)?;
            theory.extend(start.ensemble(Overlay::Sde, &stats));
        }
        if o.chain_paths > 0 {
            let stats =
                mode.ensemble_until(w0, Dynamics::Chain, &paths(o.chain_paths, Ensemble::OverlayChain), stop)?;
            theory.extend(start.ensemble(Overlay::Chain, &stats));
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
        match spec.analysis {
            Analysis::None => {}
            Analysis::Saddle => verdicts.extend(saddle_verdicts(run_id, k, &mode, w0, &records)?),
            Analysis::Stationary => {
                verdicts.extend(stationary_verdicts(run_id, k, &mode, density.as_ref(), train, &records))
            }
            Analysis::Relax => {
                verdicts.extend(saddle_verdicts(run_id, k, &mode, w0, &records)?);
                verdicts.extend(stationary_verdicts(run_id, k, &mode, density.as_ref(), train, &records));
            }
            Analysis::SdeVsSgd => verdicts.extend(sde_verdicts(run_id, k, &mode, w0, train, &records, stop)?),
        }
    }
    Ok(verdicts)
}

/// Claim 1 on one mode: predicted and measured peak and learned times, and whether the peak
/// comes first.
fn saddle_verdicts(
    run: &str,
    k: usize,
    mode: &Mode,
    w0: f64,
    records: &[ProbeRecord],
) -> Result<Vec<Verdict>, ExperimentError> {
    let s = mode.s();
    let mean_m = member_mean(records, |r| r.probe.mode_strength[k]);
    let mean_d = member_mean(records, |r| r.probe.mode_diffusion.get(k).copied().unwrap_or(f64::NAN));
    let t_learned_pred = mode.t_learned(w0, DEFAULT_RHO).unwrap_or(f64::NAN);
    let t_peak_pred = mode.peak_time(Coordinate::EndToEnd, w0)?.unwrap_or(f64::NAN);
    let predicted_before = mode.peak_exists(Coordinate::EndToEnd) && t_peak_pred < t_learned_pred;
    let t_learned = mean_m.iter().find(|&&(_, m)| m >= DEFAULT_RHO * s).map_or(f64::NAN, |&(t, _)| t);
    let (t_peak, d_peak) =
        mean_d.iter().fold((f64::NAN, f64::NEG_INFINITY), |acc, &(t, d)| if d > acc.1 { (t, d) } else { acc });
    let d_at_learned = mean_d.iter().find(|&&(t, _)| t >= t_learned).map_or(f64::NAN, |&(_, d)| d);
    let measured_before = t_peak < t_learned && d_peak > (1.0 + PEAK_MARGIN) * d_at_learned;
    let v = |quantity, predicted, measured, holds| {
        verdict(run, Claim::PeakBeforeLearned, k, quantity, predicted, measured, holds)
    };
    let rel = |a: f64, b: f64| (a - b).abs() <= 0.5 * b.abs();
    Ok(vec![
        v(Quantity::TLearned, t_learned_pred, t_learned, rel(t_learned, t_learned_pred)),
        v(Quantity::TPeak, t_peak_pred, t_peak, !predicted_before || rel(t_peak, t_peak_pred)),
        v(
            Quantity::PeakBeforeLearned,
            f64::from(u8::from(predicted_before)),
            f64::from(u8::from(measured_before)),
            predicted_before == measured_before,
        ),
    ])
}

/// One verdict row.
fn verdict(
    run: &str,
    claim: Claim,
    k: usize,
    quantity: Quantity,
    predicted: f64,
    measured: f64,
    holds: bool,
) -> Verdict {
    Verdict { run_id: run.into(), claim, k, quantity, predicted, measured, holds }
}

/// Claims 2 and 3 on one mode, from the second half of the run.
fn stationary_verdicts(
    run: &str,
    k: usize,
    mode: &Mode,
    density: Option<&modewise_theory::StationaryDensity>,
    train: &TrainSpec,
    records: &[ProbeRecord],
) -> Vec<Verdict> {
    let s = mode.s();
    let half = train.params().steps / 2;
    let v = |claim, quantity, predicted, measured, holds| verdict(run, claim, k, quantity, predicted, measured, holds);
    if mode.sigma() == 0.0 {
        let var = member_variance(records, |r| r.probe.mode_strength[k]);
        let late: Vec<&(f64, f64)> = var.iter().filter(|(t, _)| *t >= half as f64 * train.params().lr).collect();
        let (first, last) = match (late.first(), late.last()) {
            (Some(a), Some(b)) => (a.1, b.1),
            _ => return vec![],
        };
        let mean_last = member_mean(records, |r| r.probe.mode_strength[k]).last().map_or(f64::NAN, |x| x.1);
        vec![
            v(
                Claim::DiracLaw,
                Quantity::VarianceRatioLastToMid,
                0.0,
                last / first.max(f64::MIN_POSITIVE),
                last <= first || last < 1e-12 * s * s,
            ),
            v(Claim::DiracLaw, Quantity::MeanOverS, 1.0, mean_last / s, (mean_last / s - 1.0).abs() < 1e-2),
        ]
    } else {
        let late: Vec<&ProbeRecord> = records.iter().filter(|r| r.step >= half).collect();
        let samples: Vec<f64> = late.iter().map(|r| r.probe.mode_strength[k]).collect();
        if samples.len() < 2 {
            return vec![];
        }
        let var = stats::variance(&samples);
        let t = mode.temperature();
        // Effective number of independent samples: per member, the late span times the
        // relaxation rate L s^{2−2/L} of the flow at s, halved, at most the number of probes.
        let members = late.iter().map(|r| r.member).collect::<std::collections::BTreeSet<_>>().len() as f64;
        let p = train.params();
        let span = (p.steps - half) as f64 * p.lr;
        let rate = mode.l() * s.powf(2.0 - 2.0 / mode.l());
        let n_eff = members * (0.5 * span * rate).clamp(1.0, samples.len() as f64 / members);
        let (vt, kt) = (variance_tolerance(n_eff), ks_tolerance(n_eff));
        let mut out = vec![v(
            Claim::BoltzmannLaw,
            Quantity::VarianceOverT,
            density.map_or(1.0, |d| d.variance() / t),
            var / t,
            density.is_some_and(|d| (var - d.variance()).abs() <= vt * d.variance()),
        )];
        if let Some(d) = density {
            let ks_exact = d.ks_to_samples(&samples);
            let ks_boltz = modewise_theory::stationary::ks_statistic(&samples, |w| d.boltzmann().cdf(w));
            out.push(v(Claim::BoltzmannLaw, Quantity::KsToExactDensity, 0.0, ks_exact, ks_exact <= kt));
            out.push(v(
                Claim::BoltzmannLaw,
                Quantity::KsToBoltzmann,
                d.distances_to_boltzmann().ks,
                ks_boltz,
                ks_boltz <= kt,
            ));
        }
        out
    }
}

/// SGD against the SDE model on one mode: the across-seed mean and variance of `m_k` at the last
/// probe against the SDE ensemble's (the variance within [`variance_tolerance`] of the number of
/// members, the mean within 5% of `s`).
fn sde_verdicts(
    run: &str,
    k: usize,
    mode: &Mode,
    w0: f64,
    train: &TrainSpec,
    records: &[ProbeRecord],
    stop: &std::sync::atomic::AtomicBool,
) -> Result<Vec<Verdict>, ExperimentError> {
    let p = train.params();
    let last_t = p.steps as f64 * p.lr;
    let grid = TimeGrid::from_times(vec![0.0, last_t])?;
    let sde = mode.ensemble_until(
        w0,
        Dynamics::Sde { scheme: Default::default(), coordinate: Coordinate::EndToEnd, dt: p.lr },
        &EnsembleParams::new(4000, p.seeds[0], grid).on_streams(Ensemble::VerdictSde, k),
        stop,
    )?;
    let var = member_variance(records, |r| r.probe.mode_strength[k]).last().map_or(f64::NAN, |x| x.1);
    let last_step = records.iter().map(|r| r.step).max().unwrap_or(0);
    let n = records.iter().filter(|r| r.step == last_step).count() as f64;
    let mean = member_mean(records, |r| r.probe.mode_strength[k]).last().map_or(f64::NAN, |x| x.1);
    let (sde_mean, sde_var) = (sde.mean[1], sde.variance[1]);
    let v =
        |quantity, predicted, measured, holds| verdict(run, Claim::SdeVsSgd, k, quantity, predicted, measured, holds);
    Ok(vec![
        v(Quantity::FinalMean, sde_mean, mean, (mean - sde_mean).abs() <= 0.05 * mode.s()),
        v(Quantity::FinalVariance, sde_var, var, (var - sde_var).abs() <= variance_tolerance(n) * sde_var.max(1e-300)),
    ])
}
