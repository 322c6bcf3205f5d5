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
use crate::checkpoint::MemberStreams;
use crate::error::Result;
use crate::fused::Real;
use crate::teacher::Teacher;
use crate::train::TrainSpec;
use modewise_theory::check::non_negative;
use modewise_theory::rng::philox::Philox;
use modewise_theory::rng::{PathRng, Stream};

/// Where the training batches come from.
///
/// In a spec, a table with a `kind` and the kind's fields: `{ kind = "online" }`,
/// `{ kind = "fixed", n = 1000 }`, `{ kind = "fixed", n = 20, whiten = true, train_fraction = 0.8 }`,
/// `{ kind = "population" }`; any other key is an error (also beside the kinds that have no
/// fields).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", from = "DataSourceToml")]
pub enum DataSource {
    /// A fresh batch `x ~ N(0, I)`, `y = M x + ε` every step (the theory's setting).
    #[default]
    Online,
    /// A fixed sample of `n` points drawn once per member (whitened on all `n` points if asked),
    /// of which a random `⌊train_fraction · n⌋` are trained on; each epoch visits a fresh random
    /// permutation of the training points in batches of `B` (without replacement; the last
    /// `n_train mod B` points of an epoch are skipped).
    Fixed {
        /// Sample size `N`; at least the batch size.
        n: usize,
        /// PCA-whiten the inputs on the sample (centred, `XᵀX/N = I`); needs `N > d_0`.
        #[serde(default)]
        whiten: bool,
        /// The fraction of the (whitened) sample trained on, in `(0, 1]` (default 1: all of
        /// it): a random `⌊train_fraction · N⌋` points, chosen once per member after whitening,
        /// as the first author's research code splits its data.
        #[serde(default = "one", skip_serializing_if = "is_one")]
        train_fraction: f64,
    },
    /// No sampling: gradient descent on the population loss `ℒ = ½‖W − M‖²_F + ½ d_L σ²`.
    Population,
}

impl DataSource {
    /// A fixed sample of `n` points, whitened if asked, all of it trained on
    /// (`train_fraction = 1`).
    pub fn fixed(n: usize, whiten: bool) -> Self {
        Self::Fixed { n, whiten, train_fraction: 1.0 }
    }
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
    /// PCG64 data stream, one element after another, rounded to `f32` (about twice as slow;
    /// to reproduce results written by those releases bit for bit).
    Pcg64Ziggurat,
}

/// [`DataSource`] as read from a spec. Every kind is a struct variant, even without fields:
/// serde ignores `deny_unknown_fields` on the unit variants of an internally tagged enum, so
/// `{ kind = "online", n = 5 }` would read as online data without a word.
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
enum DataSourceToml {
    Online {},
    Fixed {
        n: usize,
        #[serde(default)]
        whiten: bool,
        #[serde(default = "one")]
        train_fraction: f64,
    },
    Population {},
}

/// The default training fraction: the whole sample.
fn one() -> f64 {
    1.0
}

/// Whether a training fraction is the default (left out of a written spec, so specs without it
/// read and print as before).
fn is_one(f: &f64) -> bool {
    *f == 1.0
}

impl From<DataSourceToml> for DataSource {
    fn from(t: DataSourceToml) -> Self {
        match t {
            DataSourceToml::Online {} => Self::Online,
            DataSourceToml::Fixed { n, whiten, train_fraction } => Self::Fixed { n, whiten, train_fraction },
            DataSourceToml::Population {} => Self::Population,
        }
    }
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
    /// parameters: `sigma`, `source.n`, `source.train_fraction`).
    pub fn check(&self, batch: usize, d_in: usize) -> Result<()> {
        non_negative("sigma", self.sigma)?;
        if let DataSource::Fixed { n, whiten, train_fraction } = self.source {
            if n < batch {
                return Err(DlnError::invalid("source.n", format!("must be at least the batch size {batch}"), n));
            }
            if !(train_fraction > 0.0 && train_fraction <= 1.0) {
                return Err(DlnError::invalid("source.train_fraction", "must be in (0, 1]", train_fraction));
            }
            let n_train = train_count(n, train_fraction);
            if n_train < batch {
                return Err(DlnError::invalid(
                    "source.train_fraction",
                    format!("leaves {n_train} of the {n} points to train on, fewer than the batch size {batch}"),
                    train_fraction,
                ));
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

/// The number of training points of a fixed sample of `n` with training fraction `fraction`:
/// `⌊fraction · n⌋` (as the research code's `int(n * ratio)`).
pub fn train_count(n: usize, fraction: f64) -> usize {
    (n as f64 * fraction).floor() as usize
}

/// One batch for every active member, as the [`BatchSampler`] hands it out, in the training
/// precision `T`. Host buffers hold member after member, each row-major: inputs `d_0 × B`, noise
/// or labels `d_L × B`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Batch<'a, T> {
    /// Fresh inputs `x` and label noise `noise`: the targets are `M x + noise` (online data).
    Online {
        /// Inputs.
        x: &'a [T],
        /// Label noise.
        noise: &'a [T],
        /// Batch size `B`.
        size: usize,
    },
    /// Inputs `x` with their labels `y` (a fixed sample).
    Labelled {
        /// Inputs.
        x: &'a [T],
        /// Labels.
        y: &'a [T],
        /// Batch size `B`.
        size: usize,
    },
    /// Population descent: the input `I_{d_0}` and the target `M` for every member, loss
    /// scale 1 (the engines hold these constants).
    Population,
}

impl<T: Real> Batch<'_, T> {
    /// The loss scale: `1/B`, or 1 for population descent.
    pub(crate) fn scale(&self) -> T {
        match *self {
            Self::Online { size, .. } | Self::Labelled { size, .. } => T::one() / T::of(size as f64),
            Self::Population => T::one(),
        }
    }
}

/// The members' data streams and the host buffers their batches are drawn into, in the training
/// precision `T` (the same normal draws in either precision, rounded to `T`). Members are kept in
/// the trainer's order; [`retain`](Self::retain) drops the diverged ones.
#[derive(Debug, Clone)]
pub(crate) struct BatchSampler<T> {
    source: DataSource,
    members: Vec<MemberData<T>>,
    batch: usize,
    d_in: usize,
    d_out: usize,
    x: Vec<T>,
    z: Vec<T>,
}

impl<T: Real> BatchSampler<T> {
    /// The samplers of the members of `spec` (its seeds, data namespace, data and batch size).
    pub(crate) fn of(spec: &TrainSpec) -> Self {
        let p = spec.params();
        Self::new(&p.seeds, p.streams.data, &p.data, spec.teacher(), p.batch)
    }

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
    pub(crate) fn next(&mut self) -> Batch<'_, T> {
        if self.source == DataSource::Population {
            return Batch::Population;
        }
        let (e, b) = (self.members.len(), self.batch);
        let (nx, nz) = (self.d_in * b, self.d_out * b);
        self.x.resize(e * nx, T::zero());
        self.z.resize(e * nz, T::zero());
        self.members
            .par_iter_mut()
            .zip(self.x.par_chunks_mut(nx))
            .zip(self.z.par_chunks_mut(nz))
            .with_min_len(crate::fused::min_members_per_task())
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

    /// The members' data streams, in order (see [`crate::checkpoint`]).
    pub(crate) fn streams(&self) -> Vec<MemberStreams> {
        self.members
            .iter()
            .map(|m| MemberStreams {
                rng: m.rng.clone(),
                batch: m.batches.as_ref().map(|&(_, next)| next),
                perm: m.fixed.as_ref().map_or_else(Vec::new, |f| f.perm.clone()),
                pos: m.fixed.as_ref().map_or(0, |f| f.pos),
            })
            .collect()
    }

    /// Puts the members' data streams where `streams` says (one per member, in order, as
    /// [`streams`](Self::streams) gave them for the same data parameters); refuses streams
    /// that do not fit these members (field `checkpoint`).
    pub(crate) fn restore(&mut self, streams: &[MemberStreams]) -> Result<()> {
        let misfit = |rule: String| DlnError::invalid("checkpoint", rule, streams.len());
        if streams.len() != self.members.len() {
            return Err(misfit(format!("must hold one data stream per live member ({})", self.members.len())));
        }
        for (m, s) in self.members.iter_mut().zip(streams) {
            match (&mut m.batches, s.batch) {
                (Some((_, next)), Some(b)) => *next = b,
                (None, None) => {}
                _ => return Err(misfit("must come from a run with the same data generator".into())),
            }
            match &mut m.fixed {
                Some(f) => {
                    let permutation = s.perm.is_empty() && s.pos == 0
                        || s.perm.len() == f.n && s.pos <= f.n && {
                            let mut seen = vec![false; f.n];
                            s.perm.iter().all(|&i| i < f.n && !std::mem::replace(&mut seen[i], true))
                        };
                    if !permutation {
                        return Err(misfit(format!("must hold a permutation of the {} training points", f.n)));
                    }
                    f.perm.clone_from(&s.perm);
                    f.pos = s.pos;
                }
                None if s.perm.is_empty() && s.pos == 0 => {}
                None => return Err(misfit("must come from a run with the same data source".into())),
            }
            m.rng = s.rng.clone();
        }
        Ok(())
    }

    /// `n` fresh batches for the clones of the member at `slot`, drawn from the member's clone
    /// stream at SGD step `step` (`Stream::Clones`), laid out as the batches of `n` members.
    /// The member's data stream is not touched. Online data draw fresh points; a fixed sample
    /// gives each clone `B` distinct points of the member's sample drawn at random (the first
    /// batch of a fresh permutation); population descent draws nothing.
    pub(crate) fn clone_batch(&mut self, slot: usize, step: u64, n: usize) -> Batch<'_, T> {
        if self.source == DataSource::Population {
            return Batch::Population;
        }
        let b = self.batch;
        let (nx, nz) = (self.d_in * b, self.d_out * b);
        self.x.resize(n * nx, T::zero());
        self.z.resize(n * nz, T::zero());
        let member = &self.members[slot];
        let mut rng = Stream::Clones { namespace: member.namespace, step }.rng(member.seed);
        for c in 0..n {
            let (x, z) = (&mut self.x[c * nx..(c + 1) * nx], &mut self.z[c * nz..(c + 1) * nz]);
            match &member.fixed {
                None => draw_online(&mut rng, member.sigma, x, z),
                Some(f) => {
                    let picked = rand::seq::index::sample(&mut rng, f.n, b);
                    f.gather(picked.iter(), x, z, b);
                }
            }
        }
        match self.source {
            DataSource::Online => Batch::Online { x: &self.x[..n * nx], noise: &self.z[..n * nz], size: b },
            DataSource::Fixed { .. } => Batch::Labelled { x: &self.x[..n * nx], y: &self.z[..n * nz], size: b },
            DataSource::Population => unreachable!("handled above"),
        }
    }
}

/// One member's data sampler.
#[derive(Debug, Clone)]
pub(crate) struct MemberData<T> {
    seed: u64,
    namespace: u64,
    rng: PathRng,
    /// The counter-based generator of online batches and the number of the next batch (`None`
    /// with [`Generator::Pcg64Ziggurat`] or a fixed sample).
    batches: Option<(Philox, u64)>,
    sigma: T,
    fixed: Option<FixedSample<T>>,
}

#[derive(Debug, Clone)]
struct FixedSample<T> {
    n: usize,
    /// Inputs, `n × d_in`, one sample per row.
    x: Vec<T>,
    /// Labels, `n × d_out`.
    y: Vec<T>,
    perm: Vec<usize>,
    pos: usize,
}

impl<T: Real> MemberData<T> {
    /// The sampler of the member with this seed in the data namespace `namespace`.
    pub(crate) fn new(seed: u64, namespace: u64, data: &DataParams, teacher: &Teacher) -> Self {
        let mut rng = Stream::Data { namespace }.rng(seed);
        let fixed = match data.source {
            DataSource::Fixed { n, whiten, train_fraction } => {
                Some(FixedSample::draw(n, whiten, train_fraction, data.sigma, teacher, &mut rng))
            }
            _ => None,
        };
        let batches = (data.source == DataSource::Online && data.generator == Generator::Philox)
            .then(|| (Philox::of(seed, Stream::Batches { namespace }), 0));
        Self { seed, namespace, rng, batches, sigma: T::of(data.sigma), fixed }
    }

    /// Fills `x` (`d_in × B`, row-major) and `z` (`d_out × B`, row-major) with the next batch:
    /// for online data `z` is the label noise `ε`, for a fixed sample the labels `y`.
    pub(crate) fn next_batch(&mut self, x: &mut [T], z: &mut [T], batch: usize) {
        if let Some((philox, next)) = &mut self.batches {
            // Batch `next`: part 0 the inputs, part 1 the label noise.
            T::fill_normal(philox, *next, 0, x);
            if self.sigma > T::zero() {
                T::fill_normal(philox, *next, 1, z);
                for v in z.iter_mut() {
                    *v = *v * self.sigma;
                }
            } else {
                z.fill(T::zero());
            }
            *next += 1;
            return;
        }
        match &mut self.fixed {
            None => draw_online(&mut self.rng, self.sigma, x, z),
            Some(f) => {
                let (d_in, d_out) = (x.len() / batch, z.len() / batch);
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
}

/// Fills `x` with standard normals and then `z` with `N(0, σ²)` label noise (zeros without
/// noise), in that order, from `rng`.
fn draw_online<T: Real>(rng: &mut PathRng, sigma: T, x: &mut [T], z: &mut [T]) {
    for v in x.iter_mut() {
        *v = normal(rng);
    }
    if sigma > T::zero() {
        for v in z.iter_mut() {
            *v = sigma * normal(rng);
        }
    } else {
        z.fill(T::zero());
    }
}

/// A fresh population-like sample of `n` inputs and label noises, in f64, for the probes (drawn
/// from `rng`, not from the training stream).
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

/// A standard normal draw rounded to `T`.
fn normal<T: Real>(rng: &mut PathRng) -> T {
    let z: f64 = StandardNormal.sample(rng);
    T::of(z)
}

impl<T: Real> FixedSample<T> {
    /// Draws `n` inputs, whitens them on all `n` if asked, labels them (with noise), and keeps a
    /// random `⌊train_fraction · n⌋` of them (in the order of a random permutation drawn after
    /// the noise; nothing more is drawn when the fraction is 1).
    fn draw(n: usize, whiten: bool, train_fraction: f64, sigma: f64, teacher: &Teacher, rng: &mut PathRng) -> Self {
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
        let n_train = train_count(n, train_fraction);
        if n_train < n {
            use rand::seq::SliceRandom;
            let mut order: Vec<usize> = (0..n).collect();
            order.shuffle(rng);
            order.truncate(n_train);
            x = x.select_rows(order.iter());
            y = y.select_rows(order.iter());
        }
        let row_major = |m: &DMatrix<f64>| -> Vec<T> { m.transpose().iter().map(|&v| T::of(v)).collect() };
        Self { n: n_train, x: row_major(&x), y: row_major(&y), perm: Vec::new(), pos: 0 }
    }

    /// Copies the points `picked` (one per column, `batch` of them) into `x` (`d_in × B`,
    /// row-major) and their labels into `y` (`d_out × B`).
    fn gather(&self, picked: impl Iterator<Item = usize>, x: &mut [T], y: &mut [T], batch: usize) {
        let (d_in, d_out) = (x.len() / batch, y.len() / batch);
        for (b, i) in picked.enumerate() {
            for r in 0..d_in {
                x[r * batch + b] = self.x[i * d_in + r];
            }
            for r in 0..d_out {
                y[r * batch + b] = self.y[i * d_out + r];
            }
        }
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

    /// Online batches are the counter-based stream: batch `d` of a member is elements of draw
    /// `d` (part 0 the inputs, part 1 the noise times σ), whatever the other members, and the
    /// f64 sampler hands out the same numbers widened.
    #[test]
    fn online_batches_are_the_members_counter_based_draws_in_either_precision() {
        let spectrum = crate::teacher::SpectrumSpec::List { s: vec![2.0, 1.0] };
        let teacher = TeacherParams { spectrum, ..TeacherParams::default() }.build(3, 2).unwrap();
        let data = DataParams { sigma: 0.5, ..DataParams::default() };
        let (seeds, batch) = ([4u64, 9, 2], 5);
        let mut narrow = BatchSampler::<f32>::new(&seeds, 7, &data, &teacher, batch);
        let mut wide = BatchSampler::<f64>::new(&seeds, 7, &data, &teacher, batch);
        for d in 0..3u64 {
            let (Batch::Online { x, noise, .. }, Batch::Online { x: x64, noise: noise64, .. }) =
                (narrow.next(), wide.next())
            else {
                panic!("online batches")
            };
            for (e, &seed) in seeds.iter().enumerate() {
                let g = Philox::of(seed, Stream::Batches { namespace: 7 });
                for i in 0..3 * batch {
                    assert_eq!(x[e * 3 * batch + i], g.normal(d, 0, i as u64), "x of member {e}, batch {d}");
                }
                for i in 0..2 * batch {
                    assert_eq!(noise[e * 2 * batch + i], 0.5 * g.normal(d, 1, i as u64), "noise of member {e}");
                }
            }
            assert!(x.iter().zip(x64).all(|(&a, &b)| f64::from(a) == b));
            assert!(noise.iter().zip(noise64).all(|(&a, &b)| (f64::from(a) - b).abs() <= 1e-7 * b.abs()));
        }
    }

    #[test]
    fn whitened_sample_has_identity_covariance_and_epochs_are_permutations() {
        let teacher = TeacherParams::default().build(4, 3).unwrap();
        let (n, batch) = (10, 3);
        let mut rng = Stream::Data { namespace: 0 }.rng(1);
        let mut f = FixedSample::<f32>::draw(n, true, 1.0, 0.0, &teacher, &mut rng);
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

    #[test]
    fn a_training_fraction_keeps_distinct_points_of_the_whitened_sample() {
        let teacher = TeacherParams::default().build(4, 3).unwrap();
        let n = 20;
        let draw = |fraction| {
            let mut rng = Stream::Data { namespace: 0 }.rng(7);
            FixedSample::<f64>::draw(n, true, fraction, 0.5, &teacher, &mut rng)
        };
        let (all, part) = (draw(1.0), draw(0.8));
        assert_eq!((all.n, part.n), (20, 16));
        // Whitened on all 20 points: the full sample's covariance is the identity, the part's not.
        let cov = |f: &FixedSample<f64>| {
            let x = DMatrix::from_row_slice(f.n, 4, &f.x);
            x.transpose() * &x / f.n as f64
        };
        assert!((cov(&all) - DMatrix::<f64>::identity(4, 4)).amax() < 1e-12);
        assert!((cov(&part) - DMatrix::<f64>::identity(4, 4)).amax() > 1e-3);
        // Each training point (input and noisy label) is a distinct point of the full sample.
        let row = |f: &FixedSample<f64>, i: usize| (f.x[i * 4..(i + 1) * 4].to_vec(), f.y[i * 3..(i + 1) * 3].to_vec());
        let mut picked: Vec<usize> = (0..16)
            .map(|i| (0..20).find(|&j| row(&all, j) == row(&part, i)).expect("a training point outside the sample"))
            .collect();
        picked.sort();
        picked.dedup();
        assert_eq!(picked.len(), 16, "a point is trained on twice");
    }
}
