//! Probes (f64, on the host): mode strengths and matrix, alignment, balance, population loss,
//! mode drift and mode diffusion, and the model-free estimate from cloned one-step increments
//! (`docs/theory.md` §6). On the GPU backends the trainer computes the same probes from
//! reductions on the device (the mode matrix, norms, `W Wᵀ`, `W V`, Gram sums), finished in f64
//! on the host with the formulas of [`probe()`].

use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};

use crate::data::probe_sample;
use crate::linalg::{chain_product, frobenius};
use crate::teacher::Teacher;
use modewise_theory::ensemble::PathRng;

/// The SGD constants the probes need.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProbeContext {
    /// Label-noise standard deviation `σ`.
    pub sigma: f64,
    /// Learning rate `η`.
    pub lr: f64,
    /// Batch size `B`.
    pub batch: usize,
    /// How the mode diffusion is computed: 0, exactly from the Gaussian moments of the data
    /// (see [`probe`]); `n ≥ 2`, as the sample variance over `n` fresh samples (the Monte Carlo
    /// reference the exact form is tested against).
    pub n_probe: usize,
}

/// Everything measured on one member at one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    /// Mode strengths `m_k = u_kᵀ W v_k`, one per teacher mode.
    pub mode_strength: Vec<f64>,
    /// The mode matrix `Uᵀ W V` (`r × r`), row-major: entry `(j, k)` is `u_jᵀ W v_k`.
    pub mode_matrix: Vec<f64>,
    /// `‖offdiag(Uᵀ W V)‖_F / ‖Uᵀ W V‖_F` (0 when the mode matrix vanishes): the in-block
    /// alignment error, blind to the part of `W` outside the teacher's singular block.
    pub alignment_error: f64,
    /// `‖W − P_U W P_V‖_F / ‖W‖_F` (0 when `W` vanishes), `P_U = UUᵀ`, `P_V = VVᵀ`: the mass of
    /// `W` outside the teacher's singular block (`docs/theory.md` §7.4).
    #[serde(default)]
    pub alignment_outside: f64,
    /// `‖W − U diag(m) Vᵀ‖_F / ‖W‖_F` (0 when `W` vanishes): the full alignment error, every
    /// part of `W` that is not a teacher mode's own diagonal entry (in-block off-diagonal and
    /// outside the block); the misalignment dose of a `misaligned` start with `dose` set is its
    /// initial value (`docs/theory.md` §7.4).
    #[serde(default)]
    pub alignment_full: f64,
    /// The network's own `r` largest singular values `σ_k(W)`, descending: a mode coordinate
    /// that needs no teacher basis.
    #[serde(default)]
    pub singular_values: Vec<f64>,
    /// `(u_kᵀ û_k)(v̂_kᵀ v_k)` for the network's `k`-th singular pair `(û_k, v̂_k)`: 1 when the
    /// network's mode `k` lies on the teacher's, negative when it is reversed (the product does
    /// not depend on the pair's joint sign).
    #[serde(default)]
    pub singular_overlap: Vec<f64>,
    /// `‖W_{l+1}ᵀ W_{l+1} − W_l W_lᵀ‖_F` for each adjacent pair `l = 1, …, L − 1`.
    pub balance: Vec<f64>,
    /// The sum of [`balance`](Self::balance) (`docs/theory.md` §6.2).
    pub balance_total: f64,
    /// [`balance_total`](Self::balance_total) divided by `Σ_l ‖W_l W_lᵀ‖_F` (0 for `L = 1`).
    pub balance_relative: f64,
    /// Population loss `½‖W − M‖²_F + ½ d_L σ²`.
    pub population_loss: f64,
    /// Mode drift `−ψ_kᵀ ∇ℒ`, `ψ_k = ∇_θ m_k` (exact, no sampling).
    pub mode_drift: Vec<f64>,
    /// Mode diffusion `D_k = (η/B) Var[ψ_kᵀ ∇_θ ℓ]`: exact, or from `n_probe` fresh samples.
    pub mode_diffusion: Vec<f64>,
    /// The model-free mode drift `mean_c(Δm_k)/η` over the one-step increments of `n_clones`
    /// clones of the weights ([`CloneEstimate`]); `None` without clones.
    pub drift_clones: Option<Vec<f64>>,
    /// The model-free mode diffusion `Var_c(Δm_k)/η` (unbiased over the clones), which is
    /// [`mode_diffusion`](Self::mode_diffusion) up to `O(η)` relative; `None` without clones.
    pub diffusion_clones: Option<Vec<f64>>,
    /// The standard error of [`diffusion_clones`](Self::diffusion_clones), estimated from the
    /// increments' fourth central moment; `None` without clones.
    pub diffusion_clones_se: Option<Vec<f64>>,
}

impl Probe {
    /// Whether every value is finite. The f64 probes can overflow while the f32 weights are
    /// still finite (deep networks, large weights); the trainer counts a probe that is not
    /// finite as the member's divergence and never hands it out.
    pub fn is_finite(&self) -> bool {
        let scalars = [
            self.alignment_error,
            self.alignment_outside,
            self.alignment_full,
            self.balance_total,
            self.balance_relative,
            self.population_loss,
        ];
        let vectors = [
            &self.mode_strength,
            &self.mode_matrix,
            &self.singular_values,
            &self.singular_overlap,
            &self.balance,
            &self.mode_drift,
            &self.mode_diffusion,
        ];
        let clones = [&self.drift_clones, &self.diffusion_clones, &self.diffusion_clones_se];
        scalars
            .iter()
            .chain(vectors.into_iter().flatten())
            .chain(clones.into_iter().flatten().flatten())
            .all(|v| v.is_finite())
    }

    /// Sets the clone fields from a clone estimate.
    pub(crate) fn set_clones(&mut self, estimate: CloneEstimate) {
        self.drift_clones = Some(estimate.drift);
        self.diffusion_clones = Some(estimate.diffusion);
        self.diffusion_clones_se = Some(estimate.diffusion_se);
    }
}

/// A model-free estimate of each mode's drift and diffusion from cloned states
/// (`docs/theory.md` §6.7): `C` clones of one member's weights take one real SGD step each, on
/// independent fresh batches, and `Δm_k` is each clone's change of mode strength.
///
/// Since `Δm_k = −η ψ_kᵀ ĝ + O(η²)`, `Var_c(Δm_k)/η = (η/B) Var[ψ_kᵀ ∇ℓ] + O(η²)`: the
/// exact-moments `D_k` up to `O(η)` relative, measured on the network without the probe's
/// formula. Likewise `mean_c(Δm_k)/η` is the mode drift `−ψ_kᵀ∇ℒ` plus the `O(η)` Itô term.
#[derive(Debug, Clone, PartialEq)]
pub struct CloneEstimate {
    /// `mean_c(Δm_k)/η`, per mode.
    pub drift: Vec<f64>,
    /// `Var_c(Δm_k)/η` (the unbiased sample variance over the clones), per mode.
    pub diffusion: Vec<f64>,
    /// The standard error of `diffusion`: `sqrt(max(0, μ̂₄ − μ̂₂² (C − 3)/(C − 1)) / C) / η`,
    /// with `μ̂₂`, `μ̂₄` the clones' second and fourth central moments.
    pub diffusion_se: Vec<f64>,
}

impl CloneEstimate {
    /// The estimate from a member's layers `before` and its clones' layers `after` one step
    /// (`after[c]` for clone `c`, at least two clones), at learning rate `lr`; all in f64.
    pub fn new(before: &[DMatrix<f64>], after: &[Vec<DMatrix<f64>>], teacher: &Teacher, lr: f64) -> Self {
        let (u, v) = (teacher.u(), teacher.v());
        let strengths = |layers: &[DMatrix<f64>]| -> Vec<f64> {
            let w = chain_product(layers);
            (0..teacher.rank()).map(|k| u.column(k).dot(&(&w * v.column(k)))).collect()
        };
        let m0 = strengths(before);
        let increments: Vec<Vec<f64>> =
            after.iter().map(|layers| strengths(layers).iter().zip(&m0).map(|(m, m0)| m - m0).collect()).collect();
        let c = after.len() as f64;
        let (mut drift, mut diffusion, mut diffusion_se) = (Vec::new(), Vec::new(), Vec::new());
        for k in 0..teacher.rank() {
            // Shifted by the first clone's increment: identical increments (population
            // descent) give a variance of exactly 0, and the sums lose no digits to the mean.
            let shift = increments[0][k];
            let mean = increments.iter().map(|d| d[k] - shift).sum::<f64>() / c;
            let (m2, m4) = increments.iter().fold((0.0, 0.0), |(m2, m4), d| {
                let e2 = (d[k] - shift - mean).powi(2);
                (m2 + e2 / c, m4 + e2 * e2 / c)
            });
            drift.push((shift + mean) / lr);
            diffusion.push(m2 * c / (c - 1.0) / lr);
            diffusion_se.push(((m4 - m2 * m2 * (c - 3.0) / (c - 1.0)).max(0.0) / c).sqrt() / lr);
        }
        Self { drift, diffusion, diffusion_se }
    }
}

/// The `r` largest singular values of `w` and each singular pair's overlap `(u_kᵀ û_k)(v̂_kᵀ v_k)`
/// with the teacher's; NaN when `w` is not finite (a diverged member, which the trainer then
/// drops).
fn singular_modes(w: &DMatrix<f64>, u: &DMatrix<f64>, v: &DMatrix<f64>, r: usize) -> (Vec<f64>, Vec<f64>) {
    let nan = || (vec![f64::NAN; r], vec![f64::NAN; r]);
    if !w.iter().all(|x| x.is_finite()) {
        return nan();
    }
    // From the symmetric eigenproblem of W Wᵀ (robust for the rank-deficient W of small
    // starts): σ_i = √λ_i, û_i its eigenvectors, v̂_i = Wᵀ û_i / σ_i.
    let eig = (w * w.transpose()).symmetric_eigen();
    let mut order: Vec<usize> = (0..eig.eigenvalues.len()).collect();
    order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
    let kept = r.min(order.len());
    let mut values = Vec::with_capacity(r);
    let mut overlap = Vec::with_capacity(r);
    for &i in order.iter().take(kept) {
        let sigma = eig.eigenvalues[i].max(0.0).sqrt();
        let u_hat = eig.eigenvectors.column(i);
        let v_hat = w.tr_mul(&u_hat);
        values.push(sigma);
        overlap.push(if sigma > 0.0 {
            u.column(values.len() - 1).dot(&u_hat) * v_hat.dot(&v.column(values.len() - 1)) / sigma
        } else {
            0.0
        });
    }
    values.resize(r, 0.0);
    overlap.resize(r, 0.0);
    (values, overlap)
}

/// Measures one member whose layers are `[W_1, …, W_L]`; `rng` draws the diffusion samples
/// (only when `ctx.n_probe ≥ 2`).
///
/// The exact mode diffusion: per sample `ψ_kᵀ ∇_θ ℓ = Σ_l (a_lᵀ r)(b_lᵀ x)` with
/// `a_l = P_{>l} P_{>l}ᵀ u_k`, `b_l = P_{<l}ᵀ P_{<l} v_k`, `r = Δ x − ε`, `Δ = W − M`. That is
/// `xᵀ A x − εᵀ C x` with `C = Σ_l a_l b_lᵀ` and `A = Δᵀ C`; for `x ~ N(0, I)` and
/// `ε ~ N(0, σ² I)` independent, `Var = 2‖(A + Aᵀ)/2‖²_F + σ² ‖C‖²_F
/// = ‖A‖²_F + tr(A²) + σ² ‖C‖²_F`, evaluated through the `L × L` Gram matrices of the
/// vectors `a_l`, `b_l` and `c_l = Δᵀ a_l`. Under alignment and balance it is `D(w_k)` of the
/// `docs/theory.md` §3.5 exactly.
pub fn probe(layers: &[DMatrix<f64>], teacher: &Teacher, ctx: &ProbeContext, rng: &mut PathRng) -> Probe {
    let depth = layers.len();
    let w = chain_product(layers);
    let delta = &w - teacher.matrix();
    let (u, v) = (teacher.u(), teacher.v());
    let r = teacher.rank();

    let mode_matrix = u.transpose() * &w * v;
    let mode_strength: Vec<f64> = (0..r).map(|k| mode_matrix[(k, k)]).collect();
    let total = frobenius(&mode_matrix);
    let diag_sq: f64 = mode_strength.iter().map(|m| m * m).sum();
    let alignment_error = if total > 0.0 { ((total * total - diag_sq).max(0.0)).sqrt() / total } else { 0.0 };
    let w_norm = frobenius(&w);
    let ratio = |x: f64| if w_norm > 0.0 { x / w_norm } else { 0.0 };
    let alignment_outside = ratio(frobenius(&(&w - u * &mode_matrix * v.transpose())));
    let diagonal = DMatrix::from_diagonal(&nalgebra::DVector::from_column_slice(&mode_strength));
    let alignment_full = ratio(frobenius(&(&w - u * diagonal * v.transpose())));
    let (singular_values, singular_overlap) = singular_modes(&w, u, v, r);

    let balance: Vec<f64> = (0..depth.saturating_sub(1))
        .map(|l| frobenius(&(layers[l + 1].transpose() * &layers[l + 1] - &layers[l] * layers[l].transpose())))
        .collect();
    let balance_total: f64 = balance.iter().sum();
    let scale: f64 = layers.iter().map(|w| frobenius(&(w * w.transpose()))).sum();
    let balance_relative = if depth > 1 && scale > 0.0 { balance_total / scale } else { 0.0 };

    let d_out = teacher.d_out();
    let population_loss = 0.5 * delta.norm_squared() + 0.5 * d_out as f64 * ctx.sigma * ctx.sigma;

    // α_l = P_{>l} P_{>l}ᵀ U (d_L × r) and β_l = P_{<l}ᵀ P_{<l} V (d_0 × r), l = 1..L.
    let mut prefix = Vec::with_capacity(depth); // P_{<l}, starting with I_{d_0}
    let mut p = DMatrix::<f64>::identity(teacher.d_in(), teacher.d_in());
    for wl in layers {
        prefix.push(p.clone());
        p = wl * p;
    }
    let mut suffix = vec![DMatrix::<f64>::zeros(0, 0); depth]; // P_{>l}, ending with I_{d_L}
    let mut s = DMatrix::<f64>::identity(d_out, d_out);
    for l in (0..depth).rev() {
        suffix[l] = s.clone();
        s = &s * &layers[l];
    }
    let alpha: Vec<DMatrix<f64>> = suffix.iter().map(|p| p * (p.transpose() * u)).collect();
    let beta: Vec<DMatrix<f64>> = prefix.iter().map(|p| p.transpose() * (p * v)).collect();

    let mode_drift: Vec<f64> = (0..r)
        .map(|k| {
            -(0..depth).map(|l| (alpha[l].column(k).transpose() * &delta * beta[l].column(k))[(0, 0)]).sum::<f64>()
        })
        .collect();

    let coef = ctx.lr / ctx.batch as f64;
    let mode_diffusion = if ctx.n_probe < 2 {
        (0..r)
            .map(|k| {
                let a: Vec<_> = alpha.iter().map(|al| al.column(k)).collect();
                let b: Vec<_> = beta.iter().map(|bl| bl.column(k)).collect();
                let c: Vec<_> = a.iter().map(|al| delta.tr_mul(al)).collect();
                let (mut cc, mut aa, mut tr) = (0.0, 0.0, 0.0);
                for l in 0..depth {
                    for m in 0..depth {
                        let bb = b[l].dot(&b[m]);
                        cc += a[l].dot(&a[m]) * bb;
                        aa += c[l].dot(&c[m]) * bb;
                        tr += b[l].dot(&c[m]) * b[m].dot(&c[l]);
                    }
                }
                coef * (aa + tr + ctx.sigma * ctx.sigma * cc)
            })
            .collect()
    } else {
        let n = ctx.n_probe;
        let (x, eps) = probe_sample(rng, n, teacher.d_in(), d_out, ctx.sigma);
        let resid = &delta * &x - eps;
        let mut vals = DMatrix::<f64>::zeros(r, n);
        for l in 0..depth {
            vals += (alpha[l].transpose() * &resid).component_mul(&(beta[l].transpose() * &x));
        }
        vals.row_iter()
            .map(|row| {
                let mean = row.mean();
                let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n as f64 - 1.0);
                coef * var
            })
            .collect()
    };

    Probe {
        mode_strength,
        mode_matrix: mode_matrix.transpose().iter().copied().collect(),
        alignment_error,
        alignment_outside,
        alignment_full,
        singular_values,
        singular_overlap,
        balance,
        balance_total,
        balance_relative,
        population_loss,
        mode_drift,
        mode_diffusion,
        drift_clones: None,
        diffusion_clones: None,
        diffusion_clones_se: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::{InitScheme, ModeScale, Tilt};
    use crate::teacher::{SpectrumSpec, TeacherParams};

    fn ctx() -> ProbeContext {
        ProbeContext { sigma: 0.0, lr: 0.01, batch: 4, n_probe: 0 }
    }

    /// The full-block metrics and the network's singular modes: on the aligned form `σ_k(W)`
    /// is `m_k` with overlap 1 and every alignment error vanishes; a dose-`d` start of odd rank
    /// has full alignment error `d`, mass outside the block (its last mode's, `d/√3` of the
    /// whole with equal modes), and the in-block error misses that part.
    #[test]
    fn full_block_alignment_and_singular_modes() {
        let t = TeacherParams { spectrum: SpectrumSpec::List { s: vec![3.0, 2.0, 1.0] }, seed: 2 }.build(6, 5).unwrap();
        let dims = [6, 7, 5];
        let mut rng = modewise_theory::rng::path_rng(0, 0);
        let aligned = InitScheme::AlignedBalanced { a0: ModeScale::PerMode(vec![0.9, 0.6, 0.3]) };
        let p = probe(&aligned.draw(&dims, &t, 1, 0).unwrap(), &t, &ctx(), &mut rng);
        for k in 0..3 {
            assert!((p.singular_values[k] - p.mode_strength[k]).abs() < 1e-12, "{:?}", p.singular_values);
            assert!((p.singular_overlap[k] - 1.0).abs() < 1e-9, "{:?}", p.singular_overlap);
        }
        assert!(p.alignment_full < 1e-12 && p.alignment_outside < 1e-12 && p.alignment_error < 1e-12);
        let dose = 0.6;
        let tilted = InitScheme::Misaligned { a0: ModeScale::Scalar(0.8), tilt: Tilt::Dose(dose) };
        let p = probe(&tilted.draw(&dims, &t, 1, 0).unwrap(), &t, &ctx(), &mut rng);
        assert!((p.alignment_full - dose).abs() < 1e-12, "{}", p.alignment_full);
        // Only the lone last mode leaves the block: its part a²u'v'ᵀ has a⁴(1 − cos⁴θ') = a⁴d²
        // outside P_U·P_V, of ‖W‖² = 3a⁴.
        let outside = dose / 3f64.sqrt();
        assert!((p.alignment_outside - outside).abs() < 1e-12, "{} vs {outside}", p.alignment_outside);
        assert!(p.alignment_error < p.alignment_full, "the in-block error misses the mass outside");
        for k in 0..3 {
            assert!((p.singular_values[k] - 0.64).abs() < 1e-9, "{:?}", p.singular_values);
        }
    }
}
