//! Monte Carlo ground truth for the per-mode reduction (`docs/theory.md` §3): the projected
//! gradient of a full matrix model, and the one-step increments of the exact chain.

use modewise_theory::{Coordinate, Dynamics, EnsembleParams, ModeParams, TimeGrid};
use nalgebra::{DMatrix, DVector};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

fn gaussian_matrix(rng: &mut ChaCha8Rng, d: usize) -> DMatrix<f64> {
    DMatrix::from_fn(d, d, |_, _| StandardNormal.sample(rng))
}

/// `g_k = u_kᵀ G v_k` with `G = (W x − y) xᵀ` computed on the full `d × d` model, against
/// `E g_k = w_k − s_k`, `Var g_k = 2 (s_k − w_k)² + σ²` and zero cross-mode covariance.
#[test]
fn projected_gradient_moments_match_full_model() {
    let d = 6;
    let s = [3.0, 2.0, 1.0, 0.5];
    let w = [1.0, 0.2, 0.05, 0.01];
    let sigma = 0.7;
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let u = gaussian_matrix(&mut rng, d).qr().q();
    let v = gaussian_matrix(&mut rng, d).qr().q();
    let mut sd = DVector::zeros(d);
    let mut wd = DVector::zeros(d);
    for k in 0..4 {
        sd[k] = s[k];
        wd[k] = w[k];
    }
    let teacher = &u * DMatrix::from_diagonal(&sd) * v.transpose();
    let student = &u * DMatrix::from_diagonal(&wd) * v.transpose();
    let n = 400_000;
    let mut sum = [0.0; 4];
    let mut sum2 = [0.0; 4];
    let mut cross = 0.0;
    for _ in 0..n {
        let x = DVector::from_fn(d, |_, _| StandardNormal.sample(&mut rng));
        let eps = DVector::from_fn(d, |_, _| {
            sigma * <StandardNormal as Distribution<f64>>::sample(&StandardNormal, &mut rng)
        });
        let y = &teacher * &x + eps;
        let residual = &student * &x - y;
        let g: Vec<f64> = (0..4).map(|k| u.column(k).dot(&residual) * x.dot(&v.column(k))).collect();
        for k in 0..4 {
            sum[k] += g[k];
            sum2[k] += g[k] * g[k];
        }
        cross += g[0] * g[1];
    }
    let nf = n as f64;
    for k in 0..4 {
        let m = ModeParams { depth: 2, s: s[k], sigma, ..ModeParams::default() }.check().unwrap();
        let (mean, var) = m.projected_gradient_moments(w[k]);
        let mc_mean = sum[k] / nf;
        let mc_var = sum2[k] / nf - mc_mean * mc_mean;
        assert!((mc_mean - mean).abs() < 0.03 * mean.abs(), "mode {k}: mean {mc_mean} vs {mean}");
        assert!((mc_var - var).abs() < 0.03 * var, "mode {k}: variance {mc_var} vs {var}");
    }
    let cov01 = cross / nf - (sum[0] / nf) * (sum[1] / nf);
    assert!(cov01.abs() < 0.05, "cross-mode covariance {cov01}");
}

/// One step of the exact chain from `a`: `E Δa / η` is the per-layer drift and
/// `Var Δa / η` the per-layer diffusion `D_a`; in `w`, `Var Δw / η → D(w)`.
#[test]
fn chain_increments_give_drift_and_diffusion() {
    for (depth, batch, w0) in [(2u32, 1u32, 0.4), (3, 4, 0.8), (4, 2, 1.6)] {
        let m = ModeParams { depth, s: 2.0, sigma: 0.6, lr: 1e-4, batch }.check().unwrap();
        let eta = m.lr();
        let grid = TimeGrid::from_times(vec![0.0, eta]).unwrap();
        let params = EnsembleParams::new(200_000, 11, grid);
        let stats = m.ensemble(w0, Dynamics::Chain, &params).unwrap();
        assert_eq!(stats.steps, vec![0, 1]);
        let a0 = m.a_from_w(w0);
        let da: Vec<f64> = stats.final_w.iter().map(|&w| m.a_from_w(w) - a0).collect();
        let n = da.len() as f64;
        let mean = da.iter().sum::<f64>() / n;
        let var = da.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
        let drift = m.drift(Coordinate::PerLayer, a0);
        let diff_a = m.diffusion(Coordinate::PerLayer, a0);
        let se = (var / n).sqrt();
        assert!((mean / eta - drift).abs() < 4.0 * se / eta, "L={depth}: drift {} vs {drift}", mean / eta);
        assert!((var / eta - diff_a).abs() < 0.03 * diff_a, "L={depth}: D_a {} vs {diff_a}", var / eta);
        let var_w = stats.variance[1];
        let diff_w = m.diffusion(Coordinate::EndToEnd, w0);
        assert!((var_w / eta - diff_w).abs() < 0.03 * diff_w, "L={depth}: D {} vs {diff_w}", var_w / eta);
    }
}
