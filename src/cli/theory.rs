//! `modewise theory`: the theory of one singular mode from the command line — the diffusion
//! peak (`peak`), the stationary law (`stationary`) and the gradient-flow trajectory (`gf`).
//!
//! Each subcommand builds a [`ModeParams`] from its flags (an omitted flag takes the
//! [`ModeParams::default`] value), validates it with the theory crate, and prints one report.
//! The theory crate does every check, so its error names the flag at fault.

use clap::{Args, Subcommand};
use modewise_theory::flow::DEFAULT_RHO;
use modewise_theory::{Coordinate, Mode, ModeParams, StationaryLaw};
use serde::Serialize;

use super::output::OutputArgs;
use super::typed;

/// Arguments of `modewise theory`.
#[derive(Debug, Args)]
pub struct TheoryArgs {
    /// Which quantity to compute.
    #[command(subcommand)]
    pub command: TheoryCommand,
}

/// The subcommands of `modewise theory`.
#[derive(Debug, Subcommand)]
pub enum TheoryCommand {
    /// The diffusion peak of a mode: whether it exists, where, and when gradient flow reaches it.
    Peak(PeakArgs),
    /// The stationary law of a mode and its distance to the Boltzmann approximation N(s, T).
    Stationary(StationaryArgs),
    /// The gradient-flow trajectory w(t) of a mode: at one time (--t; label noise, learning
    /// rate and batch play no part), or as a table of t, w and D(w) on --t-grid.
    Gf(GfArgs),
    /// The SDE ensemble's mean and variance on --t-grid (dt refined from η until converged, or
    /// a fixed step), as a table echoing the inputs.
    Sde(super::curves::SdeArgs),
    /// The exact per-mode SGD chain's mean and variance on --t-grid, as a table echoing the
    /// inputs.
    Chain(super::curves::ChainArgs),
}

/// The teacher's side of a mode: the network depth and the singular value.
#[derive(Debug, Clone, Copy, Args)]
pub struct TeacherArgs {
    /// Depth L, the number of weight matrices (at least 1).
    #[arg(
        long,
        value_name = "L",
        default_value_t = ModeParams::default().depth,
        allow_hyphen_values = true
    )]
    pub depth: u32,
    /// The teacher's singular value s of the mode (finite, > 0).
    #[arg(
        long,
        value_name = "S",
        default_value_t = ModeParams::default().s,
        allow_hyphen_values = true
    )]
    pub s: f64,
}

/// The SGD side of a mode: label noise, learning rate and batch size.
#[derive(Debug, Clone, Copy, Args)]
pub struct SgdArgs {
    /// Label-noise standard deviation σ (finite, ≥ 0).
    #[arg(
        long,
        value_name = "SIG",
        default_value_t = ModeParams::default().sigma,
        allow_hyphen_values = true
    )]
    pub sigma: f64,
    /// SGD learning rate η (finite, > 0).
    #[arg(
        long,
        value_name = "ETA",
        default_value_t = ModeParams::default().lr,
        allow_hyphen_values = true
    )]
    pub lr: f64,
    /// SGD batch size B (at least 1).
    #[arg(
        long,
        value_name = "B",
        default_value_t = ModeParams::default().batch,
        allow_hyphen_values = true
    )]
    pub batch: u32,
}

/// Arguments of `modewise theory peak`.
#[derive(Debug, Args)]
pub struct PeakArgs {
    /// Depth and singular value.
    #[command(flatten)]
    pub teacher: TeacherArgs,
    /// Label noise, learning rate and batch size.
    #[command(flatten)]
    pub sgd: SgdArgs,
    /// Initial end-to-end strength w0 (> 0 when L ≥ 2).
    #[arg(long, value_name = "W0", allow_hyphen_values = true)]
    pub w0: f64,
    /// Coordinate whose diffusion has the peak: w (the end-to-end strength w = a^L) or a (the
    /// per-layer strength); the reported location is always the end-to-end w.
    #[arg(long, value_name = "COORD", value_parser = typed::<Coordinate>(), default_value_t = Coordinate::EndToEnd)]
    pub coordinate: Coordinate,
    /// Learning threshold ρ in (0, 1): the mode counts as learned at w = ρ s.
    #[arg(long, value_name = "RHO", default_value_t = DEFAULT_RHO, allow_hyphen_values = true)]
    pub rho: f64,
    /// Output format.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Arguments of `modewise theory stationary`.
#[derive(Debug, Args)]
pub struct StationaryArgs {
    /// Depth and singular value.
    #[command(flatten)]
    pub teacher: TeacherArgs,
    /// Label noise, learning rate and batch size.
    #[command(flatten)]
    pub sgd: SgdArgs,
    /// Output format.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Arguments of `modewise theory gf`.
#[derive(Debug, Args)]
pub struct GfArgs {
    /// Depth and singular value.
    #[command(flatten)]
    pub teacher: TeacherArgs,
    /// Initial end-to-end strength w0 (> 0 when L ≥ 2).
    #[arg(long, value_name = "W0", allow_hyphen_values = true)]
    pub w0: f64,
    /// Time t ≥ 0 (continuous, t = η · step).
    #[arg(
        long,
        value_name = "T",
        allow_hyphen_values = true,
        required_unless_present = "t_grid",
        conflicts_with = "t_grid"
    )]
    pub t: Option<f64>,
    /// Label noise, learning rate and batch size (for the table's D(w) column).
    #[command(flatten)]
    pub sgd: SgdArgs,
    /// Times START:STOP:N: print a table of t, w and D(w) instead of one report.
    #[arg(long = "t-grid", value_name = "START:STOP:N", value_parser = typed::<super::curves::TGrid>())]
    pub t_grid: Option<super::curves::TGrid>,
    /// Table format (with --t-grid).
    #[arg(long, value_enum, default_value_t = super::curves::TableFormat::Csv, requires = "t_grid")]
    pub format: super::curves::TableFormat,
    /// Output format (with --t).
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Report of `theory peak`.
#[derive(Debug, Serialize)]
pub struct PeakReport {
    /// Whether the diffusion has an interior maximum before `s`.
    pub peak_exists: bool,
    /// End-to-end location of the peak, whichever coordinate.
    pub w_peak: Option<f64>,
    /// Gradient-flow time from `w0` to the peak; `None` without a peak or when already past it.
    pub t_peak: Option<f64>,
    /// Gradient-flow time from `w0` to `ρ s`.
    pub t_learned: f64,
    /// The largest `σ²` with a peak; `None` at depth 1 (no peak for any `σ`).
    pub sigma2_max: Option<f64>,
    /// Small-initialisation plateau length; `None` at depth 1 (no saddle).
    pub plateau_time: Option<f64>,
    /// The coordinate whose diffusion was maximised.
    pub coordinate: Coordinate,
    /// Whether the flow reaches the peak before the mode is learned; `None` without `t_peak`.
    pub peak_before_learned: Option<bool>,
}

/// Report of `theory stationary`.
#[derive(Debug, Serialize)]
pub struct StationaryReport {
    /// `"dirac"` (σ = 0) or `"density"`.
    pub law: &'static str,
    /// Mean of the law.
    pub mean: f64,
    /// Variance of the law.
    pub variance: f64,
    /// Boltzmann temperature `T` (0 when σ = 0).
    pub boltzmann_t: f64,
    /// Kullback–Leibler divergence to `N(s, T)`; `None` for the Dirac law.
    pub kl_to_boltzmann: Option<f64>,
    /// Kolmogorov–Smirnov distance to `N(s, T)`; `None` for the Dirac law.
    pub ks_to_boltzmann: Option<f64>,
    /// Total variation distance to `N(s, T)`; `None` for the Dirac law.
    pub tv_to_boltzmann: Option<f64>,
    /// `variance / T`; `None` for the Dirac law.
    pub variance_over_t: Option<f64>,
}

/// Report of `theory gf`.
#[derive(Debug, Serialize)]
pub struct GfReport {
    /// The end-to-end strength `w(t)`.
    pub w: f64,
}

/// Runs `modewise theory`.
pub fn run(args: TheoryArgs) -> anyhow::Result<()> {
    match args.command {
        TheoryCommand::Peak(args) => args.output.print(&peak(&args)?),
        TheoryCommand::Stationary(args) => args.output.print(&stationary(&args)?),
        TheoryCommand::Gf(args) => match args.t_grid {
            Some(grid) => {
                let mode = mode(args.teacher, Some(args.sgd))?;
                super::curves::print(&super::curves::gf_table(&mode, args.w0, grid)?, args.format)
            }
            None => args.output.print(&gf(&args)?),
        },
        TheoryCommand::Sde(args) => {
            let mode = mode(args.teacher, Some(args.sgd))?;
            super::curves::print(&super::curves::sde_table(&mode, &args)?, args.table.format)
        }
        TheoryCommand::Chain(args) => {
            let mode = mode(args.teacher, Some(args.sgd))?;
            super::curves::print(&super::curves::chain_table(&mode, &args)?, args.table.format)
        }
    }
}

/// Validates a mode; without SGD arguments, those fields keep their defaults.
fn mode(teacher: TeacherArgs, sgd: Option<SgdArgs>) -> modewise_theory::Result<Mode> {
    let mut params = ModeParams { depth: teacher.depth, s: teacher.s, ..ModeParams::default() };
    if let Some(sgd) = sgd {
        params.sigma = sgd.sigma;
        params.lr = sgd.lr;
        params.batch = sgd.batch;
    }
    params.check()
}

/// Computes the report of `theory peak`.
fn peak(args: &PeakArgs) -> modewise_theory::Result<PeakReport> {
    let mode = mode(args.teacher, Some(args.sgd))?;
    let coordinate = args.coordinate;
    let t_peak = mode.peak_time(coordinate, args.w0)?;
    let t_learned = mode.t_learned(args.w0, args.rho)?;
    Ok(PeakReport {
        peak_exists: mode.peak_exists(coordinate),
        w_peak: mode.diffusion_peak(coordinate),
        t_peak,
        t_learned,
        sigma2_max: mode.peak_sigma2_max(coordinate),
        plateau_time: mode.plateau_time(args.w0)?,
        coordinate,
        peak_before_learned: t_peak.map(|t| t < t_learned),
    })
}

/// Computes the report of `theory stationary`.
fn stationary(args: &StationaryArgs) -> modewise_theory::Result<StationaryReport> {
    let mode = mode(args.teacher, Some(args.sgd))?;
    let boltzmann_t = mode.temperature();
    let law = mode.stationary_law()?;
    let (mean, variance) = (law.mean(), law.variance());
    Ok(match law {
        StationaryLaw::Dirac { .. } => StationaryReport {
            law: "dirac",
            mean,
            variance,
            boltzmann_t,
            kl_to_boltzmann: None,
            ks_to_boltzmann: None,
            tv_to_boltzmann: None,
            variance_over_t: None,
        },
        StationaryLaw::Density(density) => {
            let distances = density.distances_to_boltzmann();
            StationaryReport {
                law: "density",
                mean,
                variance,
                boltzmann_t,
                kl_to_boltzmann: Some(distances.kl),
                ks_to_boltzmann: Some(distances.ks),
                tv_to_boltzmann: Some(distances.tv),
                variance_over_t: Some(variance / boltzmann_t),
            }
        }
    })
}

/// Computes the report of `theory gf`.
fn gf(args: &GfArgs) -> modewise_theory::Result<GfReport> {
    let mode = mode(args.teacher, None)?;
    let t = args.t.expect("clap requires --t without --t-grid");
    Ok(GfReport { w: mode.gf_trajectory(args.w0, t)? })
}
