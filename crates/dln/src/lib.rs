//! Deep linear networks on burn: the model on run-time-selected backends, the teacher and its
//! data, initialisation schemes, the SGD trainer (burn autodiff or closed-form backpropagation,
//! batched ensembles) and the f64 probes of the theory note §6.
//!
//! Backends are picked at run time through burn 0.22's dispatch [`burn::tensor::Device`], so one
//! code path serves every backend and an experiment switches hardware without being recompiled.
//! Training runs in f32 on every backend; probes run in f64 on the host.
//!
//! ```no_run
//! use modewise_dln::{TrainParams, Trainer};
//! let spec = TrainParams { steps: 1000, ..TrainParams::default() }.check()?;
//! let (records, report) = Trainer::new(&spec)?.run_collect()?;
//! println!("{} probes, {} diverged", records.len(), report.divergences.len());
//! # Ok::<(), modewise_dln::DlnError>(())
//! ```

#![warn(missing_docs)]

pub mod backend;
pub mod data;
pub mod error;
mod fused;
pub mod init;
pub mod linalg;
pub mod model;
pub mod probe;
pub mod teacher;
pub mod train;
pub mod workload;

pub use backend::BackendKind;
pub use data::{DataParams, DataSource};
pub use error::{DlnError, Result};
pub use init::{InitScheme, ModeScale};
pub use model::Dln;
pub use probe::{Probe, ProbeContext, probe};
pub use teacher::{SpectrumSpec, Teacher, TeacherParams};
pub use train::{
    Divergence, GradientPath, ProbeRecord, ProbeSchedule, StopFlag, TrainParams, TrainReport, TrainSpec, Trainer,
    gradients,
};
pub use workload::Workload;
