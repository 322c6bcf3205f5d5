//! Ensembles of per-mode paths: the exact per-mode SGD chain and the SDE integrators
//! (Euler–Maruyama, Milstein), run in parallel with per-path random streams.
//!
//! **Reproducibility.** Path `p` draws from its own PCG64 generator (`rand_pcg`, portable and
//! stable across versions), whose 128-bit state and stream are expanded from the seed and the
//! path's stream number `stream_offset + p` (see [`path_rng`] and the table of every stream in
//! [`crate::rng`]). Paths are grouped into fixed
//! blocks of [`BLOCK`] and the block statistics are merged in block order, so results are
//! bit-identical whatever the number of rayon threads.
//!
//! **Positivity.** For `L ≥ 2` the SDE paths are reflected at 0 after each step (`x ← |x|`).
//! In exact arithmetic they never cross 0, a fixed point where drift and noise vanish, so a
//! crossing is a discretisation artefact; reflection respects the symmetry `a → −a` of even
//! depths and matches the peer scripts. The exact chain is left as it is: it is SGD itself.

use std::sync::atomic::{AtomicBool, Ordering};

use rand_distr::{ChiSquared, Distribution, StandardNormal};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::check::{at_least, positive};
use crate::{Coordinate, Mode, Result, Spectrum, TheoryError, TimeGrid};

/// Paths per block: the unit of parallel work and of the deterministic reduction.
pub const BLOCK: usize = 64;
/// Steps whose random numbers are drawn in one go before the block is advanced.
const CHUNK: usize = 64;
pub use crate::rng::{MODE_STREAM_STRIDE, PathRng, path_rng};

/// Fixed-step scheme of an SDE integrator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scheme {
    /// `x ← x + b dt + g ΔW` (weak order 1, strong order ½).
    #[default]
    EulerMaruyama,
    /// `x ← x + b dt + g ΔW + ½ g g′ (ΔW² − dt)` (strong order 1).
    Milstein,
}

/// What the paths of an ensemble follow.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Dynamics {
    /// The exact per-mode SGD chain (`docs/theory.md` §3.3): per step `a ← a − η a^{L−1} ḡ` with
    /// `ḡ = (1/B) Σ_b [(a^L − s) z_b² − ε_b z_b]`, one step per `η` of time. It is sampled
    /// exactly in distribution as `ḡ = ((a^L − s) Q − σ sqrt(Q) ξ) / B` with `Q ~ χ²_B` and
    /// `ξ ~ N(0, 1)` independent (given the `z_b`, `Σ ε_b z_b ~ N(0, σ² Q)`).
    Chain,
    /// The per-mode SDE in a coordinate, with a fixed time step `dt`.
    Sde {
        /// Integration scheme.
        scheme: Scheme,
        /// Coordinate the SDE is written in (statistics are always of `w`).
        coordinate: Coordinate,
        /// Time step, `> 0`.
        dt: f64,
    },
}

/// Parameters of an ensemble run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnsembleParams {
    /// Number of independent paths `P ≥ 1`.
    pub paths: usize,
    /// Seed of the random streams.
    pub seed: u64,
    /// Times at which to record (snapped to whole steps).
    pub grid: TimeGrid,
    /// Keep every path's value at every recorded time (`P × times` numbers).
    pub record_paths: bool,
    /// First stream number (path `p` uses `stream_offset + p`).
    pub stream_offset: u64,
}

impl EnsembleParams {
    /// `paths` paths recorded on `grid` with `seed`, no per-path records, stream offset 0.
    pub fn new(paths: usize, seed: u64, grid: TimeGrid) -> Self {
        Self { paths, seed, grid, record_paths: false, stream_offset: 0 }
    }

    /// The same ensemble on the streams of `ensemble`'s mode `mode` (its paths' numbers in the
    /// table of [`crate::rng`]): the stream offset for a single-mode ensemble.
    pub fn on_streams(self, ensemble: crate::rng::Ensemble, mode: usize) -> Self {
        Self { stream_offset: ensemble.mode_offset(mode), ..self }
    }
}

/// Statistics of the end-to-end strength `w` across an ensemble, per recorded time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnsembleStats {
    /// Recorded times (`step · dt`, or `step · η` for the chain).
    pub times: Vec<f64>,
    /// Recorded steps.
    pub steps: Vec<u64>,
    /// Mean of `w` over the finite paths.
    pub mean: Vec<f64>,
    /// Unbiased variance of `w` over the finite paths (0 with fewer than two).
    pub variance: Vec<f64>,
    /// Number of paths whose value is finite (the others diverged).
    pub finite: Vec<usize>,
    /// Each path's `w` at the last recorded time.
    pub final_w: Vec<f64>,
    /// Each path's `w` at each time, row-major `[time][path]`, when asked for.
    pub samples: Option<Vec<f64>>,
}

impl EnsembleStats {
    /// The values of every path at recorded time index `i`, when samples were kept.
    pub fn samples_at(&self, i: usize) -> Option<&[f64]> {
        let p = self.final_w.len();
        self.samples.as_ref().map(|s| &s[i * p..(i + 1) * p])
    }
}

impl Mode {
    /// The variance of one exact-chain step of the end-to-end strength at `w`, `Var(Δw)`
    /// (`docs/theory.md` §3.3): `Δw = w [(1 − y)^L − 1]` with `y = η a^{L−2} ḡ`,
    /// `ḡ = ((w − s) Q − σ √Q ξ)/B`, `Q ~ χ²_B`, `ξ ~ N(0, 1)`, from the exact moments
    /// `E Q^n = B (B + 2) ⋯ (B + 2n − 2)` and `E ξ^{2r} = (2r − 1)!!`. Divided by `η`, it is `D(w)`
    /// up to the step's `O(η)` terms, which the clone estimate shares.
    pub fn chain_step_variance(&self, w: f64) -> f64 {
        let (l, b) = (self.depth() as usize, f64::from(self.batch()));
        let (mu, sigma) = (w - self.s(), self.sigma());
        let scale = self.lr() * self.a_from_w(w).powi(l as i32 - 2) / b;
        // E[(μQ − σ√Q ξ)^p]: the odd powers of ξ vanish.
        let q_moment = |n: usize| (0..n).map(|i| b + 2.0 * i as f64).product::<f64>();
        let double_factorial = |r: usize| (1..=r).filter(|i| !i.is_multiple_of(2)).map(|i| i as f64).product::<f64>();
        let binomial = |n: usize, k: usize| (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64);
        let moment = |p: usize| -> f64 {
            (0..=p / 2)
                .map(|r| {
                    let k = 2 * r;
                    binomial(p, k)
                        * mu.powi((p - k) as i32)
                        * sigma.powi(k as i32)
                        * q_moment(p - r)
                        * double_factorial(k.saturating_sub(1))
                })
                .sum::<f64>()
                * scale.powi(p as i32)
        };
        // Δw / w = Σ_j c_j y^j with c_j = C(L, j) (−1)^j.
        let c = |j: usize| binomial(l, j) * if j.is_multiple_of(2) { 1.0 } else { -1.0 };
        let mut var = 0.0;
        for i in 1..=l {
            for j in 1..=l {
                var += c(i) * c(j) * (moment(i + j) - moment(i) * moment(j));
            }
        }
        w * w * var
    }

    /// Runs an ensemble of `params.paths` paths from `w0` under `dynamics`, recording the
    /// mean and variance of `w` on the grid (see the module documentation for the random
    /// streams and positivity).
    pub fn ensemble(&self, w0: f64, dynamics: Dynamics, params: &EnsembleParams) -> Result<EnsembleStats> {
        self.ensemble_until(w0, dynamics, params, &AtomicBool::new(false))
    }

    /// [`Mode::ensemble`] that gives up with [`TheoryError::Interrupted`] once `stop` is set
    /// (another thread sets it, e.g. on Ctrl-C): every block of paths looks at it every
    /// [`CHUNK`] steps, so a long ensemble stops within moments. Results of a run that was not
    /// stopped are those of [`Mode::ensemble`], bit for bit.
    pub fn ensemble_until(
        &self,
        w0: f64,
        dynamics: Dynamics,
        params: &EnsembleParams,
        stop: &AtomicBool,
    ) -> Result<EnsembleStats> {
        self.check_initial(w0)?;
        at_least("paths", params.paths, 1)?;
        let dt = match dynamics {
            Dynamics::Chain => self.lr,
            Dynamics::Sde { dt, .. } => positive("dt", dt)?,
        };
        let steps = params.grid.steps(dt);
        let run = Run { w0, steps: &steps, params, stop };
        let stats = match dynamics {
            Dynamics::Chain => run.go(&ChainKernel::new(self)?),
            Dynamics::Sde { scheme: Scheme::EulerMaruyama, coordinate: Coordinate::EndToEnd, dt } => match self.depth {
                1 => run.go(&FastEmW::new(self, dt, PowZero, PowZero)),
                2 => run.go(&FastEmW::new(self, dt, PowOne, PowOne)),
                4 => run.go(&FastEmW::new(self, dt, PowThreeHalves, PowTwo)),
                _ => {
                    let l = self.l();
                    run.go(&FastEmW::new(self, dt, PowF(2.0 - 2.0 / l), PowF(3.0 - 4.0 / l)))
                }
            },
            Dynamics::Sde { scheme, coordinate, dt } => {
                run.go(&SdeKernel { mode: *self, scheme, coordinate, dt, sqrt_dt: dt.sqrt() })
            }
        }
        .ok_or(TheoryError::Interrupted)?;
        Ok(EnsembleStats { times: steps.iter().map(|&n| n as f64 * dt).collect(), steps, ..stats })
    }
}

/// Runs one ensemble per mode of a spectrum (modes are independent under alignment, `docs/theory.md` §3.2),
/// mode `k` on streams offset by `k ·` [`MODE_STREAM_STRIDE`].
pub fn spectrum_ensemble(
    spectrum: &Spectrum,
    dynamics: Dynamics,
    params: &EnsembleParams,
) -> Result<Vec<EnsembleStats>> {
    spectrum
        .modes()
        .iter()
        .zip(spectrum.w0())
        .enumerate()
        .map(|(k, (mode, &w0))| {
            let p = EnsembleParams {
                stream_offset: params.stream_offset + k as u64 * MODE_STREAM_STRIDE,
                ..params.clone()
            };
            mode.ensemble(w0, dynamics, &p)
        })
        .collect()
}

/// One path-advancing rule: how many random numbers a step takes, how to draw them, how to
/// move a block of states.
trait Kernel: Sync {
    /// Random numbers per path and step.
    const DRAWS: usize;
    /// Initial state from the end-to-end `w0`.
    fn init(&self, w0: f64) -> f64;
    /// Draws one step's numbers for one path into `out[0], out[stride], …`.
    fn draw(&self, rng: &mut PathRng, out: &mut [f64], stride: usize);
    /// Advances every state of the block by one step; `noise[d * x.len() + p]` is draw `d` of path `p`.
    fn step(&self, x: &mut [f64], noise: &[f64]);
    /// End-to-end value of a state.
    fn to_w(&self, x: f64) -> f64;
}

/// The ensemble being run: initial value, recorded steps, parameters, and the flag that stops
/// it.
pub(crate) struct Run<'a> {
    pub(crate) w0: f64,
    pub(crate) steps: &'a [u64],
    pub(crate) params: &'a EnsembleParams,
    pub(crate) stop: &'a AtomicBool,
}

/// Per-block result: values `[time][path]` of the block's paths.
pub(crate) struct BlockOut {
    pub(crate) values: Vec<f64>,
    pub(crate) paths: usize,
}

impl Run<'_> {
    /// Runs every block and merges them; `None` when stopped.
    fn go<K: Kernel>(&self, kernel: &K) -> Option<EnsembleStats> {
        let p = self.params.paths;
        let blocks = p.div_ceil(BLOCK);
        let outs: Option<Vec<BlockOut>> = (0..blocks)
            .into_par_iter()
            .map(|b| {
                let first = b * BLOCK;
                self.block(kernel, first, BLOCK.min(p - first))
            })
            .collect();
        Some(self.reduce(&outs?))
    }

    /// Runs one block of paths; `None` as soon as the stop flag is seen.
    fn block<K: Kernel>(&self, kernel: &K, first: usize, n: usize) -> Option<BlockOut> {
        let mut rngs: Vec<PathRng> =
            (0..n).map(|i| path_rng(self.params.seed, self.params.stream_offset + (first + i) as u64)).collect();
        let mut x = vec![kernel.init(self.w0); n];
        let per_step = K::DRAWS * n;
        let mut noise = vec![0.0; CHUNK * per_step];
        let mut values = vec![0.0; self.steps.len() * n];
        let mut current = 0u64;
        for (ti, &target) in self.steps.iter().enumerate() {
            while current < target {
                if self.stop.load(Ordering::Relaxed) {
                    return None;
                }
                let m = (target - current).min(CHUNK as u64) as usize;
                for (i, rng) in rngs.iter_mut().enumerate() {
                    for j in 0..m {
                        kernel.draw(rng, &mut noise[j * per_step + i..], n);
                    }
                }
                for j in 0..m {
                    kernel.step(&mut x, &noise[j * per_step..(j + 1) * per_step]);
                }
                current += m as u64;
            }
            for (v, &xi) in values[ti * n..(ti + 1) * n].iter_mut().zip(&x) {
                *v = kernel.to_w(xi);
            }
        }
        Some(BlockOut { values, paths: n })
    }

    /// Merges block statistics in block order (Chan et al.'s pairwise update), over finite values.
    pub(crate) fn reduce(&self, outs: &[BlockOut]) -> EnsembleStats {
        let times = self.steps.len();
        let p = self.params.paths;
        let mut mean = vec![0.0; times];
        let mut m2 = vec![0.0; times];
        let mut count = vec![0usize; times];
        for out in outs {
            for t in 0..times {
                let row = &out.values[t * out.paths..(t + 1) * out.paths];
                let (mut nb, mut sum) = (0usize, 0.0);
                for &v in row.iter().filter(|v| v.is_finite()) {
                    nb += 1;
                    sum += v;
                }
                if nb == 0 {
                    continue;
                }
                let mb = sum / nb as f64;
                let m2b: f64 = row.iter().filter(|v| v.is_finite()).map(|&v| (v - mb) * (v - mb)).sum();
                let na = count[t];
                let n = na + nb;
                let delta = mb - mean[t];
                mean[t] += delta * nb as f64 / n as f64;
                m2[t] += m2b + delta * delta * (na as f64) * (nb as f64) / n as f64;
                count[t] = n;
            }
        }
        let variance = m2.iter().zip(&count).map(|(&m, &n)| if n > 1 { m / (n - 1) as f64 } else { 0.0 }).collect();
        let mean = mean.iter().zip(&count).map(|(&m, &n)| if n > 0 { m } else { f64::NAN }).collect();
        let gather = |t: usize| -> Vec<f64> {
            outs.iter().flat_map(|o| o.values[t * o.paths..(t + 1) * o.paths].iter().copied()).collect()
        };
        let final_w = if times > 0 { gather(times - 1) } else { Vec::new() };
        let samples = self.params.record_paths.then(|| {
            let mut all = Vec::with_capacity(times * p);
            for t in 0..times {
                all.extend(gather(t));
            }
            all
        });
        EnsembleStats { times: Vec::new(), steps: Vec::new(), mean, variance, finite: count, final_w, samples }
    }
}

/// The exact per-mode SGD chain in the per-layer coordinate `a`.
struct ChainKernel {
    mode: Mode,
    chi2: ChiSquared<f64>,
}

impl ChainKernel {
    fn new(mode: &Mode) -> Result<Self> {
        let chi2 = ChiSquared::new(f64::from(mode.batch)).map_err(|e| TheoryError::Numerical {
            what: "chain",
            reason: format!("χ² law with B = {} degrees of freedom: {e}", mode.batch),
        })?;
        Ok(Self { mode: *mode, chi2 })
    }
}

impl Kernel for ChainKernel {
    const DRAWS: usize = 2;
    fn init(&self, w0: f64) -> f64 {
        self.mode.a_from_w(w0)
    }
    #[inline]
    fn draw(&self, rng: &mut PathRng, out: &mut [f64], stride: usize) {
        out[0] = self.chi2.sample(rng);
        out[stride] = StandardNormal.sample(rng);
    }
    fn step(&self, x: &mut [f64], noise: &[f64]) {
        let Mode { depth, s, sigma, lr, batch } = self.mode;
        let inv_batch = 1.0 / f64::from(batch);
        let (q, xi) = noise.split_at(x.len());
        for ((a, &q), &xi) in x.iter_mut().zip(q).zip(xi) {
            // a ← a − η a^{L−1} ḡ,  ḡ = ((a^L − s) Q − σ √Q ξ) / B
            let a_pow = a.powi(depth as i32 - 1);
            let g = ((a_pow * *a - s) * q - sigma * q.sqrt() * xi) * inv_batch;
            *a -= lr * a_pow * g;
        }
    }
    fn to_w(&self, x: f64) -> f64 {
        self.mode.w_from_a(x)
    }
}

/// Any SDE scheme in any coordinate, through the [`Mode`] formulas.
struct SdeKernel {
    mode: Mode,
    scheme: Scheme,
    coordinate: Coordinate,
    dt: f64,
    sqrt_dt: f64,
}

impl Kernel for SdeKernel {
    const DRAWS: usize = 1;
    fn init(&self, w0: f64) -> f64 {
        match self.coordinate {
            Coordinate::EndToEnd => w0,
            Coordinate::PerLayer => self.mode.a_from_w(w0),
        }
    }
    #[inline]
    fn draw(&self, rng: &mut PathRng, out: &mut [f64], _stride: usize) {
        out[0] = StandardNormal.sample(rng);
    }
    fn step(&self, x: &mut [f64], noise: &[f64]) {
        let reflect = self.mode.depth() >= 2;
        for (x, &z) in x.iter_mut().zip(noise) {
            let dw = self.sqrt_dt * z;
            let g = self.mode.noise(self.coordinate, *x);
            let mut next = *x + self.mode.drift(self.coordinate, *x) * self.dt + g * dw;
            if self.scheme == Scheme::Milstein {
                next += 0.5 * g * self.mode.noise_derivative(self.coordinate, *x) * (dw * dw - self.dt);
            }
            *x = if reflect { next.abs() } else { next };
        }
    }
    fn to_w(&self, x: f64) -> f64 {
        match self.coordinate {
            Coordinate::EndToEnd => x,
            Coordinate::PerLayer => self.mode.w_from_a(x),
        }
    }
}

/// A power `w^p` known at compile time, so the Euler–Maruyama loop vectorises.
trait Pow: Copy + Sync {
    fn pow(self, w: f64) -> f64;
}
#[derive(Clone, Copy)]
struct PowZero;
impl Pow for PowZero {
    #[inline(always)]
    fn pow(self, _w: f64) -> f64 {
        1.0
    }
}
#[derive(Clone, Copy)]
struct PowOne;
impl Pow for PowOne {
    #[inline(always)]
    fn pow(self, w: f64) -> f64 {
        w
    }
}
#[derive(Clone, Copy)]
struct PowTwo;
impl Pow for PowTwo {
    #[inline(always)]
    fn pow(self, w: f64) -> f64 {
        w * w
    }
}
#[derive(Clone, Copy)]
struct PowThreeHalves;
impl Pow for PowThreeHalves {
    #[inline(always)]
    fn pow(self, w: f64) -> f64 {
        w * w.sqrt()
    }
}
#[derive(Clone, Copy)]
struct PowF(f64);
impl Pow for PowF {
    #[inline(always)]
    fn pow(self, w: f64) -> f64 {
        w.powf(self.0)
    }
}

/// Euler–Maruyama in the end-to-end coordinate with the powers `w^{2−2/L}` (`p1`) and
/// `w^{3−4/L}` (`p2`) specialised: the same formulas as [`Mode::drift`] and [`Mode::noise`].
#[derive(Clone, Copy)]
struct FastEmW<P1, P2> {
    p1: P1,
    p2: P2,
    s: f64,
    sigma2: f64,
    /// `L`.
    gf: f64,
    /// `(η/2B) L (L − 1)`.
    ito: f64,
    /// `sqrt(η/B) L sqrt(dt)`.
    noise: f64,
    dt: f64,
    reflect: bool,
}

impl<P1: Pow, P2: Pow> FastEmW<P1, P2> {
    fn new(mode: &Mode, dt: f64, p1: P1, p2: P2) -> Self {
        let l = mode.l();
        Self {
            p1,
            p2,
            s: mode.s(),
            sigma2: mode.sigma() * mode.sigma(),
            gf: l,
            ito: mode.noise_scale() / 2.0 * l * (l - 1.0),
            noise: mode.noise_scale().sqrt() * l * dt.sqrt(),
            dt,
            reflect: mode.depth() >= 2,
        }
    }
}

impl<P1: Pow, P2: Pow> Kernel for FastEmW<P1, P2> {
    const DRAWS: usize = 1;
    fn init(&self, w0: f64) -> f64 {
        w0
    }
    #[inline]
    fn draw(&self, rng: &mut PathRng, out: &mut [f64], _stride: usize) {
        out[0] = StandardNormal.sample(rng);
    }
    fn step(&self, x: &mut [f64], noise: &[f64]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { self.step_avx2(x, noise) };
        }
        self.step_portable(x, noise);
    }
    fn to_w(&self, x: f64) -> f64 {
        x
    }
}

impl<P1: Pow, P2: Pow> FastEmW<P1, P2> {
    /// The step loop compiled for AVX2 (four lanes instead of two). Only element-wise IEEE
    /// operations (`+ − × √ |·|`, never fused) are used, so the results are bit-identical to
    /// [`Self::step_portable`].
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn step_avx2(&self, x: &mut [f64], noise: &[f64]) {
        self.step_portable(x, noise);
    }

    #[inline(always)]
    fn step_portable(&self, x: &mut [f64], noise: &[f64]) {
        for (w, &z) in x.iter_mut().zip(noise) {
            let d = self.s - *w;
            let q = 2.0 * d * d + self.sigma2;
            let p1 = self.p1.pow(*w);
            let drift = self.gf * p1 * d + self.ito * self.p2.pow(*w) * q;
            let next = *w + drift * self.dt + self.noise * p1 * q.sqrt() * z;
            *w = if self.reflect { next.abs() } else { next };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_step_variance_is_the_diffusion_to_first_order_and_matches_a_simulation() {
        use rand::SeedableRng;
        use rand_distr::{ChiSquared, Distribution, StandardNormal};
        let variance = |xs: &[f64]| {
            let mean = xs.iter().sum::<f64>() / xs.len() as f64;
            xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (xs.len() - 1) as f64
        };
        for (depth, w, sigma) in [(2, 0.7, 0.3), (3, 0.4, 0.0), (4, 1.3, 0.5)] {
            let m = crate::ModeParams { depth, s: 1.0, sigma, lr: 0.02, batch: 4 }.check().unwrap();
            let exact = m.chain_step_variance(w);
            // Monte Carlo of one chain step from w (docs/theory.md §3.3).
            let mut rng = rand_pcg::Pcg64::seed_from_u64(depth.into());
            let chi = ChiSquared::new(4.0).unwrap();
            let a = m.a_from_w(w);
            let steps: Vec<f64> = (0..400_000)
                .map(|_| {
                    let q: f64 = chi.sample(&mut rng);
                    let xi: f64 = StandardNormal.sample(&mut rng);
                    let g = ((w - 1.0) * q - sigma * q.sqrt() * xi) / 4.0;
                    w * ((1.0 - 0.02 * a.powi(depth as i32 - 2) * g).powi(depth as i32) - 1.0)
                })
                .collect();
            let sampled = variance(&steps);
            // Relative standard error of a sample variance: about sqrt(2/n) times the kurtosis factor.
            assert!((sampled / exact - 1.0).abs() < 0.02, "L = {depth}: {sampled} vs {exact}");
            // To first order in η it is η D(w).
            let d = m.diffusion(crate::Coordinate::EndToEnd, w) * 0.02;
            assert!((exact / d - 1.0).abs() < 0.2, "L = {depth}: {exact} vs η D = {d}");
        }
    }

    /// The specialised Euler–Maruyama loop computes the same steps as the generic formulas.
    #[test]
    fn fast_euler_maruyama_matches_the_formulas() {
        for depth in [1u32, 2, 3, 4, 5] {
            let mode = crate::ModeParams { depth, s: 1.3, sigma: 0.4, lr: 0.01, batch: 2 }.check().unwrap();
            let dt = 1e-3;
            let grid = TimeGrid::linear(2.0, 5).unwrap();
            let params = EnsembleParams { record_paths: true, ..EnsembleParams::new(130, 4, grid) };
            let steps = params.grid.steps(dt);
            let run = Run { w0: 0.05, steps: &steps, params: &params, stop: &AtomicBool::new(false) };
            let generic = run
                .go(&SdeKernel {
                    mode,
                    scheme: Scheme::EulerMaruyama,
                    coordinate: Coordinate::EndToEnd,
                    dt,
                    sqrt_dt: dt.sqrt(),
                })
                .expect("not stopped");
            let fast = mode
                .ensemble(
                    0.05,
                    Dynamics::Sde { scheme: Scheme::EulerMaruyama, coordinate: Coordinate::EndToEnd, dt },
                    &params,
                )
                .unwrap();
            let (a, b) = (generic.samples.unwrap(), fast.samples.unwrap());
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() <= 1e-10 * x.abs().max(1e-3), "L={depth}: {x} vs {y}");
            }
        }
    }

    /// A set stop flag ends an ensemble at its first check; an unset one changes nothing.
    #[test]
    fn a_set_stop_flag_interrupts_an_ensemble_and_an_unset_one_changes_nothing() {
        let mode = crate::ModeParams { depth: 2, s: 1.0, sigma: 0.3, lr: 0.01, batch: 1 }.check().unwrap();
        let grid = TimeGrid::linear(5.0, 4).unwrap();
        let params = EnsembleParams::new(200, 7, grid);
        let dynamics = Dynamics::Sde { scheme: Scheme::EulerMaruyama, coordinate: Coordinate::EndToEnd, dt: 0.01 };
        let err = mode.ensemble_until(0.1, dynamics, &params, &AtomicBool::new(true)).unwrap_err();
        assert_eq!(err, TheoryError::Interrupted);
        let err = mode.ensemble_until(0.1, Dynamics::Chain, &params, &AtomicBool::new(true)).unwrap_err();
        assert_eq!(err, TheoryError::Interrupted);
        let free = mode.ensemble_until(0.1, dynamics, &params, &AtomicBool::new(false)).unwrap();
        assert_eq!(free, mode.ensemble(0.1, dynamics, &params).unwrap());
    }
}
