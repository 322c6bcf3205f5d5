//! The project's standard speed workloads (W1, W2, W3 and the W1/W2 ensembles of
//! `shared/bench/README.md`) as run parameters, shared by `modewise bench` and the criterion
//! benchmarks so that both time exactly the same work.

use crate::{
    BackendKind, DataParams, DataSource, DlnError, GradientPath, InitScheme, SpectrumSpec, TeacherParams, TrainParams,
};

/// A standard DLN workload: one SGD step of a (batched) network on online Gaussian teacher data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
}

impl Workload {
    /// Every workload, in the order of the README's table.
    pub const ALL: [Workload; 5] = [Self::W1, Self::W2, Self::W1e, Self::W2e, Self::W3];

    /// The name on the command line (`w1`, `w2`, `w3`, `w1e`, `w2e`).
    pub fn name(self) -> &'static str {
        match self {
            Self::W1 => "w1",
            Self::W2 => "w2",
            Self::W3 => "w3",
            Self::W1e => "w1e",
            Self::W2e => "w2e",
        }
    }

    /// Layer widths `[d_0, …, d_4]`.
    pub fn dims(self) -> Vec<usize> {
        let (outer, width) = match self {
            Self::W1 | Self::W1e => (10, 100),
            Self::W2 | Self::W2e => (100, 100),
            Self::W3 => (512, 512),
        };
        vec![outer, width, width, width, outer]
    }

    /// Batch size.
    pub fn batch(self) -> usize {
        match self {
            Self::W1 | Self::W1e => 1,
            Self::W2 | Self::W2e => 32,
            Self::W3 => 128,
        }
    }

    /// Ensemble members trained at once.
    pub fn members(self) -> usize {
        match self {
            Self::W1e => 64,
            Self::W2e => 16,
            _ => 1,
        }
    }

    /// Floating-point operations of one member's SGD step with the closed-form gradient
    /// (multiply-adds counted as two): the teacher's labels, the forward pass, and for each
    /// layer its weight gradient and (but for the first) the backpropagated error.
    pub fn flops_per_member_step(self) -> f64 {
        let d = self.dims();
        let b = self.batch() as f64;
        let mm = |m: usize, k: usize| 2.0 * m as f64 * k as f64 * b;
        let labels = mm(d[d.len() - 1], d[0]);
        let layers: f64 = (1..d.len()).map(|l| mm(d[l], d[l - 1]) * if l == 1 { 2.0 } else { 3.0 }).sum();
        labels + layers
    }

    /// The run parameters: a power-law teacher of rank 5, Gaussian start (`γ = 2`), label
    /// noise 0.1, η = 10⁻³, no diffusion probe, as many steps as asked for.
    pub fn params(self, backend: BackendKind, gradient: GradientPath) -> TrainParams {
        TrainParams {
            dims: self.dims(),
            teacher: TeacherParams {
                spectrum: SpectrumSpec::PowerLaw { s_max: 1.0, decay: 1.0, rank: 5, s_min: 1e-12 },
                seed: 0,
            },
            init: InitScheme::Gaussian { gamma: Some(2.0), scale: None },
            data: DataParams { source: DataSource::Online, sigma: 0.1 },
            lr: 1e-3,
            batch: self.batch(),
            steps: u64::MAX,
            seeds: (0..self.members() as u64).collect(),
            gradient,
            backend,
            n_probe: 0,
            ..TrainParams::default()
        }
    }
}

impl std::fmt::Display for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Workload {
    type Err = DlnError;

    fn from_str(s: &str) -> Result<Self, DlnError> {
        Self::ALL
            .into_iter()
            .find(|w| w.name() == s)
            .ok_or_else(|| DlnError::invalid("--workload", "must be one of w1, w2, w3, w1e, w2e, sde", s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workloads_are_the_shared_bench_sizes_and_valid() {
        for w in Workload::ALL {
            assert_eq!(w.name().parse::<Workload>().unwrap(), w);
            let p = w.params(BackendKind::Flex, GradientPath::Auto);
            assert_eq!(p.dims.len(), 5, "4 weight matrices");
            p.check().unwrap();
        }
        assert_eq!(Workload::W2e.dims(), [100, 100, 100, 100, 100]);
        // W3: labels 2·512²·128 and 3 matmuls per layer but the first (2): 12 matmuls of
        // 2·512·512·128 flops each.
        assert_eq!(Workload::W3.flops_per_member_step(), 12.0 * 2.0 * 512.0 * 512.0 * 128.0);
        assert!("w4".parse::<Workload>().unwrap_err().to_string().starts_with("--workload: must be one of"));
    }
}
