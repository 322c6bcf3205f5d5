//! The exact per-mode SGD chain: stationary variance against the Boltzmann temperature,
//! collapse onto `s` without label noise.

use modewise_theory::{Dynamics, EnsembleParams, ModeParams, TimeGrid};

#[test]
fn stationary_variance_is_the_temperature() {
    for depth in [2u32, 3] {
        let m = ModeParams { depth, s: 2.0, sigma: 0.5, lr: 1e-3, batch: 4 }.check().unwrap();
        let t = m.temperature();
        // Burn-in of ≥ 10 relaxation times 1/(L s^{2−2/L}), then samples 4 relaxation times apart.
        let relax = 1.0 / (m.l() * 2f64.powf(2.0 - 2.0 / m.l()));
        let times: Vec<f64> = (0..=10).map(|i| 10.0 * relax + 4.0 * relax * f64::from(i)).collect();
        let grid = TimeGrid::from_times(times).unwrap();
        let stats = m.ensemble(2.0, Dynamics::Chain, &EnsembleParams::new(4000, 3, grid)).unwrap();
        let var = stats.variance.iter().sum::<f64>() / stats.variance.len() as f64;
        let mean = stats.mean.iter().sum::<f64>() / stats.mean.len() as f64;
        assert!((var / t - 1.0).abs() < 0.05, "L={depth}: chain variance {var:e} vs T = {t:e}");
        assert!((mean - 2.0).abs() < 0.05 * t.sqrt(), "L={depth}: chain mean {mean}");
        assert!(stats.finite.iter().all(|&n| n == 4000));
    }
}

#[test]
fn noiseless_chains_collapse_onto_s() {
    for depth in [2u32, 3] {
        let m = ModeParams { depth, s: 1.5, sigma: 0.0, lr: 1e-2, batch: 2 }.check().unwrap();
        let grid = TimeGrid::log_spaced(0.1, 60.0, 10).unwrap();
        let stats = m.ensemble(0.05, Dynamics::Chain, &EnsembleParams::new(500, 1, grid)).unwrap();
        let last = stats.mean.len() - 1;
        assert!((stats.mean[last] - 1.5).abs() < 1e-9, "L={depth}: mean {}", stats.mean[last]);
        assert!(stats.variance[last] < 1e-15, "L={depth}: variance {}", stats.variance[last]);
        // Mid-way the ensemble is spread: the collapse is a real outcome.
        assert!(stats.variance.iter().any(|&v| v > 1e-6));
        assert!(stats.final_w.iter().all(|w| (w - 1.5).abs() < 1e-8));
    }
}

#[test]
fn diverging_chains_are_counted_not_averaged() {
    // η far above the stability limit 2/(L s^{2−2/L}): every chain blows up.
    let m = ModeParams { depth: 2, s: 3.0, sigma: 1.0, lr: 2.0, batch: 1 }.check().unwrap();
    let grid = TimeGrid::from_times(vec![0.0, 400.0]).unwrap();
    let stats = m.ensemble(1.0, Dynamics::Chain, &EnsembleParams::new(100, 5, grid)).unwrap();
    assert_eq!(stats.finite[0], 100);
    assert!(stats.finite[1] < 100, "{:?}", stats.finite);
    // Statistics are over the surviving chains only: NaN when none survives.
    if stats.finite[1] == 0 {
        assert!(stats.mean[1].is_nan());
    } else {
        assert!(stats.mean[1].is_finite());
    }
}
