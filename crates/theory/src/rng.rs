//! Every random stream of modewise, in one table.
//!
//! A stream is the generator [`path_rng`]`(seed, number)`: a PCG64 seeded from the 64-bit
//! [`stream_key`] of a seed and a stream number; the one exception, a member's online batches,
//! is the counter-based [`Philox`](philox::Philox) keyed by the same [`stream_key`], whose every
//! element can be computed on its own (on any thread, or on a GPU; see [`philox`]). Streams are independent when their keys differ;
//! for one seed, different numbers always give different keys. The seeds are the user's: the
//! teacher's `teacher.seed`, each ensemble member's seed (`seeds[e]`, distinct within a run),
//! and the run's first seed `seeds[0]` for its theory overlays.
//!
//! A member's streams also carry a *namespace* `n` (below [`NAMESPACES`] `= 2¹⁶`): the DLN
//! crate's `train.streams`, one for the initial weights and one for the data-like streams (data,
//! probe samples, clone batches). Runs that differ only in their namespaces draw independent
//! streams from the same seeds, so an experiment gives each variant its own namespace to make its
//! variants independent samples, or one namespace to all for common random numbers. Namespace 0
//! gives the streams of the releases before namespaces existed.
//!
//! | stream | seed | number ([`Stream::number`]) | drawn by |
//! |---|---|---|---|
//! | teacher frames `U`, `V` | `teacher.seed` | `0x7EAC` | the DLN crate's `TeacherParams::build` |
//! | a member's data: its fixed sample and epoch permutations (and its online batches with `data.generator = "pcg64-ziggurat"`), data namespace `n` | member seed | `n·2⁴⁰ + 1` | the DLN crate's data sampler |
//! | a member's online batches (counter-based: [`philox`], batch `d`, part 0 the inputs and 1 the label noise), data namespace `n` | member seed | `n·2⁴⁰ + 3` | the DLN crate's data sampler |
//! | a member's initial weights, init namespace `n` | member seed | `n·2⁴⁰ + 2` | the DLN crate's `InitScheme::draw` |
//! | a member's diffusion-probe samples at SGD step `s` (with `n_probe ≥ 2`), data namespace `n` | member seed | `2⁵⁶ + n·2⁴⁰ + s` | the DLN crate's trainer |
//! | a member's clone batches at SGD step `s` (with `n_clones ≥ 2`), data namespace `n` | member seed | `5·2⁵⁶ + n·2⁴⁰ + s` | the DLN crate's trainer |
//! | path `p` of mode `k` of a theory ensemble run on its own | the caller's | `stream_offset + k·2⁴⁰ + p`, offset 0 by default | [`Mode::ensemble`](crate::Mode::ensemble), [`spectrum_ensemble`](crate::ensemble::spectrum_ensemble) |
//! | path `p` of a run's SDE overlay of mode `k` | `seeds[0]` | `2·2⁵⁶ + k·2⁴⁰ + p` | the experiments crate's overlays |
//! | path `p` of a run's exact-chain overlay of mode `k` | `seeds[0]` | `3·2⁵⁶ + k·2⁴⁰ + p` | the experiments crate's overlays |
//! | path `p` of the SDE ensemble of a run's SDE-vs-SGD verdict on mode `k` | `seeds[0]` | `4·2⁵⁶ + k·2⁴⁰ + p` | the experiments crate's verdicts |
//! | path `p` of the exact-chain ensemble of a run's SDE-vs-SGD verdict on mode `k` | `seeds[0]` | `6·2⁵⁶ + k·2⁴⁰ + p` | the experiments crate's verdicts |
//! | the bootstrap resamples of a run's verdict number `v` (its quantity's index) on mode `k` | `seeds[0]` | `7·2⁵⁶ + k·2⁴⁰ + v` | the experiments crate's verdicts |
//!
//! Numbers are laid out as *domain* (bits 56–63: 0 for the fixed streams and stand-alone
//! ensembles, 1 for probes, 2–4 and 6 for the overlays and verdict ensembles, 5 for clones, 7 for
//! the verdicts' bootstrap), mode or namespace (bits 40–55,
//! [`MODE_STREAM_STRIDE`] apart) and index (bits 0–39: path or step). Within a run, the member
//! and teacher streams sit in domain 0 and every ensemble of the run in its own domain, so no two
//! streams of a run share a seed and a number, whatever seeds and namespaces the user picks (the
//! teacher's seed may equal a member's: their numbers differ). The test
//! `every_stream_of_a_realistic_run_is_distinct` checks the keys of a run with many members,
//! namespaces, modes, steps and paths. A stand-alone ensemble shares domain 0 with the member
//! streams: run under a member's seed, path 1, 2 or 3 of its mode `n` would be that member's
//! data, initial weights or online batches in namespace `n` (the PCG64 of path 3 and the Philox
//! of the batches are different generators, but the key is the same), so the library's own overlays never use
//! [`Ensemble::Standalone`].

pub mod philox;

use rand::SeedableRng;
use rand_pcg::Pcg64;

/// The random generator of one stream (and of one path of a theory ensemble).
pub type PathRng = Pcg64;

/// Stream numbers between the modes of an ensemble (`2⁴⁰` paths per mode at most).
pub const MODE_STREAM_STRIDE: u64 = 1 << 40;

/// Stream numbers between domains (`2¹⁶` modes or namespaces per domain at most).
const DOMAIN_STRIDE: u64 = 1 << 56;

/// The number of member-stream namespaces: a namespace is below `2¹⁶`.
pub const NAMESPACES: u64 = DOMAIN_STRIDE / MODE_STREAM_STRIDE;

/// Steps per namespace of the per-step streams (probe samples, clone batches): a step is below
/// `2⁴⁰`.
pub const MAX_STEP: u64 = MODE_STREAM_STRIDE;

/// The 64-bit key that seeds the generator of stream `stream` under `seed`:
/// `splitmix(seed) + stream · φ`, an injective function of `stream` for a fixed seed.
pub fn stream_key(seed: u64, stream: u64) -> u64 {
    const PHI: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut z = seed.wrapping_add(PHI);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    z.wrapping_add(stream.wrapping_mul(PHI))
}

/// The generator of stream `stream` under `seed`: a PCG64 seeded (through
/// `SeedableRng::seed_from_u64`, which expands 64 bits into state and increment) from
/// [`stream_key`], so no two streams of a seed share a generator. (PCG64 draws a normal about
/// 1.3 ns faster than ChaCha8 here, which is a third of an SDE path-step.)
pub fn path_rng(seed: u64, stream: u64) -> PathRng {
    PathRng::seed_from_u64(stream_key(seed, stream))
}

/// A family of theory-ensemble paths: which domain of stream numbers its paths use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ensemble {
    /// An ensemble run on its own (`modewise bench`, the library's callers): domain 0, from
    /// its `stream_offset`.
    Standalone,
    /// A run's SDE overlay.
    OverlaySde,
    /// A run's exact-chain overlay.
    OverlayChain,
    /// The SDE ensemble of a run's SDE-vs-SGD verdict.
    VerdictSde,
    /// The exact-chain ensemble of a run's SDE-vs-SGD verdict.
    VerdictChain,
}

impl Ensemble {
    /// The first stream number of mode `mode`'s paths: the `stream_offset` of the mode's
    /// [`EnsembleParams`](crate::EnsembleParams) (path `p` then draws from this plus `p`).
    pub fn mode_offset(self, mode: usize) -> u64 {
        Stream::Path { ensemble: self, mode, path: 0 }.number()
    }

    fn domain(self) -> u64 {
        match self {
            Self::Standalone => 0,
            Self::OverlaySde => 2,
            Self::OverlayChain => 3,
            Self::VerdictSde => 4,
            Self::VerdictChain => 6,
        }
    }
}

/// One stream of the table in the [module documentation](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// The teacher's singular frames (under the teacher's seed).
    Teacher,
    /// A member's training data.
    Data {
        /// The member's data namespace (below [`NAMESPACES`]).
        namespace: u64,
    },
    /// A member's online batches, drawn by the counter-based [`philox`] generator.
    Batches {
        /// The member's data namespace (below [`NAMESPACES`]).
        namespace: u64,
    },
    /// A member's initial weights.
    Init {
        /// The member's init namespace (below [`NAMESPACES`]).
        namespace: u64,
    },
    /// A member's diffusion-probe samples at an SGD step.
    Probe {
        /// The member's data namespace (below [`NAMESPACES`]).
        namespace: u64,
        /// The step (below [`MAX_STEP`]).
        step: u64,
    },
    /// The batches of a member's clones at an SGD step (the model-free diffusion estimate).
    Clones {
        /// The member's data namespace (below [`NAMESPACES`]).
        namespace: u64,
        /// The step (below [`MAX_STEP`]).
        step: u64,
    },
    /// The bootstrap resamples of one verdict of a run (under the run's first seed).
    Bootstrap {
        /// The mode (below `2¹⁶`).
        mode: usize,
        /// The verdict's number within the mode (below `2⁴⁰`).
        verdict: u64,
    },
    /// One path of a theory ensemble.
    Path {
        /// The family of the ensemble.
        ensemble: Ensemble,
        /// The mode (below `2¹⁶`).
        mode: usize,
        /// The path (below `2⁴⁰`).
        path: u64,
    },
}

impl Stream {
    /// The stream number passed to [`path_rng`].
    pub fn number(self) -> u64 {
        match self {
            Self::Teacher => 0x7EAC,
            Self::Data { namespace } => member(0, namespace, 1),
            Self::Batches { namespace } => member(0, namespace, 3),
            Self::Init { namespace } => member(0, namespace, 2),
            Self::Probe { namespace, step } => member(1, namespace, step),
            Self::Clones { namespace, step } => member(5, namespace, step),
            Self::Bootstrap { mode, verdict } => member(7, mode as u64, verdict),
            Self::Path { ensemble, mode, path } => {
                debug_assert!((mode as u64) < DOMAIN_STRIDE / MODE_STREAM_STRIDE, "mode {mode} beyond 2^16");
                debug_assert!(path < MODE_STREAM_STRIDE, "path {path} beyond 2^40");
                ensemble.domain() * DOMAIN_STRIDE + mode as u64 * MODE_STREAM_STRIDE + path
            }
        }
    }

    /// The generator of this stream under `seed`.
    pub fn rng(self, seed: u64) -> PathRng {
        path_rng(seed, self.number())
    }
}

/// The number of a member stream: `domain·2⁵⁶ + namespace·2⁴⁰ + index`.
fn member(domain: u64, namespace: u64, index: u64) -> u64 {
    debug_assert!(namespace < NAMESPACES, "namespace {namespace} beyond 2^16");
    debug_assert!(index < MAX_STEP, "step {index} beyond 2^40");
    domain * DOMAIN_STRIDE + namespace * MODE_STREAM_STRIDE + index
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Every (seed, stream) of a run: a teacher whose seed equals a member's, 16 members in
    /// namespace 0 with a probe and a clone batch at every one of 20 000 steps, the same members
    /// in namespaces 1, 2 and 2¹⁶ − 1 (other variants of an experiment) with 2 000 steps each, 3
    /// modes with SDE and chain overlays of 16 000 paths and a verdict ensemble of 4 000 paths.
    fn realistic_run() -> Vec<(u64, Stream)> {
        let seeds: Vec<u64> = (0..16).collect();
        let mut v = vec![(seeds[3], Stream::Teacher)];
        for &s in &seeds {
            for (namespace, steps) in [(0, 20_000), (1, 2_000), (2, 2_000), (NAMESPACES - 1, 2_000)] {
                v.extend(
                    [Stream::Data { namespace }, Stream::Init { namespace }, Stream::Batches { namespace }]
                        .map(|t| (s, t)),
                );
                v.extend((0..=steps).map(|step| (s, Stream::Probe { namespace, step })));
                v.extend((0..=steps).map(|step| (s, Stream::Clones { namespace, step })));
            }
        }
        for mode in 0..3 {
            for (ensemble, paths) in [
                (Ensemble::OverlaySde, 16_000),
                (Ensemble::OverlayChain, 16_000),
                (Ensemble::VerdictSde, 4_000),
                (Ensemble::VerdictChain, 4_000),
            ] {
                v.extend((0..paths).map(|path| (seeds[0], Stream::Path { ensemble, mode, path })));
            }
            v.extend((0..20).map(|verdict| (seeds[0], Stream::Bootstrap { mode, verdict })));
        }
        v
    }

    #[test]
    fn every_stream_of_a_realistic_run_is_distinct() {
        let streams = realistic_run();
        let mut keys = HashMap::with_capacity(streams.len());
        for &(seed, stream) in &streams {
            if let Some(other) = keys.insert(stream_key(seed, stream.number()), (seed, stream)) {
                panic!("{stream:?} under seed {seed} shares its generator with {other:?}");
            }
        }
        // Per seed and namespace: data, init and batches, and a probe and a clone per step.
        assert_eq!(keys.len(), 16 * (2 * 20_002 + 3 * 2 * 2_002 + 4) + 1 + 3 * (40_000 + 20));
    }

    #[test]
    fn the_layout_keeps_the_domains_apart() {
        // The fixed streams of the first releases keep their numbers in namespace 0 (data files
        // stay as they were).
        let (data, init) = (Stream::Data { namespace: 0 }, Stream::Init { namespace: 0 });
        assert_eq!((Stream::Teacher.number(), data.number(), init.number()), (0x7EAC, 1, 2));
        assert_eq!(Stream::Probe { namespace: 0, step: 7 }.number(), (1 << 56) + 7);
        // A namespace moves a member stream by whole modes, within its domain.
        assert_eq!(Stream::Data { namespace: 3 }.number(), 3 * MODE_STREAM_STRIDE + 1);
        assert_eq!(Stream::Init { namespace: 3 }.number(), 3 * MODE_STREAM_STRIDE + 2);
        assert_eq!(Stream::Batches { namespace: 3 }.number(), 3 * MODE_STREAM_STRIDE + 3);
        assert_eq!(Stream::Probe { namespace: 3, step: 7 }.number(), (1 << 56) + 3 * MODE_STREAM_STRIDE + 7);
        assert_eq!(Stream::Clones { namespace: 3, step: 7 }.number(), 5 * (1 << 56) + 3 * MODE_STREAM_STRIDE + 7);
        // Probes and mode 1 of a stand-alone ensemble no longer share 2^40.
        assert_eq!(Stream::Probe { namespace: 0, step: 0 }.number(), 1 << 56);
        assert_eq!(Ensemble::Standalone.mode_offset(1), MODE_STREAM_STRIDE);
        assert_eq!(Ensemble::OverlayChain.mode_offset(2), 3 * (1 << 56) + 2 * MODE_STREAM_STRIDE);
        let p = Stream::Path { ensemble: Ensemble::VerdictSde, mode: 1, path: 5 };
        assert_eq!(p.number(), Ensemble::VerdictSde.mode_offset(1) + 5);
        assert_eq!(Ensemble::VerdictChain.mode_offset(1), 6 * (1 << 56) + MODE_STREAM_STRIDE);
        assert_eq!(Stream::Bootstrap { mode: 2, verdict: 9 }.number(), 7 * (1 << 56) + 2 * MODE_STREAM_STRIDE + 9);
        // One generator per stream: same key, same numbers; another stream, other numbers.
        use rand::Rng;
        let (mut a, mut b) = (data.rng(7), path_rng(7, 1));
        assert_eq!(a.next_u64(), b.next_u64());
        assert_ne!(init.rng(7).next_u64(), data.rng(7).next_u64());
        assert_ne!(Stream::Data { namespace: 1 }.rng(7).next_u64(), data.rng(7).next_u64());
    }
}
