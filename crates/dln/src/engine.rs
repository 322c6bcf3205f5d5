//! The engines of the gradient paths: each owns the active members' weights, their batch
//! sampler and the buffers and constants its path needs, and takes one SGD step on the next
//! [`Batch`].
//!
//! [`TensorEngine`] keeps burn tensors on the backend's device (f32) and computes the gradient
//! with burn autodiff or the closed form on tensors; [`FusedEngine`] keeps the weights in host
//! memory, in f32 or f64, and runs the closed form with `gemm`, accumulating each update into the
//! weights. The trainer sees one [`Engine`]: `step`, `host_layers`, `finite`, `retain`.

use std::mem;

use burn::tensor::{Device, Int, Tensor, TensorData};
use nalgebra::DMatrix;

use crate::checkpoint::MemberStreams;
use crate::data::{Batch, BatchSampler, Generator};
use crate::device::{DeviceBatches, Footprint};
use crate::device_probe::{DeviceProbe, ProbeConstants, device_probes};
use crate::error::Result;
use crate::fused::{FusedNet, HostBatch, Real};
use crate::model::{host_to_tensors, push_row_major, tensors_to_host};
use crate::probe::ProbeContext;
use crate::step_kernel::{MAX_FUSED_BATCH, fused_update};
use crate::train::{GradientPath, Precision, TrainSpec};
use crate::{BackendKind, DataSource, DlnError};

/// The engine of a run's gradient path and precision.
pub(crate) enum Engine {
    /// Autodiff or closed form on burn tensors, in f32 (boxed: burn's tensors and device handles
    /// are large).
    Tensor(Box<TensorEngine>),
    /// The fused closed form on host memory in f32.
    Fused(FusedEngine<f32>),
    /// The fused closed form on host memory in f64.
    Fused64(FusedEngine<f64>),
}

impl Engine {
    /// The engine of `spec`'s (resolved) gradient path and precision, starting from
    /// `members[e][l]` (one per seed, in order), with the members' data streams.
    pub(crate) fn new(spec: &TrainSpec, members: &[Vec<DMatrix<f64>>], device: Device) -> Result<Self> {
        let p = spec.params();
        Ok(match (p.gradient, p.precision) {
            (GradientPath::Fused, Precision::F32) => Self::Fused(FusedEngine::new(spec, members, device)),
            (GradientPath::Fused, Precision::F64) => Self::Fused64(FusedEngine::new(spec, members, device)),
            // `TrainParams::check` refuses f64 on the tensor paths.
            (path, _) => Self::Tensor(Box::new(TensorEngine::new(spec, members, device, path)?)),
        })
    }

    /// One SGD step with learning rate `lr` (rounded to the training precision) for every
    /// member, on the next batch of each.
    pub(crate) fn step(&mut self, lr: f64) {
        match self {
            Self::Tensor(t) => t.step(lr as f32),
            Self::Fused(f) => f.step(f32::of(lr)),
            Self::Fused64(f) => f.step(lr),
        }
    }

    /// The members' layers on the host, `[member][layer]`.
    pub(crate) fn host_layers(&self) -> Result<Vec<Vec<DMatrix<f64>>>> {
        match self {
            Self::Tensor(t) => tensors_to_host(&t.weights),
            Self::Fused(f) => Ok(f.net.host_layers()),
            Self::Fused64(f) => Ok(f.net.host_layers()),
        }
    }

    /// Whether each member's weights are all finite (on the tensor path: whether their squared
    /// norm, computed on the device, is).
    pub(crate) fn finite(&self) -> Result<Vec<bool>> {
        match self {
            Self::Tensor(t) => t.finite(),
            Self::Fused(f) => Ok(f.net.finite()),
            Self::Fused64(f) => Ok(f.net.finite()),
        }
    }

    /// The active members' probes from reductions computed on the device, reading back only
    /// the small results (`crate::device_probe`): `Some` on the GPU backends' tensor paths,
    /// `None` where the probes run on host copies of the weights (CPU backends, whose numbers
    /// stay those of [`crate::probe::probe`]).
    pub(crate) fn device_probes(&self, ctx: &ProbeContext) -> Option<Result<Vec<DeviceProbe>>> {
        match self {
            Self::Tensor(t) => {
                let constants = t.probe_constants.as_ref()?;
                Some(device_probes(&t.weights, constants, t.spec.teacher(), ctx))
            }
            Self::Fused(_) | Self::Fused64(_) => None,
        }
    }

    /// Keeps the members whose `keep` flag is set, in order (weights and data streams).
    pub(crate) fn retain(&mut self, keep: &[bool]) {
        match self {
            Self::Tensor(t) => t.retain(keep),
            Self::Fused(f) => f.retain(keep),
            Self::Fused64(f) => f.retain(keep),
        }
    }

    /// The members' data streams and, where batches are drawn on the device, the number of
    /// the next one (see [`crate::checkpoint`]).
    pub(crate) fn streams(&self) -> (Vec<MemberStreams>, Option<u64>) {
        match self {
            Self::Tensor(t) => (t.sampler.streams(), t.on_device.as_ref().map(DeviceBatches::position)),
            Self::Fused(f) => (f.sampler.streams(), None),
            Self::Fused64(f) => (f.sampler.streams(), None),
        }
    }

    /// Puts the members' data streams where [`streams`](Self::streams) gave them (field
    /// `checkpoint` when they do not fit this engine).
    pub(crate) fn restore_streams(&mut self, streams: &[MemberStreams], device_batch: Option<u64>) -> Result<()> {
        let (sampler, on_device) = match self {
            Self::Tensor(t) => (&mut t.sampler, t.on_device.as_mut()),
            Self::Fused(f) => return f.sampler.restore(streams).and(expect_none(device_batch)),
            Self::Fused64(f) => return f.sampler.restore(streams).and(expect_none(device_batch)),
        };
        sampler.restore(streams)?;
        match (on_device, device_batch) {
            (Some(batches), Some(next)) => batches.seek(next),
            (None, None) => {}
            _ => {
                return Err(DlnError::invalid(
                    "checkpoint",
                    "must come from a run drawing its batches on the same device",
                    device_batch,
                ));
            }
        }
        Ok(())
    }

    /// The layer tensors `[E, d_l, d_{l−1}]` on the device, in f32 (uploaded from the host on
    /// the fused path; none once every member has been dropped).
    pub(crate) fn tensors(&self) -> Vec<Tensor<3>> {
        let layers = match self {
            Self::Tensor(t) => return t.weights.clone(),
            Self::Fused(f) => f.net.host_layers(),
            Self::Fused64(f) => f.net.host_layers(),
        };
        if layers.is_empty() {
            Vec::new()
        } else {
            host_to_tensors(&layers, self.device()).expect("layers of the checked shapes upload")
        }
    }

    /// The device of the run's backend.
    pub(crate) fn device(&self) -> &Device {
        match self {
            Self::Tensor(t) => &t.device,
            Self::Fused(f) => &f.device,
            Self::Fused64(f) => &f.device,
        }
    }

    /// The layers of `n` clones of the active member at `slot`, whose current layers are
    /// `layers`, after one SGD step each on its own fresh batch from the member's clone stream
    /// at SGD step `step` (`[clone][layer]`): the engine's own weights and data streams are
    /// untouched. The clones run on the run's gradient path and precision.
    pub(crate) fn clone_steps(
        &mut self,
        spec: &TrainSpec,
        slot: usize,
        layers: &[DMatrix<f64>],
        n: usize,
        step: u64,
    ) -> Result<Vec<Vec<DMatrix<f64>>>> {
        let clones = vec![layers.to_vec(); n];
        let lr = spec.params().lr;
        match self {
            Self::Tensor(t) => t.clone_steps(slot, &clones, step, lr as f32),
            Self::Fused(f) => Ok(f.clone_steps(spec, slot, &clones, step, f32::of(lr))),
            Self::Fused64(f) => Ok(f.clone_steps(spec, slot, &clones, step, lr)),
        }
    }

    /// The gradients `∇W_l` of the next batch at the current weights, without stepping,
    /// computed by `path` on f32 tensors (a test oracle: draws the batch, advancing the data
    /// streams).
    #[cfg(feature = "testing")]
    pub(crate) fn next_gradients(&mut self, spec: &TrainSpec, path: GradientPath) -> Vec<Tensor<3>> {
        let weights = self.tensors();
        let device = self.device().clone();
        let e = weights.first().map_or(0, |w| w.dims()[0]);
        let constants = DeviceConstants::new(spec, e, &device);
        let (x, y, scale) = match self {
            Self::Tensor(t) => t.next_batch(),
            Self::Fused(f) => constants.tensors(&f.sampler.next(), &device),
            Self::Fused64(_) => panic!("the tensor oracle takes f32 batches; use next_host_gradients"),
        };
        gradients(&weights, x, y, scale, path)
    }

    /// The fused path's gradients of the next batch at the current weights in the training
    /// precision, `[member][layer]`, without stepping (a test oracle; `None` on the tensor
    /// paths).
    #[cfg(feature = "testing")]
    pub(crate) fn next_host_gradients(&mut self) -> Option<Vec<Vec<DMatrix<f64>>>> {
        match self {
            Self::Tensor(_) => None,
            Self::Fused(f) => Some(f.next_gradients()),
            Self::Fused64(f) => Some(f.next_gradients()),
        }
    }
}

/// The batch constants on the device for `e` members: the teacher `M` repeated, and for
/// population descent the input `I_{d_0}` repeated.
pub(crate) struct DeviceConstants {
    teacher: Tensor<3>,
    eye: Option<Tensor<3>>,
}

impl DeviceConstants {
    /// The constants of `spec` for `e` members on `device`.
    pub(crate) fn new(spec: &TrainSpec, e: usize, device: &Device) -> Self {
        let teacher = repeat_matrix(spec.teacher().matrix(), e, device);
        let eye = (spec.params().data.source == DataSource::Population).then(|| {
            let d_in = spec.params().dims[0];
            repeat_matrix(&DMatrix::identity(d_in, d_in), e, device)
        });
        Self { teacher, eye }
    }

    /// The batch as tensors `(x, y, scale)`: inputs `[E, d_0, B]`, targets `[E, d_L, B]` and
    /// the loss scale.
    pub(crate) fn tensors(&self, batch: &Batch<'_, f32>, device: &Device) -> (Tensor<3>, Tensor<3>, f32) {
        let [e, d_out, d_in] = self.teacher.dims();
        let upload = |buf: &[f32], rows: usize, b: usize| {
            Tensor::<3>::from_data(TensorData::new(buf.to_vec(), [e, rows, b]), device)
        };
        match *batch {
            Batch::Online { x, noise, size } => {
                let x = upload(x, d_in, size);
                let y = self.teacher.clone().matmul(x.clone()) + upload(noise, d_out, size);
                (x, y, batch.scale())
            }
            Batch::Labelled { x, y, size } => (upload(x, d_in, size), upload(y, d_out, size), batch.scale()),
            Batch::Population => {
                let eye = self.eye.clone().expect("population constants for a population batch");
                (eye, self.teacher.clone(), batch.scale())
            }
        }
    }
}

/// The engine of the tensor paths ([`GradientPath::Autodiff`], [`GradientPath::ClosedForm`]),
/// in f32.
pub(crate) struct TensorEngine {
    device: Device,
    backend: BackendKind,
    path: GradientPath,
    /// Layer tensors `[E, d_l, d_{l−1}]` (none once every member has been dropped).
    weights: Vec<Tensor<3>>,
    sampler: BatchSampler<f32>,
    /// Online Philox batches drawn on the device (cubecl backends); `None` where the host
    /// sampler draws them and they are uploaded.
    on_device: Option<DeviceBatches>,
    constants: DeviceConstants,
    /// The teacher's constants of the probes' device reductions (GPU backends only).
    probe_constants: Option<ProbeConstants>,
    spec: TrainSpec,
}

impl TensorEngine {
    fn new(spec: &TrainSpec, members: &[Vec<DMatrix<f64>>], device: Device, path: GradientPath) -> Result<Self> {
        let p = spec.params();
        check_fits(spec, members.len(), &device, path)?;
        let weights = host_to_tensors(members, &device)?;
        let constants = DeviceConstants::new(spec, members.len(), &device);
        let sampler = BatchSampler::of(spec);
        let rows = p.dims[0] + p.dims[p.dims.len() - 1];
        let on_device = (p.data.source == DataSource::Online
            && p.data.generator == Generator::Philox
            && crate::device::addressable(members.len(), rows, p.batch))
        .then(|| DeviceBatches::new(&p.seeds, p.streams.data, p.data.sigma, &device))
        .flatten();
        let probe_constants = p.backend.is_gpu().then(|| ProbeConstants::new(spec.teacher(), &device));
        Ok(Self {
            backend: p.backend,
            path,
            weights,
            sampler,
            on_device,
            constants,
            probe_constants,
            spec: spec.clone(),
            device,
        })
    }

    /// The next batch as tensors `(x, y, scale)` (see [`DeviceConstants::tensors`]): drawn on
    /// the device where it can be, else drawn on the host and uploaded.
    fn next_batch(&mut self) -> (Tensor<3>, Tensor<3>, f32) {
        let Some(batches) = &mut self.on_device else {
            return self.constants.tensors(&self.sampler.next(), &self.device);
        };
        let dims = &self.spec.params().dims;
        let b = self.spec.params().batch;
        let (x, noise) = batches.next(dims[0], dims[dims.len() - 1], b, &self.device);
        let y = self.constants.teacher.clone().matmul(x.clone());
        let y = match noise {
            Some(noise) => y + noise,
            None => y,
        };
        (x, y, 1.0 / b as f32)
    }

    fn step(&mut self, lr: f32) {
        let (x, y, scale) = self.next_batch();
        self.weights = match self.path {
            GradientPath::Autodiff => {
                let grads = gradients(&self.weights, x, y, scale, self.path);
                mem::take(&mut self.weights).into_iter().zip(grads).map(|(w, g)| w - g.mul_scalar(lr)).collect()
            }
            _ => {
                let fuse = self.backend.is_gpu() && self.spec.params().batch <= MAX_FUSED_BATCH;
                closed_form_step(mem::take(&mut self.weights), x, y, scale * lr, fuse)
            }
        };
    }

    /// One step of the `clones` of the member at `slot` on its clone batches (see
    /// [`Engine::clone_steps`]).
    fn clone_steps(
        &mut self,
        slot: usize,
        clones: &[Vec<DMatrix<f64>>],
        step: u64,
        lr: f32,
    ) -> Result<Vec<Vec<DMatrix<f64>>>> {
        let weights = host_to_tensors(clones, &self.device)?;
        let constants = DeviceConstants::new(&self.spec, clones.len(), &self.device);
        let (x, y, scale) = constants.tensors(&self.sampler.clone_batch(slot, step, clones.len()), &self.device);
        let grads = gradients(&weights, x, y, scale, self.path);
        let stepped: Vec<Tensor<3>> = weights.into_iter().zip(grads).map(|(w, g)| w - g.mul_scalar(lr)).collect();
        tensors_to_host(&stepped)
    }

    fn finite(&self) -> Result<Vec<bool>> {
        let e = self.weights.first().map_or(0, |w| w.dims()[0]);
        if e == 0 {
            return Ok(Vec::new());
        }
        let norms = self
            .weights
            .iter()
            .map(|w| w.clone().square().sum_dim(2).sum_dim(1).reshape([e]))
            .reduce(|a, b| a + b)
            .expect("at least one layer");
        let norms: Vec<f32> = norms.into_data().try_to_vec::<f32>().map_err(|err| DlnError::Backend {
            backend: self.backend.to_string(),
            reason: format!("reading the weight norms back failed: {err:?}"),
        })?;
        Ok(norms.iter().map(|v| v.is_finite()).collect())
    }

    fn retain(&mut self, keep: &[bool]) {
        if keep.iter().all(|&k| k) {
            return;
        }
        self.sampler.retain(keep);
        if let Some(batches) = &mut self.on_device {
            batches.retain(keep);
        }
        let idx: Vec<i64> = (0..keep.len()).filter(|&slot| keep[slot]).map(|slot| slot as i64).collect();
        if idx.is_empty() {
            self.weights.clear();
            return;
        }
        let n = idx.len();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [n]), &self.device);
        self.weights = mem::take(&mut self.weights).into_iter().map(|w| w.select(0, idx.clone())).collect();
        self.constants = DeviceConstants::new(&self.spec, n, &self.device);
    }
}

/// Refuses `members` members of `spec` on a cubecl device whose memory their estimated
/// [`Footprint`] exceeds (the largest tensor past the largest allocation, or the whole past
/// the stated memory), naming the seeds and how many members would fit.
pub(crate) fn check_fits(spec: &TrainSpec, members: usize, device: &Device, path: GradientPath) -> Result<()> {
    if path == GradientPath::Fused {
        return Ok(());
    }
    let Some((max_alloc, max_memory)) = crate::device::memory_limits(device) else {
        return Ok(());
    };
    let p = spec.params();
    let autodiff = path == GradientPath::Autodiff;
    let footprint = |e: usize| Footprint::of(&p.dims, p.batch, e, spec.teacher().rank(), autodiff);
    let need = footprint(members);
    if need.fits(max_alloc, max_memory) {
        return Ok(());
    }
    let fit = match (1..members).rev().find(|&e| footprint(e).fits(max_alloc, max_memory)) {
        Some(fit) => format!("at most {fit} members fit; split the seeds over runs"),
        None => "not one member fits".to_string(),
    };
    let gib = |b: u64| b as f64 / f64::from(1u32 << 30);
    let memory = max_memory.map_or(String::new(), |m| format!(", {:.2} GiB in all", gib(m)));
    Err(DlnError::invalid(
        "seeds",
        format!(
            "{members} members of dims {:?} at batch {} need about {:.2} GiB on the {} device (largest tensor {:.2} GiB), \
             more than it allows ({:.2} GiB per tensor{memory}): {fit}",
            p.dims,
            p.batch,
            gib(need.total),
            p.backend,
            gib(need.largest),
            gib(max_alloc),
        ),
        members,
    ))
}

/// The engine of [`GradientPath::Fused`] in precision `T`: the weights, work spaces and data
/// streams in host memory, and the batch constants there.
pub(crate) struct FusedEngine<T> {
    device: Device,
    net: FusedNet<T>,
    sampler: BatchSampler<T>,
    /// `M` row-major.
    teacher: Vec<T>,
    /// `I_{d_0}` row-major (population descent's input).
    eye: Vec<T>,
    d_in: usize,
}

impl<T: Real> FusedEngine<T> {
    fn new(spec: &TrainSpec, members: &[Vec<DMatrix<f64>>], device: Device) -> Self {
        let d_in = spec.params().dims[0];
        let row_major = |m: &DMatrix<f64>| -> Vec<T> { m.transpose().iter().map(|&v| T::of(v)).collect() };
        Self {
            device,
            net: FusedNet::new(&spec.params().dims, members),
            sampler: BatchSampler::of(spec),
            teacher: row_major(spec.teacher().matrix()),
            eye: row_major(&DMatrix::identity(d_in, d_in)),
            d_in,
        }
    }

    fn step(&mut self, lr: T) {
        let batch = self.sampler.next();
        let host = host_batch(&batch, &self.teacher, &self.eye, self.d_in);
        self.net.step(&host, lr, None);
    }

    fn retain(&mut self, keep: &[bool]) {
        self.net.retain(keep);
        self.sampler.retain(keep);
    }

    /// One step of the `clones` of the member at `slot` on its clone batches (see
    /// [`Engine::clone_steps`]).
    fn clone_steps(
        &mut self,
        spec: &TrainSpec,
        slot: usize,
        clones: &[Vec<DMatrix<f64>>],
        step: u64,
        lr: T,
    ) -> Vec<Vec<DMatrix<f64>>> {
        let mut net = FusedNet::<T>::new(&spec.params().dims, clones);
        let batch = self.sampler.clone_batch(slot, step, clones.len());
        net.step(&host_batch(&batch, &self.teacher, &self.eye, self.d_in), lr, None);
        net.host_layers()
    }

    /// The gradients of the next batch, `[member][layer]`, without stepping.
    #[cfg(feature = "testing")]
    fn next_gradients(&mut self) -> Vec<Vec<DMatrix<f64>>> {
        let batch = self.sampler.next();
        let host = host_batch(&batch, &self.teacher, &self.eye, self.d_in);
        let mut grads = vec![Vec::new(); self.net.members()];
        self.net.step(&host, T::zero(), Some(&mut grads));
        let dims = self.net.dims();
        grads
            .iter()
            .map(|g| {
                (0..g.len())
                    .map(|l| DMatrix::from_row_iterator(dims[l + 1], dims[l], g[l].iter().map(|&v| v.wide())))
                    .collect()
            })
            .collect()
    }
}

/// The fused path's view of a batch: the sampler's buffers, with the engine's teacher and
/// identity for online data and population descent.
fn host_batch<'a, T: Real>(batch: &Batch<'a, T>, teacher: &'a [T], eye: &'a [T], d_in: usize) -> HostBatch<'a, T> {
    let scale = batch.scale();
    match *batch {
        Batch::Online { x, noise, size } => {
            HostBatch { x, z: noise, teacher: Some(teacher), batch: size, scale, shared: false }
        }
        Batch::Labelled { x, y, size } => HostBatch { x, z: y, teacher: None, batch: size, scale, shared: false },
        Batch::Population => HostBatch { x: eye, z: teacher, teacher: None, batch: d_in, scale, shared: true },
    }
}

/// Refuses a device batch number for an engine that draws its batches on the host.
fn expect_none(device_batch: Option<u64>) -> Result<()> {
    match device_batch {
        None => Ok(()),
        Some(_) => {
            Err(DlnError::invalid("checkpoint", "must come from a run drawing its batches on the host", device_batch))
        }
    }
}

/// `m` repeated `e` times as a `[e, rows, cols]` tensor.
fn repeat_matrix(m: &DMatrix<f64>, e: usize, device: &Device) -> Tensor<3> {
    let mut buf = Vec::with_capacity(e * m.len());
    for _ in 0..e {
        push_row_major(&mut buf, m);
    }
    Tensor::from_data(TensorData::new(buf, [e, m.nrows(), m.ncols()]), device)
}

/// The gradients of `scale · ½ Σ‖W_L⋯W_1 x − y‖²` with respect to each `W_l`, per member, by
/// `path` ([`GradientPath::Auto`] takes the closed form on the tensors given; the fused path
/// reads the tensors back and computes on the host). A test oracle: the trainer's engines step
/// without materialising gradients on the fused path.
pub fn gradients(weights: &[Tensor<3>], x: Tensor<3>, y: Tensor<3>, scale: f32, path: GradientPath) -> Vec<Tensor<3>> {
    match path {
        // Tensors in hand: the closed form on them.
        GradientPath::ClosedForm | GradientPath::Auto => {
            let mut acts = Vec::with_capacity(weights.len() + 1);
            acts.push(x);
            for w in weights {
                let h = w.clone().matmul(acts.last().expect("non-empty").clone());
                acts.push(h);
            }
            let out = acts.pop().expect("output");
            let mut delta = (out - y).mul_scalar(scale);
            let mut grads = Vec::with_capacity(weights.len());
            for l in (0..weights.len()).rev() {
                let input = acts.pop().expect("one activation per layer");
                grads.push(delta.clone().matmul(input.swap_dims(1, 2)));
                if l > 0 {
                    delta = weights[l].clone().swap_dims(1, 2).matmul(delta);
                }
            }
            grads.reverse();
            grads
        }
        GradientPath::Fused => fused_gradients(weights, x, y, scale),
        GradientPath::Autodiff => {
            let tracked: Vec<Tensor<3>> = weights.iter().map(|w| w.clone().autodiff().require_grad()).collect();
            let out = tracked.iter().fold(x, |h, w| w.clone().matmul(h));
            let loss = (out - y).square().sum().mul_scalar(0.5 * scale);
            let grads = loss.backward();
            tracked.iter().map(|w| w.grad(&grads).expect("every layer requires a gradient")).collect()
        }
    }
}

/// One closed-form SGD step on tensors, `W_l ← W_l − η ∇W_l`, with the step size folded into
/// the error: `δ_L = (h_L − y)·(scale·η)` (one scalar product for all layers), then from the
/// last layer down `δ_{l−1} = W_lᵀ δ_l` (before `W_l` changes) and `W_l ← W_l − δ_l h_{l−1}ᵀ`.
/// Per layer one product and one subtraction update the weights: no gradient tensors, no
/// per-layer scaling (two launches per layer fewer than gradients, then `w − η g`). With `fuse`
/// (the cubecl backends at small batches) the product and the subtraction are one kernel
/// launch (`crate::step_kernel`): 16 launches per step at depth 4 instead of 20.
fn closed_form_step(weights: Vec<Tensor<3>>, x: Tensor<3>, y: Tensor<3>, step: f32, fuse: bool) -> Vec<Tensor<3>> {
    let mut acts = Vec::with_capacity(weights.len());
    let mut h = x;
    for w in &weights {
        let next = w.clone().matmul(h.clone());
        acts.push(h);
        h = next;
    }
    let mut delta = (h - y).mul_scalar(step);
    let mut stepped: Vec<Tensor<3>> = Vec::with_capacity(weights.len());
    for (l, w) in weights.into_iter().enumerate().rev() {
        let input = acts.pop().expect("one activation per layer");
        let back = (l > 0).then(|| w.clone().swap_dims(1, 2).matmul(delta.clone()));
        let fused = if fuse { fused_update(&w, &delta, &input) } else { None };
        stepped.push(match fused {
            Some(updated) => updated,
            None => w - delta.clone().matmul(input.swap_dims(1, 2)),
        });
        if let Some(back) = back {
            delta = back;
        }
    }
    stepped.reverse();
    stepped
}

/// The fused path's gradients on tensors read back to the host (a test oracle).
fn fused_gradients(weights: &[Tensor<3>], x: Tensor<3>, y: Tensor<3>, scale: f32) -> Vec<Tensor<3>> {
    let host = |t: &Tensor<3>| -> Vec<f32> { t.to_data().convert::<f32>().try_to_vec::<f32>().expect("f32 data") };
    let [e, _, b] = y.dims();
    let mut dims = vec![x.dims()[1]];
    dims.extend(weights.iter().map(|w| w.dims()[1]));
    let members = tensors_to_host(weights).expect("weights read back");
    let mut net = FusedNet::<f32>::new(&dims, &members);
    let (xs, ys) = (host(&x), host(&y));
    let batch = HostBatch { x: &xs, z: &ys, teacher: None, batch: b, scale, shared: false };
    let mut grads = vec![Vec::new(); e];
    net.step(&batch, 0.0, Some(&mut grads));
    let device = x.device();
    (0..weights.len())
        .map(|l| {
            let (rows, cols) = (dims[l + 1], dims[l]);
            let mut flat = Vec::with_capacity(e * rows * cols);
            for g in &grads {
                flat.extend_from_slice(&g[l]);
            }
            Tensor::<3>::from_data(TensorData::new(flat, [e, rows, cols]), &device)
        })
        .collect()
}
