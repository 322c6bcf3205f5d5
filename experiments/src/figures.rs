//! SVG figures: line/point plots (linear or logarithmic axes, with vertical theory markers and
//! labelled horizontal levels), histograms with overlaid density curves and grids of such
//! panels, rendered with plotters' SVG backend and written to disk atomically.
//!
//! Every figure's legend is one shared key in a band of its own between the title and the
//! panels ([`layout`]), so that no legend covers data. Tick labels use one format per axis
//! and read 0 as `0` ([`snap_tick`]). Text is emitted as SVG `<text>` elements, so no system
//! fonts are needed; plotters' naive font metrics are used for layout.

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

/// A tick value as it should read: 0 where it is zero up to rounding, i.e. where
/// `|v| ≤ 1000 ε · scale` with `scale` the axis' width (the tick search of plotters lands on
/// `6.776e-21` or `-1.11e-16` where it means 0); `v` otherwise.
pub fn snap_tick(v: f64, scale: f64) -> f64 {
    if v.abs() <= 1e3 * f64::EPSILON * scale.abs() { 0.0 } else { v }
}

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

/// The Okabe–Ito colour-blind-safe palette, ordered so that the first colours contrast best
/// on white, with its pale yellow (invisible as a thin line) replaced by a dark one, and dark
/// colours after it for marker lines.
const PALETTE: [RGBColor; 12] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(230, 159, 0),   // orange
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(0, 0, 0),       // black
    RGBColor(140, 110, 0),   // dark yellow
    RGBColor(110, 110, 110), // grey
    RGBColor(150, 20, 40),   // dark red
    RGBColor(20, 90, 40),    // dark green
    RGBColor(30, 40, 120),   // navy
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
    /// A horizontal reference level at the first point's y, drawn dashed across the whole
    /// panel with its label written on it (e.g. a precision's resolution floor).
    Level,
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
    /// Index into a fixed palette of twelve colours (colour-blind-safe first), cycled.
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

/// A figure: one panel, or a grid of panels (e.g. one per mode) with a number of columns; its
/// legend is one key above the panels.
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
    /// An empty cell of a grid (so that a row can hold one run's panels only).
    Blank,
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

/// A rectangle of the figure in pixels: left, top, width, height.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rect {
    x: u32,
    y: u32,
    w: u32,
    h: u32,
}

impl Rect {
    /// Whether the two rectangles share any pixel.
    #[cfg(test)]
    fn overlaps(&self, other: &Rect) -> bool {
        self.x < other.x + other.w
            && other.x < self.x + self.w
            && self.y < other.y + other.h
            && other.y < self.y + self.h
    }
}

/// Where a figure's parts go: the title band, the key band (the legend of every panel) and the
/// panels, one above the other and never overlapping ([`layout`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Layout {
    width: u32,
    height: u32,
    title: Option<Rect>,
    key: Option<Rect>,
    /// The key's columns and the width of each.
    key_columns: (u32, u32),
    panels: Vec<Rect>,
}

/// Height of one line of the key, in pixels.
const KEY_ROW: u32 = 18;
/// Space above and below the key's lines, in pixels.
const KEY_PAD: u32 = 8;
/// Width of one character of the key's text (12 px sans-serif), generously.
const KEY_CHAR: f64 = 7.0;

/// The layout of `figure`, whose key has `entries` lines of at most `longest` characters:
/// a title band (grids), the key band (with any entry) in as many columns as fit the width,
/// then the panels in `columns` columns, row by row.
pub(crate) fn layout(figure: &Figure, entries: usize, longest: usize) -> Result<Layout, String> {
    let (title, cols, n) = match figure {
        Figure::Grid { columns, panels, .. } => {
            if *columns == 0 {
                return Err("a grid needs at least one column".to_string());
            }
            if panels.iter().any(|p| matches!(p, Figure::Grid { .. })) {
                return Err("nested grids are not supported".to_string());
            }
            (true, (*columns).min(panels.len()).max(1), panels.len())
        }
        _ => (false, 1, 1),
    };
    let rows = n.div_ceil(cols).max(1);
    let (cols_u32, rows_u32) = (to_u32(cols)?, to_u32(rows)?);
    let width = PANEL_WIDTH.checked_mul(cols_u32).ok_or("grid too wide")?;
    let title_h = if title { GRID_TITLE_HEIGHT } else { 0 };
    let column_w = ((40.0 + KEY_CHAR * longest as f64) as u32).clamp(160, width);
    let key_cols = (width / column_w).max(1);
    let key_rows = to_u32(entries)?.div_ceil(key_cols);
    let key_h = if entries == 0 { 0 } else { key_rows * KEY_ROW + 2 * KEY_PAD };
    let top = title_h + key_h;
    let height = PANEL_HEIGHT.checked_mul(rows_u32).and_then(|h| h.checked_add(top)).ok_or("grid too tall")?;
    let panels = (0..n)
        .map(|i| {
            let (r, c) = ((i / cols) as u32, (i % cols) as u32);
            Rect { x: c * PANEL_WIDTH, y: top + r * PANEL_HEIGHT, w: PANEL_WIDTH, h: PANEL_HEIGHT }
        })
        .collect();
    Ok(Layout {
        width,
        height,
        title: title.then_some(Rect { x: 0, y: 0, w: width, h: title_h }),
        key: (entries > 0).then_some(Rect { x: 0, y: title_h, w: width, h: key_h }),
        key_columns: (key_cols, width / key_cols),
        panels,
    })
}

/// How a key entry is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Glyph {
    /// A series' style.
    Series(SeriesStyle),
    /// A vertical marker line.
    Marker,
}

/// One line of a figure's key.
#[derive(Debug, Clone, PartialEq)]
struct KeyEntry {
    label: String,
    glyph: Glyph,
    color: usize,
}

/// The key of a figure: every labelled series with a point on its axes and every labelled
/// marker of its panels, once each (by label, glyph and colour), in order of appearance.
fn key_entries(figure: &Figure) -> Vec<KeyEntry> {
    let mut entries: Vec<KeyEntry> = Vec::new();
    let mut add = |entry: KeyEntry| {
        if !entry.label.is_empty() && !entries.contains(&entry) {
            entries.push(entry);
        }
    };
    let panels = match figure {
        Figure::Grid { panels, .. } => panels.iter().collect::<Vec<_>>(),
        other => vec![other],
    };
    for panel in panels {
        let (series, markers, log_x, log_y) = match panel {
            Figure::Lines(p) => (&p.series, &p.markers[..], p.log_x, p.log_y),
            Figure::Histogram(h) => (&h.curves, &[][..], false, false),
            Figure::Grid { .. } | Figure::Blank => continue,
        };
        for s in series.iter().filter(|s| !usable_points(s, log_x, log_y).is_empty()) {
            add(KeyEntry { label: s.label.clone(), glyph: Glyph::Series(s.style), color: s.color });
        }
        for m in markers.iter().filter(|m| usable(m.x, log_x)) {
            add(KeyEntry { label: m.label.clone(), glyph: Glyph::Marker, color: m.color });
        }
    }
    entries
}

/// Renders `figure`, returning the SVG text or the reason it could not be drawn.
pub(crate) fn render(figure: &Figure) -> Result<String, String> {
    let entries = key_entries(figure);
    let longest = entries.iter().map(|e| e.label.chars().count()).max().unwrap_or(0);
    let layout = layout(figure, entries.len(), longest)?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (layout.width, layout.height)).into_drawing_area();
        root.fill(&WHITE).map_err(reason)?;
        let sub = |r: Rect| -> Result<Area<'_>, String> {
            let (x, y) = (i32::try_from(r.x).map_err(reason)?, i32::try_from(r.y).map_err(reason)?);
            Ok(root.clone().shrink((x, y), (r.w, r.h)))
        };
        if let (Some(r), Figure::Grid { title, .. }) = (layout.title, figure) {
            centered_text(&sub(r)?, title, 22.0)?;
        }
        if let Some(r) = layout.key {
            draw_key(&sub(r)?, &entries, layout.key_columns)?;
        }
        let panels = match figure {
            Figure::Grid { panels, .. } => panels.iter().collect::<Vec<_>>(),
            other => vec![other],
        };
        for (panel, r) in panels.into_iter().zip(layout.panels.iter().copied()) {
            draw_panel(&sub(r)?, panel)?;
        }
        root.present().map_err(reason)?;
    }
    Ok(svg)
}

/// Draws the key: each entry's glyph and label, row by row in `(columns, width)` columns.
fn draw_key(area: &Area<'_>, entries: &[KeyEntry], (columns, width): (u32, u32)) -> Result<(), String> {
    let style = TextStyle::from((FONT, 12).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    for (i, entry) in entries.iter().enumerate() {
        let i = to_u32(i)?;
        let (row, col) = (i / columns, i % columns);
        let x = i32::try_from(col * width + 12).map_err(reason)?;
        let y = i32::try_from(KEY_PAD + row * KEY_ROW + KEY_ROW / 2).map_err(reason)?;
        let c = color(entry.color);
        let line = c.stroke_width(2);
        let drawn = match entry.glyph {
            Glyph::Series(SeriesStyle::Line) => area.draw(&PathElement::new(vec![(x, y), (x + 26, y)], line)),
            Glyph::Series(SeriesStyle::Dashed | SeriesStyle::Level) => {
                area.draw(&DashedPathElement::new(vec![(x, y), (x + 26, y)], 6, 3, line))
            }
            Glyph::Series(SeriesStyle::Points) => area.draw(&Circle::new((x + 13, y), 3, c.filled())),
            Glyph::Series(SeriesStyle::Band) => {
                area.draw(&Rectangle::new([(x, y - 5), (x + 26, y + 5)], c.mix(0.2).filled()))
            }
            Glyph::Marker => area.draw(&DashedPathElement::new(vec![(x + 13, y - 7), (x + 13, y + 7)], 3, 2, line)),
        };
        drawn.map_err(reason)?;
        area.draw(&Text::new(entry.label.as_str(), (x + 34, y), style.clone())).map_err(reason)?;
    }
    Ok(())
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
        Figure::Blank => Ok(()),
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

/// How one axis writes its tick labels: one format for all of them, and 0 read as `0`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Ticks {
    /// A log axis, drawn over log10 of the values: its ticks are exponents, labelled at whole
    /// decades only.
    log: bool,
    /// Scientific notation (`2.5e-4`) rather than plain decimals (`0.25`).
    scientific: bool,
    /// Decimals of the plain format.
    decimals: usize,
    /// The axis' width, for [`snap_tick`] (0 on a log axis, which has no zero).
    scale: f64,
}

impl Ticks {
    /// The format of an axis drawn over `range`: plain decimals where every tick reads well in
    /// them (a linear axis whose larger end is in [0.01, 1e5), with the decimals its tick
    /// spacing needs; a log axis whose decades are 1e-3 to 1e4), scientific notation otherwise.
    fn of(range: &Range<f64>, log: bool) -> Self {
        let width = (range.end - range.start).abs();
        if log {
            // The decades labelled: from the first at or above the start to the last at or
            // below the end.
            let (first, last) = (range.start.log10().ceil(), range.end.log10().floor());
            let plain = first >= -3.0 && last <= 4.0;
            let decimals = (-first).clamp(0.0, 3.0) as usize;
            return Self { log: true, scientific: !plain, decimals, scale: 0.0 };
        }
        let top = range.start.abs().max(range.end.abs());
        let plain = (1e-2..1e5).contains(&top);
        let step = width / 10.0;
        let decimals = if step > 0.0 { (1.0 - step.log10()).ceil().clamp(0.0, 6.0) as usize } else { 0 };
        Self { log: false, scientific: !plain, decimals, scale: width }
    }

    /// The label of the tick at `v` (on a log axis: at `10^v`, and none between decades).
    fn format(&self, v: f64) -> String {
        if self.log {
            if (v - v.round()).abs() > 1e-6 {
                return String::new();
            }
            let exponent = v.round();
            if self.scientific {
                return format!("1e{exponent}");
            }
            let text = format!("{:.*}", self.decimals, 10f64.powf(exponent));
            let text = if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.') } else { &text };
            return text.to_string();
        }
        let v = snap_tick(v, self.scale);
        if v == 0.0 {
            return "0".to_string();
        }
        if self.scientific {
            let text = format!("{v:.3e}");
            return match text.split_once('e') {
                Some((mantissa, exp)) => {
                    let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
                    format!("{mantissa}e{exp}")
                }
                None => text,
            };
        }
        let text = format!("{v:.*}", self.decimals);
        let text = if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.') } else { &text };
        if text == "-0" { "0".to_string() } else { text.to_string() }
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
    };
    // A logarithmic axis may leave out the lowest decades: draw only what lies on the axes.
    let on_axes = |&(x, y): &(f64, f64)| within(x, &axes.x) && within(y, &axes.y);
    let series: Vec<(&Series, Vec<(f64, f64)>)> = series
        .into_iter()
        .map(|(s, p)| (s, p.into_iter().filter(on_axes).collect::<Vec<_>>()))
        .filter(|(_, p)| !p.is_empty())
        .collect();
    // A log axis is drawn as a linear one over log10 of the values, with decades as ticks:
    // plotters' own log axis drops ticks below 2.2e-16 (f64::EPSILON), where the spread of
    // a run without label noise ends.
    let (fx, fy) = (scale(log_x), scale(log_y));
    let series: Vec<(&Series, Vec<(f64, f64)>)> =
        series.into_iter().map(|(s, p)| (s, p.into_iter().map(|(x, y)| (fx(x), fy(y))).collect())).collect();
    let markers: Vec<Marker> =
        markers.into_iter().filter(|m| within(m.x, &axes.x)).map(|m| Marker { x: fx(m.x), ..m.clone() }).collect();
    let markers: Vec<&Marker> = markers.iter().collect();
    let panel = Panel {
        title: &plot.title,
        x_label: &plot.x_label,
        y_label: &plot.y_label,
        ticks: (Ticks::of(&axes.x, log_x), Ticks::of(&axes.y, log_y)),
    };
    let content = LineContent { series: &series, markers: &markers };
    let x = fx(axes.x.start)..fx(axes.x.end);
    let y = fy(axes.y.start)..fy(axes.y.end);
    draw_lines_in(area, &panel, &content, x, y)
}

/// The map from a value to its position on an axis: log10 on a log axis, the identity else.
fn scale(log: bool) -> fn(f64) -> f64 {
    if log { f64::log10 } else { |v| v }
}

/// The drawn ranges of both axes.
struct Axes {
    x: Range<f64>,
    y: Range<f64>,
}

/// Title and axis descriptions of one panel.
struct Panel<'a> {
    title: &'a str,
    x_label: &'a str,
    y_label: &'a str,
    /// The tick formats of the x and y axes.
    ticks: (Ticks, Ticks),
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
        .caption(panel.title, (FONT, 15))
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(64)
        .build_cartesian_2d(x, y)
        .map_err(reason)?;
    chart
        .configure_mesh()
        .x_desc(panel.x_label)
        .y_desc(panel.y_label)
        .x_label_formatter(&|v| panel.ticks.0.format(*v))
        .y_label_formatter(&|v| panel.ticks.1.format(*v))
        .x_labels(if panel.ticks.0.log { 12 } else { 8 })
        .y_labels(if panel.ticks.1.log { 12 } else { 8 })
        .axis_desc_style((FONT, 14))
        .label_style((FONT, 12))
        .light_line_style(RGBColor(0, 0, 0).mix(0.05))
        .max_light_lines(4)
        .draw()
        .map_err(reason)?;
    Ok(chart)
}

/// Draws `series` (already filtered to the axes) onto `chart` (its key entry is drawn with
/// the figure's key).
fn draw_series<X, Y>(chart: &mut Chart<'_, '_, X, Y>, series: &Series, points: &[(f64, f64)]) -> Result<(), String>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let c = color(series.color);
    let line = c.stroke_width(2);
    match series.style {
        SeriesStyle::Line => {
            chart.draw_series(LineSeries::new(points.iter().copied(), line)).map_err(reason)?;
        }
        SeriesStyle::Dashed => {
            chart.draw_series(DashedLineSeries::new(points.iter().copied(), 8, 5, line)).map_err(reason)?;
        }
        SeriesStyle::Points => {
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, c.filled()))).map_err(reason)?;
        }
        SeriesStyle::Level => {
            let Some(&(_, y)) = points.first() else { return Ok(()) };
            let xs = chart.x_range();
            let ends = vec![(xs.start, y), (xs.end, y)];
            chart.draw_series(DashedLineSeries::new(ends, 8, 5, line)).map_err(reason)?;
            if !series.label.is_empty() {
                // The label on the line, at its left end (where a decaying spread is still
                // far above its floor).
                let style = TextStyle::from((FONT, 11).into_font()).color(&c).pos(Pos::new(HPos::Left, VPos::Bottom));
                let at = xs.start + 0.02 * (xs.end - xs.start);
                chart.draw_series(std::iter::once(Text::new(series.label.clone(), (at, y), style))).map_err(reason)?;
            }
        }
        SeriesStyle::Band => {
            chart.draw_series(std::iter::once(Polygon::new(points.to_vec(), c.mix(0.2).filled()))).map_err(reason)?;
        }
    }
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
    for (series, points) in content.series {
        draw_series(&mut chart, series, points)?;
    }
    for marker in content.markers {
        let style = color(marker.color).stroke_width(2);
        let ends = vec![(marker.x, y_span.start), (marker.x, y_span.end)];
        chart.draw_series(DashedLineSeries::new(ends, 5, 4, style)).map_err(reason)?;
    }
    Ok(())
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
    let axes = Axes { x: linear_range(xs, false), y: linear_range(ys, true) };
    let panel = Panel {
        title: &plot.title,
        x_label: &plot.x_label,
        y_label: &plot.y_label,
        ticks: (Ticks::of(&axes.x, false), Ticks::of(&axes.y, false)),
    };
    let mut chart = build_chart(area, &panel, axes.x, axes.y)?;
    let fill = RGBColor(150, 150, 150).mix(0.45).filled();
    let edge = RGBColor(90, 90, 90).stroke_width(1);
    chart.draw_series(bins.iter().map(|&(lo, hi, d)| Rectangle::new([(lo, 0.0), (hi, d)], fill))).map_err(reason)?;
    chart.draw_series(bins.iter().map(|&(lo, hi, d)| Rectangle::new([(lo, 0.0), (hi, d)], edge))).map_err(reason)?;
    for (series, points) in &curves {
        draw_series(&mut chart, series, points)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `<text>` elements of an SVG document: their `y` and their text, trimmed.
    fn texts(svg: &str) -> Vec<(f64, String)> {
        svg.split("<text")
            .skip(1)
            .map(|t| {
                let (attrs, rest) = t.split_once('>').unwrap();
                let y = attrs.split(" y=\"").nth(1).unwrap().split('"').next().unwrap().parse().unwrap();
                (y, rest.split("</text>").next().unwrap().trim().to_string())
            })
            .collect()
    }

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
        // 40 circles for the points, plus one in the key.
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
        // The title, the key (simulation, theory, linearised, t_peak (theory), exact density,
        // Boltzmann law: six short entries, on one row) and two rows of panels.
        let key = KEY_ROW + 2 * KEY_PAD;
        assert!(svg.contains(&format!("height=\"{}\"", 2 * PANEL_HEIGHT + GRID_TITLE_HEIGHT + key)), "{}", &svg[..200]);
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
    fn tick_labels_are_compact_one_format_per_axis_and_zero_reads_0() {
        let plain = Ticks::of(&(0.0..200.0), false);
        assert_eq!(plain.format(0.0), "0");
        assert_eq!(plain.format(100.0), "100");
        let unit = Ticks::of(&(0.0..1.0), false);
        assert_eq!(unit.format(0.5), "0.5");
        assert_eq!(Ticks::of(&(0.0..0.02), false).format(0.0020000000000000005), "0.002");
        // A log axis is drawn over exponents: decades are labelled, other ticks are not.
        assert_eq!(Ticks::of(&(1e-6..1e-4), true).format(-5.0), "1e-5");
        assert_eq!(Ticks::of(&(1.0..1e7), true).format(6.0), "1e6");
        assert_eq!(Ticks::of(&(1.0..1e7), true).format(6.5), "");
        assert_eq!(Ticks::of(&(0.0..5e6), false).format(2.5e6), "2.5e6");
        // Zero up to rounding reads 0: what plotters' tick search gave on the demo's axes.
        assert_eq!(Ticks::of(&(-2e-5..5e-4), false).format(6.776e-21), "0");
        assert_eq!(unit.format(-1.11e-16), "0");
        assert_eq!(snap_tick(6.776e-21, 5e-4), 0.0);
        assert_eq!(snap_tick(-1.11e-16, 1.0), 0.0);
        assert_eq!(snap_tick(1e-6, 1.0), 1e-6, "a real value is kept");
        assert_eq!(snap_tick(1e-20, 1e-12), 1e-20, "small against a small axis is not zero");
        // One format per axis: an axis up to 5e-3 writes every tick in scientific notation
        // (not `0.001` beside `5e-4`); one up to 0.05 writes them all as decimals.
        let small = Ticks::of(&(0.0..5e-3), false);
        assert_eq!([5e-4, 1e-3, 2.5e-3].map(|v| small.format(v)), ["5e-4", "1e-3", "2.5e-3"]);
        let moderate = Ticks::of(&(0.0..0.05), false);
        assert_eq!([0.005, 0.01, 0.045].map(|v| moderate.format(v)), ["0.005", "0.01", "0.045"]);
        let log = Ticks::of(&(1e-16..1.0), true);
        assert_eq!([-15.0, -3.0, -1.0].map(|v| log.format(v)), ["1e-15", "1e-3", "1e-1"]);
        let decades = Ticks::of(&(0.01..20.0), true);
        assert_eq!([-2.0, -1.0, 0.0, 1.0].map(|v| decades.format(v)), ["0.01", "0.1", "1", "10"]);
    }

    /// Ticks label a log axis down to its lowest decades (the σ = 0 variance panels reach
    /// 1e-16 and once had no tick below 1e-13).
    #[test]
    fn a_log_axis_over_many_decades_has_ticks_near_its_bottom() {
        let plot = LinePlot {
            title: "floor".into(),
            x_label: "t".into(),
            y_label: "v".into(),
            log_x: true,
            log_y: true,
            series: vec![Series {
                label: "decay".into(),
                points: (0..40).map(|i| (1.0 + f64::from(i), 10f64.powf(-0.45 * f64::from(i)))).collect(),
                style: SeriesStyle::Line,
                color: 0,
            }],
            markers: vec![],
        };
        let svg = render_svg(&Figure::Lines(plot)).unwrap();
        let texts: Vec<String> = texts(&svg).into_iter().map(|(_, t)| t).collect();
        assert!(texts.iter().any(|t| t == "1e-18" || t == "1e-17"), "a tick within a decade of 3.7e-19: {texts:?}");
        assert!(texts.iter().any(|t| t == "1e-16"), "{texts:?}");
    }

    #[test]
    fn ticks_within_a_few_epsilon_of_zero_read_zero() {
        let linear = Ticks::of(&(-0.15..0.3), false);
        assert_eq!(snap_tick(-1.1102230246251565e-16, 0.45), 0.0);
        assert_eq!(linear.format(5.551115123125783e-17), "0");
        // Real values are kept: a tick of a tiny axis.
        assert_eq!(snap_tick(-0.05, 0.45), -0.05);
        assert_eq!(snap_tick(1e-20, 2e-18), 1e-20);
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

    /// The key (the legend of every panel) never overlaps a panel's area, whatever its number
    /// of entries and their length, and the panels of a grid do not overlap each other.
    #[test]
    fn the_key_lies_outside_every_panel() {
        let grid = |n: usize, columns: usize| Figure::Grid {
            title: "t".into(),
            columns,
            panels: (0..n).map(|_| Figure::Lines(line_plot())).collect(),
        };
        for (figure, entries, longest) in [
            (grid(9, 3), 12, 80),
            (grid(4, 3), 1, 5),
            (grid(2, 1), 30, 200),
            (Figure::Lines(line_plot()), 4, 40),
            (Figure::Histogram(histogram()), 2, 20),
        ] {
            let l = layout(&figure, entries, longest).unwrap();
            let key = l.key.expect("a key with entries");
            assert!(key.h >= to_u32(entries.div_ceil(l.key_columns.0 as usize)).unwrap() * KEY_ROW, "{l:?}");
            assert!(key.x + key.w <= l.width && key.y + key.h <= l.height);
            for (i, p) in l.panels.iter().enumerate() {
                assert!(!key.overlaps(p), "key {key:?} over panel {p:?}");
                assert!(l.title.is_none_or(|t| !t.overlaps(p) && !t.overlaps(&key)));
                assert!(p.x + p.w <= l.width && p.y + p.h <= l.height, "{p:?} inside {l:?}");
                for q in &l.panels[i + 1..] {
                    assert!(!p.overlaps(q), "{p:?} and {q:?}");
                }
            }
        }
        assert!(layout(&grid(3, 3), 0, 0).unwrap().key.is_none(), "no entry, no key");
        // The key's text is drawn in its band: every label's baseline lies above the panels.
        let svg = render_svg(&grid(3, 3)).unwrap();
        let entries = key_entries(&grid(3, 3));
        let longest = entries.iter().map(|e| e.label.chars().count()).max().unwrap();
        let l = layout(&grid(3, 3), entries.len(), longest).unwrap();
        let top = l.panels[0].y;
        let texts = texts(&svg);
        for label in ["simulation", "theory", "linearised", "t_peak (theory)"] {
            let found: Vec<f64> = texts.iter().filter(|(_, t)| t == label).map(|(y, _)| *y).collect();
            assert_eq!(found.len(), 1, "{label} once, not once per panel: {texts:?}");
            assert!(found[0] < f64::from(top), "{label} at y = {}, panels from {top}", found[0]);
        }
    }
}
