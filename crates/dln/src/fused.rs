//! The fused CPU path ([`crate::GradientPath::Fused`]): closed-form SGD on host memory with the
//! `gemm` crate, one member at a time, each layer's update accumulated into its weights by a
//! single product (`W ← W − η δ hᵀ`), with no tensors, no tape and no gradient buffers.

use nalgebra::DMatrix;
use rayon::prelude::*;

/// A row-major `f32` matrix operand: pointer, rows, columns, row stride, column stride.
#[derive(Clone, Copy)]
struct View {
    ptr: *const f32,
    rows: usize,
    cols: usize,
    rs: isize,
    cs: isize,
}

impl View {
    /// A row-major `rows × cols` matrix.
    fn of(data: &[f32], rows: usize, cols: usize) -> Self {
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
fn product(dst: &mut [f32], read_dst: bool, alpha: f32, lhs: View, rhs: View, beta: f32) {
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

/// Per-member work space: activations `h_1 … h_L` (`[d_l, B]`), targets and errors.
#[derive(Debug, Clone, Default)]
struct Scratch {
    acts: Vec<Vec<f32>>,
    y: Vec<f32>,
    delta: Vec<f32>,
    delta_prev: Vec<f32>,
}

/// The layers of every member in host memory, row-major `f32` (`[member][layer]`, layer `l`
/// of shape `d_l × d_{l−1}`), and their work spaces.
#[derive(Debug, Clone)]
pub(crate) struct FusedNet {
    dims: Vec<usize>,
    weights: Vec<Vec<Vec<f32>>>,
    scratch: Vec<Scratch>,
}

/// One batch for every member: inputs `x` (`[E][d_0 × B]`), and either the label noise `z`
/// (targets `M x + z`, `M` row-major `d_L × d_0`) or the targets themselves.
pub(crate) struct HostBatch<'a> {
    /// Inputs, member after member, each row-major `d_0 × B`.
    pub x: &'a [f32],
    /// Label noise or targets, member after member, each row-major `d_L × B`.
    pub z: &'a [f32],
    /// `Some(M)` when `z` is noise to add to `M x`; `None` when `z` holds the targets.
    pub teacher: Option<&'a [f32]>,
    /// Batch size `B` (columns of `x` and `z`).
    pub batch: usize,
    /// Loss scale (`1/B`).
    pub scale: f32,
    /// Whether every member uses the same `x` and `z` (population descent's `I` and `M`).
    pub shared: bool,
}

impl FusedNet {
    /// Takes the members' layers (`members[e][l]`).
    pub(crate) fn new(dims: &[usize], members: &[Vec<DMatrix<f64>>]) -> Self {
        let weights = members
            .iter()
            .map(|layers| {
                layers
                    .iter()
                    .map(|w| {
                        let mut out = Vec::with_capacity(w.len());
                        for r in 0..w.nrows() {
                            out.extend(w.row(r).iter().map(|&v| v as f32));
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
                        DMatrix::from_row_iterator(self.dims[l + 1], self.dims[l], w.iter().map(|&v| f64::from(v)))
                    })
                    .collect()
            })
            .collect()
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
    pub(crate) fn step(&mut self, batch: &HostBatch<'_>, lr: f32, grads: Option<&mut [Vec<Vec<f32>>]>) {
        let dims = &self.dims;
        let (d_in, d_out, b) = (dims[0], dims[dims.len() - 1], batch.batch);
        let work = |e: usize, layers: &mut Vec<Vec<f32>>, s: &mut Scratch, grads: Option<&mut Vec<Vec<f32>>>| {
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
                .enumerate()
                .for_each(|(e, ((layers, s), g))| work(e, layers, s, Some(g))),
            None => self
                .weights
                .par_iter_mut()
                .zip(self.scratch.par_iter_mut())
                .enumerate()
                .for_each(|(e, (layers, s))| work(e, layers, s, None)),
        }
    }
}

/// One member's closed-form step: forward, `δ_L = (h_L − y)·scale`, then from the last layer
/// down `δ_{l−1} = W_lᵀ δ_l` (before `W_l` changes) and `W_l ← W_l − η δ_l h_{l−1}ᵀ`.
#[allow(clippy::too_many_arguments)]
fn member_step(
    dims: &[usize],
    layers: &mut [Vec<f32>],
    s: &mut Scratch,
    x: &[f32],
    z: &[f32],
    batch: &HostBatch<'_>,
    lr: f32,
    mut grads: Option<&mut Vec<Vec<f32>>>,
) {
    let depth = layers.len();
    let b = batch.batch;
    // `acts[l]` is `h_l` for `l ≥ 1`; `h_0` is `x` itself (`acts[0]` stays empty).
    s.acts.resize(depth + 1, Vec::new());
    for l in 1..=depth {
        let (done, rest) = s.acts.split_at_mut(l);
        let input: &[f32] = if l == 1 { x } else { &done[l - 1] };
        let h = &mut rest[0];
        h.resize(dims[l] * b, 0.0);
        product(h, false, 0.0, View::of(&layers[l - 1], dims[l], dims[l - 1]), View::of(input, dims[l - 1], b), 1.0);
    }
    let d_out = dims[depth];
    s.y.clear();
    s.y.extend_from_slice(z);
    if let Some(m) = batch.teacher {
        product(&mut s.y, true, 1.0, View::of(m, d_out, dims[0]), View::of(x, dims[0], b), 1.0);
    }
    s.delta.clear();
    s.delta.extend(s.acts[depth].iter().zip(&s.y).map(|(h, y)| (h - y) * batch.scale));
    for l in (1..=depth).rev() {
        let (rows, cols) = (dims[l], dims[l - 1]);
        if l > 1 {
            s.delta_prev.resize(cols * b, 0.0);
            product(
                &mut s.delta_prev,
                false,
                0.0,
                View::of(&layers[l - 1], rows, cols).t(),
                View::of(&s.delta, rows, b),
                1.0,
            );
        }
        let input = View::of(if l == 1 { x } else { &s.acts[l - 1] }, cols, b).t();
        match grads.as_deref_mut() {
            Some(g) => {
                g.resize(depth, Vec::new());
                g[l - 1].resize(rows * cols, 0.0);
                product(&mut g[l - 1], false, 0.0, View::of(&s.delta, rows, b), input, 1.0);
            }
            None => product(&mut layers[l - 1], true, 1.0, View::of(&s.delta, rows, b), input, -lr),
        }
        if l > 1 {
            std::mem::swap(&mut s.delta, &mut s.delta_prev);
        }
    }
}
