//! Pure f64 theory of SGD noise in deep linear networks, one singular mode at a time.
//!
//! Every formula of the project's theory note, `docs/theory.md` in the repository (included in
//! this documentation as [`theory_note`]), has one function here; `§n` citations throughout refer
//! to its sections:
//!
//! | § | what | where |
//! |---|---|---|
//! | §1.2–1.4, §3.1 | validated parameters (`L`, `s`, `σ`, `η`, `B`), spectra, the two coordinates | [`params`] |
//! | §3.4–3.5 | per-mode drift, diffusion and noise coefficients in `w` and `a` | [`sde`] |
//! | §3.2 | the projected per-sample gradient `g_k` and its moments | [`sde`] |
//! | §3.6, §4.5–4.7 | gradient flow: trajectories, times, learning time, plateau | [`flow`] |
//! | §4.1–4.3, §4.6 | the diffusion peak: condition, location, time | [`peak`] |
//! | §4.4, §7.1.4 | local peak and global maximum of the diffusion along the flow | [`maximum`] |
//! | §5 | stationary laws: Dirac (§5.3), exact zero-flux density (§5.2, §5.6), Boltzmann (§5.4), distances (§5.7) | [`stationary`] |
//! | §3.3, §3.7 | the exact per-mode SGD chain and the SDE integrators | [`ensemble`] |
//! | §7.1 | aligned, unbalanced depth-2 modes (conserved `δ`): flow, SDE, peak, density, two-layer chain | [`unbalanced`] |
//! | §7.2.1–7.2.3 | the linear regime near `s`: decay rates without label noise, stationary variances | [`linear`] |
//! | §7.2.4 | the SDE refined in `dt` until converged | [`refine`] |
//! | §7.2.6 | the transient mean to first order in `η`: curvature, Itô and step parts | [`transient`] |
//! | | every random stream of the workspace, in one table | [`rng`] |
//! | | the one parameter error and its checks | [`InvalidParameter`], [`check`] |
//!
//! Conventions: `w = a^L` is the end-to-end mode strength, `a` the per-layer one; time is
//! continuous, `t = η · step`. Nothing here depends on burn: this crate is the ground the
//! simulations of a real network are compared with.
//!
//! ```
//! use modewise_theory::{Coordinate, ModeParams};
//! let mode = ModeParams { depth: 2, s: 2.0, sigma: 0.5, lr: 1e-3, batch: 4 }.check()?;
//! assert!((mode.temperature() - 1.25e-4).abs() < 1e-12);
//! let peak = mode.diffusion_peak(Coordinate::EndToEnd).expect("a peak exists here");
//! assert!(peak < mode.s());
//! # Ok::<(), modewise_theory::TheoryError>(())
//! ```

#![warn(missing_docs)]

/// The project's theory note, `docs/theory.md`, included verbatim: the model and its
/// conventions, and every formula of this crate derived step by step. The `§n` citations in this
/// documentation refer to its sections.
#[doc = include_str!("../../../docs/theory.md")]
pub mod theory_note {}

pub mod check;
pub mod ensemble;
pub mod error;
pub mod flow;
pub mod grid;
pub mod linear;
pub mod maximum;
pub mod params;
pub mod peak;
mod quad;
pub mod refine;
pub mod rng;
mod roots;
pub mod sde;
pub mod stationary;
pub mod transient;
pub mod unbalanced;
mod zero_flux;

pub use ensemble::{Dynamics, EnsembleParams, EnsembleStats, Scheme};
pub use error::{InvalidParameter, TheoryError};
pub use flow::DEFAULT_RHO;
pub use grid::TimeGrid;
pub use linear::LinearRegime;
pub use maximum::{DiffusionMaximum, DiffusionPoint};
pub use params::{Coordinate, Mode, ModeParams, Spectrum, SpectrumParams};
pub use refine::{RefineParams, RefinedEnsemble, RefinementLevel, ScalarSde, refine_sde, refine_sde_or_finest};
pub use stationary::{Boltzmann, Distances, StationaryDensity, StationaryLaw, StationaryOptions};
pub use transient::MeanDeparture;
pub use unbalanced::{UnbalancedDynamics, UnbalancedEnsemble, UnbalancedMode};

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, TheoryError>;
