//! Aligned but unbalanced modes at depth 2 (the conserved-δ theory, `docs/theory.md` §7.1):
//! gradient flow, the Itô SDE of `w`, the diffusion peak, the zero-flux stationary density and
//! its Ornstein–Uhlenbeck approximation, and the exact two-layer SGD chain as an ensemble.
//!
//! # Model
//!
//! A mode of an aligned two-layer network has layer scalars `a_1`, `a_2` (not necessarily
//! equal), end-to-end strength `w = a_1 a_2` and imbalance `δ = a_2² − a_1²`. Both layers
//! see the projected per-sample gradient `g = (w − s) z² − ε z` of `docs/theory.md` §3.2, so
//! one SGD step with batch mean `ḡ` (mean `w − s`, variance `q(w)/B`,
//! `q(w) = 2 (s − w)² + σ²`) is exactly
//!
//! ```text
//! a_1 ← a_1 − η a_2 ḡ,        a_2 ← a_2 − η a_1 ḡ.
//! ```
//!
//! # What the step does to `δ` and `w` (exact algebra, `docs/theory.md` §7.1.1)
//!
//! Expanding the squares, the cross terms `∓2η a_1 a_2 ḡ` cancel in the difference:
//!
//! ```text
//! δ ← (a_2 − η a_1 ḡ)² − (a_1 − η a_2 ḡ)² = δ (1 − η² ḡ²),
//! w ← (a_1 − η a_2 ḡ)(a_2 − η a_1 ḡ) = w − η S ḡ + η² ḡ² w,     S = a_1² + a_2².
//! ```
//!
//! `δ` changes only at order `η²` per step (its mean drifts by `−η δ E ḡ²` per unit time
//! `t = η · step`, `E ḡ² = (w − s)² + q/B`), and gradient flow (`η → 0`) conserves it. The
//! identity `S² = (a_2² − a_1²)² + 4 a_1² a_2² = δ² + 4 w²` closes the dynamics in `w`:
//! `S(w) = sqrt(4w² + δ²)`.
//!
//! # The Itô SDE in `w` (`docs/theory.md` §7.1.2)
//!
//! Per step, `E Δw = η S (s − w) + η² w [(s − w)² + q/B]` and
//! `Var Δw = η² S² q / B + O(η³)`. Matching an Itô SDE with time step `η`:
//!
//! ```text
//! dw = [ S(w) (s − w) + (η/B) w q(w) ] dt + sqrt((η/B) (4w² + δ²) q(w)) dB_t,
//! D(w) = (η/B) (4w² + δ²) q(w).
//! ```
//!
//! The drift's `O(η)` Itô part `(η/B) w q` is the noise-induced part of `η w E ḡ²`; it is also
//! what Itô's formula gives from the per-layer SDEs `da_1 = a_2 (s − w) dt + sqrt(η/B) a_2
//! sqrt(q) dB`, `da_2 = a_1 (…)` driven by one Brownian motion (`d⟨a_1, a_2⟩ = (η/B) a_1 a_2 q
//! dt`). The remaining `η w (s − w)²` is the deterministic `O(η)` error of the gradient step
//! itself, which the SDE leaves out, as the balanced SDE of `docs/theory.md` §3.5 does (its
//! `L = 2` drift `2w (s − w) + (η/B) w q` is this one at `δ = 0`). The SDE holds `δ` fixed:
//! over times `≪ 1/(η E ḡ²)` the chain's `δ` stays put.
//!
//! # Consequences (derived in the methods' documentation and `docs/theory.md` §7.1.3–7.1.5)
//!
//! - gradient flow `ẇ = S(w)(s − w)` has an elementary time integral and an explicit inverse;
//! - for `δ ≠ 0`, `w = 0` is no longer a saddle (`ẇ(0) = |δ| s`): `w` lives on the whole line;
//! - the diffusion peak solves a cubic and exists on an interval of `σ²` that shrinks with
//!   `|δ|` and is empty for `δ² > s²`;
//! - the stationary law is normalisable for every `σ > 0`, `δ ≠ 0`; near `s` it is
//!   Ornstein–Uhlenbeck with rate `λ = sqrt(4s² + δ²)` and variance
//!   `T sqrt(1 + δ²/(4s²))`, `T = η σ² s / B`.
//!
//! At `δ = 0` (and `w > 0`) every quantity here equals the balanced [`Mode`]'s at `L = 2`.

use rand_distr::{ChiSquared, Distribution, StandardNormal};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::check;
use crate::ensemble::{BLOCK, BlockOut, Run, path_rng};
use crate::stationary::{Boltzmann, StationaryDensity, StationaryOptions};
use crate::zero_flux::ZeroFlux;
use crate::{EnsembleParams, EnsembleStats, Mode, Result, TheoryError, roots};

/// An aligned, unbalanced mode of a depth-2 network: a balanced [`Mode`] (`L = 2`) plus the
/// imbalance `δ = a_2² − a_1²`, which gradient flow conserves.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct UnbalancedMode {
    mode: Mode,
    delta: f64,
}

/// What the paths of an unbalanced ensemble follow.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum UnbalancedDynamics {
    /// The exact two-layer SGD chain (`docs/theory.md` §7.1.6): per step
    /// `a_1 ← a_1 − η a_2 ḡ`, `a_2 ← a_2 − η a_1 ḡ`, `ḡ = ((a_1 a_2 − s) Q − σ sqrt(Q) ξ) / B`
    /// with `Q ~ χ²_B`, `ξ ~ N(0, 1)` (sampled as the balanced chain of
    /// [`crate::Dynamics::Chain`] is, with the same random streams), one step per `η` of time.
    /// `δ` drifts as it really does.
    TwoLayerChain,
    /// Euler–Maruyama of the `w`-SDE at fixed `δ` with time step `dt` (reflected at 0 only
    /// when `δ = 0`, as balanced SDE paths are).
    Sde {
        /// Time step, `> 0`.
        dt: f64,
    },
}

/// Statistics of an unbalanced ensemble: of `w` and of the imbalance `δ` across paths.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnbalancedEnsemble {
    /// Statistics of `w = a_1 a_2`.
    pub w: EnsembleStats,
    /// Statistics of `δ = a_2² − a_1²` (constant for [`UnbalancedDynamics::Sde`]).
    pub delta: EnsembleStats,
}

impl UnbalancedMode {
    /// An unbalanced mode from a depth-2 mode and the imbalance `δ` (finite, any sign).
    pub fn new(mode: Mode, delta: f64) -> Result<Self> {
        if mode.depth != 2 {
            return Err(TheoryError::invalid(
                "depth",
                "must be 2 for an unbalanced mode (δ is conserved only with two layers)",
                mode.depth,
            ));
        }
        check::finite("delta", delta)?;
        Ok(Self { mode, delta })
    }

    /// The mode and the initial `w0 = a_1 a_2` of layer scalars `a_1`, `a_2` (finite):
    /// `δ = a_2² − a_1²`.
    pub fn from_layers(mode: Mode, a1: f64, a2: f64) -> Result<(Self, f64)> {
        check::finite("a1", a1)?;
        check::finite("a2", a2)?;
        Ok((Self::new(mode, a2 * a2 - a1 * a1)?, a1 * a2))
    }

    /// The mode and `w0` of a scale-and-ratio initialisation `a_1 = a_0 / sqrt(r)`,
    /// `a_2 = a_0 sqrt(r)`: `w0 = a_0²`, `δ = a_0² (r − 1/r)` (`a_0` finite, `r > 0`).
    pub fn from_scale_ratio(mode: Mode, a0: f64, ratio: f64) -> Result<(Self, f64)> {
        check::finite("a0", a0)?;
        check::positive("ratio", ratio)?;
        let w0 = a0 * a0;
        Ok((Self::new(mode, w0 * (ratio - 1.0 / ratio))?, w0))
    }

    /// The underlying depth-2 mode (`s`, `σ`, `η`, `B`).
    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    /// The imbalance `δ = a_2² − a_1²`.
    pub fn delta(&self) -> f64 {
        self.delta
    }

    /// Checks an initial `w0`: finite, and positive when `δ = 0` (the balanced saddle at 0).
    pub fn check_initial(&self, w0: f64) -> Result<f64> {
        Ok(if self.delta == 0.0 { check::positive("w0", w0)? } else { check::finite("w0", w0)? })
    }

    /// `S(w) = a_1² + a_2² = sqrt(4w² + δ²)`.
    #[inline]
    pub fn layer_norm(&self, w: f64) -> f64 {
        (2.0 * w).hypot(self.delta)
    }

    /// The layer scalars `(a_1, a_2)` with `a_1 a_2 = w`, `a_2² − a_1² = δ`, `a_2 ≥ 0`
    /// (the pair `(−a_1, −a_2)` is the same mode): the larger square is `(S + |δ|)/2`.
    pub fn layers(&self, w: f64) -> (f64, f64) {
        let big = (0.5 * (self.layer_norm(w) + self.delta.abs())).sqrt();
        let small = if self.delta == 0.0 {
            big
        } else if big > 0.0 {
            w.abs() / big
        } else {
            0.0
        };
        let small = small.copysign(w);
        if self.delta >= 0.0 { (small, big) } else { (big.copysign(w), small.abs()) }
    }

    /// The relaxation rate at `s`, `λ = S(s) = sqrt(4s² + δ²)` (`2s` when balanced).
    pub fn rate(&self) -> f64 {
        self.layer_norm(self.mode.s)
    }

    /// The balanced temperature `T = η σ² s / B` (the `T` of `docs/theory.md` §5.4 at `L = 2`).
    pub fn temperature(&self) -> f64 {
        self.mode.temperature()
    }

    /// The Ornstein–Uhlenbeck variance near `s`, `T sqrt(1 + δ²/(4s²)) = η σ² λ / (2B)`
    /// (`docs/theory.md` §7.1.5): linearising the SDE at `s` gives
    /// `dx = −λ x dt + sqrt((η/B) λ² σ²) dB`.
    pub fn ou_variance(&self) -> f64 {
        self.mode.noise_scale() * self.mode.sigma * self.mode.sigma * self.rate() / 2.0
    }

    /// The normal approximation `N(s, T sqrt(1 + δ²/(4s²)))` of the stationary law.
    pub fn boltzmann(&self) -> Boltzmann {
        Boltzmann { center: self.mode.s, temperature: self.ou_variance() }
    }

    /// Gradient-flow velocity `ẇ = S(w) (s − w) = sqrt(4w² + δ²) (s − w)`.
    #[inline]
    pub fn gf_velocity(&self, w: f64) -> f64 {
        self.layer_norm(w) * (self.mode.s - w)
    }

    /// Itô drift of the `w`-SDE, `S(w) (s − w) + (η/B) w q(w)` (module documentation).
    pub fn drift(&self, w: f64) -> f64 {
        self.gf_velocity(w) + self.mode.noise_scale() * w * self.mode.q(w)
    }

    /// Diffusion coefficient `D(w) = (η/B) (4w² + δ²) q(w)`.
    pub fn diffusion(&self, w: f64) -> f64 {
        let s2 = 4.0 * w * w + self.delta * self.delta;
        self.mode.noise_scale() * s2 * self.mode.q(w)
    }

    /// Noise coefficient `sqrt(D(w)) = sqrt(η/B) S(w) sqrt(q(w))`.
    pub fn noise(&self, w: f64) -> f64 {
        self.mode.noise_scale().sqrt() * self.layer_norm(w) * self.mode.q(w).sqrt()
    }

    /// `2w + S(w)`, free of cancellation for `w < 0` (there `= δ²/(S − 2w)`).
    fn two_w_plus_s(&self, w: f64) -> f64 {
        let s_w = self.layer_norm(w);
        if w >= 0.0 { 2.0 * w + s_w } else { self.delta * self.delta / (s_w - 2.0 * w) }
    }

    /// The flow's conserved ratio `R(w)`, with `R(w(t)) = R(w0) e^{λt}` (see [`Self::gf_time`]).
    fn flow_ratio(&self, w: f64) -> f64 {
        let s = self.mode.s;
        let lambda = self.rate();
        let p = self.two_w_plus_s(w);
        let d2 = self.delta * self.delta;
        (p + d2 / (lambda + 2.0 * s)) * (lambda + self.layer_norm(w)) / (2.0 * (s - w) * (lambda + 2.0 * s + p))
    }

    /// Gradient-flow time from `w0` to `w1`, `t = ∫ dw / (sqrt(4w² + δ²) (s − w))`, in closed
    /// form (`docs/theory.md` §7.1.3); `None` when the flow never reaches `w1` (beyond `s`, behind
    /// `w0`, `w0` at `s`, or, when `δ = 0`, a non-positive value).
    ///
    /// With `w = (|δ|/4)(v − 1/v)` (so `S = (|δ|/2)(v + 1/v)`, `v = (2w + S)/|δ|`) the integral
    /// becomes `∫ 2 dv / (|δ| + 4sv − |δ| v²)`, whose partial fractions give
    /// `t = (1/λ) ln(R(w1)/R(w0))`, `λ = sqrt(4s² + δ²)`, with
    ///
    /// ```text
    /// R(w) = (v − v₋)/(v₊ − v) = [P + δ²/(λ + 2s)] (λ + S) / [2 (s − w) (λ + 2s + P)],
    /// ```
    ///
    /// `v± = (2s ± λ)/|δ|`, `P = 2w + S(w)`, written without cancellation (this form also holds
    /// at `δ = 0`, where `R = w/(s − w)` and `t` is the `L = 2` formula of `docs/theory.md` §4.5).
    pub fn gf_time(&self, w0: f64, w1: f64) -> Option<f64> {
        let s = self.mode.s;
        if w0 == w1 {
            return Some(0.0);
        }
        if !(w0.is_finite() && w1.is_finite()) || (self.delta == 0.0 && (w0 <= 0.0 || w1 <= 0.0)) {
            return None;
        }
        let reachable = (w0 < w1 && w1 < s) || (s < w1 && w1 < w0);
        if !reachable {
            return None;
        }
        Some((self.flow_ratio(w1) / self.flow_ratio(w0)).ln() / self.rate())
    }

    /// Gradient-flow trajectory `w(t)` from `w0` (`t ≥ 0` finite), inverting
    /// [`Self::gf_time`] explicitly: with `R* = R(w0) e^{λt}` and `Π = R*/(1 + R*)`,
    /// `y = 2w + S(w) = 2λΠ − δ²/(λ + 2s)` and `w = (y − δ²/y)/4`
    /// (`w = s Π` when `δ = 0`).
    pub fn gf_trajectory(&self, w0: f64, t: f64) -> Result<f64> {
        self.check_initial(w0)?;
        check::non_negative("t", t)?;
        let s = self.mode.s;
        if t == 0.0 || w0 == s {
            return Ok(w0);
        }
        let lambda = self.rate();
        let r0 = self.flow_ratio(w0);
        // Π = R0 e^{λt} / (1 + R0 e^{λt}) = R0 / (e^{−λt} + R0), which stays finite as t grows.
        let pi = r0 / ((-lambda * t).exp() + r0);
        let d2 = self.delta * self.delta;
        let y = 2.0 * lambda * pi - d2 / (lambda + 2.0 * s);
        Ok(if self.delta == 0.0 { s * pi } else { 0.25 * (y - d2 / y) })
    }

    /// Learning time: gradient-flow time from `w0` until `w = ρ s`, 0 when `w0 ≥ ρ s`;
    /// `ρ ∈ (0, 1)`.
    pub fn t_learned(&self, w0: f64, rho: f64) -> Result<f64> {
        self.check_initial(w0)?;
        check::open_unit("rho", rho)?;
        let target = rho * self.mode.s;
        if w0 >= target {
            return Ok(0.0);
        }
        self.gf_time(w0, target)
            .ok_or(TheoryError::Numerical { what: "t_learned", reason: "the flow does not reach ρ s".into() })
    }

    /// The cubic `p(w) = 8w³ − 12 s w² + (4s² + 2σ² + δ²) w − s δ²` with `D′(w) = 4 (η/B) p(w)`.
    ///
    /// From `D ∝ (4w² + δ²) q(w)`: `D′ ∝ 8w q − 4 (s − w)(4w² + δ²) = 4 p(w)` (`docs/theory.md`
    /// §7.1.4). For `δ ≠ 0`, `p < 0` for `w ≤ 0`, `p(s) = 2σ² s ≥ 0` and `p > 0` beyond `s`, so
    /// every real root lies in `(0, s]` (at `δ = 0`, `p(0) = 0` too).
    pub fn peak_cubic(&self, w: f64) -> f64 {
        let s = self.mode.s;
        let c = 4.0 * s * s + 2.0 * self.mode.sigma * self.mode.sigma + self.delta * self.delta;
        ((8.0 * w - 12.0 * s) * w + c) * w - s * self.delta * self.delta
    }

    /// Location of the diffusion's interior maximum before `s`, if any (`docs/theory.md` §7.1.4).
    ///
    /// `D` falls while `p < 0` and rises while `p > 0` ([`Self::peak_cubic`]). An interior
    /// maximum exists iff `p` has three real roots (counted with multiplicity); it is the middle
    /// one. `p′ = 24w² − 24 s w + c` has real roots `w_± = s/2 ± sqrt(s²/4 − c/24)` iff
    /// `2σ² + δ² < 2s²`, and the three roots exist iff `p(w_−) ≥ 0 ≥ p(w_+)`; the peak is then
    /// the root of `p` in `[w_−, w_+]`, found by bisection. At `δ = 0` this is `docs/theory.md` §4.3's
    /// `w_peak = (3s − sqrt(s² − 4σ²))/4`.
    pub fn diffusion_peak(&self) -> Option<f64> {
        let s = self.mode.s;
        let c = 4.0 * s * s + 2.0 * self.mode.sigma * self.mode.sigma + self.delta * self.delta;
        let disc = s * s / 4.0 - c / 24.0;
        if disc <= 0.0 {
            return None;
        }
        let (lo, hi) = (s / 2.0 - disc.sqrt(), s / 2.0 + disc.sqrt());
        if self.peak_cubic(lo) < 0.0 || self.peak_cubic(hi) > 0.0 {
            return None;
        }
        Some(roots::bisect(|w| self.peak_cubic(w), lo, hi))
    }

    /// Whether the diffusion has an interior maximum before `s`.
    pub fn peak_exists(&self) -> bool {
        self.diffusion_peak().is_some()
    }

    /// The range `[σ²_lo, σ²_hi]` of label-noise variances for which an interior peak exists at
    /// this `s` and `δ`; `None` when there is none (`δ² > s²`).
    ///
    /// On the range's edges `p` has a double root `x`: `p(x) = p′(x) = 0`. Eliminating
    /// `c = 24 x (s − x)` leaves `h(x) = 16x³ − 12 s x² + s δ² = 0`, and then
    /// `σ² = 12 x (s − x) − 2s² − δ²/2`. As `h(0) = h(3s/4) = sδ² ≥ 0 ≥ h(s/2) = s(δ² − s²)`,
    /// for `δ² ≤ s²` one root lies in `[0, s/2]` (giving `σ²_lo`, clamped at 0) and one in
    /// `[s/2, 3s/4]` (giving `σ²_hi`). At `δ = 0`: `[0, s²/4]`, the bound of `docs/theory.md` §4.3; for
    /// `δ² ≤ s²/2` the range starts at 0 (a peak without label noise); for `s²/2 < δ² ≤ s²`
    /// a peak exists only with enough label noise.
    pub fn peak_sigma2_range(&self) -> Option<(f64, f64)> {
        let s = self.mode.s;
        let d2 = self.delta * self.delta;
        if d2 > s * s {
            return None;
        }
        let h = |x: f64| (16.0 * x - 12.0 * s) * x * x + s * d2;
        let sigma2 = |x: f64| 12.0 * x * (s - x) - 2.0 * s * s - d2 / 2.0;
        let x1 = roots::bisect(h, 0.0, s / 2.0);
        let x2 = roots::bisect(h, s / 2.0, 0.75 * s);
        let (a, b) = (sigma2(x1), sigma2(x2));
        let (lo, hi) = (a.min(b).max(0.0), a.max(b));
        (hi >= 0.0).then_some((lo, hi))
    }

    /// Gradient-flow time from `w0` to the diffusion peak; `None` without a peak or when the
    /// flow from `w0` does not reach it.
    pub fn peak_time(&self, w0: f64) -> Result<Option<f64>> {
        self.check_initial(w0)?;
        Ok(self.diffusion_peak().and_then(|w_peak| self.gf_time(w0, w_peak)))
    }

    /// The exact zero-flux stationary density of the `w`-SDE at fixed `δ` (needs `σ > 0`;
    /// `docs/theory.md` §7.1.5, tabulated as in §5.6).
    ///
    /// With `2b/D = (2B/η)(s − w)/(S q) + 2w/S²` and `∫ 2w/S² dw = ¼ ln(4w² + δ²)`:
    ///
    /// ```text
    /// p(w) ∝ (4w² + δ²)^{−3/4} q(w)^{−1} exp( (2B/η) ∫_s^w (s − u) / (S(u) q(u)) du ),
    /// ```
    ///
    /// on the whole line when `δ ≠ 0`: the integrand decays like `1/u²`, so the tails fall
    /// like `|w|^{−7/2}` and the law is normalisable with a finite variance for every `σ > 0`.
    /// At `δ = 0` it is the balanced `L = 2` density on `w > 0` (same grid as
    /// [`Mode::stationary_density`]). For `δ ≠ 0` the grid is `w = s + h sinh ξ`,
    /// `h² =` [`Self::ou_variance`]. Fails like the balanced density when the tails do not
    /// decay within the grid, and when mass sits near `w = 0`, where `S` changes over `|δ|`,
    /// and the grid is too coarse there to resolve it (then lower `spacing`).
    pub fn stationary_density(&self, options: StationaryOptions) -> Result<StationaryDensity> {
        let m = self.mode;
        if m.sigma == 0.0 {
            return Err(TheoryError::invalid(
                "sigma",
                "must be > 0 for a stationary density (at σ = 0 the law is the Dirac mass at s)",
                m.sigma,
            ));
        }
        let s = m.s;
        let d2 = self.delta * self.delta;
        let h = self.ou_variance().sqrt();
        let ln_prefactor = |w: f64| -0.75 * (4.0 * w * w + d2).ln() - m.q(w).ln();
        let integrand = |u: f64| (s - u) / (self.layer_norm(u) * m.q(u));
        let kappa = 2.0 * f64::from(m.batch) / m.lr;
        let density = if self.delta == 0.0 {
            let ratio = h / s;
            ZeroFlux {
                map: |xi: f64| {
                    let w = s * (ratio * xi.sinh()).exp();
                    (w, w * ratio * xi.cosh())
                },
                ln_prefactor,
                integrand,
                kappa,
                xi_limit: (69.0 / ratio).asinh(),
                boltzmann: self.boltzmann(),
            }
            .tabulate(options)?
        } else {
            let density = ZeroFlux {
                map: |xi: f64| (s + h * xi.sinh(), h * xi.cosh()),
                ln_prefactor,
                integrand,
                kappa,
                xi_limit: (1e30 * s.max(h) / h).asinh(),
                boltzmann: self.boltzmann(),
            }
            .tabulate(options)?;
            // Grid step near w = 0 (dw/dξ = sqrt(h² + (w − s)²) there) against the scale |δ|
            // on which S varies; only matters when the law has mass there (measured over a
            // few grid steps, since a feature narrower than a step escapes the grid).
            let step_at_zero = options.spacing * (h * h + s * s).sqrt();
            let window = (2.0 * self.delta.abs()).max(3.0 * step_at_zero);
            let near_zero = density.cdf_at(window) - density.cdf_at(-window);
            if near_zero > 1e-9 && step_at_zero > self.delta.abs() / 8.0 {
                return Err(TheoryError::Numerical {
                    what: "stationary density",
                    reason: format!(
                        "mass {near_zero:.1e} lies within {window:.3e} of w = 0, where S = sqrt(4w² + δ²) changes over \
                         |δ| = {:.3e}, finer than the grid's step {step_at_zero:.3e} there; lower spacing below {:.3e}",
                        self.delta.abs(),
                        options.spacing * self.delta.abs() / (8.0 * step_at_zero)
                    ),
                });
            }
            density
        };
        Ok(density)
    }

    /// Runs an ensemble of `params.paths` paths from `w0` under `dynamics`, recording the
    /// statistics of `w` and `δ` on the grid. Path `p` uses the random stream of path `p` of
    /// [`Mode::ensemble`], so at `δ = 0` the two-layer chain reproduces the balanced chain
    /// bit for bit.
    pub fn ensemble(
        &self,
        w0: f64,
        dynamics: UnbalancedDynamics,
        params: &EnsembleParams,
    ) -> Result<UnbalancedEnsemble> {
        self.check_initial(w0)?;
        if params.paths == 0 {
            return Err(TheoryError::invalid("paths", "must be at least 1", 0));
        }
        let dt = match dynamics {
            UnbalancedDynamics::TwoLayerChain => self.mode.lr,
            UnbalancedDynamics::Sde { dt } => check::positive("dt", dt)?,
        };
        let m = self.mode;
        let chi2 = ChiSquared::new(f64::from(m.batch)).map_err(|e| TheoryError::Numerical {
            what: "chain",
            reason: format!("χ² law with B = {} degrees of freedom: {e}", m.batch),
        })?;
        let steps = params.grid.steps(dt);
        let p = params.paths;
        let (a1_0, a2_0) = self.layers(w0);
        let inv_batch = 1.0 / f64::from(m.batch);
        let sqrt_dt = dt.sqrt();
        let reflect = self.delta == 0.0;
        let outs: Vec<(BlockOut, BlockOut)> = (0..p.div_ceil(BLOCK))
            .into_par_iter()
            .map(|b| {
                let first = b * BLOCK;
                let n = BLOCK.min(p - first);
                let mut w_values = vec![0.0; steps.len() * n];
                let mut d_values = vec![0.0; steps.len() * n];
                for i in 0..n {
                    let mut rng = path_rng(params.seed, params.stream_offset + (first + i) as u64);
                    let (mut a1, mut a2) = (a1_0, a2_0);
                    let mut w = w0;
                    let mut current = 0u64;
                    for (ti, &target) in steps.iter().enumerate() {
                        match dynamics {
                            UnbalancedDynamics::TwoLayerChain => {
                                while current < target {
                                    let q: f64 = chi2.sample(&mut rng);
                                    let xi: f64 = StandardNormal.sample(&mut rng);
                                    let g = ((a1 * a2 - m.s) * q - m.sigma * q.sqrt() * xi) * inv_batch;
                                    (a1, a2) = (a1 - m.lr * a2 * g, a2 - m.lr * a1 * g);
                                    current += 1;
                                }
                                w_values[ti * n + i] = a1 * a2;
                                d_values[ti * n + i] = a2 * a2 - a1 * a1;
                            }
                            UnbalancedDynamics::Sde { .. } => {
                                while current < target {
                                    let z: f64 = StandardNormal.sample(&mut rng);
                                    let next = w + self.drift(w) * dt + self.noise(w) * (sqrt_dt * z);
                                    w = if reflect { next.abs() } else { next };
                                    current += 1;
                                }
                                w_values[ti * n + i] = w;
                                d_values[ti * n + i] = self.delta;
                            }
                        }
                    }
                }
                (BlockOut { values: w_values, paths: n }, BlockOut { values: d_values, paths: n })
            })
            .collect();
        let (w_outs, d_outs): (Vec<BlockOut>, Vec<BlockOut>) = outs.into_iter().unzip();
        let run = Run { w0, steps: &steps, params, stop: &std::sync::atomic::AtomicBool::new(false) };
        let times: Vec<f64> = steps.iter().map(|&k| k as f64 * dt).collect();
        let finish = |stats: EnsembleStats| EnsembleStats { times: times.clone(), steps: steps.clone(), ..stats };
        Ok(UnbalancedEnsemble { w: finish(run.reduce(&w_outs)), delta: finish(run.reduce(&d_outs)) })
    }
}
