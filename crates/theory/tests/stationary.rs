//! Stationary laws: the exact density against the depth-1 closed form and the zero-flux
//! condition, its variance against `T` as η → 0, and against long-run SDE samples.

use modewise_theory::stationary::ks_statistic;
use modewise_theory::{
    Coordinate, Dynamics, EnsembleParams, Mode, ModeParams, Scheme, StationaryLaw, StationaryOptions, TimeGrid,
};

fn mode(depth: u32, s: f64, sigma: f64, lr: f64, batch: u32) -> Mode {
    ModeParams { depth, s, sigma, lr, batch }.check().unwrap()
}

#[test]
fn depth_one_density_is_the_closed_form() {
    // At L = 1: p ∝ q(w)^{−1−B/(2η)}, normalised here by a plain fine trapezoid.
    let m = mode(1, 1.0, 0.8, 0.2, 1);
    let d = m.stationary_density(StationaryOptions::default()).unwrap();
    let expo = -1.0 - 1.0 / (2.0 * 0.2);
    let unnorm = |w: f64| m.q(w).powf(expo);
    let (lo, hi, n) = (-60.0, 62.0, 2_000_000);
    let h = (hi - lo) / n as f64;
    let z: f64 = (0..=n).map(|i| unnorm(lo + h * i as f64) * if i == 0 || i == n { 0.5 } else { 1.0 }).sum::<f64>() * h;
    for w in [-1.0, 0.0, 0.5, 1.0, 1.3, 2.5] {
        let exact = unnorm(w) / z;
        let got = d.pdf_at(w);
        assert!((got - exact).abs() < 2e-3 * exact, "w = {w}: {got} vs {exact}");
    }
    assert!((d.mean() - 1.0).abs() < 1e-6, "symmetric about s: mean {}", d.mean());
}

#[test]
fn density_is_normalised_and_has_zero_flux() {
    for (depth, s, sigma, lr, batch) in [(2u32, 1.0, 1.0, 0.05, 1u32), (3, 2.0, 0.5, 0.02, 2), (4, 1.0, 0.3, 0.1, 1)] {
        let m = mode(depth, s, sigma, lr, batch);
        let d = m.stationary_density(StationaryOptions::default()).unwrap();
        let (w, p) = (d.w(), d.density());
        // Independent normalisation: trapezoid in w on the non-uniform grid.
        let mass: f64 = (1..w.len()).map(|i| 0.5 * (p[i] + p[i - 1]) * (w[i] - w[i - 1])).sum();
        assert!((mass - 1.0).abs() < 1e-3, "L={depth}: mass {mass}");
        // Zero flux J = b p − ½ (D p)′ = 0 (central differences), relative to |b p|.
        let mut worst = 0.0f64;
        let scale = (1..w.len() - 1).map(|i| (m.drift(Coordinate::EndToEnd, w[i]) * p[i]).abs()).fold(0.0, f64::max);
        for i in 1..w.len() - 1 {
            if p[i] < 1e-6 * p.iter().cloned().fold(0.0, f64::max) {
                continue;
            }
            let dp = |j: usize| m.diffusion(Coordinate::EndToEnd, w[j]) * p[j];
            let deriv = (dp(i + 1) - dp(i - 1)) / (w[i + 1] - w[i - 1]);
            let flux = m.drift(Coordinate::EndToEnd, w[i]) * p[i] - 0.5 * deriv;
            worst = worst.max(flux.abs() / scale);
        }
        assert!(worst < 1e-3, "L={depth}: relative flux {worst}");
    }
}

#[test]
fn variance_tends_to_temperature_as_lr_vanishes() {
    for depth in [2u32, 3, 4] {
        let mut gaps = Vec::new();
        let mut distances = Vec::new();
        for lr in [1e-1, 1e-2, 1e-3, 1e-4] {
            let m = mode(depth, 2.0, 0.5, lr, 4);
            let d = m.stationary_density(StationaryOptions::default()).unwrap();
            gaps.push((d.variance() / m.temperature() - 1.0).abs());
            distances.push(d.distances_to_boltzmann());
        }
        assert!(gaps.windows(2).all(|g| g[1] < g[0]), "L={depth}: {gaps:?}");
        assert!(gaps[3] < 2e-3, "L={depth}: {gaps:?}");
        // Every distance to the Boltzmann law shrinks with η, towards 0.
        let shrinking = |f: fn(&modewise_theory::Distances) -> f64| distances.windows(2).all(|d| f(&d[1]) < f(&d[0]));
        assert!(shrinking(|d| d.kl) && shrinking(|d| d.tv) && shrinking(|d| d.ks), "L={depth}: {distances:?}");
        assert!(distances[3].tv < 0.01 && distances[3].ks < 0.01, "L={depth}: {distances:?}");
    }
    // KS distance to Boltzmann shrinks too.
    let far = mode(2, 1.0, 1.0, 0.05, 1).stationary_density(StationaryOptions::default()).unwrap();
    let near = mode(2, 1.0, 1.0, 0.0005, 1).stationary_density(StationaryOptions::default()).unwrap();
    assert!(near.distances_to_boltzmann().ks < 0.1 * far.distances_to_boltzmann().ks);
}

#[test]
fn long_run_sde_samples_follow_the_exact_density() {
    for (depth, scheme) in [(2u32, Scheme::EulerMaruyama), (3, Scheme::Milstein)] {
        let m = mode(depth, 1.0, 1.0, 0.05, 1);
        let d = m.stationary_density(StationaryOptions::default()).unwrap();
        let grid = TimeGrid::from_times(vec![0.0, 10.0]).unwrap();
        let dynamics = Dynamics::Sde { scheme, coordinate: Coordinate::EndToEnd, dt: 1e-3 };
        let stats = m.ensemble(1.0, dynamics, &EnsembleParams::new(4000, 5, grid)).unwrap();
        let n = stats.final_w.len() as f64;
        let ks = d.ks_to_samples(&stats.final_w);
        assert!(ks * n.sqrt() < 1.63, "L={depth}: KS √n = {} (1% level 1.63)", ks * n.sqrt());
        // The Boltzmann law is rejected by the same samples: the test can tell them apart.
        let b = d.boltzmann();
        let ks_b = ks_statistic(&stats.final_w, |w| b.cdf(w));
        assert!(ks_b * n.sqrt() > 3.0, "L={depth}: Boltzmann KS √n = {}", ks_b * n.sqrt());
    }
}

#[test]
fn noiseless_law_is_the_dirac_mass_at_s() {
    let m = mode(3, 1.7, 0.0, 1e-2, 1);
    assert_eq!(m.stationary_law().unwrap(), StationaryLaw::Dirac { at: 1.7 });
    let err = m.stationary_density(StationaryOptions::default()).unwrap_err();
    assert_eq!(err.field(), Some("sigma"));
}

#[test]
fn too_much_noise_is_reported_not_normalised() {
    // L = 2 with B s / (η q(0)) < ½: the density is not integrable at the saddle w = 0.
    let m = mode(2, 1.0, 1.0, 2.0, 1);
    let err = m.stationary_density(StationaryOptions::default()).unwrap_err();
    assert!(err.to_string().contains("not normalisable"), "{err}");
}
