//! The teacher `M = U diag(s) Vᵀ`: spectrum conventions, seeded random singular frames.

use nalgebra::{DMatrix, DVector};
use serde::{Deserialize, Serialize};

use crate::DlnError;
use crate::error::Result;
use crate::linalg::random_orthonormal;
use modewise_theory::check::{at_least, non_negative, positive, singular_values};
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
    /// The singular values, checked: positive, finite, non-increasing, at least one (the
    /// theory's rules of a spectrum, [`singular_values`]). Fields are named within the
    /// spectrum (`s_max`, `s[1]`).
    pub fn values(&self) -> Result<Vec<f64>> {
        let s: Vec<f64> = match self {
            Self::List { s } => s.clone(),
            Self::PowerLaw { s_max, decay, rank, s_min } => {
                positive("s_max", *s_max)?;
                positive("s_min", *s_min)?;
                at_least("rank", *rank, 1)?;
                non_negative("decay", *decay)?;
                (1..=*rank).map(|i| (s_max * (i as f64).powf(-decay)).max(*s_min)).collect()
            }
            Self::Linear { s_max, decay, rank } => {
                positive("s_max", *s_max)?;
                at_least("rank", *rank, 1)?;
                non_negative("decay", *decay)?;
                let last = s_max - decay * (*rank as f64 - 1.0);
                if last <= 0.0 {
                    return Err(DlnError::invalid(
                        "decay",
                        format!("must keep s_max - decay * (rank - 1) positive (s_max = {s_max}, rank = {rank})"),
                        decay,
                    ));
                }
                (0..*rank).map(|i| s_max - decay * i as f64).collect()
            }
        };
        singular_values(&s)?;
        Ok(s)
    }
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
    /// Fields are named within the teacher (`spectrum.s[1]`).
    pub fn build(&self, d_in: usize, d_out: usize) -> Result<Teacher> {
        // A spectrum given by its rank is refused before its values are listed (a huge rank
        // would be allocated first).
        if let SpectrumSpec::PowerLaw { rank, .. } | SpectrumSpec::Linear { rank, .. } = self.spectrum
            && rank > d_in.min(d_out)
        {
            let rule = format!("must not exceed min(d_0, d_L) = {}", d_in.min(d_out));
            return Err(DlnError::invalid("spectrum.rank", rule, rank));
        }
        let s = self.spectrum.values().map_err(|e| e.within("spectrum"))?;
        let r = s.len();
        if r > d_in.min(d_out) {
            // A list names its modes one by one; the other spectra through `rank`.
            let (field, rule) = match self.spectrum {
                SpectrumSpec::List { .. } => {
                    ("spectrum.s", "must not hold more values than min(d_0, d_L) = {} (one per mode)")
                }
                _ => ("spectrum.rank", "must not exceed min(d_0, d_L) = {}"),
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
        assert!(bad.values().unwrap_err().to_string().starts_with("decay: must keep"));
        let unsorted = SpectrumSpec::List { s: vec![1.0, 2.0] };
        assert_eq!(
            unsorted.values().unwrap_err().to_string(),
            "s[1]: must not exceed the previous value 1 (singular values are non-increasing) (got 2.0)"
        );
        let unsorted = TeacherParams { spectrum: unsorted, seed: 0 }.build(3, 3).unwrap_err();
        assert_eq!(unsorted.field(), Some("spectrum.s[1]"));
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
            "spectrum.s: must not hold more values than min(d_0, d_L) = 2 (one per mode) (got 3)"
        );
    }
}
