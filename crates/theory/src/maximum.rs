//! The largest diffusion along gradient flow on the way to learning (`docs/theory.md` §4.4): the
//! interior peak of `docs/theory.md` §4.3 is a local maximum of `D`, and near the discriminant
//! bound `D` at the end of learning exceeds it, so the global maximum on `[w0, ρ s]` can sit at
//! the end. The unbalanced depth-2 mode's maxima are in `docs/theory.md` §7.1.4.
//!
//! With label noise, `D ∝ w^c q(w)` (balanced, `c = 4 − 4/L` in `w`, `2 − 2/L` in `a`) rises to
//! the peak `w_peak`, falls to a local minimum and rises again to `D(s) ∝ s^c σ²`. At the
//! discriminant bound `σ² = 2s²/(c (c + 2))` the peak sits at `w_peak = s (c + 1)/(c + 2)` and
//! `D(w_peak)/D(s) = 2 ((c + 1)/(c + 2))^{c+1} < 1` (`= 27/32` at `c = 2`), while at `σ = 0`
//! `D(s) = 0`: in between lies the `σ²` at which `D(w_peak) = D(s)`
//! ([`Mode::peak_dominance_sigma2`]). At `L = 2` in `w` it is exactly `(20√5 − 44)` times the
//! bound, `≈ 0.7214`: writing `u = sqrt(1 − 4σ²/s²)`, `w_peak = s (3 − u)/4` and
//! `D(w_peak) = D(s)` reduces to `(3 − u)³ = 32 (1 − u)`, whose root in `[0, 1]` is
//! `u = 5 − 2√5`, so `σ² = s² (1 − u²)/4 = (5√5 − 11) s²` and the bound is `s²/4`.

use serde::Serialize;

use crate::check;
use crate::{Coordinate, Mode, Result, TheoryError, UnbalancedMode, roots};

/// One point of the gradient-flow path with its diffusion.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DiffusionPoint {
    /// End-to-end strength `w`.
    pub w: f64,
    /// The diffusion there (in the coordinate asked for).
    pub diffusion: f64,
    /// Gradient-flow time from `w0` to `w`.
    pub time: f64,
}

/// The diffusion's maxima along gradient flow from `w0` to `ρ s`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DiffusionMaximum {
    /// The interior peak (a local maximum), when it exists and lies in `[w0, ρ s]`.
    pub local_peak: Option<DiffusionPoint>,
    /// The global maximum on `[w0, ρ s]`: the peak, or one of the two ends.
    pub global: DiffusionPoint,
}

/// Checks `w0 < ρ s` and returns `ρ s`.
fn end_point(s: f64, w0: f64, rho: f64) -> Result<f64> {
    check::open_unit("rho", rho)?;
    let end = rho * s;
    if w0 >= end {
        return Err(TheoryError::invalid("w0", format!("must lie below ρ s = {end} for a path to learning"), w0));
    }
    Ok(end)
}

/// The maxima of `d` on `[w0, end]` when `d` can have an interior maximum only at `peak`
/// (the shapes of both diffusions: at most one interior maximum before `s`).
fn maximum_along(
    w0: f64,
    end: f64,
    peak: Option<f64>,
    d: impl Fn(f64) -> f64,
    time: impl Fn(f64) -> Option<f64>,
) -> DiffusionMaximum {
    let point = |w: f64| DiffusionPoint { w, diffusion: d(w), time: time(w).unwrap_or(f64::NAN) };
    let local_peak = peak.filter(|&w| w0 <= w && w <= end).map(point);
    let mut global = point(w0);
    for candidate in local_peak.into_iter().chain([point(end)]) {
        if candidate.diffusion > global.diffusion {
            global = candidate;
        }
    }
    DiffusionMaximum { local_peak, global }
}

impl Mode {
    /// The interior peak (if it lies on the way) and the global maximum of the diffusion in
    /// `coordinate` along gradient flow from `w0` up to `ρ s` (`w0 < ρ s`, `ρ ∈ (0, 1)`), with
    /// their gradient-flow times. Locations are end-to-end values `w`.
    pub fn diffusion_maximum(&self, coordinate: Coordinate, w0: f64, rho: f64) -> Result<DiffusionMaximum> {
        self.check_initial(w0)?;
        let end = end_point(self.s, w0, rho)?;
        let d = |w: f64| match coordinate {
            Coordinate::EndToEnd => self.diffusion(coordinate, w),
            Coordinate::PerLayer => self.diffusion(coordinate, self.a_from_w(w)),
        };
        Ok(maximum_along(w0, end, self.diffusion_peak(coordinate), d, |w| self.gf_time(w0, w)))
    }

    /// The label-noise variance `σ²` at which the interior peak and the end of learning have
    /// the same diffusion, `D(w_peak) = D(s)` (module documentation): below it the peak is the
    /// global maximum of `D` on `(0, s]`, between it and the discriminant bound only a local
    /// one. Depends on `s`, `L` and the coordinate only; `None` at `L = 1` (no peak).
    pub fn peak_dominance_sigma2(&self, coordinate: Coordinate) -> Option<f64> {
        let bound = self.peak_sigma2_max(coordinate)?;
        let c = self.diffusion_exponent(coordinate);
        let s = self.s;
        // D ∝ w^c (2 (s − w)² + σ²); the peak's location as in `diffusion_peak`.
        let gap = |sigma2: f64| {
            let disc = (4.0 * s * s - 2.0 * c * (c + 2.0) * sigma2).max(0.0);
            let w = s - (2.0 * s + disc.sqrt()) / (2.0 * (c + 2.0));
            w.powf(c) * (2.0 * (s - w) * (s - w) + sigma2) - s.powf(c) * sigma2
        };
        Some(roots::bisect(gap, 0.0, bound))
    }
}

impl UnbalancedMode {
    /// The interior peak (if it lies on the way) and the global maximum of the diffusion along
    /// gradient flow from `w0` up to `ρ s` (`w0 < ρ s`, `ρ ∈ (0, 1)`), with their times. `D`
    /// falls, then rises to the peak, falls and rises again ([`UnbalancedMode::peak_cubic`]), so
    /// the candidates are the same as in the balanced case.
    pub fn diffusion_maximum(&self, w0: f64, rho: f64) -> Result<DiffusionMaximum> {
        self.check_initial(w0)?;
        let end = end_point(self.mode().s(), w0, rho)?;
        Ok(maximum_along(w0, end, self.diffusion_peak(), |w| self.diffusion(w), |w| self.gf_time(w0, w)))
    }
}
