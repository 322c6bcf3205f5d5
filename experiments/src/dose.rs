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
//!   exact density's (balanced, or the δ-theory's), times the chain's finite-η factor.
//!
//! A row holds when its interval, widened by the metric's stated tolerance, contains 0.

use std::collections::BTreeMap;

use modewise_dln::{InitScheme, Probe, ProbeRecord};
use modewise_theory::{Coordinate, DEFAULT_RHO, Mode, StationaryOptions, UnbalancedMode};

use crate::stats::{Interval, mean, t_interval};
use crate::table::{Access, ColumnDef, Row, Table};
use crate::verdicts::{self, Series, chain_over_sde};

/// The stated model tolerance of each metric, as a relative error (`docs/theory.md` §9.4).
pub const TOLERANCES: [(&str, f64); 5] =
    [("w_at_peak", 0.10), ("d_max", 0.15), ("t_learned", 0.10), ("t_peak", 0.15), ("variance_over_t", 0.15)];

/// The tolerance of `metric` (NaN for an unknown one).
pub fn tolerance(metric: &str) -> f64 {
    TOLERANCES.iter().find(|(m, _)| *m == metric).map_or(f64::NAN, |(_, t)| *t)
}

/// Doses below this count as none (a run on the other axis, or the aligned-balanced baseline).
pub const NO_DOSE: f64 = 1e-3;

/// A row of the `dose_response` table: one run, mode, metric and reference.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DoseRow {
    /// The run.
    pub run_id: String,
    /// The variant label.
    pub label: String,
    /// Mode index (0-based).
    pub k: u32,
    /// What is measured (`w_at_peak`, `d_max`, `t_learned`, `t_peak`, `variance_over_t`).
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
    /// The mean over seeds of the relative error.
    pub estimate: f64,
    /// Lower end of its 95% t interval.
    pub ci_low: Option<f64>,
    /// Upper end.
    pub ci_high: Option<f64>,
    /// Seeds behind it.
    pub n: u32,
    /// The metric's stated tolerance.
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
        let tol = tolerance(metric);
        Some(DoseRow {
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
            predicted: mean(&pairs.iter().map(|p| p.1).collect::<Vec<_>>()),
            estimate: mean(&errors),
            ci_low: finite(ci.low),
            ci_high: finite(ci.high),
            n: errors.len() as u32,
            tolerance: tol,
            holds: ci.low - tol <= 0.0 && 0.0 <= ci.high + tol,
        })
    }
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
            let predictions = [
                ("balanced", mode.stationary_density(options).ok().map(|dens| dens.variance() * factor / t)),
                (
                    "delta",
                    unbalanced
                        .and_then(|u| u.stationary_density(options).ok())
                        .map(|dens| dens.variance() * factor / t),
                ),
            ];
            for (name, predicted) in predictions {
                if let Some(p) = predicted {
                    let pairs: Vec<(f64, f64)> = per_seed.iter().map(|&v| (v, p)).collect();
                    out.extend(ctx.row("variance_over_t", name, &pairs));
                }
            }
        }
    }
    out
}

/// Claim 4 stated quantitatively for one metric, reference, mode and scale along one dose axis:
/// the largest dose up to which every run holds, and the smallest at which one fails.
#[derive(Debug, Clone, PartialEq)]
pub struct DoseLimit {
    /// The metric.
    pub metric: String,
    /// Its reference.
    pub reference: String,
    /// The mode.
    pub k: u32,
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

/// The claim-4 limits of a set of dose rows: per metric, reference, mode and scale, along the
/// misalignment axis (runs without imbalance) and the imbalance axis (runs without
/// misalignment), each with at least two doses.
pub fn limits(rows: &[DoseRow]) -> Vec<DoseLimit> {
    type Key = (String, String, u32, i64, &'static str);
    let mut groups: BTreeMap<Key, Vec<(f64, bool)>> = BTreeMap::new();
    for r in rows {
        let scale = (r.dose_scale * 1000.0).round() as i64;
        let key = |axis| (r.metric.clone(), r.reference.clone(), r.k, scale, axis);
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
        .map(|((metric, reference, k, scale, axis), mut doses)| {
            doses.sort_by(|a, b| a.0.total_cmp(&b.0));
            let fails_at = doses.iter().find(|d| !d.1).map(|d| d.0);
            let holds_up_to = doses.iter().take_while(|d| d.1).last().map(|d| d.0);
            DoseLimit { metric, reference, k, scale: scale as f64 / 1000.0, axis, doses, holds_up_to, fails_at }
        })
        .collect()
}

/// One printed line per limit: `claim 4 · w_at_peak vs balanced · mode 0 · scale 0.163 ·
/// misalignment: within ±10% up to 0.600; fails at 0.900`.
pub fn limit_lines(limits: &[DoseLimit]) -> Vec<String> {
    limits
        .iter()
        .map(|l| {
            let tol = 100.0 * tolerance(&l.metric);
            let up_to = l.holds_up_to.map_or("at no dose".to_string(), |d| format!("up to {d:.3}"));
            let fails = l.fails_at.map_or("holds at every dose measured".to_string(), |d| format!("fails at {d:.3}"));
            format!(
                "claim 4 · {} vs {} · mode {} · scale {:.3} · {}: within ±{tol:.0}% {up_to}; {fails}",
                l.metric, l.reference, l.k, l.scale, l.axis
            )
        })
        .collect()
}

/// The figure of one metric: a panel per reference, mode, scale and axis with at least two
/// doses, the mean relative error against the dose with its 95% interval (dashed), the band
/// `±tolerance` within which it holds (dotted), and a marker at the first dose where it fails.
pub(crate) fn figure(rows: &[DoseRow], metric: &str) -> Option<crate::figures::Figure> {
    use crate::figures::{Figure, LinePlot, Marker, Series, SeriesStyle};
    let rows: Vec<DoseRow> = rows.iter().filter(|r| r.metric == metric).cloned().collect();
    let tol = tolerance(metric);
    let panels: Vec<Figure> = limits(&rows)
        .into_iter()
        .map(|l| {
            let on_axis = |r: &&DoseRow| {
                r.reference == l.reference
                    && r.k == l.k
                    && ((r.dose_scale * 1000.0).round() / 1000.0 - l.scale).abs() < 1e-9
                    && if l.axis == "misalignment" {
                        r.dose_imbalance.abs() < NO_DOSE
                    } else {
                        r.dose_misalignment < NO_DOSE
                    }
            };
            let mut points: Vec<&DoseRow> = rows.iter().filter(on_axis).collect();
            let dose =
                |r: &DoseRow| if l.axis == "misalignment" { r.dose_misalignment } else { r.dose_imbalance.abs() };
            points.sort_by(|a, b| dose(a).total_cmp(&dose(b)));
            let xs: Vec<f64> = points.iter().map(|r| dose(r)).collect();
            let (lo, hi) = (xs.first().copied().unwrap_or(0.0), xs.last().copied().unwrap_or(1.0));
            let series = |label: &str, pts: Vec<(f64, f64)>, style, color| Series {
                label: label.into(),
                points: pts,
                style,
                color,
            };
            let of = |f: fn(&DoseRow) -> Option<f64>| points.iter().filter_map(|r| Some((dose(r), f(r)?))).collect();
            Figure::Lines(LinePlot {
                title: format!("mode {} vs {} · scale {:.3}", l.k, l.reference, l.scale),
                x_label: format!("{} dose", l.axis),
                y_label: format!("{metric}: relative error"),
                log_x: false,
                log_y: false,
                series: vec![
                    series("mean over seeds", of(|r| Some(r.estimate)), SeriesStyle::Points, 0),
                    series("", of(|r| Some(r.estimate)), SeriesStyle::Line, 0),
                    series("95% interval", of(|r| r.ci_low), SeriesStyle::Dashed, 0),
                    series("", of(|r| r.ci_high), SeriesStyle::Dashed, 0),
                    series(&format!("holds within ±{tol}"), vec![(lo, tol), (hi, tol)], SeriesStyle::Dashed, 2),
                    series("", vec![(lo, -tol), (hi, -tol)], SeriesStyle::Dashed, 2),
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

    fn row(metric: &str, mis: f64, imb: f64, holds: bool) -> DoseRow {
        DoseRow {
            metric: metric.into(),
            reference: "balanced".into(),
            dose_misalignment: mis,
            dose_imbalance: imb,
            dose_scale: 0.163,
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
            lines.iter().any(|s| s.ends_with("misalignment: within ±10% up to 0.300; fails at 0.600")),
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
        assert_eq!(p.series[0].points, [(0.0, 0.0), (0.6, 0.0), (0.9, 0.26)]);
        assert_eq!(p.series[4].points, [(0.0, 0.15), (0.9, 0.15)], "the tolerance band");
        assert!(figure(&rows, "w_at_peak").is_none(), "no rows of that metric");
        assert!(
            crate::figures::render_svg(&crate::figures::Figure::Grid { title: "t".into(), columns: 3, panels })
                .unwrap()
                .contains("first failure")
        );
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
