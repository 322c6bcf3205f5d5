//! Device-resident training data on the cubecl backends (wgpu, and cuda where built): the
//! counter-based Philox batches of every member drawn by one CubeCL kernel launch on the device,
//! the same stream as the CPU's (`modewise_theory::rng::philox`).
//!
//! The kernel reproduces the CPU algorithm operation by operation (Philox4x32-10 on `u32`, the
//! Box–Muller transform with the same f32 polynomials, bit operations and constants); whether
//! the device's shader compiler keeps every f32 operation separately rounded (no fused
//! multiply-add contraction) decides whether the bits match. The tests check it on the device
//! they run on (Mesa's lavapipe in CI).

use burn::backend::Cube;
use burn::tensor::{Device, Tensor};
use burn_cubecl::cubecl;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;
use modewise_theory::rng::Stream;
use modewise_theory::rng::philox::Philox;

/// Units per cube of the batch kernel.
const CUBE_UNITS: u32 = 128;

/// `ln u` for `u` in `[2⁻²⁴, 1]`: the CPU's `philox::ln`, operation by operation (the kernel
/// language takes literals: `1.414_213_5` is `f32::consts::SQRT_2`, the CPU's threshold).
#[cube]
#[allow(clippy::approx_constant)]
fn ln_unit(u: f32) -> f32 {
    let bits = u32::reinterpret(u);
    let mut e = i32::cast_from(bits >> 23u32) - 127i32;
    let mut m = f32::reinterpret((bits & 0x007F_FFFFu32) | 0x3F80_0000u32);
    if m > 1.414_213_5f32 {
        m *= 0.5f32;
        e += 1i32;
    }
    let x = m - 1.0f32;
    let z = x * x;
    let mut y = 0.070_376_836f32;
    y = y * x - 0.115_146_1f32;
    y = y * x + 0.116_769_99f32;
    y = y * x - 0.124_201_41f32;
    y = y * x + 0.142_493_23f32;
    y = y * x - 0.166_680_58f32;
    y = y * x + 0.200_007_15f32;
    y = y * x - 0.249_999_94f32;
    y = y * x + 0.333_333_3f32;
    y = y * x * z;
    let ef = f32::cast_from(e);
    y += -0.000_212_194_44f32 * ef;
    y += -0.5f32 * z;
    (x + y) + 0.693_359_4f32 * ef
}

/// `sin(πf/2)` for `|f| ≤ ½` (the CPU's `sin_cos_quarter`, first half).
#[cube]
fn sin_quarter(f: f32) -> f32 {
    let f2 = f * f;
    f * (1.570_796_4f32
        + f2 * (-0.645_964_1f32 + f2 * (0.079_692_624f32 + f2 * (-0.004_681_754f32 + f2 * 0.000_160_441_18f32))))
}

/// `cos(πf/2)` for `|f| ≤ ½` (the CPU's `sin_cos_quarter`, second half).
#[cube]
fn cos_quarter(f: f32) -> f32 {
    let f2 = f * f;
    1.0f32
        + f2 * (-1.233_700_5f32
            + f2 * (0.253_669_5f32 + f2 * (-0.020_863_48f32 + f2 * (0.000_919_260_26f32 + f2 * -0.000_025_202_042f32))))
}

/// Writes the Box–Muller pair of the words `(a, b)` times `scale` at `out[at]`, `out[at + 1]`
/// (each only below `end`): the CPU's `philox::box_muller`.
#[cube]
fn write_pair(out: &mut [f32], at: usize, end: usize, a: u32, b: u32, scale: f32) {
    let u = f32::cast_from((a >> 8u32) + 1u32) * 0.000_000_059_604_645f32;
    let r = (-2.0f32 * ln_unit(u)).sqrt();
    let k = b >> 8u32;
    let q = (k + 2_097_152u32) >> 22u32;
    let f = f32::cast_from(i32::cast_from(k) - i32::cast_from(q << 22u32)) * 0.000_000_238_418_58f32;
    let s = sin_quarter(f);
    let c = cos_quarter(f);
    let mut cos = c;
    let mut sin = s;
    if (q & 1u32) == 1u32 {
        cos = s;
        sin = c;
    }
    let cos = f32::reinterpret(u32::reinterpret(cos) ^ (((q + 1u32) & 2u32) << 30u32));
    let sin = f32::reinterpret(u32::reinterpret(sin) ^ ((q & 2u32) << 30u32));
    if at < end {
        out[at] = (r * cos) * scale;
    }
    if at + 1 < end {
        out[at + 1] = (r * sin) * scale;
    }
}

/// One unit per Philox block (4 normals) of one member's part: units `0 … bx − 1` of a member
/// write its inputs `x` (part 0, `nx` elements), units `bx … bx + bz − 1` its label noise `z`
/// (part 1, `nz` elements, times `sigma`). Member `e`'s key is `keys[2e], keys[2e + 1]`; the
/// counter is `(block, part, draw_lo, draw_hi)`.
#[cube(launch)]
#[allow(clippy::too_many_arguments, clippy::manual_div_ceil)]
fn philox_batches(
    keys: &[u32],
    x: &mut [f32],
    z: &mut [f32],
    members: u32,
    nx: u32,
    nz: u32,
    draw_lo: u32,
    draw_hi: u32,
    sigma: f32,
) {
    let bx = (nx + 3u32) / 4u32;
    let bz = (nz + 3u32) / 4u32;
    let per_member = bx + bz;
    let pos = u32::cast_from(ABSOLUTE_POS);
    let member = pos / per_member;
    if member < members {
        let unit = pos - member * per_member;
        let mut block = unit;
        let mut part = 0u32;
        if unit >= bx {
            block = unit - bx;
            part = 1u32;
        }
        let mut k0 = keys[usize::cast_from(2u32 * member)];
        let mut k1 = keys[usize::cast_from(2u32 * member + 1u32)];
        let mut c0 = block;
        let mut c1 = part;
        let mut c2 = draw_lo;
        let mut c3 = draw_hi;
        #[unroll]
        for round in 0..10u32 {
            if round > 0 {
                k0 += 0x9E37_79B9u32;
                k1 += 0xBB67_AE85u32;
            }
            let hi0 = c0.mul_hi(0xD251_1F53u32);
            let lo0 = c0 * 0xD251_1F53u32;
            let hi1 = c2.mul_hi(0xCD9E_8D57u32);
            let lo1 = c2 * 0xCD9E_8D57u32;
            let n0 = hi1 ^ c1 ^ k0;
            let n2 = hi0 ^ c3 ^ k1;
            c0 = n0;
            c1 = lo1;
            c2 = n2;
            c3 = lo0;
        }
        if part == 0u32 {
            let base = usize::cast_from(member * nx + 4u32 * block);
            let end = usize::cast_from(member * nx + nx);
            write_pair(x, base, end, c0, c1, 1.0f32);
            write_pair(x, base + 2, end, c2, c3, 1.0f32);
        } else {
            let base = usize::cast_from(member * nz + 4u32 * block);
            let end = usize::cast_from(member * nz + nz);
            write_pair(z, base, end, c0, c1, sigma);
            write_pair(z, base + 2, end, c2, c3, sigma);
        }
    }
}

/// The online Philox batches of a run's members, drawn on a cubecl device: the members' keys in
/// device memory and the number of the next batch.
pub(crate) struct DeviceBatches {
    /// The members' Philox keys (two words each), in engine order, on the host.
    keys: Vec<u32>,
    /// The same keys in device memory.
    on_device: cubecl::server::Handle,
    client: cubecl::client::Client,
    /// The number of the next batch (the same for every member: they step together).
    next: u64,
    sigma: f32,
}

impl DeviceBatches {
    /// The batches of the members with these seeds in data namespace `namespace` (label noise
    /// `sigma`), from batch 0, on `device`; `None` when the device is not a cubecl device.
    pub(crate) fn new(seeds: &[u64], namespace: u64, sigma: f64, device: &Device) -> Option<Self> {
        let probe = Tensor::<1>::zeros([1], device).try_into_primitive::<Cube>().ok()?;
        let keys: Vec<u32> = seeds.iter().flat_map(|&s| Philox::of(s, Stream::Batches { namespace }).key()).collect();
        let client = probe.client.clone();
        let on_device = upload(&client, &keys);
        Some(Self { keys, on_device, client, next: 0, sigma: sigma as f32 })
    }

    /// Draws the next batch in one kernel launch: inputs `[E, d_in, B]` and, with label noise,
    /// the noise `[E, d_out, B]` (times σ; `None` without noise).
    pub(crate) fn next(
        &mut self,
        d_in: usize,
        d_out: usize,
        batch: usize,
        device: &Device,
    ) -> (Tensor<3>, Option<Tensor<3>>) {
        let e = self.keys.len() / 2;
        let noisy = self.sigma > 0.0;
        let (nx, nz) = (d_in * batch, if noisy { d_out * batch } else { 0 });
        let x = cube(Tensor::<3>::empty([e, d_in, batch], device));
        // Without noise the kernel writes no noise: a one-element placeholder binds the slot.
        let z = cube(if noisy {
            Tensor::<3>::empty([e, d_out, batch], device)
        } else {
            Tensor::<3>::empty([1, 1, 1], device)
        });
        let units = e * (nx.div_ceil(4) + nz.div_ceil(4));
        // Spread over two or three dimensions past the device's cubes per dimension (65 535 on
        // most): W3 × 4096 takes a million cubes. The kernel's `ABSOLUTE_POS` is the linear
        // unit index either way, and units past the last member write nothing.
        let cubes = cubecl::calculate_cube_count_elemwise(&self.client, units, CubeDim::new_1d(CUBE_UNITS));
        let draw = self.next;
        // SAFETY: the buffers hold `2E`, `E·nx` and `max(E·nz, 1)` elements; the kernel reads
        // and writes only below those.
        unsafe {
            philox_batches::launch(
                &self.client,
                cubes,
                CubeDim::new_1d(CUBE_UNITS),
                BufferArg::from_raw_parts(self.on_device.clone(), self.keys.len()),
                BufferArg::from_raw_parts(x.handle.clone(), e * nx),
                BufferArg::from_raw_parts(z.handle.clone(), (e * nz).max(1)),
                e as u32,
                nx as u32,
                nz as u32,
                draw as u32,
                (draw >> 32) as u32,
                self.sigma,
            );
        }
        self.next += 1;
        (Tensor::from_primitive::<Cube>(x), noisy.then(|| Tensor::from_primitive::<Cube>(z)))
    }

    /// Keeps the members whose `keep` flag is set, in order.
    /// The number of the next batch (see [`crate::checkpoint`]).
    pub(crate) fn position(&self) -> u64 {
        self.next
    }

    /// Makes `next` the number of the next batch (resuming from a checkpoint).
    pub(crate) fn seek(&mut self, next: u64) {
        self.next = next;
    }

    pub(crate) fn retain(&mut self, keep: &[bool]) {
        self.keys = self.keys.chunks(2).zip(keep).filter(|(_, k)| **k).flat_map(|(c, _)| c.to_vec()).collect();
        if !self.keys.is_empty() {
            self.on_device = upload(&self.client, &self.keys);
        }
    }
}

/// The memory limits of a cubecl device: the largest single allocation in bytes and, where
/// the runtime states it, the whole memory a workload may use; `None` on the CPU backends.
pub(crate) fn memory_limits(device: &Device) -> Option<(u64, Option<u64>)> {
    let probe = Tensor::<1>::zeros([1], device).try_into_primitive::<Cube>().ok()?;
    let memory = &probe.client.properties().memory;
    Some((memory.max_page_size, memory.max_memory()))
}

/// The device memory a run on the tensor paths needs, estimated from its sizes (bytes, f32).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Footprint {
    /// The largest single tensor: a layer, an activation, the repeated teacher or a probe's
    /// `W_l W_lᵀ`.
    pub(crate) largest: u64,
    /// Everything alive at once, roughly: the weights three times (old, new, gradient; four
    /// times with autodiff's tape), the activations and errors of a step three times, the
    /// repeated teacher, and the probes' products and Gram stacks.
    pub(crate) total: u64,
}

impl Footprint {
    /// The footprint of `members` networks of widths `dims` at batch `batch` with `rank`
    /// teacher modes (`autodiff`: on the autodiff path).
    pub(crate) fn of(dims: &[usize], batch: usize, members: usize, rank: usize, autodiff: bool) -> Self {
        let depth = dims.len() - 1;
        let (d_in, d_out) = (dims[0], dims[depth]);
        let params: usize = dims.windows(2).map(|w| w[0] * w[1]).sum();
        let acts: usize = dims.iter().map(|d| d * batch).sum();
        let widest = dims.iter().copied().max().unwrap_or(0);
        let copies = if autodiff { 4 } else { 3 };
        let per_member = copies * (params + acts)
            + d_out * d_in
            + 3 * widest * widest
            + dims.iter().map(|d| d * (d_in + d_out)).sum::<usize>()
            + 3 * depth * (d_in + d_out) * rank;
        let largest = dims
            .windows(2)
            .map(|w| w[0] * w[1])
            .chain([widest * widest, widest * batch, d_in * d_out])
            .max()
            .unwrap_or(0);
        let bytes = |n: usize| (n as u64).saturating_mul(members as u64).saturating_mul(4);
        Self { largest: bytes(largest), total: bytes(per_member) }
    }

    /// Whether the run fits a device whose largest allocation is `max_alloc` bytes and whose
    /// memory (where known) is `max_memory` bytes.
    pub(crate) fn fits(&self, max_alloc: u64, max_memory: Option<u64>) -> bool {
        self.largest <= max_alloc && max_memory.is_none_or(|m| self.total <= m)
    }
}

/// `keys` in a new device buffer.
fn upload(client: &cubecl::client::Client, keys: &[u32]) -> cubecl::server::Handle {
    let bytes: Vec<u8> = keys.iter().flat_map(|k| k.to_le_bytes()).collect();
    client.create_from_slice(&bytes)
}

/// The cubecl primitive of a tensor made on the engine's cubecl device.
fn cube(t: Tensor<3>) -> CubeTensor {
    t.try_into_primitive::<Cube>().expect("a tensor on a cubecl device is a cubecl tensor")
}

/// Whether the batch kernel's `u32` indices address `E` members of `d_in + d_out` rows of `B`
/// (the trainer checks it before drawing on the device).
pub(crate) fn addressable(members: usize, rows: usize, batch: usize) -> bool {
    members.checked_mul(rows).and_then(|n| n.checked_mul(batch)).is_some_and(|n| n + 3 * members < u32::MAX as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BackendKind;
    use crate::model::tensor3_to_host;

    /// The batches drawn on the device (wgpu: Mesa's lavapipe in CI) are the CPU's Philox
    /// stream bit for bit, for every member, both parts, partial blocks and consecutive
    /// draws, and after members are dropped the survivors keep their streams.
    #[test]
    fn device_batches_are_the_cpu_stream_bit_for_bit() {
        same_stream_as_the_cpu(&BackendKind::Wgpu.device());
    }

    /// The same on CUDA (in a build with the `cuda` feature, on a machine with an NVIDIA GPU).
    #[cfg(feature = "cuda")]
    #[test]
    fn cuda_batches_are_the_cpu_stream_bit_for_bit() {
        same_stream_as_the_cpu(&BackendKind::Cuda.device());
    }

    fn same_stream_as_the_cpu(device: &Device) {
        let (seeds, namespace, sigma) = ([3u64, 8, 21], 2, 0.5);
        let (d_in, d_out, batch) = (3, 5, 67);
        let mut batches = DeviceBatches::new(&seeds, namespace, sigma, device).expect("a cubecl device");
        let check = |batches: &mut DeviceBatches, members: &[u64], draw: u64| {
            let (x, z) = batches.next(d_in, d_out, batch, device);
            let (x, z) = (tensor3_to_host(&x).unwrap(), tensor3_to_host(&z.expect("noise")).unwrap());
            for (e, &seed) in members.iter().enumerate() {
                let g = Philox::of(seed, Stream::Batches { namespace });
                for (i, v) in x[e].transpose().iter().enumerate() {
                    let cpu = g.normal(draw, 0, i as u64);
                    assert_eq!(
                        (*v as f32).to_bits(),
                        cpu.to_bits(),
                        "x[{i}] of seed {seed}, draw {draw}: {v} vs {cpu}"
                    );
                }
                for (i, v) in z[e].transpose().iter().enumerate() {
                    let cpu = sigma as f32 * g.normal(draw, 1, i as u64);
                    assert_eq!(
                        (*v as f32).to_bits(),
                        cpu.to_bits(),
                        "z[{i}] of seed {seed}, draw {draw}: {v} vs {cpu}"
                    );
                }
            }
        };
        check(&mut batches, &seeds, 0);
        check(&mut batches, &seeds, 1);
        batches.retain(&[false, true, true]);
        check(&mut batches, &seeds[1..], 2);
    }

    /// Without label noise only the inputs are drawn.
    #[test]
    fn without_noise_the_device_draws_inputs_only() {
        let device = BackendKind::Wgpu.device();
        let mut batches = DeviceBatches::new(&[5], 0, 0.0, &device).unwrap();
        let (x, z) = batches.next(2, 2, 2, &device);
        assert!(z.is_none());
        let x = tensor3_to_host(&x).unwrap();
        let g = Philox::of(5, Stream::Batches { namespace: 0 });
        assert_eq!(x[0][(1, 0)] as f32, g.normal(0, 0, 2));
    }

    /// The footprint counts what it says, and it grows with the members.
    #[test]
    fn footprints_count_the_largest_tensor_and_the_total() {
        let f = Footprint::of(&[10, 100, 100, 100, 10], 1, 4096, 5, false);
        assert_eq!(f.largest, 4096 * 100 * 100 * 4);
        // W1 × 4096 needs under 2 GiB (its probes' W_l W_lᵀ the most): far below a GPU's.
        assert!(f.total > 3 * 4096 * 22_000 * 4 && f.total < 2 << 30, "{f:?}");
        let w3 = Footprint::of(&[512; 5], 128, 4096, 5, false);
        assert_eq!(w3.largest, 4096 * 512 * 512 * 4);
        assert!(!w3.fits(2 << 30, None) && w3.fits(8 << 30, None) && !w3.fits(8 << 30, Some(8 << 30)));
        let autodiff = Footprint::of(&[512; 5], 128, 4096, 5, true);
        assert!(autodiff.total > w3.total);
    }

    /// wgpu states its largest allocation, at least WebGPU's minimum storage binding (128 MiB).
    #[test]
    fn wgpu_states_its_memory_limits() {
        let (max_alloc, max_memory) = memory_limits(&BackendKind::Wgpu.device()).expect("a cubecl device");
        eprintln!("wgpu: largest allocation {max_alloc} bytes, memory {max_memory:?}");
        assert!(max_alloc >= 128 << 20, "{max_alloc}");
        assert!(max_memory.is_none_or(|m| m >= max_alloc), "{max_memory:?}");
    }

    #[test]
    fn cpu_devices_draw_on_the_host() {
        assert!(DeviceBatches::new(&[1], 0, 0.1, &BackendKind::Flex.device()).is_none());
        assert!(memory_limits(&BackendKind::Flex.device()).is_none());
        assert!(addressable(4096, 200, 32));
        assert!(!addressable(1 << 20, 1 << 10, 1 << 10));
    }
}
