//! The linear regime near `s` (`docs/theory.md` §7.2.1–7.2.3): where the exact chain and the
//! SDE of one mode become linear recursions in `x = w − s` with closed-form moments — how fast
//! `E x` and `E x²` decay without label noise (the approach to the Dirac law), and the
//! stationary variances with it.
//!
//! # The exact chain, depth `L` (`docs/theory.md` §7.2.1, §7.2.3)
//!
//! One step is `a ← a − η a^{L−1} ḡ` with `ḡ = ((w − s) Q − σ sqrt(Q) ξ)/B`, `Q ~ χ²_B`,
//! `ξ ~ N(0, 1)` (`docs/theory.md` §3.3), so `w ← w (1 − η a^{L−2} ḡ)^L`. Without label noise `ḡ = x Q/B` is
//! of order `x`, and expanding the power to first order in `x` (not in `η`):
//!
//! ```text
//! x ← x (1 − η λ Q/B) + O(x²),      λ = L s^{2−2/L}        (w a^{L−2} → s^{2−2/L}).
//! ```
//!
//! With `E Q = B` and `E Q² = B² + 2B`:
//!
//! ```text
//! E x ← (1 − ηλ) E x,      E x² ← [(1 − ηλ)² + 2η²λ²/B] E x²,
//! ```
//!
//! so per unit time `t = η · step` the mean decays at `−ln|1 − ηλ|/η` and the second moment
//! at `−ln((1 − ηλ)² + 2η²λ²/B)/η`. These hold at every depth and every `η` (the `O(x²)`
//! remainder vanishes as the paths approach `s`). The second-moment rate is that of
//! `E[(s − w)²]`; from a start at one point `x0`, the across-seed variance is
//! `x0² (f₂ⁿ − f₁²ⁿ)` (`f₁ = 1 − ηλ`, `f₂` the second-moment factor), which decays at the same
//! rate once `(f₁²/f₂)ⁿ` is small. The same recursion holds for an unbalanced depth-2 mode
//! ([`crate::unbalanced`]) with `λ = sqrt(4s² + δ²)`: `w ← w − η S ḡ + η² ḡ² w` and
//! `S(s) = λ`, while `δ` changes only at order `x²`.
//!
//! # The SDE (`docs/theory.md` §7.2.1, §7.2.3)
//!
//! Near `s` without label noise the Itô correction of the drift is `O(x²)` and `√q = √2 |x|`,
//! so `dx = −λ x dt + sqrt(2η/B) λ |x| dB`: a geometric Brownian motion with
//! `d E x² = (−2λ + 2ηλ²/B) E x² dt`. The second moment decays at `2λ (1 − ηλ/B)` and the mean
//! at `λ`. Expanding the chain's rate in `η`, `2λ + ηλ² (1 − 2/B) + O(η²)`, shows the two agree
//! at order 1 and differ by `ηλ²` at order `η`: the deterministic error of the gradient step,
//! which the SDE leaves out.
//!
//! # With label noise (`docs/theory.md` §7.2.2)
//!
//! Keeping the `σ` part of `ḡ` at leading order, `x ← x (1 − ηλQ/B) + ηλσ sqrt(Q) ξ/B`, so the
//! stationary variance of the chain is `η²λ²σ²/(B (1 − f₂)) = ηλσ²/(B (2 − ηλ (1 + 2/B)))`
//! and, from `dx = −λ x dt + sqrt(η/B) λ sqrt(2x² + σ²) dB`, that of the SDE is
//! `ηλσ²/(2B (1 − ηλ/B))`. Both tend to the Boltzmann `T = ηλσ²/(2B)` as `ηλ → 0`. They keep the
//! corrections of relative order `ηλ/B` and `ηλ` that come from the multiplicative noise and
//! the step; the mode's nonlinearity adds corrections of relative order `σ²/s²` times these,
//! which are left out (they are small when `σ ≪ s`).

use serde::Serialize;

use crate::{Mode, UnbalancedMode};

/// The linear recursions of one mode near `s` (module documentation): relaxation rate `λ`,
/// learning rate `η`, batch size `B` and label-noise variance `σ²`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LinearRegime {
    /// Relaxation rate of gradient flow at `s`: `λ = L s^{2−2/L}` (balanced), `sqrt(4s² + δ²)`
    /// (unbalanced, depth 2).
    pub rate: f64,
    /// Learning rate `η`.
    pub lr: f64,
    /// Batch size `B`.
    pub batch: u32,
    /// Label-noise variance `σ²`.
    pub sigma2: f64,
}

impl Mode {
    /// The linear regime of this mode near `s`, `λ = L s^{2−2/L}`.
    pub fn linear_regime(&self) -> LinearRegime {
        let l = self.l();
        LinearRegime {
            rate: l * self.s.powf(2.0 - 2.0 / l),
            lr: self.lr,
            batch: self.batch,
            sigma2: self.sigma * self.sigma,
        }
    }
}

impl UnbalancedMode {
    /// The linear regime of this mode near `s`, `λ = sqrt(4s² + δ²)`.
    pub fn linear_regime(&self) -> LinearRegime {
        let m = self.mode();
        LinearRegime { rate: self.rate(), lr: m.lr(), batch: m.batch(), sigma2: m.sigma() * m.sigma() }
    }
}

impl LinearRegime {
    /// `ηλ`, the step's size relative to the relaxation time.
    pub fn step(&self) -> f64 {
        self.lr * self.rate
    }

    fn b(&self) -> f64 {
        f64::from(self.batch)
    }

    /// The chain's mean factor per step, `f₁ = 1 − ηλ`.
    pub fn chain_mean_factor(&self) -> f64 {
        1.0 - self.step()
    }

    /// The chain's second-moment factor per step, `f₂ = (1 − ηλ)² + 2η²λ²/B`.
    pub fn chain_second_moment_factor(&self) -> f64 {
        let h = self.step();
        (1.0 - h) * (1.0 - h) + 2.0 * h * h / self.b()
    }

    /// Decay rate per unit time of `|E(w − s)|` along the chain, `−ln|1 − ηλ|/η`
    /// (infinite at `ηλ = 1`).
    pub fn chain_mean_rate(&self) -> f64 {
        -self.chain_mean_factor().abs().ln() / self.lr
    }

    /// Decay rate per unit time of `E[(s − w)²]` along the chain without label noise,
    /// `−ln((1 − ηλ)² + 2η²λ²/B)/η`; negative when the chain is unstable in mean square
    /// (`ηλ > 2B/(B + 2)`).
    pub fn chain_second_moment_rate(&self) -> f64 {
        -self.chain_second_moment_factor().ln() / self.lr
    }

    /// Decay rate of `E(w − s)` along the SDE, `λ`.
    pub fn sde_mean_rate(&self) -> f64 {
        self.rate
    }

    /// Decay rate of `E[(s − w)²]` along the SDE without label noise, `2λ (1 − ηλ/B)`.
    pub fn sde_second_moment_rate(&self) -> f64 {
        2.0 * self.rate * (1.0 - self.step() / self.b())
    }

    /// `E[(s − w)²]` after `steps` chain steps from the point `w0 = s + x0`, without label noise:
    /// `x0² f₂^steps`.
    pub fn chain_second_moment(&self, x0: f64, steps: u64) -> f64 {
        x0 * x0 * self.chain_second_moment_factor().powf(steps as f64)
    }

    /// Across-seed variance of `w` after `steps` chain steps from the point `w0 = s + x0`,
    /// without label noise: `x0² (f₂^steps − f₁^{2 steps})`.
    pub fn chain_point_variance(&self, x0: f64, steps: u64) -> f64 {
        let n = steps as f64;
        let f1 = self.chain_mean_factor();
        x0 * x0 * (self.chain_second_moment_factor().powf(n) - (f1 * f1).powf(n))
    }

    /// The Ornstein–Uhlenbeck (Boltzmann) variance `ηλσ²/(2B)`.
    pub fn ou_variance(&self) -> f64 {
        self.lr * self.rate * self.sigma2 / (2.0 * self.b())
    }

    /// Stationary variance of the chain with label noise, `ηλσ²/(B (2 − ηλ (1 + 2/B)))`;
    /// `None` when the chain is unstable in mean square.
    pub fn chain_stationary_variance(&self) -> Option<f64> {
        let denominator = 2.0 - self.step() * (1.0 + 2.0 / self.b());
        (denominator > 0.0).then(|| self.lr * self.rate * self.sigma2 / (self.b() * denominator))
    }

    /// Stationary variance of the SDE with label noise, `ηλσ²/(2B (1 − ηλ/B))`; `None` when
    /// `ηλ ≥ B` (the multiplicative noise then outgrows the restoring drift).
    pub fn sde_stationary_variance(&self) -> Option<f64> {
        let denominator = 1.0 - self.step() / self.b();
        (denominator > 0.0).then(|| self.ou_variance() / denominator)
    }
}
