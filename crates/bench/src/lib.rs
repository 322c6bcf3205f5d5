//! The project's standard speed workloads (W1, W2, W3, the W1/W2 ensembles and the per-mode SDE
//! ensemble), shared by `modewise bench` and the criterion benchmarks of this crate so that both
//! time exactly the same work, and one core's measured floating-point peak ([`peak`]) that they
//! are compared with. Scaffolding for measuring, not part of the libraries' APIs.

pub mod peak;

use modewise_dln::{
    BackendKind, DataParams, DataSource, GaussianStd, GradientPath, InitScheme, SpectrumSpec, TeacherParams,
    TrainParams,
};
use modewise_theory::check::{name_in, one_of};
use modewise_theory::{Coordinate, Dynamics, EnsembleParams, InvalidParameter, Mode, ModeParams, Scheme, TimeGrid};

/// A standard workload: one SGD step of a (batched) DLN on online Gaussian teacher data, or
/// 100 steps of the per-mode SDE ensemble.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Workload {
    /// 10-100-100-100-10 (4 layers), batch 1: the first author's example size.
    W1,
    /// 100 wide, 4 layers, batch 32.
    W2,
    /// 512 wide, 4 layers, batch 128 (compute-bound).
    W3,
    /// W1 with an ensemble of 64 members.
    W1e,
    /// W2 with an ensemble of 16 members.
    W2e,
    /// The per-mode SDE ensemble of [`sde`]: 10⁵ paths, L = 4, on the CPU.
    Sde,
}

impl Workload {
    /// The one table of names (on the command line and in `--json` output).
    pub const NAMES: [(Workload, &'static str); 6] = [
        (Self::W1, "w1"),
        (Self::W2, "w2"),
        (Self::W3, "w3"),
        (Self::W1e, "w1e"),
        (Self::W2e, "w2e"),
        (Self::Sde, "sde"),
    ];

    /// The DLN workloads in the order they are timed in one process: W3 last (after its large
    /// tensors, later small workloads in the same process ran up to 4× slower on flex).
    pub const DLN: [Workload; 5] = [Self::W1, Self::W2, Self::W1e, Self::W2e, Self::W3];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        name_in(&self, &Self::NAMES)
    }

    /// Layer widths `[d_0, …, d_4]` of a DLN workload (`None` for [`Sde`](Self::Sde)).
    pub fn dims(self) -> Option<Vec<usize>> {
        let (outer, width) = match self {
            Self::W1 | Self::W1e => (10, 100),
            Self::W2 | Self::W2e => (100, 100),
            Self::W3 => (512, 512),
            Self::Sde => return None,
        };
        Some(vec![outer, width, width, width, outer])
    }

    /// Batch size of a DLN workload (`None` for [`Sde`](Self::Sde)).
    pub fn batch(self) -> Option<usize> {
        match self {
            Self::W1 | Self::W1e => Some(1),
            Self::W2 | Self::W2e => Some(32),
            Self::W3 => Some(128),
            Self::Sde => None,
        }
    }

    /// Ensemble members trained at once (1 for the single networks and the SDE workload).
    pub fn members(self) -> usize {
        match self {
            Self::W1e => 64,
            Self::W2e => 16,
            _ => 1,
        }
    }

    /// Floating-point operations of one member's SGD step with the closed-form gradient
    /// (multiply-adds counted as two): the teacher's labels, the forward pass, and for each
    /// layer its weight gradient and (but for the first) the backpropagated error. `None` for
    /// [`Sde`](Self::Sde).
    pub fn flops_per_member_step(self) -> Option<f64> {
        let (d, b) = (self.dims()?, self.batch()? as f64);
        let mm = |m: usize, k: usize| 2.0 * m as f64 * k as f64 * b;
        let labels = mm(d[d.len() - 1], d[0]);
        let layers: f64 = (1..d.len()).map(|l| mm(d[l], d[l - 1]) * if l == 1 { 2.0 } else { 3.0 }).sum();
        Some(labels + layers)
    }

    /// The run parameters of a DLN workload (`None` for [`Sde`](Self::Sde)): a power-law
    /// teacher of rank 5, Gaussian start (`γ = 2`), label noise 0.1, η = 10⁻³, no diffusion
    /// probe, as many steps as asked for, [`members`](Self::members) members.
    pub fn params(self, backend: BackendKind, gradient: GradientPath) -> Option<TrainParams> {
        self.params_with_members(backend, gradient, self.members())
    }

    /// [`params`](Self::params) with `members` ensemble members (seeds `0 … members − 1`)
    /// instead of the workload's own count: W1, W2 and W3 as ensembles of any size (e.g. W2 ×
    /// 1024 or W1 × 4096 on a GPU).
    pub fn params_with_members(
        self,
        backend: BackendKind,
        gradient: GradientPath,
        members: usize,
    ) -> Option<TrainParams> {
        Some(TrainParams {
            dims: self.dims()?,
            teacher: TeacherParams {
                spectrum: SpectrumSpec::PowerLaw { s_max: 1.0, decay: 1.0, rank: 5, s_min: 1e-12 },
                seed: 0,
            },
            init: InitScheme::Gaussian { std: GaussianStd::Gamma(2.0) },
            data: DataParams { source: DataSource::Online, sigma: 0.1, ..DataParams::default() },
            lr: 1e-3,
            batch: self.batch()?,
            steps: u64::MAX,
            seeds: (0..members as u64).collect(),
            gradient,
            backend,
            n_probe: 0,
            ..TrainParams::default()
        })
    }
}

impl std::fmt::Display for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Workload {
    type Err = InvalidParameter;

    fn from_str(s: &str) -> Result<Self, InvalidParameter> {
        one_of("workload", s, &Self::NAMES)
    }
}

/// The sde workload (the peer script `numpy_sde.py`'s): 10⁵ paths, L = 4, s = 2, σ = 0.5,
/// η = 10⁻³, B = 4, dt = 10⁻³, w₀ = 10⁻³, 100 steps per call.
pub mod sde {
    use super::*;

    /// Paths of the ensemble.
    pub const PATHS: usize = 100_000;
    /// Steps per call.
    pub const STEPS: u64 = 100;
    /// Time step of the SDE integrators.
    pub const DT: f64 = 1e-3;
    /// Initial end-to-end mode strength.
    pub const W0: f64 = 1e-3;

    /// The mode: L = 4, s = 2, σ = 0.5, η = 10⁻³, B = 4.
    pub fn mode() -> Mode {
        ModeParams { depth: 4, s: 2.0, sigma: 0.5, lr: 1e-3, batch: 4 }.check().expect("a valid mode")
    }

    /// The ensemble: [`PATHS`] paths over [`STEPS`] steps of [`DT`], seed 0.
    pub fn params() -> EnsembleParams {
        let grid = TimeGrid::from_times(vec![0.0, STEPS as f64 * DT]).expect("a valid grid");
        EnsembleParams::new(PATHS, 0, grid)
    }

    /// The dynamics `modewise bench` times: end-to-end Euler–Maruyama.
    pub fn dynamics() -> Dynamics {
        Dynamics::Sde { scheme: Scheme::EulerMaruyama, coordinate: Coordinate::EndToEnd, dt: DT }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workloads_are_the_standard_sizes_and_valid() {
        for (w, name) in Workload::NAMES {
            assert_eq!(w.name(), name);
            assert_eq!(name.parse::<Workload>().unwrap(), w);
        }
        for w in Workload::DLN {
            let p = w.params(BackendKind::Flex, GradientPath::Auto).unwrap();
            assert_eq!(p.dims.len(), 5, "4 weight matrices");
            p.check().unwrap();
        }
        assert_eq!(Workload::DLN.last(), Some(&Workload::W3), "W3 runs last");
        assert_eq!(Workload::W2e.dims().unwrap(), [100, 100, 100, 100, 100]);
        assert!(Workload::Sde.params(BackendKind::Flex, GradientPath::Auto).is_none());
        // W3: labels 2·512²·128 and 3 matmuls per layer but the first (2): 12 matmuls of
        // 2·512·512·128 flops each.
        assert_eq!(Workload::W3.flops_per_member_step(), Some(12.0 * 2.0 * 512.0 * 512.0 * 128.0));
        assert_eq!(
            "w4".parse::<Workload>().unwrap_err().to_string(),
            "workload: must be one of w1, w2, w3, w1e, w2e, sde (got w4)"
        );
        let big = Workload::W2.params_with_members(BackendKind::Wgpu, GradientPath::Auto, 1024).unwrap();
        assert_eq!(big.seeds.len(), 1024);
        assert_eq!(big.dims, Workload::W2.dims().unwrap());
        assert_eq!(Workload::W1e.params(BackendKind::Flex, GradientPath::Auto).unwrap().seeds.len(), 64);
        assert_eq!(sde::params().paths, 100_000);
        assert_eq!(sde::mode().depth(), 4);
    }
}
