//! One core's floating-point peak, measured: a loop of independent `f32` fused multiply-adds at
//! each vector width the CPU supports (AVX-512 and AVX2 on x86-64, detected at run time; a
//! portable loop elsewhere), so the workloads can be reported as a fraction of what this core
//! can do rather than of an assumed figure. Also the CPU's model name, for every table.

use std::time::{Duration, Instant};

/// Independent accumulators per loop: FMA latency (4 cycles on Zen 4/5 and recent Intel cores)
/// times the FMA units (2) is 8 in flight; 12 leaves headroom and, with the two constants, fits
/// the 16 vector registers of AVX2.
pub const ACCUMULATORS: usize = 12;

/// FMAs per accumulator in one timed chunk (about 1–3 ms on a 4 GHz core at full rate).
const CHUNK: u64 = 200_000;

/// A vector width the peak is measured at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Width {
    /// 512-bit (`avx512f`): 16 `f32` lanes.
    Avx512,
    /// 256-bit (`avx2` and `fma`): 8 `f32` lanes.
    Avx2,
    /// The portable loop (no x86 vector extension detected, or another architecture): what
    /// the compiler makes of `ACCUMULATORS × 16` independent `mul_add`s.
    Portable,
}

impl Width {
    /// The name in `modewise bench --peak --json`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Avx512 => "avx512",
            Self::Avx2 => "avx2",
            Self::Portable => "portable",
        }
    }

    /// The widths this CPU supports, widest first (the portable loop only where neither x86
    /// width is available).
    pub fn available() -> Vec<Width> {
        #[cfg(target_arch = "x86_64")]
        {
            let mut v = Vec::new();
            if std::arch::is_x86_feature_detected!("avx512f") {
                v.push(Self::Avx512);
            }
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                v.push(Self::Avx2);
            }
            if !v.is_empty() {
                return v;
            }
        }
        vec![Self::Portable]
    }

    /// `f32` lanes of one FMA (of one row of the portable loop).
    fn lanes(self) -> u64 {
        match self {
            Self::Avx512 | Self::Portable => 16,
            Self::Avx2 => 8,
        }
    }

    /// Flops of one chunk: `ACCUMULATORS × CHUNK` FMAs of `lanes` lanes, two flops each.
    fn chunk_flops(self) -> f64 {
        (ACCUMULATORS as u64 * CHUNK * self.lanes() * 2) as f64
    }

    /// Runs one chunk; returns a value that depends on every accumulator.
    fn chunk(self) -> f32 {
        match self {
            // SAFETY: `available` listed these widths only where the CPU has the features.
            #[cfg(target_arch = "x86_64")]
            Self::Avx512 => unsafe { x86::fma_avx512(CHUNK) },
            #[cfg(target_arch = "x86_64")]
            Self::Avx2 => unsafe { x86::fma_avx2(CHUNK) },
            #[cfg(not(target_arch = "x86_64"))]
            Self::Avx512 | Self::Avx2 => unreachable!("x86 widths are never available here"),
            Self::Portable => fma_portable(CHUNK),
        }
    }
}

/// Measures one core's `f32` peak at `width` for about `seconds`: the best rate, in GFLOP/s,
/// over chunks of a few milliseconds (a peak is what the core can do; on a shared machine the
/// best chunk is the one least disturbed).
pub fn gflops(width: Width, seconds: f64) -> f64 {
    // Warm-up: bring the core to its vector clock.
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_secs_f64(seconds / 10.0) {
        std::hint::black_box(width.chunk());
    }
    let start = Instant::now();
    let mut best = 0.0f64;
    while best == 0.0 || start.elapsed() < Duration::from_secs_f64(seconds) {
        let t = Instant::now();
        std::hint::black_box(width.chunk());
        best = best.max(width.chunk_flops() / t.elapsed().as_secs_f64() / 1e9);
    }
    best
}

/// The recurrence's multiplier, constant and start `(m, c, 1)`, opaque to the optimiser.
fn inputs() -> (f32, f32, f32) {
    std::hint::black_box((0.999_999_9, 1e-7, 1.0))
}

/// The portable loop: `ACCUMULATORS` rows of 16 lanes, each lane `a ← a·m + c`, fused where
/// the target has FMA in its baseline (aarch64), a multiply and an add elsewhere (same flops).
fn fma_portable(iters: u64) -> f32 {
    let (m, c, one) = inputs();
    let mut acc = [[one; 16]; ACCUMULATORS];
    for _ in 0..iters {
        for row in acc.iter_mut() {
            for a in row.iter_mut() {
                *a = if cfg!(target_arch = "aarch64") { a.mul_add(m, c) } else { *a * m + c };
            }
        }
    }
    acc.iter().flatten().sum()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{ACCUMULATORS, inputs};
    use std::arch::x86_64::*;

    /// `ACCUMULATORS` independent chains of `iters` 512-bit FMAs (`a ← a·m + c`, which
    /// converges to 1: no overflow, no subnormals).
    #[target_feature(enable = "avx512f")]
    pub(super) fn fma_avx512(iters: u64) -> f32 {
        // The constants pass through `black_box`: from literal inputs the optimiser folds the
        // whole loop (1 is a fixed point of the recurrence in f32) and times nothing.
        let (m, c, one) = inputs();
        let (m, c) = (_mm512_set1_ps(m), _mm512_set1_ps(c));
        let mut acc = [_mm512_set1_ps(one); ACCUMULATORS];
        for _ in 0..iters {
            for a in acc.iter_mut() {
                *a = _mm512_fmadd_ps(*a, m, c);
            }
        }
        let sum = acc.iter().fold(_mm512_setzero_ps(), |s, &a| _mm512_add_ps(s, a));
        _mm512_reduce_add_ps(sum)
    }

    /// The same with 256-bit FMAs.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn fma_avx2(iters: u64) -> f32 {
        let (m, c, one) = inputs();
        let (m, c) = (_mm256_set1_ps(m), _mm256_set1_ps(c));
        let mut acc = [_mm256_set1_ps(one); ACCUMULATORS];
        for _ in 0..iters {
            for a in acc.iter_mut() {
                *a = _mm256_fmadd_ps(*a, m, c);
            }
        }
        let sum = acc.iter().fold(_mm256_setzero_ps(), |s, &a| _mm256_add_ps(s, a));
        let mut lanes = [0.0f32; 8];
        // SAFETY: `lanes` holds 8 floats; an unaligned store is allowed.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), sum) };
        lanes.iter().sum()
    }
}

/// One core's measured peak at each available width, and the CPU it was measured on.
#[derive(Debug, Clone, PartialEq)]
pub struct Peak {
    /// GFLOP/s per width, widest first.
    pub gflops: Vec<(Width, f64)>,
    /// The CPU ([`cpu_model`]).
    pub cpu: String,
}

impl Peak {
    /// Measures every available width, about `seconds` in all (shared evenly), on the calling
    /// thread.
    pub fn measure(seconds: f64) -> Self {
        let widths = Width::available();
        let each = seconds / widths.len() as f64;
        let gflops = widths.into_iter().map(|w| (w, gflops(w, each))).collect();
        Self { gflops, cpu: cpu_model() }
    }

    /// The widest width measured and its GFLOP/s.
    pub fn widest(&self) -> (Width, f64) {
        self.gflops[0]
    }
}

/// The CPU's model: on x86-64 the brand string from `cpuid` with the family and model numbers
/// (which tell generations apart where a virtual machine shortens the brand to e.g. "AMD
/// EPYC"), elsewhere the `model name` of `/proc/cpuinfo`, else the architecture's name.
pub fn cpu_model() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::__cpuid;
        // `cpuid` exists on every x86-64 CPU; the brand leaves are read only where the CPU
        // reports them.
        let (brand, family, model) = {
            let mut brand = Vec::new();
            if __cpuid(0x8000_0000).eax >= 0x8000_0004 {
                for leaf in 0x8000_0002..=0x8000_0004u32 {
                    let r = __cpuid(leaf);
                    for reg in [r.eax, r.ebx, r.ecx, r.edx] {
                        brand.extend_from_slice(&reg.to_le_bytes());
                    }
                }
            }
            let eax = __cpuid(1).eax;
            let base_family = (eax >> 8) & 0xF;
            let family = if base_family == 0xF { base_family + ((eax >> 20) & 0xFF) } else { base_family };
            let model =
                if base_family >= 6 { ((eax >> 4) & 0xF) | (((eax >> 16) & 0xF) << 4) } else { (eax >> 4) & 0xF };
            (brand, family, model)
        };
        let brand = String::from_utf8_lossy(&brand).trim_matches(['\0', ' ']).to_owned();
        let brand = if brand.is_empty() { "x86-64".to_owned() } else { brand };
        format!("{brand} (family {family}, model {model})")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines().find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    (k.trim() == "model name").then(|| v.trim().to_owned())
                })
            })
            .unwrap_or_else(|| std::env::consts::ARCH.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_width_computes_the_same_recurrence() {
        // a ← a·m + c from 1 converges to c/(1 − m) = 1: each width's sum over its lanes and
        // accumulators is near their count.
        for w in Width::available().into_iter().chain([Width::Portable]) {
            let lanes = if w == Width::Avx2 { 8.0 } else { 16.0 };
            let sum = if w == Width::Portable { fma_portable(1000) } else { w.chunk() };
            let count = lanes * ACCUMULATORS as f32;
            assert!((sum - count).abs() < 1e-3 * count, "{w:?}: {sum} vs {count}");
        }
    }

    /// The loop is timed, not folded away by the optimiser (this crate is optimised in test
    /// builds too, see the workspace `Cargo.toml`): no core runs more than 4 FMAs of a width per
    /// cycle at 6 GHz, and a folded loop gave 3.8·10⁶ GFLOP/s.
    #[test]
    fn the_peak_is_physically_possible() {
        for w in Width::available() {
            let g = gflops(w, 0.05);
            let bound = 4.0 * w.lanes() as f64 * 2.0 * 6.0;
            assert!(g > 0.0 && g < bound, "{w:?}: {g} GFLOP/s, above {bound}");
        }
    }

    #[test]
    fn the_peak_is_measured_widest_first_with_the_cpu_named() {
        let p = Peak::measure(0.01);
        assert!(!p.gflops.is_empty());
        assert_eq!(p.widest(), p.gflops[0]);
        for &(w, g) in &p.gflops {
            assert!(g.is_finite() && g > 0.0, "{w:?}: {g}");
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            assert_eq!(p.widest().0, Width::Avx512);
        }
        assert!(!p.cpu.is_empty());
    }
}
