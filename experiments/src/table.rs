//! The four Parquet tables of a results directory: their names and paths, one row type per table
//! whose single column list (name, type, how to get and set the value) both builds the data frame
//! that is written and reads it back, and the names of the claims, overlays and quantities
//! written into them.

use std::fmt;
use std::path::{Path, PathBuf};

use modewise_dln::Divergence;
use polars::prelude::{Column, DataFrame, PolarsResult, polars_err};

use crate::run::RunResult;

/// Declares a fieldless enum written to Parquet as text, with its one table of names: the
/// variants and their names in order, `ALL`, `name`, `from_name`, `Display` (the name) and
/// `Default` (the first variant, a placeholder while a row is read back).
macro_rules! named {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $(#[$first_meta:meta])* $first:ident = $first_text:literal,
            $($(#[$variant_meta:meta])* $variant:ident = $text:literal,)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $(#[$first_meta])*
            #[default]
            $first,
            $($(#[$variant_meta])* $variant,)*
        }

        impl $name {
            /// Every variant, in the order of the name table.
            pub const ALL: &'static [Self] = &[Self::$first, $(Self::$variant,)*];

            /// The name written to Parquet and printed.
            pub const fn name(self) -> &'static str {
                match self {
                    Self::$first => $first_text,
                    $(Self::$variant => $text,)*
                }
            }

            /// The variant of a name, if it is one.
            pub fn from_name(name: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.name() == name)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.name())
            }
        }
    };
}

named! {
    /// A table of a results directory, in the order the tables are written: `summary` last, so
    /// that in a sweep a run's `summary` part marks it complete.
    pub enum Table {
        /// One row per member of every run.
        Runs = "runs",
        /// One row per run, member, probe step and mode.
        Trajectories = "trajectories",
        /// The theory overlays.
        Theory = "theory",
        /// Claim 4's dose–response rows ([`crate::dose`]).
        DoseResponse = "dose_response",
        /// The fitted scaling exponents of a `scaling` experiment ([`crate::scaling`]; written
        /// only by that analysis, across its runs).
        Scaling = "scaling",
        /// The stationary `Var/T` of each run and model of a `scaling` experiment, the points
        /// behind the fits and the finite-η correction ([`crate::scaling`]).
        ScalingPoints = "scaling_points",
        /// The verdicts.
        Summary = "summary",
    }
}

impl Table {
    /// The tables every run writes (its own rows only), in writing order: all but the
    /// cross-run tables of the `scaling` analysis, which are written only where it has rows.
    pub const PER_RUN: [Table; 5] =
        [Table::Runs, Table::Trajectories, Table::Theory, Table::DoseResponse, Table::Summary];

    /// Whether every run writes this table ([`Table::PER_RUN`]).
    pub fn per_run(self) -> bool {
        Self::PER_RUN.contains(&self)
    }
}

impl Table {
    /// The file name of the table in a results directory (`runs.parquet`).
    pub fn file_name(self) -> String {
        format!("{}.parquet", self.name())
    }

    /// The table's file in the results directory `dir`.
    pub fn path_in(self, dir: &Path) -> PathBuf {
        dir.join(self.file_name())
    }

    /// The Hive partition of run `run_index` of the table in the sweep directory `dir`:
    /// `dir/<table>/run_index=<i>`.
    pub fn partition(self, dir: &Path, run_index: usize) -> PathBuf {
        dir.join(self.name()).join(format!("run_index={run_index}"))
    }

    /// The file of run `run_index`'s part of the table in the sweep directory `dir`:
    /// `dir/<table>/run_index=<i>/part.parquet`.
    pub fn part_path(self, dir: &Path, run_index: usize) -> PathBuf {
        self.partition(dir, run_index).join("part.parquet")
    }
}

named! {
    /// A claim the verdicts test (the `claim` column of `summary`).
    pub enum Claim {
        /// Claim 1: the diffusion of a mode peaks before the mode is learned.
        PeakBeforeLearned = "1 peak before learned",
        /// Claim 2: without label noise the stationary law is a Dirac mass at `s`.
        DiracLaw = "2 Dirac law",
        /// Claim 3: with label noise the stationary law is the exact density, close to Boltzmann.
        BoltzmannLaw = "3 Boltzmann law",
        /// SGD against the SDE model: the across-seed mean and variance at the end of the run.
        SdeVsSgd = "SDE vs SGD",
        /// The Boltzmann law's scaling of the stationary variance with `η`, `B`, `σ`, `s` and
        /// `L`, fitted across the runs of a `scaling` experiment, and where the SDE breaks down.
        Scaling = "scaling laws",
    }
}

named! {
    /// What a verdict compares (the `quantity` column of `summary`); new quantities are one line
    /// each here. `docs/theory.md` §9 gives each one's prediction, statistic, tolerance and control.
    pub enum Quantity {
        /// Time at which `m_k` first reaches `ρ s` (claim 1; per seed, against the population-GD
        /// reference from the same start).
        TLearned = "t_learned",
        /// Time of the diffusion's largest value before learning (claim 1; per seed, against
        /// the reference).
        TPeak = "t_peak",
        /// `m_k` at the largest diffusion before learning (claim 1; per seed, against `w_peak`).
        WAtPeak = "w_at_peak",
        /// The largest diffusion before learning (claim 1; per seed, against `D(w_peak)`).
        DMax = "d_max",
        /// Fraction of seeds whose diffusion has a local peak before learning (claim 1).
        PeakBeforeLearned = "peak_before_learned",
        /// Fraction of seeds whose largest diffusion over the whole run is that peak (claim 1).
        GlobalMaxBeforeLearned = "global_max_before_learned",
        /// The model-free cloned-increment diffusion over the exact-moments probe (claim 1).
        ClonesOverExact = "diffusion_clones_over_exact",
        /// `m_k` at the last probe over `s` (claim 2; per seed).
        MeanOverS = "mean_over_s",
        /// Decay rate of the mean square distance `E(m_k − s)²` over seeds (claim 2).
        MsdDecayRate = "msd_decay_rate",
        /// Variance of `m_k` over the late window over the temperature `T` (claim 3; per seed).
        VarianceOverT = "variance_over_T",
        /// Kolmogorov–Smirnov distance of the pooled late samples to the exact density (claim 3).
        KsToExactDensity = "ks_to_exact_density",
        /// Kolmogorov–Smirnov distance of the pooled late samples to the Boltzmann law (claim 3).
        KsToBoltzmann = "ks_to_boltzmann",
        /// Mean of `m_k` at the last probe against the exact chain ensemble (SDE vs SGD).
        FinalMeanChain = "final_mean_chain",
        /// Variance of `m_k` at the last probe against the exact chain ensemble (SDE vs SGD).
        FinalVarianceChain = "final_variance_chain",
        /// Mean of `m_k` at the last probe against the SDE ensemble (SDE vs SGD).
        FinalMeanSde = "final_mean_sde",
        /// Variance of `m_k` at the last probe against the SDE ensemble (SDE vs SGD).
        FinalVarianceSde = "final_variance_sde",
        /// The learning rate from which on the SDE's stationary `Var/T` (its exact density)
        /// stays outside the network's interval, against where §7.2's linearised laws put it
        /// (scaling; `crate::scaling`).
        BreakdownLrSde = "breakdown_lr_sde",
        /// The same for the exact chain's stationary `Var/T` (its ensemble).
        BreakdownLrChain = "breakdown_lr_chain",
        /// The fitted exponent of the stationary variance in the learning rate (scaling).
        ExponentLr = "exponent_lr",
        /// Its exponent in the batch size.
        ExponentBatch = "exponent_batch",
        /// Its exponent in the label-noise scale `σ`.
        ExponentSigma = "exponent_sigma",
        /// Its exponent in the teacher's singular value `s`.
        ExponentS = "exponent_s",
        /// Its exponent in the depth `L` (the slope of `ln Var` against `ln L`).
        ExponentDepth = "exponent_depth",
    }
}

named! {
    /// What the theory expects of a verdict (the `expected` column of `summary`): `hold`, or
    /// `fail` where a premise of the claim is violated (a negative control).
    pub enum Expected {
        /// Every premise of the claim holds: the verdict should hold.
        Hold = "hold",
        /// A premise is violated: the verdict should fail.
        Fail = "fail",
    }
}

named! {
    /// A theory overlay (the `overlay` column of `theory`).
    pub enum Overlay {
        /// The gradient-flow trajectory `w(t)` from `w0` (exact, or by the reference rule).
        GradientFlow = "gradient_flow",
        /// Gradient flow from a `w0` fitted on the measured mean (reported only, never used in a
        /// verdict).
        GradientFlowFitted = "gradient_flow_fitted",
        /// One member's `m_k(t)` under population gradient descent from the same initial
        /// weights (the deterministic reference).
        Reference = "reference",
        /// The exact mode diffusion `D_k` along the same reference trajectory.
        ReferenceDiffusion = "reference_diffusion",
        /// The SDE ensemble's mean and variance on the probe times: integrated as the SDE
        /// (`overlays.sde_refine`, the default: `dt` halved from `η` until the statistics stop
        /// changing, `dt` and `sde_converged` recorded), else at the fixed step.
        Sde = "sde",
        /// The SDE at the fixed step `dt = η · overlays.sde_dt_over_lr` with
        /// `overlays.sde_scheme` (by default Euler–Maruyama at `dt = η`, which tracks the exact
        /// chain to `O(η²)`), written beside the refined `sde` on the same Brownian paths.
        SdeFixedStep = "sde_fixed_step",
        /// The exact chain ensemble's mean and variance on the probe times (the discrete-time
        /// reference, `dt = η`).
        Chain = "chain",
        /// The diffusion `D(w)` (end-to-end, exact second moment of the projected gradient)
        /// along the gradient-flow trajectory, on a dense time grid (`w` the flow's value).
        DiffusionGradientFlow = "diffusion_gradient_flow",
        /// The exact stationary density on a `w` grid.
        StationaryDensity = "stationary_density",
        /// The Boltzmann law on the same grid.
        Boltzmann = "boltzmann",
        /// `E w − w_GF` of the SDE to first order in `η` (curvature and Itô parts, §7.2.6).
        MeanDepartureSde = "mean_departure_sde",
        /// `E w − w_GF` of the SDE with its Itô term switched off (the curvature part alone).
        MeanDepartureSdeNoIto = "mean_departure_sde_no_ito",
        /// `E w − w_GF` of the exact chain (curvature, Itô and gradient-step parts).
        MeanDepartureChain = "mean_departure_chain",
    }
}

named! {
    /// Whether a member trained to the end (the `status` column of `runs`).
    pub enum Status {
        /// Trained to the end.
        Ok = "ok",
        /// Stopped because its weights stopped being finite.
        Diverged = "diverged",
    }
}

/// How a column's value is read from a row and written back into one; the variant is the
/// column's Parquet type (`Opt…`: nullable).
pub enum Access<R> {
    /// Text.
    Str(fn(&R) -> &str, fn(&mut R, &str)),
    /// Text naming a variant of an enum with a name table ([`Claim`], [`Overlay`], …); the
    /// setter fails (returns `None`) on an unknown name.
    Named(fn(&R) -> &'static str, fn(&mut R, &str) -> Option<()>),
    /// Unsigned 32-bit integer.
    U32(fn(&R) -> u32, fn(&mut R, u32)),
    /// Nullable unsigned 32-bit integer.
    OptU32(fn(&R) -> Option<u32>, fn(&mut R, Option<u32>)),
    /// Unsigned 64-bit integer.
    U64(fn(&R) -> u64, fn(&mut R, u64)),
    /// Nullable unsigned 64-bit integer.
    OptU64(fn(&R) -> Option<u64>, fn(&mut R, Option<u64>)),
    /// 64-bit float.
    F64(fn(&R) -> f64, fn(&mut R, f64)),
    /// Nullable 64-bit float.
    OptF64(fn(&R) -> Option<f64>, fn(&mut R, Option<f64>)),
    /// Boolean.
    Bool(fn(&R) -> bool, fn(&mut R, bool)),
    /// Nullable boolean.
    OptBool(fn(&R) -> Option<bool>, fn(&mut R, Option<bool>)),
}

/// One column of a table: its name and how to get and set its value in a row.
pub struct ColumnDef<R> {
    /// The column name.
    pub name: &'static str,
    /// Its type and accessors.
    pub access: Access<R>,
}

impl<R> ColumnDef<R> {
    /// The column's type as `data/README.md` names it (`str`, `u32`, `u64`, `f64`, `bool`).
    pub fn type_name(&self) -> &'static str {
        match self.access {
            Access::Str(..) | Access::Named(..) => "str",
            Access::U32(..) | Access::OptU32(..) => "u32",
            Access::U64(..) | Access::OptU64(..) => "u64",
            Access::F64(..) | Access::OptF64(..) => "f64",
            Access::Bool(..) | Access::OptBool(..) => "bool",
        }
    }

    /// Whether the column may hold nulls.
    pub fn nullable(&self) -> bool {
        matches!(self.access, Access::OptU32(..) | Access::OptU64(..) | Access::OptF64(..) | Access::OptBool(..))
    }

    /// The column of `rows`.
    fn build(&self, rows: &[R]) -> Column {
        let name = self.name.into();
        match self.access {
            Access::Str(get, _) => Column::new(name, rows.iter().map(get).collect::<Vec<_>>()),
            Access::Named(get, _) => Column::new(name, rows.iter().map(get).collect::<Vec<_>>()),
            Access::U32(get, _) => Column::new(name, rows.iter().map(get).collect::<Vec<_>>()),
            Access::OptU32(get, _) => Column::new(name, rows.iter().map(get).collect::<Vec<_>>()),
            Access::U64(get, _) => Column::new(name, rows.iter().map(get).collect::<Vec<_>>()),
            Access::OptU64(get, _) => Column::new(name, rows.iter().map(get).collect::<Vec<_>>()),
            Access::F64(get, _) => Column::new(name, rows.iter().map(get).collect::<Vec<_>>()),
            Access::OptF64(get, _) => Column::new(name, rows.iter().map(get).collect::<Vec<_>>()),
            Access::Bool(get, _) => Column::new(name, rows.iter().map(get).collect::<Vec<_>>()),
            Access::OptBool(get, _) => Column::new(name, rows.iter().map(get).collect::<Vec<_>>()),
        }
    }

    /// Sets this column's value in each of `rows` from `frame` (one row per frame row); an
    /// error names the column when it is missing, of another type, null where it may not be,
    /// or (for a named enum) holds an unknown name. A nullable column missing from the frame
    /// (a file written before the column was added) reads as null throughout.
    fn read(&self, frame: &DataFrame, rows: &mut [R]) -> PolarsResult<()> {
        if self.nullable() && frame.column(self.name).is_err() {
            return Ok(());
        }
        let column = frame.column(self.name)?;
        let null = || polars_err!(ComputeError: "column `{}` holds a null", self.name);
        match self.access {
            Access::Str(_, set) => {
                for (row, v) in rows.iter_mut().zip(column.str()?.iter()) {
                    set(row, v.ok_or_else(null)?);
                }
            }
            Access::Named(_, set) => {
                for (row, v) in rows.iter_mut().zip(column.str()?.iter()) {
                    let v = v.ok_or_else(null)?;
                    set(row, v)
                        .ok_or_else(|| polars_err!(ComputeError: "column `{}`: unknown value `{v}`", self.name))?;
                }
            }
            Access::U32(_, set) => {
                for (row, v) in rows.iter_mut().zip(column.u32()?.iter()) {
                    set(row, v.ok_or_else(null)?);
                }
            }
            Access::OptU32(_, set) => {
                for (row, v) in rows.iter_mut().zip(column.u32()?.iter()) {
                    set(row, v);
                }
            }
            Access::U64(_, set) => {
                for (row, v) in rows.iter_mut().zip(column.u64()?.iter()) {
                    set(row, v.ok_or_else(null)?);
                }
            }
            Access::OptU64(_, set) => {
                for (row, v) in rows.iter_mut().zip(column.u64()?.iter()) {
                    set(row, v);
                }
            }
            Access::F64(_, set) => {
                for (row, v) in rows.iter_mut().zip(column.f64()?.iter()) {
                    set(row, v.ok_or_else(null)?);
                }
            }
            Access::OptF64(_, set) => {
                for (row, v) in rows.iter_mut().zip(column.f64()?.iter()) {
                    set(row, v);
                }
            }
            Access::Bool(_, set) => {
                for (row, v) in rows.iter_mut().zip(column.bool()?.iter()) {
                    set(row, v.ok_or_else(null)?);
                }
            }
            Access::OptBool(_, set) => {
                for (row, v) in rows.iter_mut().zip(column.bool()?.iter()) {
                    set(row, v);
                }
            }
        }
        Ok(())
    }
}

/// The row type of a table: one value per column of [`Row::COLUMNS`], in order (plus, for
/// `runs`, the dynamic `train.*` columns).
pub trait Row: Default + Sized + 'static {
    /// The table of these rows.
    const TABLE: Table;
    /// The fixed columns, in the order they are written.
    const COLUMNS: &'static [ColumnDef<Self>];

    /// Columns that depend on the rows, written after the fixed ones (none by default).
    fn dynamic_columns(_rows: &[Self]) -> PolarsResult<Vec<Column>> {
        Ok(Vec::new())
    }

    /// Reads the dynamic columns back into `rows` (nothing by default).
    fn read_dynamic_columns(_frame: &DataFrame, _rows: &mut [Self]) -> PolarsResult<()> {
        Ok(())
    }
}

/// The data frame of `rows`: the fixed columns, then the dynamic ones.
pub fn to_frame<R: Row>(rows: &[R]) -> PolarsResult<DataFrame> {
    let mut columns: Vec<Column> = R::COLUMNS.iter().map(|c| c.build(rows)).collect();
    columns.extend(R::dynamic_columns(rows)?);
    DataFrame::new(rows.len(), columns)
}

/// The rows of a data frame written by [`to_frame`].
pub fn from_frame<R: Row>(frame: &DataFrame) -> PolarsResult<Vec<R>> {
    let mut rows: Vec<R> = (0..frame.height()).map(|_| R::default()).collect();
    for column in R::COLUMNS {
        column.read(frame, &mut rows)?;
    }
    R::read_dynamic_columns(frame, &mut rows)?;
    Ok(rows)
}

/// A row of the `runs` table: one member of a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunRow {
    /// `<experiment>` or `<experiment>/<variant>`.
    pub run_id: String,
    /// The variant label (`base` without variants).
    pub label: String,
    /// Index of the member in `seeds`.
    pub member: u32,
    /// The member's seed.
    pub seed: u64,
    /// The backend.
    pub backend: String,
    /// The gradient path that ran.
    pub gradient: String,
    /// Layer widths `d_0-…-d_L`.
    pub dims: String,
    /// `L`.
    pub depth: u32,
    /// `η`.
    pub lr: f64,
    /// `B`.
    pub batch: u32,
    /// SGD steps.
    pub steps: u64,
    /// Label noise `σ`.
    pub sigma: f64,
    /// Initialisation scheme.
    pub init: String,
    /// Data source (TOML inline table).
    pub data: String,
    /// Teacher singular values, comma-separated.
    pub teacher_s: String,
    /// Teacher seed.
    pub teacher_seed: u64,
    /// The random-stream namespace of the initial weights (`train.streams`).
    pub namespace_init: u64,
    /// The random-stream namespace of the data, probe samples and clone batches.
    pub namespace_data: u64,
    /// `ok` or `diverged`.
    pub status: Status,
    /// Step at which the divergence was detected.
    pub diverged_at: Option<u64>,
    /// The diverged member's last step checked finite.
    pub last_finite_step: Option<u64>,
    /// Wall-clock training time of the run (all members together).
    pub wall_seconds: f64,
    /// Every training field of the spec but `seeds` as `(train.<dotted path>, value)`, sorted by
    /// path: the dynamic columns.
    pub train: Vec<(String, Scalar)>,
}

/// The value of a typed dynamic column (`train.<path>` of `runs`, `sweep_<key>` of a sweep's
/// tables): a TOML value as the Parquet type it reads as. Integers are `i64`, floats `f64`,
/// booleans `bool`, strings `str`; arrays and tables are `str` holding their TOML text
/// (`[2.0, 1.0]`).
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    /// An integer.
    I64(i64),
    /// A float.
    F64(f64),
    /// A boolean.
    Bool(bool),
    /// Text: a string, or the TOML text of an array or table.
    Str(String),
}

impl From<&toml::Value> for Scalar {
    fn from(value: &toml::Value) -> Self {
        match value {
            toml::Value::Integer(i) => Self::I64(*i),
            toml::Value::Float(f) => Self::F64(*f),
            toml::Value::Boolean(b) => Self::Bool(*b),
            toml::Value::String(s) => Self::Str(s.clone()),
            other => Self::Str(other.to_string()),
        }
    }
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::I64(v) => write!(f, "{v}"),
            Self::F64(v) => write!(f, "{v:?}"),
            Self::Bool(v) => write!(f, "{v}"),
            Self::Str(v) => f.write_str(v),
        }
    }
}

/// The one column type that holds all of `values`: `i64` when all are integers, `f64` when all
/// are numbers (integers widened), `bool` when all are booleans, else `str` (numbers and
/// booleans as their text). `None` values are nulls.
pub fn scalar_column(name: &str, values: &[Option<&Scalar>]) -> Column {
    let present = || values.iter().flatten();
    let name = name.into();
    if present().all(|v| matches!(v, Scalar::I64(_))) {
        let v: Vec<Option<i64>> =
            values.iter().map(|v| v.map(|s| if let Scalar::I64(i) = s { *i } else { 0 })).collect();
        Column::new(name, v)
    } else if present().all(|v| matches!(v, Scalar::I64(_) | Scalar::F64(_))) {
        let v: Vec<Option<f64>> = values
            .iter()
            .map(|v| {
                v.map(|s| match s {
                    Scalar::I64(i) => *i as f64,
                    Scalar::F64(f) => *f,
                    _ => f64::NAN,
                })
            })
            .collect();
        Column::new(name, v)
    } else if present().all(|v| matches!(v, Scalar::Bool(_))) {
        let v: Vec<Option<bool>> = values.iter().map(|v| v.map(|s| matches!(s, Scalar::Bool(true)))).collect();
        Column::new(name, v)
    } else {
        let v: Vec<Option<String>> = values.iter().map(|v| v.map(Scalar::to_string)).collect();
        Column::new(name, v)
    }
}

/// A column of `height` rows all holding `value`, of `value`'s type (also when `height` is 0).
pub fn constant_column(name: &str, value: &Scalar, height: usize) -> Column {
    let name = name.into();
    match value {
        Scalar::I64(v) => Column::new(name, vec![*v; height]),
        Scalar::F64(v) => Column::new(name, vec![*v; height]),
        Scalar::Bool(v) => Column::new(name, vec![*v; height]),
        Scalar::Str(v) => Column::new(name, vec![v.as_str(); height]),
    }
}

/// The values of a column written by [`scalar_column`] (`None` for nulls); an error names a
/// column of another type.
pub fn read_scalar_column(column: &Column) -> PolarsResult<Vec<Option<Scalar>>> {
    use polars::prelude::DataType;
    Ok(match column.dtype() {
        DataType::Int64 => column.i64()?.iter().map(|v| v.map(Scalar::I64)).collect(),
        DataType::Float64 => column.f64()?.iter().map(|v| v.map(Scalar::F64)).collect(),
        DataType::Boolean => column.bool()?.iter().map(|v| v.map(Scalar::Bool)).collect(),
        DataType::String => column.str()?.iter().map(|v| v.map(|s| Scalar::Str(s.to_string()))).collect(),
        other => {
            return Err(
                polars_err!(ComputeError: "column `{}` has type {other}, not i64, f64, bool or str", column.name()),
            );
        }
    })
}

impl RunRow {
    /// The prefix of the dynamic columns: one per training field of the spec,
    /// `train.<dotted path>`, typed (see [`Scalar`]; null in runs without the field).
    pub const TRAIN_PREFIX: &'static str = "train.";

    /// One row per member of `result`, with its divergence if it diverged.
    pub fn of(result: &RunResult) -> Vec<RunRow> {
        let plan = &result.plan;
        let p = plan.train.params();
        let mut train = Vec::new();
        let value = toml::Value::try_from(p).expect("train parameters serialise");
        flatten("train", &value, &mut train);
        train.retain(|(k, _)| k != "train.seeds");
        train.sort_by(|a, b| a.0.cmp(&b.0));
        let base = RunRow {
            run_id: plan.run_id.clone(),
            label: plan.label.clone(),
            backend: p.backend.to_string(),
            gradient: p.gradient.name().to_string(),
            dims: p.dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("-"),
            depth: (p.dims.len() - 1) as u32,
            lr: p.lr,
            batch: p.batch as u32,
            steps: p.steps,
            sigma: p.data.sigma,
            init: p.init.name().to_string(),
            data: toml::Value::try_from(p.data.source).map(|v| v.to_string()).unwrap_or_default(),
            teacher_s: plan.train.teacher().s().iter().map(|v| format!("{v}")).collect::<Vec<_>>().join(","),
            teacher_seed: p.teacher.seed,
            namespace_init: p.streams.init,
            namespace_data: p.streams.data,
            wall_seconds: result.wall_seconds,
            train,
            ..RunRow::default()
        };
        p.seeds
            .iter()
            .enumerate()
            .map(|(m, &seed)| {
                let d: Option<&Divergence> = result.divergences.iter().find(|d| d.member == m);
                RunRow {
                    member: m as u32,
                    seed,
                    status: if d.is_some() { Status::Diverged } else { Status::Ok },
                    diverged_at: d.map(|d| d.step),
                    last_finite_step: d.map(|d| d.last_finite_step),
                    ..base.clone()
                }
            })
            .collect()
    }
}

/// Flattens a TOML value into `(dotted path, value)` pairs (arrays stay whole, as text).
fn flatten(prefix: &str, value: &toml::Value, out: &mut Vec<(String, Scalar)>) {
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t {
                flatten(&format!("{prefix}.{k}"), v, out);
            }
        }
        other => out.push((prefix.to_string(), Scalar::from(other))),
    }
}

impl Row for RunRow {
    const TABLE: Table = Table::Runs;
    const COLUMNS: &'static [ColumnDef<Self>] = &[
        ColumnDef { name: "run_id", access: Access::Str(|r| &r.run_id, |r, v| r.run_id = v.into()) },
        ColumnDef { name: "label", access: Access::Str(|r| &r.label, |r, v| r.label = v.into()) },
        ColumnDef { name: "member", access: Access::U32(|r| r.member, |r, v| r.member = v) },
        ColumnDef { name: "seed", access: Access::U64(|r| r.seed, |r, v| r.seed = v) },
        ColumnDef { name: "backend", access: Access::Str(|r| &r.backend, |r, v| r.backend = v.into()) },
        ColumnDef { name: "gradient", access: Access::Str(|r| &r.gradient, |r, v| r.gradient = v.into()) },
        ColumnDef { name: "dims", access: Access::Str(|r| &r.dims, |r, v| r.dims = v.into()) },
        ColumnDef { name: "depth", access: Access::U32(|r| r.depth, |r, v| r.depth = v) },
        ColumnDef { name: "lr", access: Access::F64(|r| r.lr, |r, v| r.lr = v) },
        ColumnDef { name: "batch", access: Access::U32(|r| r.batch, |r, v| r.batch = v) },
        ColumnDef { name: "steps", access: Access::U64(|r| r.steps, |r, v| r.steps = v) },
        ColumnDef { name: "sigma", access: Access::F64(|r| r.sigma, |r, v| r.sigma = v) },
        ColumnDef { name: "init", access: Access::Str(|r| &r.init, |r, v| r.init = v.into()) },
        ColumnDef { name: "data", access: Access::Str(|r| &r.data, |r, v| r.data = v.into()) },
        ColumnDef { name: "teacher_s", access: Access::Str(|r| &r.teacher_s, |r, v| r.teacher_s = v.into()) },
        ColumnDef { name: "teacher_seed", access: Access::U64(|r| r.teacher_seed, |r, v| r.teacher_seed = v) },
        ColumnDef { name: "namespace_init", access: Access::U64(|r| r.namespace_init, |r, v| r.namespace_init = v) },
        ColumnDef { name: "namespace_data", access: Access::U64(|r| r.namespace_data, |r, v| r.namespace_data = v) },
        ColumnDef {
            name: "status",
            access: Access::Named(|r| r.status.name(), |r, v| Status::from_name(v).map(|s| r.status = s)),
        },
        ColumnDef { name: "diverged_at", access: Access::OptU64(|r| r.diverged_at, |r, v| r.diverged_at = v) },
        ColumnDef {
            name: "last_finite_step",
            access: Access::OptU64(|r| r.last_finite_step, |r, v| r.last_finite_step = v),
        },
        ColumnDef { name: "wall_seconds", access: Access::F64(|r| r.wall_seconds, |r, v| r.wall_seconds = v) },
    ];

    /// The `train.*` columns: every path of any row, sorted, null in rows without it.
    fn dynamic_columns(rows: &[Self]) -> PolarsResult<Vec<Column>> {
        let mut keys: Vec<&str> = rows.iter().flat_map(|r| r.train.iter().map(|(k, _)| k.as_str())).collect();
        keys.sort();
        keys.dedup();
        Ok(keys
            .into_iter()
            .map(|key| {
                let values: Vec<Option<&Scalar>> =
                    rows.iter().map(|r| r.train.iter().find(|(k, _)| k == key).map(|(_, v)| v)).collect();
                scalar_column(key, &values)
            })
            .collect())
    }

    fn read_dynamic_columns(frame: &DataFrame, rows: &mut [Self]) -> PolarsResult<()> {
        for column in frame.columns() {
            let name = column.name().as_str();
            if !name.starts_with(Self::TRAIN_PREFIX) {
                continue;
            }
            for (row, v) in rows.iter_mut().zip(read_scalar_column(column)?) {
                if let Some(v) = v {
                    row.train.push((name.to_string(), v));
                }
            }
        }
        Ok(())
    }
}

/// A row of the `trajectories` table: one probe of one mode of one member.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrajectoryRow {
    /// The run.
    pub run_id: String,
    /// Index of the member in `seeds`.
    pub member: u32,
    /// The member's seed.
    pub seed: u64,
    /// SGD steps taken.
    pub step: u64,
    /// `t = η · step`.
    pub t: f64,
    /// Mode index (0-based).
    pub k: u32,
    /// The mode's singular value.
    pub s_k: f64,
    /// Mode strength `u_kᵀ W v_k`.
    pub m_k: f64,
    /// Mode drift.
    pub drift: f64,
    /// Mode diffusion `D_k` (NaN where not measured).
    pub diffusion: f64,
    /// The model-free drift `mean_c(Δm_k)/η` of the cloned one-step increments (`None`
    /// without clones, `train.n_clones = 0`).
    pub drift_clones: Option<f64>,
    /// The model-free diffusion `Var_c(Δm_k)/η` of the cloned one-step increments (`None`
    /// without clones).
    pub diffusion_clones: Option<f64>,
    /// The standard error of `diffusion_clones` (`None` without clones).
    pub diffusion_clones_se: Option<f64>,
    /// Population loss.
    pub loss: f64,
    /// Alignment error (in-block, off-diagonal).
    pub alignment_error: f64,
    /// Mass of `W` outside the teacher's singular block, `‖W − P_U W P_V‖_F / ‖W‖_F`.
    pub alignment_outside: f64,
    /// Full alignment error `‖W − U diag(m) Vᵀ‖_F / ‖W‖_F`.
    pub alignment_full: f64,
    /// The network's own `k`-th singular value `σ_k(W)`.
    pub sigma_k: f64,
    /// `(u_kᵀ û_k)(v̂_kᵀ v_k)`: the overlap of the network's `k`-th singular pair with the teacher's.
    pub sigma_overlap: f64,
    /// Balance `Σ_l ‖W_{l+1}ᵀW_{l+1} − W_lW_lᵀ‖_F`.
    pub balance: f64,
    /// Balance relative to `Σ_l ‖W_lW_lᵀ‖_F`.
    pub balance_relative: f64,
}

impl TrajectoryRow {
    /// The rows of `result`: per probe record, one per mode.
    pub fn of(result: &RunResult) -> Vec<TrajectoryRow> {
        let s = result.plan.train.teacher().s();
        let mut rows = Vec::with_capacity(result.records.len() * s.len());
        for rec in &result.records {
            let p = &rec.probe;
            for (k, &s_k) in s.iter().enumerate() {
                rows.push(TrajectoryRow {
                    run_id: result.plan.run_id.clone(),
                    member: rec.member as u32,
                    seed: rec.seed,
                    step: rec.step,
                    t: rec.t,
                    k: k as u32,
                    s_k,
                    m_k: p.mode_strength[k],
                    drift: p.mode_drift[k],
                    diffusion: p.mode_diffusion.get(k).copied().unwrap_or(f64::NAN),
                    drift_clones: p.drift_clones.as_ref().and_then(|c| finite(*c.get(k)?)),
                    diffusion_clones: p.diffusion_clones.as_ref().and_then(|c| finite(*c.get(k)?)),
                    diffusion_clones_se: p.diffusion_clones_se.as_ref().and_then(|c| finite(*c.get(k)?)),
                    loss: p.population_loss,
                    alignment_error: p.alignment_error,
                    alignment_outside: p.alignment_outside,
                    alignment_full: p.alignment_full,
                    sigma_k: p.singular_values.get(k).copied().unwrap_or(f64::NAN),
                    sigma_overlap: p.singular_overlap.get(k).copied().unwrap_or(f64::NAN),
                    balance: p.balance_total,
                    balance_relative: p.balance_relative,
                });
            }
        }
        rows
    }
}

impl Row for TrajectoryRow {
    const TABLE: Table = Table::Trajectories;
    const COLUMNS: &'static [ColumnDef<Self>] = &[
        ColumnDef { name: "run_id", access: Access::Str(|r| &r.run_id, |r, v| r.run_id = v.into()) },
        ColumnDef { name: "member", access: Access::U32(|r| r.member, |r, v| r.member = v) },
        ColumnDef { name: "seed", access: Access::U64(|r| r.seed, |r, v| r.seed = v) },
        ColumnDef { name: "step", access: Access::U64(|r| r.step, |r, v| r.step = v) },
        ColumnDef { name: "t", access: Access::F64(|r| r.t, |r, v| r.t = v) },
        ColumnDef { name: "k", access: Access::U32(|r| r.k, |r, v| r.k = v) },
        ColumnDef { name: "s_k", access: Access::F64(|r| r.s_k, |r, v| r.s_k = v) },
        ColumnDef { name: "m_k", access: Access::F64(|r| r.m_k, |r, v| r.m_k = v) },
        ColumnDef { name: "drift", access: Access::F64(|r| r.drift, |r, v| r.drift = v) },
        ColumnDef { name: "diffusion", access: Access::F64(|r| r.diffusion, |r, v| r.diffusion = v) },
        ColumnDef { name: "drift_clones", access: Access::OptF64(|r| r.drift_clones, |r, v| r.drift_clones = v) },
        ColumnDef {
            name: "diffusion_clones",
            access: Access::OptF64(|r| r.diffusion_clones, |r, v| r.diffusion_clones = v),
        },
        ColumnDef {
            name: "diffusion_clones_se",
            access: Access::OptF64(|r| r.diffusion_clones_se, |r, v| r.diffusion_clones_se = v),
        },
        ColumnDef { name: "loss", access: Access::F64(|r| r.loss, |r, v| r.loss = v) },
        ColumnDef { name: "alignment_error", access: Access::F64(|r| r.alignment_error, |r, v| r.alignment_error = v) },
        ColumnDef {
            name: "alignment_outside",
            access: Access::F64(|r| r.alignment_outside, |r, v| r.alignment_outside = v),
        },
        ColumnDef { name: "alignment_full", access: Access::F64(|r| r.alignment_full, |r, v| r.alignment_full = v) },
        ColumnDef { name: "sigma_k", access: Access::F64(|r| r.sigma_k, |r, v| r.sigma_k = v) },
        ColumnDef { name: "sigma_overlap", access: Access::F64(|r| r.sigma_overlap, |r, v| r.sigma_overlap = v) },
        ColumnDef { name: "balance", access: Access::F64(|r| r.balance, |r, v| r.balance = v) },
        ColumnDef {
            name: "balance_relative",
            access: Access::F64(|r| r.balance_relative, |r, v| r.balance_relative = v),
        },
    ];
}

/// A row of the `theory` table: one point of an overlay of one mode of one run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TheoryRow {
    /// The run.
    pub run_id: String,
    /// Mode index (0-based).
    pub k: u32,
    /// The member of a per-member overlay (the reference); `None` for ensemble overlays.
    pub member: Option<u32>,
    /// Which overlay.
    pub overlay: Overlay,
    /// Time (`None` for densities).
    pub t: Option<f64>,
    /// Mode strength of a density point (`None` for trajectories).
    pub w: Option<f64>,
    /// `w(t)` (flow), ensemble mean, or density.
    pub value: f64,
    /// Ensemble variance of `w` (`None` unless an ensemble).
    pub variance: Option<f64>,
    /// The initial strength the overlays start from.
    pub w0: f64,
    /// How `w0` was chosen.
    pub w0_rule: String,
    /// The time step of an ensemble (`η` for the chain, the accepted or fixed step of the
    /// SDE); `None` for other overlays.
    pub dt: Option<f64>,
    /// Whether the refined SDE met its tolerance (`None` unless a refined `sde` row).
    pub sde_converged: Option<bool>,
}

impl Row for TheoryRow {
    const TABLE: Table = Table::Theory;
    const COLUMNS: &'static [ColumnDef<Self>] = &[
        ColumnDef { name: "run_id", access: Access::Str(|r| &r.run_id, |r, v| r.run_id = v.into()) },
        ColumnDef { name: "k", access: Access::U32(|r| r.k, |r, v| r.k = v) },
        ColumnDef { name: "member", access: Access::OptU32(|r| r.member, |r, v| r.member = v) },
        ColumnDef {
            name: "overlay",
            access: Access::Named(|r| r.overlay.name(), |r, v| Overlay::from_name(v).map(|o| r.overlay = o)),
        },
        ColumnDef { name: "t", access: Access::OptF64(|r| r.t, |r, v| r.t = v) },
        ColumnDef { name: "w", access: Access::OptF64(|r| r.w, |r, v| r.w = v) },
        ColumnDef { name: "value", access: Access::F64(|r| r.value, |r, v| r.value = v) },
        ColumnDef { name: "variance", access: Access::OptF64(|r| r.variance, |r, v| r.variance = v) },
        ColumnDef { name: "w0", access: Access::F64(|r| r.w0, |r, v| r.w0 = v) },
        ColumnDef { name: "w0_rule", access: Access::Str(|r| &r.w0_rule, |r, v| r.w0_rule = v.into()) },
        ColumnDef { name: "dt", access: Access::OptF64(|r| r.dt, |r, v| r.dt = v) },
        ColumnDef { name: "sde_converged", access: Access::OptBool(|r| r.sde_converged, |r, v| r.sde_converged = v) },
    ];
}

/// A row of the `summary` table: one verdict. `docs/theory.md` §9 gives, per quantity, the
/// prediction, the statistic over seeds, the tolerance and the negative control.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verdict {
    /// The run.
    pub run_id: String,
    /// The claim.
    pub claim: Claim,
    /// Mode index (0-based).
    pub k: usize,
    /// What is compared.
    pub quantity: Quantity,
    /// The theory's value, from the theory and the initial state only.
    pub predicted: f64,
    /// The measured value: the statistic over seeds (a mean of per-seed values, a fitted rate,
    /// a pooled distance).
    pub measured: f64,
    /// Lower end of the 95% confidence interval of `measured` (NaN where the rule uses none).
    pub ci_low: f64,
    /// Upper end of that interval.
    pub ci_high: f64,
    /// Number of seeds (or effective samples, for the distances) behind `measured`.
    pub n: u32,
    /// The model tolerance, relative to `|predicted|` (or the critical value of a distance).
    pub tolerance: f64,
    /// The rule, in words.
    pub criterion: String,
    /// Whether the verdict holds by its rule.
    pub holds: bool,
    /// Whether the run is a variant marked as a negative control in its spec.
    pub control: bool,
    /// What the theory expects: `hold`, or `fail` where a premise is violated.
    pub expected: Expected,
    /// The violated premise behind an expected failure (empty when every premise holds).
    pub premise: String,
}

impl Verdict {
    /// Whether the outcome is the one the theory expects.
    pub fn as_expected(&self) -> bool {
        self.holds == (self.expected == Expected::Hold)
    }
}

impl Row for Verdict {
    const TABLE: Table = Table::Summary;
    const COLUMNS: &'static [ColumnDef<Self>] = &[
        ColumnDef { name: "run_id", access: Access::Str(|r| &r.run_id, |r, v| r.run_id = v.into()) },
        ColumnDef {
            name: "claim",
            access: Access::Named(|r| r.claim.name(), |r, v| Claim::from_name(v).map(|c| r.claim = c)),
        },
        ColumnDef { name: "k", access: Access::U32(|r| r.k as u32, |r, v| r.k = v as usize) },
        ColumnDef {
            name: "quantity",
            access: Access::Named(|r| r.quantity.name(), |r, v| Quantity::from_name(v).map(|q| r.quantity = q)),
        },
        // Undefined values (NaN, e.g. no predicted peak, or the interval of a KS distance) are
        // written as null, never as NaN.
        ColumnDef {
            name: "predicted",
            access: Access::OptF64(|r| finite(r.predicted), |r, v| r.predicted = v.unwrap_or(f64::NAN)),
        },
        ColumnDef {
            name: "measured",
            access: Access::OptF64(|r| finite(r.measured), |r, v| r.measured = v.unwrap_or(f64::NAN)),
        },
        ColumnDef {
            name: "ci_low",
            access: Access::OptF64(|r| finite(r.ci_low), |r, v| r.ci_low = v.unwrap_or(f64::NAN)),
        },
        ColumnDef {
            name: "ci_high",
            access: Access::OptF64(|r| finite(r.ci_high), |r, v| r.ci_high = v.unwrap_or(f64::NAN)),
        },
        ColumnDef { name: "n", access: Access::U32(|r| r.n, |r, v| r.n = v) },
        ColumnDef { name: "tolerance", access: Access::F64(|r| r.tolerance, |r, v| r.tolerance = v) },
        ColumnDef { name: "criterion", access: Access::Str(|r| &r.criterion, |r, v| r.criterion = v.into()) },
        ColumnDef { name: "holds", access: Access::Bool(|r| r.holds, |r, v| r.holds = v) },
        ColumnDef { name: "control", access: Access::Bool(|r| r.control, |r, v| r.control = v) },
        ColumnDef {
            name: "expected",
            access: Access::Named(|r| r.expected.name(), |r, v| Expected::from_name(v).map(|e| r.expected = e)),
        },
        ColumnDef { name: "premise", access: Access::Str(|r| &r.premise, |r, v| r.premise = v.into()) },
    ];
}

/// `v` when it is finite: a value written to a nullable column, where NaN and infinity become
/// null.
fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// The fixed columns of `table` as `(name, type, nullable)`, for documentation checks.
pub fn columns_of(table: Table) -> Vec<(&'static str, &'static str, bool)> {
    fn list<R: Row>() -> Vec<(&'static str, &'static str, bool)> {
        R::COLUMNS.iter().map(|c| (c.name, c.type_name(), c.nullable())).collect()
    }
    match table {
        Table::Runs => list::<RunRow>(),
        Table::Trajectories => list::<TrajectoryRow>(),
        Table::Theory => list::<TheoryRow>(),
        Table::DoseResponse => list::<crate::dose::DoseRow>(),
        Table::Scaling => list::<crate::scaling::ScalingRow>(),
        Table::ScalingPoints => list::<crate::scaling::PointRow>(),
        Table::Summary => list::<Verdict>(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ExperimentSpec;
    use crate::io::{read_parquet, read_rows, write_parquet_atomic};

    /// Writes `rows` to Parquet in a temporary directory and reads them back.
    fn round_trip<R: Row>(rows: &[R]) -> (DataFrame, Vec<R>) {
        let dir = tempfile::tempdir().unwrap();
        let path = R::TABLE.path_in(dir.path());
        write_parquet_atomic(&mut to_frame(rows).unwrap(), &path).unwrap();
        (read_parquet(&path).unwrap(), read_rows(&path).unwrap())
    }

    /// The frame's columns as `(name, type)`, types as `data/README.md` names them.
    fn schema(frame: &DataFrame) -> Vec<(String, String)> {
        frame
            .columns()
            .iter()
            .map(|c| {
                let t = match c.dtype() {
                    polars::prelude::DataType::String => "str".to_string(),
                    polars::prelude::DataType::UInt32 => "u32".to_string(),
                    polars::prelude::DataType::UInt64 => "u64".to_string(),
                    polars::prelude::DataType::Int64 => "i64".to_string(),
                    polars::prelude::DataType::Float64 => "f64".to_string(),
                    polars::prelude::DataType::Boolean => "bool".to_string(),
                    other => format!("{other:?}"),
                };
                (c.name().to_string(), t)
            })
            .collect()
    }

    /// The fixed columns of `R` as `(name, type)`.
    fn declared<R: Row>() -> Vec<(String, String)> {
        R::COLUMNS.iter().map(|c| (c.name.to_string(), c.type_name().to_string())).collect()
    }

    fn run_row(member: u32, train: &[(&str, Scalar)]) -> RunRow {
        RunRow {
            run_id: "exp/lr=0.1".into(),
            label: "lr=0.1".into(),
            member,
            seed: 10 + u64::from(member),
            backend: "flex".into(),
            gradient: "fused".into(),
            dims: "4-6-4".into(),
            depth: 2,
            lr: 0.1,
            batch: 8,
            steps: 300,
            sigma: 0.25,
            init: "gaussian".into(),
            data: "{ kind = \"gaussian\" }".into(),
            teacher_s: "2,1".into(),
            teacher_seed: 7,
            namespace_init: 2,
            namespace_data: 3,
            status: if member == 1 { Status::Diverged } else { Status::Ok },
            diverged_at: (member == 1).then_some(120),
            last_finite_step: (member == 1).then_some(100),
            wall_seconds: 1.5,
            train: train.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
        }
    }

    #[test]
    fn runs_round_trip_with_nulls_and_dynamic_train_columns() {
        let text = |s: &str| Scalar::Str(s.into());
        let rows = vec![
            run_row(
                0,
                &[
                    ("train.dims", text("[4, 6, 4]")),
                    ("train.init.kind", text("gaussian")),
                    ("train.lr", Scalar::F64(0.1)),
                    ("train.steps", Scalar::I64(300)),
                ],
            ),
            run_row(
                1,
                &[
                    ("train.dims", text("[4, 6, 4]")),
                    ("train.init.gamma", Scalar::F64(0.5)),
                    ("train.lr", Scalar::F64(0.1)),
                    ("train.steps", Scalar::I64(30)),
                ],
            ),
        ];
        let (frame, back) = round_trip(&rows);
        // The fixed columns in their order, then the union of the train.* paths, sorted, typed.
        let mut expected = declared::<RunRow>();
        for (k, t) in [
            ("train.dims", "str"),
            ("train.init.gamma", "f64"),
            ("train.init.kind", "str"),
            ("train.lr", "f64"),
            ("train.steps", "i64"),
        ] {
            expected.push((k.into(), t.into()));
        }
        assert_eq!(schema(&frame), expected);
        let gamma: Vec<Option<f64>> = frame.column("train.init.gamma").unwrap().f64().unwrap().iter().collect();
        assert_eq!(gamma, [None, Some(0.5)], "null in a run without the field");
        let at: Vec<Option<u64>> = frame.column("diverged_at").unwrap().u64().unwrap().iter().collect();
        assert_eq!(at, [None, Some(120)]);
        let status: Vec<Option<&str>> = frame.column("status").unwrap().str().unwrap().iter().collect();
        assert_eq!(status, [Some("ok"), Some("diverged")]);
        // Read back, each row's train pairs come in column (sorted) order.
        let mut sorted = rows.clone();
        for r in &mut sorted {
            r.train.sort_by(|a, b| a.0.cmp(&b.0));
        }
        assert_eq!(back, sorted);
    }

    #[test]
    fn trajectories_theory_and_summary_round_trip() {
        let traj = vec![
            TrajectoryRow {
                run_id: "a".into(),
                member: 1,
                seed: u64::MAX,
                step: 30,
                t: 0.3,
                k: 1,
                s_k: 1.0,
                m_k: 0.25,
                drift: -1e-300,
                diffusion: 3e-7,
                drift_clones: Some(-2e-3),
                diffusion_clones: Some(2.9e-7),
                diffusion_clones_se: None,
                loss: 0.5,
                alignment_error: 1e-3,
                alignment_outside: 2e-3,
                alignment_full: 4e-3,
                sigma_k: 0.26,
                sigma_overlap: -0.99,
                balance: 2.0,
                balance_relative: 0.1,
            },
            TrajectoryRow { run_id: "b".into(), ..TrajectoryRow::default() },
        ];
        let (frame, back) = round_trip(&traj);
        assert_eq!(schema(&frame), declared::<TrajectoryRow>());
        assert_eq!(back, traj);

        let theory = vec![
            TheoryRow {
                run_id: "a".into(),
                k: 0,
                member: None,
                overlay: Overlay::Sde,
                t: Some(0.5),
                w: None,
                value: 0.7,
                variance: Some(1e-4),
                w0: 1e-3,
                w0_rule: "exact a0^L".into(),
                dt: Some(0.0125),
                sde_converged: Some(true),
            },
            TheoryRow {
                run_id: "a".into(),
                k: 1,
                member: Some(3),
                overlay: Overlay::Reference,
                t: None,
                w: Some(0.9),
                value: 2.5,
                variance: None,
                w0: 1e-3,
                w0_rule: "fitted".into(),
                dt: None,
                sde_converged: None,
            },
        ];
        let (frame, back) = round_trip(&theory);
        assert_eq!(schema(&frame), declared::<TheoryRow>());
        let overlay: Vec<Option<&str>> = frame.column("overlay").unwrap().str().unwrap().iter().collect();
        assert_eq!(overlay, [Some("sde"), Some("reference")]);
        let member: Vec<Option<u32>> = frame.column("member").unwrap().u32().unwrap().iter().collect();
        assert_eq!(member, [None, Some(3)], "null for an ensemble overlay, the member for the reference");
        assert_eq!(back, theory);

        let verdicts: Vec<Verdict> = Claim::ALL
            .iter()
            .zip(Quantity::ALL)
            .enumerate()
            .map(|(i, (&claim, &quantity))| Verdict {
                run_id: format!("run{i}"),
                claim,
                k: i,
                quantity,
                predicted: i as f64,
                measured: 0.5,
                ci_low: 0.25,
                ci_high: 0.75,
                n: 16,
                tolerance: 1e-3,
                criterion: "pred in CI".into(),
                holds: i % 2 == 0,
                control: i == 3,
                expected: if i == 3 { Expected::Fail } else { Expected::Hold },
                premise: if i == 3 { "control: a large start".into() } else { String::new() },
            })
            .collect();
        let (frame, back) = round_trip(&verdicts);
        assert_eq!(schema(&frame), declared::<Verdict>());
        let claims: Vec<Option<&str>> = frame.column("claim").unwrap().str().unwrap().iter().collect();
        assert_eq!(
            claims,
            [
                Some("1 peak before learned"),
                Some("2 Dirac law"),
                Some("3 Boltzmann law"),
                Some("SDE vs SGD"),
                Some("scaling laws")
            ]
        );
        assert_eq!(back, verdicts);
        // No rows: the same columns and types, nothing in them.
        let (frame, back) = round_trip::<Verdict>(&[]);
        assert_eq!(schema(&frame), declared::<Verdict>());
        assert!(back.is_empty());
    }

    #[test]
    fn names_are_the_strings_written_to_parquet() {
        let names = |all: &[&'static str]| all.to_vec();
        assert_eq!(
            names(&Claim::ALL.iter().map(|c| c.name()).collect::<Vec<_>>()),
            ["1 peak before learned", "2 Dirac law", "3 Boltzmann law", "SDE vs SGD", "scaling laws"]
        );
        assert_eq!(
            names(&Overlay::ALL.iter().map(|o| o.name()).collect::<Vec<_>>()),
            [
                "gradient_flow",
                "gradient_flow_fitted",
                "reference",
                "reference_diffusion",
                "sde",
                "sde_fixed_step",
                "chain",
                "diffusion_gradient_flow",
                "stationary_density",
                "boltzmann",
                "mean_departure_sde",
                "mean_departure_sde_no_ito",
                "mean_departure_chain",
            ]
        );
        assert_eq!(
            names(&Quantity::ALL.iter().map(|q| q.name()).collect::<Vec<_>>()),
            [
                "t_learned",
                "t_peak",
                "w_at_peak",
                "d_max",
                "peak_before_learned",
                "global_max_before_learned",
                "diffusion_clones_over_exact",
                "mean_over_s",
                "msd_decay_rate",
                "variance_over_T",
                "ks_to_exact_density",
                "ks_to_boltzmann",
                "final_mean_chain",
                "final_variance_chain",
                "final_mean_sde",
                "final_variance_sde",
                "breakdown_lr_sde",
                "breakdown_lr_chain",
                "exponent_lr",
                "exponent_batch",
                "exponent_sigma",
                "exponent_s",
                "exponent_depth"
            ]
        );
        assert_eq!(names(&Expected::ALL.iter().map(|e| e.name()).collect::<Vec<_>>()), ["hold", "fail"]);
        for q in Quantity::ALL {
            assert_eq!(Quantity::from_name(q.name()), Some(*q));
        }
        assert_eq!(Claim::from_name("2 dirac law"), None, "names are exact");
        assert_eq!(format!("[{:<6}]", Status::Ok), "[ok    ]", "Display pads like a string");
    }

    #[test]
    fn tables_are_written_summary_last_at_their_paths() {
        assert_eq!(
            Table::ALL,
            [
                Table::Runs,
                Table::Trajectories,
                Table::Theory,
                Table::DoseResponse,
                Table::Scaling,
                Table::ScalingPoints,
                Table::Summary
            ]
        );
        assert_eq!(Table::PER_RUN.to_vec(), Table::ALL.iter().copied().filter(|t| t.per_run()).collect::<Vec<_>>());
        assert!(!Table::Scaling.per_run() && !Table::ScalingPoints.per_run());
        let dir = Path::new("out");
        assert_eq!(Table::Theory.path_in(dir), Path::new("out/theory.parquet"));
        assert_eq!(Table::Summary.partition(dir, 3), Path::new("out/summary/run_index=3"));
        assert_eq!(Table::Runs.part_path(dir, 12), Path::new("out/runs/run_index=12/part.parquet"));
    }

    #[test]
    fn reading_names_the_column_at_fault() {
        let frame = to_frame(&[Verdict::default()]).unwrap();
        let mut bad = frame.clone();
        bad.with_column(Column::new("claim".into(), ["4 new claim"])).unwrap();
        let err = from_frame::<Verdict>(&bad).unwrap_err().to_string();
        assert!(err.contains("column `claim`: unknown value `4 new claim`"), "{err}");
        let mut null = frame.clone();
        null.with_column(Column::new("holds".into(), [None::<bool>])).unwrap();
        let err = from_frame::<Verdict>(&null).unwrap_err().to_string();
        assert!(err.contains("column `holds` holds a null"), "{err}");
        // An undefined verdict value is written as null and read back as NaN.
        let undefined = Verdict { predicted: f64::NAN, measured: f64::INFINITY, ..Verdict::default() };
        let written = to_frame(std::slice::from_ref(&undefined)).unwrap();
        assert_eq!(written.column("predicted").unwrap().null_count(), 1);
        assert_eq!(written.column("measured").unwrap().null_count(), 1);
        let back = from_frame::<Verdict>(&written).unwrap();
        assert!(back[0].predicted.is_nan() && back[0].measured.is_nan());
        let missing = frame.drop("holds").unwrap();
        let err = from_frame::<Verdict>(&missing).unwrap_err().to_string();
        assert!(err.contains("holds"), "{err}");
        // A nullable column added later (last_finite_step) reads as null from an older file.
        let row = RunRow { diverged_at: Some(9), last_finite_step: Some(8), ..RunRow::default() };
        let older = to_frame(std::slice::from_ref(&row)).unwrap().drop("last_finite_step").unwrap();
        let back = from_frame::<RunRow>(&older).unwrap();
        assert_eq!(back, [RunRow { last_finite_step: None, ..row }]);
        let mut retyped = frame;
        retyped.with_column(Column::new("k".into(), [1.0f64])).unwrap();
        assert!(from_frame::<Verdict>(&retyped).is_err(), "a column of another type is refused");
    }

    /// The columns `data/README.md` documents for `table`, as `(name, type, nullable)` in order:
    /// from the Markdown table under the heading `` ### `<table>.parquet` ``, whose first cell
    /// names one or more columns in backticks and whose second gives their type (one for all) or
    /// as many types separated by commas, each noted `(null …)` where it may be null.
    fn documented(readme: &str, table: Table) -> Vec<(String, String, bool)> {
        let heading = format!("### `{}`", table.file_name());
        let start = readme.find(&heading).unwrap_or_else(|| panic!("data/README.md has no section {heading}"));
        let rows = readme[start..]
            .lines()
            .skip(1)
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .skip(2); // the header and the separator
        let mut out = Vec::new();
        for line in rows {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            let names: Vec<&str> = cells[0].split('`').skip(1).step_by(2).collect();
            let mut types: Vec<&str> = cells[1].split(',').map(str::trim).collect();
            if types.len() == 1 {
                types = vec![types[0]; names.len()];
            }
            assert_eq!(names.len(), types.len(), "one type, or as many types as columns: {line}");
            for (name, ty) in names.into_iter().zip(types) {
                let (ty, note) = ty.split_once(' ').unwrap_or((ty, ""));
                out.push((name.to_string(), ty.to_string(), note.contains("null")));
            }
        }
        out
    }

    #[test]
    fn the_readme_documents_exactly_each_tables_columns() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../data/README.md")).unwrap();
        for &table in Table::ALL {
            let mut documented = documented(&readme, table);
            if table == Table::Runs {
                let pattern = format!("{}<path>", RunRow::TRAIN_PREFIX);
                assert_eq!(
                    documented.pop(),
                    Some((pattern, "typed".into(), true)),
                    "the runs table ends with its dynamic train.* columns"
                );
            }
            let declared: Vec<(String, String, bool)> =
                columns_of(table).into_iter().map(|(n, t, null)| (n.into(), t.into(), null)).collect();
            assert_eq!(documented, declared, "data/README.md on the {table} table");
        }
    }

    #[test]
    fn run_rows_carry_the_divergence_record_and_every_train_field() {
        let spec = ExperimentSpec::from_toml(
            r#"
name = "tiny"
[train]
dims = [4, 6, 4]
lr = 0.05
batch = 8
steps = 300
seeds = [5, 6, 7]
[train.teacher.spectrum]
kind = "list"
s = [2.0, 1.0]
[train.init]
kind = "aligned-balanced"
a0 = 0.1
"#,
            &[],
        )
        .unwrap();
        let plan = spec.check().unwrap().plans()[0].clone();
        let divergence = Divergence { member: 2, seed: 7, step: 90, last_finite_step: 80 };
        let result =
            RunResult { plan, records: vec![], divergences: vec![divergence], wall_seconds: 2.0, probe_seconds: 0.5 };
        let rows = RunRow::of(&result);
        assert_eq!(rows.iter().map(|r| (r.member, r.seed)).collect::<Vec<_>>(), [(0, 5), (1, 6), (2, 7)]);
        assert_eq!(rows.iter().map(|r| r.status).collect::<Vec<_>>(), [Status::Ok, Status::Ok, Status::Diverged]);
        assert_eq!((rows[2].diverged_at, rows[2].last_finite_step), (Some(90), Some(80)));
        assert_eq!((rows[0].diverged_at, rows[0].last_finite_step), (None, None));
        assert_eq!((rows[0].depth, rows[0].dims.as_str(), rows[0].teacher_s.as_str()), (2, "4-6-4", "2,1"));
        let train: Vec<&str> = rows[0].train.iter().map(|(k, _)| k.as_str()).collect();
        assert!(train.contains(&"train.lr") && train.contains(&"train.init.a0"), "{train:?}");
        assert!(!train.contains(&"train.seeds"), "the seeds are the member rows");
        assert!(train.is_sorted());
        let field = |key: &str| rows[0].train.iter().find(|(k, _)| k == key).unwrap().1.clone();
        assert_eq!(field("train.init.kind"), Scalar::Str("aligned-balanced".into()));
        assert_eq!((field("train.lr"), field("train.steps")), (Scalar::F64(0.05), Scalar::I64(300)));
        assert_eq!(field("train.dims"), Scalar::Str("[4, 6, 4]".into()), "arrays as their TOML text");
    }
}
