//! The probes' reductions on the device (the GPU backends): every member's mode matrix, norms,
//! balance terms, `W Wᵀ`, `W V` and the Gram sums of the mode drift and the exact mode
//! diffusion computed by batched tensor products over the members, and read back as one small
//! `[E, K]` tensor (one host synchronisation) instead of the whole weights; the host finishes
//! each [`Probe`] in f64 from those values with the formulas of [`crate::probe::probe`].
//!
//! `K = r² + r·d_L + d_L² + 4r + 2L + 4` values per member (`r` teacher modes, `L` layers,
//! output width `d_L`): the weights themselves (`Σ_l d_l d_{l−1}` values) stay on the device.
//! The reductions run in f32, so a probe agrees with the host's (which multiplies the f32
//! weights in f64) to f32 rounding; the sampled diffusion (`n_probe ≥ 2`) and the clone
//! estimate need the weights on the host and keep the host path.

use burn::tensor::{Device, Tensor, TensorData};
use nalgebra::{DMatrix, DVector};

use crate::DlnError;
use crate::error::Result;
use crate::linalg::frobenius;
use crate::model::push_row_major;
use crate::probe::{Probe, ProbeContext};
use crate::teacher::Teacher;

/// The teacher's constants on the device (batch dimension 1, broadcast over the members).
pub(crate) struct ProbeConstants {
    /// `U` `[1, d_L, r]`.
    u: Tensor<3>,
    /// `V` `[1, d_0, r]`.
    v: Tensor<3>,
    /// `M` `[1, d_L, d_0]`.
    m: Tensor<3>,
    /// `I_r` `[1, r, r]`.
    eye_r: Tensor<3>,
}

impl ProbeConstants {
    /// The constants of `teacher` on `device`.
    pub(crate) fn new(teacher: &Teacher, device: &Device) -> Self {
        let upload = |m: &DMatrix<f64>| {
            let mut buf = Vec::with_capacity(m.len());
            push_row_major(&mut buf, m);
            Tensor::<3>::from_data(TensorData::new(buf, [1, m.nrows(), m.ncols()]), device)
        };
        let r = teacher.rank();
        Self {
            u: upload(teacher.u()),
            v: upload(teacher.v()),
            m: upload(teacher.matrix()),
            eye_r: upload(&DMatrix::identity(r, r)),
        }
    }
}

/// The number of f32 values read back per member for `depth` layers, output width `d_out` and
/// `rank` teacher modes.
pub(crate) fn values_per_member(depth: usize, d_out: usize, rank: usize) -> usize {
    rank * rank + rank * d_out + d_out * d_out + 4 * rank + 2 * depth + 4
}

/// `t` `[E, a, b]` as `[E, a·b]`.
fn rows(t: Tensor<3>) -> Tensor<2> {
    let [e, a, b] = t.dims();
    t.reshape([e, a * b])
}

/// The squared Frobenius norm of each member's matrix, `[E, 1]`.
fn sq_norm(t: Tensor<3>) -> Tensor<2> {
    let e = t.dims()[0];
    t.square().sum_dim(2).sum_dim(1).reshape([e, 1])
}

/// `c` broadcast to `e` members.
fn members(c: &Tensor<3>, e: usize) -> Tensor<3> {
    let [_, a, b] = c.dims();
    c.clone().expand([e, a, b])
}

/// The reductions of every member of the layer tensors `weights` (`[E, d_l, d_{l−1}]` each) as
/// one `[E, K]` tensor on the device (see [`values_per_member`] and [`finish`] for the order).
pub(crate) fn reductions(weights: &[Tensor<3>], c: &ProbeConstants) -> Tensor<2> {
    let depth = weights.len();
    let e = weights[0].dims()[0];
    let (u, v) = (members(&c.u, e), members(&c.v, e));
    let (ut, vt) = (u.clone().swap_dims(1, 2), v.clone().swap_dims(1, 2));
    // Prefix products P_{<l} (None: the identity) and the end-to-end product W.
    let mut prefix: Vec<Option<Tensor<3>>> = Vec::with_capacity(depth);
    let mut p: Option<Tensor<3>> = None;
    for w in weights {
        prefix.push(p.clone());
        p = Some(match p {
            None => w.clone(),
            Some(p) => w.clone().matmul(p),
        });
    }
    let w = p.expect("at least one layer");
    let delta = w.clone() - members(&c.m, e);
    let mm = ut.clone().matmul(w.clone()).matmul(v.clone());
    let diag = mm.clone() * members(&c.eye_r, e);
    let outside = w.clone() - u.clone().matmul(mm.clone()).matmul(vt.clone());
    let full = w.clone() - u.clone().matmul(diag).matmul(vt);
    let gram = |w: &Tensor<3>| w.clone().matmul(w.clone().swap_dims(1, 2));
    let weight_sq = weights.iter().map(|w| sq_norm(w.clone())).reduce(|a, b| a + b).expect("a layer");
    let mut parts =
        vec![rows(mm), weight_sq, sq_norm(w.clone()), sq_norm(delta.clone()), sq_norm(outside), sq_norm(full)];
    for l in 0..depth.saturating_sub(1) {
        let next = &weights[l + 1];
        parts.push(sq_norm(next.clone().swap_dims(1, 2).matmul(next.clone()) - gram(&weights[l])));
    }
    parts.extend(weights.iter().map(|w| sq_norm(gram(w))));
    parts.push(rows(gram(&w)));
    parts.push(rows(w.matmul(v.clone())));

    // α_l = P_{>l} P_{>l}ᵀ U, β_l = P_{<l}ᵀ P_{<l} V, c_l = Δᵀ α_l.
    let mut alpha: Vec<Tensor<3>> = vec![u.clone(); depth];
    let mut s: Option<Tensor<3>> = None;
    for l in (0..depth).rev() {
        if let Some(s) = &s {
            alpha[l] = s.clone().matmul(s.clone().swap_dims(1, 2).matmul(u.clone()));
        }
        s = Some(match s {
            None => weights[l].clone(),
            Some(s) => s.matmul(weights[l].clone()),
        });
    }
    let beta: Vec<Tensor<3>> = prefix
        .into_iter()
        .map(|p| match p {
            None => v.clone(),
            Some(p) => p.clone().swap_dims(1, 2).matmul(p.matmul(v.clone())),
        })
        .collect();
    let cvec: Vec<Tensor<3>> = alpha.iter().map(|a| delta.clone().swap_dims(1, 2).matmul(a.clone())).collect();
    // Stacked per mode: [E, r, L, d].
    let stack = |t: Vec<Tensor<3>>| Tensor::<3>::stack::<4>(t, 1).permute([0, 3, 1, 2]);
    let (a, b, cv) = (stack(alpha), stack(beta), stack(cvec));
    let gram4 = |x: &Tensor<4>, y: &Tensor<4>| x.clone().matmul(y.clone().swap_dims(2, 3));
    let (g_aa, g_bb, g_cc, g_bc) = (gram4(&a, &a), gram4(&b, &b), gram4(&cv, &cv), gram4(&b, &cv));
    let r = g_bb.dims()[1];
    let sum_lm = |t: Tensor<4>| t.sum_dim(3).sum_dim(2).reshape([e, r]);
    let eye_l = Tensor::<2>::eye(depth, &g_bc.device()).reshape([1, 1, depth, depth]).expand([e, r, depth, depth]);
    parts.push(sum_lm(g_bc.clone() * eye_l));
    parts.push(sum_lm(g_cc * g_bb.clone()));
    parts.push(sum_lm(g_bc.clone() * g_bc.swap_dims(2, 3)));
    parts.push(sum_lm(g_aa * g_bb));
    Tensor::cat(parts, 1)
}

/// What the device reports of one member: its probe, or `None` when its weights (their squared
/// norm) or its probe are not finite (the trainer counts it as diverged).
pub(crate) type DeviceProbe = Option<Probe>;

/// The probes of every member of `weights`, from their reductions on the device (one read
/// back of [`values_per_member`] f32 values each).
pub(crate) fn device_probes(
    weights: &[Tensor<3>],
    constants: &ProbeConstants,
    teacher: &Teacher,
    ctx: &ProbeContext,
) -> Result<Vec<DeviceProbe>> {
    if weights.is_empty() || weights[0].dims()[0] == 0 {
        return Ok(Vec::new());
    }
    let t = reductions(weights, constants);
    let [_, k] = t.dims();
    let values: Vec<f32> = t.into_data().try_to_vec::<f32>().map_err(|err| DlnError::Backend {
        backend: format!("{:?}", weights[0].device()),
        reason: format!("reading the probe reductions back failed: {err:?}"),
    })?;
    Ok(values.chunks(k).map(|row| finish(row, weights.len(), teacher, ctx)).collect())
}

/// One member's probe from its reductions `row` (in the order of [`reductions`]), in f64 with
/// the formulas of [`crate::probe::probe`]; `None` when the weights or the probe are not finite.
pub(crate) fn finish(row: &[f32], depth: usize, teacher: &Teacher, ctx: &ProbeContext) -> DeviceProbe {
    let (r, d_out) = (teacher.rank(), teacher.d_out());
    debug_assert_eq!(row.len(), values_per_member(depth, d_out, r));
    let mut at = 0;
    let mut take = |n: usize| -> Vec<f64> {
        let out = row[at..at + n].iter().map(|&v| v as f64).collect();
        at += n;
        out
    };
    let mode_matrix = DMatrix::from_row_slice(r, r, &take(r * r));
    let [weight_sq, w_sq, delta_sq, outside_sq, full_sq] = take(5).try_into().expect("five norms");
    if !weight_sq.is_finite() {
        return None;
    }
    let balance: Vec<f64> = take(depth - 1).iter().map(|v| v.sqrt()).collect();
    let grams: Vec<f64> = take(depth).iter().map(|v| v.sqrt()).collect();
    let wwt = DMatrix::from_row_slice(d_out, d_out, &take(d_out * d_out));
    let wv = DMatrix::from_row_slice(d_out, r, &take(d_out * r));
    let (drift, aa, tr, cc) = (take(r), take(r), take(r), take(r));

    let mode_strength: Vec<f64> = (0..r).map(|k| mode_matrix[(k, k)]).collect();
    let total = frobenius(&mode_matrix);
    let diag_sq: f64 = mode_strength.iter().map(|m| m * m).sum();
    let alignment_error = if total > 0.0 { ((total * total - diag_sq).max(0.0)).sqrt() / total } else { 0.0 };
    let w_norm = w_sq.sqrt();
    let ratio = |x: f64| if w_norm > 0.0 { x / w_norm } else { 0.0 };
    let (singular_values, singular_overlap) = singular_modes(&wwt, &wv, teacher.u(), r);
    let balance_total: f64 = balance.iter().sum();
    let scale: f64 = grams.iter().sum();
    let balance_relative = if depth > 1 && scale > 0.0 { balance_total / scale } else { 0.0 };
    let coef = ctx.lr / ctx.batch as f64;
    let sigma2 = ctx.sigma * ctx.sigma;
    let probe = Probe {
        mode_strength,
        mode_matrix: mode_matrix.transpose().iter().copied().collect(),
        alignment_error,
        alignment_outside: ratio(outside_sq.sqrt()),
        alignment_full: ratio(full_sq.sqrt()),
        singular_values,
        singular_overlap,
        balance,
        balance_total,
        balance_relative,
        population_loss: 0.5 * delta_sq + 0.5 * d_out as f64 * sigma2,
        mode_drift: drift.iter().map(|d| -d).collect(),
        mode_diffusion: (0..r).map(|k| coef * (aa[k] + tr[k] + sigma2 * cc[k])).collect(),
        drift_clones: None,
        diffusion_clones: None,
        diffusion_clones_se: None,
    };
    probe.is_finite().then_some(probe)
}

/// The `r` largest singular values of `W` from `W Wᵀ` and each singular pair's overlap
/// `(u_kᵀ û_k)(v̂_kᵀ v_k)` with `v̂_kᵀ v_k = (ûᵀ W V)_k / σ_k` (the host's `singular_modes`
/// without `W` itself); NaN when `W Wᵀ` is not finite.
fn singular_modes(wwt: &DMatrix<f64>, wv: &DMatrix<f64>, u: &DMatrix<f64>, r: usize) -> (Vec<f64>, Vec<f64>) {
    if !wwt.iter().chain(wv.iter()).all(|x| x.is_finite()) {
        return (vec![f64::NAN; r], vec![f64::NAN; r]);
    }
    // Symmetrised: the f32 product is symmetric only to rounding.
    let eig = ((wwt + wwt.transpose()) * 0.5).symmetric_eigen();
    let mut order: Vec<usize> = (0..eig.eigenvalues.len()).collect();
    order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
    let mut values = Vec::with_capacity(r);
    let mut overlap = Vec::with_capacity(r);
    for &i in order.iter().take(r) {
        let sigma = eig.eigenvalues[i].max(0.0).sqrt();
        let u_hat: DVector<f64> = eig.eigenvectors.column(i).into_owned();
        let k = values.len();
        values.push(sigma);
        overlap.push(if sigma > 0.0 { u.column(k).dot(&u_hat) * u_hat.dot(&wv.column(k)) / sigma } else { 0.0 });
    }
    values.resize(r, 0.0);
    overlap.resize(r, 0.0);
    (values, overlap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BackendKind;
    use crate::model::{host_to_tensors, tensors_to_host};
    use crate::probe::probe;
    use crate::teacher::{SpectrumSpec, TeacherParams};
    use crate::{GaussianStd, InitScheme};

    /// The probes from the device's reductions are the host's probes of the same f32 weights
    /// to f32 rounding, every field, for several members, including a member with an
    /// infinite weight (reported as diverged), at depth 3 with label noise.
    fn same_probes_as_the_host(backend: BackendKind) {
        let device = backend.device();
        let t = TeacherParams { spectrum: SpectrumSpec::List { s: vec![2.0, 1.0, 0.5] }, seed: 4 }.build(5, 4).unwrap();
        let dims = [5, 6, 7, 4];
        let init = InitScheme::Gaussian { std: GaussianStd::Gamma(1.0) };
        let mut members: Vec<Vec<DMatrix<f64>>> = (0..4).map(|s| init.draw(&dims, &t, s, 0).unwrap()).collect();
        members[2][1][(3, 2)] = f64::INFINITY;
        let weights = host_to_tensors(&members, &device).unwrap();
        let host = tensors_to_host(&weights).unwrap();
        let ctx = ProbeContext { sigma: 0.3, lr: 0.05, batch: 4, n_probe: 0 };
        let constants = ProbeConstants::new(&t, &device);
        let got = device_probes(&weights, &constants, &t, &ctx).unwrap();
        assert_eq!(got.len(), 4);
        assert!(got[2].is_none(), "an infinite weight is a divergence");
        let mut rng = modewise_theory::rng::path_rng(0, 0);
        for m in [0, 1, 3] {
            let want = probe(&host[m], &t, &ctx, &mut rng);
            let got = got[m].as_ref().expect("a finite member");
            let close = |name: &str, a: &[f64], b: &[f64], scale: f64| {
                assert_eq!(a.len(), b.len(), "{name}");
                for (x, y) in a.iter().zip(b) {
                    assert!((x - y).abs() <= 1e-4 * scale.max(y.abs()), "member {m} {name}: {a:?} vs {b:?}");
                }
            };
            let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
            close("mode_strength", &got.mode_strength, &want.mode_strength, norm(&want.mode_strength));
            close("mode_matrix", &got.mode_matrix, &want.mode_matrix, norm(&want.mode_matrix));
            for (name, a, b) in [
                ("alignment_error", got.alignment_error, want.alignment_error),
                ("alignment_outside", got.alignment_outside, want.alignment_outside),
                ("alignment_full", got.alignment_full, want.alignment_full),
                ("balance_total", got.balance_total, want.balance_total),
                ("balance_relative", got.balance_relative, want.balance_relative),
                ("population_loss", got.population_loss, want.population_loss),
            ] {
                close(name, &[a], &[b], 1.0);
            }
            close("balance", &got.balance, &want.balance, 1.0);
            close("singular_values", &got.singular_values, &want.singular_values, 1.0);
            close("singular_overlap", &got.singular_overlap, &want.singular_overlap, 1.0);
            close("mode_drift", &got.mode_drift, &want.mode_drift, norm(&want.mode_drift));
            close("mode_diffusion", &got.mode_diffusion, &want.mode_diffusion, norm(&want.mode_diffusion));
            assert!(want.mode_diffusion.iter().all(|&d| d > 0.0) && want.balance_total > 0.0);
        }
    }

    #[test]
    fn device_probes_are_the_host_probes_on_wgpu() {
        same_probes_as_the_host(BackendKind::Wgpu);
    }

    #[test]
    fn device_probes_are_the_host_probes_on_flex() {
        same_probes_as_the_host(BackendKind::Flex);
    }

    #[test]
    fn values_per_member_counts_the_reductions() {
        let device = BackendKind::Flex.device();
        let t = TeacherParams { spectrum: SpectrumSpec::List { s: vec![1.0, 0.5] }, seed: 1 }.build(3, 2).unwrap();
        let members = vec![InitScheme::default().draw(&[3, 4, 2], &t, 0, 0).unwrap()];
        let weights = host_to_tensors(&members, &device).unwrap();
        let dims = reductions(&weights, &ProbeConstants::new(&t, &device)).dims();
        assert_eq!(dims, [1, values_per_member(2, 2, 2)]);
    }
}
