//! The SGD trainer: validated run parameters, the gradient paths, and the [`Trainer`], which
//! runs the probe schedule, the stop flag and divergence handling around one gradient engine
//! (`crate::engine`) fed by one batch sampler (`crate::data`).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use burn::tensor::Device;
#[cfg(feature = "testing")]
use burn::tensor::Tensor;
use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};

use crate::checkpoint::TrainerState;
use crate::data::DataParams;
use crate::engine::Engine;
use crate::error::Result;
use crate::init::InitScheme;
use crate::model::Dln;
use crate::probe::{CloneEstimate, Probe, ProbeContext, probe};
use crate::teacher::{Teacher, TeacherParams};
use crate::{BackendKind, DlnError};
use modewise_theory::InvalidParameter;
use modewise_theory::ModeParams;
use modewise_theory::check::{at_least, name_in, one_of, positive};
use modewise_theory::rng::{NAMESPACES, Stream};

/// How the SGD gradient is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GradientPath {
    /// The fastest path for the backend: [`Fused`](Self::Fused) on ndarray and flex,
    /// [`ClosedForm`](Self::ClosedForm) on the GPU backends (wgpu, cuda). Checking the parameters resolves it, so data
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
    /// The one table of names (command line, specs, data files). Serde's `kebab-case` names
    /// are the same; a test checks it.
    pub const NAMES: [(GradientPath, &'static str); 4] =
        [(Self::Auto, "auto"), (Self::Autodiff, "autodiff"), (Self::ClosedForm, "closed-form"), (Self::Fused, "fused")];

    /// The name used in configs and data files.
    pub fn name(self) -> &'static str {
        name_in(&self, &Self::NAMES)
    }

    /// The path that runs on `backend`: [`Auto`](Self::Auto) resolved, others unchanged.
    pub fn resolve(self, backend: BackendKind) -> Self {
        match (self, backend) {
            (Self::Auto, b) if b.is_gpu() => Self::ClosedForm,
            (Self::Auto, _) => Self::Fused,
            (path, _) => path,
        }
    }
}

impl std::str::FromStr for GradientPath {
    type Err = InvalidParameter;

    fn from_str(s: &str) -> Result<Self, InvalidParameter> {
        one_of("gradient", s, &Self::NAMES)
    }
}

impl std::fmt::Display for GradientPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The float type the network trains in.
///
/// f32 runs on every backend and gradient path. f64 runs on the fused CPU path only (`gradient =
/// fused`, or `auto` on ndarray and flex): it pushes the rounding floor of the weights from about
/// 10⁻⁷ relative to 10⁻¹⁶, so the across-seed variance of a converged mode without label noise
/// falls to ~10⁻²⁹ s² instead of stalling at the f32 floor ~10⁻¹³ s² (`docs/theory.md` §1.4).
/// Probes run in f64 on the host either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Single precision (the default).
    #[default]
    F32,
    /// Double precision, on the fused CPU path.
    F64,
}

impl Precision {
    /// The one table of names (specs, data files). Serde's `lowercase` names are the same; a
    /// test checks it.
    pub const NAMES: [(Precision, &'static str); 2] = [(Self::F32, "f32"), (Self::F64, "f64")];

    /// The name used in configs and data files.
    pub fn name(self) -> &'static str {
        name_in(&self, &Self::NAMES)
    }
}

impl std::str::FromStr for Precision {
    type Err = InvalidParameter;

    fn from_str(s: &str) -> Result<Self, InvalidParameter> {
        one_of("precision", s, &Self::NAMES)
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
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
    /// The most probes per decade a schedule may ask for: at most about 19 300 probes in a run
    /// of any length (`u64` steps span 19.3 decades).
    pub const MAX_PER_DECADE: f64 = 1000.0;

    /// The probe steps of a run of `steps` steps, increasing, with 0 and `steps` included. A
    /// checked schedule ([`TrainParams::check`]) visits at most
    /// [`MAX_PER_DECADE`](Self::MAX_PER_DECADE) exponents per decade.
    pub fn steps(&self, steps: u64) -> Vec<u64> {
        let mut set = BTreeSet::from([0, steps]);
        let mut j = 0u64;
        loop {
            let s = 10f64.powf(j as f64 / self.per_decade).round();
            // Also ends on NaN (an unchecked schedule).
            if s.is_nan() || s >= steps as f64 {
                break;
            }
            set.insert(s as u64);
            j += 1;
        }
        set.into_iter().collect()
    }
}

/// The random-stream namespaces of a run's members (`train.streams`): every member stream is
/// drawn from the member's seed *and* a namespace (the table in `modewise_theory::rng`), so runs
/// that differ only in their namespaces are independent samples from the same seeds.
///
/// `init` drives the initial weights; `data` drives the training data and the data-like streams
/// of the probes (the `n_probe` samples and the clone batches). Both default to 0, the streams of
/// the releases before namespaces existed. An experiment gives each variant its own namespace so
/// its variants do not share minibatches, and one namespace to all variants for common random
/// numbers. Giving `init` and `data` apart draws e.g. the same initial networks with fresh data.
///
/// In a spec, `streams = 3` sets both namespaces and `streams = { init = 0, data = 3 }` each
/// one (a missing one is 0); each is below 2¹⁶ (`modewise_theory::rng::NAMESPACES`).
/// They are written out as the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct StreamNamespaces {
    /// The namespace of the initial weights.
    pub init: u64,
    /// The namespace of the data, the probe samples and the clone batches.
    pub data: u64,
}

impl StreamNamespaces {
    /// One namespace for every stream.
    pub fn shared(namespace: u64) -> Self {
        Self { init: namespace, data: namespace }
    }

    /// Checks that each namespace is below 2¹⁶ (fields `init`, `data`).
    pub fn check(&self) -> Result<()> {
        for (field, n) in [("init", self.init), ("data", self.data)] {
            if n >= NAMESPACES {
                return Err(DlnError::invalid(field, format!("must be below 2^16 = {NAMESPACES}"), n));
            }
        }
        Ok(())
    }
}

/// The table form of [`StreamNamespaces`] in a spec.
#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct StreamsTable {
    init: u64,
    data: u64,
}

impl Serialize for StreamNamespaces {
    /// Always the table, so data files hold the same columns (`streams.init`, `streams.data`)
    /// however a spec wrote the namespaces.
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        StreamsTable { init: self.init, data: self.data }.serialize(s)
    }
}

impl<'de> Deserialize<'de> for StreamNamespaces {
    /// An integer (both namespaces) or a table `{ init, data }` (each defaulting to 0).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::{self, MapAccess, Unexpected, Visitor, value::MapAccessDeserializer};
        struct Namespaces;
        impl<'de> Visitor<'de> for Namespaces {
            type Value = StreamNamespaces;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a non-negative integer or a table { init, data }")
            }

            fn visit_u64<E: de::Error>(self, n: u64) -> std::result::Result<Self::Value, E> {
                Ok(StreamNamespaces::shared(n))
            }

            fn visit_i64<E: de::Error>(self, n: i64) -> std::result::Result<Self::Value, E> {
                u64::try_from(n)
                    .map(StreamNamespaces::shared)
                    .map_err(|_| E::invalid_value(Unexpected::Signed(n), &self))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> std::result::Result<Self::Value, A::Error> {
                let t = StreamsTable::deserialize(MapAccessDeserializer::new(map))?;
                Ok(StreamNamespaces { init: t.init, data: t.data })
            }
        }
        d.deserialize_any(Namespaces)
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
    /// The random-stream namespaces of every member (default 0: see [`StreamNamespaces`]).
    pub streams: StreamNamespaces,
    /// Gradient path (default `auto`: fused on the CPU backends, closed-form on wgpu and cuda).
    pub gradient: GradientPath,
    /// Training precision (default f32; f64 needs the fused CPU path: see [`Precision`]).
    pub precision: Precision,
    /// Hardware backend.
    pub backend: BackendKind,
    /// Probe schedule.
    pub probes: ProbeSchedule,
    /// Mode-diffusion probe: 0 (default) computes it exactly; `n ≥ 2` estimates it from `n` fresh
    /// samples (the Monte Carlo reference).
    pub n_probe: usize,
    /// Model-free diffusion estimate: 0 (default) is off; `n ≥ 2` gives, at every probe, `n`
    /// clones of each member's weights one real SGD step each on fresh batches (drawn from the
    /// member's clone stream of that step, so training is untouched) and records the mean and
    /// variance of their mode increments ([`CloneEstimate`]).
    pub n_clones: usize,
    /// Divergence check period in steps between probes; at least 1.
    pub check_every: u64,
    /// Checkpoint period in steps: 0 (default) is off; else a multiple of `check_every`, so a
    /// checkpoint always holds checked weights. Every `checkpoint_every` steps the trainer
    /// hands out its complete state ([`TrainerState`], see [`Trainer::run_checkpointed`]); it
    /// changes no result. Left out of a written spec when 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub checkpoint_every: u64,
}

/// Whether a period is 0 (off: left out of a written spec, so specs without it print as before).
fn is_zero(n: &u64) -> bool {
    *n == 0
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
            streams: StreamNamespaces::default(),
            gradient: GradientPath::default(),
            precision: Precision::default(),
            backend: BackendKind::default(),
            probes: ProbeSchedule::default(),
            n_probe: 0,
            n_clones: 0,
            check_every: 100,
            checkpoint_every: 0,
        }
    }
}

impl TrainParams {
    /// Checks every rule and builds the teacher. Fields are named as in the parameters
    /// (`lr`, `teacher.spectrum.s[1]`, `init.a0`).
    pub fn check(&self) -> Result<TrainSpec> {
        if self.dims.len() < 2 {
            return Err(DlnError::invalid(
                "dims",
                "must list at least an input and an output width ([d_0, …, d_L], L ≥ 1)",
                &self.dims,
            ));
        }
        for (l, &d) in self.dims.iter().enumerate() {
            at_least(&format!("dims[{l}]"), d, 1)?;
        }
        positive("lr", self.lr)?;
        at_least("batch", self.batch, 1)?;
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
        self.streams.check().map_err(|e| e.within("streams"))?;
        positive("probes.per_decade", self.probes.per_decade)?;
        if self.probes.per_decade > ProbeSchedule::MAX_PER_DECADE {
            return Err(DlnError::invalid(
                "probes.per_decade",
                format!("must be at most {} (more only repeats probe steps)", ProbeSchedule::MAX_PER_DECADE),
                self.probes.per_decade,
            ));
        }
        at_least("check_every", self.check_every, 1)?;
        if !self.checkpoint_every.is_multiple_of(self.check_every) {
            return Err(DlnError::invalid(
                "checkpoint_every",
                format!(
                    "must be 0 (no checkpoints) or a multiple of check_every ({}), so that a checkpoint holds checked weights",
                    self.check_every
                ),
                self.checkpoint_every,
            ));
        }
        if self.n_probe == 1 {
            return Err(DlnError::invalid("n_probe", "must be 0 (exact diffusion) or at least 2 (samples)", 1));
        }
        if self.n_clones == 1 {
            return Err(DlnError::invalid("n_clones", "must be 0 (no clones) or at least 2 (clones per probe)", 1));
        }
        if !self.backend.built() {
            return Err(DlnError::invalid(
                "backend",
                format!(
                    "this build has no {0} backend: build modewise with `--features {0}` (it needs the {0} driver at run time)",
                    self.backend
                ),
                self.backend.name(),
            ));
        }
        if self.gradient == GradientPath::Fused && self.backend.is_gpu() {
            return Err(DlnError::invalid(
                "gradient",
                format!(
                    "fused runs on the CPU in host memory; with the {} backend use closed-form or autodiff",
                    self.backend
                ),
                "fused",
            ));
        }
        let gradient = self.gradient.resolve(self.backend);
        if self.precision == Precision::F64 && gradient != GradientPath::Fused {
            let rule = if self.backend.is_gpu() {
                format!(
                    "f64 trains on the fused CPU path; the {} backend trains in f32 (use ndarray or flex)",
                    self.backend
                )
            } else {
                format!(
                    "f64 trains on the fused CPU path only (gradient = fused or auto); the {gradient} path trains in f32"
                )
            };
            return Err(DlnError::invalid("precision", rule, "f64"));
        }
        let (d_in, d_out) = (self.dims[0], *self.dims.last().expect("checked"));
        self.data.check(self.batch, d_in).map_err(|e| e.within("data"))?;
        let teacher = self.teacher.build(d_in, d_out).map_err(|e| e.within("teacher"))?;
        self.init.check(&self.dims, &teacher).map_err(|e| e.within("init"))?;
        let params = TrainParams { gradient, ..self.clone() };
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

    /// The initial layers `[W_1, …, W_L]` of member `member` (an index into `seeds`), as the
    /// trainer draws them: from the member's seed in the init namespace.
    pub fn initial_layers(&self, member: usize) -> Result<Vec<DMatrix<f64>>> {
        let p = &self.params;
        let seed = *p.seeds.get(member).ok_or_else(|| {
            DlnError::invalid("member", format!("must index seeds (below {})", p.seeds.len()), member)
        })?;
        p.init.draw(&p.dims, &self.teacher, seed, p.streams.init)
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

/// A member stopped because its weights, or its probes, stopped being finite.
///
/// Weights are checked every `check_every` steps and at every probe; at a probe, a member whose
/// weights are finite but some of whose (f64) probe values are not ([`Probe::is_finite`]) is
/// diverged too, and its probe record is not handed out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Divergence {
    /// Index of the member in `seeds`.
    pub member: usize,
    /// The member's seed.
    pub seed: u64,
    /// The step at which the divergence was detected.
    pub step: u64,
    /// The last step before `step` at which the member was checked and found finite (0 for a
    /// divergence found at step 0, when nothing was checked before).
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

/// Trains the members of a [`TrainSpec`] as one batched network: the probe schedule, the stop
/// flag, the probes and the divergences around one gradient engine and one batch sampler.
pub struct Trainer {
    spec: TrainSpec,
    /// The gradient path's engine, holding the active members' weights and data streams.
    engine: Engine,
    /// Indices (into `seeds`) of the members still training, in engine order.
    active: Vec<usize>,
    step: u64,
    last_check: u64,
    divergences: Vec<Divergence>,
    stop: StopFlag,
    probe_seconds: f64,
    /// Whether the probes and checks of the current step were done before (a trainer resumed
    /// from a checkpoint), so that [`Trainer::run`] does not repeat them.
    resumed: bool,
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

    /// The flag itself, for code that takes a plain [`AtomicBool`] (the theory crate's
    /// interruptible ensembles, `modewise_theory::Mode::ensemble_until`).
    pub fn as_atomic(&self) -> &AtomicBool {
        &self.0
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
        // Before the initial layers are drawn: an ensemble too large for the device is refused.
        crate::engine::check_fits(spec, p.seeds.len(), &device, p.gradient)?;
        let members: Vec<Vec<DMatrix<f64>>> =
            (0..p.seeds.len()).map(|m| spec.initial_layers(m)).collect::<Result<_>>()?;
        Self::start(spec, members, device)
    }

    /// Starts from given initial layers (`members[e]` for `seeds[e]`) on `device` (a test
    /// oracle: the `testing` feature).
    #[cfg(feature = "testing")]
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
        Self::start(spec, members, device)
    }

    fn start(spec: &TrainSpec, members: Vec<Vec<DMatrix<f64>>>, device: Device) -> Result<Self> {
        let p = &spec.params;
        Ok(Self {
            engine: Engine::new(spec, &members, device)?,
            active: (0..p.seeds.len()).collect(),
            spec: spec.clone(),
            step: 0,
            last_check: 0,
            divergences: Vec::new(),
            stop: StopFlag::default(),
            probe_seconds: 0.0,
            resumed: false,
        })
    }

    /// The complete state of the run after the current step (weights, step, live members,
    /// divergences, data streams: see [`crate::checkpoint`]), for a checkpoint.
    pub fn state(&self) -> Result<TrainerState> {
        let layers = self.host_layers()?.into_iter().map(|m| m.into_iter().map(|w| w.as_slice().to_vec()).collect());
        let (streams, device_batch) = self.engine.streams();
        Ok(TrainerState {
            step: self.step,
            last_check: self.last_check,
            active: self.active.clone(),
            divergences: self.divergences.clone(),
            probe_seconds: self.probe_seconds,
            layers: layers.collect(),
            streams,
            device_batch,
        })
    }

    /// Continues a run of `spec` from `state` (written by [`state`](Self::state) for the same
    /// parameters): the run then takes exactly the steps, batches and probes of the
    /// uninterrupted one, bit for bit, on the same backend. A state that does not fit `spec`
    /// is refused (field `checkpoint`).
    pub fn resume(spec: &TrainSpec, state: TrainerState) -> Result<Self> {
        let p = &spec.params;
        let misfit = |rule: &str, value: &dyn std::fmt::Debug| DlnError::invalid("checkpoint", rule, value);
        if state.step > p.steps {
            return Err(misfit(&format!("must be at a step of the run (at most {})", p.steps), &state.step));
        }
        let n = p.seeds.len();
        if !state.active.windows(2).all(|w| w[0] < w[1]) || state.active.iter().any(|&m| m >= n) {
            return Err(misfit(&format!("must name distinct live members below {n}, in order"), &state.active));
        }
        let shapes: Vec<(usize, usize)> = p.dims.windows(2).map(|d| (d[1], d[0])).collect();
        let fits =
            |m: &Vec<Vec<f64>>| m.len() == shapes.len() && m.iter().zip(&shapes).all(|(w, (r, c))| w.len() == r * c);
        if state.layers.len() != state.active.len() || !state.layers.iter().all(fits) {
            return Err(misfit(
                &format!("must hold layers of shapes {shapes:?} for each live member"),
                &state.layers.len(),
            ));
        }
        // Every member starts the engine (so that each gets its data stream, drawn from its
        // seed as at the start); the dead ones are then dropped as they were.
        let mut live = vec![false; n];
        let mut saved = state.layers.iter();
        let members: Vec<Vec<DMatrix<f64>>> = (0..n)
            .map(|m| {
                live[m] = state.active.contains(&m);
                let layers = if live[m] { saved.next() } else { None };
                shapes
                    .iter()
                    .enumerate()
                    .map(|(l, &(r, c))| match layers {
                        Some(ws) => DMatrix::from_column_slice(r, c, &ws[l]),
                        None => DMatrix::zeros(r, c),
                    })
                    .collect()
            })
            .collect();
        let mut trainer = Self::start(spec, members, p.backend.device())?;
        trainer.engine.retain(&live);
        trainer.engine.restore_streams(&state.streams, state.device_batch)?;
        trainer.active = state.active;
        trainer.step = state.step;
        trainer.last_check = state.last_check;
        trainer.divergences = state.divergences;
        trainer.probe_seconds = state.probe_seconds;
        trainer.resumed = true;
        Ok(trainer)
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
        self.engine.device().sync().map_err(|err| DlnError::Backend {
            backend: self.spec.params.backend.to_string(),
            reason: format!("synchronising failed: {err:?}"),
        })
    }

    /// The current network of the active members, as a burn module (f32 tensors, also for an
    /// f64 run).
    pub fn network(&self) -> Dln {
        Dln::from_tensors(self.engine.tensors())
    }

    /// The current layers of the active members on the host, `[active member][layer]`.
    pub fn host_layers(&self) -> Result<Vec<Vec<DMatrix<f64>>>> {
        self.engine.host_layers()
    }

    /// The gradients `∇W_l` of the next batch at the current weights, without stepping,
    /// computed by `path` (a test oracle: the `testing` feature). Draws the batch (advancing
    /// the data streams).
    #[cfg(feature = "testing")]
    pub fn next_gradients(&mut self, path: GradientPath) -> Vec<Tensor<3>> {
        self.engine.next_gradients(&self.spec, path)
    }

    /// The fused path's gradients `∇W_l` of the next batch at the current weights, computed in
    /// the training precision, `[active member][layer]`, without stepping (a test oracle: the
    /// `testing` feature; `None` on the tensor paths). Draws the batch.
    #[cfg(feature = "testing")]
    pub fn next_host_gradients(&mut self) -> Option<Vec<Vec<DMatrix<f64>>>> {
        self.engine.next_host_gradients()
    }

    /// One SGD step for every active member.
    pub fn step(&mut self) {
        self.engine.step(self.spec.params.lr);
        self.step += 1;
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
        observer: impl FnMut(&ProbeRecord) -> std::result::Result<(), E>,
    ) -> std::result::Result<TrainReport, E> {
        self.run_with_ticks(observer, |_| {})
    }

    /// [`run`](Self::run), calling `tick` with the steps taken every `check_every` steps (after
    /// the health check or probe of that step): cheap progress between log-spaced probes.
    pub fn run_with_ticks<E: From<DlnError>>(
        &mut self,
        observer: impl FnMut(&ProbeRecord) -> std::result::Result<(), E>,
        tick: impl FnMut(u64),
    ) -> std::result::Result<TrainReport, E> {
        self.run_checkpointed(observer, tick, |_| Ok(()))
    }

    /// [`run_with_ticks`](Self::run_with_ticks), handing `checkpoint` the run's complete state
    /// every `checkpoint_every` steps before the last (after the probes, checks and tick of
    /// that step; never when `checkpoint_every` is 0): [`Trainer::resume`] continues from it.
    pub fn run_checkpointed<E: From<DlnError>>(
        &mut self,
        mut observer: impl FnMut(&ProbeRecord) -> std::result::Result<(), E>,
        mut tick: impl FnMut(u64),
        mut checkpoint: impl FnMut(&TrainerState) -> std::result::Result<(), E>,
    ) -> std::result::Result<TrainReport, E> {
        let total = self.spec.params.steps;
        let schedule = self.spec.probe_steps();
        let check_every = self.spec.params.check_every;
        let every = self.spec.params.checkpoint_every;
        let start = self.step;
        let mut next = schedule.iter().copied().filter(|&s| s >= start).peekable();
        if next.peek() == Some(&self.step) {
            next.next();
            // A resumed trainer probed this step before its checkpoint.
            if !self.resumed {
                self.probe_all(&mut observer)?;
            }
        }
        self.resumed = false;
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
            if self.step.is_multiple_of(check_every) {
                tick(self.step);
            }
            if every > 0 && self.step.is_multiple_of(every) && self.step < total && !self.active.is_empty() {
                checkpoint(&self.state()?)?;
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

    /// Probes every active member and hands out their records; drops the members whose weights
    /// or probes are not finite (their records are not handed out).
    fn probe_all<E: From<DlnError>>(
        &mut self,
        observer: &mut impl FnMut(&ProbeRecord) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let started = std::time::Instant::now();
        let p = &self.spec.params;
        let ctx = ProbeContext { sigma: p.data.sigma, lr: p.lr, batch: p.batch, n_probe: p.n_probe };
        // On the GPU the reductions run on the device and only they are read back; the
        // sampled diffusion and the clones need the weights on the host.
        if let Some(probes) = (p.n_probe < 2 && p.n_clones < 2).then(|| self.engine.device_probes(&ctx)).flatten() {
            let probes = probes?;
            let healthy: Vec<bool> = probes.iter().map(Option::is_some).collect();
            for (&m, probe) in self.active.iter().zip(probes) {
                if let Some(probe) = probe {
                    let step = self.step;
                    observer(&ProbeRecord { member: m, seed: p.seeds[m], step, t: p.lr * step as f64, probe })?;
                }
            }
            self.probe_seconds += started.elapsed().as_secs_f64();
            self.drop_members(&healthy);
            return Ok(());
        }
        let layers = self.host_layers()?;
        let finite: Vec<bool> = layers.iter().map(|m| m.iter().all(|w| w.iter().all(|v| v.is_finite()))).collect();
        let mut healthy = finite;
        for (slot, &m) in self.active.iter().enumerate() {
            if !healthy[slot] {
                continue;
            }
            let seed = p.seeds[m];
            let mut rng = Stream::Probe { namespace: p.streams.data, step: self.step }.rng(seed);
            let mut probe = probe(&layers[slot], &self.spec.teacher, &ctx, &mut rng);
            if p.n_clones >= 2 {
                let after = self.engine.clone_steps(&self.spec, slot, &layers[slot], p.n_clones, self.step)?;
                probe.set_clones(CloneEstimate::new(&layers[slot], &after, &self.spec.teacher, p.lr));
            }
            if !probe.is_finite() {
                healthy[slot] = false;
                continue;
            }
            observer(&ProbeRecord { member: m, seed, step: self.step, t: p.lr * self.step as f64, probe })?;
        }
        self.probe_seconds += started.elapsed().as_secs_f64();
        self.drop_members(&healthy);
        Ok(())
    }

    /// Checks every active member's weights (on the device for the tensor paths: a squared
    /// norm that is not finite counts as divergence) and drops the diverged ones.
    fn check_health(&mut self) -> Result<()> {
        let finite = self.engine.finite()?;
        self.drop_members(&finite);
        Ok(())
    }

    /// Removes the members whose `finite` flag is false, recording their divergence.
    fn drop_members(&mut self, finite: &[bool]) {
        if !finite.iter().all(|&f| f) {
            let p = &self.spec.params;
            for (slot, &m) in self.active.iter().enumerate() {
                if !finite[slot] {
                    self.divergences.push(Divergence {
                        member: m,
                        seed: p.seeds[m],
                        step: self.step,
                        last_finite_step: self.last_check,
                    });
                }
            }
            let mut flags = finite.iter();
            self.active.retain(|_| *flags.next().expect("one flag per member"));
            self.engine.retain(finite);
        }
        self.last_check = self.step;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradient_paths_have_one_table_of_names() {
        use serde::de::{IntoDeserializer, value::Error};
        for (path, name) in GradientPath::NAMES {
            assert_eq!(name.parse::<GradientPath>(), Ok(path));
            assert_eq!(path.to_string(), name);
            assert_eq!(GradientPath::deserialize(IntoDeserializer::<Error>::into_deserializer(name)), Ok(path));
        }
        let err = "gpu".parse::<GradientPath>().unwrap_err();
        assert_eq!(err.to_string(), "gradient: must be one of auto, autodiff, closed-form, fused (got gpu)");
    }

    #[test]
    fn precisions_have_one_table_of_names() {
        use serde::de::{IntoDeserializer, value::Error};
        for (precision, name) in Precision::NAMES {
            assert_eq!(name.parse::<Precision>(), Ok(precision));
            assert_eq!(precision.to_string(), name);
            assert_eq!(Precision::deserialize(IntoDeserializer::<Error>::into_deserializer(name)), Ok(precision));
        }
        assert_eq!(Precision::default(), Precision::F32);
        let err = "f16".parse::<Precision>().unwrap_err();
        assert_eq!(err.to_string(), "precision: must be one of f32, f64 (got f16)");
    }
}
