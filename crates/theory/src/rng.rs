//! Every random stream of modewise, in one table.
//!
//! A stream is the generator [`path_rng`]`(seed, number)`: a PCG64 seeded from the 64-bit
//! [`stream_key`] of a seed and a stream number. Streams are independent when their keys differ;
//! for one seed, different numbers always give different keys. The seeds are the user's: the
//! teacher's `teacher.seed`, each ensemble member's seed (`seeds[e]`, distinct within a run),
//! and the run's first seed `seeds[0]` for its theory overlays.
//!
//! | stream | seed | number ([`Stream::number`]) | drawn by |
//! |---|---|---|---|
//! | teacher frames `U`, `V` | `teacher.seed` | `0x7EAC` | the DLN crate's `TeacherParams::build` |
//! | a member's data (online batches, or its fixed sample and epoch permutations) | member seed | `1` | the DLN crate's data sampler |
//! | a member's initial weights | member seed | `2` | the DLN crate's `InitScheme::draw` |
//! | a member's diffusion-probe samples at SGD step `n` (with `n_probe ≥ 2`) | member seed | `2⁵⁶ + n` | the DLN crate's trainer |
//! | path `p` of mode `k` of a theory ensemble run on its own | the caller's | `stream_offset + k·2⁴⁰ + p`, offset 0 by default | [`Mode::ensemble`](crate::Mode::ensemble), [`spectrum_ensemble`](crate::ensemble::spectrum_ensemble) |
//! | path `p` of a run's SDE overlay of mode `k` | `seeds[0]` | `2·2⁵⁶ + k·2⁴⁰ + p` | the experiments crate's overlays |
//! | path `p` of a run's exact-chain overlay of mode `k` | `seeds[0]` | `3·2⁵⁶ + k·2⁴⁰ + p` | the experiments crate's overlays |
//! | path `p` of the SDE ensemble of a run's SDE-vs-SGD verdict on mode `k` | `seeds[0]` | `4·2⁵⁶ + k·2⁴⁰ + p` | the experiments crate's verdicts |
//!
//! Numbers are laid out as *domain* (bits 56–63: 0 for the fixed streams and stand-alone
//! ensembles, 1 for probes, 2–4 for the overlays), mode (bits 40–55, [`MODE_STREAM_STRIDE`]
//! apart) and index (bits 0–39: path or step). Within a run, the member and teacher streams sit
//! in domain 0 and every ensemble of the run in its own domain, so no two streams of a run share
//! a seed and a number, whatever seeds the user picks (the teacher's seed may equal a member's:
//! their numbers differ). The test `every_stream_of_a_realistic_run_is_distinct` checks the keys
//! of a run with many members, modes, steps and paths. A stand-alone ensemble shares domain 0
//! with the member streams: run under a member's seed, its paths 1 and 2 would be that member's
//! data and initial weights, so the library's own overlays never use [`Ensemble::Standalone`].

use rand::SeedableRng;
use rand_pcg::Pcg64;

/// The random generator of one stream (and of one path of a theory ensemble).
pub type PathRng = Pcg64;

/// Stream numbers between the modes of an ensemble (`2⁴⁰` paths per mode at most).
pub const MODE_STREAM_STRIDE: u64 = 1 << 40;

/// Stream numbers between domains (`2¹⁶` modes per domain at most).
const DOMAIN_STRIDE: u64 = 1 << 56;

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
        }
    }
}

/// One stream of the table in the [module documentation](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// The teacher's singular frames (under the teacher's seed).
    Teacher,
    /// A member's training data.
    Data,
    /// A member's initial weights.
    Init,
    /// A member's diffusion-probe samples at an SGD step.
    Probe {
        /// The step (below `2⁵⁶`).
        step: u64,
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
            Self::Data => 1,
            Self::Init => 2,
            Self::Probe { step } => {
                debug_assert!(step < DOMAIN_STRIDE, "probe step {step} beyond 2^56");
                DOMAIN_STRIDE + step
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Every (seed, stream) of a run: a teacher whose seed equals a member's, 16 members, a
    /// probe at every one of 20 000 steps, 3 modes with SDE and chain overlays of 16 000 paths
    /// and a verdict ensemble of 4 000 paths.
    fn realistic_run() -> Vec<(u64, Stream)> {
        let seeds: Vec<u64> = (0..16).collect();
        let mut v = vec![(seeds[3], Stream::Teacher)];
        for &s in &seeds {
            v.extend([(s, Stream::Data), (s, Stream::Init)]);
            v.extend((0..=20_000).map(|step| (s, Stream::Probe { step })));
        }
        for mode in 0..3 {
            for (ensemble, paths) in
                [(Ensemble::OverlaySde, 16_000), (Ensemble::OverlayChain, 16_000), (Ensemble::VerdictSde, 4_000)]
            {
                v.extend((0..paths).map(|path| (seeds[0], Stream::Path { ensemble, mode, path })));
            }
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
        assert_eq!(keys.len(), 16 * 20_003 + 1 + 3 * 36_000);
    }

    #[test]
    fn the_layout_keeps_the_domains_apart() {
        // The fixed streams of the first releases keep their numbers (data files stay as they were).
        assert_eq!((Stream::Teacher.number(), Stream::Data.number(), Stream::Init.number()), (0x7EAC, 1, 2));
        // Probes and mode 1 of a stand-alone ensemble no longer share 2^40.
        assert_eq!(Stream::Probe { step: 0 }.number(), 1 << 56);
        assert_eq!(Ensemble::Standalone.mode_offset(1), MODE_STREAM_STRIDE);
        assert_eq!(Ensemble::OverlayChain.mode_offset(2), 3 * (1 << 56) + 2 * MODE_STREAM_STRIDE);
        let p = Stream::Path { ensemble: Ensemble::VerdictSde, mode: 1, path: 5 };
        assert_eq!(p.number(), Ensemble::VerdictSde.mode_offset(1) + 5);
        // One generator per stream: same key, same numbers; another stream, other numbers.
        use rand::Rng;
        let (mut a, mut b) = (Stream::Data.rng(7), path_rng(7, 1));
        assert_eq!(a.next_u64(), b.next_u64());
        assert_ne!(Stream::Init.rng(7).next_u64(), Stream::Data.rng(7).next_u64());
    }
}
