//! Writing an experiment's results: the four Parquet tables with their metadata, the figures,
//! and the verdict table printed at the end; `report` redraws them from a results directory.

use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::ExperimentError;
use crate::io::write_parquet_with;
use crate::run::{RunResult, TheoryRows, Verdict};
use crate::spec::ExperimentSpec;

/// The modewise version written into every file.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The `runs` table: one row per member of every run.
pub fn runs_frame(results: &[RunResult]) -> PolarsResult<DataFrame> {
    let mut run_id = Vec::new();
    let mut label = Vec::new();
    let mut member = Vec::new();
    let mut seed = Vec::new();
    let mut backend = Vec::new();
    let mut gradient = Vec::new();
    let mut dims = Vec::new();
    let mut depth = Vec::new();
    let mut lr = Vec::new();
    let mut batch = Vec::new();
    let mut steps = Vec::new();
    let mut sigma = Vec::new();
    let mut init = Vec::new();
    let mut data = Vec::new();
    let mut teacher_s = Vec::new();
    let mut teacher_seed = Vec::new();
    let mut status = Vec::new();
    let mut diverged_at: Vec<Option<u64>> = Vec::new();
    let mut wall = Vec::new();
    for r in results {
        let p = r.plan.train.params();
        for (m, &s) in p.seeds.iter().enumerate() {
            run_id.push(r.plan.run_id.clone());
            label.push(r.plan.label.clone());
            member.push(m as u32);
            seed.push(s);
            backend.push(p.backend.to_string());
            gradient.push(p.gradient.name().to_string());
            dims.push(p.dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("-"));
            depth.push((p.dims.len() - 1) as u32);
            lr.push(p.lr);
            batch.push(p.batch as u32);
            steps.push(p.steps);
            sigma.push(p.data.sigma);
            init.push(p.init.name().to_string());
            data.push(toml::Value::try_from(p.data.source).map(|v| v.to_string()).unwrap_or_default());
            teacher_s.push(r.plan.train.teacher().s().iter().map(|v| format!("{v}")).collect::<Vec<_>>().join(","));
            teacher_seed.push(p.teacher.seed);
            let d = r.diverged.iter().find(|(mm, _)| *mm == m).map(|&(_, step)| step);
            status.push(if d.is_some() { "diverged" } else { "ok" }.to_string());
            diverged_at.push(d);
            wall.push(r.wall_seconds);
        }
    }
    // Every training field of the spec as a column `train.<dotted path>` (TOML text of the value),
    // so runs can be filtered on any parameter, including the initialisation's.
    let flat: Vec<Vec<(String, String)>> = results
        .iter()
        .map(|r| {
            let mut out = Vec::new();
            let value = toml::Value::try_from(r.plan.train.params()).expect("train parameters serialise");
            flatten("train", &value, &mut out);
            out
        })
        .collect();
    let mut keys: Vec<String> = flat.iter().flatten().map(|(k, _)| k.clone()).collect();
    keys.sort();
    keys.dedup();
    keys.retain(|k| k != "train.seeds");
    let mut frame = df!(
        "run_id" => run_id, "label" => label, "member" => member, "seed" => seed,
        "backend" => backend, "gradient" => gradient, "dims" => dims, "depth" => depth,
        "lr" => lr, "batch" => batch, "steps" => steps, "sigma" => sigma, "init" => init,
        "data" => data, "teacher_s" => teacher_s, "teacher_seed" => teacher_seed,
        "status" => status, "diverged_at" => diverged_at, "wall_seconds" => wall,
    )?;
    for key in keys {
        let col: Vec<Option<String>> = results
            .iter()
            .zip(&flat)
            .flat_map(|(r, f)| {
                let v = f.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone());
                std::iter::repeat_n(v, r.plan.train.params().seeds.len())
            })
            .collect();
        frame.with_column(Column::new(key.as_str().into(), col))?;
    }
    Ok(frame)
}

/// Flattens a TOML value into `(dotted path, TOML text)` pairs (arrays stay whole).
fn flatten(prefix: &str, value: &toml::Value, out: &mut Vec<(String, String)>) {
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t {
                flatten(&format!("{prefix}.{k}"), v, out);
            }
        }
        toml::Value::String(s) => out.push((prefix.to_string(), s.clone())),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

/// The `trajectories` table: one row per run, member, probe step and mode.
pub fn trajectories_frame(results: &[RunResult]) -> PolarsResult<DataFrame> {
    type Keys = (Vec<String>, Vec<u32>, Vec<u64>, Vec<u64>, Vec<f64>, Vec<u32>);
    let mut c: Keys = Default::default();
    let mut v: [Vec<f64>; 8] = Default::default();
    for r in results {
        let s = r.plan.train.teacher().s();
        for rec in &r.records {
            for k in 0..s.len() {
                c.0.push(r.plan.run_id.clone());
                c.1.push(rec.member as u32);
                c.2.push(rec.seed);
                c.3.push(rec.step);
                c.4.push(rec.t);
                c.5.push(k as u32);
                let p = &rec.probe;
                v[0].push(s[k]);
                v[1].push(p.mode_strength[k]);
                v[2].push(p.mode_drift[k]);
                v[3].push(p.mode_diffusion.get(k).copied().unwrap_or(f64::NAN));
                v[4].push(p.population_loss);
                v[5].push(p.alignment_error);
                v[6].push(p.balance_total);
                v[7].push(p.balance_relative);
            }
        }
    }
    let [s_k, m_k, drift, diffusion, loss, align, bal, bal_rel] = v;
    df!(
        "run_id" => c.0, "member" => c.1, "seed" => c.2, "step" => c.3, "t" => c.4, "k" => c.5,
        "s_k" => s_k, "m_k" => m_k, "drift" => drift, "diffusion" => diffusion, "loss" => loss,
        "alignment_error" => align, "balance" => bal, "balance_relative" => bal_rel,
    )
}

/// The `summary` table: the verdicts.
pub fn summary_frame(verdicts: &[Verdict]) -> PolarsResult<DataFrame> {
    df!(
        "run_id" => verdicts.iter().map(|v| v.run_id.clone()).collect::<Vec<_>>(),
        "claim" => verdicts.iter().map(|v| v.claim.clone()).collect::<Vec<_>>(),
        "k" => verdicts.iter().map(|v| v.k as u32).collect::<Vec<_>>(),
        "quantity" => verdicts.iter().map(|v| v.quantity.clone()).collect::<Vec<_>>(),
        "predicted" => verdicts.iter().map(|v| v.predicted).collect::<Vec<_>>(),
        "measured" => verdicts.iter().map(|v| v.measured).collect::<Vec<_>>(),
        "holds" => verdicts.iter().map(|v| v.holds).collect::<Vec<_>>(),
    )
}

/// The metadata written into every file of an experiment.
pub fn metadata(spec: &ExperimentSpec) -> Vec<(String, String)> {
    vec![
        ("modewise_version".into(), VERSION.into()),
        ("spec".into(), spec.to_toml()),
        ("seeds".into(), format!("{:?}", spec.train.seeds)),
        ("backend".into(), spec.train.backend.to_string()),
    ]
}

/// The four tables, in the order they are written (`summary` last: in a sweep it marks a run
/// complete).
pub const TABLES: [&str; 4] = ["runs", "trajectories", "theory", "summary"];

/// The paths of an experiment's four tables in `dir`, in [`TABLES`] order.
pub fn table_paths(dir: &Path) -> [PathBuf; 4] {
    TABLES.map(|n| dir.join(format!("{n}.parquet")))
}

/// Writes the four tables in [`TABLES`] order, each atomically, table `t` to `path_of(t)`
/// (creating its directory).
pub fn write_tables(
    path_of: impl Fn(&str) -> PathBuf,
    spec: &ExperimentSpec,
    results: &[RunResult],
    theory: &TheoryRows,
    verdicts: &[Verdict],
) -> Result<(), ExperimentError> {
    let meta = metadata(spec);
    for table in TABLES {
        let path = path_of(table);
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|source| ExperimentError::Io { path: parent.to_path_buf(), source })?;
        }
        let frame = match table {
            "runs" => runs_frame(results),
            "trajectories" => trajectories_frame(results),
            "theory" => theory.frame(),
            _ => summary_frame(verdicts),
        };
        let mut frame = frame.map_err(|source| ExperimentError::Polars { path: path.clone(), source })?;
        write_parquet_with(&mut frame, &path, &meta)?;
    }
    Ok(())
}

/// The verdict table as text: claim, run, mode, quantity, predicted, measured, holds.
pub fn verdict_table(verdicts: &[Verdict]) -> String {
    let mut out = format!(
        "{:<22} {:<32} {:>2} {:<28} {:>12} {:>12} {:>5}\n",
        "claim", "run", "k", "quantity", "predicted", "measured", "holds"
    );
    for v in verdicts {
        out.push_str(&format!(
            "{:<22} {:<32} {:>2} {:<28} {:>12.4e} {:>12.4e} {:>5}\n",
            v.claim,
            v.run_id,
            v.k,
            v.quantity,
            v.predicted,
            v.measured,
            if v.holds { "yes" } else { "no" }
        ));
    }
    out
}
