//! Figures and the verdict table drawn from the Parquet tables of a results directory (used after
//! a run, and by `modewise report DIR` to redraw them).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use modewise_theory::{Coordinate, ModeParams};
use polars::prelude::*;

use crate::ExperimentError;
use crate::figures::{Figure, HistogramPlot, LinePlot, Marker, Series, SeriesStyle, write_svg};
use crate::io::read_parquet;
use crate::output::table_paths;
use crate::run::Verdict;
use crate::stats::PerStep;

fn pol(path: &Path) -> impl Fn(PolarsError) -> ExperimentError + '_ {
    move |source| ExperimentError::Polars { path: path.to_path_buf(), source }
}

fn f64s(df: &DataFrame, name: &str, path: &Path) -> Result<Vec<f64>, ExperimentError> {
    let c = df.column(name).map_err(pol(path))?.cast(&DataType::Float64).map_err(pol(path))?;
    Ok(c.f64().map_err(pol(path))?.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
}

fn strs(df: &DataFrame, name: &str, path: &Path) -> Result<Vec<String>, ExperimentError> {
    let c = df.column(name).map_err(pol(path))?;
    Ok(c.str().map_err(pol(path))?.iter().map(|v| v.unwrap_or("").to_string()).collect())
}

fn bools(df: &DataFrame, name: &str, path: &Path) -> Result<Vec<bool>, ExperimentError> {
    let c = df.column(name).map_err(pol(path))?;
    Ok(c.bool().map_err(pol(path))?.iter().map(|v| v.unwrap_or(false)).collect())
}

/// Reads the verdicts back from `summary.parquet`.
pub fn read_verdicts(dir: &Path) -> Result<Vec<Verdict>, ExperimentError> {
    let path = dir.join("summary.parquet");
    let df = read_parquet(&path)?;
    let (run, claim, k, q) = (
        strs(&df, "run_id", &path)?,
        strs(&df, "claim", &path)?,
        f64s(&df, "k", &path)?,
        strs(&df, "quantity", &path)?,
    );
    let (p, m, h) = (f64s(&df, "predicted", &path)?, f64s(&df, "measured", &path)?, bools(&df, "holds", &path)?);
    Ok((0..run.len())
        .map(|i| Verdict {
            run_id: run[i].clone(),
            claim: claim[i].clone(),
            k: k[i] as usize,
            quantity: q[i].clone(),
            predicted: p[i],
            measured: m[i],
            holds: h[i],
        })
        .collect())
}

/// Per run and mode: the measured values across members per step (finite values only), and
/// pooled late samples.
#[derive(Default)]
struct ModeData {
    s: f64,
    m: PerStep,
    d: PerStep,
    align: PerStep,
    balance: PerStep,
    late: Vec<f64>,
}

fn add(per_step: &mut PerStep, step: u64, t: f64, v: f64) {
    if v.is_finite() {
        per_step.push(step, t, v);
    }
}

/// Redraws every figure of a results directory; returns the paths written.
pub fn draw_figures(dir: &Path) -> Result<Vec<PathBuf>, ExperimentError> {
    let [runs_p, traj_p, theory_p, _] = table_paths(dir);
    let runs = read_parquet(&runs_p)?;
    let traj = read_parquet(&traj_p)?;
    let theory = read_parquet(&theory_p)?;
    let verdicts = read_verdicts(dir)?;

    // Run parameters (first member row of each run).
    let mut params: BTreeMap<String, (u32, f64, u32, f64, f64)> = BTreeMap::new();
    {
        let (ids, depth, lr, batch, sigma, steps) = (
            strs(&runs, "run_id", &runs_p)?,
            f64s(&runs, "depth", &runs_p)?,
            f64s(&runs, "lr", &runs_p)?,
            f64s(&runs, "batch", &runs_p)?,
            f64s(&runs, "sigma", &runs_p)?,
            f64s(&runs, "steps", &runs_p)?,
        );
        for i in 0..ids.len() {
            params.entry(ids[i].clone()).or_insert((depth[i] as u32, lr[i], batch[i] as u32, sigma[i], steps[i]));
        }
    }
    let mut data: BTreeMap<(String, usize), ModeData> = BTreeMap::new();
    {
        let ids = strs(&traj, "run_id", &traj_p)?;
        let col = |n| f64s(&traj, n, &traj_p);
        let (step, t, k, s, m, d, al, bal) = (
            col("step")?,
            col("t")?,
            col("k")?,
            col("s_k")?,
            col("m_k")?,
            col("diffusion")?,
            col("alignment_error")?,
            col("balance_relative")?,
        );
        for i in 0..ids.len() {
            let e = data.entry((ids[i].clone(), k[i] as usize)).or_default();
            e.s = s[i];
            let st = step[i] as u64;
            add(&mut e.m, st, t[i], m[i]);
            add(&mut e.d, st, t[i], d[i]);
            add(&mut e.align, st, t[i], al[i]);
            add(&mut e.balance, st, t[i], bal[i]);
            if params.get(&ids[i]).is_some_and(|p| step[i] >= p.4 / 2.0) {
                e.late.push(m[i]);
            }
        }
    }
    let mut overlays: BTreeMap<(String, usize, String), Vec<(f64, f64)>> = BTreeMap::new();
    let mut w0_rules: BTreeMap<(String, usize), (f64, String)> = BTreeMap::new();
    {
        let (ids, kind) = (strs(&theory, "run_id", &theory_p)?, strs(&theory, "overlay", &theory_p)?);
        let (k, t, w, v) = (
            f64s(&theory, "k", &theory_p)?,
            f64s(&theory, "t", &theory_p)?,
            f64s(&theory, "w", &theory_p)?,
            f64s(&theory, "value", &theory_p)?,
        );
        let (w0, rule) = (f64s(&theory, "w0", &theory_p)?, strs(&theory, "w0_rule", &theory_p)?);
        let var = f64s(&theory, "variance", &theory_p)?;
        for i in 0..ids.len() {
            let x = if t[i].is_finite() { t[i] } else { w[i] };
            overlays.entry((ids[i].clone(), k[i] as usize, kind[i].clone())).or_default().push((x, v[i]));
            if var[i].is_finite() {
                overlays
                    .entry((ids[i].clone(), k[i] as usize, format!("{}_variance", kind[i])))
                    .or_default()
                    .push((x, var[i]));
            }
            w0_rules.entry((ids[i].clone(), k[i] as usize)).or_insert((w0[i], rule[i].clone()));
        }
    }

    let marker = |run: &str, k: usize, q: &str| {
        verdicts.iter().find(|v| v.run_id == run && v.k == k && v.quantity == q).map(|v| (v.predicted, v.measured))
    };
    let mut mode_panels = Vec::new();
    let mut diffusion_panels = Vec::new();
    let mut hist_panels = Vec::new();
    let mut variance_panels = Vec::new();
    for ((run, k), md) in &data {
        let w0 = w0_rules.get(&(run.clone(), *k));
        let title = format!("{run}, mode {} (s = {:.3})", k + 1, md.s);
        let mut series = vec![Series {
            label: "DLN SGD, mean over seeds".into(),
            points: md.m.means(),
            style: SeriesStyle::Points,
            color: 0,
        }];
        let gf_label =
            w0.map_or("gradient flow".to_string(), |(w0, rule)| format!("gradient flow, w0 = {w0:.2e} ({rule})"));
        for (kind, label, style, color) in [
            ("gradient_flow", gf_label.as_str(), SeriesStyle::Line, 1),
            ("sde", "SDE ensemble mean", SeriesStyle::Dashed, 2),
            ("chain", "exact chain mean", SeriesStyle::Dashed, 3),
        ] {
            if let Some(points) = overlays.get(&(run.clone(), *k, kind.to_string())) {
                series.push(Series { label: label.into(), points: points.clone(), style, color });
            }
        }
        let mut markers = Vec::new();
        if let Some((pred, meas)) = marker(run, *k, "t_peak") {
            markers.push(Marker { x: pred, label: "t_peak (theory)".into(), color: 4 });
            markers.push(Marker { x: meas, label: "t_peak (measured)".into(), color: 5 });
        }
        if let Some((pred, meas)) = marker(run, *k, "t_learned") {
            markers.push(Marker { x: pred, label: "t_learned (theory)".into(), color: 6 });
            markers.push(Marker { x: meas, label: "t_learned (measured)".into(), color: 7 });
        }
        mode_panels.push(Figure::Lines(LinePlot {
            title: title.clone(),
            x_label: "t = η·step".into(),
            y_label: "m_k".into(),
            log_x: true,
            log_y: false,
            series,
            markers: markers.clone(),
        }));
        let sde_var = overlays.get(&(run.clone(), *k, "sde_variance".to_string()));
        let chain_var = overlays.get(&(run.clone(), *k, "chain_variance".to_string()));
        let seed_var = md.m.variances();
        if !seed_var.is_empty() {
            let mut series = vec![Series {
                label: "DLN SGD, variance across seeds".into(),
                points: seed_var,
                style: SeriesStyle::Points,
                color: 0,
            }];
            for (points, label, color) in
                [(sde_var, "SDE ensemble variance", 2), (chain_var, "exact chain variance", 3)]
            {
                if let Some(points) = points {
                    series.push(Series {
                        label: label.into(),
                        points: points.clone(),
                        style: SeriesStyle::Dashed,
                        color,
                    });
                }
            }
            variance_panels.push(Figure::Lines(LinePlot {
                title: format!("{run}, mode {}: spread across seeds", k + 1),
                x_label: "t = η·step".into(),
                y_label: "Var m_k".into(),
                log_x: true,
                log_y: true,
                series,
                markers: vec![],
            }));
        }
        let d_points = md.d.means();
        if !d_points.is_empty() {
            let mut series = vec![Series {
                label: "measured D_k, mean over seeds".into(),
                points: d_points,
                style: SeriesStyle::Points,
                color: 0,
            }];
            if let (Some(&(depth, lr, batch, sigma, _)), Some(gf)) =
                (params.get(run), overlays.get(&(run.clone(), *k, "gradient_flow".to_string())))
                && let Ok(mode) = (ModeParams { depth, s: md.s, sigma, lr, batch }).check()
            {
                let points = gf.iter().map(|&(t, w)| (t, mode.diffusion(Coordinate::EndToEnd, w.max(0.0)))).collect();
                series.push(Series {
                    label: "D(w) along gradient flow".into(),
                    points,
                    style: SeriesStyle::Line,
                    color: 1,
                });
            }
            diffusion_panels.push(Figure::Lines(LinePlot {
                title,
                x_label: "t = η·step".into(),
                y_label: "D_k".into(),
                log_x: true,
                log_y: false,
                series,
                markers,
            }));
        }
        if let (Some(density), Some(boltz)) = (
            overlays.get(&(run.clone(), *k, "stationary_density".to_string())),
            overlays.get(&(run.clone(), *k, "boltzmann".to_string())),
        ) && md.late.len() >= 10
        {
            hist_panels.push(Figure::Histogram(HistogramPlot {
                title: format!("{run}, mode {}: second half of the run", k + 1),
                x_label: "m_k".into(),
                y_label: "density".into(),
                bins: histogram(&md.late, 30),
                curves: vec![
                    Series {
                        label: "exact stationary density".into(),
                        points: clip(density, &md.late),
                        style: SeriesStyle::Line,
                        color: 1,
                    },
                    Series {
                        label: "Boltzmann law".into(),
                        points: clip(boltz, &md.late),
                        style: SeriesStyle::Dashed,
                        color: 2,
                    },
                ],
            }));
        }
    }
    let mut written = Vec::new();
    let mut save = |name: &str, title: &str, panels: Vec<Figure>| -> Result<(), ExperimentError> {
        if panels.is_empty() {
            return Ok(());
        }
        let path = dir.join(name);
        write_svg(&Figure::Grid { title: title.into(), columns: 3, panels }, &path)?;
        written.push(path);
        Ok(())
    };
    save("modes.svg", "Mode strengths against the theory", mode_panels)?;
    save("diffusion.svg", "Mode diffusion against the theory", diffusion_panels)?;
    save("stationary.svg", "Stationary laws", hist_panels)?;
    save(
        "variance.svg",
        "Spread of the modes across seeds (and of the SDE and exact-chain ensembles)",
        variance_panels,
    )?;
    // Alignment and balance per run (mode 0 rows hold the per-member values).
    let mut align_panels = Vec::new();
    for ((run, k), md) in &data {
        if *k == 0 {
            align_panels.push(Figure::Lines(LinePlot {
                title: run.clone(),
                x_label: "t = η·step".into(),
                y_label: "relative error".into(),
                log_x: true,
                log_y: true,
                series: vec![
                    Series {
                        label: "alignment error".into(),
                        points: md.align.means(),
                        style: SeriesStyle::Line,
                        color: 0,
                    },
                    Series {
                        label: "balance (relative)".into(),
                        points: md.balance.means(),
                        style: SeriesStyle::Dashed,
                        color: 1,
                    },
                ],
                markers: vec![],
            }));
        }
    }
    save("alignment.svg", "Alignment and balancedness", align_panels)?;
    Ok(written)
}

/// Density-normalised histogram `(lo, hi, density)` of `samples` in `bins` equal bins.
fn histogram(samples: &[f64], bins: usize) -> Vec<(f64, f64, f64)> {
    let lo = samples.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = samples.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let width = ((hi - lo) / bins as f64).max(f64::MIN_POSITIVE);
    let mut counts = vec![0usize; bins];
    for &x in samples {
        counts[(((x - lo) / width) as usize).min(bins - 1)] += 1;
    }
    let n = samples.len() as f64;
    counts
        .iter()
        .enumerate()
        .map(|(i, &c)| (lo + i as f64 * width, lo + (i + 1) as f64 * width, c as f64 / (n * width)))
        .collect()
}

/// The part of a density curve within the samples' range widened by half of it on each side.
fn clip(curve: &[(f64, f64)], samples: &[f64]) -> Vec<(f64, f64)> {
    let lo = samples.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = samples.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let pad = 0.5 * (hi - lo);
    curve.iter().copied().filter(|&(w, _)| w >= lo - pad && w <= hi + pad).collect()
}
