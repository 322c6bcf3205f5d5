//! SDE ensembles against the exact chain (weak error shrinking with η), schemes and
//! coordinates against each other, and thread-count independence.

use modewise_theory::{Coordinate, Dynamics, EnsembleParams, EnsembleStats, Mode, ModeParams, Scheme, TimeGrid};

fn mode(depth: u32, lr: f64) -> Mode {
    ModeParams { depth, s: 1.0, sigma: 0.5, lr, batch: 1 }.check().unwrap()
}

fn grid() -> TimeGrid {
    TimeGrid::from_times((1..=12).map(|i| 0.5 * f64::from(i)).collect()).unwrap()
}

/// Largest gaps in mean and variance (the latter relative to the largest variance).
fn gaps(a: &EnsembleStats, b: &EnsembleStats) -> (f64, f64) {
    let vmax = a.variance.iter().chain(&b.variance).fold(0.0f64, |m, &v| m.max(v));
    let mean = a.mean.iter().zip(&b.mean).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
    let var = a.variance.iter().zip(&b.variance).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max) / vmax;
    (mean, var)
}

#[test]
fn sde_tracks_the_chain_with_weak_error_shrinking_with_eta() {
    let sde = Dynamics::Sde { scheme: Scheme::EulerMaruyama, coordinate: Coordinate::EndToEnd, dt: 1e-3 };
    let paths = 20_000;
    let mut errors = Vec::new();
    for lr in [0.08, 0.02] {
        let m = mode(2, lr);
        let chain = m.ensemble(0.05, Dynamics::Chain, &EnsembleParams::new(paths, 1, grid())).unwrap();
        let sde = m.ensemble(0.05, sde, &EnsembleParams::new(paths, 2, grid())).unwrap();
        errors.push(gaps(&chain, &sde));
    }
    let (big, small) = (errors[0], errors[1]);
    eprintln!("(mean gap, relative variance gap): η = 0.08 {big:?}, η = 0.02 {small:?}");
    assert!(small.0 < 0.5 * big.0, "mean gap {small:?} at η = 0.02 vs {big:?} at η = 0.08");
    assert!(small.0 < 0.03, "mean gap {} at η = 0.02", small.0);
    assert!(small.1 < 0.15, "variance gap {} at η = 0.02", small.1);
    assert!(small.1 < big.1, "variance gap {small:?} vs {big:?}");
}

#[test]
fn schemes_and_coordinates_agree() {
    let m = mode(3, 0.02);
    let params = EnsembleParams::new(20_000, 9, grid());
    let reference = m
        .ensemble(0.05, Dynamics::Sde { scheme: Scheme::Milstein, coordinate: Coordinate::PerLayer, dt: 5e-4 }, &params)
        .unwrap();
    for scheme in [Scheme::EulerMaruyama, Scheme::Milstein] {
        for coordinate in [Coordinate::EndToEnd, Coordinate::PerLayer] {
            let p = EnsembleParams { seed: 10, ..params.clone() };
            let other = m.ensemble(0.05, Dynamics::Sde { scheme, coordinate, dt: 1e-3 }, &p).unwrap();
            let (mean, var) = gaps(&reference, &other);
            assert!(mean < 0.02, "{scheme:?} in {coordinate}: mean gap {mean}");
            assert!(var < 0.15, "{scheme:?} in {coordinate}: variance gap {var}");
        }
    }
    // The mean follows gradient flow up to O(η) noise-induced corrections.
    for (t, mean) in reference.times.iter().zip(&reference.mean) {
        let gf = m.gf_trajectory(0.05, *t).unwrap();
        assert!((gf - mean).abs() < 0.05, "t = {t}: mean {mean} vs gradient flow {gf}");
    }
}

#[test]
fn results_do_not_depend_on_thread_count() {
    let m = mode(4, 0.01);
    let run = |threads: usize, dynamics: Dynamics| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let params = EnsembleParams { record_paths: true, ..EnsembleParams::new(1000, 42, grid()) };
        pool.install(|| m.ensemble(0.1, dynamics, &params).unwrap())
    };
    for dynamics in [
        Dynamics::Chain,
        Dynamics::Sde { scheme: Scheme::EulerMaruyama, coordinate: Coordinate::EndToEnd, dt: 1e-3 },
        Dynamics::Sde { scheme: Scheme::Milstein, coordinate: Coordinate::PerLayer, dt: 1e-3 },
    ] {
        let one = run(1, dynamics);
        let two = run(2, dynamics);
        assert_eq!(one, two, "{dynamics:?}: 1 and 2 threads differ");
        let again = run(2, dynamics);
        assert_eq!(two, again, "{dynamics:?}: two invocations differ");
        let other = {
            let params = EnsembleParams::new(1000, 43, grid());
            m.ensemble(0.1, dynamics, &params).unwrap()
        };
        assert_ne!(one.final_w, other.final_w, "{dynamics:?}: the seed is ignored");
    }
}
