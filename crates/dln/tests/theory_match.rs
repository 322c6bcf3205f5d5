//! The network reproduces the theory of the aligned, balanced regime (`docs/theory.md` §3, §6).

mod common;

use modewise_dln::*;
use modewise_theory::{Coordinate, ModeParams};

fn aligned_run(sigma: f64, a0: Vec<f64>, steps: u64, source: DataSource) -> TrainParams {
    TrainParams {
        dims: vec![6, 8, 7, 5],
        teacher: TeacherParams { spectrum: SpectrumSpec::List { s: vec![3.0, 1.5, 0.5] }, seed: 2 },
        init: InitScheme::AlignedBalanced { a0: ModeScale::PerMode(a0) },
        data: DataParams { source, sigma, ..DataParams::default() },
        lr: 1e-3,
        batch: 4,
        steps,
        seeds: vec![9],
        backend: BackendKind::Flex,
        n_probe: 0,
        ..TrainParams::default()
    }
}

/// Gradient descent on the population loss keeps an aligned-balanced start aligned and balanced
/// (relative errors ≤ 1e-4 after 10⁴ steps) while the modes are learned.
#[test]
fn population_descent_stays_aligned_and_balanced() {
    let p = TrainParams { lr: 0.01, ..aligned_run(0.0, vec![0.3, 0.3, 0.3], 10_000, DataSource::Population) };
    let spec = p.check().unwrap();
    let (records, report) = Trainer::new(&spec).unwrap().run_collect().unwrap();
    assert!(report.divergences.is_empty());
    assert_eq!(records.first().unwrap().step, 0);
    let last = records.last().unwrap();
    assert_eq!(last.step, 10_000);
    for r in &records {
        assert!(r.probe.alignment_error <= 1e-4, "step {}: alignment {}", r.step, r.probe.alignment_error);
        assert!(r.probe.balance_relative <= 1e-4, "step {}: balance {}", r.step, r.probe.balance_relative);
    }
    // The exact per-mode reduction (`docs/theory.md` §3.3): each mode follows the scalar map
    // a ← a − η a^{L−1} (a^L − s); after t = 100 every mode is learned.
    for k in 0..3 {
        let s_k = spec.teacher().s()[k];
        let mut a = 0.3f64;
        let mut step = 0;
        for r in &records {
            while step < r.step {
                a -= p.lr * a * a * (a.powi(3) - s_k);
                step += 1;
            }
            let (got, expected) = (r.probe.mode_strength[k], a.powi(3));
            assert!((got - expected).abs() <= 1e-4 * s_k, "mode {k} step {}: {got} vs {expected}", r.step);
        }
        assert!((last.probe.mode_strength[k] - s_k).abs() < 1e-3 * s_k);
    }
}

/// With aligned-balanced weights the measured mode diffusion is the theory's `D(w_k)`: the exact
/// probe to 1e-6 (the weights are f32), the Monte Carlo one (4·10⁵ fresh samples) within 5%. The mode drift is the
/// gradient-flow velocity, within 2% of the full Itô drift of the end-to-end SDE (whose
/// correction is O(η)).
#[test]
fn mode_diffusion_and_drift_match_the_theory() {
    for (sigma, a0, n_probe) in [
        (0.0, vec![1.2, 0.9, 0.5], 400_000),
        (0.7, vec![0.8, 1.0, 0.6], 400_000),
        (0.0, vec![1.2, 0.9, 0.5], 0),
        (0.7, vec![0.8, 1.0, 0.6], 0),
    ] {
        // Exact up to the f32 rounding of the weights.
        let tolerance = if n_probe == 0 { 1e-6 } else { 0.05 };
        let p = TrainParams { n_probe, ..aligned_run(sigma, a0.clone(), 0, DataSource::Online) };
        let spec = p.check().unwrap();
        let (records, _) = Trainer::new(&spec).unwrap().run_collect().unwrap();
        assert_eq!(records.len(), 1);
        let probe = &records[0].probe;
        for (k, a) in a0.iter().enumerate() {
            let mode = spec.mode_params(k).check().unwrap();
            let w = a.powi(3);
            assert!((probe.mode_strength[k] - w).abs() < 1e-5 * w.max(1.0));
            let d_theory = mode.diffusion(Coordinate::EndToEnd, w);
            let d = probe.mode_diffusion[k];
            assert!(
                (d - d_theory).abs() <= tolerance * d_theory,
                "σ={sigma} n_probe={n_probe} mode {k}: D {d} vs theory {d_theory}"
            );
            let drift = probe.mode_drift[k];
            let gf = mode.gf_velocity(w);
            assert!((drift - gf).abs() <= 1e-5 * gf.abs().max(1e-3), "σ={sigma} mode {k}: drift {drift} vs {gf}");
            let ito = mode.drift(Coordinate::EndToEnd, w);
            assert!((drift - ito).abs() <= 0.02 * ito.abs(), "σ={sigma} mode {k}: drift {drift} vs Itô {ito}");
        }
    }
}

/// The diffusion probe is not the theory formula in disguise: off the aligned regime it differs,
/// while the Monte Carlo probe matches a brute-force variance over explicit per-sample
/// gradients (same samples, 1e-9), and the exact probe matches that variance within five of its
/// standard errors.
#[test]
fn mode_diffusion_matches_brute_force_off_the_aligned_regime() {
    use modewise_theory::rng::path_rng;
    use nalgebra::DMatrix;
    let p = TrainParams {
        init: InitScheme::Gaussian { std: GaussianStd::Scale(0.5) },
        ..aligned_run(0.4, vec![1.0, 1.0, 1.0], 0, DataSource::Online)
    };
    let spec = p.check().unwrap();
    let layers = p.init.draw(&p.dims, spec.teacher(), 3, 0).unwrap();
    let ctx = ProbeContext { sigma: 0.4, lr: p.lr, batch: p.batch, n_probe: 20_000 };
    let fast = probe(&layers, spec.teacher(), &ctx, &mut path_rng(1, 1));
    let exact = probe(&layers, spec.teacher(), &ProbeContext { n_probe: 0, ..ctx }, &mut path_rng(1, 1));
    // Brute force with the same samples: ψ_k and ∇ℓ as full per-layer matrices.
    let mut rng = path_rng(1, 1);
    let (u, v, m) = (spec.teacher().u(), spec.teacher().v(), spec.teacher().matrix());
    let mut xs = DMatrix::<f64>::zeros(6, ctx.n_probe);
    let mut es = DMatrix::<f64>::zeros(5, ctx.n_probe);
    {
        use rand_distr::{Distribution, StandardNormal};
        for x in xs.iter_mut() {
            *x = StandardNormal.sample(&mut rng);
        }
        for e in es.iter_mut() {
            let z: f64 = StandardNormal.sample(&mut rng);
            *e = 0.4 * z;
        }
    }
    let prod =
        |ls: &[DMatrix<f64>], n: usize| -> DMatrix<f64> { ls.iter().fold(DMatrix::identity(n, n), |p, w| w * p) };
    let w_all = prod(&layers, 6);
    for k in 0..3 {
        let psi: Vec<DMatrix<f64>> = (0..3)
            .map(|l| {
                let below = prod(&layers[..l], 6);
                let above =
                    layers[l + 1..].iter().fold(DMatrix::identity(layers[l].nrows(), layers[l].nrows()), |p, w| w * p);
                above.transpose() * u.column(k) * v.column(k).transpose() * below.transpose()
            })
            .collect();
        let vals: Vec<f64> = (0..ctx.n_probe)
            .map(|i| {
                let x = xs.column(i);
                let r = (&w_all - m) * x - es.column(i);
                (0..3)
                    .map(|l| {
                        let below = prod(&layers[..l], 6);
                        let above = layers[l + 1..]
                            .iter()
                            .fold(DMatrix::identity(layers[l].nrows(), layers[l].nrows()), |p, w| w * p);
                        let grad = above.transpose() * &r * (below * x).transpose();
                        psi[l].dot(&grad)
                    })
                    .sum()
            })
            .collect();
        let mean = vals.iter().sum::<f64>() / vals.len() as f64;
        let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (vals.len() as f64 - 1.0);
        let brute = p.lr / p.batch as f64 * var;
        // Standard error of a sample variance: sqrt((m4 − var²)/n).
        let m4 = vals.iter().map(|v| (v - mean).powi(4)).sum::<f64>() / vals.len() as f64;
        let se = p.lr / p.batch as f64 * ((m4 - var * var) / vals.len() as f64).sqrt();
        assert!(
            (exact.mode_diffusion[k] - brute).abs() <= 5.0 * se,
            "mode {k}: exact {} vs sampled {brute} ± {se}",
            exact.mode_diffusion[k]
        );
        assert!(
            (fast.mode_diffusion[k] - brute).abs() <= 1e-9 * brute,
            "mode {k}: {} vs {brute}",
            fast.mode_diffusion[k]
        );
        let aligned_formula = ModeParams { depth: 3, s: spec.teacher().s()[k], sigma: 0.4, lr: p.lr, batch: 4 }
            .check()
            .unwrap()
            .diffusion(Coordinate::EndToEnd, fast.mode_strength[k].abs());
        assert!((brute - aligned_formula).abs() > 0.05 * brute, "mode {k}: off-regime D should differ from D(m_k)");
    }
}

/// Without label noise every mode converges to its `s_k` (the Dirac law, `docs/theory.md` §5.3):
/// in f32 the loss and the across-seed variance of the modes stall at the rounding floor of the
/// weights, in f64 they go on falling far below it, so a floor seen in f32 is numerical.
#[test]
fn f64_training_pushes_the_rounding_floor_down() {
    let run = |precision| {
        let p = TrainParams {
            lr: 0.02,
            batch: 8,
            seeds: vec![1, 2, 3, 4],
            precision,
            probes: ProbeSchedule { per_decade: 1.0 },
            ..aligned_run(0.0, vec![1.4, 1.1, 0.8], 4000, DataSource::Online)
        };
        let spec = p.check().unwrap();
        let (records, _) = Trainer::new(&spec).unwrap().run_collect().unwrap();
        let last: Vec<&ProbeRecord> = records.iter().filter(|r| r.step == 4000).collect();
        assert_eq!(last.len(), 4);
        let loss = last.iter().map(|r| r.probe.population_loss).fold(0.0, f64::max);
        let var: Vec<f64> = (0..3)
            .map(|k| {
                let m: Vec<f64> = last.iter().map(|r| r.probe.mode_strength[k]).collect();
                let mean = m.iter().sum::<f64>() / 4.0;
                m.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 3.0 / spec.teacher().s()[k].powi(2)
            })
            .collect();
        (loss, var)
    };
    let (loss32, var32) = run(Precision::F32);
    let (loss64, var64) = run(Precision::F64);
    assert!(loss32 > 1e-15, "f32 stalls at its floor: loss {loss32:e}");
    assert!(loss64 < 1e-26, "f64 goes far below: loss {loss64:e}");
    let (max32, max64) = (var32.iter().fold(0.0, |a: f64, &b| a.max(b)), var64.iter().fold(0.0, |a: f64, &b| a.max(b)));
    assert!(max32 > 1e-20, "f32 across-seed variance / s² {var32:?}");
    assert!(max64 < 1e-28, "f64 across-seed variance / s² {var64:?}");
}

/// The model-free estimate from cloned states (`docs/theory.md` §6.7): 4000 clones of the
/// weights take one real SGD step each, and the variance of their mode increments over `η`
/// agrees with the exact-moments `D_k` within five standard errors of a sample variance, on an
/// aligned-balanced state and on a random unaligned one, without and with label noise, on the
/// fused path and on the closed form on tensors. Their mean over `η` is the mode drift within
/// five standard errors of a mean plus 2% (the `O(η)` Itô term the probe leaves out).
#[test]
fn clone_increments_measure_the_mode_diffusion_on_the_network() {
    let aligned = InitScheme::AlignedBalanced { a0: ModeScale::PerMode(vec![1.2, 0.9, 0.5]) };
    let gaussian = InitScheme::Gaussian { std: GaussianStd::Scale(0.5) };
    let n_clones = 4000;
    for (sigma, init, gradient) in [
        (0.0, &aligned, GradientPath::Fused),
        (0.5, &aligned, GradientPath::Fused),
        (0.0, &gaussian, GradientPath::Fused),
        (0.5, &gaussian, GradientPath::Fused),
        (0.5, &gaussian, GradientPath::ClosedForm),
    ] {
        let p = TrainParams {
            init: init.clone(),
            n_clones,
            gradient,
            ..aligned_run(sigma, vec![1.0; 3], 0, DataSource::Online)
        };
        let (records, _) = Trainer::new(&p.check().unwrap()).unwrap().run_collect().unwrap();
        let probe = &records[0].probe;
        let (dc, se) = (probe.diffusion_clones.as_ref().unwrap(), probe.diffusion_clones_se.as_ref().unwrap());
        let drift = probe.drift_clones.as_ref().unwrap();
        for k in 0..3 {
            let (d, case) = (probe.mode_diffusion[k], format!("σ={sigma} {} {gradient} mode {k}", init.name()));
            assert!(se[k] < 0.1 * d, "{case}: the test has power (se {} of D {d})", se[k]);
            assert!((dc[k] - d).abs() <= 5.0 * se[k], "{case}: clones {} vs exact {d} (se {})", dc[k], se[k]);
            let se_mean = (dc[k] * p.lr / n_clones as f64).sqrt() / p.lr;
            let exact = probe.mode_drift[k];
            assert!(
                (drift[k] - exact).abs() <= 5.0 * se_mean + 0.02 * exact.abs(),
                "{case}: clone drift {} vs {exact} (se {se_mean})",
                drift[k]
            );
        }
    }
}

/// Clones of population descent take the same deterministic step: their variance is exactly 0
/// and their mean increment is the drift up to `O(η)`. On a fixed sample of 4096 points the
/// clones draw distinct points of the sample, and the estimate is the exact `D_k` within five
/// standard errors and the sample's own deviation from the population (10%).
#[test]
fn clone_estimate_on_population_descent_and_a_fixed_sample() {
    let p = TrainParams { n_clones: 50, ..aligned_run(0.3, vec![1.2, 0.9, 0.5], 0, DataSource::Population) };
    let (records, _) = Trainer::new(&p.check().unwrap()).unwrap().run_collect().unwrap();
    let probe = &records[0].probe;
    assert_eq!(probe.diffusion_clones, Some(vec![0.0; 3]));
    assert_eq!(probe.diffusion_clones_se, Some(vec![0.0; 3]));
    for (k, (c, exact)) in probe.drift_clones.as_ref().unwrap().iter().zip(&probe.mode_drift).enumerate() {
        assert!((c - exact).abs() <= 1e-2 * exact.abs(), "mode {k}: {c} vs {exact}");
    }
    let fixed = DataSource::fixed(4096, false);
    let p = TrainParams { n_clones: 4000, ..aligned_run(0.5, vec![1.2, 0.9, 0.5], 0, fixed) };
    let (records, _) = Trainer::new(&p.check().unwrap()).unwrap().run_collect().unwrap();
    let probe = &records[0].probe;
    let (dc, se) = (probe.diffusion_clones.as_ref().unwrap(), probe.diffusion_clones_se.as_ref().unwrap());
    for k in 0..3 {
        let d = probe.mode_diffusion[k];
        assert!((dc[k] - d).abs() <= 5.0 * se[k] + 0.1 * d, "fixed sample, mode {k}: {} vs {d} (se {})", dc[k], se[k]);
    }
}
