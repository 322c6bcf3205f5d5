//! The SDE integrated as the SDE (`docs/theory.md` §7.2.4): Euler–Maruyama ensembles at
//! `dt = η/2^j`, halving `dt` until the recorded mean and variance stop changing within their
//! statistical error.
//!
//! At `dt = η` Euler–Maruyama reproduces the exact SGD chain to `O(η)` (its stationary variance,
//! `docs/theory.md` §7.2.2) and hides the SDE's own `O(η)` difference from it; only a `dt ≪ η`
//! shows the SDE. Euler–Maruyama has weak order 1,
//! so the bias of a statistic at level `j` is about `c · dt_j` and the change from level `j − 1`
//! to `j` (`c · dt_j`) estimates the bias left at level `j`.
//!
//! **Common random numbers.** Every level drives path `p` with the same Brownian path, refined
//! by Brownian bridges: the increment `ΔW` of a step `h` splits into
//! `ΔW/2 ± (sqrt(h)/2) Z` (two independent `N(0, h/2)` increments summing to `ΔW`), with the
//! `Z` of bridge level `k` drawn from a stream of its own. Level `j` thus uses the Brownian
//! increments of level `j − 1`, refined once, and the change between levels is measured path
//! by path: its standard error is that of the paired differences, far below the ensemble's own.
//!
//! **Convergence.** Level `j ≥ 1` is accepted when, at every recorded time, the changes of the
//! mean and of the variance from level `j − 1` are at most `tolerance` standard errors of that
//! statistic at level `j` (`sqrt(var/P)` for the mean, `sqrt((m₄ − var²)/P)` for the variance,
//! `m₄` the fourth central moment). At least one halving is made; a level whose paths diverge
//! where the previous level's did not (or the other way round) is not accepted. Work is
//! bounded up front by `max_halvings`: about `P · (t_max/η) · 2^{j₀ + max_halvings + 1}`
//! path-steps in all; when no level is accepted the error names `max_halvings`.
//!
//! **Reproducibility.** Path `p` draws its level-0 increments from stream `stream_offset + p`
//! under `seed` and its bridge level `k` from the same stream under a seed derived from
//! `(seed, k)`; paths run in blocks whose statistics are merged in block order, so results do
//! not depend on the number of threads.

use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;
use serde::Serialize;

use crate::ensemble::{BLOCK, BlockOut, Run, path_rng};
use crate::{Coordinate, EnsembleParams, EnsembleStats, Mode, Result, TheoryError, UnbalancedMode};

/// A scalar Itô SDE `dX = b(X) dt + g(X) dB` with a natural time step `η`.
pub trait ScalarSde: Sync {
    /// Drift `b(x)`.
    fn sde_drift(&self, x: f64) -> f64;
    /// Noise coefficient `g(x) = sqrt(D(x))`.
    fn sde_noise(&self, x: f64) -> f64;
    /// Whether paths are reflected at 0 after each step (`x ← |x|`).
    fn reflected(&self) -> bool;
    /// The learning rate `η`: the coarsest step and the unit of recorded times.
    fn lr(&self) -> f64;
    /// Checks an initial value.
    fn check_start(&self, x0: f64) -> Result<f64>;
}

impl ScalarSde for Mode {
    /// The end-to-end drift ([`Mode::drift`] in `w`).
    fn sde_drift(&self, x: f64) -> f64 {
        self.drift(Coordinate::EndToEnd, x)
    }
    /// The end-to-end noise ([`Mode::noise`] in `w`).
    fn sde_noise(&self, x: f64) -> f64 {
        self.noise(Coordinate::EndToEnd, x)
    }
    /// Reflected at 0 for `L ≥ 2`, as [`Mode::ensemble`]'s SDE paths are.
    fn reflected(&self) -> bool {
        self.depth >= 2
    }
    fn lr(&self) -> f64 {
        self.lr
    }
    fn check_start(&self, x0: f64) -> Result<f64> {
        self.check_initial(x0)
    }
}

impl ScalarSde for UnbalancedMode {
    /// [`UnbalancedMode::drift`].
    fn sde_drift(&self, x: f64) -> f64 {
        self.drift(x)
    }
    /// [`UnbalancedMode::noise`].
    fn sde_noise(&self, x: f64) -> f64 {
        self.noise(x)
    }
    /// Reflected at 0 only when `δ = 0`.
    fn reflected(&self) -> bool {
        self.delta() == 0.0
    }
    fn lr(&self) -> f64 {
        self.mode().lr()
    }
    fn check_start(&self, x0: f64) -> Result<f64> {
        self.check_initial(x0)
    }
}

/// The most halvings a refinement may make after its first level: the one bound every caller
/// (the spec's `overlays.sde_max_halvings`, `modewise theory sde --max-halvings`) checks against.
pub const MAX_HALVINGS: u32 = 16;

/// The halvings [`RefineParams::new`] allows.
pub const DEFAULT_MAX_HALVINGS: u32 = 8;

/// Checks a halving budget against `1..=`[`MAX_HALVINGS`]; the error names `field`.
pub fn check_max_halvings(field: &'static str, halvings: u32) -> Result<()> {
    if (1..=MAX_HALVINGS).contains(&halvings) {
        Ok(())
    } else {
        Err(TheoryError::invalid(field, format!("must lie between 1 and {MAX_HALVINGS}"), halvings))
    }
}

/// Parameters of a refined SDE ensemble.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RefineParams {
    /// Paths (at least 2), seed, recording grid (in time, snapped to multiples of `η`), stream
    /// offset; `record_paths` keeps the accepted level's paths.
    pub ensemble: EnsembleParams,
    /// The first level `j₀`: the coarsest step is `η/2^{j₀}` (default 0).
    pub first_level: u32,
    /// Most halvings after the first level (1 to [`MAX_HALVINGS`]; default [`DEFAULT_MAX_HALVINGS`]).
    pub max_halvings: u32,
    /// Accepted change of a statistic between levels, in its standard errors (`> 0`; default 1).
    pub tolerance: f64,
}

impl RefineParams {
    /// Refinement of `ensemble` from `dt = η`, at most [`DEFAULT_MAX_HALVINGS`] halvings, tolerance
    /// one standard error.
    pub fn new(ensemble: EnsembleParams) -> Self {
        Self { ensemble, first_level: 0, max_halvings: DEFAULT_MAX_HALVINGS, tolerance: 1.0 }
    }
}

/// One level of the refinement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RefinementLevel {
    /// Level `j`.
    pub level: u32,
    /// Time step `η/2^j`.
    pub dt: f64,
    /// Mean of the paths per recorded time.
    pub mean: Vec<f64>,
    /// Unbiased variance of the paths per recorded time.
    pub variance: Vec<f64>,
    /// Standard error of the mean per recorded time.
    pub mean_se: Vec<f64>,
    /// Standard error of the variance per recorded time.
    pub variance_se: Vec<f64>,
    /// Change of the mean from the previous level (paired paths), per recorded time; empty at
    /// the first level.
    pub mean_change: Vec<f64>,
    /// Standard error of `mean_change` (from the paired differences).
    pub mean_change_se: Vec<f64>,
    /// Change of the variance from the previous level, per recorded time.
    pub variance_change: Vec<f64>,
    /// Standard error of `variance_change` (from the paired differences).
    pub variance_change_se: Vec<f64>,
    /// Largest `|mean_change| / mean_se` over the recorded times (0 at the first level).
    pub mean_ratio: f64,
    /// Largest `|variance_change| / variance_se` over the recorded times.
    pub variance_ratio: f64,
}

/// A converged SDE ensemble: the statistics at the accepted level, its step, and every level.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RefinedEnsemble {
    /// Statistics of the accepted level (times, steps in units of its `dt`).
    pub stats: EnsembleStats,
    /// The accepted step `η/2^j`.
    pub dt: f64,
    /// The accepted level `j`.
    pub level: u32,
    /// Every level run, coarsest first (the last is the accepted one).
    pub history: Vec<RefinementLevel>,
    /// Whether the last level met the tolerance; `false` only from [`refine_sde_or_finest`],
    /// whose result is then the finest level run.
    pub converged: bool,
}

/// Seed of the bridge normals of level `k ≥ 1` (level 0 uses `seed` itself).
fn level_seed(seed: u64, k: u32) -> u64 {
    seed ^ (u64::from(k)).wrapping_mul(0xD1B5_4A32_D192_ED03)
}

/// Runs `sde` from `x0` at `dt = η/2^j`, `j = j₀, j₀ + 1, …`, until the mean and variance stop
/// changing within `tolerance` standard errors (module documentation), and returns the
/// accepted level's statistics with the refinement history.
pub fn refine_sde(sde: &impl ScalarSde, x0: f64, params: &RefineParams) -> Result<RefinedEnsemble> {
    let refined = refine_sde_or_finest(sde, x0, params)?;
    if refined.converged {
        return Ok(refined);
    }
    let worst = refined.history.last().expect("at least two levels run");
    Err(TheoryError::invalid(
        "max_halvings",
        format!(
            "the SDE did not converge within it: from dt = {:e} to {:e} the mean changed by up to {:.2} and the \
             variance by up to {:.2} standard errors (tolerance {})",
            2.0 * worst.dt,
            worst.dt,
            worst.mean_ratio,
            worst.variance_ratio,
            params.tolerance
        ),
        params.max_halvings,
    ))
}

/// As [`refine_sde`], but when no level is accepted within `max_halvings` it returns the finest
/// level run with `converged = false` instead of an error (for overlays, which report the flag
/// rather than fail the experiment).
pub fn refine_sde_or_finest(sde: &impl ScalarSde, x0: f64, params: &RefineParams) -> Result<RefinedEnsemble> {
    sde.check_start(x0)?;
    let ens = &params.ensemble;
    if ens.paths < 2 {
        return Err(TheoryError::invalid("paths", "must be at least 2 for standard errors", ens.paths));
    }
    check_max_halvings("max_halvings", params.max_halvings)?;
    if params.first_level > 16 {
        return Err(TheoryError::invalid("first_level", "must be at most 16", params.first_level));
    }
    if params.first_level + params.max_halvings > 20 {
        return Err(TheoryError::invalid(
            "max_halvings",
            format!("first_level + max_halvings must be at most 20 (first_level = {})", params.first_level),
            params.max_halvings,
        ));
    }
    if !(params.tolerance.is_finite() && params.tolerance > 0.0) {
        return Err(TheoryError::invalid("tolerance", "must be finite and positive", params.tolerance));
    }
    let lr = sde.lr();
    // Recorded times in whole steps of η; level j records at step · 2^j.
    let coarse = ens.grid.steps(lr);
    let mut history: Vec<RefinementLevel> = Vec::new();
    let mut previous: Option<Vec<f64>> = None;
    let last = params.first_level + params.max_halvings;
    for level in params.first_level..=last {
        let (values, stats) = run_level(sde, x0, &coarse, level, ens);
        let mut record = level_record(level, lr, &stats, &values, ens.paths);
        let accepted = match &previous {
            None => false,
            Some(prev) => compare(&mut record, prev, &values, coarse.len(), ens.paths, params.tolerance),
        };
        history.push(record);
        if accepted || level == last {
            let dt = lr / 2f64.powi(level as i32);
            let factor = 1u64 << level;
            let steps: Vec<u64> = coarse.iter().map(|&n| n * factor).collect();
            let times = steps.iter().map(|&n| n as f64 * dt).collect();
            let stats = EnsembleStats { times, steps, ..stats };
            return Ok(RefinedEnsemble { stats, dt, level, history, converged: accepted });
        }
        previous = Some(values);
    }
    unreachable!("the last level returns")
}

/// Runs one level: every path's value at every recorded time (`[time][path]`, path order) and
/// the block-merged statistics.
fn run_level(
    sde: &impl ScalarSde,
    x0: f64,
    coarse: &[u64],
    level: u32,
    ens: &EnsembleParams,
) -> (Vec<f64>, EnsembleStats) {
    let p = ens.paths;
    let times = coarse.len();
    let lr = sde.lr();
    let fine = 1usize << level;
    let dt = lr / fine as f64;
    let reflect = sde.reflected();
    let outs: Vec<BlockOut> = (0..p.div_ceil(BLOCK))
        .into_par_iter()
        .map(|b| {
            let first = b * BLOCK;
            let n = BLOCK.min(p - first);
            let mut values = vec![0.0; times * n];
            let mut increments = vec![0.0; fine];
            let mut bridge = vec![0.0; fine / 2];
            for i in 0..n {
                let stream = ens.stream_offset + (first + i) as u64;
                let mut rngs: Vec<_> = (0..=level).map(|k| path_rng(level_seed(ens.seed, k), stream)).collect();
                let mut x = x0;
                let mut current = 0u64;
                for (ti, &target) in coarse.iter().enumerate() {
                    while current < target {
                        brownian_increments(&mut rngs, lr, &mut increments, &mut bridge);
                        for &dw in &increments {
                            let next = x + sde.sde_drift(x) * dt + sde.sde_noise(x) * dw;
                            x = if reflect { next.abs() } else { next };
                        }
                        current += 1;
                    }
                    values[ti * n + i] = x;
                }
            }
            BlockOut { values, paths: n }
        })
        .collect();
    let mut all = vec![0.0; times * p];
    let mut offset = 0;
    for out in &outs {
        for t in 0..times {
            all[t * p + offset..t * p + offset + out.paths]
                .copy_from_slice(&out.values[t * out.paths..(t + 1) * out.paths]);
        }
        offset += out.paths;
    }
    let run = Run { w0: x0, steps: coarse, params: ens, stop: &std::sync::atomic::AtomicBool::new(false) };
    (all, run.reduce(&outs))
}

/// The Brownian increments of one step `η` at level `increments.len() = 2^j`: the level-0
/// increment `sqrt(η) Z₀`, split `j` times by Brownian bridges (module documentation).
fn brownian_increments(rngs: &mut [crate::ensemble::PathRng], lr: f64, increments: &mut [f64], bridge: &mut [f64]) {
    let z0: f64 = StandardNormal.sample(&mut rngs[0]);
    increments[0] = lr.sqrt() * z0;
    let mut len = 1;
    let mut h = lr;
    for rng in rngs.iter_mut().skip(1) {
        let half_sd = 0.5 * h.sqrt();
        for z in bridge[..len].iter_mut() {
            *z = StandardNormal.sample(rng);
        }
        // Split in place from the back, so each increment is read before it is overwritten.
        for i in (0..len).rev() {
            let (dw, y) = (increments[i], half_sd * bridge[i]);
            increments[2 * i] = 0.5 * dw + y;
            increments[2 * i + 1] = 0.5 * dw - y;
        }
        len *= 2;
        h /= 2.0;
    }
}

/// The level's mean and variance (from the block-merged `stats`) and their standard errors
/// per recorded time (over finite values; `values` is `[time][path]`).
fn level_record(level: u32, lr: f64, stats: &EnsembleStats, values: &[f64], p: usize) -> RefinementLevel {
    let mut r = RefinementLevel {
        level,
        dt: lr / 2f64.powi(level as i32),
        mean: stats.mean.clone(),
        variance: stats.variance.clone(),
        mean_se: Vec::with_capacity(stats.mean.len()),
        variance_se: Vec::with_capacity(stats.mean.len()),
        mean_change: Vec::new(),
        mean_change_se: Vec::new(),
        variance_change: Vec::new(),
        variance_change_se: Vec::new(),
        mean_ratio: 0.0,
        variance_ratio: 0.0,
    };
    for (t, (&mean, &variance)) in stats.mean.iter().zip(&stats.variance).enumerate() {
        let row = values[t * p..(t + 1) * p].iter().filter(|v| v.is_finite());
        let n = stats.finite[t] as f64;
        let (m2, m4) = row.fold((0.0, 0.0), |(m2, m4), v| {
            let d2 = (v - mean) * (v - mean);
            (m2 + d2 / n, m4 + d2 * d2 / n)
        });
        r.mean_se.push((variance / n).sqrt());
        r.variance_se.push(((m4 - m2 * m2).max(0.0) / n).sqrt());
    }
    r
}

/// Fills the changes from the previous level into `record` and says whether they are within
/// `tolerance` standard errors at every time.
fn compare(record: &mut RefinementLevel, prev: &[f64], values: &[f64], times: usize, p: usize, tolerance: f64) -> bool {
    let mut ok = true;
    for t in 0..times {
        let (x, y) = (&values[t * p..(t + 1) * p], &prev[t * p..(t + 1) * p]);
        let finite_x = x.iter().filter(|v| v.is_finite()).count();
        let finite_y = y.iter().filter(|v| v.is_finite()).count();
        let pairs: Vec<(f64, f64)> =
            x.iter().zip(y).filter(|(a, b)| a.is_finite() && b.is_finite()).map(|(&a, &b)| (a, b)).collect();
        let n = pairs.len() as f64;
        let (mx, my) = (pairs.iter().map(|p| p.0).sum::<f64>() / n, pairs.iter().map(|p| p.1).sum::<f64>() / n);
        let d: Vec<f64> = pairs.iter().map(|(a, b)| a - b).collect();
        let u: Vec<f64> = pairs.iter().map(|(a, b)| (a - mx).powi(2) - (b - my).powi(2)).collect();
        let mean_change = d.iter().sum::<f64>() / n;
        let variance_change = u.iter().sum::<f64>() / (n - 1.0);
        let se = |v: &[f64]| {
            let m = v.iter().sum::<f64>() / n;
            (v.iter().map(|a| (a - m).powi(2)).sum::<f64>() / (n - 1.0) / n).sqrt()
        };
        record.mean_change.push(mean_change);
        record.mean_change_se.push(se(&d));
        record.variance_change.push(variance_change);
        record.variance_change_se.push(se(&u));
        let ratio = |change: f64, se: f64| if change == 0.0 { 0.0 } else { change.abs() / se };
        let rm = ratio(mean_change, record.mean_se[t]);
        let rv = ratio(variance_change, record.variance_se[t]);
        record.mean_ratio = record.mean_ratio.max(rm);
        record.variance_ratio = record.variance_ratio.max(rv);
        if finite_x != finite_y || finite_x < 2 || !(rm <= tolerance && rv <= tolerance) {
            ok = false;
        }
    }
    ok
}

impl Mode {
    /// The end-to-end SDE of this mode from `w0`, refined in `dt` until converged
    /// ([`refine_sde`]).
    pub fn sde_refined(&self, w0: f64, params: &RefineParams) -> Result<RefinedEnsemble> {
        refine_sde(self, w0, params)
    }

    /// As [`Mode::sde_refined`], but the finest level with `converged = false` when no level
    /// is accepted ([`refine_sde_or_finest`]).
    pub fn sde_refined_or_finest(&self, w0: f64, params: &RefineParams) -> Result<RefinedEnsemble> {
        refine_sde_or_finest(self, w0, params)
    }
}

impl UnbalancedMode {
    /// The `w`-SDE of this unbalanced mode (fixed `δ`) from `w0`, refined in `dt` until
    /// converged ([`refine_sde`]).
    pub fn sde_refined(&self, w0: f64, params: &RefineParams) -> Result<RefinedEnsemble> {
        refine_sde(self, w0, params)
    }
}
