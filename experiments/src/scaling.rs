//! The scaling laws of the stationary variance across the runs of a `scaling` experiment
//! (`docs/theory.md` §7.2 and §9.5): each run's `Var m_0 / T` for the network, the exact chain
//! and the SDE (the `scaling_points` table), power-law fits of the variance against each factor
//! (`η`, `B`, `σ`, `s`, `L`) varied one at a time around a base point (the log of each level's
//! mean, weighted by its standard error: [`fit_power_law_levels`]), measured against the
//! Boltzmann law's exponents (the `scaling` table and verdicts), and the learning rate from which
//! on the SDE's and the chain's predictions leave the network's interval (breakdown verdicts).
//!
//! The three models, each on mode 0 over the late half of the run (`t ≥ t_half`):
//! - `network`: each surviving member's time average of `(m_0 − m̄)²/T`, `m̄` the pooled mean
//!   (claim 3's per-seed statistic), one value per member, t interval over the members;
//! - `chain`: the same statistic of each path of the exact per-mode SGD chain
//!   ([`CHAIN_PATHS`] paths from the run's `w₀`, on the run's late probe times), t interval
//!   over the paths;
//! - `sde`: the variance of the SDE's exact stationary (zero-flux) density over `T`, the law
//!   the refined SDE ensemble converges to: no sampling error, so no interval.

use std::collections::BTreeMap;

use modewise_theory::rng::Ensemble;
use modewise_theory::{Dynamics, EnsembleParams, ModeParams, StationaryOptions, TimeGrid};

use crate::ExperimentError;
use crate::figures::{Figure, LinePlot, Marker, Series, SeriesStyle};
use crate::finite_lr::{Breakdown, Level, ScanPoint, breakdown_lr, fit_power_law, fit_power_law_levels};
use crate::run::{RunResult, initial_strength, member_mean};
use crate::spec::CheckedExperiment;
use crate::stats::{Interval, mean, t_interval, variance};
use crate::table::{Access, Claim, ColumnDef, Expected, Quantity, Row, Table, Verdict};
use crate::verdicts::{ENSEMBLE_SIGMAS, series, within};

/// Paths of the exact chain per run.
pub const CHAIN_PATHS: usize = 2000;

/// The `η` fit keeps the points with `ηλ` at most this (the first-order regime of §7.2, where
/// the Boltzmann exponent 1 is the leading term); the breakdown scan uses every `η`.
pub const FIT_MAX_ETA_LAMBDA: f64 = 0.25;

/// The factors, as the `factor` column names them, with their verdict quantity.
pub const FACTORS: [(&str, Quantity); 5] = [
    ("lr", Quantity::ExponentLr),
    ("batch", Quantity::ExponentBatch),
    ("sigma", Quantity::ExponentSigma),
    ("s", Quantity::ExponentS),
    ("depth", Quantity::ExponentDepth),
];

/// The models, as the `model` column names them.
pub const MODELS: [&str; 3] = ["network", "chain", "sde"];

/// A row of the `scaling_points` table: one run and model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PointRow {
    /// The run.
    pub run_id: String,
    /// The variant label.
    pub label: String,
    /// The factor the run varies from the base point (`base` for the base point itself,
    /// `other` for a run that varies several).
    pub factor: String,
    /// `network`, `chain` or `sde`.
    pub model: String,
    /// Learning rate `η`.
    pub lr: f64,
    /// Batch size `B`.
    pub batch: u32,
    /// Label-noise scale `σ`.
    pub sigma: f64,
    /// The teacher's singular value `s` of mode 0.
    pub s: f64,
    /// Depth `L`.
    pub depth: u32,
    /// `ηλ`, `λ = L s^{2−2/L}`.
    pub eta_lambda: f64,
    /// The Boltzmann temperature `T = ηλσ²/(2B)`.
    pub temperature: f64,
    /// The stationary `Var m_0 / T` (mean over members or paths; null where none survived or
    /// the density does not exist).
    pub var_over_t: Option<f64>,
    /// Lower end of its 95% t interval (null for the SDE's exact value).
    pub ci_low: Option<f64>,
    /// Upper end.
    pub ci_high: Option<f64>,
    /// Members or paths behind it (1 for the SDE).
    pub n: u32,
    /// §7.2's linearised prediction of `Var/T` for this model: `1/(1 − ηλ/2 − ηλ/B)` for the
    /// network and the chain, `1/(1 − ηλ/B)` for the SDE (null where it is unstable).
    pub linear: Option<f64>,
    /// Members (network) or paths (chain) that diverged; 0 for the SDE.
    pub diverged: u32,
    /// Members or paths run (1 for the SDE).
    pub members: u32,
}

impl Row for PointRow {
    const TABLE: Table = Table::ScalingPoints;
    const COLUMNS: &'static [ColumnDef<Self>] = &[
        ColumnDef { name: "run_id", access: Access::Str(|r| &r.run_id, |r, v| r.run_id = v.into()) },
        ColumnDef { name: "label", access: Access::Str(|r| &r.label, |r, v| r.label = v.into()) },
        ColumnDef { name: "factor", access: Access::Str(|r| &r.factor, |r, v| r.factor = v.into()) },
        ColumnDef { name: "model", access: Access::Str(|r| &r.model, |r, v| r.model = v.into()) },
        ColumnDef { name: "lr", access: Access::F64(|r| r.lr, |r, v| r.lr = v) },
        ColumnDef { name: "batch", access: Access::U32(|r| r.batch, |r, v| r.batch = v) },
        ColumnDef { name: "sigma", access: Access::F64(|r| r.sigma, |r, v| r.sigma = v) },
        ColumnDef { name: "s", access: Access::F64(|r| r.s, |r, v| r.s = v) },
        ColumnDef { name: "depth", access: Access::U32(|r| r.depth, |r, v| r.depth = v) },
        ColumnDef { name: "eta_lambda", access: Access::F64(|r| r.eta_lambda, |r, v| r.eta_lambda = v) },
        ColumnDef { name: "temperature", access: Access::F64(|r| r.temperature, |r, v| r.temperature = v) },
        ColumnDef { name: "var_over_t", access: Access::OptF64(|r| r.var_over_t, |r, v| r.var_over_t = v) },
        ColumnDef { name: "ci_low", access: Access::OptF64(|r| r.ci_low, |r, v| r.ci_low = v) },
        ColumnDef { name: "ci_high", access: Access::OptF64(|r| r.ci_high, |r, v| r.ci_high = v) },
        ColumnDef { name: "n", access: Access::U32(|r| r.n, |r, v| r.n = v) },
        ColumnDef { name: "linear", access: Access::OptF64(|r| r.linear, |r, v| r.linear = v) },
        ColumnDef { name: "diverged", access: Access::U32(|r| r.diverged, |r, v| r.diverged = v) },
        ColumnDef { name: "members", access: Access::U32(|r| r.members, |r, v| r.members = v) },
    ];
}

/// A row of the `scaling` table: the power-law fit of one model's stationary variance against
/// one factor.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScalingRow {
    /// The factor (`lr`, `batch`, `sigma`, `s`, `depth`).
    pub factor: String,
    /// The model (`network`, `chain`, `sde`).
    pub model: String,
    /// The fitted exponent of `Var` in the factor.
    pub exponent: f64,
    /// Its standard error: from the scatter of the members' (paths') values within each level
    /// ([`fit_power_law_levels`]); for the SDE's exact values, from the residuals
    /// ([`fit_power_law`]).
    pub se: f64,
    /// Lower end of its 95% interval.
    pub ci_low: f64,
    /// Upper end.
    pub ci_high: f64,
    /// Members, paths or SDE points behind the fit.
    pub n: u32,
    /// Distinct factor values.
    pub levels: u32,
    /// Smallest factor value.
    pub x_min: f64,
    /// Largest.
    pub x_max: f64,
    /// The Boltzmann law's exponent: the slope of `ln T` on the same factor values (1 for `η`,
    /// −1 for `B`, 2 for `σ`, `2 − 2/L` for `s`, `1 + (2/L) ln s` about the depths for `L`).
    pub predicted: f64,
    /// The slope of §7.2's linearised variance of this model on the same values (null where
    /// it is unstable at one of them).
    pub predicted_linear: Option<f64>,
    /// The model tolerance: `|predicted_linear − predicted| / |predicted|`, the first-order
    /// finite-η change of the exponent (0 where it is null).
    pub tolerance: f64,
    /// Whether `predicted` lies in `[ci_low, ci_high]` widened by `tolerance · |predicted|`.
    pub holds: bool,
}

impl Row for ScalingRow {
    const TABLE: Table = Table::Scaling;
    const COLUMNS: &'static [ColumnDef<Self>] = &[
        ColumnDef { name: "factor", access: Access::Str(|r| &r.factor, |r, v| r.factor = v.into()) },
        ColumnDef { name: "model", access: Access::Str(|r| &r.model, |r, v| r.model = v.into()) },
        ColumnDef { name: "exponent", access: Access::F64(|r| r.exponent, |r, v| r.exponent = v) },
        ColumnDef { name: "se", access: Access::F64(|r| r.se, |r, v| r.se = v) },
        ColumnDef { name: "ci_low", access: Access::F64(|r| r.ci_low, |r, v| r.ci_low = v) },
        ColumnDef { name: "ci_high", access: Access::F64(|r| r.ci_high, |r, v| r.ci_high = v) },
        ColumnDef { name: "n", access: Access::U32(|r| r.n, |r, v| r.n = v) },
        ColumnDef { name: "levels", access: Access::U32(|r| r.levels, |r, v| r.levels = v) },
        ColumnDef { name: "x_min", access: Access::F64(|r| r.x_min, |r, v| r.x_min = v) },
        ColumnDef { name: "x_max", access: Access::F64(|r| r.x_max, |r, v| r.x_max = v) },
        ColumnDef { name: "predicted", access: Access::F64(|r| r.predicted, |r, v| r.predicted = v) },
        ColumnDef {
            name: "predicted_linear",
            access: Access::OptF64(|r| r.predicted_linear, |r, v| r.predicted_linear = v),
        },
        ColumnDef { name: "tolerance", access: Access::F64(|r| r.tolerance, |r, v| r.tolerance = v) },
        ColumnDef { name: "holds", access: Access::Bool(|r| r.holds, |r, v| r.holds = v) },
    ];
}

/// What a `scaling` experiment adds once all its runs are done.
#[derive(Debug, Clone, Default)]
pub struct Scaled {
    /// The `scaling_points` rows.
    pub points: Vec<PointRow>,
    /// The `scaling` rows.
    pub fits: Vec<ScalingRow>,
    /// The exponent and breakdown verdicts (`summary`).
    pub verdicts: Vec<Verdict>,
}

/// The factor `p` varies from `base`: `base` when none, `other` when several.
pub fn factor_of(p: &ModeParams, base: &ModeParams) -> &'static str {
    let differs = [
        ("lr", p.lr != base.lr),
        ("batch", p.batch != base.batch),
        ("sigma", p.sigma != base.sigma),
        ("s", p.s != base.s),
        ("depth", p.depth != base.depth),
    ];
    let mut varied = differs.iter().filter(|d| d.1).map(|d| d.0);
    match (varied.next(), varied.next()) {
        (None, _) => "base",
        (Some(f), None) => f,
        _ => "other",
    }
}

/// The value of `factor` in `p`.
fn factor_value(p: &ModeParams, factor: &str) -> f64 {
    match factor {
        "lr" => p.lr,
        "batch" => f64::from(p.batch),
        "sigma" => p.sigma,
        "s" => p.s,
        _ => f64::from(p.depth),
    }
}

/// Per-unit values of `(x − x̄)²/T` time-averaged over each unit's late values, `x̄` the pooled
/// mean (units with a value that is not finite left out).
fn per_unit(units: &[Vec<f64>], t: f64) -> Vec<f64> {
    let units: Vec<&Vec<f64>> = units.iter().filter(|u| !u.is_empty() && u.iter().all(|v| v.is_finite())).collect();
    let pooled: Vec<f64> = units.iter().flat_map(|u| u.iter().copied()).collect();
    if pooled.is_empty() {
        return Vec::new();
    }
    let centre = mean(&pooled);
    // A unit far out on a heavy tail (near the stability edge) can overflow: left out.
    units
        .iter()
        .map(|u| mean(&u.iter().map(|m| (m - centre).powi(2) / t).collect::<Vec<_>>()))
        .filter(|v| v.is_finite())
        .collect()
}

/// One run's measurement of one model: its point row and the per-unit values behind it.
struct Measured {
    row: PointRow,
    values: Vec<f64>,
    params: ModeParams,
}

/// The three models' points of one run (mode 0).
fn measure(
    result: &RunResult,
    base: &ModeParams,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<Vec<Measured>, ExperimentError> {
    let train = &result.plan.train;
    let p = train.params();
    let params = train.mode_params(0);
    let mode = params.check()?;
    let t = mode.temperature();
    let regime = mode.linear_regime();
    let ou = regime.ou_variance();
    let half = p.steps / 2;
    let late_steps: Vec<u64> = train.probe_steps().into_iter().filter(|&s| s >= half).collect();
    let late_times: Vec<f64> = late_steps.iter().map(|&s| s as f64 * p.lr).collect();
    // The network: the surviving members' late strengths.
    let diverged: Vec<usize> = result.divergences.iter().map(|d| d.member).collect();
    let records: Vec<_> = result.records.iter().filter(|r| !diverged.contains(&r.member)).cloned().collect();
    let late: Vec<Vec<f64>> = series(&records, 0)
        .iter()
        .map(|x| x.t.iter().zip(&x.m).filter(|(t, _)| late_times.contains(t)).map(|(_, m)| *m).collect())
        .collect();
    let network = per_unit(&late, t);
    // The chain from the run's w₀, on its late probe times.
    let sgd_mean = member_mean(&records, |r| r.probe.mode_strength[0]);
    let (w0, _) = initial_strength(train, 0, &mode, None, &sgd_mean);
    let grid = TimeGrid::from_times(late_times.clone())?;
    let ensemble = EnsembleParams { record_paths: true, ..EnsembleParams::new(CHAIN_PATHS, p.seeds[0], grid) }
        .on_streams(Ensemble::VerdictChain, 0);
    let stats = mode.ensemble_until(w0, Dynamics::Chain, &ensemble, stop)?;
    let paths = stats.final_w.len();
    let chain_units: Vec<Vec<f64>> = (0..paths)
        .map(|j| (0..stats.times.len()).filter_map(|i| stats.samples_at(i).map(|s| s[j])).collect())
        .collect();
    let chain = per_unit(&chain_units, t);
    let chain_diverged = stats.final_w.iter().filter(|w| !w.is_finite()).count();
    let sde =
        mode.stationary_density(StationaryOptions::default()).ok().map(|d| d.variance() / t).filter(|v| v.is_finite());
    let row = |model: &str, values: &[f64], linear: Option<f64>, diverged: usize, members: usize| {
        let (v, ci) = match values.len() {
            0 => (None, Interval::NONE),
            1 => (Some(values[0]), Interval::NONE),
            _ => (Some(mean(values)), t_interval(values)),
        };
        let finite = |x: f64| x.is_finite().then_some(x);
        PointRow {
            run_id: result.plan.run_id.clone(),
            label: result.plan.label.clone(),
            factor: factor_of(&params, base).into(),
            model: model.into(),
            lr: params.lr,
            batch: params.batch,
            sigma: params.sigma,
            s: params.s,
            depth: params.depth,
            eta_lambda: regime.step(),
            temperature: t,
            var_over_t: v.filter(|v| v.is_finite()),
            ci_low: finite(ci.low),
            ci_high: finite(ci.high),
            n: values.len() as u32,
            linear: linear.map(|l| l / ou).filter(|l| l.is_finite()),
            diverged: diverged as u32,
            members: members as u32,
        }
    };
    let chain_linear = regime.chain_stationary_variance();
    let sde_values: Vec<f64> = sde.into_iter().collect();
    Ok(vec![
        Measured {
            row: row("network", &network, chain_linear, diverged.len(), p.seeds.len()),
            values: network,
            params,
        },
        Measured { row: row("chain", &chain, chain_linear, chain_diverged, paths), values: chain, params },
        Measured { row: row("sde", &sde_values, regime.sde_stationary_variance(), 0, 1), values: sde_values, params },
    ])
}

/// The rule of the exponent verdicts.
pub const CRITERION_EXPONENT: &str = "pred in CI +- tol|pred|; pred: slope of ln T on the same values; CI: 95% interval of the \
     slope of ln(mean Var) per level, weighted by its standard error over members/paths (sde: OLS on exact values, CI from \
     the residuals); tol: |slope of the linearised law (7.2) - pred|/|pred|";

/// The rule of the breakdown verdicts.
pub const CRITERION_BREAKDOWN: &str = "measured = pred; measured: smallest scanned lr from which on the model's Var/T stays \
     outside the network's 95% CI +- tol|pred|; pred: the same with the CI centred on the linearised chain law (7.2); \
     inf: never in the scan; CI: [last lr where it holds, breakdown lr]";

/// The scaling analysis of an experiment's runs: points, fits and verdicts (empty where the
/// experiment has no runs).
pub fn analyse(
    experiment: &CheckedExperiment,
    results: &[RunResult],
    stop: &modewise_dln::StopFlag,
) -> Result<Scaled, ExperimentError> {
    let stop = stop.as_atomic();
    let base = experiment.spec().train.check()?.mode_params(0);
    let mut measured = Vec::new();
    for r in results {
        measured.extend(measure(r, &base, stop)?);
    }
    let name = experiment.name();
    let mut out = Scaled::default();
    for (factor, quantity) in FACTORS {
        for model in MODELS {
            if let Some(fit) = fit(&measured, factor, model) {
                out.verdicts.push(Verdict {
                    run_id: format!("{name}/{model}"),
                    claim: Claim::Scaling,
                    k: 0,
                    quantity,
                    predicted: fit.predicted,
                    measured: fit.exponent,
                    ci_low: fit.ci_low,
                    ci_high: fit.ci_high,
                    n: fit.n,
                    tolerance: fit.tolerance,
                    criterion: CRITERION_EXPONENT.into(),
                    holds: fit.holds,
                    control: false,
                    expected: Expected::Hold,
                    premise: String::new(),
                });
                out.fits.push(fit);
            }
        }
    }
    out.points = measured.into_iter().map(|m| m.row).collect();
    out.verdicts.extend(breakdown_verdicts(name, &out.points));
    Ok(out)
}

/// The fit of `model`'s variance against `factor` over the base point and the runs that vary
/// it alone (`η` only up to [`FIT_MAX_ETA_LAMBDA`]); `None` with fewer than two levels.
fn fit(measured: &[Measured], factor: &str, model: &str) -> Option<ScalingRow> {
    let chosen: Vec<&Measured> = measured
        .iter()
        .filter(|m| m.row.model == model && (m.row.factor == factor || m.row.factor == "base"))
        .filter(|m| factor != "lr" || m.row.eta_lambda <= FIT_MAX_ETA_LAMBDA)
        .collect();
    let levels: Vec<&Measured> = {
        let mut by_x: BTreeMap<u64, &Measured> = BTreeMap::new();
        for m in &chosen {
            by_x.entry(factor_value(&m.params, factor).to_bits()).or_insert(m);
        }
        by_x.into_values().collect()
    };
    if levels.len() < 2 {
        return None;
    }
    let f = if model == "sde" {
        // Exact values, one per level: the interval comes from the residuals (the curvature).
        let (x, y): (Vec<f64>, Vec<f64>) = chosen
            .iter()
            .flat_map(|m| m.values.iter().map(|v| (factor_value(&m.params, factor), v * m.row.temperature)))
            .unzip();
        fit_power_law(&x, &y)?
    } else {
        let levels: Vec<Level> = chosen
            .iter()
            .map(|m| {
                let n = m.values.len();
                let se = (variance(&m.values) / n as f64).sqrt();
                Level {
                    x: factor_value(&m.params, factor),
                    mean: mean(&m.values) * m.row.temperature,
                    se: se * m.row.temperature,
                    n,
                }
            })
            .collect();
        fit_power_law_levels(&levels)?
    };
    let xs: Vec<f64> = levels.iter().map(|m| factor_value(&m.params, factor)).collect();
    let ts: Vec<f64> = levels.iter().map(|m| m.row.temperature).collect();
    let predicted = slope(&xs, &ts);
    let linear: Option<Vec<f64>> = levels.iter().map(|m| m.row.linear.map(|l| l * m.row.temperature)).collect();
    let predicted_linear = linear.map(|l| slope(&xs, &l)).filter(|s| s.is_finite());
    let tolerance = predicted_linear.map_or(0.0, |l| (l - predicted).abs() / predicted.abs());
    let ci = Interval { low: f.ci_low, high: f.ci_high };
    Some(ScalingRow {
        factor: factor.into(),
        model: model.into(),
        exponent: f.exponent,
        se: f.se,
        ci_low: f.ci_low,
        ci_high: f.ci_high,
        n: f.n as u32,
        levels: levels.len() as u32,
        x_min: xs.iter().copied().fold(f64::INFINITY, f64::min),
        x_max: xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        predicted,
        predicted_linear,
        tolerance,
        holds: within(predicted, ci, tolerance),
    })
}

/// The OLS slope of `ln y` on `ln x` (NaN with fewer than two distinct `x` or a non-positive
/// value).
fn slope(x: &[f64], y: &[f64]) -> f64 {
    if x.len() < 2 || x.iter().chain(y).any(|v| !(*v > 0.0 && v.is_finite())) {
        return f64::NAN;
    }
    let (lx, ly): (Vec<f64>, Vec<f64>) = x.iter().zip(y).map(|(a, b)| (a.ln(), b.ln())).unzip();
    let (mx, my) = (mean(&lx), mean(&ly));
    let sxx: f64 = lx.iter().map(|a| (a - mx).powi(2)).sum();
    let sxy: f64 = lx.iter().zip(&ly).map(|(a, b)| (a - mx) * (b - my)).sum();
    if sxx > 0.0 { sxy / sxx } else { f64::NAN }
}

/// The learning-rate scan of the runs that vary `η` alone (and the base point), in `η` order:
/// per run, the network's point and `model`'s.
fn lr_scan<'a>(points: &'a [PointRow], model: &str) -> Vec<(&'a PointRow, &'a PointRow)> {
    let mut scan: Vec<(&PointRow, &PointRow)> = points
        .iter()
        .filter(|p| p.model == "network" && (p.factor == "lr" || p.factor == "base"))
        .filter_map(|n| points.iter().find(|p| p.run_id == n.run_id && p.model == model).map(|m| (n, m)))
        .collect();
    scan.sort_by(|a, b| a.0.lr.total_cmp(&b.0.lr));
    scan
}

/// The stated tolerance of `model`'s prediction, relative: 0 for the SDE's exact density, 3
/// standard errors of the chain ensemble's mean.
fn model_tolerance(p: &PointRow) -> f64 {
    match (p.model.as_str(), p.var_over_t, p.ci_low, p.ci_high) {
        ("chain", Some(v), Some(lo), Some(hi)) => ENSEMBLE_SIGMAS * (hi - lo) / (2.0 * 1.96 * v.abs()),
        _ => 0.0,
    }
}

/// The measured and the predicted breakdown of `model` on the learning-rate scan, with the
/// tolerance used (the largest of the scan's); `None` without a scan of at least two rates.
pub fn breakdown(points: &[PointRow], model: &str) -> Option<(Breakdown, Breakdown, f64, usize)> {
    let scan = lr_scan(points, model);
    if scan.len() < 2 {
        return None;
    }
    let tolerance = scan.iter().map(|(_, m)| model_tolerance(m)).fold(0.0, f64::max);
    let nan = f64::NAN;
    let measured: Vec<ScanPoint> = scan
        .iter()
        .map(|(n, m)| ScanPoint {
            lr: n.lr,
            predicted: m.var_over_t.unwrap_or(nan),
            ci_low: n.ci_low.unwrap_or(nan),
            ci_high: n.ci_high.unwrap_or(nan),
        })
        .collect();
    let predicted: Vec<ScanPoint> = scan
        .iter()
        .map(|(n, m)| {
            let half = 0.5 * (n.ci_high.unwrap_or(nan) - n.ci_low.unwrap_or(nan));
            let centre = n.linear.unwrap_or(nan);
            ScanPoint {
                lr: n.lr,
                predicted: m.var_over_t.unwrap_or(nan),
                ci_low: centre - half,
                ci_high: centre + half,
            }
        })
        .collect();
    Some((breakdown_lr(&measured, tolerance)?, breakdown_lr(&predicted, tolerance)?, tolerance, scan.len()))
}

/// The breakdown verdicts of the SDE and the chain.
fn breakdown_verdicts(name: &str, points: &[PointRow]) -> Vec<Verdict> {
    [("sde", Quantity::BreakdownLrSde), ("chain", Quantity::BreakdownLrChain)]
        .into_iter()
        .filter_map(|(model, quantity)| {
            let (measured, predicted, tolerance, n) = breakdown(points, model)?;
            let last_holding = match measured {
                Breakdown::At { last_holding, .. } => last_holding,
                Breakdown::Never { largest } => largest,
                Breakdown::Always { .. } => f64::NAN,
            };
            Some(Verdict {
                run_id: format!("{name}/{model}"),
                claim: Claim::Scaling,
                k: 0,
                quantity,
                predicted: predicted.lr(),
                measured: measured.lr(),
                ci_low: last_holding,
                ci_high: measured.lr(),
                n: n as u32,
                tolerance,
                criterion: CRITERION_BREAKDOWN.into(),
                holds: measured.lr() == predicted.lr(),
                control: false,
                expected: Expected::Hold,
                premise: String::new(),
            })
        })
        .collect()
}

// ------------------------------------------------------------------------------------------
// The figure
// ------------------------------------------------------------------------------------------

/// The points of `model` on the learning-rate scan as `(ηλ, f(row))`.
fn scan_points(points: &[PointRow], model: &str, f: impl Fn(&PointRow) -> Option<f64>) -> Vec<(f64, f64)> {
    lr_scan(points, model).into_iter().filter_map(|(_, m)| f(m).map(|v| (m.eta_lambda, v))).collect()
}

/// `scaling.svg`: the finite-η correction `Var/T − 1` against `ηλ` for the three models and
/// §7.2's linearised laws, with the breakdown learning rates and the diverged members marked,
/// then `Var` against each factor on log axes with the fitted exponents in the titles. `None`
/// without points.
pub fn figure(points: &[PointRow], fits: &[ScalingRow], verdicts: &[Verdict]) -> Option<Figure> {
    if points.is_empty() {
        return None;
    }
    let mut panels = vec![Figure::Lines(correction_panel(points, verdicts)), Figure::Lines(edge_panel(points))];
    for (factor, _) in FACTORS {
        let chosen: Vec<&PointRow> = points.iter().filter(|p| p.factor == factor || p.factor == "base").collect();
        if !chosen.iter().any(|p| p.factor == factor) {
            continue;
        }
        let value = |p: &PointRow| match factor {
            "lr" => p.lr,
            "batch" => f64::from(p.batch),
            "sigma" => p.sigma,
            "s" => p.s,
            _ => f64::from(p.depth),
        };
        let mut series: Vec<Series> = MODELS
            .iter()
            .enumerate()
            .map(|(c, model)| {
                let mut pts: Vec<(f64, f64)> = chosen
                    .iter()
                    .filter(|p| p.model == *model)
                    .filter_map(|p| p.var_over_t.map(|v| (value(p), v * p.temperature)))
                    .collect();
                pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                let label = match fits.iter().find(|f| f.factor == factor && f.model == *model) {
                    Some(f) => format!("{model}: exponent {:.3} [{:.3}, {:.3}]", f.exponent, f.ci_low, f.ci_high),
                    None => (*model).into(),
                };
                Series { label, points: pts, style: SeriesStyle::Points, color: c }
            })
            .collect();
        let mut boltzmann: Vec<(f64, f64)> =
            chosen.iter().filter(|p| p.model == "sde").map(|p| (value(p), p.temperature)).collect();
        boltzmann.sort_by(|a, b| a.0.total_cmp(&b.0));
        series.push(Series { label: "Boltzmann T".into(), points: boltzmann, style: SeriesStyle::Dashed, color: 6 });
        let predicted = fits.iter().find(|f| f.factor == factor).map_or(f64::NAN, |f| f.predicted);
        panels.push(Figure::Lines(LinePlot {
            title: format!("stationary Var against {factor} (Boltzmann exponent {predicted:.3})"),
            x_label: factor.into(),
            y_label: "stationary Var m_0".into(),
            log_x: true,
            log_y: true,
            series,
            markers: Vec::new(),
        }));
    }
    Some(Figure::Grid {
        title: "Scaling of the stationary variance and the finite-η correction".into(),
        columns: 2,
        panels,
    })
}

/// One end of a point's interval.
type Bound = fn(&PointRow) -> Option<f64>;

/// The largest `ηλ` of the correction panel: the first-order regime and a little beyond (the
/// whole scan, up to the stability edge, is the next panel's).
pub const CORRECTION_PANEL_MAX: f64 = 0.7;

/// The first panel of [`figure`]: `Var/T − 1` against `ηλ` up to [`CORRECTION_PANEL_MAX`],
/// with the breakdown learning rates.
fn correction_panel(points: &[PointRow], verdicts: &[Verdict]) -> LinePlot {
    let shown = |p: &PointRow| p.eta_lambda <= CORRECTION_PANEL_MAX;
    let minus_one = |p: &PointRow, v: Option<f64>| v.filter(|_| shown(p)).map(|v| v - 1.0);
    let mut series = Vec::new();
    for (c, model) in MODELS.iter().enumerate() {
        series.push(Series {
            label: format!("{model} Var/T - 1"),
            points: scan_points(points, model, |p| minus_one(p, p.var_over_t)),
            style: SeriesStyle::Points,
            color: c,
        });
    }
    let bounds: [(Bound, &str); 2] = [(|p| p.ci_low, "network 95% CI"), (|p| p.ci_high, "")];
    for (bound, label) in bounds {
        series.push(Series {
            label: label.into(),
            points: scan_points(points, "network", |p| minus_one(p, bound(p))),
            style: SeriesStyle::Dashed,
            color: 0,
        });
    }
    for (c, model, label) in [(1, "chain", "chain/network, linearised (7.2)"), (2, "sde", "SDE, linearised (7.2)")] {
        series.push(Series {
            label: label.into(),
            points: scan_points(points, model, |p| minus_one(p, p.linear)),
            style: SeriesStyle::Line,
            color: c,
        });
    }
    let mut markers = Vec::new();
    let eta_lambda_of =
        |lr: f64| points.iter().find(|p| p.lr == lr && (p.factor == "lr" || p.factor == "base")).map(|p| p.eta_lambda);
    for (c, quantity, model) in [(2, Quantity::BreakdownLrSde, "SDE"), (1, Quantity::BreakdownLrChain, "chain")] {
        if let Some(v) = verdicts.iter().find(|v| v.quantity == quantity)
            && let Some(x) = eta_lambda_of(v.measured).filter(|&x| x <= CORRECTION_PANEL_MAX)
        {
            markers.push(Marker {
                x,
                label: format!("{model} leaves the network's CI (lr = {})", v.measured),
                color: c,
            });
        }
    }
    LinePlot {
        title: "finite-lr correction of the stationary variance (mode 0)".into(),
        x_label: "eta lambda".into(),
        y_label: "Var/T - 1".into(),
        log_x: false,
        log_y: false,
        series,
        markers,
    }
}

/// The second panel of [`figure`]: `Var/T` on a log axis over the whole learning-rate scan,
/// with the members that diverged marked at their `ηλ`.
fn edge_panel(points: &[PointRow]) -> LinePlot {
    let mut series: Vec<Series> = MODELS
        .iter()
        .enumerate()
        .map(|(c, model)| Series {
            label: format!("{model} Var/T"),
            points: scan_points(points, model, |p| p.var_over_t),
            style: SeriesStyle::Points,
            color: c,
        })
        .collect();
    for (c, model, label) in [(1, "chain", "chain/network, linearised (7.2)"), (2, "sde", "SDE, linearised (7.2)")] {
        series.push(Series {
            label: label.into(),
            points: scan_points(points, model, |p| p.linear),
            style: SeriesStyle::Line,
            color: c,
        });
    }
    let markers = lr_scan(points, "network")
        .into_iter()
        .filter(|(n, _)| n.diverged > 0)
        .map(|(n, _)| Marker {
            x: n.eta_lambda,
            label: format!("{} of {} members diverged at lr = {}", n.diverged, n.members, n.lr),
            color: 6,
        })
        .collect();
    LinePlot {
        title: "the whole scan, to the stability edge".into(),
        x_label: "eta lambda".into(),
        y_label: "Var/T".into(),
        log_x: true,
        log_y: true,
        series,
        markers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(run: &str, factor: &str, model: &str, lr: f64, v: f64, half: f64, linear: f64) -> PointRow {
        PointRow {
            run_id: run.into(),
            factor: factor.into(),
            model: model.into(),
            lr,
            batch: 4,
            eta_lambda: 4.0 * lr,
            var_over_t: Some(v),
            ci_low: (half > 0.0).then_some(v - half),
            ci_high: (half > 0.0).then_some(v + half),
            linear: Some(linear),
            ..PointRow::default()
        }
    }

    #[test]
    fn a_run_belongs_to_the_one_factor_it_varies() {
        let base = ModeParams { depth: 2, s: 2.0, sigma: 0.5, lr: 0.01, batch: 4 };
        assert_eq!(factor_of(&base, &base), "base");
        assert_eq!(factor_of(&ModeParams { lr: 0.02, ..base }, &base), "lr");
        assert_eq!(factor_of(&ModeParams { batch: 8, ..base }, &base), "batch");
        assert_eq!(factor_of(&ModeParams { depth: 3, ..base }, &base), "depth");
        assert_eq!(factor_of(&ModeParams { depth: 3, s: 1.0, ..base }, &base), "other");
    }

    #[test]
    fn breakdown_rows_where_the_chain_and_the_sde_separate() {
        // λ = 4, B = 4: a network that follows the linearised chain law 1/(1 − ηλ/2 − ηλ/B)
        // with a 1.5% half-width, an SDE on 1/(1 − ηλ/B), and a chain on the network's law. The
        // two laws differ by ηλ/2 to first order: up to η = 0.005 (1%) the SDE is inside the
        // interval, from η = 0.01 (2% against 1.5%) on outside it.
        let lrs = [0.0025, 0.005, 0.01, 0.02, 0.04, 0.08];
        let mut points = Vec::new();
        for (i, &lr) in lrs.iter().enumerate() {
            let x = 4.0 * lr;
            let chain_law = 1.0 / (1.0 - x / 2.0 - x / 4.0);
            let sde_law = 1.0 / (1.0 - x / 4.0);
            let run = format!("r{i}");
            let factor = if i == 2 { "base" } else { "lr" };
            points.push(point(&run, factor, "network", lr, chain_law, 0.015 * chain_law, chain_law));
            points.push(point(&run, factor, "chain", lr, chain_law, 0.001 * chain_law, chain_law));
            points.push(point(&run, factor, "sde", lr, sde_law, 0.0, sde_law));
        }
        let (measured, predicted, tol, n) = breakdown(&points, "sde").unwrap();
        assert_eq!((n, tol), (6, 0.0));
        assert_eq!(measured, Breakdown::At { lr: 0.01, last_holding: 0.005 });
        assert_eq!(predicted, measured, "the network sits on the linearised law");
        let verdicts = breakdown_verdicts("x", &points);
        let sde = verdicts.iter().find(|v| v.quantity == Quantity::BreakdownLrSde).unwrap();
        assert_eq!((sde.measured, sde.predicted, sde.ci_low, sde.holds), (0.01, 0.01, 0.005, true));
        assert_eq!(sde.run_id, "x/sde");
        // The chain never leaves the interval: breakdown at infinity, as predicted; its
        // tolerance is three of its standard errors, 3 · 0.001 / 1.96.
        let chain = verdicts.iter().find(|v| v.quantity == Quantity::BreakdownLrChain).unwrap();
        assert_eq!((chain.measured, chain.predicted, chain.holds), (f64::INFINITY, f64::INFINITY, true));
        assert!((chain.tolerance - 3.0 * 0.001 / 1.96).abs() < 1e-12, "{}", chain.tolerance);
        // A network off the linearised law at the two largest rates (a finding): the SDE's
        // measured breakdown stays, the chain now breaks where the theory said it would not.
        for p in points.iter_mut().filter(|p| p.model == "network" && p.lr >= 0.04) {
            p.var_over_t = p.var_over_t.map(|v| v * 1.2);
            p.ci_low = p.ci_low.map(|v| v * 1.2);
            p.ci_high = p.ci_high.map(|v| v * 1.2);
        }
        let verdicts = breakdown_verdicts("x", &points);
        let chain = verdicts.iter().find(|v| v.quantity == Quantity::BreakdownLrChain).unwrap();
        assert_eq!((chain.measured, chain.predicted, chain.holds), (0.04, f64::INFINITY, false));
    }

    #[test]
    fn the_fit_against_the_boltzmann_law_and_its_linearised_tolerance() {
        // Exact SDE points on the linearised SDE law at B = 4, λ = 4, σ = 0.5: Var = T/(1 − ηλ/B),
        // T = ηλσ²/(2B). The Boltzmann exponent is 1; the linearised slope exceeds it by the
        // first-order correction, which the tolerance states, so the fit holds.
        let lrs = [0.0025, 0.005, 0.01, 0.02, 0.04];
        let measured: Vec<Measured> = lrs
            .iter()
            .map(|&lr| {
                let params = ModeParams { depth: 2, s: 2.0, sigma: 0.5, lr, batch: 4 };
                let t = 4.0 * lr * 0.25 / 8.0;
                let v = 1.0 / (1.0 - 4.0 * lr / 4.0);
                let row = PointRow {
                    factor: if lr == 0.01 { "base" } else { "lr" }.into(),
                    model: "sde".into(),
                    eta_lambda: 4.0 * lr,
                    temperature: t,
                    var_over_t: Some(v),
                    linear: Some(v),
                    ..PointRow::default()
                };
                Measured { row, values: vec![v], params }
            })
            .collect();
        let f = fit(&measured, "lr", "sde").unwrap();
        assert!((f.predicted - 1.0).abs() < 1e-12, "{f:?}");
        assert_eq!((f.levels, f.n, f.x_min, f.x_max), (5, 5, 0.0025, 0.04));
        let linear = f.predicted_linear.unwrap();
        assert!((f.exponent - linear).abs() < 1e-12, "the points are the linearised law: {f:?}");
        assert!(linear > 1.005 && linear < 1.05, "{f:?}");
        assert!((f.tolerance - (linear - 1.0)).abs() < 1e-12);
        assert!(f.holds);
        assert!(fit(&measured, "batch", "sde").is_none(), "one level only");
        // Negative control: a variance growing as η^1.5 (Var/T off by a further √η) is told
        // apart from the Boltzmann exponent 1.
        let steeper: Vec<Measured> = measured
            .iter()
            .map(|m| {
                let v = m.row.var_over_t.unwrap() * (m.params.lr / 0.01).sqrt();
                Measured { row: PointRow { var_over_t: Some(v), ..m.row.clone() }, values: vec![v], params: m.params }
            })
            .collect();
        let g = fit(&steeper, "lr", "sde").unwrap();
        assert!((g.exponent - (linear + 0.5)).abs() < 1e-9 && !g.holds, "{g:?}");
    }
}
