//! Stationary laws of one mode (`docs/theory.md` §5): the Dirac mass at `s` without label noise,
//! the exact zero-flux density with label noise, its Boltzmann approximation, and distances.
//!
//! The exact density `p(w) ∝ w^{−3+3/L} q(w)^{−1} exp(κ ∫_s^w (s − u)/(u^{2−2/L} q(u)) du)`,
//! `κ = 2B/(ηL)`, is computed on a grid uniform in a variable `ξ` that resolves both its
//! Boltzmann bulk of width `√T` around `s` and its power-law tails:
//! `w = s · exp((√T/s) sinh ξ)` for `L ≥ 2` (so `w > 0`), `w = s + √T sinh ξ` at `L = 1`
//! (where `w` is any real). The grid extends until the density has fallen by `e^{−cutoff}`
//! from its maximum; the integral in `κ ∫` is accumulated cell by cell with adaptive
//! Gauss–Legendre; normalisation, moments and the CDF use the trapezoid rule in `ξ`, which is
//! spectrally accurate for such smooth, fast-decaying integrands.

use serde::Serialize;

use crate::zero_flux::ZeroFlux;
use crate::{Mode, Result, TheoryError, sde::pow};

/// Options of the exact stationary density's grid.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StationaryOptions {
    /// Grid spacing in `ξ` (default 0.01: about 100 points per `√T` in the bulk).
    pub spacing: f64,
    /// How far (in log-density) the grid extends below the maximum (default 50).
    pub cutoff: f64,
}

impl Default for StationaryOptions {
    fn default() -> Self {
        Self { spacing: 0.01, cutoff: 50.0 }
    }
}

/// The Boltzmann approximation of the stationary law: the normal law `N(s, T)`,
/// `p ∝ exp(−½ (s − w)² / T)`, `T = L η σ² s^{2−2/L} / (2B)` (`docs/theory.md` §5.4).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Boltzmann {
    /// Centre `s`.
    pub center: f64,
    /// Temperature `T` (the variance).
    pub temperature: f64,
}

impl Boltzmann {
    /// Density at `w`.
    pub fn pdf(&self, w: f64) -> f64 {
        self.ln_pdf(w).exp()
    }
    /// Log-density at `w`.
    pub fn ln_pdf(&self, w: f64) -> f64 {
        let d = w - self.center;
        -0.5 * d * d / self.temperature - 0.5 * (2.0 * std::f64::consts::PI * self.temperature).ln()
    }
    /// Cumulative distribution at `w`.
    pub fn cdf(&self, w: f64) -> f64 {
        0.5 * libm::erfc(-(w - self.center) / (2.0 * self.temperature).sqrt())
    }
}

/// Distances from the exact stationary density `p` to its Boltzmann approximation `p_B`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Distances {
    /// Kullback–Leibler divergence `∫ p ln(p / p_B)`.
    pub kl: f64,
    /// Total variation `½ ∫ |p − p_B|`.
    pub tv: f64,
    /// Kolmogorov–Smirnov distance `sup |F − F_B|`.
    pub ks: f64,
}

/// The stationary law of a mode's end-to-end strength.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum StationaryLaw {
    /// `σ = 0`: the Dirac mass at the gradient-flow fixed point `w = s` (the zero-flux density
    /// behaves like `|s − w|^{−2−κ}` near `s` and cannot be normalised).
    Dirac {
        /// Where the mass sits (`s`).
        at: f64,
    },
    /// `σ > 0`: the exact zero-flux density.
    Density(StationaryDensity),
}

impl StationaryLaw {
    /// Mean of the law.
    pub fn mean(&self) -> f64 {
        match self {
            Self::Dirac { at } => *at,
            Self::Density(d) => d.mean(),
        }
    }
    /// Variance of the law.
    pub fn variance(&self) -> f64 {
        match self {
            Self::Dirac { .. } => 0.0,
            Self::Density(d) => d.variance(),
        }
    }
}

/// The exact stationary density of a mode with label noise, tabulated on a grid.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StationaryDensity {
    w: Vec<f64>,
    density: Vec<f64>,
    cdf: Vec<f64>,
    /// Trapezoid weights in `w` of the grid points: `∫ f p dw ≈ Σ weights_i f(w_i) p(w_i)`
    /// (the trapezoid rule in `ξ` times `dw/dξ`).
    weights: Vec<f64>,
    mean: f64,
    variance: f64,
    boltzmann: Boltzmann,
}

impl Mode {
    /// The Boltzmann approximation `N(s, T)` of the stationary law (`docs/theory.md` §5.4).
    pub fn boltzmann(&self) -> Boltzmann {
        Boltzmann { center: self.s, temperature: self.temperature() }
    }

    /// The stationary law (`docs/theory.md` §5): the Dirac mass at `s` when `σ = 0`, else the exact
    /// zero-flux density with default options.
    pub fn stationary_law(&self) -> Result<StationaryLaw> {
        if self.sigma == 0.0 {
            Ok(StationaryLaw::Dirac { at: self.s })
        } else {
            self.stationary_density(StationaryOptions::default()).map(StationaryLaw::Density)
        }
    }

    /// Log of the unnormalised stationary density's prefactor, `(−3+3/L) ln w − ln q(w)`.
    fn ln_prefactor(&self, w: f64) -> f64 {
        let l = self.l();
        let power = if self.depth == 1 { 0.0 } else { (-3.0 + 3.0 / l) * w.ln() };
        power - self.q(w).ln()
    }

    /// The integrand `(s − u)/(u^{2−2/L} q(u))` of the stationary density's exponent.
    fn exponent_integrand(&self, u: f64) -> f64 {
        (self.s - u) / (pow(u, 2.0 - 2.0 / self.l()) * self.q(u))
    }

    /// The exact zero-flux stationary density of the end-to-end SDE (`docs/theory.md` §5), normalised on
    /// its grid. Needs `σ > 0`. Fails when the density cannot be normalised on `w > 0`
    /// (for `L = 2` that happens when `B s / (η q(0)) ≤ ½`: the noise drives the mode into the
    /// saddle at 0) or when its tails reach beyond `10^{±30} s`.
    pub fn stationary_density(&self, options: StationaryOptions) -> Result<StationaryDensity> {
        if self.sigma == 0.0 {
            return Err(TheoryError::invalid(
                "sigma",
                "must be positive for a stationary density (at σ = 0 the law is the Dirac mass at s)",
                self.sigma,
            ));
        }
        let s = self.s;
        let h = self.temperature().sqrt();
        let deep = self.depth >= 2;
        // The grid variable ξ: w = s·exp((√T/s) sinh ξ) for L ≥ 2 (resolves the bulk near s and
        // decades of tail towards 0 and ∞), w = s + √T sinh ξ for L = 1.
        let ratio = h / s;
        let map = |xi: f64| -> (f64, f64) {
            if deep {
                let w = s * (ratio * xi.sinh()).exp();
                (w, w * ratio * xi.cosh())
            } else {
                (s + h * xi.sinh(), h * xi.cosh())
            }
        };
        ZeroFlux {
            map,
            ln_prefactor: |w| self.ln_prefactor(w),
            integrand: |w| self.exponent_integrand(w),
            kappa: 2.0 * f64::from(self.batch) / (self.lr * self.l()),
            // Largest |ξ|: w within 10^{±30} s (L ≥ 2) or s ± 10^{30} max(s, √T) (L = 1).
            xi_limit: if deep { (69.0 / ratio).asinh() } else { (1e30 * s.max(h) / h).asinh() },
            boltzmann: self.boltzmann(),
        }
        .tabulate(options)
    }
}

impl StationaryDensity {
    /// A density tabulated on an increasing grid `w` with its normalised values, CDF and
    /// quadrature weights (`∫ f p dw ≈ Σ weights_i f(w_i) p(w_i)`); mean and variance are
    /// computed here. `boltzmann` is the normal approximation the distances refer to.
    pub(crate) fn from_table(
        w: Vec<f64>,
        density: Vec<f64>,
        cdf: Vec<f64>,
        weights: Vec<f64>,
        boltzmann: Boltzmann,
    ) -> Self {
        let mut d = Self { w, density, cdf, weights, mean: 0.0, variance: 0.0, boltzmann };
        d.mean = d.expectation(|w| w);
        let mean = d.mean;
        d.variance = d.expectation(|w| (w - mean) * (w - mean));
        d
    }

    /// Grid of end-to-end values `w`, increasing.
    pub fn w(&self) -> &[f64] {
        &self.w
    }
    /// Normalised density at each grid point.
    pub fn density(&self) -> &[f64] {
        &self.density
    }
    /// Cumulative distribution at each grid point.
    pub fn cdf(&self) -> &[f64] {
        &self.cdf
    }
    /// Mean `∫ w p(w) dw`.
    pub fn mean(&self) -> f64 {
        self.mean
    }
    /// Variance `∫ (w − mean)² p(w) dw`.
    pub fn variance(&self) -> f64 {
        self.variance
    }
    /// The Boltzmann approximation of the same mode.
    pub fn boltzmann(&self) -> Boltzmann {
        self.boltzmann
    }
    /// `∫ f(w) p(w) dw` on the grid (trapezoid in `ξ`).
    pub fn expectation(&self, f: impl Fn(f64) -> f64) -> f64 {
        self.w.iter().zip(&self.density).zip(&self.weights).map(|((&w, &p), &a)| a * p * f(w)).sum()
    }
    /// Cumulative distribution at any `w` (linear interpolation between grid points; 0 and 1
    /// outside the grid).
    pub fn cdf_at(&self, w: f64) -> f64 {
        interpolate(&self.w, &self.cdf, w, 0.0, 1.0)
    }
    /// Density at any `w` (linear interpolation; 0 outside the grid).
    pub fn pdf_at(&self, w: f64) -> f64 {
        interpolate(&self.w, &self.density, w, 0.0, 0.0)
    }

    /// KL divergence, total variation and Kolmogorov–Smirnov distance to the Boltzmann law.
    /// The Boltzmann mass outside the grid counts fully towards the total variation.
    pub fn distances_to_boltzmann(&self) -> Distances {
        let b = self.boltzmann;
        let n = self.w.len();
        let (mut kl, mut tv_in, mut ks) = (0.0, 0.0, 0.0f64);
        for i in 0..n {
            let weight = self.weights[i];
            let p = self.density[i];
            if p > 0.0 {
                kl += weight * p * (p.ln() - b.ln_pdf(self.w[i]));
            }
            tv_in += weight * (p - b.pdf(self.w[i])).abs();
            ks = ks.max((self.cdf[i] - b.cdf(self.w[i])).abs());
        }
        let outside = b.cdf(self.w[0]) + (1.0 - b.cdf(self.w[n - 1]));
        Distances { kl: kl.max(0.0), tv: 0.5 * (tv_in + outside), ks }
    }

    /// Kolmogorov–Smirnov distance between samples and this density.
    pub fn ks_to_samples(&self, samples: &[f64]) -> f64 {
        ks_statistic(samples, |w| self.cdf_at(w))
    }
}

/// Kolmogorov–Smirnov statistic `sup_w |F_n(w) − F(w)|` of samples against a CDF. Under the
/// null hypothesis, `√n · D` exceeds 1.36 with probability 5% and 1.63 with probability 1%.
pub fn ks_statistic(samples: &[f64], cdf: impl Fn(f64) -> f64) -> f64 {
    let mut sorted: Vec<f64> = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len() as f64;
    let mut d = 0.0f64;
    for (i, &x) in sorted.iter().enumerate() {
        let f = cdf(x);
        d = d.max((f - i as f64 / n).abs()).max(((i + 1) as f64 / n - f).abs());
    }
    d
}

/// Linear interpolation of `ys` over increasing `xs`, with fixed values outside.
fn interpolate(xs: &[f64], ys: &[f64], x: f64, below: f64, above: f64) -> f64 {
    if x < xs[0] {
        return below;
    }
    if x > xs[xs.len() - 1] {
        return above;
    }
    let j = xs.partition_point(|&v| v <= x).clamp(1, xs.len() - 1);
    let (x0, x1) = (xs[j - 1], xs[j]);
    let t = if x1 > x0 { (x - x0) / (x1 - x0) } else { 0.0 };
    ys[j - 1] + t * (ys[j] - ys[j - 1])
}
