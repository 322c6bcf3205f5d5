//! Validated parameters: one mode (`L`, `s`, `σ`, `η`, `B`), a spectrum of modes, coordinates.
//!
//! Parameters come as plain structs with public fields and defaults ([`ModeParams`],
//! [`SpectrumParams`]); `check()` turns them into validated values ([`Mode`], [`Spectrum`])
//! whose invariants every other function relies on. A broken rule is a
//! [`TheoryError::InvalidParameter`] naming the field and the rule.

use serde::{Deserialize, Serialize};

use crate::check::{at_least, finite, non_negative, positive, singular_values};
use crate::{InvalidParameter, Result, TheoryError};

/// The coordinate a per-mode quantity is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Coordinate {
    /// The end-to-end mode strength `w = a^L` (`docs/theory.md` §3.5, "end-to-end SDE").
    #[default]
    #[serde(rename = "w")]
    EndToEnd,
    /// The per-layer mode strength `a` (`docs/theory.md` §3.4, "per-layer SDE").
    #[serde(rename = "a")]
    PerLayer,
}

impl std::str::FromStr for Coordinate {
    type Err = TheoryError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "w" => Ok(Self::EndToEnd),
            "a" => Ok(Self::PerLayer),
            other => Err(TheoryError::invalid("coordinate", "must be `w` (end-to-end) or `a` (per-layer)", other)),
        }
    }
}

impl std::fmt::Display for Coordinate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::EndToEnd => "w",
            Self::PerLayer => "a",
        })
    }
}

/// Unchecked parameters of one singular mode and of the SGD that trains it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModeParams {
    /// Depth `L`, the number of weight matrices; at least 1.
    pub depth: u32,
    /// The teacher's singular value `s` of this mode; finite and positive.
    pub s: f64,
    /// Label-noise standard deviation `σ`; finite and non-negative.
    pub sigma: f64,
    /// SGD learning rate `η`; finite and positive.
    pub lr: f64,
    /// SGD batch size `B`; at least 1.
    pub batch: u32,
}

impl Default for ModeParams {
    /// `L = 2`, `s = 1`, `σ = 0`, `η = 10⁻³`, `B = 1`.
    fn default() -> Self {
        Self { depth: 2, s: 1.0, sigma: 0.0, lr: 1e-3, batch: 1 }
    }
}

impl ModeParams {
    /// Checks every rule and returns the validated mode.
    pub fn check(&self) -> Result<Mode> {
        at_least("depth", self.depth, 1)?;
        positive("s", self.s)?;
        non_negative("sigma", self.sigma)?;
        positive("lr", self.lr)?;
        at_least("batch", self.batch, 1)?;
        Ok(Mode { depth: self.depth, s: self.s, sigma: self.sigma, lr: self.lr, batch: self.batch })
    }
}

/// A validated mode: `L ≥ 1`, `s > 0`, `σ ≥ 0`, `η > 0`, `B ≥ 1`, all finite.
///
/// Build it with [`ModeParams::check`]. Its methods are the formulas of the theory note,
/// spread over the modules [`crate::sde`], [`crate::flow`], [`crate::peak`] and
/// [`crate::stationary`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Mode {
    pub(crate) depth: u32,
    pub(crate) s: f64,
    pub(crate) sigma: f64,
    pub(crate) lr: f64,
    pub(crate) batch: u32,
}

impl Mode {
    /// Depth `L`.
    pub fn depth(&self) -> u32 {
        self.depth
    }
    /// Depth `L` as a float.
    pub fn l(&self) -> f64 {
        f64::from(self.depth)
    }
    /// Singular value `s`.
    pub fn s(&self) -> f64 {
        self.s
    }
    /// Label noise `σ`.
    pub fn sigma(&self) -> f64 {
        self.sigma
    }
    /// Learning rate `η`.
    pub fn lr(&self) -> f64 {
        self.lr
    }
    /// Batch size `B`.
    pub fn batch(&self) -> u32 {
        self.batch
    }
    /// The SGD noise scale `η / B`.
    pub fn noise_scale(&self) -> f64 {
        self.lr / f64::from(self.batch)
    }
    /// The unchecked parameters this mode was built from.
    pub fn params(&self) -> ModeParams {
        ModeParams { depth: self.depth, s: self.s, sigma: self.sigma, lr: self.lr, batch: self.batch }
    }

    /// Boltzmann temperature `T = L η σ² s^{2−2/L} / (2B)` (`docs/theory.md` §5.4).
    pub fn temperature(&self) -> f64 {
        let l = self.l();
        l * self.lr * self.sigma * self.sigma * self.s.powf(2.0 - 2.0 / l) / (2.0 * f64::from(self.batch))
    }

    /// Checks an initial end-to-end value `w0` for this mode: finite, and positive when
    /// `L ≥ 2` (then `w = a^L` with `a > 0`; `w = 0` is the saddle and never moves).
    pub fn check_initial(&self, w0: f64) -> Result<f64> {
        Ok(if self.depth >= 2 { positive("w0", w0)? } else { finite("w0", w0)? })
    }

    /// Converts an end-to-end value `w` to the per-layer value `a = w^{1/L}` (`w ≥ 0` for `L ≥ 2`).
    pub fn a_from_w(&self, w: f64) -> f64 {
        match self.depth {
            1 => w,
            2 => w.sqrt(),
            3 => w.cbrt(),
            _ => w.powf(1.0 / self.l()),
        }
    }

    /// Converts a per-layer value `a` to the end-to-end value `w = a^L`.
    pub fn w_from_a(&self, a: f64) -> f64 {
        a.powi(self.depth as i32)
    }
}

/// Unchecked parameters of a spectrum of modes `s_1 ≥ … ≥ s_r` sharing depth and SGD settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpectrumParams {
    /// Depth `L`; at least 1.
    pub depth: u32,
    /// Singular values, non-increasing, each finite and positive; at least one.
    pub s: Vec<f64>,
    /// Initial end-to-end strengths, one per mode, or a single value used for every mode.
    pub w0: Vec<f64>,
    /// Label noise `σ ≥ 0`.
    pub sigma: f64,
    /// Learning rate `η > 0`.
    pub lr: f64,
    /// Batch size `B ≥ 1`.
    pub batch: u32,
}

impl Default for SpectrumParams {
    /// Depth 2, `s = (3, 2, 1)`, `w0 = 10⁻³` for every mode, `σ = 0`, `η = 10⁻³`, `B = 1`.
    fn default() -> Self {
        Self { depth: 2, s: vec![3.0, 2.0, 1.0], w0: vec![1e-3], sigma: 0.0, lr: 1e-3, batch: 1 }
    }
}

impl SpectrumParams {
    /// Checks every rule and returns the validated spectrum.
    pub fn check(&self) -> Result<Spectrum> {
        singular_values(&self.s)?;
        let modes = self
            .s
            .iter()
            .map(|&s| ModeParams { depth: self.depth, s, sigma: self.sigma, lr: self.lr, batch: self.batch }.check())
            .collect::<Result<Vec<_>>>()?;
        let w0 = match self.w0.len() {
            1 => vec![self.w0[0]; self.s.len()],
            n if n == self.s.len() => self.w0.clone(),
            n => {
                return Err(TheoryError::invalid(
                    "w0",
                    format!("must hold one value or one per mode ({})", self.s.len()),
                    format!("{n} values"),
                ));
            }
        };
        for (k, (&w, mode)) in w0.iter().zip(&modes).enumerate() {
            mode.check_initial(w).map_err(|e| match e {
                TheoryError::InvalidParameter(p) => InvalidParameter { field: format!("w0[{k}]"), ..p }.into(),
                other => other,
            })?;
        }
        Ok(Spectrum { modes, w0 })
    }
}

/// A validated spectrum: modes in non-increasing order of `s`, each with its initial value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Spectrum {
    modes: Vec<Mode>,
    w0: Vec<f64>,
}

impl Spectrum {
    /// The modes, strongest first.
    pub fn modes(&self) -> &[Mode] {
        &self.modes
    }
    /// Initial end-to-end strengths, one per mode.
    pub fn w0(&self) -> &[f64] {
        &self.w0
    }
    /// Number of modes `r`.
    pub fn len(&self) -> usize {
        self.modes.len()
    }
    /// Always false: a checked spectrum holds at least one mode.
    pub fn is_empty(&self) -> bool {
        self.modes.is_empty()
    }
}
