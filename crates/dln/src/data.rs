//! Training data: online whitened Gaussian batches, a fixed sample, or the population loss, and
//! the batch sampler (`BatchSampler`) that hands the trainer one batch for every active member.
//!
//! Data are drawn on the host from each member's own random stream, so a member of an ensemble
//! sees exactly the data of the single run with the same seed, on every backend. Online batches
//! come from the counter-based generator of `modewise_theory::rng::philox` by default (batch
//! `d` of a member is a pure function of its seed, namespace and `d`); the members' batches are
//! drawn in parallel, which changes no bit.

use nalgebra::DMatrix;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::DlnError;
use crate::error::Result;
use crate::teacher::Teacher;
use modewise_theory::check::non_negative;
use modewise_theory::rng::philox::Philox;
use modewise_theory::rng::{PathRng, Stream};

/// Where the training batches come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum DataSource {
    /// A fresh batch `x ~ N(0, I)`, `y = M x + ε` every step (the theory's setting).
    #[default]
    Online,
    /// A fixed sample of `n` points drawn once per member; each epoch visits a fresh random
    /// permutation in batches of `B` (without replacement; the last `n mod B` points of an epoch
    /// are skipped).
    Fixed {
        /// Sample size `N`; at least the batch size.
        n: usize,
        /// PCA-whiten the inputs on the sample (centred, `XᵀX/N = I`); needs `N > d_0`.
        #[serde(default)]
        whiten: bool,
    },
    /// No sampling: gradient descent on the population loss `ℒ = ½‖W − M‖²_F + ½ d_L σ²`.
    Population,
}

/// The generator of the online batches' normal numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Generator {
    /// Counter-based: Philox4x32-10 on the member's batches stream, Box–Muller in `f32`
    /// (`modewise_theory::rng::philox`, whose documentation gives the exact algorithm); any
    /// element of any batch can be computed on its own, vectorised, and on a GPU.
    #[default]
    Philox,
    /// The generator of the releases before it: `rand_distr`'s f64 ziggurat on the member's
    /// PCG64 data stream, one element after another, rounded to `f32` (about ten times slower;
    /// to reproduce results written by those releases bit for bit).
    Pcg64Ziggurat,
}

/// Unchecked data parameters.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataParams {
    /// The source of the batches.
    pub source: DataSource,
    /// Label-noise standard deviation `σ`; finite and non-negative.
    pub sigma: f64,
    /// The generator of online batches (`"philox"` by default, or `"pcg64-ziggurat"`); fixed
    /// samples are always drawn from the PCG64 data stream.
    pub generator: Generator,
}

impl DataParams {
    /// Checks the rules that do not depend on the network (fields named within the data
    /// parameters: `sigma`, `source.n`).
    pub fn check(&self, batch: usize, d_in: usize) -> Result<()> {
        non_negative("sigma", self.sigma)?;
        if let DataSource::Fixed { n, whiten } = self.source {
            if n < batch {
                return Err(DlnError::invalid("source.n", format!("must be at least the batch size {batch}"), n));
            }
            if whiten && n <= d_in {
                return Err(DlnError::invalid(
                    "source.n",
                    format!("must exceed the input dimension {d_in} to whiten the sample"),
                    n,
                ));
            }
        }
        Ok(())
    }
}

/// One batch for every active member, as the [`BatchSampler`] hands it out. Host buffers hold
/// member after member, each row-major: inputs `d_0 × B`, noise or labels `d_L × B`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Batch<'a> {
    /// Fresh inputs `x` and label noise `noise`: the targets are `M x + noise` (online data).
    Online {
        /// Inputs.
        x: &'a [f32],
        /// Label noise.
        noise: &'a [f32],
        /// Batch size `B`.
        size: usize,
    },
    /// Inputs `x` with their labels `y` (a fixed sample).
    Labelled {
        /// Inputs.
        x: &'a [f32],
        /// Labels.
        y: &'a [f32],
        /// Batch size `B`.
        size: usize,
    },
    /// Population descent: the input `I_{d_0}` and the target `M` for every member, loss
    /// scale 1 (the engines hold these constants).
    Population,
}

impl Batch<'_> {
    /// The loss scale: `1/B`, or 1 for population descent.
    pub(crate) fn scale(&self) -> f32 {
        match *self {
            Self::Online { size, .. } | Self::Labelled { size, .. } => 1.0 / size as f32,
            Self::Population => 1.0,
        }
    }
}

/// The members' data streams and the host buffers their batches are drawn into. Members are
/// kept in the trainer's order; [`retain`](Self::retain) drops the diverged ones.
#[derive(Debug, Clone)]
pub(crate) struct BatchSampler {
    source: DataSource,
    members: Vec<MemberData>,
    batch: usize,
    d_in: usize,
    d_out: usize,
    x: Vec<f32>,
    z: Vec<f32>,
}

impl BatchSampler {
    /// The samplers of the members with these seeds in the data namespace `namespace`, for
    /// batches of `batch` points.
    pub(crate) fn new(seeds: &[u64], namespace: u64, data: &DataParams, teacher: &Teacher, batch: usize) -> Self {
        Self {
            source: data.source,
            members: seeds.iter().map(|&s| MemberData::new(s, namespace, data, teacher)).collect(),
            batch,
            d_in: teacher.d_in(),
            d_out: teacher.d_out(),
            x: Vec::new(),
            z: Vec::new(),
        }
    }

    /// Draws the next batch of every member (advancing their data streams; population descent
    /// draws nothing).
    pub(crate) fn next(&mut self) -> Batch<'_> {
        if self.source == DataSource::Population {
            return Batch::Population;
        }
        let (e, b) = (self.members.len(), self.batch);
        let (nx, nz) = (self.d_in * b, self.d_out * b);
        self.x.resize(e * nx, 0.0);
        self.z.resize(e * nz, 0.0);
        self.members
            .par_iter_mut()
            .zip(self.x.par_chunks_mut(nx))
            .zip(self.z.par_chunks_mut(nz))
            .for_each(|((m, x), z)| m.next_batch(x, z, b));
        match self.source {
            DataSource::Online => Batch::Online { x: &self.x, noise: &self.z, size: b },
            DataSource::Fixed { .. } => Batch::Labelled { x: &self.x, y: &self.z, size: b },
            DataSource::Population => unreachable!("handled above"),
        }
    }

    /// Keeps the members whose `keep` flag is set, in order.
    pub(crate) fn retain(&mut self, keep: &[bool]) {
        let mut flags = keep.iter();
        self.members.retain(|_| *flags.next().expect("one flag per member"));
    }
}

/// One member's data sampler.
#[derive(Debug, Clone)]
pub(crate) struct MemberData {
    rng: PathRng,
    /// The counter-based generator of online batches and the number of the next batch (`None`
    /// with [`Generator::Pcg64Ziggurat`] or a fixed sample).
    batches: Option<(Philox, u64)>,
    sigma: f32,
    fixed: Option<FixedSample>,
}

#[derive(Debug, Clone)]
struct FixedSample {
    n: usize,
    /// Inputs, `n × d_in`, one sample per row.
    x: Vec<f32>,
    /// Labels, `n × d_out`.
    y: Vec<f32>,
    perm: Vec<usize>,
    pos: usize,
}

impl MemberData {
    /// The sampler of the member with this seed in the data namespace `namespace`.
    pub(crate) fn new(seed: u64, namespace: u64, data: &DataParams, teacher: &Teacher) -> Self {
        let mut rng = Stream::Data { namespace }.rng(seed);
        let fixed = match data.source {
            DataSource::Fixed { n, whiten } => Some(FixedSample::draw(n, whiten, data.sigma, teacher, &mut rng)),
            _ => None,
        };
        let batches = (data.source == DataSource::Online && data.generator == Generator::Philox)
            .then(|| (Philox::of(seed, Stream::Batches { namespace }), 0));
        Self { rng, batches, sigma: data.sigma as f32, fixed }
    }

    /// Fills `x` (`d_in × B`, row-major) and `z` (`d_out × B`, row-major) with the next batch:
    /// for online data `z` is the label noise `ε`, for a fixed sample the labels `y`.
    pub(crate) fn next_batch(&mut self, x: &mut [f32], z: &mut [f32], batch: usize) {
        if let Some((philox, next)) = &mut self.batches {
            // Batch `next`: part 0 the inputs, part 1 the label noise.
            philox.fill_normal(*next, 0, 0, x);
            if self.sigma > 0.0 {
                philox.fill_normal(*next, 1, 0, z);
                for v in z.iter_mut() {
                    *v *= self.sigma;
                }
            } else {
                z.fill(0.0);
            }
            *next += 1;
            return;
        }
        match &mut self.fixed {
            None => {
                for v in x.iter_mut() {
                    *v = normal(&mut self.rng);
                }
                if self.sigma > 0.0 {
                    for v in z.iter_mut() {
                        *v = self.sigma * normal(&mut self.rng);
                    }
                } else {
                    z.fill(0.0);
                }
            }
            Some(f) => {
                let d_in = x.len() / batch;
                let d_out = z.len() / batch;
                for b in 0..batch {
                    let i = f.next_index(&mut self.rng, batch);
                    for r in 0..d_in {
                        x[r * batch + b] = f.x[i * d_in + r];
                    }
                    for r in 0..d_out {
                        z[r * batch + b] = f.y[i * d_out + r];
                    }
                }
            }
        }
    }

    /// A fresh population-like sample of `n` inputs and label noises, in f64, for the probes
    /// (drawn from `rng`, not from the training stream).
    pub(crate) fn probe_sample(
        rng: &mut PathRng,
        n: usize,
        d_in: usize,
        d_out: usize,
        sigma: f64,
    ) -> (DMatrix<f64>, DMatrix<f64>) {
        let mut x = DMatrix::zeros(d_in, n);
        for v in x.iter_mut() {
            *v = StandardNormal.sample(rng);
        }
        let mut e = DMatrix::zeros(d_out, n);
        if sigma > 0.0 {
            for v in e.iter_mut() {
                let z: f64 = StandardNormal.sample(rng);
                *v = sigma * z;
            }
        }
        (x, e)
    }
}

fn normal(rng: &mut PathRng) -> f32 {
    let z: f64 = StandardNormal.sample(rng);
    z as f32
}

impl FixedSample {
    fn draw(n: usize, whiten: bool, sigma: f64, teacher: &Teacher, rng: &mut PathRng) -> Self {
        let d_in = teacher.d_in();
        // One sample per row, as in the research code.
        let mut x = DMatrix::<f64>::zeros(n, d_in);
        for v in x.iter_mut() {
            *v = StandardNormal.sample(rng);
        }
        if whiten {
            for mut col in x.column_iter_mut() {
                let mean = col.mean();
                col.add_scalar_mut(-mean);
            }
            let svd = x.clone().svd(true, true);
            let (u, vt) = (svd.u.expect("u requested"), svd.v_t.expect("v requested"));
            x = u * vt * (n as f64).sqrt();
        }
        let mut y = &x * teacher.matrix().transpose();
        if sigma > 0.0 {
            for v in y.iter_mut() {
                let z: f64 = StandardNormal.sample(rng);
                *v += sigma * z;
            }
        }
        let row_major = |m: &DMatrix<f64>| -> Vec<f32> { m.transpose().iter().map(|&v| v as f32).collect() };
        Self { n, x: row_major(&x), y: row_major(&y), perm: Vec::new(), pos: 0 }
    }

    /// The next sample index: batches never straddle two epochs, so each epoch is a fresh
    /// permutation visited without replacement.
    fn next_index(&mut self, rng: &mut PathRng, batch: usize) -> usize {
        let batch_start = self.pos.is_multiple_of(batch);
        if self.perm.is_empty() || (batch_start && self.pos + batch > self.n) {
            use rand::seq::SliceRandom;
            self.perm = (0..self.n).collect();
            self.perm.shuffle(rng);
            self.pos = 0;
        }
        let i = self.perm[self.pos];
        self.pos += 1;
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::teacher::TeacherParams;

    #[test]
    fn whitened_sample_has_identity_covariance_and_epochs_are_permutations() {
        let teacher = TeacherParams::default().build(4, 3).unwrap();
        let (n, batch) = (10, 3);
        let mut rng = Stream::Data { namespace: 0 }.rng(1);
        let mut f = FixedSample::draw(n, true, 0.0, &teacher, &mut rng);
        let x = DMatrix::from_row_slice(n, 4, &f.x.iter().map(|&v| v as f64).collect::<Vec<_>>());
        let cov = x.transpose() * &x / n as f64;
        assert!((cov - DMatrix::<f64>::identity(4, 4)).amax() < 1e-5);
        // Three batches of 3 per epoch (the tenth point is skipped), each epoch without repeats.
        for _ in 0..4 {
            let mut seen: Vec<usize> = (0..9).map(|_| f.next_index(&mut rng, batch)).collect();
            seen.sort();
            seen.dedup();
            assert_eq!(seen.len(), 9, "an epoch repeats a point");
        }
    }
}
