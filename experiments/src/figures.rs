//! SVG figures: line/point plots (linear or logarithmic axes, with vertical theory markers),
//! histograms with overlaid density curves and grids of such panels, rendered with plotters'
//! SVG backend and written to disk atomically.
//!
//! Text is emitted as SVG `<text>` elements, so no system fonts are needed; plotters' naive
//! font metrics are used for layout.

use std::fmt::Display;
use std::io::Write;
use std::ops::Range;
use std::path::Path;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::ExperimentError;
use crate::io::write_atomic;

/// Width of one panel, in pixels.
const PANEL_WIDTH: u32 = 640;
/// Height of one panel, in pixels.
const PANEL_HEIGHT: u32 = 420;
/// Height of the band holding a grid's title, in pixels.
const GRID_TITLE_HEIGHT: u32 = 40;
/// Relative margin added on each side of a data range.
const RANGE_MARGIN: f64 = 0.05;
/// Font family of all text (a generic family, resolved by the SVG viewer).
const FONT: &str = "sans-serif";

/// Okabe–Ito colour-blind-safe palette, ordered so that the first colours contrast best on white.
const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(230, 159, 0),   // orange
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(0, 0, 0),       // black
    RGBColor(240, 228, 66),  // yellow
];

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeriesStyle {
    /// A solid polyline through the points.
    Line,
    /// A dashed polyline through the points.
    Dashed,
    /// One filled circle per point.
    Points,
    /// A filled translucent region: the points are the vertices of a closed polygon (e.g. an
    /// upper edge left to right, then a lower edge right to left), drawn under what comes later.
    Band,
}

/// One named series of (x, y) points; points that cannot be placed on the axes are skipped:
/// coordinates that are not finite or beyond ±1e300, or below 1e-300 (zero and negative values
/// included) on a log axis, or below the [`MAX_DECADES`] a log axis spans.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend label; an empty label keeps the series out of the legend.
    pub label: String,
    /// The (x, y) points, in drawing order.
    pub points: Vec<(f64, f64)>,
    /// How the series is drawn.
    pub style: SeriesStyle,
    /// Index into a fixed colour-blind-safe palette of eight colours, cycled.
    pub color: usize,
}

/// A vertical marker line with a label (e.g. "t_peak (theory)").
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    /// Position on the x axis.
    pub x: f64,
    /// Legend label; an empty label keeps the marker out of the legend.
    pub label: String,
    /// Index into the palette, cycled.
    pub color: usize,
}

/// A line/point plot.
#[derive(Debug, Clone, PartialEq)]
pub struct LinePlot {
    /// Panel title.
    pub title: String,
    /// Description of the x axis.
    pub x_label: String,
    /// Description of the y axis.
    pub y_label: String,
    /// Whether the x axis is logarithmic.
    pub log_x: bool,
    /// Whether the y axis is logarithmic.
    pub log_y: bool,
    /// The series drawn, in order (later ones on top).
    pub series: Vec<Series>,
    /// Vertical marker lines spanning the y range.
    pub markers: Vec<Marker>,
}

/// A histogram (bins given as (lo, hi, density)) with overlaid curves (e.g. exact density,
/// Boltzmann law).
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramPlot {
    /// Panel title.
    pub title: String,
    /// Description of the x axis.
    pub x_label: String,
    /// Description of the y axis.
    pub y_label: String,
    /// The bins as (lower edge, upper edge, density); bins with values that cannot be placed on
    /// an axis (not finite, or beyond ±1e300) are skipped.
    pub bins: Vec<(f64, f64, f64)>,
    /// Curves drawn over the bars.
    pub curves: Vec<Series>,
}

/// A figure: one panel, or a grid of panels (e.g. one per mode) with a number of columns.
#[derive(Debug, Clone, PartialEq)]
pub enum Figure {
    /// A single line/point panel.
    Lines(LinePlot),
    /// A single histogram panel.
    Histogram(HistogramPlot),
    /// Panels laid out row by row in `columns` columns, under a common title; panels may not
    /// themselves be grids.
    Grid {
        /// Title drawn above the grid.
        title: String,
        /// Number of columns (at least 1).
        columns: usize,
        /// The panels, row by row.
        panels: Vec<Figure>,
    },
}

/// Renders the figure to an SVG string (the tests' view of what [`write_svg`] writes).
#[cfg(test)]
pub fn render_svg(figure: &Figure) -> Result<String, ExperimentError> {
    render(figure).map_err(|reason| ExperimentError::Figure { path: std::path::PathBuf::from("<memory>"), reason })
}

/// Writes the figure to `path` as SVG atomically, through [`crate::io::write_atomic`].
pub fn write_svg(figure: &Figure, path: &Path) -> Result<(), ExperimentError> {
    let svg = render(figure).map_err(|reason| ExperimentError::Figure { path: path.to_path_buf(), reason })?;
    write_atomic(path, |file| {
        file.write_all(svg.as_bytes()).map_err(|source| ExperimentError::Io { path: path.to_path_buf(), source })
    })
}

/// The drawing area every panel is drawn on.
type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// Turns any drawing error into the reason string carried by [`ExperimentError::Figure`].
fn reason<E: Display>(err: E) -> String {
    err.to_string()
}

/// Renders `figure`, returning the SVG text or the reason it could not be drawn.
pub(crate) fn render(figure: &Figure) -> Result<String, String> {
    let (width, height, layout) = match figure {
        Figure::Grid { columns, panels, .. } => {
            if *columns == 0 {
                return Err("a grid needs at least one column".to_string());
            }
            if panels.iter().any(|p| matches!(p, Figure::Grid { .. })) {
                return Err("nested grids are not supported".to_string());
            }
            let cols = (*columns).min(panels.len()).max(1);
            let rows = panels.len().div_ceil(cols).max(1);
            let (cols_u32, rows_u32) = (to_u32(cols)?, to_u32(rows)?);
            let width = PANEL_WIDTH.checked_mul(cols_u32).ok_or("grid too wide")?;
            let height = PANEL_HEIGHT.checked_mul(rows_u32).and_then(|h| h.checked_add(GRID_TITLE_HEIGHT));
            (width, height.ok_or("grid too tall")?, Some((rows, cols)))
        }
        _ => (PANEL_WIDTH, PANEL_HEIGHT, None),
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(reason)?;
        match (figure, layout) {
            (Figure::Grid { title, panels, .. }, Some((rows, cols))) => {
                let (top, body) = root.split_vertically(GRID_TITLE_HEIGHT);
                centered_text(&top, title, 22.0)?;
                for (panel, area) in panels.iter().zip(body.split_evenly((rows, cols))) {
                    draw_panel(&area, panel)?;
                }
            }
            _ => draw_panel(&root, figure)?,
        }
        root.present().map_err(reason)?;
    }
    Ok(svg)
}

/// Converts a layout count to pixels' integer type.
fn to_u32(n: usize) -> Result<u32, String> {
    u32::try_from(n).map_err(|_| format!("grid dimension {n} too large"))
}

/// Draws one non-grid panel onto `area`.
fn draw_panel(area: &Area<'_>, figure: &Figure) -> Result<(), String> {
    match figure {
        Figure::Lines(plot) => draw_line_plot(area, plot),
        Figure::Histogram(plot) => draw_histogram(area, plot),
        Figure::Grid { .. } => Err("nested grids are not supported".to_string()),
    }
}

/// Draws `text` centred in `area`.
fn centered_text(area: &Area<'_>, text: &str, size: f64) -> Result<(), String> {
    let (w, h) = area.dim_in_pixel();
    let style = TextStyle::from((FONT, size).into_font()).pos(Pos::new(HPos::Center, VPos::Center));
    let (x, y) = (i32::try_from(w / 2).unwrap_or(0), i32::try_from(h / 2).unwrap_or(0));
    area.draw_text(text, &style, (x, y)).map_err(reason)
}

/// Draws a panel that has no finite data: its title and a "no data" caption.
fn draw_empty(area: &Area<'_>, title: &str) -> Result<(), String> {
    let body = area.titled(title, (FONT, 18)).map_err(reason)?;
    centered_text(&body, "no data", 16.0)
}

/// Running minimum and maximum of the values fed to it.
#[derive(Debug, Clone, Copy)]
struct Extent {
    lo: f64,
    hi: f64,
}

impl Extent {
    /// An extent holding no value.
    fn empty() -> Self {
        Self { lo: f64::INFINITY, hi: f64::NEG_INFINITY }
    }

    /// Widens the extent to include `v`.
    fn add(&mut self, v: f64) {
        self.lo = self.lo.min(v);
        self.hi = self.hi.max(v);
    }

    /// Whether no value was added.
    fn is_empty(&self) -> bool {
        self.lo > self.hi
    }
}

/// Largest magnitude placed on an axis. Beyond it a range's width or ratio overflows, and
/// plotters' search for tick positions then never ends (it loops on infinite or NaN steps), so
/// larger values are left out of a figure (the tables keep them).
const MAX_MAGNITUDE: f64 = 1e300;
/// Smallest positive value placed on a logarithmic axis (see [`MAX_MAGNITUDE`]).
const MIN_LOG: f64 = 1e-300;
/// Most decades a logarithmic axis spans: data spread wider keep their upper decades, and the
/// smaller values are not drawn.
const MAX_DECADES: f64 = 100.0;
/// Smallest width of a linear axis relative to the magnitude of its ends: a narrower range is
/// widened as a single value is (below it, tick positions are lost in rounding).
const MIN_RELATIVE_WIDTH: f64 = 1e-9;

/// Whether `v` can be placed on an axis: finite and of magnitude at most [`MAX_MAGNITUDE`], and
/// on a log axis at least [`MIN_LOG`].
fn usable(v: f64, log: bool) -> bool {
    v.is_finite() && v.abs() <= MAX_MAGNITUDE && (!log || v >= MIN_LOG)
}

/// The drawn range of a linear axis: the data extent with a margin, widened when degenerate
/// (a single value, or a width below [`MIN_RELATIVE_WIDTH`] of its magnitude); `[0, 1]` when
/// empty. With `anchor_zero`, the range includes 0 and gets no margin below a lower end at 0
/// (histogram bars rest on it). The extent must hold usable values only.
fn linear_range(extent: Extent, anchor_zero: bool) -> Range<f64> {
    let mut ext = extent;
    if anchor_zero {
        ext.add(0.0);
    }
    if ext.is_empty() {
        return 0.0..1.0;
    }
    let (mut lo, mut hi) = (ext.lo, ext.hi);
    let magnitude = lo.abs().max(hi.abs());
    if hi - lo <= MIN_RELATIVE_WIDTH * magnitude {
        let centre = 0.5 * (lo + hi);
        let pad = if magnitude == 0.0 { 1.0 } else { magnitude * 0.1 };
        return (centre - pad)..(centre + pad);
    }
    let margin = (hi - lo) * RANGE_MARGIN;
    if !(anchor_zero && lo == 0.0) {
        lo -= margin;
    }
    hi += margin;
    lo..hi
}

/// The drawn range of a logarithmic axis: the data extent (at most [`MAX_DECADES`] of it, the
/// upper ones) with a margin in decades, widened when degenerate, and widened to the
/// surrounding powers of ten when it would contain none (so that the axis has at least one
/// labelled tick); `[1, 10]` when empty. The extent must hold usable values only, so the range
/// is finite, positive and spans a finite ratio.
fn log_range(extent: Extent) -> Range<f64> {
    if extent.is_empty() {
        return 1.0..10.0;
    }
    let (mut lo, mut hi) = (extent.lo.log10(), extent.hi.log10());
    lo = lo.max(hi - MAX_DECADES);
    if hi - lo < 1e-9 {
        lo -= 0.5;
        hi += 0.5;
    } else {
        let margin = (hi - lo) * RANGE_MARGIN;
        lo -= margin;
        hi += margin;
    }
    if hi.floor() < lo {
        lo = lo.floor();
        hi = hi.ceil();
    }
    10f64.powf(lo)..10f64.powf(hi)
}

/// Whether `v` lies within `range` (the axes' ranges are increasing).
fn within(v: f64, range: &Range<f64>) -> bool {
    range.start <= v && v <= range.end
}

/// `v` with rounding residue of zero removed: a value within a few ε of 0, relative to the ends
/// of a `range` that contains 0, is 0 (tick positions computed in floating point land on
/// `-1.11e-16` where they mean 0). Values of a range without 0 (every log axis) are kept.
pub(crate) fn snap_to_zero(v: f64, range: &Range<f64>) -> f64 {
    let magnitude = range.start.abs().max(range.end.abs());
    let contains_zero = range.start <= 0.0 && 0.0 <= range.end;
    if contains_zero && v.abs() <= 16.0 * f64::EPSILON * magnitude { 0.0 } else { v }
}

/// A compact tick label: plain decimals for moderate magnitudes, scientific notation otherwise.
fn format_tick(v: &f64) -> String {
    let v = *v;
    if v == 0.0 {
        return "0".to_string();
    }
    let mag = v.abs();
    if (1e-3..1e5).contains(&mag) {
        let text = format!("{v:.4}");
        let text = text.trim_end_matches('0').trim_end_matches('.');
        if text == "-0" { "0".to_string() } else { text.to_string() }
    } else {
        let text = format!("{v:.3e}");
        match text.split_once('e') {
            Some((mantissa, exp)) => {
                let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
                format!("{mantissa}e{exp}")
            }
            None => text,
        }
    }
}

/// The palette colour for index `i`, cycled.
fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// The points of `series` that can be placed on the axes.
fn usable_points(series: &Series, log_x: bool, log_y: bool) -> Vec<(f64, f64)> {
    series.points.iter().copied().filter(|&(x, y)| usable(x, log_x) && usable(y, log_y)).collect()
}

/// Draws a line/point plot, choosing linear or logarithmic coordinates for each axis.
fn draw_line_plot(area: &Area<'_>, plot: &LinePlot) -> Result<(), String> {
    let (log_x, log_y) = (plot.log_x, plot.log_y);
    let series: Vec<(&Series, Vec<(f64, f64)>)> =
        plot.series.iter().map(|s| (s, usable_points(s, log_x, log_y))).filter(|(_, p)| !p.is_empty()).collect();
    let markers: Vec<&Marker> = plot.markers.iter().filter(|m| usable(m.x, log_x)).collect();
    if series.is_empty() && markers.is_empty() {
        return draw_empty(area, &plot.title);
    }
    let (mut xs, mut ys) = (Extent::empty(), Extent::empty());
    for (x, y) in series.iter().flat_map(|(_, p)| p.iter().copied()) {
        xs.add(x);
        ys.add(y);
    }
    for marker in &markers {
        xs.add(marker.x);
    }
    let axes = Axes {
        x: if log_x { log_range(xs) } else { linear_range(xs, false) },
        y: if log_y { log_range(ys) } else { linear_range(ys, false) },
        log_x,
        log_y,
    };
    // A logarithmic axis may leave out the lowest decades: draw only what lies on the axes.
    let on_axes = |&(x, y): &(f64, f64)| within(x, &axes.x) && within(y, &axes.y);
    let series: Vec<(&Series, Vec<(f64, f64)>)> = series
        .into_iter()
        .map(|(s, p)| (s, p.into_iter().filter(on_axes).collect::<Vec<_>>()))
        .filter(|(_, p)| !p.is_empty())
        .collect();
    let markers: Vec<&Marker> = markers.into_iter().filter(|m| within(m.x, &axes.x)).collect();
    let marker_xs: Vec<f64> = markers.iter().map(|m| m.x).collect();
    let entries = series.iter().filter(|(s, _)| !s.label.is_empty()).count()
        + markers.iter().filter(|m| !m.label.is_empty()).count();
    let legend = legend_position(&series, &marker_xs, entries, &axes);
    let panel = Panel { title: &plot.title, x_label: &plot.x_label, y_label: &plot.y_label, legend };
    let content = LineContent { series: &series, markers: &markers };
    let (x, y) = (axes.x, axes.y);
    match (log_x, log_y) {
        (false, false) => draw_lines_in(area, &panel, &content, x, y),
        (true, false) => draw_lines_in(area, &panel, &content, x.log_scale(), y),
        (false, true) => draw_lines_in(area, &panel, &content, x, y.log_scale()),
        (true, true) => draw_lines_in(area, &panel, &content, x.log_scale(), y.log_scale()),
    }
}

/// The drawn ranges of both axes and whether each is logarithmic.
struct Axes {
    x: Range<f64>,
    y: Range<f64>,
    log_x: bool,
    log_y: bool,
}

/// Where `v` falls along an axis drawn over `range`: 0 at its start, 1 at its end.
fn fraction(v: f64, range: &Range<f64>, log: bool) -> f64 {
    if log {
        (v / range.start).ln() / (range.end / range.start).ln()
    } else {
        (v - range.start) / (range.end - range.start)
    }
}

/// The legend corner covering the fewest drawn samples (series points, points along line
/// segments, marker lines), preferring upper right, then upper left, lower right, lower left.
/// `entries` (the number of legend lines) sets the height of the corner box considered.
fn legend_position(
    series: &[(&Series, Vec<(f64, f64)>)],
    marker_xs: &[f64],
    entries: usize,
    axes: &Axes,
) -> SeriesLabelPosition {
    const SUBDIVISIONS: u32 = 4;
    let mut samples: Vec<(f64, f64)> = Vec::new();
    for (s, points) in series {
        let norm: Vec<(f64, f64)> =
            points.iter().map(|&(x, y)| (fraction(x, &axes.x, axes.log_x), fraction(y, &axes.y, axes.log_y))).collect();
        samples.extend(norm.iter().copied());
        if s.style != SeriesStyle::Points {
            for pair in norm.windows(2) {
                let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
                for k in 1..SUBDIVISIONS {
                    let t = f64::from(k) / f64::from(SUBDIVISIONS);
                    samples.push((x0 + t * (x1 - x0), y0 + t * (y1 - y0)));
                }
            }
        }
    }
    for &x in marker_xs {
        let fx = fraction(x, &axes.x, axes.log_x);
        samples.extend([0.1, 0.5, 0.9].map(|fy| (fx, fy)));
    }
    let w = 0.4;
    let h = (0.1 + 0.06 * entries as f64).min(0.8);
    let corners = [
        (SeriesLabelPosition::UpperRight, true, true),
        (SeriesLabelPosition::UpperLeft, false, true),
        (SeriesLabelPosition::LowerRight, true, false),
        (SeriesLabelPosition::LowerLeft, false, false),
    ];
    let covered = |right: bool, upper: bool| {
        samples
            .iter()
            .filter(|&&(fx, fy)| {
                (if right { fx > 1.0 - w } else { fx < w }) && (if upper { fy > 1.0 - h } else { fy < h })
            })
            .count()
    };
    let mut best = (SeriesLabelPosition::UpperRight, usize::MAX);
    for (position, right, upper) in corners {
        let n = covered(right, upper);
        if n < best.1 {
            best = (position, n);
        }
    }
    best.0
}

/// Title and axis descriptions of one panel.
struct Panel<'a> {
    title: &'a str,
    x_label: &'a str,
    y_label: &'a str,
    legend: SeriesLabelPosition,
}

/// What a line panel draws, already filtered to the axes.
struct LineContent<'a> {
    series: &'a [(&'a Series, Vec<(f64, f64)>)],
    markers: &'a [&'a Marker],
}

/// The chart type every panel draws on, for coordinate types `X` and `Y`.
type Chart<'a, 'b, X, Y> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<X, Y>>;

/// Builds a chart with caption, axis areas and mesh on `area`.
fn build_chart<'a, 'b, X, Y>(
    area: &'a Area<'b>,
    panel: &Panel<'_>,
    x: X,
    y: Y,
) -> Result<Chart<'a, 'b, X::CoordDescType, Y::CoordDescType>, String>
where
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(area)
        .caption(panel.title, (FONT, 18))
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(64)
        .build_cartesian_2d(x, y)
        .map_err(reason)?;
    let (x_range, y_range) = (chart.x_range(), chart.y_range());
    chart
        .configure_mesh()
        .x_desc(panel.x_label)
        .y_desc(panel.y_label)
        .x_label_formatter(&|v| format_tick(&snap_to_zero(*v, &x_range)))
        .y_label_formatter(&|v| format_tick(&snap_to_zero(*v, &y_range)))
        .axis_desc_style((FONT, 14))
        .label_style((FONT, 12))
        .light_line_style(RGBColor(0, 0, 0).mix(0.05))
        .max_light_lines(4)
        .draw()
        .map_err(reason)?;
    Ok(chart)
}

/// Draws the legend of `chart` when `any_label` says it has entries.
fn draw_legend<'a, 'b: 'a, X: Ranged, Y: Ranged>(
    chart: &mut Chart<'a, 'b, X, Y>,
    position: SeriesLabelPosition,
    any_label: bool,
) -> Result<(), String> {
    if !any_label {
        return Ok(());
    }
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(0, 0, 0).mix(0.4))
        .label_font((FONT, 12))
        .draw()
        .map_err(reason)
}

/// Draws `series` (already filtered to the axes) onto `chart`, with its legend entry.
fn draw_series<X, Y>(chart: &mut Chart<'_, '_, X, Y>, series: &Series, points: &[(f64, f64)]) -> Result<(), String>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let c = color(series.color);
    let line = c.stroke_width(2);
    let annotation = match series.style {
        SeriesStyle::Line => {
            let anno = chart.draw_series(LineSeries::new(points.iter().copied(), line)).map_err(reason)?;
            if series.label.is_empty() {
                return Ok(());
            }
            anno.legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], line))
        }
        SeriesStyle::Dashed => {
            let anno = chart.draw_series(DashedLineSeries::new(points.iter().copied(), 8, 5, line)).map_err(reason)?;
            if series.label.is_empty() {
                return Ok(());
            }
            anno.legend(move |(x, y)| DashedPathElement::new(vec![(x, y), (x + 20, y)], 6, 3, line))
        }
        SeriesStyle::Points => {
            let anno = chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, c.filled()))).map_err(reason)?;
            if series.label.is_empty() {
                return Ok(());
            }
            anno.legend(move |(x, y)| Circle::new((x + 10, y), 3, c.filled()))
        }
        SeriesStyle::Band => {
            let fill = c.mix(0.2).filled();
            let anno = chart.draw_series(std::iter::once(Polygon::new(points.to_vec(), fill))).map_err(reason)?;
            if series.label.is_empty() {
                return Ok(());
            }
            anno.legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 20, y + 5)], fill))
        }
    };
    annotation.label(series.label.as_str());
    Ok(())
}

/// Draws a line panel in the given coordinates.
fn draw_lines_in<X, Y>(area: &Area<'_>, panel: &Panel<'_>, content: &LineContent<'_>, x: X, y: Y) -> Result<(), String>
where
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let mut chart = build_chart(area, panel, x, y)?;
    let y_span = chart.y_range();
    let mut any_label = false;
    for (series, points) in content.series {
        any_label |= !series.label.is_empty();
        draw_series(&mut chart, series, points)?;
    }
    for marker in content.markers {
        let style = color(marker.color).stroke_width(1);
        let ends = vec![(marker.x, y_span.start), (marker.x, y_span.end)];
        let anno = chart.draw_series(DashedLineSeries::new(ends, 4, 4, style)).map_err(reason)?;
        if !marker.label.is_empty() {
            any_label = true;
            anno.label(marker.label.as_str())
                .legend(move |(x, y)| DashedPathElement::new(vec![(x, y), (x + 20, y)], 4, 3, style));
        }
    }
    draw_legend(&mut chart, panel.legend.clone(), any_label)
}

/// Draws a histogram panel: bars from 0 to each bin's density, then the curves.
fn draw_histogram(area: &Area<'_>, plot: &HistogramPlot) -> Result<(), String> {
    let bins: Vec<(f64, f64, f64)> = plot
        .bins
        .iter()
        .filter(|&&(lo, hi, d)| usable(lo, false) && usable(hi, false) && usable(d, false))
        .map(|&(lo, hi, d)| (lo.min(hi), lo.max(hi), d))
        .collect();
    let curves: Vec<(&Series, Vec<(f64, f64)>)> =
        plot.curves.iter().map(|s| (s, usable_points(s, false, false))).filter(|(_, p)| !p.is_empty()).collect();
    if bins.is_empty() && curves.is_empty() {
        return draw_empty(area, &plot.title);
    }
    let (mut xs, mut ys) = (Extent::empty(), Extent::empty());
    for &(lo, hi, d) in &bins {
        xs.add(lo);
        xs.add(hi);
        ys.add(d);
    }
    for (x, y) in curves.iter().flat_map(|(_, p)| p.iter().copied()) {
        xs.add(x);
        ys.add(y);
    }
    let axes = Axes { x: linear_range(xs, false), y: linear_range(ys, true), log_x: false, log_y: false };
    let entries = curves.iter().filter(|(s, _)| !s.label.is_empty()).count();
    let mut tops: Vec<(f64, f64)> = bins.iter().map(|&(lo, hi, d)| (0.5 * (lo + hi), d)).collect();
    tops.extend(bins.iter().flat_map(|&(lo, hi, d)| [0.25, 0.5, 0.75].map(|f| (lo + (hi - lo) * f, 0.5 * d))));
    let bars = Series { label: String::new(), points: tops, style: SeriesStyle::Points, color: 0 };
    let mut covered = curves.clone();
    covered.push((&bars, bars.points.clone()));
    let legend = legend_position(&covered, &[], entries, &axes);
    let panel = Panel { title: &plot.title, x_label: &plot.x_label, y_label: &plot.y_label, legend };
    let mut chart = build_chart(area, &panel, axes.x, axes.y)?;
    let fill = RGBColor(150, 150, 150).mix(0.45).filled();
    let edge = RGBColor(90, 90, 90).stroke_width(1);
    chart.draw_series(bins.iter().map(|&(lo, hi, d)| Rectangle::new([(lo, 0.0), (hi, d)], fill))).map_err(reason)?;
    chart.draw_series(bins.iter().map(|&(lo, hi, d)| Rectangle::new([(lo, 0.0), (hi, d)], edge))).map_err(reason)?;
    let mut any_label = false;
    for (series, points) in &curves {
        any_label |= !series.label.is_empty();
        draw_series(&mut chart, series, points)?;
    }
    draw_legend(&mut chart, panel.legend.clone(), any_label)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(svg: &str, tag: &str) -> usize {
        svg.matches(&format!("<{tag}")).count()
    }

    fn shapes(svg: &str) -> usize {
        ["path", "line", "polyline", "rect", "circle"].iter().map(|t| count(svg, t)).sum()
    }

    fn line_plot() -> LinePlot {
        let ts: Vec<f64> = (0..40).map(|i| 10f64.powf(-2.0 + 0.1 * f64::from(i))).collect();
        LinePlot {
            title: "Mode growth".into(),
            x_label: "time t".into(),
            y_label: "mean w".into(),
            log_x: true,
            log_y: false,
            series: vec![
                Series {
                    label: "simulation".into(),
                    points: ts.iter().map(|&t| (t, t.tanh())).chain([(f64::NAN, 1.0), (-1.0, 0.5)]).collect(),
                    style: SeriesStyle::Points,
                    color: 0,
                },
                Series {
                    label: "theory".into(),
                    points: ts.iter().map(|&t| (t, t.tanh())).collect(),
                    style: SeriesStyle::Line,
                    color: 1,
                },
                Series {
                    label: "linearised".into(),
                    points: ts.iter().map(|&t| (t, t.min(1.2))).collect(),
                    style: SeriesStyle::Dashed,
                    color: 10,
                },
            ],
            markers: vec![
                Marker { x: 0.7, label: "t_peak (theory)".into(), color: 2 },
                Marker { x: -3.0, label: "skipped".into(), color: 3 },
            ],
        }
    }

    fn histogram() -> HistogramPlot {
        let bins: Vec<(f64, f64, f64)> = (0..20)
            .map(|i| {
                let lo = -2.0 + 0.2 * f64::from(i);
                (lo, lo + 0.2, (-(lo + 0.1) * (lo + 0.1) / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt())
            })
            .collect();
        let curve: Vec<(f64, f64)> = (0..=80)
            .map(|i| {
                let x = -2.0 + 0.05 * f64::from(i);
                (x, (-x * x / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt())
            })
            .collect();
        HistogramPlot {
            title: "Stationary law".into(),
            x_label: "w".into(),
            y_label: "density".into(),
            bins,
            curves: vec![
                Series { label: "exact density".into(), points: curve.clone(), style: SeriesStyle::Line, color: 1 },
                Series {
                    label: "Boltzmann law".into(),
                    points: curve.iter().map(|&(x, y)| (x, 0.9 * y)).collect(),
                    style: SeriesStyle::Dashed,
                    color: 2,
                },
            ],
        }
    }

    #[test]
    fn line_plot_with_log_x_markers_and_all_styles() {
        let svg = render_svg(&Figure::Lines(line_plot())).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
        for text in ["Mode growth", "time t", "mean w", "simulation", "theory", "linearised", "t_peak (theory)"] {
            assert!(svg.contains(text), "missing {text}");
        }
        assert!(!svg.contains("skipped"), "marker at x < 0 must be dropped on a log axis");
        assert!(!svg.contains("NaN"));
        // 40 circles for the points, plus one in the legend.
        assert_eq!(count(&svg, "circle"), 41);
        assert!(shapes(&svg) > 60, "{} shapes", shapes(&svg));
    }

    #[test]
    fn log_log_plot_renders() {
        let mut plot = line_plot();
        plot.log_y = true;
        plot.series[2].points.push((1.0, 0.0));
        let svg = render_svg(&Figure::Lines(plot)).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("Mode growth"));
        assert!(shapes(&svg) > 60);
    }

    #[test]
    fn histogram_with_curves() {
        let svg = render_svg(&Figure::Histogram(histogram())).unwrap();
        assert!(svg.starts_with("<svg"));
        for text in ["Stationary law", "density", "exact density", "Boltzmann law"] {
            assert!(svg.contains(text), "missing {text}");
        }
        // Each bin is drawn filled and outlined.
        assert!(count(&svg, "rect") >= 40, "{} rects", count(&svg, "rect"));
        assert!(shapes(&svg) > 50);
    }

    #[test]
    fn grid_of_three_panels() {
        let mut second = line_plot();
        second.title = "Second mode".into();
        second.log_x = false;
        let figure = Figure::Grid {
            title: "All modes".into(),
            columns: 2,
            panels: vec![Figure::Lines(line_plot()), Figure::Lines(second), Figure::Histogram(histogram())],
        };
        let svg = render_svg(&figure).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains(&format!("width=\"{}\"", 2 * PANEL_WIDTH)), "{}", &svg[..200.min(svg.len())]);
        assert!(svg.contains(&format!("height=\"{}\"", 2 * PANEL_HEIGHT + GRID_TITLE_HEIGHT)));
        for text in ["All modes", "Mode growth", "Second mode", "Stationary law"] {
            assert!(svg.contains(text), "missing {text}");
        }
        assert!(shapes(&svg) > 150);
    }

    #[test]
    fn empty_data_draws_no_data_panel() {
        let plot = LinePlot {
            title: "Nothing here".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            log_x: true,
            log_y: true,
            series: vec![Series {
                label: "bad".into(),
                points: vec![(f64::NAN, 1.0), (0.0, 1.0), (1.0, -1.0), (f64::INFINITY, 2.0)],
                style: SeriesStyle::Line,
                color: 0,
            }],
            markers: vec![],
        };
        let svg = render_svg(&Figure::Lines(plot)).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("Nothing here"));
        assert!(svg.contains("no data"));
        let hist = HistogramPlot {
            title: "Empty histogram".into(),
            x_label: "w".into(),
            y_label: "density".into(),
            bins: vec![],
            curves: vec![],
        };
        let svg = render_svg(&Figure::Histogram(hist)).unwrap();
        assert!(svg.contains("Empty histogram") && svg.contains("no data"));
    }

    #[test]
    fn degenerate_ranges_are_widened() {
        let plot = LinePlot {
            title: "Single point".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            log_x: false,
            log_y: true,
            series: vec![Series {
                label: "one".into(),
                points: vec![(2.0, 3.0)],
                style: SeriesStyle::Points,
                color: 4,
            }],
            markers: vec![Marker { x: 2.0, label: String::new(), color: 0 }],
        };
        let svg = render_svg(&Figure::Lines(plot)).unwrap();
        assert!(svg.contains("Single point"));
        assert!(count(&svg, "circle") >= 1);
        let r = linear_range(Extent { lo: 5.0, hi: 5.0 }, false);
        assert!(r.start < 5.0 && r.end > 5.0);
        let r = linear_range(Extent { lo: 0.0, hi: 0.0 }, false);
        assert!(r.start < 0.0 && r.end > 0.0);
        let r = log_range(Extent { lo: 3.0, hi: 3.0 });
        assert!(r.start > 0.0 && r.start < 3.0 && r.end > 3.0);
        // A range within one decade is widened to the surrounding powers of ten.
        let r = log_range(Extent { lo: 2.0, hi: 8.0 });
        assert!((r.start - 1.0).abs() < 1e-12 && (r.end - 10.0).abs() < 1e-9, "{r:?}");
        let r = linear_range(Extent { lo: 0.0, hi: 2.0 }, true);
        assert_eq!(r.start, 0.0);
    }

    /// Values that made plotters' tick search loop forever before the axes were bounded: a
    /// log axis over a ratio that overflows (1e-54 to 5e273 with margins, or up to f64::MAX),
    /// subnormal and infinite values, and a linear range whose width overflows.
    #[test]
    fn hostile_data_draw_on_bounded_axes() {
        let hostile = vec![
            (0.5, 1e-54),
            (1.0, 5.5e273),
            (2.0, f64::MAX),
            (3.0, 5e-324),
            (4.0, f64::INFINITY),
            (5.0, f64::NAN),
            (6.0, -f64::MAX),
            (7.0, 1e-300),
            (f64::MAX, 1.0),
        ];
        for (log_x, log_y) in [(true, true), (false, true), (true, false), (false, false)] {
            let plot = LinePlot {
                title: "Hostile".into(),
                x_label: "t".into(),
                y_label: "v".into(),
                log_x,
                log_y,
                series: vec![Series { label: "s".into(), points: hostile.clone(), style: SeriesStyle::Line, color: 0 }],
                markers: vec![Marker { x: 1e299, label: "far".into(), color: 1 }],
            };
            let svg = render_svg(&Figure::Lines(plot)).unwrap();
            assert!(svg.contains("Hostile") && !svg.contains("NaN") && !svg.contains("inf"), "{log_x} {log_y}");
        }
        let mut ys = Extent::empty();
        for &(_, y) in hostile.iter().filter(|&&(_, y)| usable(y, true)) {
            ys.add(y);
        }
        let r = log_range(ys);
        assert!(r.start > 0.0 && r.end.is_finite() && (r.end / r.start).is_finite(), "{r:?}");
        assert!((r.end / r.start).log10() <= MAX_DECADES * (1.0 + 2.0 * RANGE_MARGIN) + 1e-6, "{r:?}");
        assert!(within(5.5e273, &r) && !within(1e-54, &r), "the upper decades are kept: {r:?}");
        let r = linear_range(Extent { lo: -MAX_MAGNITUDE, hi: MAX_MAGNITUDE }, false);
        assert!((r.end - r.start).is_finite(), "{r:?}");
        // A width lost in rounding is widened like a single value.
        let r = linear_range(Extent { lo: 1e10, hi: 1e10 + 1e-5 }, false);
        assert!(r.start < 0.95e10 && r.end > 1.05e10, "{r:?}");
        let hist = HistogramPlot {
            title: "Hostile histogram".into(),
            x_label: "w".into(),
            y_label: "density".into(),
            bins: vec![(0.0, f64::MAX, 1.0), (f64::NEG_INFINITY, 0.0, 1.0), (0.0, 1.0, f64::NAN), (0.0, 1.0, 0.5)],
            curves: vec![Series { label: "c".into(), points: hostile, style: SeriesStyle::Line, color: 1 }],
        };
        assert!(render_svg(&Figure::Histogram(hist)).unwrap().contains("Hostile histogram"));
    }

    #[test]
    fn tick_labels_are_compact() {
        assert_eq!(format_tick(&0.0), "0");
        assert_eq!(format_tick(&0.5), "0.5");
        assert_eq!(format_tick(&100.0), "100");
        assert_eq!(format_tick(&0.0020000000000000005), "0.002");
        assert_eq!(format_tick(&1e-5), "1e-5");
        assert_eq!(format_tick(&2.5e6), "2.5e6");
    }

    #[test]
    fn ticks_within_a_few_epsilon_of_zero_read_zero() {
        let linear = -0.15..0.3;
        assert_eq!(snap_to_zero(-1.1102230246251565e-16, &linear), 0.0);
        assert_eq!(format_tick(&snap_to_zero(5.551115123125783e-17, &linear)), "0");
        // Real values are kept: a tick of a tiny axis, and any tick of an axis without 0.
        assert_eq!(snap_to_zero(-0.05, &linear), -0.05);
        assert_eq!(snap_to_zero(1e-20, &(-1e-18..1e-18)), 1e-20);
        assert_eq!(snap_to_zero(1e-20, &(1e-22..1.0)), 1e-20);
        // Drawn: axes through 0 whose ticks plotters computes with rounding residue (the dose
        // figures' ±tolerance bands gave `-2.776e-17` and `1.388e-17`) label it `0`.
        let labels = |svg: &str| -> Vec<String> {
            svg.split("<text")
                .skip(1)
                .filter_map(|t| Some(t.split_once('>')?.1.split('<').next()?.trim().to_string()))
                .collect()
        };
        let mut svg = String::new();
        for lo in [-0.1, -0.15, -0.3] {
            for hi in [0.1, 0.15, 0.2, 0.26, 0.27, 0.45, 0.6, 1.1] {
                let plot = LinePlot {
                    title: "snap".into(),
                    x_label: "x".into(),
                    y_label: "y".into(),
                    log_x: false,
                    log_y: false,
                    series: vec![Series {
                        label: "band".into(),
                        points: vec![(0.0, hi), (0.9, hi), (0.9, lo), (0.0, lo)],
                        style: SeriesStyle::Band,
                        color: 2,
                    }],
                    markers: vec![],
                };
                svg = render_svg(&Figure::Lines(plot)).unwrap();
                let residue: Vec<String> = labels(&svg).into_iter().filter(|l| l.contains("e-1")).collect();
                assert!(residue.is_empty(), "[{lo}, {hi}]: residue tick labels {residue:?}");
                assert!(labels(&svg).iter().any(|l| l == "0"), "[{lo}, {hi}]: the zero tick");
            }
        }
        assert!(svg.contains("<polygon"), "the band is a filled polygon");
    }

    #[test]
    fn grids_reject_nesting_and_zero_columns() {
        let inner = Figure::Grid { title: "inner".into(), columns: 1, panels: vec![Figure::Lines(line_plot())] };
        let nested = Figure::Grid { title: "outer".into(), columns: 1, panels: vec![inner] };
        assert!(matches!(render_svg(&nested), Err(ExperimentError::Figure { .. })));
        let zero = Figure::Grid { title: "zero".into(), columns: 0, panels: vec![Figure::Lines(line_plot())] };
        assert!(matches!(render_svg(&zero), Err(ExperimentError::Figure { .. })));
    }

    #[test]
    fn write_svg_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("figure.svg");
        let figure = Figure::Histogram(histogram());
        write_svg(&figure, &path).unwrap();
        assert!(!path.with_file_name(format!(".figure.svg.tmp-{}", std::process::id())).exists());
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["figure.svg"], "no temporary file is left");
        let back = std::fs::read_to_string(&path).unwrap();
        assert_eq!(back, render_svg(&figure).unwrap());
        assert!(back.starts_with("<svg") && back.contains("Stationary law"));
    }

    #[test]
    fn write_into_missing_directory_fails_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir").join("figure.svg");
        let err = write_svg(&Figure::Lines(line_plot()), &path).unwrap_err();
        match &err {
            ExperimentError::Io { path: p, .. } => assert_eq!(p, &path),
            other => panic!("expected an Io error, got {other:?}"),
        }
        assert!(err.to_string().contains("missing-dir"), "{err}");
        assert!(!path.exists());
        assert!(!path.with_file_name(format!(".figure.svg.tmp-{}", std::process::id())).exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing is left beside it");
    }

    #[test]
    fn legend_avoids_the_data() {
        let axes = Axes { x: 0.0..1.0, y: 0.0..1.0, log_x: false, log_y: false };
        let rising =
            Series { label: "rising".into(), points: vec![(0.0, 0.0), (1.0, 1.0)], style: SeriesStyle::Line, color: 0 };
        let pts = rising.points.clone();
        // The diagonal crosses the upper-right corner, so the legend goes upper left.
        assert_eq!(legend_position(&[(&rising, pts)], &[], 1, &axes), SeriesLabelPosition::UpperLeft);
        let flat_top = Series {
            label: "flat".into(),
            points: (0..=10).map(|i| (f64::from(i) / 10.0, 0.95)).collect(),
            style: SeriesStyle::Points,
            color: 0,
        };
        let pts = flat_top.points.clone();
        assert_eq!(legend_position(&[(&flat_top, pts)], &[0.9], 1, &axes), SeriesLabelPosition::LowerLeft);
        let axes = Axes { x: 1.0..100.0, y: 1.0..100.0, log_x: true, log_y: true };
        assert!((fraction(10.0, &axes.x, true) - 0.5).abs() < 1e-12);
    }
}
