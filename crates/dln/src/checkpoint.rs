//! A trainer's complete state between two steps ([`TrainerState`]): what a checkpoint holds so
//! that a run continued from it takes exactly the steps, draws exactly the batches and records
//! exactly the probes of the uninterrupted run, bit for bit.
//!
//! What a run's state is, stream by stream (checked against `crate::data`, `crate::train` and
//! `crate::device`):
//!
//! - the weights of every live member, in f64 (an f32 run's weights widen exactly);
//! - the step, the live members, the divergences found so far and the step of the last health
//!   check (`last_check`, which a later divergence reports as its last finite step);
//! - each live member's data stream: the PCG64 data stream (pcg64-ziggurat online batches, a
//!   fixed sample's epoch permutations), the number of the next Philox batch (the default
//!   online batches, a pure function of seed, namespace and batch number) and, for a fixed
//!   sample, the epoch's permutation and the position in it (the sample itself is drawn again
//!   from the seed, as at the start); batches drawn on the device keep one batch number;
//! - nothing for the probe samples and the clone batches: their streams are derived afresh at
//!   each probe from the member's seed, the data namespace and the step (`Stream::Probe`,
//!   `Stream::Clones`).
//!
//! The state is plain data with serde: the experiments crate writes it into its checkpoint files.

use serde::{Deserialize, Serialize};

use crate::train::Divergence;
use modewise_theory::rng::PathRng;

/// A trainer's complete state after a step (see the module documentation), from
/// [`crate::Trainer::state`]; [`crate::Trainer::resume`] continues from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// SGD steps taken.
    pub(crate) step: u64,
    /// The last step at which the members were checked (probe or health check).
    pub(crate) last_check: u64,
    /// Indices (into `seeds`) of the members still training, in engine order.
    pub(crate) active: Vec<usize>,
    /// Members stopped by divergence so far, in the order detected.
    pub(crate) divergences: Vec<Divergence>,
    /// Wall-clock seconds spent probing so far.
    pub(crate) probe_seconds: f64,
    /// The live members' weights, `[active member][layer]`, each column-major `d_l × d_{l−1}`.
    pub(crate) layers: Vec<Vec<Vec<f64>>>,
    /// The live members' data streams, in engine order.
    pub(crate) streams: Vec<MemberStreams>,
    /// The number of the next batch drawn on the device, where batches are drawn there.
    pub(crate) device_batch: Option<u64>,
}

impl TrainerState {
    /// SGD steps taken.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// Indices (into `seeds`) of the members still training.
    pub fn active_members(&self) -> &[usize] {
        &self.active
    }
}

/// One member's data stream between two batches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct MemberStreams {
    /// The PCG64 data stream.
    pub(crate) rng: PathRng,
    /// The number of the next Philox batch (default online batches only).
    pub(crate) batch: Option<u64>,
    /// A fixed sample's epoch permutation (empty before the first batch, and without a fixed
    /// sample).
    pub(crate) perm: Vec<usize>,
    /// The position in `perm`.
    pub(crate) pos: usize,
}
