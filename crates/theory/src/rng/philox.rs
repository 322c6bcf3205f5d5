//! The counter-based normal generator of the training batches: Philox4x32-10 under a stream's
//! key, turned into `f32` normals by Box–Muller with its own logarithm, sine and cosine, so that
//! every element of a stream can be computed on its own, in any order, on any number of threads
//! or on a GPU, with the same bits.
//!
//! # The algorithm (what a second implementation must reproduce)
//!
//! **Key.** A stream (seed, [`Stream`]) has the 64-bit [`stream_key`]`(seed, stream.number())`
//! `k`; the Philox key is the two 32-bit words `(k mod 2³², k >> 32)`.
//!
//! **Counter.** Element `i` (from 0) of part `p` of draw `d` (the training batch sampler: `d` is
//! the member's batch number from 0, part 0 its inputs `x`, part 1 its label noise `ε`, each
//! row-major `d × B`) comes from the 128-bit counter `(c₀, c₁, c₂, c₃) = (⌊i/4⌋, p, d mod 2³²,
//! d >> 32)`; the counter's block gives elements `4⌊i/4⌋ … 4⌊i/4⌋ + 3`.
//!
//! **Philox4x32-10** (Salmon, Moraes, Dror and Shaw, *Parallel random numbers: as easy as 1, 2,
//! 3*, SC 2011; the Random123 and cuRAND `Philox4_32_10` generator): ten rounds of
//! `(c₀, c₁, c₂, c₃) ← (hi(M₁c₂) ⊕ c₁ ⊕ k₀, lo(M₁c₂), hi(M₀c₀) ⊕ c₃ ⊕ k₁, lo(M₀c₀))`, with
//! `M₀ = 0xD2511F53`, `M₁ = 0xCD9E8D57`, `hi`/`lo` the upper and lower 32 bits of the 64-bit
//! product, and the key bumped by `(0x9E3779B9, 0xBB67AE85)` (wrapping) before every round but
//! the first. Its output `(x₀, x₁, x₂, x₃)` gives two pairs, `(x₀, x₁)` for elements `4⌊i/4⌋`
//! and `+1`, `(x₂, x₃)` for `+2` and `+3`.
//!
//! **Uniforms.** From a pair `(a, b)` of words: `u = ((a >> 8) + 1) · 2⁻²⁴` in `(0, 1]` and the
//! angle `t = (b >> 8) · 2⁻²⁴` turns in `[0, 1)`, both exact in `f32`.
//!
//! **Transform** (Box–Muller, exact in distribution): `r = √(−2 ln u)`, the pair is
//! `(r cos 2πt, r sin 2πt)`. In `f32`, every operation rounded to nearest-even, none fused (no
//! FMA contraction):
//! - `ln u`: with `u = m·2ᵉ`, `m ∈ [1, 2)` (from the bits), if `m > √2` then `m ← m/2`,
//!   `e ← e + 1`; `x = m − 1`, `z = x²`, `y = x·z·P(x)` with `P` the degree-8 polynomial of
//!   Cephes' `logf` (coefficients in [`ln`]'s source, evaluated by Horner from the highest), then
//!   `y ← y − 2.12194440·10⁻⁴·e`, `y ← y − z/2` (as `y + (−0.5·z)`), `ln u = (x + y) +
//!   0.693359375·e`. `r = sqrt(−2 · ln u)` (correctly rounded square root).
//! - the angle: with `k = b >> 8`, the nearest quarter turn `q = (k + 2²¹) >> 22` (0 to 4) and
//!   the rest `f = (k − q·2²²) · 2⁻²²` in `[−½, ½]` (exact), `s = sin(πf/2)` and
//!   `c = cos(πf/2)` by their Taylor polynomials to degree 9 and 10 in `f` (Horner in `f²`,
//!   coefficients `(π/2)ⁿ/n!` rounded to `f32` from f64: see [`sin_cos_quarter`]); then by
//!   `q mod 4` = 0, 1, 2, 3, `(cos 2πt, sin 2πt)` = `(c, s)`, `(−s, c)`, `(−c, −s)`, `(s, −c)`.
//! - the pair: `(r · cos 2πt, r · sin 2πt)`.
//!
//! The logarithm is within 1 ulp of the exact value and sine and cosine within 1·10⁻⁷
//! (tested); `|z| ≤ √(48 ln 2) ≈ 5.77`, since `u ≥ 2⁻²⁴` (a normal is beyond that with
//! probability 8·10⁻⁹).
//!
//! # Speed
//!
//! The bulk loop computes 32 blocks (128 normals) at a time in structure-of-arrays form, which
//! the compiler vectorises; it is compiled three times (AVX-512, AVX2, and the baseline) and
//! picked at run time from the CPU's features. Each variant performs the same IEEE operations,
//! so they give the same bits (tested), as does [`Philox::normal`], the one-element reference.

use super::{Stream, stream_key};

/// Philox's multipliers.
const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
/// Philox's key increments (the golden ratio and √3 − 1, as 32-bit fractions).
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// Blocks (of 4 normals) computed together by the bulk loop.
const LANES: usize = 32;

/// The generator of one stream: Philox4x32-10 under the stream's key. Cheap to copy; it holds
/// no state but the key (the counter is the caller's: draw, part, element).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Philox {
    key: [u32; 2],
}

impl Philox {
    /// The generator keyed by the 64-bit key `key`: Philox key `(key mod 2³², key >> 32)`.
    pub fn new(key: u64) -> Self {
        Self { key: [key as u32, (key >> 32) as u32] }
    }

    /// The generator of stream `stream` under `seed` (keyed by [`stream_key`]).
    pub fn of(seed: u64, stream: Stream) -> Self {
        Self::new(stream_key(seed, stream.number()))
    }

    /// The Philox key `(k₀, k₁)` (for a second implementation, e.g. a GPU kernel, to draw the
    /// same stream).
    pub fn key(&self) -> [u32; 2] {
        self.key
    }

    /// Philox4x32-10 of one 128-bit counter under this key.
    pub fn block(&self, counter: [u32; 4]) -> [u32; 4] {
        let (mut c, mut k) = (counter, self.key);
        for round in 0..10 {
            if round > 0 {
                k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
            }
            let (hi0, lo0) = mul_hi_lo(M0, c[0]);
            let (hi1, lo1) = mul_hi_lo(M1, c[2]);
            c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
        }
        c
    }

    /// Element `index` of part `part` of draw `draw`: the one-element reference of
    /// [`fill_normal`](Self::fill_normal) (see the module documentation for the algorithm).
    pub fn normal(&self, draw: u64, part: u32, index: u64) -> f32 {
        let block = self.block(counter(index / 4, part, draw));
        let lane = (index % 4) as usize;
        box_muller(block[lane & 2], block[(lane & 2) + 1])[lane & 1]
    }

    /// Elements `first … first + out.len() − 1` of part `part` of draw `draw`, into `out`:
    /// standard normals, the same as [`normal`](Self::normal) element by element, computed by
    /// the widest vector loop the CPU supports. Below `2³⁴` elements per part and draw.
    pub fn fill_normal(&self, draw: u64, part: u32, first: u64, out: &mut [f32]) {
        let end = first + out.len() as u64;
        assert!(end <= 1 << 34, "Philox::fill_normal: element {end} beyond 2^34 of one draw");
        // A first block entered in its middle, element by element.
        let lead = (((4 - first % 4) % 4) as usize).min(out.len());
        for (i, v) in out[..lead].iter_mut().enumerate() {
            *v = self.normal(draw, part, first + i as u64);
        }
        let first_block = first.div_ceil(4) as u32;
        let rest = &mut out[lead..];
        #[cfg(target_arch = "x86_64")]
        {
            if Isa::Avx512.available() {
                // SAFETY: the CPU has the features the function is compiled for.
                return unsafe { bulk_avx512(self.key, part, draw, first_block, rest) };
            }
            if Isa::Avx2.available() {
                // SAFETY: as above.
                return unsafe { bulk_avx2(self.key, part, draw, first_block, rest) };
            }
        }
        bulk_portable(self.key, part, draw, first_block, rest);
    }
}

/// The counter of block `block` of part `part` of draw `draw`.
fn counter(block: u64, part: u32, draw: u64) -> [u32; 4] {
    debug_assert!(block < 1 << 32, "block {block} beyond 2^32");
    [block as u32, part, draw as u32, (draw >> 32) as u32]
}

/// The upper and lower 32 bits of `a · b` (computed apart: the lower half is one vector
/// multiply, the upper half two).
#[inline(always)]
fn mul_hi_lo(a: u32, b: u32) -> (u32, u32) {
    (((u64::from(a) * u64::from(b)) >> 32) as u32, a.wrapping_mul(b))
}

/// The two normals of the word pair `(a, b)` (see the module documentation).
#[inline(always)]
pub fn box_muller(a: u32, b: u32) -> [f32; 2] {
    // u = ((a >> 8) + 1)·2⁻²⁴ in (0, 1]: the integer is at most 2²⁴, exact in f32.
    let u = ((a >> 8) + 1) as f32 * (1.0 / 16_777_216.0);
    let r = (-2.0 * ln(u)).sqrt();
    let k = b >> 8;
    let q = (k + (1 << 21)) >> 22;
    let f = (k as i32 - (q << 22) as i32) as f32 * (1.0 / 4_194_304.0);
    let (s, c) = sin_cos_quarter(f);
    // Quarter turns: swap sine and cosine for odd q, then negate by the sign table.
    let (cos, sin) = if q & 1 == 1 { (s, c) } else { (c, s) };
    let cos = f32::from_bits(cos.to_bits() ^ (((q + 1) & 2) << 30));
    let sin = f32::from_bits(sin.to_bits() ^ ((q & 2) << 30));
    [r * cos, r * sin]
}

/// `ln u` for a normal positive `u` (here in `[2⁻²⁴, 1]`), within 1 ulp: Cephes' `logf`
/// reduction and polynomial.
#[inline(always)]
pub fn ln(u: f32) -> f32 {
    let bits = u.to_bits();
    let mut e = ((bits >> 23) as i32) - 127;
    let mut m = f32::from_bits((bits & 0x007F_FFFF) | 0x3F80_0000);
    if m > std::f32::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    let x = m - 1.0;
    let z = x * x;
    let mut y = 7.037_683_6e-2_f32;
    y = y * x - 1.151_461_e-1;
    y = y * x + 1.167_699_9e-1;
    y = y * x - 1.242_014_1e-1;
    y = y * x + 1.424_932_3e-1;
    y = y * x - 1.666_805_8e-1;
    y = y * x + 2.000_071_5e-1;
    y = y * x - 2.499_999_4e-1;
    y = y * x + 3.333_333_e-1;
    y = y * x * z;
    let e = e as f32;
    y += -2.121_944_4e-4 * e;
    y += -0.5 * z;
    (x + y) + 0.693_359_4 * e
}

/// `(sin(πf/2), cos(πf/2))` for `|f| ≤ ½`: Taylor polynomials to degree 9 and 10 (truncation
/// below 2·10⁻⁹), Horner in `f²`.
#[inline(always)]
pub fn sin_cos_quarter(f: f32) -> (f32, f32) {
    use std::f64::consts::FRAC_PI_2 as H;
    const S1: f32 = H as f32;
    const S3: f32 = (-H * H * H / 6.0) as f32;
    const S5: f32 = (H * H * H * H * H / 120.0) as f32;
    const S7: f32 = (-H * H * H * H * H * H * H / 5_040.0) as f32;
    const S9: f32 = (H * H * H * H * H * H * H * H * H / 362_880.0) as f32;
    const C2: f32 = (-H * H / 2.0) as f32;
    const C4: f32 = (H * H * H * H / 24.0) as f32;
    const C6: f32 = (-H * H * H * H * H * H / 720.0) as f32;
    const C8: f32 = (H * H * H * H * H * H * H * H / 40_320.0) as f32;
    const C10: f32 = (-H * H * H * H * H * H * H * H * H * H / 3_628_800.0) as f32;
    let f2 = f * f;
    let s = f * (S1 + f2 * (S3 + f2 * (S5 + f2 * (S7 + f2 * S9))));
    let c = 1.0 + f2 * (C2 + f2 * (C4 + f2 * (C6 + f2 * (C8 + f2 * C10))));
    (s, c)
}

/// The bulk loop: blocks `first_block, first_block + 1, …` of (part, draw) into `out`, whole
/// blocks but perhaps the last; [`LANES`] blocks at a time in structure-of-arrays form.
#[inline(always)]
fn bulk(key: [u32; 2], part: u32, draw: u64, first_block: u32, out: &mut [f32]) {
    for (chunk_index, chunk) in out.chunks_mut(4 * LANES).enumerate() {
        let base = first_block.wrapping_add((chunk_index * LANES) as u32);
        let mut c0 = [0u32; LANES];
        for (l, c) in c0.iter_mut().enumerate() {
            *c = base.wrapping_add(l as u32);
        }
        let mut c1 = [part; LANES];
        let mut c2 = [draw as u32; LANES];
        let mut c3 = [(draw >> 32) as u32; LANES];
        let mut k = key;
        for round in 0..10 {
            if round > 0 {
                k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
            }
            for l in 0..LANES {
                let (hi0, lo0) = mul_hi_lo(M0, c0[l]);
                let (hi1, lo1) = mul_hi_lo(M1, c2[l]);
                let n0 = hi1 ^ c1[l] ^ k[0];
                let n2 = hi0 ^ c3[l] ^ k[1];
                (c0[l], c1[l], c2[l], c3[l]) = (n0, lo1, n2, lo0);
            }
        }
        let mut z = [[0f32; LANES]; 4];
        for l in 0..LANES {
            [z[0][l], z[1][l]] = box_muller(c0[l], c1[l]);
        }
        for l in 0..LANES {
            [z[2][l], z[3][l]] = box_muller(c2[l], c3[l]);
        }
        match <&mut [f32; 4 * LANES]>::try_from(&mut *chunk) {
            Ok(full) => {
                for l in 0..LANES {
                    for p in 0..4 {
                        full[4 * l + p] = z[p][l];
                    }
                }
            }
            Err(_) => {
                for (i, v) in chunk.iter_mut().enumerate() {
                    *v = z[i % 4][i / 4];
                }
            }
        }
    }
}

/// The bulk loop as the baseline target compiles it (SSE2 on x86-64).
fn bulk_portable(key: [u32; 2], part: u32, draw: u64, first_block: u32, out: &mut [f32]) {
    bulk(key, part, draw, first_block, out);
}

/// The bulk loop compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn bulk_avx2(key: [u32; 2], part: u32, draw: u64, first_block: u32, out: &mut [f32]) {
    bulk(key, part, draw, first_block, out);
}

/// The bulk loop compiled for AVX-512 (the x86-64-v4 set).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw")]
fn bulk_avx512(key: [u32; 2], part: u32, draw: u64, first_block: u32, out: &mut [f32]) {
    bulk(key, part, draw, first_block, out);
}

/// The instruction sets the bulk loop is compiled for.
#[cfg(target_arch = "x86_64")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Isa {
    Avx512,
    Avx2,
}

#[cfg(target_arch = "x86_64")]
impl Isa {
    /// Whether this CPU has the features.
    fn available(self) -> bool {
        use std::arch::is_x86_feature_detected as has;
        match self {
            Self::Avx512 => has!("avx512f") && has!("avx512vl") && has!("avx512dq") && has!("avx512bw"),
            Self::Avx2 => has!("avx2"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stationary::ks_statistic;

    #[test]
    fn philox_matches_the_random123_known_answers() {
        let cases: [([u32; 4], [u32; 2], [u32; 4]); 3] = [
            ([0, 0, 0, 0], [0, 0], [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]),
            ([!0, !0, !0, !0], [!0, !0], [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]),
            (
                [0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344],
                [0xa409_3822, 0x299f_31d0],
                [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1],
            ),
        ];
        for (ctr, key, out) in cases {
            let g = Philox::new(u64::from(key[0]) | (u64::from(key[1]) << 32));
            assert_eq!(g.block(ctr), out, "counter {ctr:x?}, key {key:x?}");
        }
    }

    /// Elements follow the documented layout: element `i` of part `p` of draw `d` is Box–Muller
    /// of words `2j, 2j + 1` (`j = (i mod 4) / 2`) of the block at counter `(i/4, p, d mod 2³²,
    /// d >> 32)`, the cosine for even `i`; the transform in f64 agrees to f32 rounding.
    #[test]
    fn elements_follow_the_documented_counter_layout_and_transform() {
        let g = Philox::of(5, Stream::Batches { namespace: 2 });
        assert_eq!(g, Philox::new(stream_key(5, Stream::Batches { namespace: 2 }.number())));
        let draw = (3u64 << 32) + 17;
        for part in [0u32, 1] {
            for i in [0u64, 1, 2, 3, 4, 5, 6, 7, 1001, 1 << 33] {
                let w = g.block([(i / 4) as u32, part, 17, 3]);
                let j = ((i % 4) / 2) as usize;
                let u = f64::from((w[2 * j] >> 8) + 1) / 16_777_216.0;
                let t = f64::from(w[2 * j + 1] >> 8) / 16_777_216.0 * std::f64::consts::TAU;
                let r = (-2.0 * u.ln()).sqrt();
                let z = if i % 2 == 0 { r * t.cos() } else { r * t.sin() };
                let got = f64::from(g.normal(draw, part, i));
                assert!((got - z).abs() < 2e-6 * z.abs().max(1.0), "element {i} of part {part}: {got} vs {z}");
            }
        }
    }

    #[test]
    fn logarithm_and_quarter_turns_are_accurate() {
        let ulp = |v: f64| f64::from(f32::from_bits((v.abs() as f32).to_bits() + 1)) - f64::from(v.abs() as f32);
        let mut worst = 0.0f64;
        for k in (0u32..1 << 24).step_by(97).chain([0, 1, (1 << 24) - 1]) {
            let u = (k + 1) as f32 / 16_777_216.0;
            let exact = f64::from(u).ln();
            if exact != 0.0 {
                worst = worst.max((f64::from(ln(u)) - exact).abs() / ulp(exact));
            }
        }
        assert!(worst <= 1.0, "ln is {worst} ulp off");
        assert_eq!(ln(1.0), 0.0);
        // The angle of every 24-bit word: cos and sin of 2πt within 1e-7.
        let mut worst = 0.0f64;
        for k in (0u32..1 << 24).step_by(31).chain([0, (1 << 21) - 1, 1 << 21, (1 << 24) - 1]) {
            // u = 2^-24·(2^24·e^-1/2) ≈ e^-1/2 gives r = 1 within 1e-7.
            let a = (((1u64 << 24) as f64 * (-0.5f64).exp()) as u32 - 1) << 8;
            let r = (-2.0 * f64::from(((a >> 8) + 1) as f32 / 16_777_216.0).ln()).sqrt();
            let t = f64::from(k) / 16_777_216.0 * std::f64::consts::TAU;
            let [c, s] = box_muller(a, k << 8);
            worst = worst.max((f64::from(c) - r * t.cos()).abs()).max((f64::from(s) - r * t.sin()).abs());
        }
        assert!(worst < 1.5e-7, "sin/cos off by {worst}");
    }

    /// Every compiled variant of the bulk loop, and the one-element reference, give the same
    /// bits, from any first element.
    #[test]
    fn every_variant_and_every_offset_give_the_same_bits() {
        let g = Philox::of(11, Stream::Data { namespace: 0 });
        let n = 1000;
        let reference: Vec<u32> = (0..n).map(|i| g.normal(7, 1, i).to_bits()).collect();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let mut out = vec![0.0f32; n as usize];
        g.fill_normal(7, 1, 0, &mut out);
        assert_eq!(bits(&out), reference);
        for first in [1u64, 2, 3, 4, 130, 517] {
            let mut part = vec![0.0f32; (n - first) as usize - 3];
            g.fill_normal(7, 1, first, &mut part);
            assert_eq!(bits(&part), reference[first as usize..n as usize - 3], "from element {first}");
        }
        type Bulk = fn([u32; 2], u32, u64, u32, &mut [f32]);
        let mut variants: Vec<(&str, Bulk)> = vec![("portable", bulk_portable)];
        #[cfg(target_arch = "x86_64")]
        {
            if Isa::Avx2.available() {
                variants.push(("avx2", |k, p, d, b, o| unsafe { bulk_avx2(k, p, d, b, o) }));
            }
            if Isa::Avx512.available() {
                variants.push(("avx512", |k, p, d, b, o| unsafe { bulk_avx512(k, p, d, b, o) }));
            }
        }
        for (name, f) in variants {
            out.fill(0.0);
            f(g.key, 1, 7, 0, &mut out);
            assert_eq!(bits(&out), reference, "{name}");
        }
    }

    /// The draws are standard normals: mean, variance, kurtosis and tail fractions within
    /// their sampling error, and a Kolmogorov–Smirnov test against the exact CDF; elements,
    /// parts, draws and streams are uncorrelated.
    #[test]
    fn draws_are_independent_standard_normals() {
        let n = 1 << 20;
        let g = Philox::of(3, Stream::Data { namespace: 0 });
        let mut x = vec![0.0f32; n];
        g.fill_normal(0, 0, 0, &mut x);
        let x: Vec<f64> = x.into_iter().map(f64::from).collect();
        let nf = n as f64;
        let mean = x.iter().sum::<f64>() / nf;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / nf;
        let m4 = x.iter().map(|v| (v - mean).powi(4)).sum::<f64>() / nf;
        // Standard errors: 1/√n, √(2/n), √(96/n) for the kurtosis; 5 of them at most.
        assert!(mean.abs() < 5.0 / nf.sqrt(), "mean {mean}");
        assert!((var - 1.0).abs() < 5.0 * (2.0 / nf).sqrt(), "variance {var}");
        assert!((m4 / (var * var) - 3.0).abs() < 5.0 * (96.0 / nf).sqrt(), "kurtosis {}", m4 / (var * var));
        for c in [1.0, 2.0, 3.0, 4.0] {
            let p = libm::erfc(c / std::f64::consts::SQRT_2);
            let frac = x.iter().filter(|v| v.abs() > c).count() as f64 / nf;
            assert!((frac - p).abs() < 5.0 * (p * (1.0 - p) / nf).sqrt() + 1.0 / nf, "P(|z| > {c}) = {frac}, not {p}");
        }
        let ks = ks_statistic(&x, |v| 0.5 * libm::erfc(-v / std::f64::consts::SQRT_2));
        assert!(ks * nf.sqrt() < 1.95, "KS statistic {ks} (√n·D = {})", ks * nf.sqrt());
        // Correlations (standard error 1/√n) between neighbours within a block, across blocks,
        // and between parts, draws and streams at the same element.
        let corr = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(u, v)| u * v).sum::<f64>() / a.len() as f64;
        let other = |g: Philox, draw: u64, part: u32| {
            let mut v = vec![0.0f32; n];
            g.fill_normal(draw, part, 0, &mut v);
            v.into_iter().map(f64::from).collect::<Vec<_>>()
        };
        let tol = 5.0 / nf.sqrt();
        for shift in [1usize, 2, 3, 4, 5] {
            let c = corr(&x[..n - shift], &x[shift..]);
            assert!(c.abs() < tol, "lag {shift}: {c}");
        }
        for (what, y) in [
            ("part", other(g, 0, 1)),
            ("draw", other(g, 1, 0)),
            ("stream", other(Philox::of(3, Stream::Init { namespace: 0 }), 0, 0)),
            ("seed", other(Philox::of(4, Stream::Data { namespace: 0 }), 0, 0)),
        ] {
            let c = corr(&x, &y);
            assert!(c.abs() < tol, "{what}: {c}");
        }
    }
}
