//! Presets: the paper's four claims as ready-made experiment specs, each a TOML file of
//! `experiments/presets/` at full size, and `demo`: the four shrunk by overrides of their sizes.
//! Each preset is an ordinary spec, printable with `modewise presets --show`.

use crate::ExperimentError;
use crate::spec::{ExperimentSpec, Override};

/// Names and one-line descriptions of the presets.
pub const PRESETS: [(&str, &str); 6] = [
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
        "claim 4 as a dose-response study: claims 1-3 against misalignment and imbalance doses at a small and a large initial scale; where each metric stops holding",
    ),
    (
        "sde-vs-sgd",
        "DLN SGD against the exact per-mode chain and the SDE across learning rates: where the SDE model holds and breaks",
    ),
    (
        "scaling",
        "scaling laws of the stationary variance in lr, B, sigma, s and L (fitted exponents) and the lr where the SDE breaks down",
    ),
    ("demo", "small versions of all of the above (under 2 minutes on 2 cores); what `modewise` runs with no arguments"),
];

/// The full-size presets that the demo leaves out (it shows each claim; these are studies).
const STUDIES: [(&str, &str); 1] = [("scaling", include_str!("../presets/scaling.toml"))];

/// The full-size preset files, by name, with how the demo shrinks each.
const FILES: [(&str, &str, Shrink); 4] = [
    // Claim 1 needs the whole way to learning: only the seeds and paths shrink.
    ("saddle", include_str!("../presets/saddle.toml"), Shrink { steps: 1, members: 4 }),
    ("stationary", include_str!("../presets/stationary.toml"), DEMO),
    ("relax", include_str!("../presets/relax.toml"), DEMO),
    ("sde-vs-sgd", include_str!("../presets/sde-vs-sgd.toml"), DEMO),
];

/// How the demo shrinks a full-size preset: the steps (the base's and those a variant sets)
/// are divided by `steps`; the seeds (the first ones are kept) and the theory overlays' paths
/// by `members`.
#[derive(Debug, Clone, Copy)]
struct Shrink {
    steps: u64,
    members: usize,
}

/// The demo's usual sizes: a fifth of the steps, a quarter of the seeds and paths.
const DEMO: Shrink = Shrink { steps: 5, members: 4 };

impl Shrink {
    /// The overrides that shrink `spec`, renamed `demo-<name>`.
    fn overrides(&self, spec: &ExperimentSpec) -> Result<Vec<Override>, ExperimentError> {
        let (train, overlays) = (&spec.train, &spec.overlays);
        let mut overrides = vec![
            Override::new("name", format!("demo-{}", spec.name))?,
            Override::new("train.steps", train.steps / self.steps)?,
            Override::new("train.seeds", &train.seeds[..train.seeds.len() / self.members])?,
            Override::new("overlays.sde_paths", overlays.sde_paths / self.members)?,
            Override::new("overlays.chain_paths", overlays.chain_paths / self.members)?,
        ];
        for (i, variant) in spec.variants.iter().enumerate() {
            if let Some((key, steps)) = variant.get("steps").and_then(|(k, v)| Some((k, v.as_integer()?))) {
                overrides.push(Override::new(&format!("variants[{i}].set.{key}"), steps / self.steps as i64)?);
            }
        }
        Ok(overrides)
    }
}

/// The full-size spec of preset file `name`.
fn full(name: &str) -> Result<ExperimentSpec, ExperimentError> {
    let text = FILES.iter().map(|f| (f.0, f.1)).chain(STUDIES).find(|(n, _)| *n == name).map(|f| f.1);
    let Some(text) = text else {
        return Err(ExperimentError::Invalid {
            field: "preset".into(),
            rule: format!(
                "must be one of {} (got `{name}`)",
                PRESETS.iter().map(|p| p.0).collect::<Vec<_>>().join(", ")
            ),
        });
    };
    ExperimentSpec::from_toml(text, &[])
}

/// The specs of a preset (`demo` gives one spec per claim, each named `demo-<preset>`).
pub fn preset(name: &str) -> Result<Vec<ExperimentSpec>, ExperimentError> {
    if name != "demo" {
        return Ok(vec![full(name)?]);
    }
    FILES
        .iter()
        .map(|(name, _, shrink)| {
            let spec = full(name)?;
            spec.with_overrides(&shrink.overrides(&spec)?)
        })
        .collect()
}

/// The TOML text of a preset (for `modewise presets --show`).
pub fn preset_toml(name: &str) -> Result<String, ExperimentError> {
    Ok(ExperimentSpec::several_to_toml(&preset(name)?))
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

    #[test]
    fn each_preset_file_is_a_checked_spec_named_after_it() {
        let names: Vec<&str> = FILES.iter().map(|f| f.0).collect();
        assert_eq!(names, PRESETS[..4].iter().map(|p| p.0).collect::<Vec<_>>(), "one file per preset but demo");
        assert_eq!(STUDIES.map(|s| s.0), ["scaling"], "the studies follow the claims in PRESETS");
        assert_eq!(PRESETS[4].0, "scaling");
        for (name, text) in FILES.iter().map(|f| (f.0, f.1)).chain(STUDIES) {
            let spec = ExperimentSpec::from_toml(text, &[]).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(spec.name, name);
            let plans = spec.check().unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(plans.plans().len(), spec.variants.len(), "{name}");
            // Full size: 16 members (256 for sde-vs-sgd).
            assert_eq!(spec.train.seeds, (0..spec.train.seeds.len() as u64).collect::<Vec<_>>(), "{name}");
            assert!([16, 256].contains(&spec.train.seeds.len()), "{name}");
        }
        let sde = full("sde-vs-sgd").unwrap().check().unwrap();
        let times: Vec<f64> = sde.plans().iter().map(|p| p.train.params().lr * p.train.params().steps as f64).collect();
        assert!(times.iter().all(|&t| (t - 10.0).abs() < 1e-9), "the same time lr · steps = 10: {times:?}");
    }

    #[test]
    fn saddle_stationary_and_sde_vs_sgd_run_depths_two_to_four_and_have_controls() {
        for name in ["saddle", "stationary", "sde-vs-sgd"] {
            let spec = full(name).unwrap().check().unwrap();
            let depths: std::collections::BTreeSet<usize> = spec.plans().iter().map(|p| p.train.depth()).collect();
            assert_eq!(depths.into_iter().collect::<Vec<_>>(), [2, 3, 4], "{name}");
            assert!(spec.plans().iter().any(|p| p.control.is_some()), "{name} has a negative control");
        }
    }

    #[test]
    fn every_preset_as_printed_reads_back_as_its_specs() {
        for (name, _) in PRESETS {
            let printed = preset_toml(name).unwrap();
            let back: Vec<ExperimentSpec> =
                ExperimentSpec::several_from_toml(&printed, &[]).unwrap().into_iter().map(|(s, _)| s).collect();
            assert_eq!(back, preset(name).unwrap(), "{name}");
        }
        assert!(preset_toml("demo").unwrap().contains("[[experiment]]"));
    }

    #[test]
    fn the_demo_is_each_file_with_its_sizes_shrunk() {
        let demo = preset("demo").unwrap();
        assert_eq!(demo.len(), FILES.len());
        for ((name, _, shrink), small) in FILES.iter().zip(&demo) {
            let mut expected = full(name).unwrap();
            expected.name = format!("demo-{name}");
            expected.train.steps /= shrink.steps;
            expected.train.seeds.truncate(expected.train.seeds.len() / shrink.members);
            expected.overlays.sde_paths /= shrink.members;
            expected.overlays.chain_paths /= shrink.members;
            for v in &mut expected.variants {
                for (key, value) in &mut v.set {
                    if let (toml::Value::Integer(steps), "steps") = (value, crate::spec::train_path(key)) {
                        *steps /= shrink.steps as i64;
                    }
                }
            }
            assert_eq!(small, &expected, "{name}: only the sizes change");
        }
        // The demo's sizes.
        let saddle = &demo[0];
        assert_eq!((saddle.train.steps, saddle.train.seeds.clone()), (1200, vec![0, 1, 2, 3]));
        assert_eq!((saddle.overlays.sde_paths, saddle.overlays.chain_paths), (800, 800));
        assert_eq!(
            (demo[1].name.as_str(), demo[1].train.steps, demo[1].train.seeds.len()),
            ("demo-stationary", 2000, 4)
        );
        assert_eq!((demo[2].name.as_str(), demo[2].train.steps, demo[2].variants.len()), ("demo-relax", 2000, 14));
        let sde = demo[3].check().unwrap();
        assert_eq!(sde.name(), "demo-sde-vs-sgd");
        assert_eq!(sde.spec().train.seeds, (0..64).collect::<Vec<u64>>());
        assert_eq!((sde.spec().overlays.sde_paths, sde.spec().overlays.chain_paths), (4000, 4000));
        let steps: Vec<u64> = sde.plans().iter().map(|p| p.train.params().steps).collect();
        assert_eq!(steps, [1000, 200, 40, 200, 200, 200]);
    }
}
