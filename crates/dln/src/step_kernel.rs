//! The fused layer update of the closed-form step on the cubecl backends: one CubeCL kernel
//! launch computes `W_l − δ_l h_{l−1}ᵀ` for every member, where burn's dispatch takes two (a
//! batched product, then a subtraction, each writing a full `[E, d_l, d_{l−1}]` tensor).
//!
//! One unit per weight entry sums its `B` products in batch order; at small batches (W1's 1,
//! W2's 32) that is a handful of operations per unit and the launch is what costs. At large
//! batches a tiled product wins, so the step fuses only up to [`MAX_FUSED_BATCH`].

use burn::backend::Cube;
use burn::tensor::Tensor;
use burn_cubecl::cubecl;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;

/// The largest batch for which the closed-form step fuses its layer updates.
pub(crate) const MAX_FUSED_BATCH: usize = 32;

/// Units per cube of the update kernel.
const CUBE_UNITS: u32 = 256;

/// `out[e, i, j] = w[e, i, j] − Σ_b delta[e, i, b] · h[e, j, b]`, all contiguous row-major.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn update_layer(w: &[f32], delta: &[f32], h: &[f32], out: &mut [f32], entries: u32, rows: u32, cols: u32, batch: u32) {
    let pos = u32::cast_from(ABSOLUTE_POS);
    if pos < entries {
        let per = rows * cols;
        let e = pos / per;
        let ij = pos - e * per;
        let i = ij / cols;
        let j = ij - i * cols;
        let d0 = (e * rows + i) * batch;
        let h0 = (e * cols + j) * batch;
        let mut acc = 0.0f32;
        for b in 0..batch {
            acc += delta[usize::cast_from(d0 + b)] * h[usize::cast_from(h0 + b)];
        }
        out[usize::cast_from(pos)] = w[usize::cast_from(pos)] - acc;
    }
}

/// The cubecl primitive of `t`, contiguous; `None` off the cubecl backends.
fn contiguous(t: Tensor<3>) -> Option<CubeTensor> {
    let t = t.try_into_primitive::<Cube>().ok()?;
    Some(if t.is_contiguous() && t.is_contiguous_buffer() { t } else { burn_cubecl::kernel::into_contiguous(t) })
}

/// `w − delta · hᵀ` per member (`w` `[E, r, c]`, `delta` `[E, r, B]`, `h` `[E, c, B]`) in one
/// kernel launch; `None` when the tensors are not on a cubecl device or their indices would
/// not fit the kernel's `u32` (the caller then takes the product and the subtraction).
pub(crate) fn fused_update(w: &Tensor<3>, delta: &Tensor<3>, h: &Tensor<3>) -> Option<Tensor<3>> {
    let [e, rows, cols] = w.dims();
    let batch = delta.dims()[2];
    let fits = |n: usize, m: usize, k: usize| {
        n.checked_mul(m).and_then(|x| x.checked_mul(k)).is_some_and(|x| x < u32::MAX as usize)
    };
    if !(fits(e, rows, cols) && fits(e, rows, batch) && fits(e, cols, batch)) {
        return None;
    }
    let device = w.device();
    let (wt, dt, ht) = (contiguous(w.clone())?, contiguous(delta.clone())?, contiguous(h.clone())?);
    let out = contiguous(Tensor::<3>::empty([e, rows, cols], &device))?;
    let entries = e * rows * cols;
    let cubes = cubecl::calculate_cube_count_elemwise(&wt.client, entries, CubeDim::new_1d(CUBE_UNITS));
    // SAFETY: the buffers are contiguous and hold `E·r·c`, `E·r·B`, `E·c·B` and `E·r·c`
    // elements; the kernel reads and writes only below those (checked to fit `u32`).
    unsafe {
        update_layer::launch(
            &wt.client,
            cubes,
            CubeDim::new_1d(CUBE_UNITS),
            BufferArg::from_raw_parts(wt.handle.clone(), entries),
            BufferArg::from_raw_parts(dt.handle.clone(), e * rows * batch),
            BufferArg::from_raw_parts(ht.handle.clone(), e * cols * batch),
            BufferArg::from_raw_parts(out.handle.clone(), entries),
            entries as u32,
            rows as u32,
            cols as u32,
            batch as u32,
        );
    }
    Some(Tensor::from_primitive::<Cube>(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BackendKind;
    use crate::model::tensor3_to_host;
    use burn::tensor::Distribution;

    /// On lavapipe the fused update is the product-then-subtraction to f32 rounding, for
    /// several members, non-square layers, batch 1 and 33, with the input given contiguous and
    /// as a transposed (non-contiguous) view; off the cubecl backends it declines.
    #[test]
    fn the_fused_update_is_the_product_then_the_subtraction() {
        let device = BackendKind::Wgpu.device();
        let normal = Distribution::Normal(0.0, 1.0);
        for (e, rows, cols, batch) in [(3, 5, 7, 4), (2, 4, 3, 1), (1, 9, 2, 33)] {
            let w = Tensor::<3>::random([e, rows, cols], normal, &device);
            let delta = Tensor::<3>::random([e, rows, batch], normal, &device);
            let stored = Tensor::<3>::random([e, batch, cols], normal, &device);
            let view = stored.clone().swap_dims(1, 2);
            let h = Tensor::<3>::from_data(view.to_data(), &device);
            let reference = tensor3_to_host(&(w.clone() - delta.clone().matmul(stored))).unwrap();
            for input in [h, view] {
                let fused = tensor3_to_host(&fused_update(&w, &delta, &input).expect("a cubecl device")).unwrap();
                for (x, y) in fused.iter().zip(&reference) {
                    let d = (x - y).amax();
                    assert!(d <= 1e-6 * (1.0 + y.amax()) * batch as f64, "[{e}, {rows}, {cols}] batch {batch}: {d}");
                }
            }
        }
        let flex = BackendKind::Flex.device();
        let zeros = Tensor::<3>::zeros([1, 1, 1], &flex);
        assert!(fused_update(&zeros, &zeros, &zeros).is_none());
    }
}
