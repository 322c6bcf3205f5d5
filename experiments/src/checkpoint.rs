//! Checkpoints of a `run` (`train.checkpoint_every`): where they live, what their files hold,
//! and the rules that let `resume` continue only the run they belong to.
//!
//! The checkpoint of a results directory `DIR` is the directory `.DIR.checkpoint` beside it (in
//! its parent, `DIR` shortened as for its lock file): it is outside the staging directory, so
//! it survives a stop (Ctrl-C, SIGTERM) and a kill, and it is removed once the results are
//! published. It holds
//!
//! - `checkpoint.toml`: the format version and the hash of the spec(s) that wrote it (FNV-1a of
//!   the checked specs as TOML), so that `resume` refuses another spec;
//! - one file per training run (each variant's run and its population-GD reference, of each
//!   experiment), `run-HASH.msgpack` (MessagePack, `rmp-serde`): the format version, the run's
//!   key and parameters, and either its state at the last checkpoint with the probe records so
//!   far (a run in progress) or its complete records (a run done, which `resume` skips).
//!
//! Every file is written atomically (`crate::io::write_atomic`): a kill leaves the previous
//! checkpoint or the new one, never half of one.

use std::io::Write;
use std::path::PathBuf;

use modewise_dln::{Divergence, ProbeRecord, TrainParams, TrainerState};
use serde::{Deserialize, Serialize};

use crate::ExperimentError;
use crate::io::write_atomic;
use crate::publish::{Destination, fnv1a};
use crate::spec::CheckedExperiment;

/// The version of the checkpoint format; a checkpoint of another version is refused.
pub const CHECKPOINT_FORMAT: u32 = 1;

/// The name of a checkpoint directory's manifest.
const MANIFEST: &str = "checkpoint.toml";

/// Why a checkpoint cannot be used, or stands in the way.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointProblem {
    /// A checkpoint of an unfinished run exists, and neither `resume` nor `force` was set.
    #[error("holds the checkpoint of an unfinished run (set `resume` to continue it or `force` to start over)")]
    Unfinished,
    /// `resume` was set, and there is no checkpoint.
    #[error("holds no checkpoint to resume (a run writes one every `train.checkpoint_every` steps)")]
    Missing,
    /// The checkpoint was written by another spec.
    #[error("was written by another spec (spec hash {theirs}, this spec's {ours})")]
    OtherSpec {
        /// The hash in the checkpoint.
        theirs: String,
        /// This spec's hash.
        ours: String,
    },
    /// The checkpoint cannot be read, or does not fit the run.
    #[error("cannot be resumed: {reason}")]
    Unreadable {
        /// What is wrong.
        reason: String,
    },
}

/// The manifest of a checkpoint directory.
#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format: u32,
    spec_hash: String,
}

/// A training run's checkpoint file.
#[derive(Debug, Serialize, Deserialize)]
struct RunFile {
    format: u32,
    /// `experiment/run_id`.
    key: String,
    /// The run's parameters as TOML (a second guard beside the spec hash).
    params: String,
    progress: Saved,
}

/// What a run's checkpoint file holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Saved {
    /// A run in progress: its state and probe records at the last checkpoint.
    Training {
        /// The trainer's state.
        state: TrainerState,
        /// The probe records so far.
        records: Vec<ProbeRecord>,
        /// Wall-clock seconds of training so far.
        wall_seconds: f64,
    },
    /// A run done.
    Done {
        /// Every probe record.
        records: Vec<ProbeRecord>,
        /// The diverged members.
        divergences: Vec<Divergence>,
        /// Wall-clock seconds of training.
        wall_seconds: f64,
        /// Of which probing.
        probe_seconds: f64,
    },
}

/// The checkpoint directory of a `run` being written (see the module documentation).
#[derive(Debug, Clone)]
pub(crate) struct Checkpoints {
    /// The results directory, as the user named it (for messages).
    out: PathBuf,
    /// The checkpoint directory.
    dir: PathBuf,
    spec_hash: String,
}

/// The checkpoint directory of the results directory `dest`.
pub(crate) fn checkpoint_dir(dest: &Destination) -> PathBuf {
    dest.parent.join(format!(".{}.checkpoint", dest.short))
}

/// The hash of the checked specs (as TOML), which a checkpoint records.
pub(crate) fn spec_hash(experiments: &[&CheckedExperiment]) -> String {
    let text: String = experiments.iter().map(|e| toml::to_string(e.spec()).unwrap_or_default() + "\n\0").collect();
    format!("{:016x}", fnv1a(text.as_bytes()))
}

impl Checkpoints {
    /// Opens the checkpoint directory of `dest` for the run of `experiments` (the caller
    /// holds the destination's lock): with `resume`, an existing checkpoint of the same spec
    /// (else an error); without, none may exist unless `force`, which removes it. Returns
    /// `None` when no run checkpoints (`train.checkpoint_every` is 0 everywhere) and there
    /// is nothing to resume.
    pub(crate) fn open(
        dest: &Destination,
        experiments: &[&CheckedExperiment],
        resume: bool,
        force: bool,
    ) -> Result<Option<Self>, ExperimentError> {
        let dir = checkpoint_dir(dest);
        let this = Self { out: dest.shown.clone(), dir: dir.clone(), spec_hash: spec_hash(experiments) };
        let exists = std::fs::symlink_metadata(&dir).is_ok();
        if exists && force && !resume {
            std::fs::remove_dir_all(&dir).map_err(|source| ExperimentError::Io { path: dir.clone(), source })?;
        } else if exists && !resume {
            return Err(this.refuse(CheckpointProblem::Unfinished));
        } else if resume && !dir.join(MANIFEST).is_file() {
            return Err(this.refuse(CheckpointProblem::Missing));
        } else if resume {
            let manifest: Manifest = std::fs::read_to_string(dir.join(MANIFEST))
                .map_err(|e| e.to_string())
                .and_then(|text| toml::from_str(&text).map_err(|e| e.to_string()))
                .map_err(|reason| {
                    this.refuse(CheckpointProblem::Unreadable { reason: format!("{MANIFEST}: {reason}") })
                })?;
            if manifest.format != CHECKPOINT_FORMAT {
                let reason =
                    format!("it has format {}, this program writes format {CHECKPOINT_FORMAT}", manifest.format);
                return Err(this.refuse(CheckpointProblem::Unreadable { reason }));
            }
            if manifest.spec_hash != this.spec_hash {
                let (theirs, ours) = (manifest.spec_hash, this.spec_hash.clone());
                return Err(this.refuse(CheckpointProblem::OtherSpec { theirs, ours }));
            }
            return Ok(Some(this));
        }
        let checkpointing = experiments.iter().flat_map(|e| e.plans()).any(|p| p.train.params().checkpoint_every > 0);
        if !checkpointing {
            return Ok(None);
        }
        std::fs::create_dir(&dir).map_err(|source| ExperimentError::Io { path: dir.clone(), source })?;
        let manifest = Manifest { format: CHECKPOINT_FORMAT, spec_hash: this.spec_hash.clone() };
        let text = toml::to_string(&manifest).expect("a manifest is TOML");
        write_atomic(&dir.join(MANIFEST), |f| this.io_write(f, text.as_bytes(), MANIFEST))?;
        Ok(Some(this))
    }

    /// Removes the checkpoint directory (once the results are published).
    pub(crate) fn remove(&self) -> Result<(), ExperimentError> {
        std::fs::remove_dir_all(&self.dir).map_err(|source| ExperimentError::Io { path: self.dir.clone(), source })
    }

    /// The error for `problem` with this checkpoint.
    fn refuse(&self, problem: CheckpointProblem) -> ExperimentError {
        ExperimentError::Checkpoint { out: self.out.clone(), dir: self.dir.clone(), problem }
    }

    fn io_write(&self, f: &mut std::fs::File, bytes: &[u8], name: &str) -> Result<(), ExperimentError> {
        f.write_all(bytes).map_err(|source| ExperimentError::Io { path: self.dir.join(name), source })
    }

    /// The file of the run with key `key`.
    fn run_file(key: &str) -> String {
        format!("run-{:016x}.msgpack", fnv1a(key.as_bytes()))
    }

    /// What the checkpoint holds of the run `key` with parameters `params`, if anything; a
    /// file that cannot be read or belongs to other parameters is refused.
    pub(crate) fn load(&self, key: &str, params: &TrainParams) -> Result<Option<Saved>, ExperimentError> {
        let name = Self::run_file(key);
        let bytes = match std::fs::read(self.dir.join(&name)) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(ExperimentError::Io { path: self.dir.join(name), source }),
        };
        let unreadable =
            |reason: String| self.refuse(CheckpointProblem::Unreadable { reason: format!("{name}: {reason}") });
        let file: RunFile = rmp_serde::from_slice(&bytes).map_err(|e| unreadable(e.to_string()))?;
        if file.format != CHECKPOINT_FORMAT {
            return Err(unreadable(format!("format {}, expected {CHECKPOINT_FORMAT}", file.format)));
        }
        if file.key != key || file.params != params_text(params) {
            return Err(unreadable(format!("it belongs to run `{}` with other parameters", file.key)));
        }
        Ok(Some(file.progress))
    }

    /// Saves what there is of the run `key` with parameters `params`, atomically.
    pub(crate) fn save(&self, key: &str, params: &TrainParams, progress: Saved) -> Result<(), ExperimentError> {
        let name = Self::run_file(key);
        let file = RunFile { format: CHECKPOINT_FORMAT, key: key.into(), params: params_text(params), progress };
        let bytes = rmp_serde::to_vec_named(&file).map_err(|e| ExperimentError::Io {
            path: self.dir.join(&name),
            source: std::io::Error::other(e.to_string()),
        })?;
        write_atomic(&self.dir.join(&name), |f| self.io_write(f, &bytes, &name))
    }
}

/// A run's parameters as TOML (what a run file records).
fn params_text(params: &TrainParams) -> String {
    toml::to_string(params).unwrap_or_default()
}

/// A checkpoint scope: the checkpoints and the experiment whose runs are trained.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scope<'a> {
    /// The checkpoints.
    pub(crate) checkpoints: &'a Checkpoints,
    /// The experiment's name.
    pub(crate) experiment: &'a str,
}

impl Scope<'_> {
    /// The key of run `run_id`.
    pub(crate) fn key(&self, run_id: &str) -> String {
        format!("{}/{run_id}", self.experiment)
    }
}
