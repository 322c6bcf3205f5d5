//! Experiment specs: the TOML file format, `--set` overrides, variants, and their expansion into
//! concrete runs with deterministic ids.

use std::collections::BTreeMap;

use modewise_dln::{TrainParams, TrainSpec};
use modewise_theory::Scheme;
use serde::{Deserialize, Serialize};

use crate::ExperimentError;

/// Which measurements and verdicts an experiment computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Analysis {
    /// Trajectories and overlays only, no verdicts.
    #[default]
    None,
    /// Claim 1: the mode diffusion peaks before the mode is learned (iff the discriminant
    /// condition holds with label noise).
    Saddle,
    /// Claims 2 and 3: stationary laws (Dirac without label noise, near-Boltzmann with it).
    Stationary,
    /// Claim 4: claims 1–3 without alignment or balance.
    Relax,
    /// DLN SGD against the exact per-mode chain and the SDE, across learning rates.
    SdeVsSgd,
}

/// Theory overlays computed for every run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Overlays {
    /// Gradient flow from the (effective) initial mode strength.
    pub gradient_flow: bool,
    /// Paths of the end-to-end SDE ensemble per mode (0: none).
    pub sde_paths: usize,
    /// Scheme of the SDE ensemble.
    pub sde_scheme: Scheme,
    /// Time step of the SDE ensemble in units of `η` (1: one SDE step per SGD step).
    pub sde_dt_over_lr: f64,
    /// Paths of the exact per-mode SGD chain per mode (0: none).
    pub chain_paths: usize,
    /// The exact stationary density and the Boltzmann law (with label noise).
    pub stationary: bool,
}

impl Default for Overlays {
    fn default() -> Self {
        Self {
            gradient_flow: true,
            sde_paths: 0,
            sde_scheme: Scheme::EulerMaruyama,
            sde_dt_over_lr: 1.0,
            chain_paths: 0,
            stationary: false,
        }
    }
}

/// One variant of an experiment: a label and overrides of the base training parameters
/// (dotted keys below `train`, e.g. `"init.kind" = "gaussian"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    /// Short label, unique in the experiment; part of the run id.
    pub label: String,
    /// Overrides of `train` fields.
    #[serde(default)]
    pub set: BTreeMap<String, toml::Value>,
}

/// An experiment: a name, base training parameters, variants, overlays and an analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentSpec {
    /// Name; results go to `data/<name>/` by default.
    pub name: String,
    /// One line on what the experiment shows.
    #[serde(default)]
    pub description: String,
    /// Measurements and verdicts.
    #[serde(default)]
    pub analysis: Analysis,
    /// Base training parameters (network, teacher, data, init, SGD, seeds, backend, probes).
    pub train: TrainParams,
    /// Theory overlays.
    #[serde(default)]
    pub overlays: Overlays,
    /// Variants; none means a single run of the base parameters.
    #[serde(default)]
    pub variants: Vec<Variant>,
}

/// A concrete run of an experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct RunPlan {
    /// Deterministic id: `<experiment>` or `<experiment>/<variant>`.
    pub run_id: String,
    /// The variant's label (`base` without variants).
    pub label: String,
    /// The checked training parameters.
    pub train: TrainSpec,
}

fn invalid(field: impl Into<String>, rule: impl Into<String>) -> ExperimentError {
    ExperimentError::Invalid { field: field.into(), rule: rule.into() }
}

/// Parses a `--set key=value` argument: the value is read as a TOML value (`0.1`, `[1, 2]`,
/// `"ndarray"`, `true`), or taken as a string when it does not parse.
pub fn parse_assignment(arg: &str) -> Result<(String, toml::Value), ExperimentError> {
    let (key, value) =
        arg.split_once('=').ok_or_else(|| invalid("--set", format!("must be KEY=VALUE (got `{arg}`)")))?;
    let key = key.trim();
    if key.is_empty() || key.split('.').any(|p| p.is_empty()) {
        return Err(invalid("--set", format!("key must be a dotted field path such as train.lr (got `{key}`)")));
    }
    let value = value.trim();
    let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()));
    Ok((key.to_string(), parsed))
}

/// Sets `value` at the dotted `key` inside `table`, creating tables on the way. Setting a
/// `kind` (of `init`, `data.source`, `teacher.spectrum`) to a new value clears its table first,
/// since the fields of one kind do not apply to another.
pub fn assign(table: &mut toml::Table, key: &str, value: toml::Value) -> Result<(), ExperimentError> {
    let parts: Vec<&str> = key.split('.').collect();
    if parts.len() > 1 && parts[parts.len() - 1] == "kind" {
        let parent = parts[..parts.len() - 1].join(".");
        let current = lookup(table, &parent).and_then(|t| t.get("kind")).cloned();
        if current.as_ref() != Some(&value) {
            let mut fresh = toml::Table::new();
            fresh.insert("kind".into(), value);
            return assign(table, &parent, toml::Value::Table(fresh));
        }
    }
    let mut cur = table;
    for (i, part) in parts[..parts.len() - 1].iter().enumerate() {
        let entry = cur.entry(part.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = entry
            .as_table_mut()
            .ok_or_else(|| invalid(parts[..=i].join("."), format!("is not a table, so `{key}` cannot be set")))?;
    }
    cur.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

fn lookup<'a>(table: &'a toml::Table, key: &str) -> Option<&'a toml::Table> {
    key.split('.').try_fold(table, |t, part| t.get(part)?.as_table())
}

/// Overrides with the `kind` keys first, so that a new kind's fields land in its fresh table.
fn kinds_first<'a>(
    overrides: impl IntoIterator<Item = (&'a String, &'a toml::Value)>,
) -> Vec<(&'a String, &'a toml::Value)> {
    let mut v: Vec<_> = overrides.into_iter().collect();
    v.sort_by_key(|(k, _)| !k.ends_with("kind"));
    v
}

impl ExperimentSpec {
    /// Reads a spec from TOML text with `--set` overrides applied (keys are dotted paths from the
    /// top, e.g. `train.lr`, `train.data.sigma`, `overlays.sde_paths`). Unknown keys, wrong types
    /// and broken rules are errors naming the field.
    pub fn from_toml(text: &str, overrides: &[(String, toml::Value)]) -> Result<Self, ExperimentError> {
        let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let line = e.span().map(|s| text[..s.start].lines().count().max(1));
            let msg = e.message().replace('\n', " ");
            invalid(line.map_or("spec".to_string(), |l| format!("spec line {l}")), format!("malformed TOML: {msg}"))
        })?;
        for (k, v) in kinds_first(overrides.iter().map(|(k, v)| (k, v))) {
            assign(&mut table, k, v.clone())?;
        }
        Self::from_table(table)
    }

    /// Deserializes and checks a spec from a TOML table.
    pub fn from_table(table: toml::Table) -> Result<Self, ExperimentError> {
        let spec: Self = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." || path.is_empty() { "spec".to_string() } else { path };
            invalid(field, e.into_inner().message().replace('\n', " "))
        })?;
        spec.check()?;
        Ok(spec)
    }

    /// The spec as TOML (stored in every output file's metadata).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a spec always serialises")
    }

    /// Checks the spec and every run it expands to.
    pub fn check(&self) -> Result<(), ExperimentError> {
        if self.name.is_empty() || !self.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(invalid(
                "name",
                format!("must be non-empty letters, digits, '-' or '_' (got `{}`)", self.name),
            ));
        }
        let o = &self.overlays;
        if !(o.sde_dt_over_lr.is_finite() && o.sde_dt_over_lr > 0.0) {
            return Err(invalid(
                "overlays.sde_dt_over_lr",
                format!("must be finite and positive (got {})", o.sde_dt_over_lr),
            ));
        }
        self.runs().map(|_| ())
    }

    /// Expands the spec into its runs (one per variant, or the base run).
    pub fn runs(&self) -> Result<Vec<RunPlan>, ExperimentError> {
        let check = |p: &TrainParams, prefix: &str| -> Result<TrainSpec, ExperimentError> {
            p.check().map_err(|e| ExperimentError::from(e).within(prefix))
        };
        let base_spec = check(&self.train, "train")?;
        if self.variants.is_empty() {
            return Ok(vec![RunPlan { run_id: self.name.clone(), label: "base".into(), train: base_spec }]);
        }
        let base = toml::Value::try_from(&self.train).expect("train parameters serialise");
        let mut seen = std::collections::BTreeSet::new();
        self.variants
            .iter()
            .enumerate()
            .map(|(i, v)| {
                if v.label.is_empty() || !v.label.chars().all(|c| c.is_ascii_alphanumeric() || "-_.=".contains(c)) {
                    return Err(invalid(
                        format!("variants[{i}].label"),
                        format!("must be non-empty letters, digits or - _ . = (got `{}`)", v.label),
                    ));
                }
                if !seen.insert(v.label.clone()) {
                    return Err(invalid(
                        format!("variants[{i}].label"),
                        format!("must be unique (`{}` repeats)", v.label),
                    ));
                }
                let mut table = base.as_table().expect("a table").clone();
                for (k, val) in kinds_first(&v.set) {
                    assign(&mut table, k, val.clone())?;
                }
                let params: TrainParams = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                    invalid(format!("variants[{i}].set.{}", e.path()), e.into_inner().message().replace('\n', " "))
                })?;
                let train = check(&params, &format!("variants[{i}] ({}): train", v.label))?;
                Ok(RunPlan { run_id: format!("{}/{}", self.name, v.label), label: v.label.clone(), train })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"
name = "tiny"
analysis = "saddle"
[train]
dims = [4, 6, 4]
lr = 0.05
steps = 100
seeds = [1, 2]
[train.teacher.spectrum]
kind = "list"
s = [2.0, 1.0]
[[variants]]
label = "noisy"
set = { "data.sigma" = 0.3 }
"#;

    #[test]
    fn parses_overrides_and_expands_variants() {
        let spec = ExperimentSpec::from_toml(SPEC, &[parse_assignment("train.lr=0.02").unwrap()]).unwrap();
        assert_eq!(spec.train.lr, 0.02);
        let runs = spec.runs().unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].run_id, "tiny/noisy");
        assert_eq!(runs[0].train.params().data.sigma, 0.3);
        let again = ExperimentSpec::from_toml(&spec.to_toml(), &[]).unwrap();
        assert_eq!(again, spec);
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            ("train.lrr=1", "train.lrr: unknown field `lrr`, expected one of `dims`"),
            ("train.lr=-1", "train.lr: must be finite and positive (got -1.0)"),
            ("train.lr=abc", "train.lr: invalid type: string \"abc\", expected f64"),
            ("train.dims=[4]", "train.dims: must list at least an input and an output width"),
            ("name=a b", "name: must be non-empty letters"),
            ("train.lr.x=1", "train.lr: is not a table"),
        ];
        for (set, expected) in cases {
            let err = ExperimentSpec::from_toml(SPEC, &[parse_assignment(set).unwrap()]).unwrap_err().to_string();
            assert!(err.starts_with(expected), "{set}: expected `{expected}`, got `{err}`");
        }
        let err = ExperimentSpec::from_toml("name = [", &[]).unwrap_err().to_string();
        assert!(err.starts_with("spec line 1: malformed TOML"), "{err}");
        assert!(parse_assignment("train.lr").unwrap_err().to_string().starts_with("--set: must be KEY=VALUE"));
    }
}
