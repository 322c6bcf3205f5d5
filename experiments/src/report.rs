//! Figures and the verdict table drawn from the Parquet tables of a results directory (used after
//! a run, and by `modewise report DIR` to redraw them): a typed loader ([`Results::load`]), then
//! one function per figure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use modewise_theory::{Coordinate, ModeParams};

use std::io::Write;
use std::sync::mpsc::RecvTimeoutError;

use modewise_dln::StopFlag;

use crate::ExperimentError;
use crate::figures::{Figure, HistogramPlot, LinePlot, Marker, Series, SeriesStyle, render, write_svg};
use crate::formats::FigureFormat;
use crate::io::{read_rows, write_atomic};
use crate::stats::PerStep;
use crate::table::{Overlay, Quantity, Row, RunRow, Table, TheoryRow, TrajectoryRow, Verdict};

/// A run and a mode index (0-based): the key of the per-mode data.
pub type RunMode = (String, usize);

/// The tables of a results directory, grouped as the figures use them.
#[derive(Debug, Clone, Default)]
pub struct Results {
    /// Per run: the `runs` row of its first member (the run's parameters).
    pub runs: BTreeMap<String, RunRow>,
    /// Per run and mode: the measurements.
    pub measured: BTreeMap<RunMode, Measured>,
    /// Per run and mode: the theory overlays.
    pub overlays: BTreeMap<RunMode, Overlays>,
    /// The verdicts, in table order.
    pub verdicts: Vec<Verdict>,
    /// Claim 4's dose–response rows, in table order.
    pub dose: Vec<crate::dose::DoseRow>,
    /// The scaling fits (`scaling`, where it exists).
    pub scaling: Vec<crate::scaling::ScalingRow>,
    /// The scaling points (`scaling_points`, where it exists).
    pub scaling_points: Vec<crate::scaling::PointRow>,
}

/// One mode of one run as measured, across members per probe step (finite values only).
#[derive(Debug, Clone, Default)]
pub struct Measured {
    /// The mode's singular value `s_k`.
    pub s: f64,
    /// Mode strength `m_k`.
    pub strength: PerStep,
    /// Mode diffusion `D_k`.
    pub diffusion: PerStep,
    /// Alignment error (a per-member value, the same for every mode).
    pub alignment: PerStep,
    /// Relative balance (a per-member value, the same for every mode).
    pub balance: PerStep,
    /// `m_k` of every member over the second half of the run, pooled.
    pub late: Vec<f64>,
}

/// The theory overlays of one mode of one run.
#[derive(Debug, Clone, Default)]
pub struct Overlays {
    /// The initial strength the overlays start from, and how it was chosen.
    pub w0: Option<(f64, String)>,
    /// Per overlay: its `(t, value)` points (trajectories, ensemble means) or `(w, density)`.
    pub curves: BTreeMap<Overlay, Vec<(f64, f64)>>,
    /// Per ensemble overlay: its `(t, variance)` points.
    pub variances: BTreeMap<Overlay, Vec<(f64, f64)>>,
    /// Per per-member overlay (the reference): its values across members per time.
    pub members: BTreeMap<Overlay, PerStep>,
}

impl Results {
    /// Reads the tables of the results directory `dir` (`dose_response` where it exists).
    /// A dose experiment's `dose_response` is a Hive dataset in `dir`
    /// ([`crate::dose::read_dose_response`]).
    pub fn load(dir: &Path) -> Result<Self, ExperimentError> {
        let mut out = Self::load_tables(|table| table.path_in(dir))?;
        out.dose = crate::dose::read_dose_response(dir)?;
        Ok(out)
    }

    /// Reads the tables of point `run_index` of the sweep in `dir`: its Hive parts
    /// (`dir/<table>/run_index=<i>/part.parquet`, `dose_response` where it exists).
    pub fn load_sweep_point(dir: &Path, run_index: usize) -> Result<Self, ExperimentError> {
        Self::load_tables(|table| table.part_path(dir, run_index))
    }

    /// Reads the tables, each from the file `path` gives for it.
    fn load_tables(path: impl Fn(Table) -> PathBuf) -> Result<Self, ExperimentError> {
        let mut out = Results::default();
        for row in read_rows::<RunRow>(&path(RunRow::TABLE))? {
            out.runs.entry(row.run_id.clone()).or_insert(row);
        }
        for row in read_rows::<TrajectoryRow>(&path(TrajectoryRow::TABLE))? {
            out.add_trajectory(row);
        }
        for row in read_rows::<TheoryRow>(&path(TheoryRow::TABLE))? {
            out.add_overlay(row);
        }
        out.verdicts = read_rows(&path(Verdict::TABLE))?;
        // Results written before claim 4's study have no dose_response table.
        let dose = path(crate::dose::DoseRow::TABLE);
        if dose.is_file() {
            out.dose = read_rows(&dose)?;
        }
        // Only a scaling experiment writes these.
        let (fits, points) = (path(Table::Scaling), path(Table::ScalingPoints));
        if fits.is_file() {
            out.scaling = read_rows(&fits)?;
        }
        if points.is_file() {
            out.scaling_points = read_rows(&points)?;
        }
        Ok(out)
    }

    fn add_trajectory(&mut self, row: TrajectoryRow) {
        let half = self.runs.get(&row.run_id).map(|r| r.steps as f64 / 2.0);
        let e = self.measured.entry((row.run_id, row.k as usize)).or_default();
        e.s = row.s_k;
        for (per_step, v) in [
            (&mut e.strength, row.m_k),
            (&mut e.diffusion, row.diffusion),
            (&mut e.alignment, row.alignment_error),
            (&mut e.balance, row.balance_relative),
        ] {
            if v.is_finite() {
                per_step.push(row.step, row.t, v);
            }
        }
        if half.is_some_and(|half| row.step as f64 >= half) {
            e.late.push(row.m_k);
        }
    }

    fn add_overlay(&mut self, row: TheoryRow) {
        let x = row.t.filter(|t| t.is_finite()).or(row.w).unwrap_or(f64::NAN);
        let e = self.overlays.entry((row.run_id, row.k as usize)).or_default();
        if row.member.is_some() {
            // Keyed by the bits of t, which order non-negative times as the times do.
            if row.value.is_finite() && x >= 0.0 {
                e.members.entry(row.overlay).or_default().push(x.to_bits(), x, row.value);
            }
            return;
        }
        e.curves.entry(row.overlay).or_default().push((x, row.value));
        if let Some(var) = row.variance.filter(|v| v.is_finite()) {
            e.variances.entry(row.overlay).or_default().push((x, var));
        }
        if row.overlay == Overlay::GradientFlow {
            e.w0.get_or_insert((row.w0, row.w0_rule));
        }
    }

    /// The mean over members of a per-member overlay of a run and mode, if it was computed.
    fn member_mean(&self, key: &RunMode, overlay: Overlay) -> Option<Vec<(f64, f64)>> {
        self.overlays.get(key).and_then(|o| o.members.get(&overlay)).map(PerStep::means)
    }

    /// The points of an overlay of a run and mode, if it was computed.
    fn curve(&self, key: &RunMode, overlay: Overlay) -> Option<&Vec<(f64, f64)>> {
        self.overlays.get(key).and_then(|o| o.curves.get(&overlay))
    }

    /// The ensemble variance of an overlay of a run and mode, if it was computed.
    fn variance(&self, key: &RunMode, overlay: Overlay) -> Option<&Vec<(f64, f64)>> {
        self.overlays.get(key).and_then(|o| o.variances.get(&overlay))
    }

    /// `(predicted, measured)` of the verdict on `quantity` for a run and mode.
    fn verdict(&self, (run, k): &RunMode, quantity: Quantity) -> Option<(f64, f64)> {
        self.verdicts
            .iter()
            .find(|v| &v.run_id == run && v.k == *k && v.quantity == quantity)
            .map(|v| (v.predicted, v.measured))
    }

    /// Draws every figure that has a panel into `dir`, as [`Results::draw`] does, but so that
    /// no figure can stop the program: each is rendered on a thread of its own while this one
    /// waits, watching `stop` (a requested stop ends the wait with
    /// [`ExperimentError::Stopped`]); a figure that fails, panics or takes longer than
    /// [`FIGURE_DEADLINE`] is left out with a warning (its thread is abandoned, and writes
    /// nothing).
    pub fn draw_within(&self, dir: &Path, stop: &StopFlag) -> Result<Drawn, ExperimentError> {
        self.draw_within_as(dir, stop, &[FigureFormat::Svg])
    }

    /// [`Results::draw_within`] in `formats` besides SVG (which is always written: the
    /// report inlines it): `NAME.png` and `NAME.pdf` beside `NAME.svg`, converted from it.
    /// [`Drawn::written`] lists the SVG files; [`Drawn::converted`] the others.
    pub fn draw_within_as(
        &self,
        dir: &Path,
        stop: &StopFlag,
        formats: &[FigureFormat],
    ) -> Result<Drawn, ExperimentError> {
        let mut drawn = Drawn::default();
        let extra: Vec<FigureFormat> = formats.iter().copied().filter(|&f| f != FigureFormat::Svg).collect();
        for (name, figure) in FIGURES {
            if stop.is_requested() {
                return Err(ExperimentError::Stopped { during: "drawing the figures" });
            }
            let Some(figure) = figure(self) else { continue };
            let path = dir.join(name);
            let (send, receive) = std::sync::mpsc::channel();
            let extra = extra.clone();
            std::thread::Builder::new()
                .name(format!("figure {name}"))
                .spawn(move || {
                    let files = render(&figure).and_then(|svg| {
                        let mut files = vec![(FigureFormat::Svg, svg.clone().into_bytes())];
                        for format in extra {
                            files.push((format, format.convert(&svg)?));
                        }
                        Ok(files)
                    });
                    let _ = send.send(files);
                })
                .map_err(|source| ExperimentError::Io { path: path.clone(), source })?;
            let started = std::time::Instant::now();
            let files = loop {
                match receive.recv_timeout(std::time::Duration::from_millis(50)) {
                    Ok(files) => break files,
                    Err(RecvTimeoutError::Disconnected) => break Err("drawing panicked".to_string()),
                    Err(RecvTimeoutError::Timeout) if stop.is_requested() => {
                        return Err(ExperimentError::Stopped { during: "drawing the figures" });
                    }
                    Err(RecvTimeoutError::Timeout) if started.elapsed() > FIGURE_DEADLINE => {
                        break Err(format!("drawing took longer than {} s", FIGURE_DEADLINE.as_secs()));
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                }
            };
            let written =
                files.map_err(|reason| ExperimentError::Figure { path: path.clone(), reason }).and_then(|files| {
                    files
                        .into_iter()
                        .map(|(format, bytes)| {
                            let file = format.path_of(&path);
                            write_atomic(&file, |f| {
                                f.write_all(&bytes).map_err(|source| ExperimentError::Io { path: file.clone(), source })
                            })
                            .map(|()| (format, file))
                        })
                        .collect::<Result<Vec<_>, _>>()
                });
            match written {
                Ok(files) => {
                    for (format, file) in files {
                        if format == FigureFormat::Svg {
                            drawn.written.push(file);
                        } else {
                            drawn.converted.push(file);
                        }
                    }
                }
                Err(e) => drawn.warnings.push(format!("{name} was not drawn: {e}")),
            }
        }
        Ok(drawn)
    }

    /// Draws every figure that has a panel into `dir`; returns the paths written.
    pub fn draw(&self, dir: &Path) -> Result<Vec<PathBuf>, ExperimentError> {
        let mut written = Vec::new();
        for (name, figure) in FIGURES {
            if let Some(figure) = figure(self) {
                let path = dir.join(name);
                write_svg(&figure, &path)?;
                written.push(path);
            }
        }
        Ok(written)
    }
}

/// The longest [`Results::draw_within`] waits for one figure before it gives it up. Drawing a
/// figure takes well under a second; only a defect could make it take this long.
pub const FIGURE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(120);

/// What [`Results::draw_within`] drew.
#[derive(Debug, Clone, Default)]
pub struct Drawn {
    /// The figures written (SVG).
    pub written: Vec<PathBuf>,
    /// The same figures in the other formats asked for (PNG, PDF).
    pub converted: Vec<PathBuf>,
    /// One line per figure left out: its name and why.
    pub warnings: Vec<String>,
}

/// A figure drawn from the results: `None` when it would have no panel.
pub type DrawFigure = fn(&Results) -> Option<Figure>;

/// The figures, by file name, in the order they are drawn.
pub const FIGURES: [(&str, DrawFigure); 13] = [
    ("modes.svg", modes),
    ("diffusion.svg", diffusion),
    ("stationary.svg", stationary),
    ("variance.svg", variance),
    ("alignment.svg", alignment),
    ("dose_w_at_peak.svg", |r| crate::dose::figure(&r.dose, "w_at_peak")),
    ("dose_d_max.svg", |r| crate::dose::figure(&r.dose, "d_max")),
    ("dose_t_learned.svg", |r| crate::dose::figure(&r.dose, "t_learned")),
    ("dose_t_peak.svg", |r| crate::dose::figure(&r.dose, "t_peak")),
    ("dose_variance_over_t.svg", |r| crate::dose::figure(&r.dose, "variance_over_t")),
    ("dose_ks_to_density.svg", |r| crate::dose::figure(&r.dose, "ks_to_density")),
    ("scaling.svg", |r| crate::scaling::figure(&r.scaling_points, &r.scaling, &r.verdicts)),
    ("ito.svg", ito),
];

/// Redraws every figure of a results directory; returns the paths written.
pub fn draw_figures(dir: &Path) -> Result<Vec<PathBuf>, ExperimentError> {
    Results::load(dir)?.draw(dir)
}

/// A grid of panels in three columns, or nothing without panels.
fn grid(title: &str, panels: Vec<Figure>) -> Option<Figure> {
    (!panels.is_empty()).then(|| Figure::Grid { title: title.into(), columns: 3, panels })
}

/// A grid with one row per run (its panels, in mode order, padded with blank cells), or three
/// columns where no run has more than one panel; nothing without panels.
fn grid_by_run(title: &str, panels: Vec<(String, Figure)>) -> Option<Figure> {
    let mut runs: Vec<(String, Vec<Figure>)> = Vec::new();
    for (run, panel) in panels {
        match runs.last_mut() {
            Some((last, row)) if *last == run => row.push(panel),
            _ => runs.push((run, vec![panel])),
        }
    }
    let columns = runs.iter().map(|(_, row)| row.len()).max()?;
    if columns == 1 {
        return grid(title, runs.into_iter().flat_map(|(_, row)| row).collect());
    }
    let mut cells = Vec::new();
    for (_, mut row) in runs {
        row.resize(columns, Figure::Blank);
        cells.extend(row);
    }
    Some(Figure::Grid { title: title.into(), columns, panels: cells })
}

/// A panel's title: the run, the mode (`k`, 0-based as in the tables) and its singular value.
fn mode_title((run, k): &RunMode, m: &Measured) -> String {
    format!("{run}, k = {k} (s = {:.3})", m.s)
}

/// The theory's and the measured peak and learned times of a run and mode, as markers.
fn time_markers(results: &Results, key: &RunMode) -> Vec<Marker> {
    let mut markers = Vec::new();
    if let Some((pred, meas)) = results.verdict(key, Quantity::TPeak) {
        markers.push(Marker { x: pred, label: "t_peak (theory)".into(), color: 9 });
        markers.push(Marker { x: meas, label: "t_peak (measured)".into(), color: 11 });
    }
    if let Some((pred, meas)) = results.verdict(key, Quantity::TLearned) {
        markers.push(Marker { x: pred, label: "t_learned (theory)".into(), color: 6 });
        markers.push(Marker { x: meas, label: "t_learned (measured)".into(), color: 7 });
    }
    markers
}

/// Mode strengths against gradient flow and the SDE and chain means, with the peak and learned
/// times: one panel per run and mode.
pub fn modes(results: &Results) -> Option<Figure> {
    let mut panels = Vec::new();
    for (key, m) in &results.measured {
        let mut series = vec![Series {
            label: "DLN SGD, mean over seeds".into(),
            points: m.strength.means(),
            style: SeriesStyle::Points,
            color: 0,
        }];
        let w0 = results.overlays.get(key).and_then(|o| o.w0.as_ref());
        // The overlays' w0 is the panel's (in its title); how it was chosen is in the theory
        // table's `w0_rule`.
        let gf_label =
            if w0.is_some() { "gradient flow from the overlays' w0 (in the title)" } else { "gradient flow" };
        for (overlay, label, style, color) in [
            (Overlay::GradientFlow, gf_label, SeriesStyle::Line, 1),
            (Overlay::Sde, "SDE (dt refined until converged) mean", SeriesStyle::Dashed, 2),
            (Overlay::SdeFixedStep, "SDE at the fixed step (Euler–Maruyama, dt = η), mean", SeriesStyle::Dashed, 5),
            (Overlay::Chain, "exact chain mean", SeriesStyle::Dashed, 3),
        ] {
            if let Some(points) = results.curve(key, overlay) {
                series.push(Series { label: label.into(), points: points.clone(), style, color });
            }
        }
        if let Some(points) = results.curve(key, Overlay::GradientFlowFitted) {
            let label = "gradient flow, w0 fitted on the SGD mean (reported only)".into();
            series.push(Series { label, points: points.clone(), style: SeriesStyle::Dashed, color: 8 });
        }
        if let Some(points) = results.member_mean(key, Overlay::Reference) {
            let label = "population GD from the same starts, mean".into();
            series.push(Series { label, points, style: SeriesStyle::Line, color: 10 });
        }
        let title = match w0 {
            Some((w0, _)) => format!("{}, w0 = {w0:.2e}", mode_title(key, m)),
            None => mode_title(key, m),
        };
        panels.push((
            key.0.clone(),
            Figure::Lines(LinePlot {
                title,
                x_label: "t = η·step".into(),
                y_label: "m_k".into(),
                log_x: true,
                log_y: false,
                series,
                markers: time_markers(results, key),
            }),
        ));
    }
    grid_by_run("Mode strengths against the theory", panels)
}

/// The transient mean's departure from gradient flow (`docs/theory.md` §7.2.6): the network's
/// `mean − w_GF` over seeds with its 95% band (`±1.96` standard errors) against the first-order
/// predictions of the SDE with and without its Itô term and of the exact chain; one panel per
/// run and mode that has the `mean_departure_*` overlays.
pub fn ito(results: &Results) -> Option<Figure> {
    let mut panels = Vec::new();
    for (key, m) in &results.measured {
        let Some(sde) = results.curve(key, Overlay::MeanDepartureSde) else { continue };
        let mut series = Vec::new();
        if let Some(gf) = results.curve(key, Overlay::GradientFlow) {
            // The flow is written on the probe times: match the network's times exactly.
            let flow = |t: f64| gf.iter().find(|(tg, _)| (tg - t).abs() <= 1e-12 * t.abs().max(1.0)).map(|p| p.1);
            let (mut mid, mut low, mut high) = (Vec::new(), Vec::new(), Vec::new());
            for (t, mean, se) in m.strength.means_with_se() {
                if let Some(w) = flow(t) {
                    mid.push((t, mean - w));
                    low.push((t, mean - w - 1.96 * se));
                    high.push((t, mean - w + 1.96 * se));
                }
            }
            series.push(Series {
                label: "DLN SGD mean − GF".into(),
                points: mid,
                style: SeriesStyle::Points,
                color: 0,
            });
            series.push(Series { label: "95% band".into(), points: low, style: SeriesStyle::Dashed, color: 0 });
            series.push(Series { label: String::new(), points: high, style: SeriesStyle::Dashed, color: 0 });
        }
        series.push(Series {
            label: "SDE (with Itô term)".into(),
            points: sde.clone(),
            style: SeriesStyle::Line,
            color: 2,
        });
        for (overlay, label, style, color) in [
            (Overlay::MeanDepartureSdeNoIto, "SDE without Itô term", SeriesStyle::Dashed, 1),
            (Overlay::MeanDepartureChain, "exact chain (with the step's error)", SeriesStyle::Line, 3),
        ] {
            if let Some(points) = results.curve(key, overlay) {
                series.push(Series { label: label.into(), points: points.clone(), style, color });
            }
        }
        panels.push(Figure::Lines(LinePlot {
            title: mode_title(key, m),
            x_label: "t = η·step".into(),
            y_label: "E m_k − w_GF".into(),
            log_x: true,
            log_y: false,
            series,
            markers: Vec::new(),
        }));
    }
    grid("Transient mean minus gradient flow: the Itô term's effect", panels)
}

/// Measured mode diffusion against `D(w)` along gradient flow, with the peak and learned times:
/// one panel per run and mode that has measured diffusion.
pub fn diffusion(results: &Results) -> Option<Figure> {
    let mut panels = Vec::new();
    for (key, m) in &results.measured {
        let points = m.diffusion.means();
        if points.is_empty() {
            continue;
        }
        let mut series = vec![Series {
            label: "measured D_k, mean over seeds".into(),
            points,
            style: SeriesStyle::Points,
            color: 0,
        }];
        if let Some(points) = results.curve(key, Overlay::DiffusionGradientFlow) {
            // Written to `theory` on a dense grid (results from before it: computed here).
            series.push(Series {
                label: "D(w) along gradient flow".into(),
                points: points.clone(),
                style: SeriesStyle::Line,
                color: 1,
            });
        } else if let (Some(run), Some(gf)) = (results.runs.get(&key.0), results.curve(key, Overlay::GradientFlow))
            && let Ok(mode) =
                (ModeParams { depth: run.depth, s: m.s, sigma: run.sigma, lr: run.lr, batch: run.batch }).check()
        {
            let points = gf.iter().map(|&(t, w)| (t, mode.diffusion(Coordinate::EndToEnd, w.max(0.0)))).collect();
            series.push(Series {
                label: "D(w) along gradient flow".into(),
                points,
                style: SeriesStyle::Line,
                color: 1,
            });
        }
        if let Some(points) = results.member_mean(key, Overlay::ReferenceDiffusion) {
            let label = "D_k along population GD from the same starts, mean".into();
            series.push(Series { label, points, style: SeriesStyle::Dashed, color: 10 });
        }
        panels.push((
            key.0.clone(),
            Figure::Lines(LinePlot {
                title: mode_title(key, m),
                x_label: "t = η·step".into(),
                y_label: "D_k".into(),
                log_x: true,
                log_y: false,
                series,
                markers: time_markers(results, key),
            }),
        ));
    }
    grid_by_run("Mode diffusion against the theory", panels)
}

/// Histograms of the second half of each run against the exact stationary density and the
/// Boltzmann law: one panel per run and mode with both densities and at least ten samples.
pub fn stationary(results: &Results) -> Option<Figure> {
    let mut panels = Vec::new();
    for (key, m) in &results.measured {
        let (Some(density), Some(boltz)) =
            (results.curve(key, Overlay::StationaryDensity), results.curve(key, Overlay::Boltzmann))
        else {
            continue;
        };
        if m.late.len() < 10 {
            continue;
        }
        panels.push((
            key.0.clone(),
            Figure::Histogram(HistogramPlot {
                title: format!("{}, k = {}: second half of the run", key.0, key.1),
                x_label: "m_k".into(),
                y_label: "density".into(),
                bins: histogram(&m.late, 30),
                curves: vec![
                    Series {
                        label: "exact stationary density".into(),
                        points: clip(density, &m.late),
                        style: SeriesStyle::Line,
                        color: 1,
                    },
                    Series {
                        label: "Boltzmann law".into(),
                        points: clip(boltz, &m.late),
                        style: SeriesStyle::Dashed,
                        color: 2,
                    },
                ],
            }),
        ));
    }
    grid_by_run("Stationary laws", panels)
}

/// The variance of `m_k` across seeds over time against the SDE and exact-chain ensembles'
/// variances: one panel per run and mode with at least two members at some probe. The
/// ensembles start every path from the one `w0` of the overlays, so they have no spread at
/// `t = 0` (the seeds do: Gaussian starts differ); the title says so, and names only the
/// ensembles drawn. Without label noise the training precision's resolution floor is a
/// labelled level.
pub fn variance(results: &Results) -> Option<Figure> {
    let mut panels = Vec::new();
    let mut drawn: Vec<&str> = Vec::new();
    for (key, m) in &results.measured {
        let seed_var = m.strength.variances();
        if seed_var.is_empty() {
            continue;
        }
        let mut series = vec![Series {
            label: "DLN SGD, variance across seeds".into(),
            points: seed_var,
            style: SeriesStyle::Points,
            color: 0,
        }];
        for (overlay, label, name, color) in [
            (Overlay::Sde, "SDE (dt refined until converged), ensemble variance", "SDE", 2),
            (Overlay::SdeFixedStep, "SDE at the fixed step (Euler–Maruyama, dt = η), ensemble variance", "SDE", 5),
            (Overlay::Chain, "exact chain, ensemble variance", "exact-chain", 3),
        ] {
            if let Some(points) = results.variance(key, overlay).filter(|p| p.iter().any(|v| v.1 > 0.0)) {
                series.push(Series { label: label.into(), points: points.clone(), style: SeriesStyle::Dashed, color });
                if !drawn.contains(&name) {
                    drawn.push(name);
                }
            }
        }
        // Without label noise the spread decays to the training precision's resolution floor.
        if let Some((floor, precision)) = results.runs.get(&key.0).and_then(|run| resolution_floor(run, m.s)) {
            let (t0, t1) =
                (series[0].points.first().map_or(0.0, |p| p.0), series[0].points.last().map_or(1.0, |p| p.0));
            let t0 = series[0].points.iter().map(|p| p.0).find(|&t| t > 0.0).unwrap_or(t0);
            series.push(Series {
                label: format!("{precision} resolution floor (ε s/(ηλ))²: numerical below"),
                points: vec![(t0, floor), (t1, floor)],
                style: SeriesStyle::Level,
                color: 6,
            });
        }
        panels.push((
            key.0.clone(),
            Figure::Lines(LinePlot {
                title: format!("{}, k = {}: spread across seeds", key.0, key.1),
                x_label: "t = η·step".into(),
                y_label: "Var m_k".into(),
                log_x: true,
                log_y: true,
                series,
                markers: vec![],
            }),
        ));
    }
    let title = if drawn.is_empty() {
        "Spread of the modes across seeds".to_string()
    } else {
        format!(
            "Spread of the modes across seeds, and of the {} ensembles (every path starts from the one w0: no spread at t = 0)",
            drawn.join(" and ")
        )
    };
    grid_by_run(&title, panels)
}

/// The resolution floor of a mode's spread in a run without label noise and its precision's
/// name: `(ε s/(ηλ))²` with `λ = L s^{2−2/L}` (the claim-2 verdict's floor, `docs/theory.md` §9.3);
/// `None` with label noise.
fn resolution_floor(run: &RunRow, s: f64) -> Option<(f64, &'static str)> {
    if run.sigma != 0.0 {
        return None;
    }
    let f64_run =
        run.train.iter().any(|(k, v)| k == "train.precision" && *v == crate::table::Scalar::Str("f64".into()));
    let (eps, name) = if f64_run { (f64::EPSILON, "f64") } else { (f64::from(f32::EPSILON), "f32") };
    let l = f64::from(run.depth);
    let rate = l * s.powf(2.0 - 2.0 / l);
    Some(((eps * s / (run.lr * rate)).powi(2), name))
}

/// Alignment error and relative balance over time: one panel per run (the mode-0 rows hold the
/// per-member values).
pub fn alignment(results: &Results) -> Option<Figure> {
    let panels = results
        .measured
        .iter()
        .filter(|((_, k), _)| *k == 0)
        .map(|((run, _), m)| {
            Figure::Lines(LinePlot {
                title: run.clone(),
                x_label: "t = η·step".into(),
                y_label: "relative error".into(),
                log_x: true,
                log_y: true,
                series: vec![
                    Series {
                        label: "alignment error".into(),
                        points: m.alignment.means(),
                        style: SeriesStyle::Line,
                        color: 0,
                    },
                    Series {
                        label: "balance (relative)".into(),
                        points: m.balance.means(),
                        style: SeriesStyle::Dashed,
                        color: 1,
                    },
                ],
                markers: vec![],
            })
        })
        .collect();
    grid("Alignment and balancedness", panels)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::write_parquet_atomic;
    use crate::table::{Claim, Row, to_frame};

    /// `ito.svg`: the network's mean − GF at the probe times with `±1.96` standard errors,
    /// beside the three first-order curves; no panel without the `mean_departure_*` overlays.
    #[test]
    fn ito_figure_draws_the_network_departure_and_the_three_predictions() {
        let mut results = Results::default();
        let key: RunMode = ("r".into(), 0);
        let m = results.measured.entry(key.clone()).or_default();
        m.s = 2.0;
        for (step, t, values) in [(10, 1.0, [0.6, 0.8]), (20, 2.0, [1.0, 1.2])] {
            for v in values {
                m.strength.push(step, t, v);
            }
        }
        let o = results.overlays.entry(key.clone()).or_default();
        o.curves.insert(Overlay::GradientFlow, vec![(1.0, 0.5), (2.0, 1.0)]);
        assert!(ito(&results).is_none(), "no panel without the mean_departure overlays");
        let o = results.overlays.get_mut(&key).unwrap();
        o.curves.insert(Overlay::MeanDepartureSde, vec![(1.0, 0.01), (2.0, 0.02)]);
        o.curves.insert(Overlay::MeanDepartureSdeNoIto, vec![(1.0, -0.01), (2.0, -0.02)]);
        o.curves.insert(Overlay::MeanDepartureChain, vec![(1.0, 0.03), (2.0, 0.04)]);
        let Some(Figure::Grid { panels, .. }) = ito(&results) else { panic!("ito has a panel") };
        let [Figure::Lines(plot)] = panels.as_slice() else { panic!("one line panel: {panels:?}") };
        let labels: Vec<&str> = plot.series.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "DLN SGD mean − GF",
                "95% band",
                "",
                "SDE (with Itô term)",
                "SDE without Itô term",
                "exact chain (with the step's error)"
            ]
        );
        // Means 0.7 and 1.1, standard errors sqrt(0.02/2) = 0.1.
        let close = |got: &[(f64, f64)], want: [(f64, f64); 2]| {
            assert_eq!(got.len(), 2);
            for (g, w) in got.iter().zip(want) {
                assert!((g.0 - w.0).abs() < 1e-12 && (g.1 - w.1).abs() < 1e-12, "{got:?} against {want:?}");
            }
        };
        close(&plot.series[0].points, [(1.0, 0.2), (2.0, 0.1)]);
        close(&plot.series[1].points, [(1.0, 0.2 - 0.196), (2.0, 0.1 - 0.196)]);
        close(&plot.series[2].points, [(1.0, 0.2 + 0.196), (2.0, 0.1 + 0.196)]);
        close(&plot.series[4].points, [(1.0, -0.01), (2.0, -0.02)]);
        assert!(render(&Figure::Grid { title: "t".into(), columns: 3, panels: panels.clone() }).is_ok());
    }

    fn write<R: Row>(dir: &Path, rows: &[R]) {
        write_parquet_atomic(&mut to_frame(rows).unwrap(), &R::TABLE.path_in(dir)).unwrap();
    }

    /// A results directory of one run ("r", 20 steps) with two members probed at steps 0, 10 and
    /// 20 on one mode, a gradient-flow and an SDE overlay, and a `t_peak` verdict.
    fn results_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let run =
            RunRow { run_id: "r".into(), depth: 2, lr: 0.1, batch: 1, steps: 20, sigma: 0.0, ..RunRow::default() };
        write(dir.path(), &[RunRow { member: 0, ..run.clone() }, RunRow { member: 1, ..run }]);
        let mut traj = Vec::new();
        for (step, m) in [(0, [0.1, 0.3]), (10, [0.5, f64::NAN]), (20, [0.9, 1.1])] {
            for (member, m_k) in m.into_iter().enumerate() {
                traj.push(TrajectoryRow {
                    run_id: "r".into(),
                    member: member as u32,
                    step,
                    t: 0.1 * step as f64,
                    s_k: 1.0,
                    m_k,
                    diffusion: if step == 0 { f64::NAN } else { 1e-3 },
                    alignment_error: 0.01,
                    balance_relative: 0.02,
                    ..TrajectoryRow::default()
                });
            }
        }
        write(dir.path(), &traj);
        let start = TheoryRow { run_id: "r".into(), w0: 0.01, w0_rule: "exact a0^L".into(), ..TheoryRow::default() };
        let theory: Vec<TheoryRow> = [1.0, 2.0]
            .into_iter()
            .flat_map(|t| {
                [
                    TheoryRow { overlay: Overlay::GradientFlow, t: Some(t), value: 0.5 * t, ..start.clone() },
                    TheoryRow {
                        overlay: Overlay::Sde,
                        t: Some(t),
                        value: 0.4 * t,
                        variance: Some(1e-3),
                        ..start.clone()
                    },
                ]
            })
            .collect();
        let mut theory = theory;
        // Two members' population-GD references at t = 1 and 2.
        for (member, t, value) in [(0, 1.0, 0.4), (1, 1.0, 0.6), (0, 2.0, 0.9), (1, 2.0, 1.1)] {
            theory.push(TheoryRow {
                member: Some(member),
                overlay: Overlay::Reference,
                t: Some(t),
                value,
                w0: 0.5,
                w0_rule: "not the overlays' w0".into(),
                ..start.clone()
            });
        }
        write(dir.path(), &theory);
        let peak = Verdict {
            run_id: "r".into(),
            claim: Claim::PeakBeforeLearned,
            k: 0,
            quantity: Quantity::TPeak,
            predicted: 0.8,
            measured: 0.9,
            holds: true,
            ..Verdict::default()
        };
        write(dir.path(), &[peak]);
        dir
    }

    #[test]
    fn the_loader_groups_the_tables_by_run_and_mode() {
        let dir = results_dir();
        let results = Results::load(dir.path()).unwrap();
        assert_eq!(results.runs.keys().collect::<Vec<_>>(), ["r"], "one entry per run");
        let key = ("r".to_string(), 0);
        let m = &results.measured[&key];
        // The NaN of member 1 at step 10 is left out of the mean.
        assert_eq!(m.strength.means(), [(0.0, 0.2), (1.0, 0.5), (2.0, 1.0)]);
        // Steps 0 and 20 have two members: (0.1 − 0.2)² + (0.3 − 0.2)² = 0.02 over 1.
        let var = m.strength.variances();
        assert_eq!(var.len(), 2);
        assert!((var[0].1 - 0.02).abs() < 1e-15 && (var[1].1 - 0.02).abs() < 1e-15, "{var:?}");
        assert_eq!(m.diffusion.means(), [(1.0, 1e-3), (2.0, 1e-3)]);
        // The second half of the run (step ≥ 10), NaN included as the table holds it.
        assert_eq!(m.late.len(), 4);
        let o = &results.overlays[&key];
        assert_eq!(o.w0, Some((0.01, "exact a0^L".to_string())));
        assert_eq!(o.curves[&Overlay::GradientFlow], [(1.0, 0.5), (2.0, 1.0)]);
        assert_eq!(o.variances[&Overlay::Sde], [(1.0, 1e-3), (2.0, 1e-3)]);
        assert!(!o.variances.contains_key(&Overlay::GradientFlow), "a flow has no variance");
        // Per-member overlays are averaged over the members per time, and kept out of w0.
        assert_eq!(results.member_mean(&key, Overlay::Reference), Some(vec![(1.0, 0.5), (2.0, 1.0)]));
        assert!(!o.curves.contains_key(&Overlay::Reference));
        assert_eq!(results.verdict(&key, Quantity::TPeak), Some((0.8, 0.9)));
        assert_eq!(results.verdict(&key, Quantity::TLearned), None);
    }

    #[test]
    fn each_figure_has_its_panels_and_draw_writes_those_with_some() {
        let dir = results_dir();
        let results = Results::load(dir.path()).unwrap();
        let Some(Figure::Grid { panels, .. }) = modes(&results) else { panic!("modes has a panel") };
        let [Figure::Lines(plot)] = panels.as_slice() else { panic!("one line panel: {panels:?}") };
        let labels: Vec<&str> = plot.series.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "DLN SGD, mean over seeds",
                "gradient flow from the overlays' w0 (in the title)",
                "SDE (dt refined until converged) mean",
                "population GD from the same starts, mean"
            ]
        );
        assert_eq!(plot.markers.iter().map(|m| m.x).collect::<Vec<_>>(), [0.8, 0.9], "t_peak, theory and measured");
        assert!(stationary(&results).is_none(), "no stationary density, no histogram");
        // D(w) along gradient flow: computed from the flow's probe-time points here; the
        // theory table's dense `diffusion_gradient_flow` rows where it has them.
        let d_of = |results: &Results| {
            let Some(Figure::Grid { panels, .. }) = diffusion(results) else { panic!("diffusion has a panel") };
            let [Figure::Lines(plot)] = panels.as_slice() else { panic!("one line panel") };
            plot.series.iter().find(|s| s.label == "D(w) along gradient flow").unwrap().points.clone()
        };
        assert_eq!(d_of(&results).len(), 2, "the flow's two points");
        let mut dense = results.clone();
        let grid: Vec<(f64, f64)> = (0..400).map(|i| (0.01 * f64::from(i), 1e-3 * f64::from(i))).collect();
        dense
            .overlays
            .get_mut(&("r".to_string(), 0))
            .unwrap()
            .curves
            .insert(Overlay::DiffusionGradientFlow, grid.clone());
        assert_eq!(d_of(&dense), grid, "the dense grid is the one drawn");
        let Some(Figure::Grid { panels, .. }) = variance(&results) else { panic!("variance has a panel") };
        let [Figure::Lines(plot)] = panels.as_slice() else { panic!("one line panel") };
        // Seeds, the SDE ensemble (no chain overlay) and the f32 floor of a run without noise:
        // (ε s/(ηλ))² with s = 1, η = 0.1, λ = 2.
        assert_eq!(plot.series.len(), 3, "{:?}", plot.series);
        let floor = &plot.series[2];
        assert!(floor.label.starts_with("f32 resolution floor"), "{}", floor.label);
        let expected = (f64::from(f32::EPSILON) / 0.2).powi(2);
        assert!(floor.points.iter().all(|p| (p.1 - expected).abs() < 1e-12 * expected), "{:?}", floor.points);
        let written = results.draw(dir.path()).unwrap();
        let names: Vec<_> = written.iter().map(|p| p.file_name().unwrap().to_str().unwrap()).collect();
        assert_eq!(names, ["modes.svg", "diffusion.svg", "variance.svg", "alignment.svg"]);
        assert!(std::fs::read_to_string(dir.path().join("modes.svg")).unwrap().contains("r, k = 0 (s = 1.000)"));
    }

    /// Drawing off the caller's thread writes the same figures, and a requested stop ends it
    /// (the figures phase of Ctrl-C and SIGTERM) without writing any.
    #[test]
    fn drawing_within_a_stop_flag_writes_the_figures_or_stops() {
        let dir = results_dir();
        let results = Results::load(dir.path()).unwrap();
        let stop = StopFlag::new();
        let drawn = results.draw_within(dir.path(), &stop).unwrap();
        let names: Vec<_> = drawn.written.iter().map(|p| p.file_name().unwrap().to_str().unwrap()).collect();
        assert_eq!(names, ["modes.svg", "diffusion.svg", "variance.svg", "alignment.svg"]);
        assert!(drawn.warnings.is_empty(), "{:?}", drawn.warnings);
        let strict = Results::load(dir.path()).unwrap().draw(dir.path()).unwrap();
        assert_eq!(strict, drawn.written);
        let other = tempfile::tempdir().unwrap();
        stop.request();
        let err = results.draw_within(other.path(), &stop).unwrap_err();
        assert!(matches!(err, ExperimentError::Stopped { during: "drawing the figures" }), "{err}");
        assert_eq!(std::fs::read_dir(other.path()).unwrap().count(), 0, "nothing written");
    }
}
