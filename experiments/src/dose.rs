//! Claim 4 as a dose–response study (`docs/theory.md` §7.4 and §9.4): each run's doses measured
//! on its initial weights, per-seed error metrics against their references with confidence
//! intervals (the `dose_response` table), and the largest dose at which each metric holds.
//!
//! Doses, per run and mode, means over the members at `t = 0`: the misalignment
//! `alignment_full` (a `misaligned` start with `dose = d` starts at `d` in every mode), the
//! imbalance `δ̂/s_k` with `δ̂ = balance/√r` (the conserved `δ = a_2² − a_1²` of every mode of
//! an aligned unbalanced start of depth 2 with a scalar `a₀`) and the scale `σ_k(W)/s_k` (the
//! network's own singular value; rotating the frames leaves it unchanged).
//!
//! Metrics, each a relative error per seed, `(measured − reference)/reference`, with a t interval
//! over the seeds:
//! - `w_at_peak`, `d_max`: the strength at the largest diffusion before learning and that
//!   diffusion, against the balanced theory's `w_peak` and `D(w_peak)` (`reference = balanced`)
//!   and, for an unbalanced start of depth 2, against the δ-theory's (`reference = delta`);
//! - `t_learned`, `t_peak`: the times, against the same member's population-GD reference from the
//!   same initial weights (`reference = population-gd`), no fitting;
//! - `variance_over_t`: the late-window `Var m_k / T` (claim 3's per-seed statistic) against the
//!   exact density's (balanced, or the δ-theory's), times the chain's finite-η factor;
//! - `ks_to_density`: not a relative error but the Kolmogorov–Smirnov distance of the late-window
//!   samples of every seed, pooled, to the exact density's CDF (balanced, or the δ-theory's), with
//!   an expanded percentile bootstrap interval over the seeds; its tolerance is
//!   [`KS_MODEL_TOLERANCE`] plus the KS law's 0.1% critical value `1.95/√n_eff` at the effective
//!   sample size (claim 3's), so it differs from run to run.
//!
//! A row holds when its interval, widened by the row's tolerance, contains 0.

use std::collections::BTreeMap;

use modewise_dln::{InitScheme, Probe, ProbeRecord};
use modewise_theory::rng::Stream;
use modewise_theory::{Coordinate, DEFAULT_RHO, Mode, StationaryDensity, StationaryOptions, UnbalancedMode};

use crate::stats::{Interval, bootstrap, mean, t_interval};
use crate::table::{Access, ColumnDef, Row, Table};
use crate::verdicts::{self, Series, chain_over_sde};

/// The stated model tolerance of each metric, as a relative error (`docs/theory.md` §9.4).
/// For `ks_to_density`, the model part of an absolute distance: each row adds the sampling part
/// (see [`KS_MODEL_TOLERANCE`]).
pub const TOLERANCES: [(&str, f64); 6] = [
    ("w_at_peak", 0.10),
    ("d_max", 0.15),
    ("t_learned", 0.10),
    ("t_peak", 0.15),
    ("variance_over_t", 0.15),
    ("ks_to_density", KS_MODEL_TOLERANCE),
];

/// The model part of the tolerance of `ks_to_density`: the KS distance a density may be off by
/// beyond what the finite late window explains (the 0.1% critical value `1.95/√n_eff`, added per
/// row). The exact density is the SDE's; the chain's finite-η widening (a few percent in the
/// variance at the presets' `η`) moves the CDF by well under this.
pub const KS_MODEL_TOLERANCE: f64 = 0.05;

/// Whether `metric` is an absolute distance (`ks_to_density`) rather than a relative error.
pub fn is_distance(metric: &str) -> bool {
    metric == "ks_to_density"
}

/// The first bootstrap stream number of the `ks_to_density` rows (one per reference, after
/// every verdict's stream of the mode; see [`modewise_theory::rng::Stream::Bootstrap`]).
const KS_STREAM: u64 = 1000;

/// The tolerance of `metric` (NaN for an unknown one).
pub fn tolerance(metric: &str) -> f64 {
    TOLERANCES.iter().find(|(m, _)| *m == metric).map_or(f64::NAN, |(_, t)| *t)
}

/// Doses below this count as none (a run on the other axis, or the aligned-balanced baseline).
pub const NO_DOSE: f64 = 1e-3;

/// The `dose_response` rows of the results directory `dir`: its Hive dataset
/// (`dose_response/run_index=<i>/part.parquet`, a dose experiment's), else its
/// `dose_response.parquet` (any other experiment's, empty), else none (results written before
/// claim 4's study).
pub fn read_dose_response(dir: &std::path::Path) -> Result<Vec<DoseRow>, crate::ExperimentError> {
    let flat = Table::DoseResponse.path_in(dir);
    if dir.join(Table::DoseResponse.name()).is_dir() {
        crate::io::read_partitioned(dir)
    } else if flat.is_file() {
        crate::io::read_rows(&flat)
    } else {
        Ok(Vec::new())
    }
}

/// A row of the `dose_response` table: one run, mode, metric and reference.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DoseRow {
    /// The run.
    pub run_id: String,
    /// The variant label.
    pub label: String,
    /// Mode index (0-based).
    pub k: u32,
    /// What is measured (`w_at_peak`, `d_max`, `t_learned`, `t_peak`, `variance_over_t`,
    /// `ks_to_density`).
    pub metric: String,
    /// What it is measured against (`balanced`, `delta`, `population-gd`).
    pub reference: String,
    /// Network depth `L`.
    pub depth: u32,
    /// Initial full alignment error (mean over members).
    pub dose_misalignment: f64,
    /// Initial imbalance `δ̂/s_k`, `δ̂ = balance/√r`.
    pub dose_imbalance: f64,
    /// Initial scale `σ_k(W)/s_k`.
    pub dose_scale: f64,
    /// Full alignment error at each member's diffusion peak (mean; null without a peak).
    pub alignment_at_peak: Option<f64>,
    /// Relative balance at each member's diffusion peak (mean; null without a peak).
    pub balance_at_peak: Option<f64>,
    /// Full alignment error over the late half (mean over members and probes).
    pub alignment_stationary: Option<f64>,
    /// Relative balance over the late half.
    pub balance_stationary: Option<f64>,
    /// The reference value (mean over the seeds' references).
    pub predicted: f64,
    /// The mean over seeds of the relative error (`ks_to_density`: the pooled KS distance).
    pub estimate: f64,
    /// Lower end of its 95% t interval (`ks_to_density`: bootstrap interval over seeds).
    pub ci_low: Option<f64>,
    /// Upper end.
    pub ci_high: Option<f64>,
    /// Seeds behind it.
    pub n: u32,
    /// The metric's stated tolerance (`ks_to_density`: with this run's sampling part).
    pub tolerance: f64,
    /// Whether `[ci_low − tolerance, ci_high + tolerance]` contains 0.
    pub holds: bool,
}

impl Row for DoseRow {
    const TABLE: Table = Table::DoseResponse;
    const COLUMNS: &'static [ColumnDef<Self>] = &[
        ColumnDef { name: "run_id", access: Access::Str(|r| &r.run_id, |r, v| r.run_id = v.into()) },
        ColumnDef { name: "label", access: Access::Str(|r| &r.label, |r, v| r.label = v.into()) },
        ColumnDef { name: "k", access: Access::U32(|r| r.k, |r, v| r.k = v) },
        ColumnDef { name: "metric", access: Access::Str(|r| &r.metric, |r, v| r.metric = v.into()) },
        ColumnDef { name: "reference", access: Access::Str(|r| &r.reference, |r, v| r.reference = v.into()) },
        ColumnDef { name: "depth", access: Access::U32(|r| r.depth, |r, v| r.depth = v) },
        ColumnDef {
            name: "dose_misalignment",
            access: Access::F64(|r| r.dose_misalignment, |r, v| r.dose_misalignment = v),
        },
        ColumnDef { name: "dose_imbalance", access: Access::F64(|r| r.dose_imbalance, |r, v| r.dose_imbalance = v) },
        ColumnDef { name: "dose_scale", access: Access::F64(|r| r.dose_scale, |r, v| r.dose_scale = v) },
        ColumnDef {
            name: "alignment_at_peak",
            access: Access::OptF64(|r| r.alignment_at_peak, |r, v| r.alignment_at_peak = v),
        },
        ColumnDef {
            name: "balance_at_peak",
            access: Access::OptF64(|r| r.balance_at_peak, |r, v| r.balance_at_peak = v),
        },
        ColumnDef {
            name: "alignment_stationary",
            access: Access::OptF64(|r| r.alignment_stationary, |r, v| r.alignment_stationary = v),
        },
        ColumnDef {
            name: "balance_stationary",
            access: Access::OptF64(|r| r.balance_stationary, |r, v| r.balance_stationary = v),
        },
        ColumnDef { name: "predicted", access: Access::F64(|r| r.predicted, |r, v| r.predicted = v) },
        ColumnDef { name: "estimate", access: Access::F64(|r| r.estimate, |r, v| r.estimate = v) },
        ColumnDef { name: "ci_low", access: Access::OptF64(|r| r.ci_low, |r, v| r.ci_low = v) },
        ColumnDef { name: "ci_high", access: Access::OptF64(|r| r.ci_high, |r, v| r.ci_high = v) },
        ColumnDef { name: "n", access: Access::U32(|r| r.n, |r, v| r.n = v) },
        ColumnDef { name: "tolerance", access: Access::F64(|r| r.tolerance, |r, v| r.tolerance = v) },
        ColumnDef { name: "holds", access: Access::Bool(|r| r.holds, |r, v| r.holds = v) },
    ];
}

/// `Some(x)` for a finite `x` (the tables hold no NaN: undefined is null).
fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// The members' records, each in step order.
fn by_member(records: &[ProbeRecord]) -> BTreeMap<usize, Vec<&ProbeRecord>> {
    let mut out: BTreeMap<usize, Vec<&ProbeRecord>> = BTreeMap::new();
    for r in records {
        out.entry(r.member).or_default().push(r);
    }
    out
}

/// Everything the rows of one run and mode share.
struct Context<'a> {
    run_id: &'a str,
    label: &'a str,
    k: usize,
    depth: u32,
    doses: [f64; 3],
    at_peak: [f64; 2],
    stationary: [f64; 2],
}

impl Context<'_> {
    /// The row of `metric` against `reference` from per-seed `(measured, reference)` pairs
    /// (pairs with a non-finite or zero reference are left out); `None` without any pair.
    fn row(&self, metric: &str, reference: &str, pairs: &[(f64, f64)]) -> Option<DoseRow> {
        let pairs: Vec<(f64, f64)> =
            pairs.iter().copied().filter(|(m, p)| m.is_finite() && p.is_finite() && *p != 0.0).collect();
        if pairs.is_empty() {
            return None;
        }
        let errors: Vec<f64> = pairs.iter().map(|(m, p)| (m - p) / p).collect();
        let ci = if errors.len() >= 2 { t_interval(&errors) } else { Interval::NONE };
        let predicted = mean(&pairs.iter().map(|p| p.1).collect::<Vec<_>>());
        Some(self.judged(metric, reference, predicted, mean(&errors), ci, errors.len(), tolerance(metric)))
    }

    /// The row of `metric` against `reference` from its estimate, interval, number of seeds and
    /// tolerance: it holds when `[ci.low − tol, ci.high + tol]` contains 0.
    #[allow(clippy::too_many_arguments)]
    fn judged(
        &self,
        metric: &str,
        reference: &str,
        predicted: f64,
        estimate: f64,
        ci: Interval,
        n: usize,
        tol: f64,
    ) -> DoseRow {
        DoseRow {
            run_id: self.run_id.into(),
            label: self.label.into(),
            k: self.k as u32,
            metric: metric.into(),
            reference: reference.into(),
            depth: self.depth,
            dose_misalignment: self.doses[0],
            dose_imbalance: self.doses[1],
            dose_scale: self.doses[2],
            alignment_at_peak: finite(self.at_peak[0]),
            balance_at_peak: finite(self.at_peak[1]),
            alignment_stationary: finite(self.stationary[0]),
            balance_stationary: finite(self.stationary[1]),
            predicted,
            estimate,
            ci_low: finite(ci.low),
            ci_high: finite(ci.high),
            n: n as u32,
            tolerance: tol,
            holds: ci.low - tol <= 0.0 && 0.0 <= ci.high + tol,
        }
    }
}

/// The `ks_to_density` row of the late-window samples `late` (one list per seed) against a
/// stationary density `density` of relaxation rate `rate`, over a late window of length `span`:
/// the KS distance of the pooled samples, its bootstrap interval over seeds (from `rng`), and the
/// tolerance [`KS_MODEL_TOLERANCE`] `+ 1.95/√n_eff` with claim 3's effective sample size (per
/// seed, half the span times the rate, at most its number of samples). `None` with fewer than
/// two samples.
fn ks_row(
    ctx: &Context<'_>,
    reference: &str,
    density: &StationaryDensity,
    late: &[Vec<f64>],
    (span, rate): (f64, f64),
    rng: &mut impl rand::Rng,
) -> Option<DoseRow> {
    let pooled: Vec<f64> = late.iter().flatten().copied().collect();
    if pooled.len() < 2 {
        return None;
    }
    let ks = |seeds: &[Vec<f64>]| density.ks_to_samples(&seeds.iter().flatten().copied().collect::<Vec<_>>());
    let ci = bootstrap(late, ks, rng);
    let tol = KS_MODEL_TOLERANCE + verdicts::KS_CRITICAL / verdicts::effective_samples(late, span, rate).sqrt();
    Some(ctx.judged("ks_to_density", reference, 0.0, ks(late), ci, late.len(), tol))
}

/// What the dose rows of one run need besides its records.
pub struct DoseInput<'a> {
    /// The run.
    pub run_id: &'a str,
    /// Its variant label.
    pub label: &'a str,
    /// Its initialisation.
    pub init: &'a InitScheme,
    /// Probe times at or after this are the stationary window (half the run).
    pub t_half: f64,
    /// The seed of the bootstrap streams (the run's first seed).
    pub seed: u64,
}

/// The `dose_response` rows of mode `k` (`mode` its checked parameters, `rank` the teacher's) of
/// one run: `initial` the probes of its members' initial weights, `records` its surviving
/// members' probes, `reference` those of its population-GD reference (empty without one).
pub fn rows(
    input: &DoseInput<'_>,
    k: usize,
    rank: usize,
    mode: &Mode,
    initial: &[Probe],
    records: &[ProbeRecord],
    reference: &[ProbeRecord],
) -> Vec<DoseRow> {
    let s = mode.s();
    let level = DEFAULT_RHO * s;
    let members = by_member(records);
    let at_start = |f: &dyn Fn(&Probe) -> f64| mean(&initial.iter().map(f).collect::<Vec<_>>());
    let delta = at_start(&|p| p.balance_total) / (rank as f64).sqrt();
    let doses = [
        at_start(&|p| p.alignment_full),
        delta / s,
        at_start(&|p| p.singular_values.get(k).copied().unwrap_or(f64::NAN)) / s,
    ];
    let sgd: Vec<Series> = verdicts::series(records, k);
    let refs: Vec<Series> = verdicts::series(reference, k);
    let scans: BTreeMap<usize, verdicts::Scan> = sgd.iter().map(|x| (x.member, verdicts::scan(x, level))).collect();
    let ref_scans: BTreeMap<usize, verdicts::Scan> =
        refs.iter().map(|x| (x.member, verdicts::scan(x, level))).collect();

    // Alignment and balance at each member's peak, and over the late half.
    let (mut peak_a, mut peak_b, mut late_a, mut late_b) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (member, recs) in &members {
        if let Some((t_peak, _, _)) = scans.get(member).and_then(|sc| sc.peak) {
            let nearest = recs.iter().min_by(|a, b| (a.t - t_peak).abs().total_cmp(&(b.t - t_peak).abs()));
            if let Some(r) = nearest {
                peak_a.push(r.probe.alignment_full);
                peak_b.push(r.probe.balance_relative);
            }
        }
        for r in recs.iter().filter(|r| r.t >= input.t_half) {
            late_a.push(r.probe.alignment_full);
            late_b.push(r.probe.balance_relative);
        }
    }
    let or_nan = |v: &[f64]| if v.is_empty() { f64::NAN } else { mean(v) };
    let ctx = Context {
        run_id: input.run_id,
        label: input.label,
        k,
        depth: mode.depth(),
        doses,
        at_peak: [or_nan(&peak_a), or_nan(&peak_b)],
        stationary: [or_nan(&late_a), or_nan(&late_b)],
    };

    let peaks: Vec<(f64, f64, f64)> = scans.values().filter_map(|sc| sc.peak).collect();
    let mut out = Vec::new();
    // The references of the peak and the stationary variance: the balanced 1-D theory, and for
    // an unbalanced start of depth 2 the δ-theory (the right reduction).
    let d = |w: f64| mode.diffusion(Coordinate::EndToEnd, w);
    let balanced = mode.diffusion_peak(Coordinate::EndToEnd).map(|w| (w, d(w)));
    let unbalanced = (matches!(input.init, InitScheme::Unbalanced { .. }) && mode.depth() == 2)
        .then(|| UnbalancedMode::new(*mode, delta).ok())
        .flatten();
    let delta_peak = unbalanced.and_then(|u| u.diffusion_peak().map(|w| (w, u.diffusion(w))));
    for (name, peak) in [("balanced", balanced), ("delta", delta_peak)] {
        if let Some((w_peak, d_peak)) = peak {
            let ws: Vec<(f64, f64)> = peaks.iter().map(|p| (p.1, w_peak)).collect();
            let ds: Vec<(f64, f64)> = peaks.iter().map(|p| (p.2, d_peak)).collect();
            out.extend(ctx.row("w_at_peak", name, &ws));
            out.extend(ctx.row("d_max", name, &ds));
        }
    }
    // Times against the member's own population-GD reference.
    let paired = |f: &dyn Fn(&verdicts::Scan) -> Option<f64>| -> Vec<(f64, f64)> {
        scans.iter().filter_map(|(m, a)| Some((f(a)?, f(ref_scans.get(m)?)?))).collect()
    };
    out.extend(ctx.row("t_learned", "population-gd", &paired(&|sc| sc.t_learned)));
    out.extend(ctx.row("t_peak", "population-gd", &paired(&|sc| sc.peak.map(|p| p.0))));
    // The stationary variance over T, per seed about the pooled centre (claim 3's statistic).
    if mode.sigma() > 0.0 {
        let late: Vec<Vec<f64>> = sgd
            .iter()
            .map(|x| x.t.iter().zip(&x.m).filter(|(t, _)| **t >= input.t_half).map(|(_, m)| *m).collect::<Vec<_>>())
            .filter(|v: &Vec<f64>| v.len() >= 2)
            .collect();
        let pooled: Vec<f64> = late.iter().flatten().copied().collect();
        if !pooled.is_empty() {
            let t = mode.temperature();
            let centre = mean(&pooled);
            let per_seed: Vec<f64> =
                late.iter().map(|v| mean(&v.iter().map(|m| (m - centre).powi(2) / t).collect::<Vec<_>>())).collect();
            let factor = chain_over_sde(mode);
            let options = StationaryOptions::default();
            let span = sgd.first().and_then(|x| x.t.last()).map_or(0.0, |&end| end - input.t_half);
            let densities = [
                ("balanced", mode.stationary_density(options).ok().map(|d| (d, mode.linear_regime().rate))),
                ("delta", unbalanced.and_then(|u| Some((u.stationary_density(options).ok()?, u.rate())))),
            ];
            for (name, density) in &densities {
                if let Some((dens, _)) = density {
                    let p = dens.variance() * factor / t;
                    let pairs: Vec<(f64, f64)> = per_seed.iter().map(|&v| (v, p)).collect();
                    out.extend(ctx.row("variance_over_t", name, &pairs));
                }
            }
            // The whole law: KS of the pooled late samples, with a bootstrap over the seeds.
            for (i, (name, density)) in densities.iter().enumerate() {
                if let Some((dens, rate)) = density {
                    let stream = Stream::Bootstrap { mode: k, verdict: KS_STREAM + i as u64 };
                    out.extend(ks_row(&ctx, name, dens, &late, (span, *rate), &mut stream.rng(input.seed)));
                }
            }
        }
    }
    out
}

/// Claim 4 stated quantitatively for one metric, reference, mode, depth and scale along one dose
/// axis: the largest dose up to which every run holds, and the smallest at which one fails.
#[derive(Debug, Clone, PartialEq)]
pub struct DoseLimit {
    /// The metric.
    pub metric: String,
    /// Its reference.
    pub reference: String,
    /// The mode.
    pub k: u32,
    /// The network depth `L` of the runs.
    pub depth: u32,
    /// The scale `σ_k(W)/s_k` of the runs (rounded to 3 digits for grouping).
    pub scale: f64,
    /// `misalignment` or `imbalance`.
    pub axis: &'static str,
    /// The doses measured along the axis, ascending, with whether each holds.
    pub doses: Vec<(f64, bool)>,
    /// The largest dose up to which every measured dose holds (`None` if the smallest fails).
    pub holds_up_to: Option<f64>,
    /// The smallest dose at which it fails (`None` if it holds at every dose).
    pub fails_at: Option<f64>,
}

impl DoseLimit {
    /// Whether `row` lies on this limit's axis (same metric aside).
    fn on_axis(&self, row: &DoseRow) -> bool {
        row.reference == self.reference
            && row.k == self.k
            && row.depth == self.depth
            && ((row.dose_scale * 1000.0).round() / 1000.0 - self.scale).abs() < 1e-9
            && if self.axis == "misalignment" {
                row.dose_imbalance.abs() < NO_DOSE
            } else {
                row.dose_misalignment < NO_DOSE
            }
    }

    /// The dose of `row` along this limit's axis.
    fn dose(&self, row: &DoseRow) -> f64 {
        if self.axis == "misalignment" { row.dose_misalignment } else { row.dose_imbalance.abs() }
    }
}

/// The claim-4 limits of a set of dose rows: per metric, reference, mode, depth and scale, along
/// the misalignment axis (runs without imbalance) and the imbalance axis (runs without
/// misalignment), each with at least two doses.
pub fn limits(rows: &[DoseRow]) -> Vec<DoseLimit> {
    type Key = (String, String, u32, u32, i64, &'static str);
    let mut groups: BTreeMap<Key, Vec<(f64, bool)>> = BTreeMap::new();
    for r in rows {
        let scale = (r.dose_scale * 1000.0).round() as i64;
        let key = |axis| (r.metric.clone(), r.reference.clone(), r.k, r.depth, scale, axis);
        if r.dose_imbalance.abs() < NO_DOSE {
            groups.entry(key("misalignment")).or_default().push((r.dose_misalignment, r.holds));
        }
        if r.dose_misalignment < NO_DOSE {
            groups.entry(key("imbalance")).or_default().push((r.dose_imbalance.abs(), r.holds));
        }
    }
    groups
        .into_iter()
        .filter(|(_, v)| v.len() >= 2)
        .map(|((metric, reference, k, depth, scale, axis), mut doses)| {
            doses.sort_by(|a, b| a.0.total_cmp(&b.0));
            let fails_at = doses.iter().find(|d| !d.1).map(|d| d.0);
            let holds_up_to = doses.iter().take_while(|d| d.1).last().map(|d| d.0);
            DoseLimit { metric, reference, k, depth, scale: scale as f64 / 1000.0, axis, doses, holds_up_to, fails_at }
        })
        .collect()
}

/// The tolerance of `metric` as printed: `±10%` for a relative error, `0.05 + 1.95/√n_eff` for
/// the KS distance.
fn tolerance_text(metric: &str) -> String {
    if is_distance(metric) {
        format!("{} + {}/√n_eff", tolerance(metric), verdicts::KS_CRITICAL)
    } else {
        format!("±{:.0}%", 100.0 * tolerance(metric))
    }
}

/// One printed line per limit: `claim 4 · w_at_peak vs balanced · k = 0 · L = 2 · scale 0.163 ·
/// misalignment: within ±10% up to 0.600; fails at 0.900`.
pub fn limit_lines(limits: &[DoseLimit]) -> Vec<String> {
    limits
        .iter()
        .map(|l| {
            let tol = tolerance_text(&l.metric);
            let up_to = l.holds_up_to.map_or("at no dose".to_string(), |d| format!("up to {d:.3}"));
            let fails = l.fails_at.map_or("holds at every dose measured".to_string(), |d| format!("fails at {d:.3}"));
            format!(
                "claim 4 · {} vs {} · k = {} · L = {} · scale {:.3} · {}: within {tol} {up_to}; {fails}",
                l.metric, l.reference, l.k, l.depth, l.scale, l.axis
            )
        })
        .collect()
}

/// A closed polygon between an upper and a lower edge over the same `xs` (left to right along
/// the upper edge, back along the lower): the outline a [`SeriesStyle::Band`] fills.
///
/// [`SeriesStyle::Band`]: crate::figures::SeriesStyle::Band
fn band(edges: &[(f64, f64, f64)]) -> Vec<(f64, f64)> {
    let upper = edges.iter().map(|&(x, _, hi)| (x, hi));
    let lower = edges.iter().rev().map(|&(x, lo, _)| (x, lo));
    upper.chain(lower).collect()
}

/// The figure of one metric: a panel per reference, mode, depth, scale and axis with at least
/// two doses: the region within which a row holds shaded (`±tolerance` about 0, or `[0,
/// tolerance]` for the KS distance; the tolerance of each dose's row), the mean error against the
/// dose with its 95% interval as a band, and a marker at the first dose where it fails.
pub(crate) fn figure(rows: &[DoseRow], metric: &str) -> Option<crate::figures::Figure> {
    use crate::figures::{Figure, LinePlot, Marker, Series, SeriesStyle};
    let rows: Vec<DoseRow> = rows.iter().filter(|r| r.metric == metric).cloned().collect();
    let distance = is_distance(metric);
    let panels: Vec<Figure> = limits(&rows)
        .into_iter()
        .map(|l| {
            let mut points: Vec<&DoseRow> = rows.iter().filter(|r| l.on_axis(r)).collect();
            points.sort_by(|a, b| l.dose(a).total_cmp(&l.dose(b)));
            let series = |label: &str, pts: Vec<(f64, f64)>, style, color| Series {
                label: label.into(),
                points: pts,
                style,
                color,
            };
            let holds: Vec<(f64, f64, f64)> =
                points.iter().map(|r| (l.dose(r), if distance { 0.0 } else { -r.tolerance }, r.tolerance)).collect();
            let ci: Vec<(f64, f64, f64)> =
                points.iter().filter_map(|r| Some((l.dose(r), r.ci_low?, r.ci_high?))).collect();
            let mean: Vec<(f64, f64)> = points.iter().map(|r| (l.dose(r), r.estimate)).collect();
            let holds_label = if distance {
                format!("holds: KS ≤ {}", tolerance_text(metric))
            } else {
                format!("holds: within {}", tolerance_text(metric))
            };
            Figure::Lines(LinePlot {
                title: format!("k = {} vs {} · L = {} · scale {:.3}", l.k, l.reference, l.depth, l.scale),
                x_label: format!("{} dose", l.axis),
                y_label: if distance { format!("{metric}: KS distance") } else { format!("{metric}: relative error") },
                log_x: false,
                log_y: false,
                series: vec![
                    series(&holds_label, band(&holds), SeriesStyle::Band, 2),
                    series("95% interval", band(&ci), SeriesStyle::Band, 0),
                    series("mean over seeds", mean.clone(), SeriesStyle::Points, 0),
                    series("", mean, SeriesStyle::Line, 0),
                ],
                markers: l
                    .fails_at
                    .map(|x| Marker { x, label: "first failure".into(), color: 1 })
                    .into_iter()
                    .collect(),
            })
        })
        .collect();
    (!panels.is_empty()).then(|| Figure::Grid {
        title: format!("Claim 4: {metric} against the dose"),
        columns: 3,
        panels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use modewise_theory::ModeParams;

    fn row(metric: &str, mis: f64, imb: f64, holds: bool) -> DoseRow {
        DoseRow {
            metric: metric.into(),
            reference: "balanced".into(),
            dose_misalignment: mis,
            dose_imbalance: imb,
            dose_scale: 0.163,
            depth: 2,
            tolerance: tolerance(metric),
            holds,
            ..DoseRow::default()
        }
    }

    #[test]
    fn the_limit_is_the_last_dose_before_the_first_failure_on_each_axis() {
        let rows = vec![
            row("w_at_peak", 0.0, 0.0, true),
            row("w_at_peak", 0.3, 0.0, true),
            row("w_at_peak", 0.6, 0.0, false),
            row("w_at_peak", 0.9, 0.0, true),
            row("w_at_peak", 0.0, 0.5, false),
        ];
        let l = limits(&rows);
        assert_eq!(l.len(), 2);
        let mis = l.iter().find(|l| l.axis == "misalignment").unwrap();
        assert_eq!((mis.holds_up_to, mis.fails_at), (Some(0.3), Some(0.6)));
        let imb = l.iter().find(|l| l.axis == "imbalance").unwrap();
        assert_eq!((imb.holds_up_to, imb.fails_at), (Some(0.0), Some(0.5)));
        let lines = limit_lines(&l);
        assert!(
            lines
                .iter()
                .any(|s| s.ends_with("L = 2 · scale 0.163 · misalignment: within ±10% up to 0.300; fails at 0.600")),
            "{lines:?}"
        );
    }

    #[test]
    fn the_figure_has_a_panel_per_axis_with_the_band_and_the_first_failure() {
        let mut rows = vec![row("d_max", 0.0, 0.0, true), row("d_max", 0.6, 0.0, true), row("d_max", 0.9, 0.0, false)];
        rows[2].estimate = 0.26;
        rows[2].ci_low = Some(0.25);
        rows[2].ci_high = Some(0.27);
        let crate::figures::Figure::Grid { panels, .. } = figure(&rows, "d_max").unwrap() else { panic!("a grid") };
        assert_eq!(panels.len(), 1);
        let crate::figures::Figure::Lines(p) = &panels[0] else { panic!("a line plot") };
        assert_eq!(p.markers.iter().map(|m| m.x).collect::<Vec<_>>(), [0.9]);
        assert_eq!(p.series[2].points, [(0.0, 0.0), (0.6, 0.0), (0.9, 0.26)]);
        // The region where a row holds, shaded: ±tolerance of each dose's row.
        assert_eq!(p.series[0].style, crate::figures::SeriesStyle::Band);
        assert_eq!(
            p.series[0].points,
            [(0.0, 0.15), (0.6, 0.15), (0.9, 0.15), (0.9, -0.15), (0.6, -0.15), (0.0, -0.15)],
            "the tolerance band"
        );
        // The 95% interval as a band over the rows that have one.
        assert_eq!(p.series[1].points, [(0.9, 0.27), (0.9, 0.25)]);
        assert!(figure(&rows, "w_at_peak").is_none(), "no rows of that metric");
        assert!(
            crate::figures::render_svg(&crate::figures::Figure::Grid { title: "t".into(), columns: 3, panels })
                .unwrap()
                .contains("first failure")
        );
    }

    /// `n` samples from `density` by inverse transform of its CDF at evenly spread levels
    /// `(i + ½)/n` (a sample whose empirical CDF is as close to the law as `n` points can be:
    /// KS distance `½n` up to the grid's interpolation).
    fn quantiles(density: &StationaryDensity, n: usize, offset: usize, stride: usize) -> Vec<f64> {
        let (w, cdf) = (density.w(), density.cdf());
        (0..n)
            .map(|i| {
                let u = ((offset + i * stride) as f64 + 0.5) / (n * stride) as f64;
                let j = cdf.partition_point(|&c| c < u).clamp(1, w.len() - 1);
                let f = (u - cdf[j - 1]) / (cdf[j] - cdf[j - 1]);
                w[j - 1] + f * (w[j] - w[j - 1])
            })
            .collect()
    }

    #[test]
    fn the_ks_row_is_near_zero_for_the_law_itself_and_fails_for_a_shifted_law() {
        let mode = ModeParams { depth: 2, s: 1.5, sigma: 0.3, lr: 0.01, batch: 16 }.check().unwrap();
        let dens = mode.stationary_density(StationaryOptions::default()).unwrap();
        let ctx = Context {
            run_id: "r",
            label: "l",
            k: 0,
            depth: 2,
            doses: [0.0; 3],
            at_peak: [0.0; 2],
            stationary: [0.0; 2],
        };
        // Four seeds, each with every fourth of 400 evenly spread quantiles: together the law.
        let exact: Vec<Vec<f64>> = (0..4).map(|m| quantiles(&dens, 100, m, 4)).collect();
        let rate = mode.linear_regime().rate;
        let mut rng = Stream::Bootstrap { mode: 0, verdict: KS_STREAM }.rng(7);
        let row = ks_row(&ctx, "balanced", &dens, &exact, (1e6, rate), &mut rng).unwrap();
        assert_eq!((row.metric.as_str(), row.n, row.predicted), ("ks_to_density", 4, 0.0));
        assert!(row.estimate < 0.01, "the pooled quantiles are the law: {row:?}");
        // n_eff is capped at the samples: 400, so the tolerance is 0.05 + 1.95/20.
        assert!((row.tolerance - (KS_MODEL_TOLERANCE + 1.95 / 20.0)).abs() < 1e-12, "{row:?}");
        assert!(row.holds && row.ci_low.unwrap() <= row.estimate + 1e-12, "{row:?}");
        // The same samples shifted by two standard deviations: far outside the tolerance.
        let sd = dens.variance().sqrt();
        let shifted: Vec<Vec<f64>> = exact.iter().map(|v| v.iter().map(|w| w + 2.0 * sd).collect()).collect();
        let mut rng = Stream::Bootstrap { mode: 0, verdict: KS_STREAM }.rng(7);
        let far = ks_row(&ctx, "balanced", &dens, &shifted, (1e6, rate), &mut rng).unwrap();
        assert!(far.estimate > 0.6 && far.ci_low.unwrap() > far.tolerance && !far.holds, "{far:?}");
        // A short window counts fewer effective samples: a wider tolerance.
        let mut rng = Stream::Bootstrap { mode: 0, verdict: KS_STREAM }.rng(7);
        let short = ks_row(&ctx, "balanced", &dens, &exact, (2.0 / rate, rate), &mut rng).unwrap();
        assert!((short.tolerance - (KS_MODEL_TOLERANCE + 1.95 / 2.0)).abs() < 1e-12, "{short:?}");
    }

    #[test]
    fn a_row_holds_when_its_widened_interval_contains_zero() {
        let ctx = Context {
            run_id: "r",
            label: "l",
            k: 0,
            depth: 2,
            doses: [0.0; 3],
            at_peak: [0.0; 2],
            stationary: [0.0; 2],
        };
        let near = ctx.row("w_at_peak", "balanced", &[(1.02, 1.0), (1.04, 1.0), (0.99, 1.0)]).unwrap();
        assert!(near.holds && (near.estimate - 0.05 / 3.0).abs() < 1e-12, "{near:?}");
        let far = ctx.row("w_at_peak", "balanced", &[(0.70, 1.0), (0.72, 1.0), (0.71, 1.0)]).unwrap();
        assert!(!far.holds && far.ci_high.unwrap() < -0.1, "{far:?}");
    }
}
