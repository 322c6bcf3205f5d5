//! The fused CPU path ([`crate::GradientPath::Fused`]): closed-form SGD on host memory with the
//! `gemm` crate, one member at a time, each layer's update accumulated into its weights by a
//! single product (`W ← W − η δ hᵀ`), with no tensors, no tape and no gradient buffers. It trains
//! in f32 or in f64 ([`crate::Precision`]): the code is generic over the [`Real`] type.

use std::fmt::Debug;

use modewise_theory::rng::philox::Philox;
use nalgebra::DMatrix;
use rayon::prelude::*;

/// A float type the fused path trains in: `f32` or `f64` (both supported by `gemm`).
pub(crate) trait Real: num_traits::Float + Default + Debug + Send + Sync + 'static {
    /// `v` rounded to this type (`v as Self`).
    fn of(v: f64) -> Self;
    /// The value in f64 (exact).
    fn wide(self) -> f64;
    /// Elements `0 … out.len() − 1` of part `part` of draw `draw` of the counter-based
    /// generator `g`: its `f32` normals, in f64 widened exactly (so both precisions see the same
    /// data).
    fn fill_normal(g: &Philox, draw: u64, part: u32, out: &mut [Self]);
}

impl Real for f32 {
    fn of(v: f64) -> Self {
        v as f32
    }

    fn wide(self) -> f64 {
        f64::from(self)
    }

    fn fill_normal(g: &Philox, draw: u64, part: u32, out: &mut [Self]) {
        g.fill_normal(draw, part, 0, out);
    }
}

impl Real for f64 {
    fn of(v: f64) -> Self {
        v
    }

    fn wide(self) -> f64 {
        self
    }

    fn fill_normal(g: &Philox, draw: u64, part: u32, out: &mut [Self]) {
        const CHUNK: usize = 512;
        let mut buf = [0.0f32; CHUNK];
        for (i, chunk) in out.chunks_mut(CHUNK).enumerate() {
            let narrow = &mut buf[..chunk.len()];
            g.fill_normal(draw, part, (i * CHUNK) as u64, narrow);
            for (w, &v) in chunk.iter_mut().zip(narrow.iter()) {
                *w = f64::from(v);
            }
        }
    }
}

/// A row-major matrix operand: pointer, rows, columns, row stride, column stride.
#[derive(Clone, Copy)]
struct View<T> {
    ptr: *const T,
    rows: usize,
    cols: usize,
    rs: isize,
    cs: isize,
}

impl<T> View<T> {
    /// A row-major `rows × cols` matrix.
    fn of(data: &[T], rows: usize, cols: usize) -> Self {
        debug_assert!(data.len() >= rows * cols);
        Self { ptr: data.as_ptr(), rows, cols, rs: cols as isize, cs: 1 }
    }

    /// The transpose, without copying.
    fn t(self) -> Self {
        Self { ptr: self.ptr, rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs }
    }
}

/// `dst = alpha·dst + beta·lhs·rhs` (`alpha` ignored and `dst` not read when `read_dst` is
/// false), `dst` row-major `lhs.rows × rhs.cols`, single-threaded.
fn product<T: Real>(dst: &mut [T], read_dst: bool, alpha: T, lhs: View<T>, rhs: View<T>, beta: T) {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    assert!(rhs.rows == k && dst.len() >= m * n, "product: shapes {m}×{k} · {}×{n} into {}", rhs.rows, dst.len());
    // SAFETY: the views describe live slices of at least the extents checked above (their
    // constructors take the slices), `dst` is a distinct mutable slice of `m × n` elements,
    // and strides are those of row-major storage or its transpose.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            read_dst,
            lhs.ptr,
            lhs.cs,
            lhs.rs,
            rhs.ptr,
            rhs.cs,
            rhs.rs,
            alpha,
            beta,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// `gemm` copies a left operand that is already contiguous down its columns into its own
/// panels when the product has more than this many microkernel widths of columns (its default,
/// 8, copies the batch of every `W h` and `Wᵀ δ` of W2, 100 columns, above 8 × 6 with the
/// AVX-512 `f32` kernel); at 32 it reads the batch in place up to 192 columns there (the
/// layout it would copy into is the batch's own when `B` is a multiple of 16) and still copies
/// for wider layers, where the copy is reused more. A copy changes no bit. `gemm` keeps the
/// setting for the whole process (burn-flex's products see it too; their operands are copied
/// as before where they are not contiguous).
const LHS_PACKING_THRESHOLD: usize = 32;

/// Per-member work space: activations `h_1 … h_L` (`[d_l, B]`), targets and errors.
#[derive(Debug, Clone, Default)]
struct Scratch<T> {
    acts: Vec<Vec<T>>,
    y: Vec<T>,
    delta: Vec<T>,
    delta_prev: Vec<T>,
}

/// The layers of every member in host memory, row-major in `T` (`[member][layer]`, layer `l`
/// of shape `d_l × d_{l−1}`), and their work spaces.
#[derive(Debug, Clone)]
pub(crate) struct FusedNet<T> {
    dims: Vec<usize>,
    weights: Vec<Vec<Vec<T>>>,
    scratch: Vec<Scratch<T>>,
}

/// One batch for every member: inputs `x` (`[E][d_0 × B]`), and either the label noise `z`
/// (targets `M x + z`, `M` row-major `d_L × d_0`) or the targets themselves.
pub(crate) struct HostBatch<'a, T> {
    /// Inputs, member after member, each row-major `d_0 × B`.
    pub x: &'a [T],
    /// Label noise or targets, member after member, each row-major `d_L × B`.
    pub z: &'a [T],
    /// `Some(M)` when `z` is noise to add to `M x`; `None` when `z` holds the targets.
    pub teacher: Option<&'a [T]>,
    /// Batch size `B` (columns of `x` and `z`).
    pub batch: usize,
    /// Loss scale (`1/B`).
    pub scale: T,
    /// Whether every member uses the same `x` and `z` (population descent's `I` and `M`).
    pub shared: bool,
}

impl<T: Real> FusedNet<T> {
    /// Takes the members' layers (`members[e][l]`).
    pub(crate) fn new(dims: &[usize], members: &[Vec<DMatrix<f64>>]) -> Self {
        gemm::set_lhs_packing_threshold_single_thread(LHS_PACKING_THRESHOLD);
        let weights = members
            .iter()
            .map(|layers| {
                layers
                    .iter()
                    .map(|w| {
                        let mut out = Vec::with_capacity(w.len());
                        for r in 0..w.nrows() {
                            out.extend(w.row(r).iter().map(|&v| T::of(v)));
                        }
                        out
                    })
                    .collect()
            })
            .collect();
        Self { dims: dims.to_vec(), weights, scratch: vec![Scratch::default(); members.len()] }
    }

    /// The layers in f64, `[member][layer]`.
    pub(crate) fn host_layers(&self) -> Vec<Vec<DMatrix<f64>>> {
        self.weights
            .iter()
            .map(|layers| {
                layers
                    .iter()
                    .enumerate()
                    .map(|(l, w)| {
                        DMatrix::from_row_iterator(self.dims[l + 1], self.dims[l], w.iter().map(|&v| v.wide()))
                    })
                    .collect()
            })
            .collect()
    }

    /// The number of members.
    #[cfg(feature = "testing")]
    pub(crate) fn members(&self) -> usize {
        self.weights.len()
    }

    /// The widths `[d_0, …, d_L]`.
    #[cfg(feature = "testing")]
    pub(crate) fn dims(&self) -> &[usize] {
        &self.dims
    }

    /// Whether each member's weights are all finite.
    pub(crate) fn finite(&self) -> Vec<bool> {
        self.weights.iter().map(|layers| layers.iter().all(|w| w.iter().all(|v| v.is_finite()))).collect()
    }

    /// Keeps the members whose `keep` flag is set, in order.
    pub(crate) fn retain(&mut self, keep: &[bool]) {
        let mut i = 0;
        self.weights.retain(|_| {
            i += 1;
            keep[i - 1]
        });
        self.scratch.truncate(self.weights.len());
    }

    /// One SGD step of every member with learning rate `lr`; with `grads`, the gradients are
    /// written there instead (`[member][layer]`, row-major) and the weights are left alone.
    /// Members run in parallel on the thread pool; each is computed alone, so results do not
    /// depend on the number of threads.
    pub(crate) fn step(&mut self, batch: &HostBatch<'_, T>, lr: T, grads: Option<&mut [Vec<Vec<T>>]>) {
        let dims = &self.dims;
        let (d_in, d_out, b) = (dims[0], dims[dims.len() - 1], batch.batch);
        let work = |e: usize, layers: &mut Vec<Vec<T>>, s: &mut Scratch<T>, grads: Option<&mut Vec<Vec<T>>>| {
            let member = if batch.shared { 0 } else { e };
            let x = &batch.x[member * d_in * b..(member + 1) * d_in * b];
            let z = &batch.z[member * d_out * b..(member + 1) * d_out * b];
            member_step(dims, layers, s, x, z, batch, lr, grads);
        };
        match grads {
            Some(g) => self
                .weights
                .par_iter_mut()
                .zip(self.scratch.par_iter_mut())
                .zip(g.par_iter_mut())
                .with_min_len(min_members_per_task())
                .enumerate()
                .for_each(|(e, ((layers, s), g))| work(e, layers, s, Some(g))),
            None => self
                .weights
                .par_iter_mut()
                .zip(self.scratch.par_iter_mut())
                .with_min_len(min_members_per_task())
                .enumerate()
                .for_each(|(e, (layers, s))| work(e, layers, s, None)),
        }
    }
}

/// The fewest members one task of the thread pool takes: all of them when the pool has a
/// single thread, so that a step runs on the calling thread instead of being handed to the
/// pool's one worker and back (two context switches per call, about 3% of W2 × 16's time on
/// one core); one otherwise. Members are computed alone either way, so no result changes.
pub(crate) fn min_members_per_task() -> usize {
    if rayon::current_num_threads() == 1 { usize::MAX } else { 1 }
}

/// One member's closed-form step: forward, `δ_L = (h_L − y)·scale`, then from the last layer
/// down `δ_{l−1} = W_lᵀ δ_l` (before `W_l` changes) and `W_l ← W_l − η δ_l h_{l−1}ᵀ`.
#[allow(clippy::too_many_arguments)]
fn member_step<T: Real>(
    dims: &[usize],
    layers: &mut [Vec<T>],
    s: &mut Scratch<T>,
    x: &[T],
    z: &[T],
    batch: &HostBatch<'_, T>,
    lr: T,
    mut grads: Option<&mut Vec<Vec<T>>>,
) {
    let depth = layers.len();
    let b = batch.batch;
    let (zero, one) = (T::zero(), T::one());
    // `acts[l]` is `h_l` for `l ≥ 1`; `h_0` is `x` itself (`acts[0]` stays empty).
    s.acts.resize(depth + 1, Vec::new());
    for l in 1..=depth {
        let (done, rest) = s.acts.split_at_mut(l);
        let input: &[T] = if l == 1 { x } else { &done[l - 1] };
        let h = &mut rest[0];
        h.resize(dims[l] * b, zero);
        product(h, false, zero, View::of(&layers[l - 1], dims[l], dims[l - 1]), View::of(input, dims[l - 1], b), one);
    }
    let d_out = dims[depth];
    s.y.clear();
    s.y.extend_from_slice(z);
    if let Some(m) = batch.teacher {
        product(&mut s.y, true, one, View::of(m, d_out, dims[0]), View::of(x, dims[0], b), one);
    }
    s.delta.clear();
    s.delta.extend(s.acts[depth].iter().zip(&s.y).map(|(&h, &y)| (h - y) * batch.scale));
    for l in (1..=depth).rev() {
        let (rows, cols) = (dims[l], dims[l - 1]);
        if l > 1 {
            s.delta_prev.resize(cols * b, zero);
            product(
                &mut s.delta_prev,
                false,
                zero,
                View::of(&layers[l - 1], rows, cols).t(),
                View::of(&s.delta, rows, b),
                one,
            );
        }
        let input = View::of(if l == 1 { x } else { &s.acts[l - 1] }, cols, b).t();
        match grads.as_deref_mut() {
            Some(g) => {
                g.resize(depth, Vec::new());
                g[l - 1].resize(rows * cols, zero);
                product(&mut g[l - 1], false, zero, View::of(&s.delta, rows, b), input, one);
            }
            None => product(&mut layers[l - 1], true, one, View::of(&s.delta, rows, b), input, -lr),
        }
        if l > 1 {
            std::mem::swap(&mut s.delta, &mut s.delta_prev);
        }
    }
}
