//! Unbalanced depth-2 modes (the conserved-δ theory): gradient flow against an RK4 integration
//! of the two-layer ODE, the balanced limit, the diffusion peak against a grid, the stationary
//! density against its zero-flux condition, the note's reference value and the exact two-layer
//! chain.

use modewise_theory::{
    Coordinate, Dynamics, EnsembleParams, Mode, ModeParams, StationaryOptions, TimeGrid, UnbalancedDynamics,
    UnbalancedMode,
};

fn mode(s: f64, sigma: f64, lr: f64, batch: u32) -> Mode {
    ModeParams { depth: 2, s, sigma, lr, batch }.check().unwrap()
}

/// `w(t)` of the two-layer gradient flow `ȧ₁ = a₂ (s − a₁a₂)`, `ȧ₂ = a₁ (s − a₁a₂)` by classical
/// RK4 with step `h`, and the final `δ`.
fn rk4(s: f64, a1: f64, a2: f64, t: f64, h: f64) -> (f64, f64) {
    let f = |a: [f64; 2]| {
        let r = s - a[0] * a[1];
        [a[1] * r, a[0] * r]
    };
    let n = (t / h).ceil() as usize;
    let h = t / n as f64;
    let mut a = [a1, a2];
    for _ in 0..n {
        let k1 = f(a);
        let k2 = f([a[0] + 0.5 * h * k1[0], a[1] + 0.5 * h * k1[1]]);
        let k3 = f([a[0] + 0.5 * h * k2[0], a[1] + 0.5 * h * k2[1]]);
        let k4 = f([a[0] + h * k3[0], a[1] + h * k3[1]]);
        for i in 0..2 {
            a[i] += h / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]);
        }
    }
    (a[0] * a[1], a[1] * a[1] - a[0] * a[0])
}

#[test]
fn gradient_flow_matches_rk4_of_the_two_layer_ode() {
    for (s, delta) in [(2.0, 15.75), (1.0, 0.3), (1.5, -2.0), (1.0, 1e-3)] {
        let u = UnbalancedMode::new(mode(s, 0.0, 1e-3, 1), delta).unwrap();
        for w0 in [1e-3, 0.4 * s, 1.8 * s, -0.7, -5.0] {
            let (a1, a2) = u.layers(w0);
            assert!((a1 * a2 - w0).abs() < 1e-14 * w0.abs().max(1.0), "layers give w = {}", a1 * a2);
            assert!((a2 * a2 - a1 * a1 - delta).abs() < 1e-13 * delta.abs().max(1.0));
            for t in [0.01, 0.3, 1.0, 4.0] {
                let w = u.gf_trajectory(w0, t).unwrap();
                let (reference, delta_t) = rk4(s, a1, a2, t, 2e-5 / u.layer_norm(w0).max(u.rate()));
                let rel = (w - reference).abs() / reference.abs().max(1e-3);
                assert!(rel < 1e-9, "s={s} δ={delta} w0={w0} t={t}: closed form {w} vs RK4 {reference}");
                assert!((delta_t - delta).abs() < 1e-9 * delta.abs().max(1.0), "RK4 conserves δ");
                // The time formula inverts the trajectory.
                if (w - s).abs() > 1e-9 {
                    let back = u.gf_time(w0, w).unwrap();
                    assert!((back - t).abs() < 1e-8 * t.max(1.0), "gf_time {back} vs t = {t}");
                }
            }
        }
    }
}

#[test]
fn flow_times_match_quadrature_and_reachability() {
    let u = UnbalancedMode::new(mode(1.3, 0.0, 1e-3, 1), 0.8).unwrap();
    // Midpoint rule in a variable that removes the 1/(s − w) singularity: w = s − (s − w0) e^{−y}.
    let quad = |w0: f64, w1: f64| {
        let (y1, n) = (((u.mode().s() - w0) / (u.mode().s() - w1)).ln(), 200_000);
        let h = y1 / n as f64;
        (0..n)
            .map(|i| {
                let y = (i as f64 + 0.5) * h;
                let gap = (u.mode().s() - w0) * (-y).exp();
                gap / u.gf_velocity(u.mode().s() - gap) * h
            })
            .sum::<f64>()
    };
    for (w0, w1) in [(-3.0, 1.0), (0.01, 1.2), (-0.2, 0.2)] {
        let t = u.gf_time(w0, w1).unwrap();
        let q = quad(w0, w1);
        assert!((t - q).abs() < 1e-8 * q, "t({w0} → {w1}) = {t} vs quadrature {q}");
    }
    // For δ ≠ 0, w = 0 is no saddle: the flow crosses it.
    assert!(u.gf_time(-1.0, 1.0).is_some());
    assert!(u.gf_velocity(0.0) > 0.0);
    assert_eq!(u.gf_time(1.0, 1.4), None, "beyond s");
    assert_eq!(u.gf_time(1.0, 0.5), None, "behind w0");
    // Above s the flow comes down.
    let w = u.gf_trajectory(3.0, 0.5).unwrap();
    assert!(w < 3.0 && w > 1.3);
    assert!((u.gf_trajectory(0.1, 60.0).unwrap() - 1.3).abs() < 1e-12);
}

#[test]
fn balanced_limit_equals_the_mode() {
    let m = mode(1.7, 0.3, 0.01, 4);
    let u = UnbalancedMode::new(m, 0.0).unwrap();
    let close =
        |a: f64, b: f64, what: &str| assert!((a - b).abs() <= 1e-12 * b.abs().max(1e-300), "{what}: {a} vs {b}");
    for w in [1e-4, 0.3, 1.0, 1.69, 2.5] {
        close(u.gf_velocity(w), m.gf_velocity(w), "velocity");
        close(u.drift(w), m.drift(Coordinate::EndToEnd, w), "drift");
        close(u.diffusion(w), m.diffusion(Coordinate::EndToEnd, w), "diffusion");
        close(u.noise(w), m.noise(Coordinate::EndToEnd, w), "noise");
        for t in [0.0, 0.2, 3.0] {
            close(u.gf_trajectory(w, t).unwrap(), m.gf_trajectory(w, t).unwrap(), "trajectory");
        }
    }
    close(u.gf_time(1e-4, 1.2).unwrap(), m.gf_time(1e-4, 1.2).unwrap(), "time");
    close(u.gf_time(2.5, 1.8).unwrap(), m.gf_time(2.5, 1.8).unwrap(), "time from above");
    close(u.t_learned(1e-3, 0.9).unwrap(), m.t_learned(1e-3, 0.9).unwrap(), "t_learned");
    close(u.diffusion_peak().unwrap(), m.diffusion_peak(Coordinate::EndToEnd).unwrap(), "peak");
    close(u.peak_time(1e-3).unwrap().unwrap(), m.peak_time(Coordinate::EndToEnd, 1e-3).unwrap().unwrap(), "peak time");
    let (lo, hi) = u.peak_sigma2_range().unwrap();
    assert_eq!(lo, 0.0);
    close(hi, m.peak_sigma2_max(Coordinate::EndToEnd).unwrap(), "σ² bound");
    close(u.ou_variance(), m.temperature(), "OU variance");
    close(u.rate(), m.linear_regime().rate, "rate");
    let du = u.stationary_density(StationaryOptions::default()).unwrap();
    let dm = m.stationary_density(StationaryOptions::default()).unwrap();
    close(du.mean(), dm.mean(), "density mean");
    close(du.variance(), dm.variance(), "density variance");
    let (mu, mm) =
        (u.diffusion_maximum(1e-3, 0.9).unwrap(), m.diffusion_maximum(Coordinate::EndToEnd, 1e-3, 0.9).unwrap());
    close(mu.global.w, mm.global.w, "global maximum");
    close(mu.global.diffusion, mm.global.diffusion, "global maximum's D");

    // The two-layer chain at δ = 0 is the balanced chain, path by path, bit for bit.
    let grid = TimeGrid::linear(2.0, 5).unwrap();
    let params = EnsembleParams { record_paths: true, ..EnsembleParams::new(130, 9, grid) };
    let two = u.ensemble(0.05, UnbalancedDynamics::TwoLayerChain, &params).unwrap();
    let one = m.ensemble(0.05, Dynamics::Chain, &params).unwrap();
    assert_eq!(two.w.samples, one.samples);
    assert_eq!(two.w.variance, one.variance);
    assert!(two.delta.samples.unwrap().iter().all(|&d| d == 0.0), "δ = 0 stays 0");

    // A tiny imbalance changes the flow only a little (continuity at δ = 0).
    let tiny = UnbalancedMode::new(m, 1e-7).unwrap();
    assert!((tiny.gf_trajectory(1e-2, 1.5).unwrap() - m.gf_trajectory(1e-2, 1.5).unwrap()).abs() < 1e-9);
}

/// First interior local maximum of `D` on a fine grid over `(lo, s]`, if any.
fn grid_peak(u: &UnbalancedMode, lo: f64) -> Option<f64> {
    let (s, n) = (u.mode().s(), 400_000);
    let x = |i: usize| lo + (s - lo) * i as f64 / n as f64;
    let d = |i: usize| u.diffusion(x(i));
    (1..n).find(|&i| d(i) > d(i - 1) && d(i) >= d(i + 1)).map(x)
}

#[test]
fn diffusion_peak_and_its_range_match_a_grid() {
    let s = 1.0;
    let mut seen = (0, 0);
    for delta in [0.3, 0.6, 0.75, 0.9, 0.98, 1.1] {
        let range = UnbalancedMode::new(mode(s, 0.0, 0.01, 1), delta).unwrap().peak_sigma2_range();
        if delta > 1.0 {
            assert_eq!(range, None, "δ² > s²: never a peak");
        }
        for sigma2 in [0.0, 0.05, 0.15, 0.25, 0.3, 0.38, 0.42, 0.5, 0.8] {
            let u = UnbalancedMode::new(mode(s, f64::sqrt(sigma2), 0.01, 1), delta).unwrap();
            let grid = grid_peak(&u, -s);
            let inside = range.is_some_and(|(lo, hi)| lo <= sigma2 && sigma2 <= hi);
            match u.diffusion_peak() {
                Some(w) => {
                    let g = grid.expect("the grid shows the peak");
                    assert!((w - g).abs() < 1e-4, "δ={delta} σ²={sigma2}: peak {w} vs grid {g}");
                    assert!(inside, "δ={delta} σ²={sigma2}: a peak outside the range {range:?}");
                    seen.0 += 1;
                }
                None => {
                    assert_eq!(grid, None, "δ={delta} σ²={sigma2}: the grid has a peak");
                    assert!(!inside, "δ={delta} σ²={sigma2}: no peak inside the range {range:?}");
                    seen.1 += 1;
                }
            }
        }
    }
    assert!(seen.0 > 10 && seen.1 > 10, "both cases covered: {seen:?}");
    // Between δ² = s²/2 and s² a peak needs label noise: the range starts above 0.
    let (lo, hi) = UnbalancedMode::new(mode(s, 0.0, 0.01, 1), 0.9).unwrap().peak_sigma2_range().unwrap();
    eprintln!("δ = 0.9 s: peak for σ² in [{lo}, {hi}]; cases with/without a peak {seen:?}");
    assert!(lo > 0.3 && hi < 0.45, "({lo}, {hi})");
    // Without label noise the peak is the closed form (s + sqrt(s² − 2δ²))/4.
    let u = UnbalancedMode::new(mode(s, 0.0, 0.01, 1), 0.6).unwrap();
    assert!((u.diffusion_peak().unwrap() - (1.0 + f64::sqrt(1.0 - 0.72)) / 4.0).abs() < 1e-14);
}

#[test]
fn density_is_normalised_with_zero_flux_on_both_sides_of_the_origin() {
    // Enough noise that the law reaches w < 0 (S varies over |δ| = 0.6, resolved by the grid).
    let u = UnbalancedMode::new(mode(1.0, 1.0, 0.2, 1), 0.6).unwrap();
    let d = u.stationary_density(StationaryOptions::default()).unwrap();
    let (w, p) = (d.w(), d.density());
    assert!(d.cdf_at(0.0) > 1e-3, "mass below 0: {}", d.cdf_at(0.0));
    let mass: f64 = (1..w.len()).map(|i| 0.5 * (p[i] + p[i - 1]) * (w[i] - w[i - 1])).sum();
    assert!((mass - 1.0).abs() < 1e-3, "mass {mass}");
    let pmax = p.iter().cloned().fold(0.0, f64::max);
    let scale = (1..w.len() - 1).map(|i| (u.drift(w[i]) * p[i]).abs()).fold(0.0, f64::max);
    let mut worst = 0.0f64;
    for i in 1..w.len() - 1 {
        if p[i] < 1e-6 * pmax {
            continue;
        }
        let deriv = (u.diffusion(w[i + 1]) * p[i + 1] - u.diffusion(w[i - 1]) * p[i - 1]) / (w[i + 1] - w[i - 1]);
        worst = worst.max((u.drift(w[i]) * p[i] - 0.5 * deriv).abs() / scale);
    }
    assert!(worst < 1e-3, "relative flux {worst}");
}

#[test]
fn unresolved_mass_at_the_origin_is_an_error() {
    // A tiny imbalance with the law reaching w = 0: S changes over 1e-6, far below the grid step.
    let u = UnbalancedMode::new(mode(1.0, 1.0, 0.2, 1), 1e-6).unwrap();
    let err = u.stationary_density(StationaryOptions::default()).unwrap_err();
    assert!(err.to_string().contains("spacing"), "{err}");
}

#[test]
fn note_reference_variance_is_four_point_oh_six_temperatures() {
    // a0² = s = 2, ratio 8: δ = 2 (8 − 1/8) = 15.75; σ = 0.5, η = 0.002, B = 8.
    let (u, w0) = UnbalancedMode::from_scale_ratio(mode(2.0, 0.5, 0.002, 8), 2f64.sqrt(), 8.0).unwrap();
    assert!((u.delta() - 15.75).abs() < 1e-12 && (w0 - 2.0).abs() < 1e-12);
    let t = u.temperature();
    assert!((t - 1.25e-4).abs() < 1e-18);
    assert!((u.ou_variance() / t - 4.0625).abs() < 1e-12, "√(1 + δ²/4s²) = {}", u.ou_variance() / t);
    let d = u.stationary_density(StationaryOptions::default()).unwrap();
    let ratio = d.variance() / t;
    // The exact density sits 0.4% above the OU value; the linear SDE variance
    // T_OU / (1 − ηλ/B) captures that shift.
    assert!((ratio / 4.0625 - 1.0).abs() < 0.01, "density variance {ratio} T");
    let linear = u.linear_regime().sde_stationary_variance().unwrap() / t;
    assert!((ratio / linear - 1.0).abs() < 1e-4, "density {ratio} T vs linear SDE {linear} T");
    assert!((d.mean() - 2.0).abs() < 0.01 * t.sqrt(), "mean {}", d.mean());
}

#[test]
fn two_layer_chain_variance_matches_the_density() {
    // The reference mode at η = 2·10⁻⁴ (ηλ = 0.003: the chain's O(ηλ) offset from the SDE
    // is 0.2%). Start at w = s; burn in 10 relaxation times 1/λ, then 10 samples 4/λ apart.
    let m = mode(2.0, 0.5, 2e-4, 8);
    let u = UnbalancedMode::new(m, 15.75).unwrap();
    let relax = 1.0 / u.rate();
    let times: Vec<f64> = (0..10).map(|i| 10.0 * relax + 4.0 * relax * f64::from(i)).collect();
    let grid = TimeGrid::from_times(times).unwrap();
    let paths = 4000;
    let out = u.ensemble(2.0, UnbalancedDynamics::TwoLayerChain, &EnsembleParams::new(paths, 11, grid)).unwrap();
    let t = u.temperature();
    let var = out.w.variance.iter().sum::<f64>() / out.w.variance.len() as f64 / t;
    let density = u.stationary_density(StationaryOptions::default()).unwrap().variance() / t;
    eprintln!("two-layer chain: Var = {var} T, density {density} T");
    // 40 000 nearly independent samples: relative standard error √(2/40000) = 0.7%.
    assert!((var / density - 1.0).abs() < 0.025, "chain {var} T vs density {density} T");
    assert!(var > 3.8, "the imbalance raises the variance four-fold: {var} T");
    // δ drifts down by the O(η²) per-step term only: ≈ η t E ḡ² ≈ 2·10⁻⁵ relative here.
    let last = out.delta.mean.len() - 1;
    let drift = out.delta.mean[last] / 15.75 - 1.0;
    eprintln!("relative δ drift over t = {}: {drift:e}", out.delta.times[last]);
    assert!(drift < 0.0 && drift > -1e-4, "relative δ drift {drift}");
}

#[test]
fn chain_imbalance_decays_by_eta_squared_g_squared() {
    // δ ← δ (1 − η² ḡ²): per unit time ln δ falls at η E ḡ², E ḡ² = E(w − s)² (1 + 2/B) + σ²/B.
    let (s, sigma, lr, batch, delta) = (1.0, 1.0, 0.02, 2, 1.0);
    let u = UnbalancedMode::new(mode(s, sigma, lr, batch), delta).unwrap();
    let grid = TimeGrid::linear(40.0, 81).unwrap();
    let out = u.ensemble(s, UnbalancedDynamics::TwoLayerChain, &EnsembleParams::new(2000, 5, grid)).unwrap();
    let (w, d) = (&out.w, &out.delta);
    let g2 = |i: usize| {
        let second = w.variance[i] + (w.mean[i] - s).powi(2);
        second * (1.0 + 2.0 / f64::from(batch)) + sigma * sigma / f64::from(batch)
    };
    let mut log_predicted = 0.0;
    for i in 1..w.times.len() {
        log_predicted -= lr * 0.5 * (g2(i - 1) + g2(i)) * (w.times[i] - w.times[i - 1]);
        let measured = (d.mean[i] / delta).ln();
        if i % 20 == 0 {
            eprintln!("t = {}: ln δ/δ0 = {measured:.5} predicted {log_predicted:.5}", w.times[i]);
        }
        assert!(
            (measured - log_predicted).abs() < 0.02 * log_predicted.abs() + 1e-4,
            "t = {}: ln δ/δ0 = {measured} vs {log_predicted}",
            w.times[i]
        );
    }
    assert!(log_predicted < -0.4, "the test sees a real decay: {log_predicted}");
}

#[test]
fn sde_ensemble_at_fixed_delta_matches_the_density() {
    let u = UnbalancedMode::new(mode(1.0, 0.5, 0.02, 2), 1.5).unwrap();
    let grid = TimeGrid::from_times(vec![0.0, 5.0]).unwrap();
    let out = u.ensemble(1.0, UnbalancedDynamics::Sde { dt: 5e-4 }, &EnsembleParams::new(4000, 2, grid)).unwrap();
    let d = u.stationary_density(StationaryOptions::default()).unwrap();
    let n = out.w.final_w.len() as f64;
    let ks = d.ks_to_samples(&out.w.final_w) * n.sqrt();
    eprintln!("fixed-δ SDE vs density: KS √n = {ks}");
    assert!(ks < 1.63, "KS √n = {ks} (1% level 1.63)");
    assert!(out.delta.variance.iter().all(|&v| v == 0.0), "δ is fixed in the SDE");
}

#[test]
fn bad_input_names_the_field() {
    let deep = ModeParams { depth: 3, ..ModeParams::default() }.check().unwrap();
    assert_eq!(UnbalancedMode::new(deep, 1.0).unwrap_err().field(), Some("depth"));
    let m = mode(1.0, 0.0, 0.01, 1);
    assert_eq!(UnbalancedMode::new(m, f64::NAN).unwrap_err().field(), Some("delta"));
    assert_eq!(UnbalancedMode::from_scale_ratio(m, 1.0, 0.0).unwrap_err().field(), Some("ratio"));
    let balanced = UnbalancedMode::new(m, 0.0).unwrap();
    assert_eq!(balanced.gf_trajectory(-0.1, 1.0).unwrap_err().field(), Some("w0"));
    let unbalanced = UnbalancedMode::new(m, 0.5).unwrap();
    assert!(unbalanced.gf_trajectory(-0.1, 1.0).is_ok(), "w0 < 0 is a valid start when δ ≠ 0");
    assert_eq!(unbalanced.gf_trajectory(0.1, -1.0).unwrap_err().field(), Some("t"));
    assert_eq!(unbalanced.stationary_density(StationaryOptions::default()).unwrap_err().field(), Some("sigma"));
    let grid = TimeGrid::linear(1.0, 3).unwrap();
    let err =
        unbalanced.ensemble(0.1, UnbalancedDynamics::Sde { dt: 0.0 }, &EnsembleParams::new(4, 1, grid)).unwrap_err();
    assert_eq!(err.field(), Some("dt"));
}

#[test]
fn ensembles_do_not_depend_on_thread_count() {
    let u = UnbalancedMode::new(mode(1.0, 0.5, 0.02, 2), -0.7).unwrap();
    let grid = TimeGrid::linear(1.0, 4).unwrap();
    let params = EnsembleParams { record_paths: true, ..EnsembleParams::new(200, 6, grid) };
    for dynamics in [UnbalancedDynamics::TwoLayerChain, UnbalancedDynamics::Sde { dt: 1e-3 }] {
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| u.ensemble(0.2, dynamics, &params).unwrap())
        };
        assert_eq!(run(1), run(2), "{dynamics:?}");
    }
}
