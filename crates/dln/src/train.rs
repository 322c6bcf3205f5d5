//! The SGD trainer: validated run parameters, the two gradient paths (burn autodiff and
//! closed-form backpropagation), batched ensembles, the probe schedule and divergence handling.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use burn::tensor::{Device, Int, Tensor, TensorData};
use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};

use crate::data::{DataParams, DataSource, MemberData};
use crate::error::{Result, check_positive};
use crate::fused::{Batch, FusedNet};
use crate::init::InitScheme;
use crate::model::{Dln, host_to_tensors, push_row_major, tensors_to_host};
use crate::probe::{Probe, ProbeContext, probe};
use crate::teacher::{Teacher, TeacherParams};
use crate::{BackendKind, DlnError};
use modewise_theory::ModeParams;
use modewise_theory::ensemble::path_rng;

/// How the SGD gradient is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GradientPath {
    /// The fastest path for the backend: [`Fused`](Self::Fused) on ndarray and flex,
    /// [`ClosedForm`](Self::ClosedForm) on wgpu. Checking the parameters resolves it, so data
    /// files record the path that ran.
    #[default]
    Auto,
    /// burn autodiff on the backend's autodiff decorator (the reference).
    Autodiff,
    /// Closed-form backpropagation with plain tensor ops, no tape:
    /// `δ_L = (h_L − y)/B`, `∇W_l = δ_l h_{l−1}ᵀ`, `δ_{l−1} = W_lᵀ δ_l`.
    ClosedForm,
    /// The same closed form on the CPU in host memory with the `gemm` crate, each layer's
    /// update accumulated into its weights by one product (the fastest CPU path; not for wgpu).
    Fused,
}

impl GradientPath {
    /// The name used in configs and data files.
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Autodiff => "autodiff",
            Self::ClosedForm => "closed-form",
            Self::Fused => "fused",
        }
    }

    /// The path that runs on `backend`: [`Auto`](Self::Auto) resolved, others unchanged.
    pub fn resolve(self, backend: BackendKind) -> Self {
        match (self, backend) {
            (Self::Auto, BackendKind::Wgpu) => Self::ClosedForm,
            (Self::Auto, _) => Self::Fused,
            (path, _) => path,
        }
    }
}

impl std::str::FromStr for GradientPath {
    type Err = DlnError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(Self::Auto),
            "autodiff" => Ok(Self::Autodiff),
            "closed-form" => Ok(Self::ClosedForm),
            "fused" => Ok(Self::Fused),
            other => Err(DlnError::invalid("gradient", "must be auto, autodiff, closed-form or fused", other)),
        }
    }
}

/// When the probes run: step 0, log-spaced steps, and the last step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbeSchedule {
    /// Probe steps per decade of steps (`round(10^(j / per_decade))`, `j = 0, 1, …`); positive.
    pub per_decade: f64,
}

impl Default for ProbeSchedule {
    /// Ten probes per decade.
    fn default() -> Self {
        Self { per_decade: 10.0 }
    }
}

impl ProbeSchedule {
    /// The probe steps of a run of `steps` steps, increasing, with 0 and `steps` included.
    pub fn steps(&self, steps: u64) -> Vec<u64> {
        let mut set = BTreeSet::from([0, steps]);
        let mut j = 0u32;
        loop {
            let s = 10f64.powf(j as f64 / self.per_decade).round();
            if s >= steps as f64 {
                break;
            }
            set.insert(s as u64);
            j += 1;
        }
        set.into_iter().collect()
    }
}

/// Unchecked parameters of a training run (one network, or an ensemble of seeds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainParams {
    /// Layer widths `[d_0, …, d_L]` (input, hidden…, output); depth `L = dims.len() − 1 ≥ 1`.
    pub dims: Vec<usize>,
    /// The teacher.
    pub teacher: TeacherParams,
    /// The initialisation scheme.
    pub init: InitScheme,
    /// The data and label noise.
    pub data: DataParams,
    /// Learning rate `η`; finite and positive.
    pub lr: f64,
    /// Batch size `B`; at least 1 (ignored by population gradient descent).
    pub batch: usize,
    /// Number of SGD steps (0 probes the initial network only).
    pub steps: u64,
    /// One seed per ensemble member (initialisation and data); distinct, at least one.
    pub seeds: Vec<u64>,
    /// Gradient path (default `auto`: fused on the CPU backends, closed-form on wgpu).
    pub gradient: GradientPath,
    /// Hardware backend.
    pub backend: BackendKind,
    /// Probe schedule.
    pub probes: ProbeSchedule,
    /// Mode-diffusion probe: 0 (default) computes it exactly; `n ≥ 2` estimates it from `n` fresh
    /// samples (the Monte Carlo reference).
    pub n_probe: usize,
    /// Divergence check period in steps between probes; at least 1.
    pub check_every: u64,
}

impl Default for TrainParams {
    fn default() -> Self {
        Self {
            dims: vec![8, 16, 16, 8],
            teacher: TeacherParams::default(),
            init: InitScheme::default(),
            data: DataParams::default(),
            lr: 0.01,
            batch: 8,
            steps: 10_000,
            seeds: vec![0],
            gradient: GradientPath::default(),
            backend: BackendKind::default(),
            probes: ProbeSchedule::default(),
            n_probe: 0,
            check_every: 100,
        }
    }
}

impl TrainParams {
    /// Checks every rule and builds the teacher.
    pub fn check(&self) -> Result<TrainSpec> {
        if self.dims.len() < 2 {
            return Err(DlnError::invalid(
                "dims",
                "must list at least an input and an output width ([d_0, …, d_L], L ≥ 1)",
                &self.dims,
            ));
        }
        for (l, &d) in self.dims.iter().enumerate() {
            if d == 0 {
                return Err(DlnError::invalid(format!("dims[{l}]"), "must be at least 1", d));
            }
        }
        check_positive("lr", self.lr)?;
        if self.batch == 0 {
            return Err(DlnError::invalid("batch", "must be at least 1", self.batch));
        }
        if self.seeds.is_empty() {
            return Err(DlnError::invalid("seeds", "must hold at least one seed", "[]"));
        }
        let mut seen = BTreeSet::new();
        for (i, s) in self.seeds.iter().enumerate() {
            if !seen.insert(s) {
                return Err(DlnError::invalid(
                    format!("seeds[{i}]"),
                    "must be distinct (a repeated seed repeats a run)",
                    s,
                ));
            }
        }
        check_positive("probes.per_decade", self.probes.per_decade)?;
        if self.check_every == 0 {
            return Err(DlnError::invalid("check_every", "must be at least 1", 0));
        }
        if self.n_probe == 1 {
            return Err(DlnError::invalid("n_probe", "must be 0 (exact diffusion) or at least 2 (samples)", 1));
        }
        if self.gradient == GradientPath::Fused && self.backend == BackendKind::Wgpu {
            return Err(DlnError::invalid(
                "gradient",
                "fused runs on the CPU in host memory; with the wgpu backend use closed-form or autodiff",
                "fused",
            ));
        }
        let (d_in, d_out) = (self.dims[0], *self.dims.last().expect("checked"));
        self.data.check(self.batch, d_in)?;
        let teacher = self.teacher.build(d_in, d_out)?;
        self.init.check(&self.dims, &teacher)?;
        let params = TrainParams { gradient: self.gradient.resolve(self.backend), ..self.clone() };
        Ok(TrainSpec { params, teacher })
    }
}

/// Checked run parameters with their teacher.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainSpec {
    params: TrainParams,
    teacher: Teacher,
}

impl TrainSpec {
    /// The parameters.
    pub fn params(&self) -> &TrainParams {
        &self.params
    }

    /// The teacher.
    pub fn teacher(&self) -> &Teacher {
        &self.teacher
    }

    /// Depth `L`.
    pub fn depth(&self) -> usize {
        self.params.dims.len() - 1
    }

    /// The theory crate's parameters of teacher mode `k` (0-based) under this run's SGD.
    pub fn mode_params(&self, k: usize) -> ModeParams {
        ModeParams {
            depth: self.depth() as u32,
            s: self.teacher.s()[k],
            sigma: self.params.data.sigma,
            lr: self.params.lr,
            batch: self.params.batch as u32,
        }
    }

    /// The probe steps of this run.
    pub fn probe_steps(&self) -> Vec<u64> {
        self.params.probes.steps(self.params.steps)
    }
}

/// One probe of one member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeRecord {
    /// Index of the member in `seeds`.
    pub member: usize,
    /// The member's seed.
    pub seed: u64,
    /// SGD steps taken.
    pub step: u64,
    /// Continuous time `t = η · step`.
    pub t: f64,
    /// The measurements.
    pub probe: Probe,
}

/// A member stopped because its weights stopped being finite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Divergence {
    /// Index of the member in `seeds`.
    pub member: usize,
    /// The member's seed.
    pub seed: u64,
    /// The step at which the divergence was detected.
    pub step: u64,
    /// The last step at which the weights were checked and finite.
    pub last_finite_step: u64,
}

/// The outcome of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainReport {
    /// Steps taken (the run's step count unless every member diverged).
    pub steps_run: u64,
    /// Members stopped by divergence, in the order detected.
    pub divergences: Vec<Divergence>,
    /// Final layers of each member (`None` for a diverged member).
    pub final_layers: Vec<Option<Vec<DMatrix<f64>>>>,
    /// Wall-clock seconds spent probing (reading the weights back and computing the probes;
    /// the rest of the run's time is training).
    pub probe_seconds: f64,
}

/// Random stream of a member's probe samples at step `step`.
fn probe_stream(step: u64) -> u64 {
    (1 << 40) + step
}

/// Trains the members of a [`TrainSpec`] as one batched network.
pub struct Trainer {
    spec: TrainSpec,
    device: Device,
    /// Layer tensors `[E_active, d_l, d_{l−1}]`.
    weights: Vec<Tensor<3>>,
    /// Indices (into `seeds`) of the members still training, in tensor order.
    active: Vec<usize>,
    data: Vec<MemberData>,
    /// `M` repeated over the active members, `[E_active, d_L, d_0]`.
    teacher_t: Tensor<3>,
    /// Population descent's constant input `I_{d_0}` repeated over the active members.
    population_x: Option<Tensor<3>>,
    step: u64,
    last_check: u64,
    divergences: Vec<Divergence>,
    x_buf: Vec<f32>,
    z_buf: Vec<f32>,
    stop: StopFlag,
    probe_seconds: f64,
    /// The fused path's host weights (then `weights` is empty).
    fused: Option<FusedNet>,
    /// `M` row-major in f32, and for population descent `I_{d_0}` (fused path).
    teacher_host: Vec<f32>,
    eye_host: Vec<f32>,
}

/// A request to stop training, shared between threads (a Ctrl-C handler sets it; trainers
/// check it every `check_every` steps and at every probe). Clones share one flag.
#[derive(Debug, Clone, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    /// A flag that is not set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks every trainer holding a clone of this flag to stop.
    pub fn request(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether a stop was requested.
    pub fn is_requested(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

impl From<Arc<AtomicBool>> for StopFlag {
    /// Wraps a flag set elsewhere (e.g. by `signal_hook::flag::register`).
    fn from(flag: Arc<AtomicBool>) -> Self {
        Self(flag)
    }
}

impl Trainer {
    /// Draws every member's initial weights and data streams and uploads them to the backend.
    pub fn new(spec: &TrainSpec) -> Result<Self> {
        let p = &spec.params;
        let device = p.backend.device();
        let members: Vec<Vec<DMatrix<f64>>> =
            p.seeds.iter().map(|&s| p.init.draw(&p.dims, &spec.teacher, s)).collect::<Result<_>>()?;
        Self::with_initial_layers(spec, members, device)
    }

    /// Starts from given initial layers (`members[e]` for `seeds[e]`) on `device`.
    pub fn with_initial_layers(spec: &TrainSpec, members: Vec<Vec<DMatrix<f64>>>, device: Device) -> Result<Self> {
        let p = &spec.params;
        if members.len() != p.seeds.len() {
            return Err(DlnError::invalid(
                "members",
                format!("must hold one network per seed ({})", p.seeds.len()),
                members.len(),
            ));
        }
        for (e, m) in members.iter().enumerate() {
            let shapes: Vec<(usize, usize)> = m.iter().map(|w| w.shape()).collect();
            let expected: Vec<(usize, usize)> = p.dims.windows(2).map(|d| (d[1], d[0])).collect();
            if shapes != expected {
                return Err(DlnError::invalid(
                    format!("members[{e}]"),
                    format!("must have layer shapes {expected:?}"),
                    shapes,
                ));
            }
        }
        let fused = (p.gradient == GradientPath::Fused).then(|| FusedNet::new(&p.dims, &members));
        let weights = if fused.is_some() { Vec::new() } else { host_to_tensors(&members, &device)? };
        let mut teacher_host = Vec::new();
        push_row_major(&mut teacher_host, spec.teacher.matrix());
        let mut eye_host = Vec::new();
        push_row_major(&mut eye_host, &DMatrix::identity(p.dims[0], p.dims[0]));
        let data = p.seeds.iter().map(|&s| MemberData::new(s, &p.data, &spec.teacher)).collect();
        let active: Vec<usize> = (0..p.seeds.len()).collect();
        let (teacher_t, population_x) = member_constants(spec, active.len(), &device);
        Ok(Self {
            spec: spec.clone(),
            device,
            weights,
            active,
            data,
            teacher_t,
            population_x,
            step: 0,
            last_check: 0,
            stop: StopFlag::default(),
            probe_seconds: 0.0,
            fused,
            teacher_host,
            eye_host,
            divergences: Vec::new(),
            x_buf: Vec::new(),
            z_buf: Vec::new(),
        })
    }

    /// The run's checked parameters.
    pub fn spec(&self) -> &TrainSpec {
        &self.spec
    }

    /// Steps taken so far.
    pub fn step_count(&self) -> u64 {
        self.step
    }

    /// Indices (into `seeds`) of the members still training.
    pub fn active_members(&self) -> &[usize] {
        &self.active
    }

    /// Waits until the backend has finished every queued operation (GPU backends run
    /// asynchronously; time a step with this).
    pub fn sync(&self) -> Result<()> {
        self.device.sync().map_err(|err| DlnError::Backend {
            backend: self.spec.params.backend.to_string(),
            reason: format!("synchronising failed: {err:?}"),
        })
    }

    /// The current network of the active members, as a burn module.
    pub fn network(&self) -> Dln {
        Dln::from_tensors(self.weight_tensors())
    }

    /// The layer tensors `[E_active, d_l, d_{l−1}]` (uploaded from the host on the fused path).
    fn weight_tensors(&self) -> Vec<Tensor<3>> {
        match &self.fused {
            Some(f) if !self.active.is_empty() => {
                host_to_tensors(&f.host_layers(), &self.device).expect("layers of the checked shapes upload")
            }
            Some(_) => Vec::new(),
            None => self.weights.clone(),
        }
    }

    /// The current layers of the active members on the host, `[active member][layer]`.
    pub fn host_layers(&self) -> Result<Vec<Vec<DMatrix<f64>>>> {
        match &self.fused {
            Some(f) => Ok(f.host_layers()),
            None => tensors_to_host(&self.weights),
        }
    }

    /// The gradients `∇W_l` of the next batch at the current weights, without stepping,
    /// computed by `path`. Draws the batch (advancing the data streams).
    pub fn next_gradients(&mut self, path: GradientPath) -> Vec<Tensor<3>> {
        let (x, y, scale) = self.next_batch();
        gradients(&self.weight_tensors(), x, y, scale, path)
    }

    /// One SGD step for every active member.
    pub fn step(&mut self) {
        if self.fused.is_some() {
            self.fused_step();
            return;
        }
        let (x, y, scale) = self.next_batch();
        let grads = gradients(&self.weights, x, y, scale, self.spec.params.gradient);
        let lr = self.spec.params.lr as f32;
        self.weights =
            std::mem::take(&mut self.weights).into_iter().zip(grads).map(|(w, g)| w - g.mul_scalar(lr)).collect();
        self.step += 1;
    }

    /// One step of the fused path: the batch is drawn into the host buffers and used there.
    fn fused_step(&mut self) {
        if self.population_x.is_none() {
            self.fill_buffers();
        }
        let p = &self.spec.params;
        let lr = p.lr as f32;
        let batch = if self.population_x.is_some() {
            let d_in = p.dims[0];
            Batch { x: &self.eye_host, z: &self.teacher_host, teacher: None, batch: d_in, scale: 1.0, shared: true }
        } else {
            let labelled = self.data[self.active[0]].has_labels();
            Batch {
                x: &self.x_buf,
                z: &self.z_buf,
                teacher: (!labelled).then_some(self.teacher_host.as_slice()),
                batch: p.batch,
                scale: 1.0 / p.batch as f32,
                shared: false,
            }
        };
        self.fused.as_mut().expect("the fused path").step(&batch, lr, None);
        self.step += 1;
    }

    /// Draws the next batch of every active member into the host buffers: inputs `[E][d_0 × B]`
    /// and label noise (or, for a fixed sample, the labels) `[E][d_L × B]`, row-major.
    fn fill_buffers(&mut self) {
        let p = &self.spec.params;
        let e = self.active.len();
        let (d_in, d_out, b) = (p.dims[0], *p.dims.last().expect("checked"), p.batch);
        self.x_buf.resize(e * d_in * b, 0.0);
        self.z_buf.resize(e * d_out * b, 0.0);
        for (slot, &m) in self.active.iter().enumerate() {
            let xs = &mut self.x_buf[slot * d_in * b..(slot + 1) * d_in * b];
            let zs = &mut self.z_buf[slot * d_out * b..(slot + 1) * d_out * b];
            self.data[m].next_batch(xs, zs, b);
        }
    }

    /// Draws the next batch `(x, y, scale)`: inputs `[E, d_0, B]`, targets `[E, d_L, B]` and the
    /// loss scale `1/B` (population descent: `x = I`, `y = M`, scale 1).
    fn next_batch(&mut self) -> (Tensor<3>, Tensor<3>, f32) {
        let p = &self.spec.params;
        let e = self.active.len();
        let (d_in, d_out) = (p.dims[0], *p.dims.last().expect("checked"));
        if let Some(eye) = &self.population_x {
            return (eye.clone(), self.teacher_t.clone(), 1.0);
        }
        let b = p.batch;
        self.fill_buffers();
        let x = Tensor::<3>::from_data(TensorData::new(self.x_buf.clone(), [e, d_in, b]), &self.device);
        let z = Tensor::<3>::from_data(TensorData::new(self.z_buf.clone(), [e, d_out, b]), &self.device);
        let labelled = self.data[self.active[0]].has_labels();
        let y = if labelled { z } else { self.teacher_t.clone().matmul(x.clone()) + z };
        (x, y, 1.0 / b as f32)
    }

    /// Makes [`Trainer::run`] stop with [`DlnError::Interrupted`] once `flag` is requested
    /// (checked every `check_every` steps and at every probe).
    pub fn set_stop_flag(&mut self, flag: StopFlag) {
        self.stop = flag;
    }

    /// Runs to the end, probing on the schedule; `observer` receives every probe record (and may
    /// stop the run with an error). A requested [`StopFlag`] ends it with
    /// [`DlnError::Interrupted`].
    pub fn run<E: From<DlnError>>(
        &mut self,
        mut observer: impl FnMut(&ProbeRecord) -> std::result::Result<(), E>,
    ) -> std::result::Result<TrainReport, E> {
        let total = self.spec.params.steps;
        let schedule = self.spec.probe_steps();
        let check_every = self.spec.params.check_every;
        let start = self.step;
        let mut next = schedule.iter().copied().filter(|&s| s >= start).peekable();
        if next.peek() == Some(&self.step) {
            next.next();
            self.probe_all(&mut observer)?;
        }
        while self.step < total && !self.active.is_empty() {
            self.step();
            let probing = next.peek() == Some(&self.step);
            if (probing || self.step.is_multiple_of(check_every)) && self.stop.is_requested() {
                return Err(DlnError::Interrupted { step: self.step }.into());
            }
            if probing {
                next.next();
                self.probe_all(&mut observer)?;
            } else if self.step.is_multiple_of(check_every) {
                self.check_health()?;
            }
        }
        let finals = self.host_layers()?;
        let mut final_layers = vec![None; self.spec.params.seeds.len()];
        for (slot, &m) in self.active.iter().enumerate() {
            final_layers[m] = Some(finals[slot].clone());
        }
        Ok(TrainReport {
            steps_run: self.step,
            divergences: self.divergences.clone(),
            final_layers,
            probe_seconds: self.probe_seconds,
        })
    }

    /// Runs to the end and collects every probe record.
    pub fn run_collect(&mut self) -> Result<(Vec<ProbeRecord>, TrainReport)> {
        let mut records = Vec::new();
        let report = self.run(|r: &ProbeRecord| -> Result<()> {
            records.push(r.clone());
            Ok(())
        })?;
        Ok((records, report))
    }

    /// Probes every active member (dropping the diverged ones first).
    fn probe_all<E: From<DlnError>>(
        &mut self,
        observer: &mut impl FnMut(&ProbeRecord) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let started = std::time::Instant::now();
        let layers = self.host_layers()?;
        let finite: Vec<bool> = layers.iter().map(|m| m.iter().all(|w| w.iter().all(|v| v.is_finite()))).collect();
        let p = &self.spec.params;
        let ctx = ProbeContext { sigma: p.data.sigma, lr: p.lr, batch: p.batch, n_probe: p.n_probe };
        for (slot, &m) in self.active.iter().enumerate() {
            if !finite[slot] {
                continue;
            }
            let seed = p.seeds[m];
            let mut rng = path_rng(seed, probe_stream(self.step));
            let probe = probe(&layers[slot], &self.spec.teacher, &ctx, &mut rng);
            observer(&ProbeRecord { member: m, seed, step: self.step, t: p.lr * self.step as f64, probe })?;
        }
        self.probe_seconds += started.elapsed().as_secs_f64();
        self.drop_members(&finite)?;
        Ok(())
    }

    /// Checks every active member's weights on the device (a squared norm that is not finite
    /// counts as divergence) and drops the diverged ones.
    fn check_health(&mut self) -> Result<()> {
        if let Some(f) = &self.fused {
            let finite = f.finite();
            return self.drop_members(&finite);
        }
        let e = self.active.len();
        let norms = self
            .weights
            .iter()
            .map(|w| w.clone().square().sum_dim(2).sum_dim(1).reshape([e]))
            .reduce(|a, b| a + b)
            .expect("at least one layer");
        let norms: Vec<f32> = norms.into_data().try_to_vec::<f32>().map_err(|err| DlnError::Backend {
            backend: self.spec.params.backend.to_string(),
            reason: format!("reading the weight norms back failed: {err:?}"),
        })?;
        let finite: Vec<bool> = norms.iter().map(|v| v.is_finite()).collect();
        self.drop_members(&finite)
    }

    /// Removes the members whose `finite` flag is false, recording their divergence.
    fn drop_members(&mut self, finite: &[bool]) -> Result<()> {
        if finite.iter().all(|&f| f) {
            self.last_check = self.step;
            return Ok(());
        }
        let p = &self.spec.params;
        let mut keep = Vec::new();
        for (slot, &m) in self.active.iter().enumerate() {
            if finite[slot] {
                keep.push(slot);
            } else {
                self.divergences.push(Divergence {
                    member: m,
                    seed: p.seeds[m],
                    step: self.step,
                    last_finite_step: self.last_check,
                });
            }
        }
        self.active = keep.iter().map(|&slot| self.active[slot]).collect();
        self.last_check = self.step;
        if let Some(f) = &mut self.fused {
            f.retain(finite);
        }
        if keep.is_empty() || self.fused.is_some() {
            if self.fused.is_some() && !keep.is_empty() {
                (self.teacher_t, self.population_x) = member_constants(&self.spec, keep.len(), &self.device);
            }
            return Ok(());
        }
        let idx: Vec<i64> = keep.iter().map(|&s| s as i64).collect();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [keep.len()]), &self.device);
        self.weights = std::mem::take(&mut self.weights).into_iter().map(|w| w.select(0, idx.clone())).collect();
        (self.teacher_t, self.population_x) = member_constants(&self.spec, keep.len(), &self.device);
        Ok(())
    }
}

/// The per-member constants of a batch for `e` active members: `M` repeated, and for population
/// descent the identity input.
fn member_constants(spec: &TrainSpec, e: usize, device: &Device) -> (Tensor<3>, Option<Tensor<3>>) {
    let teacher = repeat_matrix(spec.teacher.matrix(), e, device);
    let eye = match spec.params.data.source {
        DataSource::Population => {
            let d_in = spec.params.dims[0];
            Some(repeat_matrix(&DMatrix::identity(d_in, d_in), e, device))
        }
        _ => None,
    };
    (teacher, eye)
}

/// `m` repeated `e` times as a `[e, rows, cols]` tensor.
fn repeat_matrix(m: &DMatrix<f64>, e: usize, device: &Device) -> Tensor<3> {
    let mut buf = Vec::with_capacity(e * m.len());
    for _ in 0..e {
        push_row_major(&mut buf, m);
    }
    Tensor::from_data(TensorData::new(buf, [e, m.nrows(), m.ncols()]), device)
}

/// The gradients of `scale · ½ Σ‖W_L⋯W_1 x − y‖²` with respect to each `W_l`, per member
/// (`Auto` takes the closed form on the tensors given).
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
        GradientPath::Fused => {
            let host =
                |t: &Tensor<3>| -> Vec<f32> { t.to_data().convert::<f32>().try_to_vec::<f32>().expect("f32 data") };
            let [e, d_out, b] = y.dims();
            let mut dims = vec![x.dims()[1]];
            dims.extend(weights.iter().map(|w| w.dims()[1]));
            let members = tensors_to_host(weights).expect("weights read back");
            let mut net = FusedNet::new(&dims, &members);
            let (xs, ys) = (host(&x), host(&y));
            let batch = Batch { x: &xs, z: &ys, teacher: None, batch: b, scale, shared: false };
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
                    debug_assert_eq!(d_out, dims[dims.len() - 1]);
                    Tensor::<3>::from_data(TensorData::new(flat, [e, rows, cols]), &device)
                })
                .collect()
        }
        GradientPath::Autodiff => {
            let tracked: Vec<Tensor<3>> = weights.iter().map(|w| w.clone().autodiff().require_grad()).collect();
            let out = tracked.iter().fold(x, |h, w| w.clone().matmul(h));
            let loss = (out - y).square().sum().mul_scalar(0.5 * scale);
            let grads = loss.backward();
            tracked.iter().map(|w| w.grad(&grads).expect("every layer requires a gradient")).collect()
        }
    }
}
