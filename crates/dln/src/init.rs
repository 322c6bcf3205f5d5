//! Initialisation schemes: γ-scaled Gaussian, aligned-balanced, unbalanced and misaligned.

use nalgebra::{DMatrix, DVector};
use serde::{Deserialize, Serialize};

use crate::DlnError;
use crate::error::Result;
use crate::linalg::{complete_basis, gaussian_matrix, random_orthonormal};
use crate::teacher::Teacher;
use modewise_theory::check::{finite, positive};
use modewise_theory::rng::{PathRng, Stream};

/// Per-layer mode strength `a₀` of the aligned schemes: one value for every mode, or one per
/// teacher mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ModeScale {
    /// The same `a₀` for every mode.
    Scalar(f64),
    /// `a₀` per teacher mode (length = teacher rank).
    PerMode(Vec<f64>),
}

impl ModeScale {
    fn values(&self, rank: usize) -> Result<Vec<f64>> {
        let v = match self {
            Self::Scalar(a) => vec![*a; rank],
            Self::PerMode(v) => {
                if v.len() != rank {
                    return Err(DlnError::invalid(
                        "a0",
                        format!("must hold one value per teacher mode ({rank})"),
                        v.len(),
                    ));
                }
                v.clone()
            }
        };
        for (k, &a) in v.iter().enumerate() {
            positive(&format!("a0[{k}]"), a)?;
        }
        Ok(v)
    }
}

/// How the weights start. Every scheme is one variant holding exactly what it needs, so a
/// scheme with two ways to give a parameter (the Gaussian's `gamma` or `scale`, the unbalanced
/// start's `factors` or `ratio`) holds one of them, by construction.
///
/// In a spec the scheme is a table with a `kind` and the variant's fields, e.g.
/// `{ kind = "gaussian", gamma = 1.5 }` or `{ kind = "unbalanced", a0 = 0.1, ratio = 4.0 }`;
/// giving both or neither of two alternatives is an error naming the table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "InitToml", into = "InitToml")]
pub enum InitScheme {
    /// I.i.d. Gaussian entries with the standard deviation `std`.
    Gaussian {
        /// The entries' standard deviation.
        std: GaussianStd,
    },
    /// `W_l = R_l diag(a₀) R_{l−1}ᵀ` with `R_0 = V`, `R_L = U` and random orthonormal hidden
    /// frames: the exact regime of the theory (end-to-end mode strength `w₀ = a₀^L`).
    AlignedBalanced {
        /// Per-layer mode strength.
        a0: ModeScale,
    },
    /// Aligned, but layer `l` scaled by `c_l` with `∏ c_l = 1`, so the end-to-end map is that of
    /// the aligned-balanced start while the layers are unbalanced.
    Unbalanced {
        /// Per-layer mode strength before scaling.
        a0: ModeScale,
        /// The layer factors `c_l`.
        factors: LayerFactors,
    },
    /// Aligned-balanced, then the input frame `R_0` and the output frame `R_L` rotated by `angle`
    /// (radians, in `[0, π/2]`) away from the teacher's singular vectors. The rotation completes
    /// `V` (and `U`) to an orthonormal basis and turns each pair of consecutive basis vectors
    /// `(b_{2j}, b_{2j+1})` in their plane, the input frame by `+angle` and the output frame by
    /// `−angle`, so every mode's network vector makes the angle `angle` with the teacher's
    /// (except the last basis vector of an odd dimension, which has no partner and stays). Turning
    /// both frames the same way would cancel in `W` for a scalar `a₀`; opposite senses give a mode
    /// matrix `a₀^L R(−2·angle)` within each pair, so the alignment error starts at
    /// `|sin(2·angle)|` for a scalar `a₀`.
    ///
    /// Written with `dose = d` in `[0, 1]` instead of `angle`, the start is misaligned by the
    /// same monotone dose in every mode (`docs/theory.md` §7.4): the teacher modes are paired
    /// `(0, 1), (2, 3), …` and each pair turned by `θ = asin(d)/2` (so `θ ∈ [0, π/4]` and every
    /// mode keeps `m_k = a₀^L √(1 − d²) ≥ 0`); the last mode of an odd rank has no partner in the
    /// block and is turned towards a direction outside it by `θ'` with `cos²θ' = √(1 − d²)`,
    /// which gives it the same `m_k` and the same off-diagonal mass. For a scalar `a₀` the full
    /// alignment error `‖W − U diag(m) Vᵀ‖_F / ‖W‖_F` then starts at exactly `d`, in every
    /// mode; `d = 0` is the aligned-balanced start.
    Misaligned {
        /// Per-layer mode strength.
        a0: ModeScale,
        /// How far the frames are turned.
        tilt: Tilt,
    },
}

/// How far a misaligned start's frames are turned, given one of two ways.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Tilt {
    /// Written `angle = θ`: the pairwise rotation angle in radians, in `[0, π/2]` (not a
    /// monotone dose: the alignment error starts at `|sin 2θ|`, and the last mode of an odd
    /// dimension is left unturned).
    Angle(f64),
    /// Written `dose = d`: the initial full alignment error, in `[0, 1]`, the same in every mode.
    Dose(f64),
}

/// The standard deviation of a Gaussian start, given one of two ways.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GaussianStd {
    /// Written `gamma = γ`: variance `width^(−γ)` with `width = min(d_in, d_out)` of the layer
    /// (`γ > 1`: the saddle-to-saddle regime); `γ` finite.
    Gamma(f64),
    /// Written `scale = σ`: this standard deviation for every layer; finite and positive.
    Scale(f64),
}

/// The layer factors `c_1, …, c_L` of an unbalanced start, given one of two ways.
#[derive(Debug, Clone, PartialEq)]
pub enum LayerFactors {
    /// Written `factors = [c_1, …, c_L]`: positive, one per layer, product 1 within 10⁻⁹.
    Factors(Vec<f64>),
    /// Written `ratio = r`: `c_l = r^((2l − L − 1)/2)`, so `c_{l+1}/c_l = r`; `r` positive.
    Ratio(f64),
}

/// [`InitScheme`] as written in a spec: the alternatives as optional fields, checked by
/// `TryFrom` (so a scheme read from a spec holds exactly one of them) and restored by `From`
/// (so a spec writes out as it was read).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
enum InitToml {
    Gaussian {
        #[serde(default)]
        gamma: Option<f64>,
        #[serde(default)]
        scale: Option<f64>,
    },
    AlignedBalanced {
        a0: ModeScale,
    },
    Unbalanced {
        a0: ModeScale,
        #[serde(default)]
        factors: Option<Vec<f64>>,
        #[serde(default)]
        ratio: Option<f64>,
    },
    Misaligned {
        a0: ModeScale,
        #[serde(default)]
        angle: Option<f64>,
        #[serde(default)]
        dose: Option<f64>,
    },
}

/// The one alternative given of `a` and `b` (named `names`), as `Ok(a)` or `Err(b)`; an error
/// when both or neither are given.
fn exactly_one<A, B>(a: Option<A>, b: Option<B>, names: [&str; 2]) -> std::result::Result<Result<A, B>, String> {
    match (a, b) {
        (Some(a), None) => Ok(Ok(a)),
        (None, Some(b)) => Ok(Err(b)),
        (a, _) => Err(format!(
            "exactly one of `{}` and `{}` must be given (got {})",
            names[0],
            names[1],
            if a.is_some() { "both" } else { "neither" }
        )),
    }
}

impl TryFrom<InitToml> for InitScheme {
    type Error = String;

    fn try_from(t: InitToml) -> std::result::Result<Self, String> {
        Ok(match t {
            InitToml::Gaussian { gamma, scale } => {
                let std = match exactly_one(gamma, scale, ["gamma", "scale"])? {
                    Ok(g) => GaussianStd::Gamma(g),
                    Err(s) => GaussianStd::Scale(s),
                };
                Self::Gaussian { std }
            }
            InitToml::AlignedBalanced { a0 } => Self::AlignedBalanced { a0 },
            InitToml::Unbalanced { a0, factors, ratio } => {
                let factors = match exactly_one(factors, ratio, ["factors", "ratio"])? {
                    Ok(f) => LayerFactors::Factors(f),
                    Err(r) => LayerFactors::Ratio(r),
                };
                Self::Unbalanced { a0, factors }
            }
            InitToml::Misaligned { a0, angle, dose } => {
                let tilt = match exactly_one(angle, dose, ["angle", "dose"])? {
                    Ok(a) => Tilt::Angle(a),
                    Err(d) => Tilt::Dose(d),
                };
                Self::Misaligned { a0, tilt }
            }
        })
    }
}

impl From<InitScheme> for InitToml {
    fn from(s: InitScheme) -> Self {
        match s {
            InitScheme::Gaussian { std: GaussianStd::Gamma(g) } => Self::Gaussian { gamma: Some(g), scale: None },
            InitScheme::Gaussian { std: GaussianStd::Scale(s) } => Self::Gaussian { gamma: None, scale: Some(s) },
            InitScheme::AlignedBalanced { a0 } => Self::AlignedBalanced { a0 },
            InitScheme::Unbalanced { a0, factors: LayerFactors::Factors(f) } => {
                Self::Unbalanced { a0, factors: Some(f), ratio: None }
            }
            InitScheme::Unbalanced { a0, factors: LayerFactors::Ratio(r) } => {
                Self::Unbalanced { a0, factors: None, ratio: Some(r) }
            }
            InitScheme::Misaligned { a0, tilt: Tilt::Angle(a) } => Self::Misaligned { a0, angle: Some(a), dose: None },
            InitScheme::Misaligned { a0, tilt: Tilt::Dose(d) } => Self::Misaligned { a0, angle: None, dose: Some(d) },
        }
    }
}

impl Default for InitScheme {
    /// Small Gaussian in the saddle-to-saddle regime, `γ = 1.5`.
    fn default() -> Self {
        Self::Gaussian { std: GaussianStd::Gamma(1.5) }
    }
}

impl InitScheme {
    /// The scheme's name as written in configs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Gaussian { .. } => "gaussian",
            Self::AlignedBalanced { .. } => "aligned-balanced",
            Self::Unbalanced { .. } => "unbalanced",
            Self::Misaligned { .. } => "misaligned",
        }
    }

    /// Checks the scheme against the network dimensions `dims = [d_0, …, d_L]` and the teacher.
    /// Fields are named within the scheme (`gamma`, `a0[1]`, `factors`).
    pub fn check(&self, dims: &[usize], teacher: &Teacher) -> Result<()> {
        let depth = dims.len() - 1;
        match self {
            Self::Gaussian { std: GaussianStd::Gamma(g) } => {
                finite("gamma", *g)?;
            }
            Self::Gaussian { std: GaussianStd::Scale(s) } => {
                positive("scale", *s)?;
            }
            Self::AlignedBalanced { a0 } => self.check_aligned(a0, dims, teacher)?,
            Self::Unbalanced { a0, factors } => {
                self.check_aligned(a0, dims, teacher)?;
                match factors {
                    LayerFactors::Factors(f) => {
                        if f.len() != depth {
                            return Err(DlnError::invalid(
                                "factors",
                                format!("must hold one factor per layer ({depth})"),
                                f.len(),
                            ));
                        }
                        for (l, &c) in f.iter().enumerate() {
                            positive(&format!("factors[{l}]"), c)?;
                        }
                        let prod: f64 = f.iter().product();
                        if (prod - 1.0).abs() > 1e-9 {
                            return Err(DlnError::invalid(
                                "factors",
                                "must multiply to 1 (within 1e-9) so the end-to-end map is unchanged",
                                format!("product {prod}"),
                            ));
                        }
                    }
                    LayerFactors::Ratio(r) => {
                        positive("ratio", *r)?;
                    }
                }
            }
            Self::Misaligned { a0, tilt: Tilt::Angle(angle) } => {
                self.check_aligned(a0, dims, teacher)?;
                if !(angle.is_finite() && (0.0..=std::f64::consts::FRAC_PI_2).contains(angle)) {
                    return Err(DlnError::invalid("angle", "must lie in [0, π/2] (radians)", angle));
                }
            }
            Self::Misaligned { a0, tilt: Tilt::Dose(dose) } => {
                self.check_aligned(a0, dims, teacher)?;
                if !(dose.is_finite() && (0.0..=1.0).contains(dose)) {
                    return Err(DlnError::invalid("dose", "must lie in [0, 1]", dose));
                }
                let (d_in, d_out) = (dims[0], dims[depth]);
                if teacher.rank() % 2 == 1 && *dose > 0.0 && teacher.rank() >= d_in.min(d_out) {
                    return Err(DlnError::invalid(
                        "dose",
                        format!(
                            "needs input and output widths above the odd teacher rank {} (its last mode turns out of the block)",
                            teacher.rank()
                        ),
                        format!("widths {d_in} and {d_out}"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn check_aligned(&self, a0: &ModeScale, dims: &[usize], teacher: &Teacher) -> Result<()> {
        a0.values(teacher.rank())?;
        let narrowest = *dims.iter().min().expect("dims checked non-empty");
        if teacher.rank() > narrowest {
            return Err(DlnError::invalid(
                "kind",
                format!("{} needs every layer width to be at least the teacher rank {}", self.name(), teacher.rank()),
                format!("narrowest width {narrowest}"),
            ));
        }
        Ok(())
    }

    /// Draws the initial layers `[W_1, …, W_L]` of the member with this seed in the init
    /// namespace `namespace` (the stream `Stream::Init` of `modewise_theory::rng`; a trainer's
    /// members are drawn by [`TrainSpec::initial_layers`](crate::TrainSpec::initial_layers)).
    pub fn draw(&self, dims: &[usize], teacher: &Teacher, seed: u64, namespace: u64) -> Result<Vec<DMatrix<f64>>> {
        self.check(dims, teacher)?;
        let mut rng = Stream::Init { namespace }.rng(seed);
        let depth = dims.len() - 1;
        Ok(match self {
            Self::Gaussian { std } => (0..depth)
                .map(|l| {
                    let (d_in, d_out) = (dims[l], dims[l + 1]);
                    let std = match std {
                        GaussianStd::Gamma(g) => (d_in.min(d_out) as f64).powf(-g / 2.0),
                        GaussianStd::Scale(s) => *s,
                    };
                    gaussian_matrix(d_out, d_in, &mut rng) * std
                })
                .collect(),
            Self::AlignedBalanced { a0 } => {
                let a = a0.values(teacher.rank())?;
                let frames = frames(dims, teacher.v().clone(), teacher.u().clone(), &mut rng);
                aligned_layers(&frames, &a, &vec![1.0; depth])
            }
            Self::Unbalanced { a0, factors } => {
                let a = a0.values(teacher.rank())?;
                let c: Vec<f64> = match factors {
                    LayerFactors::Factors(f) => f.clone(),
                    LayerFactors::Ratio(r) => {
                        (1..=depth).map(|l| r.powf((2.0 * l as f64 - depth as f64 - 1.0) / 2.0)).collect()
                    }
                };
                let frames = frames(dims, teacher.v().clone(), teacher.u().clone(), &mut rng);
                aligned_layers(&frames, &a, &c)
            }
            Self::Misaligned { a0, tilt: Tilt::Angle(angle) } => {
                let a = a0.values(teacher.rank())?;
                let v = rotate_frame(teacher.v(), *angle, &mut rng);
                let u = rotate_frame(teacher.u(), -*angle, &mut rng);
                let frames = frames(dims, v, u, &mut rng);
                aligned_layers(&frames, &a, &vec![1.0; depth])
            }
            Self::Misaligned { a0, tilt: Tilt::Dose(dose) } => {
                let a = a0.values(teacher.rank())?;
                let v = dose_frame(teacher.v(), *dose, 1.0, &mut rng);
                let u = dose_frame(teacher.u(), *dose, -1.0, &mut rng);
                let frames = frames(dims, v, u, &mut rng);
                aligned_layers(&frames, &a, &vec![1.0; depth])
            }
        })
    }
}

/// Frames `R_0 = v`, random hidden `R_1 … R_{L−1}`, `R_L = u`.
fn frames(dims: &[usize], v: DMatrix<f64>, u: DMatrix<f64>, rng: &mut PathRng) -> Vec<DMatrix<f64>> {
    let depth = dims.len() - 1;
    let r = v.ncols();
    let mut out = vec![v];
    for &d in &dims[1..depth] {
        out.push(random_orthonormal(d, r, rng));
    }
    out.push(u);
    out
}

/// `W_l = c_l R_l diag(a) R_{l−1}ᵀ`.
fn aligned_layers(frames: &[DMatrix<f64>], a: &[f64], c: &[f64]) -> Vec<DMatrix<f64>> {
    let diag = DMatrix::from_diagonal(&DVector::from_column_slice(a));
    (1..frames.len()).map(|l| &frames[l] * &diag * frames[l - 1].transpose() * c[l - 1]).collect()
}

/// The first `r` columns of the completed basis of `q`, each pair of consecutive basis vectors
/// turned by `angle`.
fn rotate_frame(q: &DMatrix<f64>, angle: f64, rng: &mut PathRng) -> DMatrix<f64> {
    let full = complete_basis(q, rng);
    let (n, r) = q.shape();
    let (sin, cos) = angle.sin_cos();
    let mut out = full.clone();
    let mut j = 0;
    while j + 1 < n {
        let (b0, b1) = (full.column(j), full.column(j + 1));
        out.set_column(j, &(b0 * cos + b1 * sin));
        out.set_column(j + 1, &(b1 * cos - b0 * sin));
        j += 2;
    }
    out.columns(0, r).into_owned()
}

/// The first `r` columns of the completed basis of `q`, turned by the dose rule of
/// [`Tilt::Dose`]: pairs `(b_{2j}, b_{2j+1})` within the block by `sense · asin(d)/2`, and the
/// last column of an odd `r` towards `b_r` by `sense · θ'`, `cos²θ' = √(1 − d²)`.
fn dose_frame(q: &DMatrix<f64>, dose: f64, sense: f64, rng: &mut PathRng) -> DMatrix<f64> {
    let full = complete_basis(q, rng);
    let r = q.ncols();
    let mut out = q.clone();
    let turn = |out: &mut DMatrix<f64>, j: usize, partner: usize, angle: f64, both: bool| {
        let (sin, cos) = (sense * angle).sin_cos();
        let (b0, b1) = (full.column(j), full.column(partner));
        out.set_column(j, &(b0 * cos + b1 * sin));
        if both {
            out.set_column(partner, &(b1 * cos - b0 * sin));
        }
    };
    let pair_angle = dose.asin() / 2.0;
    let mut j = 0;
    while j + 1 < r {
        turn(&mut out, j, j + 1, pair_angle, true);
        j += 2;
    }
    if j < r && dose > 0.0 {
        let lone_angle = (1.0 - dose * dose).sqrt().sqrt().acos();
        turn(&mut out, j, r, lone_angle, false);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::chain_product;
    use crate::teacher::{SpectrumSpec, TeacherParams};

    fn teacher() -> Teacher {
        TeacherParams { spectrum: SpectrumSpec::List { s: vec![3.0, 1.0] }, seed: 1 }.build(5, 4).unwrap()
    }

    #[test]
    fn aligned_balanced_has_the_theory_mode_matrix() {
        let t = teacher();
        let dims = [5, 6, 3, 4];
        let init = InitScheme::AlignedBalanced { a0: ModeScale::PerMode(vec![0.5, 0.2]) };
        let layers = init.draw(&dims, &t, 9, 0).unwrap();
        let w = chain_product(&layers);
        let modes = t.u().transpose() * &w * t.v();
        let expected = DMatrix::from_diagonal(&DVector::from_vec(vec![0.125, 0.008]));
        assert!((modes - expected).norm() < 1e-12);
        for l in 0..2 {
            let gap = layers[l + 1].transpose() * &layers[l + 1] - &layers[l] * layers[l].transpose();
            assert!(gap.norm() < 1e-12, "layer pair {l} unbalanced: {}", gap.norm());
        }
    }

    #[test]
    fn unbalanced_keeps_the_end_to_end_map() {
        let t = teacher();
        let dims = [5, 6, 4];
        let a0 = ModeScale::Scalar(0.7);
        let bal = InitScheme::AlignedBalanced { a0: a0.clone() }.draw(&dims, &t, 2, 0).unwrap();
        let unb = InitScheme::Unbalanced { a0, factors: LayerFactors::Ratio(3.0) }.draw(&dims, &t, 2, 0).unwrap();
        assert!((chain_product(&bal) - chain_product(&unb)).norm() < 1e-12);
        let gap = unb[1].transpose() * &unb[1] - &unb[0] * unb[0].transpose();
        assert!(gap.norm() > 0.1);
        let bad = InitScheme::Unbalanced { a0: ModeScale::Scalar(0.7), factors: LayerFactors::Factors(vec![2.0, 2.0]) };
        assert!(bad.check(&dims, &t).unwrap_err().to_string().starts_with("factors: must multiply to 1"));
    }

    #[test]
    fn misaligned_frames_make_the_requested_angle() {
        let t = teacher();
        let dims = [5, 6, 4];
        let angle = 0.3;
        let mut rng = modewise_theory::rng::path_rng(0, 0);
        for q in [t.v(), t.u()] {
            let rotated = rotate_frame(q, -angle, &mut rng);
            assert!((rotated.transpose() * &rotated - DMatrix::<f64>::identity(2, 2)).norm() < 1e-12);
            for k in 0..2 {
                assert!((rotated.column(k).dot(&q.column(k)) - angle.cos()).abs() < 1e-12);
            }
        }
        let layers = InitScheme::Misaligned { a0: ModeScale::Scalar(1.0), tilt: Tilt::Angle(angle) }
            .draw(&dims, &t, 4, 0)
            .unwrap();
        let modes = t.u().transpose() * chain_product(&layers) * t.v();
        let expected = DMatrix::from_row_slice(
            2,
            2,
            &[(2.0 * angle).cos(), (2.0 * angle).sin(), -(2.0 * angle).sin(), (2.0 * angle).cos()],
        );
        assert!((&modes - &expected).norm() < 1e-12, "{modes}");
        let err =
            InitScheme::Misaligned { a0: ModeScale::Scalar(1.0), tilt: Tilt::Angle(2.0) }.check(&dims, &t).unwrap_err();
        assert_eq!(err.to_string(), "angle: must lie in [0, π/2] (radians) (got 2.0)");
    }

    #[test]
    fn a_spec_gives_exactly_one_of_two_alternatives_and_writes_out_as_read() {
        let both = InitToml::Gaussian { gamma: Some(1.0), scale: Some(1.0) };
        assert_eq!(
            InitScheme::try_from(both).unwrap_err(),
            "exactly one of `gamma` and `scale` must be given (got both)"
        );
        let neither = InitToml::Unbalanced { a0: ModeScale::Scalar(0.1), factors: None, ratio: None };
        assert_eq!(
            InitScheme::try_from(neither).unwrap_err(),
            "exactly one of `factors` and `ratio` must be given (got neither)"
        );
        for written in [
            InitToml::Gaussian { gamma: None, scale: Some(0.5) },
            InitToml::Gaussian { gamma: Some(1.5), scale: None },
            InitToml::Unbalanced { a0: ModeScale::Scalar(0.1), factors: Some(vec![2.0, 0.5]), ratio: None },
            InitToml::Unbalanced { a0: ModeScale::PerMode(vec![0.1, 0.2]), factors: None, ratio: Some(4.0) },
        ] {
            let scheme = InitScheme::try_from(written.clone()).unwrap();
            assert_eq!(InitToml::from(scheme), written);
        }
        assert_eq!(
            InitScheme::try_from(InitToml::Gaussian { gamma: None, scale: Some(0.5) }).unwrap(),
            InitScheme::Gaussian { std: GaussianStd::Scale(0.5) }
        );
    }

    /// The dose rule: for every dose in [0, 1], ranks 2 and 3 (odd: the last mode turns out of
    /// the block), every mode starts at `m_k = a₀^L √(1 − d²)` with off-diagonal mass
    /// `d · a₀^L` (row and column of the mode together), the full alignment error is `d`, and it
    /// grows monotonically with the dose.
    #[test]
    fn the_misalignment_dose_is_monotone_and_the_same_for_every_mode() {
        for s in [vec![3.0, 1.0], vec![3.0, 2.0, 1.0]] {
            let r = s.len();
            let t = TeacherParams { spectrum: SpectrumSpec::List { s }, seed: 1 }.build(6, 5).unwrap();
            let dims = [6, 7, 5];
            let a0: f64 = 0.8;
            let scale = a0.powi(2);
            let mut last = -1.0;
            for dose in [0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0] {
                let init = InitScheme::Misaligned { a0: ModeScale::Scalar(a0), tilt: Tilt::Dose(dose) };
                let w = chain_product(&init.draw(&dims, &t, 5, 0).unwrap());
                let (u, v) = (t.u(), t.v());
                let m: Vec<f64> = (0..r).map(|k| u.column(k).dot(&(&w * v.column(k)))).collect();
                let diag = u * DMatrix::from_diagonal(&DVector::from_vec(m.clone())) * v.transpose();
                let off = &w - &diag;
                for (k, &mk) in m.iter().enumerate() {
                    assert!(
                        (mk - scale * (1.0 - dose * dose).sqrt()).abs() < 1e-12,
                        "r {r} dose {dose} mode {k}: {mk}"
                    );
                }
                let full = off.norm() / w.norm();
                assert!((full - dose).abs() < 1e-12, "r {r} dose {dose}: full alignment error {full}");
                assert!(full > last, "not monotone at dose {dose}");
                last = full;
            }
        }
        let t = TeacherParams { spectrum: SpectrumSpec::List { s: vec![3.0, 2.0, 1.0] }, seed: 1 }.build(3, 5).unwrap();
        let init = InitScheme::Misaligned { a0: ModeScale::Scalar(0.5), tilt: Tilt::Dose(0.5) };
        let err = init.check(&[3, 4, 5], &t).unwrap_err().to_string();
        assert!(err.starts_with("dose: needs input and output widths above the odd teacher rank 3"), "{err}");
        let bad = InitScheme::Misaligned { a0: ModeScale::Scalar(0.5), tilt: Tilt::Dose(1.5) };
        assert_eq!(bad.check(&[6, 7, 5], &t).unwrap_err().to_string(), "dose: must lie in [0, 1] (got 1.5)");
    }
}
