//! The per-mode SDE (`docs/theory.md` §3): the projected gradient, drift, diffusion and noise
//! coefficients in the end-to-end (`w`) and per-layer (`a`) coordinates.
//!
//! Domain: for `L ≥ 2` the functions take `w ≥ 0` and `a ≥ 0` (the mode strength of a
//! balanced network started with the teacher's sign); at `L = 1` every real value is allowed.

use crate::{Coordinate, Mode};

/// `x^p` with the convention `x^0 = 1` (also at `x = 0`), used for the fractional powers
/// `w^{2−2/L}`, `w^{3−4/L}`, `w^{4−4/L}` of the note.
#[inline]
pub(crate) fn pow(x: f64, p: f64) -> f64 {
    if p == 0.0 { 1.0 } else { x.powf(p) }
}

impl Mode {
    /// Variance of the projected gradient, `q(w) = 2 (s − w)² + σ²` (`docs/theory.md` §3.2).
    #[inline]
    pub fn q(&self, w: f64) -> f64 {
        let d = self.s - w;
        2.0 * d * d + self.sigma * self.sigma
    }

    /// Mean and variance of the projected per-sample gradient `g_k = (w − s) z² − ε z`:
    /// `(w − s, q(w))` (`docs/theory.md` §3.2).
    pub fn projected_gradient_moments(&self, w: f64) -> (f64, f64) {
        (w - self.s, self.q(w))
    }

    /// One projected per-sample gradient `g = (w − s) z² − ε z` from a standard normal `z`
    /// (the input's component along the mode) and the label noise `ε ~ N(0, σ²)` (`docs/theory.md` §3.2).
    #[inline]
    pub fn projected_gradient(&self, w: f64, z: f64, eps: f64) -> f64 {
        (w - self.s) * z * z - eps * z
    }

    /// Gradient-flow velocity `ẇ = L w^{2−2/L} (s − w)` (`docs/theory.md` §3.6, `η → 0`).
    #[inline]
    pub fn gf_velocity(&self, w: f64) -> f64 {
        let l = self.l();
        l * pow(w, 2.0 - 2.0 / l) * (self.s - w)
    }

    /// Itô drift of the per-mode SDE (`docs/theory.md` §3.5):
    /// - `w`: `L w^{2−2/L} (s − w) + (η/2B) L (L−1) w^{3−4/L} q(w)`;
    /// - `a`: `a^{L−1} (s − a^L)`.
    pub fn drift(&self, coordinate: Coordinate, x: f64) -> f64 {
        match coordinate {
            Coordinate::EndToEnd => self.gf_velocity(x) + self.ito_drift(x),
            Coordinate::PerLayer => x.powi(self.depth as i32 - 1) * (self.s - self.w_from_a(x)),
        }
    }

    /// Diffusion coefficient (variance per unit time) of the per-mode SDE (`docs/theory.md` §3.5):
    /// - `w`: `D(w) = (η/B) L² w^{4−4/L} q(w)`;
    /// - `a`: `D_a(a) = (η/B) a^{2L−2} q(a^L)`.
    pub fn diffusion(&self, coordinate: Coordinate, x: f64) -> f64 {
        let l = self.l();
        match coordinate {
            Coordinate::EndToEnd => self.noise_scale() * l * l * pow(x, 4.0 - 4.0 / l) * self.q(x),
            Coordinate::PerLayer => self.noise_scale() * x.powi(2 * self.depth as i32 - 2) * self.q(self.w_from_a(x)),
        }
    }

    /// Noise coefficient `g = sqrt(D)`, the factor of `dB_t` (`docs/theory.md` §3.5):
    /// - `w`: `sqrt(η/B) L w^{2−2/L} sqrt(q(w))`;
    /// - `a`: `sqrt(η/B) a^{L−1} sqrt(q(a^L))`.
    pub fn noise(&self, coordinate: Coordinate, x: f64) -> f64 {
        let l = self.l();
        let k = self.noise_scale().sqrt();
        match coordinate {
            Coordinate::EndToEnd => k * l * pow(x, 2.0 - 2.0 / l) * self.q(x).sqrt(),
            Coordinate::PerLayer => k * x.powi(self.depth as i32 - 1) * self.q(self.w_from_a(x)).sqrt(),
        }
    }

    /// Derivative `g′(x)` of the noise coefficient, the Milstein correction's factor:
    /// - `w`: `sqrt(η/B) L [ (2−2/L) w^{1−2/L} sqrt(q) + w^{2−2/L} q′/(2 sqrt(q)) ]`;
    /// - `a`: `sqrt(η/B) [ (L−1) a^{L−2} sqrt(q) + a^{L−1} L a^{L−1} q′/(2 sqrt(q)) ]`;
    ///
    /// with `q′(w) = −4 (s − w)`. Where `q = 0` (`σ = 0` at `w = s`) `sqrt(q)` has a kink and
    /// the second term is taken as 0.
    pub fn noise_derivative(&self, coordinate: Coordinate, x: f64) -> f64 {
        let l = self.l();
        let k = self.noise_scale().sqrt();
        match coordinate {
            Coordinate::EndToEnd => {
                let q = self.q(x);
                let dq = -4.0 * (self.s - x);
                let first = if self.depth == 1 { 0.0 } else { (2.0 - 2.0 / l) * pow(x, 1.0 - 2.0 / l) * q.sqrt() };
                k * l * (first + pow(x, 2.0 - 2.0 / l) * half_ratio(dq, q))
            }
            Coordinate::PerLayer => {
                let n = self.depth as i32;
                let w = self.w_from_a(x);
                let q = self.q(w);
                let dq_da = -4.0 * (self.s - w) * l * x.powi(n - 1);
                let first = if n == 1 { 0.0 } else { (l - 1.0) * x.powi(n - 2) * q.sqrt() };
                k * (first + x.powi(n - 1) * half_ratio(dq_da, q))
            }
        }
    }
}

/// `dq / (2 sqrt(q))`, taken as 0 where `q = 0`.
#[inline]
fn half_ratio(dq: f64, q: f64) -> f64 {
    if q > 0.0 { dq / (2.0 * q.sqrt()) } else { 0.0 }
}
