//! The diffusion peak (`docs/theory.md` §4): whether the per-mode diffusion has an interior
//! maximum before the mode is learned, where, and when along gradient flow.

use crate::{Coordinate, Mode, Result};

impl Mode {
    /// Exponent `c` of `D ∝ w^c q(w)`: `c = 4 − 4/L` for the end-to-end coordinate, `c = 2 − 2/L`
    /// for the per-layer one (written in `w = a^L`) (`docs/theory.md` §4.1).
    pub fn diffusion_exponent(&self, coordinate: Coordinate) -> f64 {
        let l = self.l();
        match coordinate {
            Coordinate::EndToEnd => 4.0 - 4.0 / l,
            Coordinate::PerLayer => 2.0 - 2.0 / l,
        }
    }

    /// The discriminant bound `σ²_max = 2 s² / (c (c + 2))`: an interior peak of the diffusion
    /// exists iff `σ² ≤ σ²_max` (`docs/theory.md` §4.3). `None` at `L = 1` (`c = 0`), where `D = (η/B) q(w)`
    /// decreases all the way to `s`: there is no interior peak for any `σ`.
    pub fn peak_sigma2_max(&self, coordinate: Coordinate) -> Option<f64> {
        let c = self.diffusion_exponent(coordinate);
        (c > 0.0).then(|| 2.0 * self.s * self.s / (c * (c + 2.0)))
    }

    /// Whether the diffusion has an interior maximum before `s` (the discriminant condition).
    pub fn peak_exists(&self, coordinate: Coordinate) -> bool {
        self.peak_sigma2_max(coordinate).is_some_and(|bound| self.sigma * self.sigma <= bound)
    }

    /// End-to-end location of the diffusion peak (`docs/theory.md` §4.3), whichever coordinate's diffusion is
    /// maximised: `w_peak = s − [2s + sqrt(4s² − 2c(c+2)σ²)] / (2(c + 2))`, which is
    /// `c s / (c + 2)` at `σ = 0`; `None` when no interior peak exists.
    pub fn diffusion_peak(&self, coordinate: Coordinate) -> Option<f64> {
        if !self.peak_exists(coordinate) {
            return None;
        }
        let c = self.diffusion_exponent(coordinate);
        let s = self.s;
        let disc = (4.0 * s * s - 2.0 * c * (c + 2.0) * self.sigma * self.sigma).max(0.0);
        Some(s - (2.0 * s + disc.sqrt()) / (2.0 * (c + 2.0)))
    }

    /// Gradient-flow time from `w0` to the diffusion peak (`docs/theory.md` §4.6); `None` when there is no
    /// peak or the flow from `w0` never reaches it (`w0` already past it).
    pub fn peak_time(&self, coordinate: Coordinate, w0: f64) -> Result<Option<f64>> {
        self.check_initial(w0)?;
        Ok(self.diffusion_peak(coordinate).and_then(|w_peak| self.gf_time(w0, w_peak)))
    }
}
