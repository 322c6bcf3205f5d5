//! Gradient flow of one mode (`docs/theory.md` §3–4, `η → 0`): `ẇ = L w^{2−2/L} (s − w)`.
//!
//! Closed forms at `L = 1` and `L = 2`; for `L ≥ 3` the time between two values is a
//! closed-form part plus the quadrature of a smooth rational function (the singularity at
//! `w = s` is split off analytically), and the trajectory inverts that time by safeguarded
//! Newton iteration. Both are accurate to about `1e-12` relative.

use crate::check::{non_negative, open_unit};
use crate::{Mode, Result, TheoryError, quad};

/// Default learning threshold `ρ` of [`Mode::t_learned`]: a mode is learned at `w = ρ s`.
pub const DEFAULT_RHO: f64 = 0.9;

impl Mode {
    /// Gradient-flow time to go from `w0` to `w1`, `t = ∫_{w0}^{w1} dw / (L w^{2−2/L} (s − w))`
    /// (`docs/theory.md` §4.5); `None` when the flow never reaches `w1` from `w0` (`w1` beyond `s`, behind
    /// `w0`, or `w0` at a fixed point). Values must be positive when `L ≥ 2`.
    ///
    /// `L = 1`: `t = ln((s − w0) / (s − w1))`; `L = 2`: `t = (1/2s) ln(w1 (s − w0) / (w0 (s − w1)))`.
    /// `L ≥ 3`, with `a = w^{1/L}`, `a_s = s^{1/L}` and the identity
    /// `1/(a^{L−1}(s − a^L)) = (1/s)[a^{1−L} + a/(s − a^L)]`:
    /// `t = (1/s)[ (a1^{2−L} − a0^{2−L})/(2−L) − (a_s^{2−L}/L) ln|(a_s − a1)/(a_s − a0)| + ∫ r ]`
    /// where `r(a) = a/(s − a^L) − a_s^{2−L}/(L (a_s − a))` is a smooth rational function.
    pub fn gf_time(&self, w0: f64, w1: f64) -> Option<f64> {
        let s = self.s;
        if w0 == w1 {
            return Some(0.0);
        }
        if !(w0.is_finite() && w1.is_finite()) || (self.depth >= 2 && (w0 <= 0.0 || w1 <= 0.0)) {
            return None;
        }
        let reachable = (w0 < w1 && w1 < s) || (s < w1 && w1 < w0);
        if !reachable {
            return None;
        }
        Some(match self.depth {
            1 => ((s - w0) / (s - w1)).ln(),
            2 => (w1 * (s - w0) / (w0 * (s - w1))).ln() / (2.0 * s),
            _ => self.gf_time_deep(w0, w1),
        })
    }

    /// `L ≥ 3` branch of [`Mode::gf_time`] (see there for the formula).
    fn gf_time_deep(&self, w0: f64, w1: f64) -> f64 {
        let s = self.s;
        let n = self.depth as i32;
        let l = self.l();
        let a_s = self.a_from_w(s);
        let (a0, a1) = (self.a_from_w(w0), self.a_from_w(w1));
        // S(a) = (s − a^L)/(a_s − a) = Σ_j a_s^{L−1−j} a^j > 0, free of cancellation; it gives
        // a_s − a = (s − w)/S(a) with the accuracy of s − w.
        let sum_s = |a: f64| -> f64 {
            let rho = a / a_s;
            let mut acc = 0.0;
            let mut p = 1.0;
            for _ in 0..n {
                acc += p;
                p *= rho;
            }
            a_s.powi(n - 1) * acc
        };
        // r(a) = N(ρ)/(L S(a)), N(ρ) = −1 + ρ Σ_{j=2}^{L−1} Σ_{i=0}^{j−2} ρ^i (exact algebra).
        let r = |a: f64| -> f64 {
            let rho = a / a_s;
            let mut inner = 0.0; // Σ_{i=0}^{j−2} ρ^i
            let mut p = 1.0;
            let mut outer = 0.0;
            for _ in 2..n {
                inner += p;
                p *= rho;
                outer += inner;
            }
            (-1.0 + rho * outer) / (l * sum_s(a))
        };
        let power = (a1.powi(2 - n) - a0.powi(2 - n)) / (2.0 - l);
        let log_part = ((s - w1).abs().ln() - sum_s(a1).ln()) - ((s - w0).abs().ln() - sum_s(a0).ln());
        let smooth = quad::integrate(r, a0, a1, 1e-14);
        (power - a_s.powi(2 - n) / l * log_part + smooth) / s
    }

    /// Gradient-flow trajectory `w(t)` from `w0` (`docs/theory.md` §3.6).
    ///
    /// `L = 1`: `w = s + (w0 − s) e^{−t}`; `L = 2`: `w = s / (1 + (s/w0 − 1) e^{−2st})`;
    /// `L ≥ 3`: the root of `gf_time(w0, w) = t`. `t` must be finite and `≥ 0`; `w0` must
    /// be valid for the depth ([`Mode::check_initial`]).
    pub fn gf_trajectory(&self, w0: f64, t: f64) -> Result<f64> {
        self.check_initial(w0)?;
        non_negative("t", t)?;
        let s = self.s;
        Ok(match self.depth {
            1 => s + (w0 - s) * (-t).exp(),
            2 => s / (1.0 + (s / w0 - 1.0) * (-2.0 * s * t).exp()),
            _ => self.invert_gf_time(w0, t),
        })
    }

    /// Solves `gf_time(w0, w) = t` for `L ≥ 3` by Newton's method (`dt/dw = 1/ẇ`) kept
    /// inside a shrinking bracket between `w0` and `s`.
    fn invert_gf_time(&self, w0: f64, t: f64) -> f64 {
        let s = self.s;
        if t == 0.0 || w0 == s {
            return w0;
        }
        let (mut lo, mut hi) = if w0 < s { (w0, s) } else { (s, w0) };
        // Time to a value: increasing in w below s, decreasing above; inside the bracket every
        // value is reachable, so the fallback never applies.
        let up = w0 < s;
        let time = |w: f64| self.gf_time(w0, w).unwrap_or(f64::INFINITY);
        // Start from the depth-1 (exponential) guess, at most half-way to s.
        let mut w = if up { w0 + (s - w0) * (1.0 - (-t).exp()).min(0.5) } else { s + (w0 - s) * 0.5 };
        for _ in 0..200 {
            let tw = time(w);
            // Keep the bracket around the root: time grows from w0 towards s.
            if tw > t {
                if up { hi = w } else { lo = w }
            } else if up {
                lo = w
            } else {
                hi = w
            }
            let v = self.gf_velocity(w);
            let mut next = w + (t - tw) * v;
            if !(next > lo && next < hi && next.is_finite()) {
                // Bisect, geometrically when the bracket spans decades (small starts).
                next = if lo > 0.0 && hi > 4.0 * lo { (lo * hi).sqrt() } else { 0.5 * (lo + hi) };
            }
            if (next - w).abs() <= 1e-15 * w.abs().max(f64::MIN_POSITIVE) || hi - lo <= 1e-15 * hi.abs() {
                return next;
            }
            w = next;
        }
        w
    }

    /// Learning time `t_learned(ρ)`: gradient-flow time from `w0` until `w = ρ s` (`docs/theory.md` §4.6);
    /// 0 when `w0 ≥ ρ s` already. `ρ` must lie in `(0, 1)` (default [`DEFAULT_RHO`]).
    pub fn t_learned(&self, w0: f64, rho: f64) -> Result<f64> {
        self.check_initial(w0)?;
        open_unit("rho", rho)?;
        let target = rho * self.s;
        if w0 >= target {
            return Ok(0.0);
        }
        self.gf_time(w0, target)
            .ok_or(TheoryError::Numerical { what: "t_learned", reason: "the flow does not reach ρ s".into() })
    }

    /// Small-initialisation plateau (saddle) length (`docs/theory.md` §4.7): `(1/2s) ln(s/w0)` at `L = 2`,
    /// `a0^{2−L} / ((L − 2) s)` with `a0 = w0^{1/L}` for `L > 2`; `None` at `L = 1`, which has
    /// no saddle (the flow leaves any start exponentially fast), and when `w0 ≥ s` (no saddle
    /// lies ahead).
    pub fn plateau_time(&self, w0: f64) -> Result<Option<f64>> {
        self.check_initial(w0)?;
        let s = self.s;
        Ok(match self.depth {
            _ if w0 >= s => None,
            1 => None,
            2 => Some((s / w0).ln() / (2.0 * s)),
            n => Some(self.a_from_w(w0).powi(2 - n as i32) / ((self.l() - 2.0) * s)),
        })
    }
}
