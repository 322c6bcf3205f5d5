//! The zero-flux stationary density of any one-dimensional Itô SDE (`docs/theory.md` §5.1),
//! tabulated on a grid that resolves both its bulk and its tails, for a given prefactor, exponent
//! integrand and grid map (`docs/theory.md` §5.6; used by [`crate::Mode::stationary_density`]
//! and the unbalanced modes of [`crate::unbalanced`]).
//!
//! A zero-flux density of `dX = b dt + sqrt(D) dB` is `p(x) ∝ D(x)^{−1} exp(∫^x 2b/D)`; callers
//! split it as `p(x) ∝ exp(ln_prefactor(x) + κ ∫_{x(0)}^x integrand)`, putting every part they
//! can integrate in closed form into the prefactor. The grid is uniform in a variable `ξ`,
//! `x = map(ξ)`, and extends from `ξ = 0` on both sides until the density (in `ξ`) has fallen
//! by `e^{−cutoff}` below its maximum; the exponent is accumulated cell by cell with adaptive
//! Gauss–Legendre; normalisation, moments and the CDF use the trapezoid rule in `ξ`.

use crate::stationary::{Boltzmann, StationaryDensity, StationaryOptions};
use crate::{Result, TheoryError, quad};

/// What defines one zero-flux density.
pub(crate) struct ZeroFlux<Map, Pre, Int> {
    /// `ξ ↦ (x, dx/dξ)`, increasing; `ξ = 0` should sit near the density's maximum.
    pub(crate) map: Map,
    /// Log of the density's prefactor at `x`.
    pub(crate) ln_prefactor: Pre,
    /// The exponent's integrand at `x`.
    pub(crate) integrand: Int,
    /// The exponent's factor `κ`.
    pub(crate) kappa: f64,
    /// Largest `|ξ|` the grid may reach before the density is declared not normalisable.
    pub(crate) xi_limit: f64,
    /// The normal approximation the density's distances refer to.
    pub(crate) boltzmann: Boltzmann,
}

/// Checks the grid options: `spacing ∈ (0, 0.5]`, `cutoff ≥ 10` finite.
pub(crate) fn check_options(options: &StationaryOptions) -> Result<()> {
    if !(options.spacing > 0.0 && options.spacing <= 0.5) {
        return Err(TheoryError::invalid("spacing", "must lie in (0, 0.5]", options.spacing));
    }
    if !(options.cutoff.is_finite() && options.cutoff >= 10.0) {
        return Err(TheoryError::invalid("cutoff", "must be finite and at least 10", options.cutoff));
    }
    Ok(())
}

impl<Map, Pre, Int> ZeroFlux<Map, Pre, Int>
where
    Map: Fn(f64) -> (f64, f64),
    Pre: Fn(f64) -> f64,
    Int: Fn(f64) -> f64,
{
    /// Tabulates and normalises the density (see the module documentation).
    pub(crate) fn tabulate(&self, options: StationaryOptions) -> Result<StationaryDensity> {
        check_options(&options)?;
        let dxi = options.spacing;
        let sweep = |direction: f64| -> Result<Vec<(f64, f64)>> {
            let mut out = Vec::new();
            let mut exponent = 0.0;
            let mut best = f64::NEG_INFINITY;
            let mut k = 0usize;
            loop {
                let xi = direction * dxi * k as f64;
                let (x, jac) = (self.map)(xi);
                if k > 0 {
                    let lo = direction * dxi * (k - 1) as f64;
                    let cell = quad::integrate(
                        |z| {
                            let (u, du) = (self.map)(z);
                            (self.integrand)(u) * du
                        },
                        lo,
                        xi,
                        1e-12,
                    );
                    exponent += self.kappa * cell;
                }
                // Log of the density in ξ: ln p(x) + ln(dx/dξ).
                let ln_q = (self.ln_prefactor)(x) + exponent + jac.ln();
                if !ln_q.is_finite() && k == 0 {
                    return Err(TheoryError::Numerical {
                        what: "stationary density",
                        reason: format!("log-density not finite at w = {x}"),
                    });
                }
                best = best.max(ln_q);
                out.push((xi, ln_q));
                if ln_q < best - options.cutoff || ln_q == f64::NEG_INFINITY {
                    return Ok(out);
                }
                k += 1;
                if dxi * k as f64 > self.xi_limit {
                    let side = if direction < 0.0 { "below" } else { "above" };
                    return Err(TheoryError::Numerical {
                        what: "stationary density",
                        reason: format!(
                            "not normalisable: its tail {side} s does not decay within the grid (w = {x:e}); \
                             the noise η/B is too strong for this mode"
                        ),
                    });
                }
            }
        };
        let lower = sweep(-1.0)?;
        let upper = sweep(1.0)?;
        let mut points: Vec<(f64, f64)> = lower.into_iter().rev().collect();
        points.extend(upper.into_iter().skip(1));
        let top = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
        let n = points.len();
        let mut x = Vec::with_capacity(n);
        let mut weights = Vec::with_capacity(n);
        let mut in_xi = Vec::with_capacity(n);
        let mut unnormalised = Vec::with_capacity(n);
        for (i, &(xi, ln_q)) in points.iter().enumerate() {
            let (xv, jacobian) = (self.map)(xi);
            let end = if i == 0 || i + 1 == n { 0.5 } else { 1.0 };
            x.push(xv);
            weights.push(end * dxi * jacobian);
            in_xi.push((ln_q - top).exp());
            unnormalised.push(in_xi[i] / jacobian);
        }
        let z: f64 = weights.iter().zip(&unnormalised).map(|(a, p)| a * p).sum();
        let density: Vec<f64> = unnormalised.iter().map(|p| p / z).collect();
        let mut cdf = Vec::with_capacity(n);
        let mut acc = 0.0;
        cdf.push(0.0);
        for i in 1..n {
            acc += 0.5 * (in_xi[i - 1] + in_xi[i]) * dxi / z;
            cdf.push(acc.min(1.0));
        }
        Ok(StationaryDensity::from_table(x, density, cdf, weights, self.boltzmann))
    }
}
