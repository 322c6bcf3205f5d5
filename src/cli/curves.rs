//! `modewise theory gf|sde|chain --t-grid START:STOP:N`: a mode's curves on a time grid as a
//! table (CSV or JSON lines), each row echoing the inputs, so the overlays of `theory.parquet`
//! can be reproduced without the Rust API.

use std::fmt;
use std::io::Write;
use std::str::FromStr;

use anyhow::Context;
use clap::{Args, ValueEnum};
use modewise_theory::refine::{DEFAULT_MAX_HALVINGS, MAX_HALVINGS};
use modewise_theory::{Dynamics, EnsembleParams, EnsembleStats, InvalidParameter, Mode, RefineParams, TimeGrid};
use serde_json::{Map, Value, json};

use super::theory::{SgdArgs, TeacherArgs};
use super::typed;

/// A linear time grid `START:STOP:N`: `N` times from `START` to `STOP`, both included.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TGrid {
    /// First time (`≥ 0`).
    pub start: f64,
    /// Last time (`> start`).
    pub stop: f64,
    /// Number of times (`≥ 2`).
    pub points: usize,
}

impl TGrid {
    /// The times.
    pub fn times(&self) -> Vec<f64> {
        let n = self.points - 1;
        (0..self.points)
            .map(|i| if i == n { self.stop } else { self.start + (self.stop - self.start) * i as f64 / n as f64 })
            .collect()
    }
}

impl fmt::Display for TGrid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.start, self.stop, self.points)
    }
}

impl FromStr for TGrid {
    type Err = InvalidParameter;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = |rule: &str| InvalidParameter::new("t_grid", rule, text);
        let parts: Vec<&str> = text.split(':').collect();
        let [start, stop, points] = parts[..] else {
            return Err(bad("must be START:STOP:N"));
        };
        let number = |s: &str| s.trim().parse::<f64>().ok().filter(|v| v.is_finite());
        let (Some(start), Some(stop)) = (number(start), number(stop)) else {
            return Err(bad("START and STOP must be finite numbers"));
        };
        let points: usize = points.trim().parse().map_err(|_| bad("N must be a whole number"))?;
        if start < 0.0 || stop <= start {
            return Err(bad("needs 0 ≤ START < STOP"));
        }
        if !(2..=1_000_000).contains(&points) {
            return Err(bad("N must lie between 2 and 1000000"));
        }
        Ok(Self { start, stop, points })
    }
}

/// The format of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TableFormat {
    /// Comma-separated values with a header line.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

/// The grid and format of a table command.
#[derive(Debug, Clone, Copy, Args)]
pub struct TableArgs {
    /// Times START:STOP:N (N equally spaced times, both ends included; the ensembles snap them
    /// to whole steps of η and print the times they recorded).
    #[arg(long = "t-grid", value_name = "START:STOP:N", value_parser = typed::<TGrid>())]
    pub t_grid: TGrid,
    /// Table format.
    #[arg(long, value_enum, default_value_t = TableFormat::Csv)]
    pub format: TableFormat,
}

/// The ensemble's size and seed.
#[derive(Debug, Clone, Copy, Args)]
pub struct PathArgs {
    /// Initial end-to-end strength w0 (> 0 when L ≥ 2).
    #[arg(long, value_name = "W0", allow_hyphen_values = true)]
    pub w0: f64,
    /// Number of paths (at least 2).
    #[arg(long, value_name = "P", default_value_t = 1000)]
    pub paths: usize,
    /// Seed of the paths' streams (the library's standalone streams, offset 0).
    #[arg(long, value_name = "SEED", default_value_t = 0)]
    pub seed: u64,
}

/// Arguments of `modewise theory sde`.
#[derive(Debug, Args)]
pub struct SdeArgs {
    /// Depth and singular value.
    #[command(flatten)]
    pub teacher: TeacherArgs,
    /// Label noise, learning rate and batch size.
    #[command(flatten)]
    pub sgd: SgdArgs,
    /// Start, paths and seed.
    #[command(flatten)]
    pub paths: PathArgs,
    /// Integrate Euler–Maruyama at the fixed step dt = η · DT_OVER_LR instead of refining dt
    /// until converged.
    #[arg(long, value_name = "DT_OVER_LR", conflicts_with = "max_halvings")]
    pub fixed_dt_over_lr: Option<f64>,
    /// Most halvings of dt from η when refining (1 to 16).
    #[arg(long, value_name = "H", default_value_t = DEFAULT_MAX_HALVINGS,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_HALVINGS)))]
    pub max_halvings: u32,
    /// Grid and format.
    #[command(flatten)]
    pub table: TableArgs,
}

/// Arguments of `modewise theory chain`.
#[derive(Debug, Args)]
pub struct ChainArgs {
    /// Depth and singular value.
    #[command(flatten)]
    pub teacher: TeacherArgs,
    /// Label noise, learning rate and batch size.
    #[command(flatten)]
    pub sgd: SgdArgs,
    /// Start, paths and seed.
    #[command(flatten)]
    pub paths: PathArgs,
    /// Grid and format.
    #[command(flatten)]
    pub table: TableArgs,
}

/// A table: its rows as JSON objects with the same keys in the same order.
pub type Table = Vec<Map<String, Value>>;

/// The inputs every row echoes, then the row's own values.
fn row(inputs: &Map<String, Value>, values: Value) -> Map<String, Value> {
    let mut out = inputs.clone();
    if let Value::Object(values) = values {
        out.extend(values);
    }
    out
}

/// The mode's inputs as columns.
fn mode_inputs(mode: &Mode, w0: f64) -> Map<String, Value> {
    let Value::Object(m) = json!({
        "depth": mode.depth(), "s": mode.s(), "sigma": mode.sigma(), "lr": mode.lr(), "batch": mode.batch(), "w0": w0,
    }) else {
        unreachable!("an object")
    };
    m
}

/// The gradient flow `w(t)` and the diffusion `D(w(t))` on the grid.
pub fn gf_table(mode: &Mode, w0: f64, grid: TGrid) -> modewise_theory::Result<Table> {
    let inputs = mode_inputs(mode, w0);
    grid.times()
        .into_iter()
        .map(|t| {
            let w = mode.gf_trajectory(w0, t)?;
            let d = mode.diffusion(modewise_theory::Coordinate::EndToEnd, w);
            Ok(row(&inputs, json!({ "t": t, "w": w, "diffusion": d })))
        })
        .collect()
}

/// An ensemble's rows: time, step, mean, variance, finite paths and step size.
fn ensemble_rows(inputs: &Map<String, Value>, stats: &EnsembleStats, dt: f64, converged: Option<bool>) -> Table {
    (0..stats.times.len())
        .map(|i| {
            row(
                inputs,
                json!({
                    "t": stats.times[i], "step": stats.steps[i], "mean": stats.mean[i],
                    "variance": stats.variance[i], "finite": stats.finite[i], "dt": dt, "converged": converged,
                }),
            )
        })
        .collect()
}

/// The SDE ensemble on the grid: refined until converged (the rows of the finest level, with
/// `converged = false`, when the halvings do not suffice), or at a fixed step.
pub fn sde_table(mode: &Mode, args: &SdeArgs) -> modewise_theory::Result<Table> {
    let grid = TimeGrid::from_times(args.table.t_grid.times())?;
    let params = EnsembleParams::new(args.paths.paths, args.paths.seed, grid);
    let mut inputs = mode_inputs(mode, args.paths.w0);
    inputs.insert("paths".into(), json!(args.paths.paths));
    inputs.insert("seed".into(), json!(args.paths.seed));
    match args.fixed_dt_over_lr {
        Some(ratio) => {
            inputs.insert("scheme".into(), json!("euler-maruyama, fixed dt"));
            let dt = mode.lr() * ratio;
            let dynamics = Dynamics::Sde {
                scheme: modewise_theory::Scheme::EulerMaruyama,
                coordinate: modewise_theory::Coordinate::EndToEnd,
                dt,
            };
            if !(ratio.is_finite() && ratio > 0.0) {
                return Err(modewise_theory::TheoryError::invalid(
                    "fixed_dt_over_lr",
                    "must be finite and positive",
                    ratio,
                ));
            }
            let stats = mode.ensemble(args.paths.w0, dynamics, &params)?;
            Ok(ensemble_rows(&inputs, &stats, dt, None))
        }
        None => {
            inputs.insert("scheme".into(), json!("euler-maruyama, refined dt"));
            let refine = RefineParams { max_halvings: args.max_halvings, ..RefineParams::new(params) };
            let out = mode.sde_refined_or_finest(args.paths.w0, &refine)?;
            Ok(ensemble_rows(&inputs, &out.stats, out.dt, Some(out.converged)))
        }
    }
}

/// The exact chain ensemble on the grid.
pub fn chain_table(mode: &Mode, args: &ChainArgs) -> modewise_theory::Result<Table> {
    let grid = TimeGrid::from_times(args.table.t_grid.times())?;
    let params = EnsembleParams::new(args.paths.paths, args.paths.seed, grid);
    let mut inputs = mode_inputs(mode, args.paths.w0);
    inputs.insert("paths".into(), json!(args.paths.paths));
    inputs.insert("seed".into(), json!(args.paths.seed));
    let stats = mode.ensemble(args.paths.w0, Dynamics::Chain, &params)?;
    Ok(ensemble_rows(&inputs, &stats, mode.lr(), None))
}

/// A CSV field: numbers as Rust writes them (shortest round trip), `null` empty, text quoted
/// when it holds a comma or a quote.
fn csv_field(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) if s.contains([',', '"', '\n']) => format!("\"{}\"", s.replace('"', "\"\"")),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Prints `table` to stdout in `format`.
pub fn print(table: &Table, format: TableFormat) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        TableFormat::Jsonl => {
            for r in table {
                writeln!(out, "{}", Value::Object(r.clone())).context("cannot write to stdout")?;
            }
        }
        TableFormat::Csv => {
            if let Some(first) = table.first() {
                writeln!(out, "{}", first.keys().cloned().collect::<Vec<_>>().join(","))
                    .context("cannot write to stdout")?;
            }
            for r in table {
                writeln!(out, "{}", r.values().map(csv_field).collect::<Vec<_>>().join(","))
                    .context("cannot write to stdout")?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_grids_parse_with_both_ends_and_bad_ones_name_the_rule() {
        let g: TGrid = "0:2:5".parse().unwrap();
        assert_eq!(g.times(), [0.0, 0.5, 1.0, 1.5, 2.0]);
        let g: TGrid = "0.1:0.7:3".parse().unwrap();
        assert_eq!(g.times().last(), Some(&0.7), "the last time is STOP exactly");
        for (text, rule) in [
            ("0:1", "must be START:STOP:N"),
            ("a:1:3", "START and STOP must be finite numbers"),
            ("0:inf:3", "START and STOP must be finite numbers"),
            ("0:1:x", "N must be a whole number"),
            ("1:1:3", "needs 0 ≤ START < STOP"),
            ("-1:1:3", "needs 0 ≤ START < STOP"),
            ("0:1:1", "N must lie between 2 and 1000000"),
        ] {
            let err = text.parse::<TGrid>().unwrap_err();
            assert_eq!((err.field.as_str(), err.rule.as_str()), ("t_grid", rule), "{text}");
        }
    }

    #[test]
    fn csv_fields_quote_text_and_leave_null_empty() {
        assert_eq!(csv_field(&json!(0.1)), "0.1");
        assert_eq!(csv_field(&Value::Null), "");
        assert_eq!(csv_field(&json!("euler-maruyama, fixed dt")), "\"euler-maruyama, fixed dt\"");
        assert_eq!(csv_field(&json!(true)), "true");
    }
}
