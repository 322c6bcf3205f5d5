//! The teacher `M = U diag(s) Vᵀ`: spectrum conventions, seeded random singular frames.

use nalgebra::{DMatrix, DVector};
use serde::{Deserialize, Serialize};

use crate::DlnError;
use crate::error::{Result, check_positive};
use crate::linalg::random_orthonormal;
use modewise_theory::ensemble::path_rng;

/// How the teacher's singular values are given. Modes are numbered `i = 1, …, rank`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SpectrumSpec {
    /// An explicit list `s_1 ≥ s_2 ≥ … > 0`; the rank is its length.
    List {
        /// The singular values, non-increasing and positive.
        s: Vec<f64>,
    },
    /// `s_i = max(s_max · i^(−decay), s_min)`, `i = 1, …, rank` (the convention of the PyTorch
    /// research code gcorlouer/sgd_dlns, whose `max_singular_value`, `decay_rate` and
    /// `min_singular_value` map onto `s_max`, `decay` and `s_min`).
    PowerLaw {
        /// Largest singular value `s_1`.
        s_max: f64,
        /// Exponent of the decay; non-negative.
        decay: f64,
        /// Number of modes.
        rank: usize,
        /// Floor on the singular values (default 10⁻¹²).
        #[serde(default = "default_s_min")]
        s_min: f64,
    },
    /// `s_i = s_max − decay · (i − 1)`, `i = 1, …, rank`, so `s_1 = s_max`; every value must stay
    /// positive.
    Linear {
        /// Largest singular value `s_1`.
        s_max: f64,
        /// Gap between consecutive singular values; non-negative.
        decay: f64,
        /// Number of modes.
        rank: usize,
    },
}

fn default_s_min() -> f64 {
    1e-12
}

impl Default for SpectrumSpec {
    /// Three well-separated modes `(3, 2, 1)`.
    fn default() -> Self {
        Self::List { s: vec![3.0, 2.0, 1.0] }
    }
}

impl SpectrumSpec {
    /// The singular values, checked: positive, finite, non-increasing, at least one.
    pub fn values(&self) -> Result<Vec<f64>> {
        let s: Vec<f64> = match self {
            Self::List { s } => s.clone(),
            Self::PowerLaw { s_max, decay, rank, s_min } => {
                check_positive("teacher.spectrum.s_max", *s_max)?;
                check_positive("teacher.spectrum.s_min", *s_min)?;
                check_rank(*rank)?;
                if !(decay.is_finite() && *decay >= 0.0) {
                    return Err(DlnError::invalid("teacher.spectrum.decay", "must be finite and non-negative", decay));
                }
                (1..=*rank).map(|i| (s_max * (i as f64).powf(-decay)).max(*s_min)).collect()
            }
            Self::Linear { s_max, decay, rank } => {
                check_positive("teacher.spectrum.s_max", *s_max)?;
                check_rank(*rank)?;
                if !(decay.is_finite() && *decay >= 0.0) {
                    return Err(DlnError::invalid("teacher.spectrum.decay", "must be finite and non-negative", decay));
                }
                let last = s_max - decay * (*rank as f64 - 1.0);
                if last <= 0.0 {
                    return Err(DlnError::invalid(
                        "teacher.spectrum.decay",
                        format!("must keep s_max - decay * (rank - 1) positive (s_max = {s_max}, rank = {rank})"),
                        decay,
                    ));
                }
                (0..*rank).map(|i| s_max - decay * i as f64).collect()
            }
        };
        if s.is_empty() {
            return Err(DlnError::invalid("teacher.spectrum.s", "must hold at least one singular value", "[]"));
        }
        for (k, &v) in s.iter().enumerate() {
            check_positive(&format!("teacher.spectrum.s[{k}]"), v)?;
            if k > 0 && v > s[k - 1] {
                return Err(DlnError::invalid(
                    format!("teacher.spectrum.s[{k}]"),
                    format!("must not exceed the previous value {} (singular values are non-increasing)", s[k - 1]),
                    v,
                ));
            }
        }
        Ok(s)
    }
}

fn check_rank(rank: usize) -> Result<()> {
    if rank == 0 { Err(DlnError::invalid("teacher.spectrum.rank", "must be at least 1", rank)) } else { Ok(()) }
}

/// Unchecked teacher parameters.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TeacherParams {
    /// The singular values.
    pub spectrum: SpectrumSpec,
    /// Seed of the singular frames `U`, `V` (independent of the training seeds, so every member
    /// of an ensemble learns the same teacher).
    pub seed: u64,
}

impl TeacherParams {
    /// Draws the teacher for a network with input dimension `d_in` and output dimension `d_out`.
    pub fn build(&self, d_in: usize, d_out: usize) -> Result<Teacher> {
        let s = self.spectrum.values()?;
        let r = s.len();
        if r > d_in.min(d_out) {
            // A list names its modes one by one; the other spectra through `rank`.
            let (field, rule) = match self.spectrum {
                SpectrumSpec::List { .. } => {
                    ("teacher.spectrum.s", "must not hold more values than min(d_0, d_L) = {} (one per mode)")
                }
                _ => ("teacher.spectrum.rank", "must not exceed min(d_0, d_L) = {}"),
            };
            return Err(DlnError::invalid(field, rule.replace("{}", &d_in.min(d_out).to_string()), r));
        }
        let mut rng = path_rng(self.seed, TEACHER_STREAM);
        let u = random_orthonormal(d_out, r, &mut rng);
        let v = random_orthonormal(d_in, r, &mut rng);
        Ok(Teacher::from_parts(u, DVector::from_vec(s), v))
    }
}

/// Random stream of the teacher's frames.
const TEACHER_STREAM: u64 = 0x7EAC;

/// A teacher `M = U diag(s) Vᵀ` with orthonormal `U` (`d_out × r`) and `V` (`d_in × r`).
#[derive(Debug, Clone, PartialEq)]
pub struct Teacher {
    u: DMatrix<f64>,
    s: DVector<f64>,
    v: DMatrix<f64>,
    m: DMatrix<f64>,
}

impl Teacher {
    /// Builds a teacher from its factors (not checked: `U`, `V` must have orthonormal columns).
    pub fn from_parts(u: DMatrix<f64>, s: DVector<f64>, v: DMatrix<f64>) -> Self {
        let m = &u * DMatrix::from_diagonal(&s) * v.transpose();
        Self { u, s, v, m }
    }

    /// Left singular vectors `U`, `d_out × r`.
    pub fn u(&self) -> &DMatrix<f64> {
        &self.u
    }

    /// Right singular vectors `V`, `d_in × r`.
    pub fn v(&self) -> &DMatrix<f64> {
        &self.v
    }

    /// Singular values `s_1 ≥ … ≥ s_r`.
    pub fn s(&self) -> &DVector<f64> {
        &self.s
    }

    /// The matrix `M`, `d_out × d_in`.
    pub fn matrix(&self) -> &DMatrix<f64> {
        &self.m
    }

    /// Rank `r`.
    pub fn rank(&self) -> usize {
        self.s.len()
    }

    /// Input dimension `d_0`.
    pub fn d_in(&self) -> usize {
        self.v.nrows()
    }

    /// Output dimension `d_L`.
    pub fn d_out(&self) -> usize {
        self.u.nrows()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spectra_follow_their_conventions() {
        let p = SpectrumSpec::PowerLaw { s_max: 4.0, decay: 2.0, rank: 3, s_min: 1e-12 };
        assert_eq!(p.values().unwrap(), vec![4.0, 1.0, 4.0 / 9.0]);
        let l = SpectrumSpec::Linear { s_max: 3.0, decay: 0.5, rank: 3 };
        assert_eq!(l.values().unwrap(), vec![3.0, 2.5, 2.0]);
        let bad = SpectrumSpec::Linear { s_max: 1.0, decay: 0.5, rank: 3 };
        assert!(bad.values().unwrap_err().to_string().starts_with("teacher.spectrum.decay: must keep"));
        let unsorted = SpectrumSpec::List { s: vec![1.0, 2.0] };
        assert_eq!(
            unsorted.values().unwrap_err().to_string(),
            "teacher.spectrum.s[1]: must not exceed the previous value 1 (singular values are non-increasing) (got 2.0)"
        );
    }

    #[test]
    fn teacher_has_the_requested_singular_values() {
        let t = TeacherParams { spectrum: SpectrumSpec::List { s: vec![3.0, 1.0] }, seed: 5 }.build(6, 4).unwrap();
        let sv = t.matrix().clone().singular_values();
        let mut sv: Vec<f64> = sv.iter().copied().collect();
        sv.sort_by(|a, b| b.partial_cmp(a).unwrap());
        assert!((sv[0] - 3.0).abs() < 1e-12 && (sv[1] - 1.0).abs() < 1e-12 && sv[2].abs() < 1e-12);
        let again = TeacherParams { spectrum: SpectrumSpec::List { s: vec![3.0, 1.0] }, seed: 5 }.build(6, 4).unwrap();
        assert_eq!(t, again);
        let err = TeacherParams::default().build(2, 5).unwrap_err();
        assert_eq!(
            err.to_string(),
            "teacher.spectrum.s: must not hold more values than min(d_0, d_L) = 2 (one per mode) (got 3)"
        );
    }
}
