//! The linear regime near `s`: decay rates without label noise against the exact chains'
//! (balanced at depths 2 and 3, unbalanced two-layer) and the SDE's ensemble curves, and the
//! stationary variances with label noise against the chain and the exact SDE density.

use modewise_theory::{
    Coordinate, Dynamics, EnsembleParams, EnsembleStats, LinearRegime, Mode, ModeParams, Scheme, StationaryOptions,
    TimeGrid, UnbalancedDynamics, UnbalancedMode,
};

fn mode(depth: u32, s: f64, sigma: f64, lr: f64, batch: u32) -> Mode {
    ModeParams { depth, s, sigma, lr, batch }.check().unwrap()
}

/// Least-squares slope of `ln y` against `t`.
fn log_slope(t: &[f64], y: &[f64]) -> f64 {
    let n = t.len() as f64;
    let ly: Vec<f64> = y.iter().map(|v| v.ln()).collect();
    let (mt, my) = (t.iter().sum::<f64>() / n, ly.iter().sum::<f64>() / n);
    let cov: f64 = t.iter().zip(&ly).map(|(a, b)| (a - mt) * (b - my)).sum();
    let var: f64 = t.iter().map(|a| (a - mt) * (a - mt)).sum();
    cov / var
}

/// `E[(w − s)²]` per recorded time (from the unbiased variance and the mean).
fn second_moment(stats: &EnsembleStats, s: f64, paths: usize) -> Vec<f64> {
    let p = paths as f64;
    stats.variance.iter().zip(&stats.mean).map(|(v, m)| v * (p - 1.0) / p + (m - s) * (m - s)).collect()
}

/// Checks the chain's second-moment and mean decay rates and its across-seed variance curve.
fn check_chain(label: &str, lin: &LinearRegime, s: f64, x0: f64, stats: &EnsembleStats, paths: usize) {
    let t = &stats.times;
    let m2 = second_moment(stats, s, paths);
    let rate = -log_slope(t, &m2);
    let (chain, sde, naive) = (lin.chain_second_moment_rate(), lin.sde_second_moment_rate(), 2.0 * lin.rate);
    eprintln!("{label}: E(s−w)² decays at {rate:.4} (chain {chain:.4}, SDE {sde:.4}, 2λ {naive:.4})");
    assert!((rate / chain - 1.0).abs() < 0.015, "{label}: rate {rate} vs chain {chain}");
    // The prediction is sharp enough to tell the chain from the SDE and from 2λ.
    assert!((chain / sde - 1.0).abs() > 0.03 && (chain / naive - 1.0).abs() > 0.03, "{label}: rates too close");
    let gaps: Vec<f64> = stats.mean.iter().map(|m| (m - s).abs()).collect();
    let mean_rate = -log_slope(t, &gaps);
    assert!((mean_rate / lin.chain_mean_rate() - 1.0).abs() < 0.01, "{label}: mean rate {mean_rate}");
    for (i, &step) in stats.steps.iter().enumerate().skip(1) {
        let predicted = lin.chain_point_variance(x0, step);
        let rel = stats.variance[i] / predicted - 1.0;
        assert!(rel.abs() < 0.1, "{label} step {step}: variance {} vs {predicted}", stats.variance[i]);
    }
}

#[test]
fn noiseless_chains_decay_at_the_predicted_rates() {
    let paths = 20_000;
    // Balanced, depths 2 and 3: λ = L s^{2−2/L}; record up to λt = 4.
    for (depth, s, lr, batch) in [(2u32, 1.0, 0.05, 1u32), (3, 1.0, 0.04, 1)] {
        let m = mode(depth, s, 0.0, lr, batch);
        let lin = m.linear_regime();
        let x0 = 1e-3 * s;
        let n = (4.0 / lin.step()).round() as usize;
        let grid = TimeGrid::from_times((0..=n).step_by(2).map(|k| k as f64 * lr).collect()).unwrap();
        let stats = m.ensemble(s + x0, Dynamics::Chain, &EnsembleParams::new(paths, 21, grid)).unwrap();
        check_chain(&format!("L = {depth} chain"), &lin, s, x0, &stats, paths);
    }
    // Unbalanced two-layer chain: λ = sqrt(4s² + δ²).
    let u = UnbalancedMode::new(mode(2, 1.0, 0.0, 0.05, 1), 1.0).unwrap();
    let lin = u.linear_regime();
    assert!((lin.rate - 5f64.sqrt()).abs() < 1e-15);
    let n = (4.0 / lin.step()).round() as usize;
    let grid = TimeGrid::from_times((0..=n).step_by(2).map(|k| k as f64 * 0.05).collect()).unwrap();
    let out = u.ensemble(1.0 + 1e-3, UnbalancedDynamics::TwoLayerChain, &EnsembleParams::new(paths, 22, grid)).unwrap();
    check_chain("two-layer chain, δ = 1", &lin, 1.0, 1e-3, &out.w, paths);
}

#[test]
fn noiseless_sde_decays_at_its_own_rate() {
    let (s, lr, batch) = (1.0, 0.05, 1);
    let m = mode(2, s, 0.0, lr, batch);
    let lin = m.linear_regime();
    let paths = 20_000;
    let grid = TimeGrid::linear(2.0, 21).unwrap();
    let dynamics = Dynamics::Sde { scheme: Scheme::EulerMaruyama, coordinate: Coordinate::EndToEnd, dt: lr / 100.0 };
    let stats = m.ensemble(s + 1e-3, dynamics, &EnsembleParams::new(paths, 23, grid)).unwrap();
    let rate = -log_slope(&stats.times, &second_moment(&stats, s, paths));
    let (sde, chain) = (lin.sde_second_moment_rate(), lin.chain_second_moment_rate());
    eprintln!("SDE: E(s−w)² decays at {rate:.4} (SDE {sde:.4}, chain {chain:.4})");
    assert!((rate / sde - 1.0).abs() < 0.015, "rate {rate} vs SDE {sde}");
    assert!((rate / chain - 1.0).abs() > 0.02, "the SDE does not decay at the chain's rate");
    let gaps: Vec<f64> = stats.mean.iter().map(|w| (w - s).abs()).collect();
    let mean_rate = -log_slope(&stats.times, &gaps);
    assert!((mean_rate / lin.sde_mean_rate() - 1.0).abs() < 0.01, "mean rate {mean_rate} vs λ");
}

#[test]
fn rates_expand_as_derived_for_small_steps() {
    // chain: 2λ + ηλ²(1 − 2/B) + O(η²); SDE: 2λ − 2ηλ²/B; mean: λ + ηλ²/2 + O(η²).
    for batch in [1u32, 2, 8] {
        let lr = 1e-5;
        let lin = mode(3, 1.5, 0.0, lr, batch).linear_regime();
        let (l, b) = (lin.rate, f64::from(batch));
        let first = (lin.chain_second_moment_rate() - 2.0 * l) / lr;
        assert!((first - l * l * (1.0 - 2.0 / b)).abs() < 1e-3 * l * l, "B = {batch}: {first}");
        assert!(((lin.sde_second_moment_rate() - 2.0 * l) / lr + 2.0 * l * l / b).abs() < 1e-9 * l * l);
        assert!(((lin.chain_mean_rate() - l) / lr - l * l / 2.0).abs() < 1e-3 * l * l);
    }
    // Mean-square instability: f₂ > 1 once ηλ > 2B/(B + 2).
    let unstable = mode(2, 1.0, 0.0, 0.7, 1).linear_regime();
    assert!(unstable.step() > 2.0 / 3.0 && unstable.chain_second_moment_rate() < 0.0);
    assert_eq!(mode(2, 1.0, 0.5, 0.7, 1).linear_regime().chain_stationary_variance(), None);
}

#[test]
fn stationary_variances_match_the_chain_and_the_density() {
    // The note's finite-η example: L = 2, s = 2, σ = 0.5, B = 4, η = 0.05 (ηλ = 0.2).
    let m = mode(2, 2.0, 0.5, 0.05, 4);
    let t = m.temperature();
    let lin = m.linear_regime();
    let chain_pred = lin.chain_stationary_variance().unwrap() / t;
    let sde_pred = lin.sde_stationary_variance().unwrap() / t;
    assert!((chain_pred - 1.0 / 0.85).abs() < 1e-12 && (sde_pred - 1.0 / 0.95).abs() < 1e-12);
    let relax = 1.0 / lin.rate;
    let times: Vec<f64> = (0..10).map(|i| 10.0 * relax + 4.0 * relax * f64::from(i)).collect();
    let stats = m.ensemble(2.0, Dynamics::Chain, &EnsembleParams::new(10_000, 4, TimeGrid::from_times(times).unwrap()));
    let stats = stats.unwrap();
    let chain = stats.variance.iter().sum::<f64>() / stats.variance.len() as f64 / t;
    let density = m.stationary_density(StationaryOptions::default()).unwrap().variance() / t;
    eprintln!("η = 0.05: chain {chain:.4} T (linear {chain_pred:.4}), density {density:.4} T (linear {sde_pred:.4})");
    // 10⁵ samples: relative standard error 0.45%.
    assert!((chain / chain_pred - 1.0).abs() < 0.02, "chain {chain} vs {chain_pred}");
    assert!(chain / density - 1.0 > 0.08, "the chain sits well above the SDE");
    // The linear SDE variance against the exact zero-flux density, across depths and steps.
    for (depth, lr) in [(2u32, 0.05), (2, 0.005), (3, 0.02), (4, 0.01)] {
        let m = mode(depth, 2.0, 0.5, lr, 4);
        let density = m.stationary_density(StationaryOptions::default()).unwrap().variance();
        let linear = m.linear_regime().sde_stationary_variance().unwrap();
        let ou = m.linear_regime().ou_variance();
        assert!((ou / m.temperature() - 1.0).abs() < 1e-12, "ηλσ²/2B is the note's T");
        eprintln!("L = {depth}, η = {lr}: density/T = {:.5}, linear/T = {:.5}", density / ou, linear / ou);
        assert!((density / linear - 1.0).abs() < 0.2 * (linear / ou - 1.0), "L = {depth} η = {lr}");
    }
}
