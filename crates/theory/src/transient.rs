//! The transient mean to first order in `η` (`docs/theory.md` §7.2.6): how far the mean of the
//! per-mode SDE (and of the exact chain) lies from gradient flow during learning, split into the
//! part the Itô term causes and the parts it does not.
//!
//! Writing `E w(t) = w_GF(t) + δ(t)` with `δ = O(η)`, the SDE's moments give, to first order,
//!
//! ```text
//! ẇ_GF = v(w_GF),      V̇ = 2 v′(w_GF) V + D(w_GF),      V(0) = 0,
//! δ̇ = v′(w_GF) δ + ½ v″(w_GF) V + I(w_GF) [+ S(w_GF)],   δ(0) = 0,
//! ```
//!
//! with `v(w) = L w^{2−2/L} (s − w)` the flow's velocity, `D` the diffusion, `I(w) =
//! (η/2B) L(L−1) w^{3−4/L} q(w)` the Itô term and `V` the linear-noise variance. The equation for
//! `δ` is linear, so `δ` is the sum of three parts, each driven by one source: the *curvature*
//! part (`½ v″ V`: the flow's nonlinearity acting on the spread), the *Itô* part (`I`), and, for
//! the exact chain and the network only, the *step* part (`S`: the deterministic error of a
//! gradient step of size `η`, from the modified equation `ȧ = f − (η/2) f′ f` of the per-layer map
//! `a ← a + η f(a)`, `f(a) = a^{L−1}(s − a^L)`, carried to `w = a^L`:
//! `S(w) = −(η/2) L a^{L−1} f′(a) f(a)`). The SDE without its Itô term has departure
//! `curvature`; the SDE `curvature + ito`; the chain `curvature + ito + step`.

use crate::check::positive;
use crate::sde::pow;
use crate::{Mode, Result, TimeGrid};

/// The first-order departure of the mean from gradient flow at one time, by source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeanDeparture {
    /// Time `t`.
    pub t: f64,
    /// Gradient flow `w_GF(t)` (integrated with the rest, not the closed form).
    pub w_gf: f64,
    /// Linear-noise variance `V(t)` of `w`.
    pub variance: f64,
    /// Part of `E w − w_GF` driven by `½ v″ V` (present with or without the Itô term).
    pub curvature: f64,
    /// Part driven by the Itô term `I(w)` (0 at `L = 1`).
    pub ito: f64,
    /// Part driven by the gradient step's own error `S(w)` (the chain and the network only).
    pub step: f64,
}

impl MeanDeparture {
    /// `E w − w_GF` of the full SDE: `curvature + ito`.
    pub fn sde(&self) -> f64 {
        self.curvature + self.ito
    }

    /// `E w − w_GF` of the SDE with its Itô term switched off: `curvature`.
    pub fn sde_without_ito(&self) -> f64 {
        self.curvature
    }

    /// `E w − w_GF` of the exact chain (and the network on the aligned form):
    /// `curvature + ito + step`.
    pub fn chain(&self) -> f64 {
        self.curvature + self.ito + self.step
    }
}

impl Mode {
    /// The derivatives `(v′(w), v″(w))` of the flow's velocity `v(w) = L (s w^p − w^{p+1})`,
    /// `p = 2 − 2/L`: `v′ = L (s p w^{p−1} − (p+1) w^p)`, `v″ = L (s p (p−1) w^{p−2} − (p+1) p w^{p−1})`.
    pub fn gf_velocity_derivatives(&self, w: f64) -> (f64, f64) {
        let l = self.l();
        let p = 2.0 - 2.0 / l;
        let s = self.s();
        // Terms with a zero coefficient are skipped so that `0 · w^{negative}` never appears.
        let term = |c: f64, e: f64| if c == 0.0 { 0.0 } else { c * pow(w, e) };
        let d1 = l * (term(s * p, p - 1.0) - term(p + 1.0, p));
        let d2 = l * (term(s * p * (p - 1.0), p - 2.0) - term((p + 1.0) * p, p - 1.0));
        (d1, d2)
    }

    /// The Itô term of the end-to-end drift, `I(w) = (η/2B) L(L−1) w^{3−4/L} q(w)` (§3.5; 0 at `L = 1`).
    pub fn ito_drift(&self, w: f64) -> f64 {
        let l = self.l();
        if self.depth() == 1 {
            0.0
        } else {
            self.noise_scale() / 2.0 * l * (l - 1.0) * pow(w, 3.0 - 4.0 / l) * self.q(w)
        }
    }

    /// The first-order drift error of a gradient step of size `η`, carried to `w`:
    /// `S(w) = −(η/2) L a^{L−1} f′(a) f(a)` with `a = w^{1/L}`, `f(a) = a^{L−1}(s − a^L)`,
    /// `f′(a) = (L−1) a^{L−2}(s − a^L) − L a^{2L−2}` (module documentation).
    pub fn step_drift(&self, w: f64) -> f64 {
        let n = self.depth() as i32;
        let l = self.l();
        let a = self.a_from_w(w);
        let f = a.powi(n - 1) * (self.s() - w);
        let df = if n == 1 { 0.0 } else { (l - 1.0) * a.powi(n - 2) * (self.s() - w) } - l * a.powi(2 * n - 2);
        -self.lr() / 2.0 * l * a.powi(n - 1) * df * f
    }

    /// The first-order departure of the mean from gradient flow (module documentation), from
    /// `w0` at the times of `grid`, by classical Runge–Kutta with steps of at most `dt` (each
    /// interval of the grid is cut into whole steps, so the times are hit exactly).
    ///
    /// # Errors
    /// `w0` not a valid start for this mode (§3.1), or `dt` not positive and finite.
    pub fn mean_departure(&self, w0: f64, grid: &TimeGrid, dt: f64) -> Result<Vec<MeanDeparture>> {
        self.check_initial(w0)?;
        positive("dt", dt)?;
        // State: (w_GF, V, curvature, ito, step).
        let rhs = |y: [f64; 5]| -> [f64; 5] {
            let w = y[0];
            let (d1, d2) = self.gf_velocity_derivatives(w);
            [
                self.gf_velocity(w),
                2.0 * d1 * y[1] + self.diffusion(crate::Coordinate::EndToEnd, w),
                d1 * y[2] + 0.5 * d2 * y[1],
                d1 * y[3] + self.ito_drift(w),
                d1 * y[4] + self.step_drift(w),
            ]
        };
        let axpy = |y: [f64; 5], h: f64, k: [f64; 5]| std::array::from_fn(|i| y[i] + h * k[i]);
        let mut y = [w0, 0.0, 0.0, 0.0, 0.0];
        let mut t = 0.0;
        let mut out = Vec::with_capacity(grid.times().len());
        for &target in grid.times() {
            let span = target - t;
            if span > 0.0 {
                let n = (span / dt).ceil().max(1.0) as usize;
                let h = span / n as f64;
                for _ in 0..n {
                    let k1 = rhs(y);
                    let k2 = rhs(axpy(y, h / 2.0, k1));
                    let k3 = rhs(axpy(y, h / 2.0, k2));
                    let k4 = rhs(axpy(y, h, k3));
                    y = std::array::from_fn(|i| y[i] + h / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]));
                }
                t = target;
            }
            out.push(MeanDeparture { t: target, w_gf: y[0], variance: y[1], curvature: y[2], ito: y[3], step: y[4] });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Dynamics, EnsembleParams, ModeParams, Scheme};

    fn mode(depth: u32, lr: f64) -> Mode {
        ModeParams { depth, s: 2.0, sigma: 0.5, lr, batch: 4 }.check().unwrap()
    }

    /// At `L = 1` the flow is linear: no curvature part, no Itô term, and the step part is the
    /// closed form `(η/2)(s − w0) t e^{−t}` (from `(1 − η)^{t/η} = e^{−t}(1 − ηt/2 + O(η²))`).
    #[test]
    fn depth_one_has_no_ito_part_and_the_closed_form_step_part() {
        let m = mode(1, 0.01);
        let grid = TimeGrid::linear(8.0, 40).unwrap();
        for d in m.mean_departure(0.1, &grid, 1e-3).unwrap() {
            assert_eq!(d.ito, 0.0);
            assert!(d.curvature.abs() < 1e-15, "curvature {} at t = {}", d.curvature, d.t);
            let closed = 0.01 / 2.0 * (2.0 - 0.1) * d.t * (-d.t).exp();
            assert!((d.step - closed).abs() < 1e-10, "step {} against {closed} at t = {}", d.step, d.t);
            assert!((d.w_gf - m.gf_trajectory(0.1, d.t).unwrap()).abs() < 1e-10);
        }
    }

    /// The largest `|ito|` over the transient of the presets' starts (`a0` = 0.3, 0.5, 0.6 at
    /// `L` = 2, 3, 4, `s = 2`, `η = 0.01`, `B = 4`, `σ = 0.5`): 0 at `L = 1`, and growing with `L`
    /// (0.0066, 0.0123, 0.0190). Against the curvature part, of opposite sign, it shrinks a little
    /// (0.47, 0.41, 0.38 of it): the spread's effect grows with `L` faster still.
    #[test]
    fn the_ito_part_vanishes_at_depth_one_and_grows_with_depth() {
        let grid = TimeGrid::linear(10.0, 200).unwrap();
        let peak = |depth: u32, a0: f64| {
            let m = mode(depth, 0.01);
            let d = m.mean_departure(m.w_from_a(a0), &grid, 1e-3).unwrap();
            let ito = d.iter().map(|x| x.ito.abs()).fold(0.0, f64::max);
            let curv = d.iter().map(|x| x.curvature.abs()).fold(0.0, f64::max);
            (ito, curv)
        };
        assert_eq!(peak(1, 0.3).0, 0.0);
        let (i2, c2) = peak(2, 0.3);
        let (i3, c3) = peak(3, 0.5);
        let (i4, c4) = peak(4, 0.6);
        assert!(i2 > 0.0 && i3 > 1.5 * i2 && i4 > 1.4 * i3, "ito parts {i2} {i3} {i4}");
        assert!(c2 > i2 && c3 > i3 && c4 > i4, "curvature parts {c2} {c3} {c4}");
    }

    /// Simulation: at `L = 2, 3, 4` the mean of the SDE (Euler–Maruyama, `dt = η/10`, 16000 paths)
    /// and of the exact chain departs from gradient flow as `curvature + ito` and
    /// `curvature + ito + step` predict, to three standard errors plus 10% of the departure
    /// (the `O(η²)` remainder), at the time of the largest Itô part; there the Itô
    /// part alone is many standard errors, so the SDE without it is rejected.
    #[test]
    fn the_sde_and_chain_means_depart_from_gradient_flow_as_predicted() {
        for (depth, a0) in [(2, 0.3), (3, 0.5), (4, 0.6)] {
            let m = mode(depth, 0.01);
            let w0 = m.w_from_a(a0);
            // Multiples of 0.1, whole steps of the chain (η) and of the SDE (dt).
            let grid = TimeGrid::from_times((0..=60).map(|i| f64::from(i) / 10.0).collect()).unwrap();
            let pred = m.mean_departure(w0, &grid, 1e-3).unwrap();
            let params = EnsembleParams::new(16000, 7, grid.clone());
            let sde = m
                .ensemble(
                    w0,
                    Dynamics::Sde { scheme: Scheme::EulerMaruyama, coordinate: crate::Coordinate::EndToEnd, dt: 1e-3 },
                    &params,
                )
                .unwrap();
            let chain = m.ensemble(w0, Dynamics::Chain, &params).unwrap();
            let i = (0..pred.len()).max_by(|&a, &b| pred[a].ito.abs().total_cmp(&pred[b].ito.abs())).unwrap();
            let p = pred[i];
            assert!((sde.times[i] - p.t).abs() < 1e-9 && (chain.times[i] - p.t).abs() < 1e-9);
            let gf = m.gf_trajectory(w0, p.t).unwrap();
            let se = |v: f64| (v / 16000.0).sqrt();
            let (sde_dep, chain_dep) = (sde.mean[i] - gf, chain.mean[i] - gf);
            eprintln!(
                "L={depth} t={} sde {sde_dep} ± {} pred {} (no ito {}); chain {chain_dep} ± {} pred {}",
                p.t,
                se(sde.variance[i]),
                p.sde(),
                p.sde_without_ito(),
                se(chain.variance[i]),
                p.chain()
            );
            assert!((sde_dep - p.sde()).abs() < 3.0 * se(sde.variance[i]) + 0.1 * p.sde().abs());
            assert!((chain_dep - p.chain()).abs() < 3.0 * se(chain.variance[i]) + 0.1 * p.chain().abs());
            assert!((sde_dep - p.sde_without_ito()).abs() > 5.0 * se(sde.variance[i]));
        }
    }
}
