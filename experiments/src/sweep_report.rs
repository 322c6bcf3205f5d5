//! `modewise report` on a sweep's Hive dataset: each point's figures redrawn from its parts, and
//! figures that compare the sweep's points (the verdicts' measurements and predictions and the
//! late mode means against the swept coordinate).

use std::collections::BTreeMap;
use std::path::Path;

use modewise_dln::StopFlag;
use polars::prelude::DataType;

use std::io::Write;

use crate::ExperimentError;
use crate::figures::{Figure, LinePlot, Series, SeriesStyle, write_svg};
use crate::formats::FigureFormat;
use crate::io::read_parquet;
use crate::io::write_atomic;
use crate::report::{Drawn, Results};
use crate::table::{Quantity, Table, Verdict};

/// `(x, y)` points of a series.
type Points = Vec<(f64, f64)>;

/// The folder of a sweep's directory that holds its figures: `figures/run_index=<i>/` per
/// point and `figures/sweep_<what>.svg` for the comparisons.
pub const FIGURES_DIR: &str = "figures";

/// One complete point of a sweep as read back.
#[derive(Debug, Clone)]
pub struct SweepPointResults {
    /// The point's position in the expansion (its Hive key).
    pub run_index: usize,
    /// The swept coordinates, by key without the `sweep_` prefix (`train_lr`): the number
    /// where the column is numeric, and the value as text.
    pub coordinates: Vec<(String, Option<f64>, String)>,
    /// The point's tables.
    pub results: Results,
}

/// What [`report_sweep`] read and drew.
#[derive(Debug, Clone, Default)]
pub struct SweepReport {
    /// The complete points, by run index.
    pub points: Vec<SweepPointResults>,
    /// The figures written and the ones left out.
    pub drawn: Drawn,
    /// The sweep's `report.html`, where it was written.
    pub page: Option<std::path::PathBuf>,
}

impl SweepReport {
    /// Every point's verdicts, in point order.
    pub fn verdicts(&self) -> Vec<Verdict> {
        self.points.iter().flat_map(|p| p.results.verdicts.iter().cloned()).collect()
    }
}

/// The run indices of the complete points of the sweep in `dir` (those whose `summary` part,
/// written last, exists), in order.
pub fn complete_points(dir: &Path) -> Result<Vec<usize>, ExperimentError> {
    let summary = dir.join(Table::Summary.name());
    let entries = match std::fs::read_dir(&summary) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(ExperimentError::Io { path: summary, source }),
    };
    let mut indices: Vec<usize> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.strip_prefix("run_index=")?.parse().ok())
        .filter(|&i| Table::Summary.part_path(dir, i).is_file())
        .collect();
    indices.sort_unstable();
    Ok(indices)
}

/// Reads every complete point of the sweep in `dir`, draws each point's figures into
/// `dir/figures/run_index=<i>/` and the comparisons across points into `dir/figures/` (in SVG
/// and the other `formats`), then `dir/report.html`; a figure that cannot be drawn (or a page
/// that cannot be written) is a warning, a requested `stop` ends it.
pub fn report_sweep(dir: &Path, stop: &StopFlag, formats: &[FigureFormat]) -> Result<SweepReport, ExperimentError> {
    let mut report = SweepReport::default();
    for run_index in complete_points(dir)? {
        let results = Results::load_sweep_point(dir, run_index)?;
        let coordinates = coordinates(&Table::Runs.part_path(dir, run_index))?;
        report.points.push(SweepPointResults { run_index, coordinates, results });
    }
    let figures = dir.join(FIGURES_DIR);
    for point in &report.points {
        let out = figures.join(format!("run_index={}", point.run_index));
        std::fs::create_dir_all(&out).map_err(|source| ExperimentError::Io { path: out.clone(), source })?;
        let drawn = point.results.draw_within_as(&out, stop, formats)?;
        report.drawn.written.extend(drawn.written);
        report.drawn.converted.extend(drawn.converted);
        report.drawn.warnings.extend(drawn.warnings.into_iter().map(|w| format!("run_index={}: {w}", point.run_index)));
    }
    if !report.points.is_empty() {
        std::fs::create_dir_all(&figures).map_err(|source| ExperimentError::Io { path: figures.clone(), source })?;
    }
    for (name, figure) in comparisons(&report.points) {
        if stop.is_requested() {
            return Err(ExperimentError::Stopped { during: "drawing the figures" });
        }
        let path = figures.join(&name);
        match write_svg(&figure, &path) {
            Ok(()) => report.drawn.written.push(path.clone()),
            Err(e) => {
                report.drawn.warnings.push(format!("{name} was not drawn: {e}"));
                continue;
            }
        }
        for &format in formats.iter().filter(|&&f| f != FigureFormat::Svg) {
            let file = format.path_of(&path);
            let converted = std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|svg| format.convert(&svg))
                .map_err(|reason| ExperimentError::Figure { path: file.clone(), reason })
                .and_then(|bytes| {
                    write_atomic(&file, |f| {
                        f.write_all(&bytes).map_err(|source| ExperimentError::Io { path: file.clone(), source })
                    })
                });
            match converted {
                Ok(()) => report.drawn.converted.push(file),
                Err(e) => report.drawn.warnings.push(format!("{name} was not converted to {format}: {e}")),
            }
        }
    }
    if !report.points.is_empty() {
        match crate::html::write_sweep_report(dir, &report) {
            Ok(page) => report.page = Some(page),
            Err(e) => report.drawn.warnings.push(format!("{} was not written: {e}", crate::html::REPORT_HTML)),
        }
    }
    Ok(report)
}

/// The `sweep_*` columns of a point's part, from its first row.
fn coordinates(part: &Path) -> Result<Vec<(String, Option<f64>, String)>, ExperimentError> {
    let frame = read_parquet(part)?;
    let mut out = Vec::new();
    for column in frame.columns() {
        let Some(key) = column.name().strip_prefix("sweep_") else { continue };
        let numeric = matches!(
            column.dtype(),
            DataType::Float64
                | DataType::Float32
                | DataType::Int64
                | DataType::Int32
                | DataType::UInt64
                | DataType::UInt32
        );
        let number = if numeric {
            column.cast(&DataType::Float64).ok().and_then(|c| c.f64().ok().and_then(|c| c.get(0)))
        } else {
            None
        };
        let text = match (number, column.str(), column.bool()) {
            (Some(x), _, _) => format!("{x}"),
            (None, Ok(s), _) => s.get(0).unwrap_or("").to_string(),
            (None, _, Ok(b)) => b.get(0).map_or(String::new(), |b| b.to_string()),
            _ => String::new(),
        };
        out.push((key.to_string(), number, text));
    }
    Ok(out)
}

/// The x coordinate of the comparisons: the numeric swept key with the most distinct values
/// (the first of those tied; its column name and position), or the run index where no swept
/// key is numeric.
fn x_axis(points: &[SweepPointResults]) -> (String, Option<usize>) {
    let Some(first) = points.first().map(|p| &p.coordinates) else { return ("run_index".into(), None) };
    let distinct = |i: usize| {
        let mut values: Vec<u64> =
            points.iter().filter_map(|p| p.coordinates.get(i).and_then(|c| c.1)).map(f64::to_bits).collect();
        values.sort_unstable();
        values.dedup();
        values.len()
    };
    let best = (0..first.len()).filter(|&i| first[i].1.is_some()).fold(None, |best: Option<(usize, usize)>, i| {
        let n = distinct(i);
        if best.is_some_and(|(_, m)| m >= n) { best } else { Some((i, n)) }
    });
    match best {
        Some((i, _)) => (format!("sweep_{}", first[i].0), Some(i)),
        None => ("run_index".into(), None),
    }
}

/// A point's x value and the label of its other coordinates.
fn place(point: &SweepPointResults, axis: Option<usize>) -> (f64, String) {
    let x = axis.and_then(|i| point.coordinates.get(i)).and_then(|c| c.1).unwrap_or(point.run_index as f64);
    let others: Vec<String> = point
        .coordinates
        .iter()
        .enumerate()
        .filter(|&(i, _)| Some(i) != axis)
        .map(|(_, (k, _, v))| format!("{k}={v}"))
        .collect();
    (x, others.join(", "))
}

/// The variant label of a run id (`grid-3/slow` → `slow`; `base` without variants).
fn variant(run_id: &str) -> &str {
    run_id.split_once('/').map_or("base", |(_, v)| v)
}

/// A series' label from the other coordinates, the variant and the mode.
fn group_label(others: &str, variant: &str, k: usize) -> String {
    let mut parts = Vec::new();
    if !others.is_empty() {
        parts.push(others.to_string());
    }
    if variant != "base" {
        parts.push(variant.to_string());
    }
    parts.push(format!("k = {k}"));
    parts.join(", ")
}

/// Whether values spanning `points` read better on a log axis: all positive and spread over
/// at least `ratio`.
fn wants_log(values: impl Iterator<Item = f64> + Clone, ratio: f64) -> bool {
    let lo = values.clone().fold(f64::INFINITY, f64::min);
    let hi = values.fold(f64::NEG_INFINITY, f64::max);
    lo > 0.0 && hi.is_finite() && hi / lo >= ratio
}

/// One line plot of `groups` (label → points, sorted by x), each drawn as `style`.
fn plot(title: String, x_label: &str, y_label: String, groups: Vec<(String, Points, SeriesStyle, usize)>) -> Figure {
    let xs = groups.iter().flat_map(|g| g.1.iter().map(|p| p.0)).collect::<Vec<_>>();
    let ys = groups.iter().flat_map(|g| g.1.iter().map(|p| p.1)).collect::<Vec<_>>();
    Figure::Lines(LinePlot {
        title,
        x_label: x_label.into(),
        y_label,
        log_x: wants_log(xs.iter().copied(), 10.0),
        log_y: wants_log(ys.iter().copied(), 100.0),
        series: groups
            .into_iter()
            .map(|(label, mut points, style, color)| {
                points.sort_by(|a, b| a.0.total_cmp(&b.0));
                Series { label, points, style, color }
            })
            .collect(),
        markers: vec![],
    })
}

/// The figures that compare the points: per verdict quantity, `sweep_<quantity>.svg` (measured
/// and predicted against the swept coordinate, one pair of series per mode and other
/// coordinates), and `sweep_late_m_k.svg` (the mean of `m_k` over the second half of each run).
pub fn comparisons(points: &[SweepPointResults]) -> Vec<(String, Figure)> {
    let (x_label, axis) = x_axis(points);
    let mut quantities: Vec<Quantity> = Vec::new();
    for v in points.iter().flat_map(|p| &p.results.verdicts) {
        if !quantities.contains(&v.quantity) {
            quantities.push(v.quantity);
        }
    }
    let mut figures = Vec::new();
    for quantity in quantities {
        let mut groups: BTreeMap<String, (Points, Points)> = BTreeMap::new();
        for point in points {
            let (x, others) = place(point, axis);
            for v in point.results.verdicts.iter().filter(|v| v.quantity == quantity) {
                let g = groups.entry(group_label(&others, variant(&v.run_id), v.k)).or_default();
                if v.measured.is_finite() {
                    g.0.push((x, v.measured));
                }
                if v.predicted.is_finite() {
                    g.1.push((x, v.predicted));
                }
            }
        }
        let mut series = Vec::new();
        for (color, (label, (measured, predicted))) in groups.into_iter().enumerate() {
            series.push((format!("{label}: measured"), measured, SeriesStyle::Points, color));
            if !predicted.is_empty() {
                series.push((format!("{label}: predicted"), predicted, SeriesStyle::Dashed, color));
            }
        }
        if series.iter().all(|s| s.1.is_empty()) {
            continue;
        }
        let name = quantity.name();
        let title = format!("{name} across the sweep's points");
        figures.push((format!("sweep_{name}.svg"), plot(title, &x_label, name.to_string(), series)));
    }
    let mut late: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for point in points {
        let (x, others) = place(point, axis);
        for ((run, k), m) in &point.results.measured {
            let finite: Vec<f64> = m.late.iter().copied().filter(|v| v.is_finite()).collect();
            if !finite.is_empty() {
                let mean = finite.iter().sum::<f64>() / finite.len() as f64;
                late.entry(group_label(&others, variant(run), *k)).or_default().push((x, mean));
            }
        }
    }
    if !late.is_empty() {
        let series = late.into_iter().enumerate().map(|(c, (label, pts))| (label, pts, SeriesStyle::Line, c)).collect();
        let title = "mean m_k over the second half of each run, across the sweep's points".to_string();
        figures.push(("sweep_late_m_k.svg".into(), plot(title, &x_label, "late mean m_k".into(), series)));
    }
    figures
}
