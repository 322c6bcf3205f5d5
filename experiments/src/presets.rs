//! Presets: the paper's four claims as ready-made experiment specs (and `demo`, small versions
//! of all of them). Each preset is an ordinary TOML spec, printable with `modewise presets --show`.

use crate::ExperimentError;
use crate::spec::ExperimentSpec;

/// Names and one-line descriptions of the presets.
pub const PRESETS: [(&str, &str); 5] = [
    (
        "saddle",
        "claim 1: per-mode diffusion peaks before the mode is learned (with label noise only below the discriminant bound)",
    ),
    (
        "stationary",
        "claims 2 and 3: without label noise the modes collapse onto s; with it their law is the exact density, close to Boltzmann",
    ),
    (
        "relax",
        "claim 4: claims 1-3 from aligned-balanced, Gaussian, unbalanced and misaligned starts; alignment and balance over time",
    ),
    (
        "sde-vs-sgd",
        "DLN SGD against the exact per-mode chain and the SDE across learning rates: where the SDE model holds and breaks",
    ),
    ("demo", "small versions of all of the above (under 2 minutes on 2 cores); what `modewise` runs with no arguments"),
];

/// Sizes of a preset: full, or the demo's.
#[derive(Debug, Clone, Copy)]
struct Size {
    scale: u64,
    seeds: usize,
}

fn seeds(n: usize) -> String {
    format!("[{}]", (0..n).map(|i| i.to_string()).collect::<Vec<_>>().join(", "))
}

fn saddle(name: &str, z: Size) -> String {
    format!(
        r#"name = "{name}"
description = "claim 1: diffusion peaks before learning; sigma = 0, below and above the discriminant bound"
analysis = "saddle"

[train]
dims = [8, 16, 8]
lr = 0.01
batch = 16
steps = {steps}
seeds = {seeds}
backend = "flex"
check_every = 100

[train.probes]
per_decade = 20.0

[train.teacher]
seed = 1
[train.teacher.spectrum]
kind = "list"
s = [4.0, 2.0, 1.0]

[train.init]
kind = "gaussian"
gamma = 4.0

[overlays]
gradient_flow = true
sde_paths = {paths}
chain_paths = {paths}

[[variants]]
label = "sigma=0"
set = {{ "data.sigma" = 0.0 }}

[[variants]]
label = "sigma=0.3"
set = {{ "data.sigma" = 0.3 }}

[[variants]]
label = "sigma=3"
set = {{ "data.sigma" = 3.0 }}
"#,
        steps = 4000 * z.scale,
        seeds = seeds(z.seeds),
        paths = 200 * z.seeds,
    )
}

fn stationary(name: &str, z: Size) -> String {
    format!(
        r#"name = "{name}"
description = "claims 2 and 3: stationary laws of the modes near convergence"
analysis = "stationary"

[train]
dims = [6, 8, 6]
lr = 0.005
batch = 8
steps = {steps}
seeds = {seeds}
backend = "flex"

[train.probes]
per_decade = 100.0

[train.teacher]
seed = 2
[train.teacher.spectrum]
kind = "list"
s = [2.0, 1.0]

[train.init]
kind = "aligned-balanced"
a0 = [1.26, 0.89]

[overlays]
gradient_flow = true
stationary = true

[[variants]]
label = "sigma=0"
set = {{ "data.sigma" = 0.0 }}

[[variants]]
label = "sigma=0.5"
set = {{ "data.sigma" = 0.5 }}
"#,
        steps = 10000 * z.scale,
        seeds = seeds(z.seeds),
    )
}

fn relax(name: &str, z: Size) -> String {
    let mut out = format!(
        r#"name = "{name}"
description = "claim 4: the claims without alignment or balance"
analysis = "relax"

[train]
dims = [8, 16, 8]
lr = 0.01
batch = 16
steps = {steps}
seeds = {seeds}
backend = "flex"

[train.probes]
per_decade = 100.0

[train.teacher]
seed = 3
[train.teacher.spectrum]
kind = "list"
s = [3.0, 1.5]

[train.init]
kind = "aligned-balanced"
a0 = 0.1

[overlays]
gradient_flow = true
stationary = true
"#,
        steps = 6000 * z.scale,
        seeds = seeds(z.seeds),
    );
    let inits = [
        ("aligned", r#""init.kind" = "aligned-balanced", "init.a0" = 0.1"#),
        ("gaussian", r#""init.kind" = "gaussian", "init.gamma" = 4.0"#),
        ("unbalanced", r#""init.kind" = "unbalanced", "init.a0" = 0.1, "init.ratio" = 4.0"#),
        ("misaligned", r#""init.kind" = "misaligned", "init.a0" = 0.1, "init.angle" = 0.5"#),
    ];
    for (sigma, value) in [("0", "0.0"), ("0.3", "0.3")] {
        for (label, set) in inits {
            out.push_str(&format!(
                "\n[[variants]]\nlabel = \"{label}-sigma={sigma}\"\nset = {{ {set}, \"data.sigma\" = {value} }}\n"
            ));
        }
    }
    out
}

fn sde_vs_sgd(name: &str, z: Size) -> String {
    let mut out = format!(
        r#"name = "{name}"
description = "DLN SGD against the exact chain and the SDE for several learning rates"
analysis = "sde-vs-sgd"

[train]
dims = [6, 8, 6]
batch = 4
steps = {steps}
seeds = {seeds}
backend = "flex"

[train.data]
sigma = 0.5

[train.probes]
per_decade = 10.0

[train.teacher]
seed = 4
[train.teacher.spectrum]
kind = "list"
s = [2.0, 1.0]

[train.init]
kind = "aligned-balanced"
a0 = 0.3

[overlays]
gradient_flow = true
sde_paths = {paths}
chain_paths = {paths}
"#,
        steps = 2000 * z.scale,
        seeds = seeds(z.seeds * 16),
        paths = 1000 * z.seeds,
    );
    for (lr, steps) in [("0.002", 5), ("0.01", 1), ("0.05", 1)] {
        out.push_str(&format!(
            "\n[[variants]]\nlabel = \"lr={lr}\"\nset = {{ lr = {lr}, steps = {} }}\n",
            2000 * z.scale * steps / if lr == "0.05" { 5 } else { 1 }
        ));
    }
    out
}

/// The specs of a preset (`demo` gives one spec per claim, each named `demo-<preset>`).
pub fn preset(name: &str) -> Result<Vec<ExperimentSpec>, ExperimentError> {
    let full = Size { scale: 5, seeds: 16 };
    let demo = Size { scale: 1, seeds: 4 };
    let text = match name {
        "saddle" => vec![saddle(name, full)],
        "stationary" => vec![stationary(name, full)],
        "relax" => vec![relax(name, full)],
        "sde-vs-sgd" => vec![sde_vs_sgd(name, full)],
        "demo" => vec![
            saddle("demo-saddle", demo),
            stationary("demo-stationary", demo),
            relax("demo-relax", demo),
            sde_vs_sgd("demo-sde-vs-sgd", demo),
        ],
        other => {
            return Err(ExperimentError::Invalid {
                field: "preset".into(),
                rule: format!(
                    "must be one of {} (got `{other}`)",
                    PRESETS.iter().map(|p| p.0).collect::<Vec<_>>().join(", ")
                ),
            });
        }
    };
    text.iter().map(|t| ExperimentSpec::from_toml(t, &[])).collect()
}

/// The TOML text of a preset (for `modewise presets --show`).
pub fn preset_toml(name: &str) -> Result<String, ExperimentError> {
    Ok(preset(name)?.iter().map(|s| s.to_toml()).collect::<Vec<_>>().join("\n# ----\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_parses_and_expands() {
        for (name, _) in PRESETS {
            for spec in preset(name).unwrap() {
                assert!(!spec.check().unwrap().plans().is_empty(), "{name}");
            }
        }
        assert!(preset("nope").unwrap_err().to_string().starts_with("preset: must be one of saddle"));
    }
}
