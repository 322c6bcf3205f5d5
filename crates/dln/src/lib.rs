//! Deep linear networks on burn: the model on run-time-selected backends, the teacher and its
//! data, initialisation schemes, the SGD trainer (burn autodiff or closed-form backpropagation,
//! batched ensembles) and the f64 probes of the `docs/theory.md` §6.
//!
//! Backends are picked at run time through burn 0.22's dispatch [`burn::tensor::Device`], so one
//! code path serves every backend and an experiment switches hardware without being recompiled.
//! Training runs in f32 on every backend, or in f64 on the fused CPU path
//! ([`Precision`]); probes run in f64 on the host (on the GPU backends from reductions computed
//! on the device, so that only a few values per member are read back).
//!
//! ```no_run
//! use modewise_dln::{TrainParams, Trainer};
//! let spec = TrainParams { steps: 1000, ..TrainParams::default() }.check()?;
//! let (records, report) = Trainer::new(&spec)?.run_collect()?;
//! println!("{} probes, {} diverged", records.len(), report.divergences.len());
//! # Ok::<(), modewise_dln::DlnError>(())
//! ```

//!
//! The cargo feature `testing` adds the test oracles the integration tests use
//! (`Trainer::with_initial_layers`, `Trainer::next_gradients`, `gradients`); they are not part
//! of the library's API.

#![warn(missing_docs)]

pub mod backend;
pub mod checkpoint;
pub mod data;
mod device;
mod device_probe;
mod engine;
pub mod error;
mod fused;
pub mod init;
mod linalg;
pub mod model;
pub mod probe;
mod step_kernel;
pub mod teacher;
pub mod train;

pub use backend::BackendKind;
pub use checkpoint::TrainerState;
pub use data::{DataParams, DataSource, Generator, train_count};
#[cfg(feature = "testing")]
pub use engine::gradients;
pub use error::{DlnError, InvalidParameter, Result};
pub use init::{GaussianStd, InitScheme, LayerFactors, ModeScale, Tilt};
pub use model::Dln;
pub use probe::{CloneEstimate, Probe, ProbeContext, probe};
pub use teacher::{SpectrumSpec, Teacher, TeacherParams};
pub use train::{
    Divergence, GradientPath, Precision, ProbeRecord, ProbeSchedule, StopFlag, StreamNamespaces, TrainParams,
    TrainReport, TrainSpec, Trainer,
};
