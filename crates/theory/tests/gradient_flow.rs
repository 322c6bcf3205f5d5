//! Gradient flow: closed forms and quadrature against an independent high-accuracy ODE
//! integration (DOP853 from the `ode_solvers` crate, in `log w` for relative accuracy).

use modewise_theory::{Mode, ModeParams};
use ode_solvers::{Dop853, SVector, System};

/// `d(ln w)/dt = L w^{1−2/L} (s − w)` for `L ≥ 2`; `dw/dt = s − w` for `L = 1`.
struct Flow {
    depth: u32,
    s: f64,
}

impl System<f64, SVector<f64, 1>> for Flow {
    fn system(&self, _t: f64, y: &SVector<f64, 1>, dy: &mut SVector<f64, 1>) {
        let l = f64::from(self.depth);
        dy[0] = if self.depth == 1 {
            self.s - y[0]
        } else {
            let w = y[0].exp();
            l * w.powf(1.0 - 2.0 / l) * (self.s - w)
        };
    }
}

fn ode(depth: u32, s: f64, w0: f64, t: f64) -> f64 {
    if t == 0.0 {
        return w0;
    }
    let y0 = SVector::<f64, 1>::new(if depth == 1 { w0 } else { w0.ln() });
    // dx = 0: keep every accepted step (the dense output at the end point is less accurate).
    let mut solver = Dop853::new(Flow { depth, s }, 0.0, t, 0.0, y0, 1e-13, 1e-15);
    solver.integrate().expect("ODE integration");
    let y = solver.results().get().1.last().expect("output")[0];
    if depth == 1 { y } else { y.exp() }
}

fn mode(depth: u32, s: f64) -> Mode {
    ModeParams { depth, s, ..ModeParams::default() }.check().unwrap()
}

#[test]
fn trajectories_match_ode_for_depths_one_to_four() {
    for depth in 1..=4 {
        for s in [1.0, 2.5] {
            let starts: Vec<f64> = if depth == 1 { vec![-0.5, 0.3 * s, 1.7 * s] } else { vec![1e-3, 0.3 * s, 1.7 * s] };
            for w0 in starts {
                for t in [0.0, 0.05, 0.7, 3.0, 12.0] {
                    let m = mode(depth, s);
                    let w = m.gf_trajectory(w0, t).unwrap();
                    let reference = ode(depth, s, w0, t);
                    let rel = (w - reference).abs() / reference.abs();
                    assert!(rel < 1e-8, "L={depth} s={s} w0={w0} t={t}: {w} vs ODE {reference} (rel {rel:e})");
                }
            }
        }
    }
}

#[test]
fn times_invert_trajectories() {
    for depth in 1..=5 {
        let m = mode(depth, 1.5);
        let w0 = if depth == 1 { 0.2 } else { 1e-2 };
        for t in [0.1, 1.0, 4.0] {
            let w = ode(depth, 1.5, w0, t);
            if (1.5 - w).abs() < 1e-6 {
                continue;
            }
            let back = m.gf_time(w0, w).expect("reachable");
            assert!((back - t).abs() / t < 1e-8, "L={depth}: gf_time gives {back}, ODE time {t}");
        }
        // Unreachable targets.
        assert_eq!(m.gf_time(0.5, 2.0), None, "beyond s");
        assert_eq!(m.gf_time(0.5, 0.4), None, "behind the start");
        assert_eq!(m.gf_time(0.5, 0.5), Some(0.0));
    }
}

#[test]
fn learning_time_reaches_rho_s() {
    for depth in 1..=4 {
        let m = mode(depth, 2.0);
        let w0 = 1e-3;
        let t = m.t_learned(w0, 0.9).unwrap();
        let w = ode(depth, 2.0, w0, t);
        assert!((w - 1.8).abs() < 1e-8, "L={depth}: w(t_learned) = {w}");
        assert_eq!(m.t_learned(1.9, 0.9).unwrap(), 0.0, "already learned");
    }
    let err = mode(2, 1.0).t_learned(0.1, 1.0).unwrap_err();
    assert_eq!(err.field(), Some("rho"));
}

#[test]
fn plateau_time_is_the_small_init_asymptote() {
    // The time to reach s/2 from w0 → 0 is dominated by the saddle plateau.
    for (depth, w0) in [(2, 1e-12), (3, 1e-12), (4, 1e-16)] {
        let m = mode(depth, 1.0);
        let plateau = m.plateau_time(w0).unwrap().unwrap();
        let mut lo = 0.0;
        let mut hi = 10.0 * plateau;
        for _ in 0..100 {
            let mid = 0.5 * (lo + hi);
            if ode(depth, 1.0, w0, mid) < 0.5 { lo = mid } else { hi = mid }
        }
        let rel = (lo - plateau).abs() / lo;
        assert!(rel < 0.05, "L={depth}: plateau {plateau} vs ODE time to s/2 {lo}");
    }
    assert_eq!(mode(1, 1.0).plateau_time(0.1).unwrap(), None);
}

#[test]
fn bad_inputs_name_their_field() {
    let m = mode(3, 1.0);
    assert_eq!(m.gf_trajectory(0.0, 1.0).unwrap_err().field(), Some("w0"));
    assert_eq!(m.gf_trajectory(0.1, -1.0).unwrap_err().field(), Some("t"));
    assert_eq!(m.gf_trajectory(0.1, f64::NAN).unwrap_err().field(), Some("t"));
    // Depth 1 allows any finite start.
    assert!(mode(1, 1.0).gf_trajectory(-3.0, 1.0).is_ok());
}
