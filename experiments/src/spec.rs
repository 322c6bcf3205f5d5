//! Experiment specs: the TOML file format, typed overrides of any field, variants, and the
//! check that expands a spec into concrete runs with deterministic ids.

use std::collections::BTreeMap;

use modewise_dln::{BackendKind, TrainParams, TrainSpec};
use modewise_theory::Scheme;
use modewise_theory::refine::MAX_HALVINGS;
use serde::{Deserialize, Serialize};

use crate::ExperimentError;
use crate::resources::{Estimate, check_memory, estimate_run, kept_bytes};

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
    /// The Boltzmann law's scaling of the stationary variance with `η`, `B`, `σ`, `s` and `L`,
    /// one factor at a time around a base point, for the network, the exact chain and the SDE,
    /// and where the SDE breaks down in `η` (`crate::scaling`).
    Scaling,
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
    /// Time step of the SDE ensemble in units of `η` (1: one SDE step per SGD step): the
    /// step of the `sde_fixed_step` overlay (of `sde` itself when `sde_refine` is off).
    pub sde_dt_over_lr: f64,
    /// Integrate the `sde` overlay as the SDE: `dt` halved from `η` until its mean and
    /// variance stop changing within one standard error (`modewise_theory::refine`), beside the
    /// fixed-step `sde_fixed_step`. Off: `sde` is the fixed-step ensemble alone.
    pub sde_refine: bool,
    /// Most halvings of the refined SDE (1 to the theory crate's `MAX_HALVINGS`, 16): it costs
    /// up to `2^(h+1)` fixed-step ensembles, which the time estimate counts; when they do not
    /// suffice the rows are the finest level, flagged `sde_converged = false`.
    pub sde_max_halvings: u32,
    /// Paths of the exact per-mode SGD chain per mode (0: none).
    pub chain_paths: usize,
    /// The exact stationary density and the Boltzmann law (with label noise).
    pub stationary: bool,
    /// The first-order (in `η`) departure of the transient mean from gradient flow on the probe
    /// times (`modewise_theory::transient`, `docs/theory.md` §7.2.6): the SDE's, the SDE's without
    /// its Itô term, and the exact chain's.
    pub mean_departure: bool,
}

impl Default for Overlays {
    fn default() -> Self {
        Self {
            gradient_flow: true,
            sde_paths: 0,
            sde_scheme: Scheme::EulerMaruyama,
            sde_dt_over_lr: 1.0,
            sde_refine: true,
            sde_max_halvings: 4,
            chain_paths: 0,
            stationary: false,
            mean_departure: false,
        }
    }
}

/// One variant of an experiment: a label and overrides of the base training parameters, keyed
/// as `--set` keys them: dotted paths from the top of the spec, `"train.init.kind" =
/// "gaussian"`, `"train.data.sigma" = 0.3`. The older form without `train.` (`"data.sigma"`) is
/// still read, as the same key; a variant may not give one field in both forms, and sets only
/// `train.*` fields. A variant may be marked as a negative control.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    /// Short label, unique in the experiment; part of the run id.
    pub label: String,
    /// Overrides of `train` fields, by their dotted path (`train.lr`).
    #[serde(default)]
    pub set: BTreeMap<String, toml::Value>,
    /// Marks the variant as a negative control (`docs/theory.md` §9.1): a setting that violates
    /// a premise of the claims, where some verdicts must fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<Control>,
}

/// A negative control: why the variant violates a premise, and which verdicts the theory cannot
/// judge it by so must fail. Verdicts whose premise the code checks itself (realisability, the
/// discriminant bound, the band near it, a start above the peak) are expected to fail without
/// being listed; `fails` names the others.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Control {
    /// The violated premise, in words (shown in the `premise` column of the failing verdicts).
    pub reason: String,
    /// Verdicts expected to fail besides those the code detects: `QUANTITY` (every mode) or
    /// `QUANTITY@K` (mode `K`, 0-based), quantities as in the `summary` table.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fails: Vec<String>,
}

impl Control {
    /// Whether the control lists the verdict on `quantity` of mode `k` as expected to fail.
    pub fn lists(&self, quantity: crate::table::Quantity, k: usize) -> bool {
        self.fails.iter().any(|f| match f.split_once('@') {
            Some((q, mode)) => q == quantity.name() && mode.parse() == Ok(k),
            None => f == quantity.name(),
        })
    }

    /// Checks the reason and the listed verdicts (fields named below `field`).
    fn check(&self, field: &str) -> Result<(), ExperimentError> {
        if self.reason.trim().is_empty() {
            return Err(invalid(format!("{field}.reason"), "must say which premise the control violates"));
        }
        for (j, f) in self.fails.iter().enumerate() {
            let (q, mode) = f.split_once('@').map_or((f.as_str(), None), |(q, m)| (q, Some(m)));
            if crate::table::Quantity::from_name(q).is_none() || mode.is_some_and(|m| m.parse::<usize>().is_err()) {
                return Err(invalid(
                    format!("{field}.fails[{j}]"),
                    format!(
                        "must be a summary quantity, optionally @ a mode index, e.g. variance_over_T@1 (got `{f}`)"
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl Variant {
    /// The value this variant sets for the training field at `path` (below `train`, e.g.
    /// `data.sigma`), in either key form, with the key as written.
    pub fn get(&self, path: &str) -> Option<(&String, &toml::Value)> {
        self.set.iter().find(|(k, _)| train_path(k) == path)
    }
}

/// The path below `train` of a variant's key: `train.data.sigma` and (the older form)
/// `data.sigma` are both `data.sigma`.
pub fn train_path(key: &str) -> &str {
    key.strip_prefix("train.").unwrap_or(key)
}

/// Whether two dotted paths are the same field or one lies inside the other (`init` and
/// `init.gamma`).
fn overlapping(a: &str, b: &str) -> bool {
    let inside = |inner: &str, outer: &str| inner.strip_prefix(outer).is_some_and(|rest| rest.starts_with('.'));
    a == b || inside(a, b) || inside(b, a)
}

/// A variant's setting that an override of the base replaced: every `train.*` override
/// applies to every run, so a variant's own value of that field (or of a field inside it, or,
/// for an override of a `kind`, of any field of that table) is dropped, and the run keeps its
/// label. What `modewise run` prints as a note.
#[derive(Debug, Clone, PartialEq)]
pub struct Shadowed {
    /// The override's key (`train.data.sigma`).
    pub key: String,
    /// The override's value.
    pub value: toml::Value,
    /// The variant's position.
    pub variant: usize,
    /// The variant's label.
    pub label: String,
    /// The variant's key and value that were dropped.
    pub dropped: (String, toml::Value),
}

impl std::fmt::Display for Shadowed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (key, was) = &self.dropped;
        write!(
            f,
            "{} = {} applies to every run, so variants[{}] ({}) no longer sets {key} = {was} (it keeps its label)",
            self.key, self.value, self.variant, self.label
        )
    }
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
    /// Whether every variant draws the same random numbers (the base's `train.streams`), for
    /// paired comparisons. By default (`false`) variant `i` (0-based) runs in the namespaces of
    /// the base's `train.streams` plus `i`, so the variants are independent samples.
    #[serde(default)]
    pub common_random_numbers: bool,
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
    /// The variant's negative control, if it is one.
    pub control: Option<Control>,
}

/// A checked experiment: the spec with its runs, each with checked training parameters. Built
/// once by [`ExperimentSpec::check`] (as [`TrainParams::check`] builds a [`TrainSpec`]); running
/// it needs no further checks.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedExperiment {
    spec: ExperimentSpec,
    plans: Vec<RunPlan>,
    estimate: Estimate,
}

impl CheckedExperiment {
    /// The spec (as written, before the variants are applied).
    pub fn spec(&self) -> &ExperimentSpec {
        &self.spec
    }

    /// The runs: one per variant in the spec's order, or the base run.
    pub fn plans(&self) -> &[RunPlan] {
        &self.plans
    }

    /// The experiment's name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// What running it is estimated to cost (memory, which the check refused beyond what the
    /// machine has available, and time).
    pub fn estimate(&self) -> &Estimate {
        &self.estimate
    }
}

fn invalid(field: impl Into<String>, rule: impl Into<String>) -> ExperimentError {
    ExperimentError::Invalid { field: field.into(), rule: rule.into() }
}

/// One override of a spec field: a key and a TOML value.
///
/// The key is a dotted path from the top of the spec (`train.lr`, `train.data.sigma`,
/// `overlays.sde_paths`, `name`), or addresses one variant by its position: `variants[I].label`,
/// `variants[I].set` (the whole table) or `variants[I].set.KEY`, where `KEY` is one key of the
/// variant's `set` table, itself a dotted path below `train` (`variants[0].set.data.sigma`).
/// Setting a `kind` (of `init`, `data.source`, `teacher.spectrum`) to a new value clears its
/// table first, since the fields of one kind do not apply to another.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    key: String,
    value: toml::Value,
}

/// The top-level key of a file of several specs (`[[experiment]]`).
const SEVERAL: &str = "experiment";

/// Where an override lands.
enum Target<'a> {
    /// A dotted path from the top of the spec.
    Spec(&'a str),
    /// A dotted path inside variant `index`.
    Variant { index: usize, rest: &'a str },
}

impl Override {
    /// An override of `key` with `value` (any value TOML can hold: numbers, strings, lists,
    /// tables). The key must be a dotted field path (see [`Override`]).
    pub fn new(key: &str, value: impl Serialize) -> Result<Self, ExperimentError> {
        let key = key.trim();
        let path_rule = || format!("key must be a dotted field path such as train.lr (got `{key}`)");
        if key.is_empty() || key.split('.').any(|p| p.is_empty()) {
            return Err(invalid("override", path_rule()));
        }
        if let Some(rest) = key.strip_prefix("variants[") {
            let index_then_rest = rest.split_once("].").filter(|(i, _)| i.parse::<usize>().is_ok());
            if index_then_rest.is_none() {
                return Err(invalid(
                    "override",
                    format!("a variant's key must read variants[I].set.KEY or variants[I].label (got `{key}`)"),
                ));
            }
        }
        let value = toml::Value::try_from(value)
            .map_err(|e| invalid(key, format!("cannot be set to this value: {}", e.to_string().trim())))?;
        Ok(Self { key: key.to_string(), value })
    }

    /// The key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The value.
    pub fn value(&self) -> &toml::Value {
        &self.value
    }

    fn target(&self) -> Target<'_> {
        let variant =
            self.key.strip_prefix("variants[").and_then(|rest| rest.split_once("].")).and_then(|(i, rest)| {
                let index = i.parse().ok()?;
                Some(Target::Variant { index, rest })
            });
        variant.unwrap_or(Target::Spec(&self.key))
    }

    /// Whether the override sets a `kind` (applied before the others).
    fn sets_kind(&self) -> bool {
        self.key.ends_with("kind")
    }
}

impl std::str::FromStr for Override {
    type Err = ExperimentError;

    /// Parses `KEY=VALUE`: the value is read as a TOML value (`0.1`, `[1, 2]`, `"ndarray"`,
    /// `true`, `{ kind = "gaussian" }`), or taken as a string when it does not parse.
    fn from_str(arg: &str) -> Result<Self, ExperimentError> {
        let (key, value) =
            arg.split_once('=').ok_or_else(|| invalid("override", format!("must be KEY=VALUE (got `{arg}`)")))?;
        let value = value.trim();
        let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(value.to_string()));
        Self::new(key, parsed)
    }
}

impl std::fmt::Display for Override {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

/// Sets `value` at the dotted `key` inside `table`, creating tables on the way. Setting a
/// `kind` to a new value clears its table first.
pub(crate) fn assign(table: &mut toml::Table, key: &str, value: toml::Value) -> Result<(), ExperimentError> {
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

/// A variant's overrides with the `kind` keys first, so that a new kind's fields land in its
/// fresh table.
fn kinds_first<'a>(
    overrides: impl IntoIterator<Item = (&'a String, &'a toml::Value)>,
) -> Vec<(&'a String, &'a toml::Value)> {
    let mut v: Vec<_> = overrides.into_iter().collect();
    v.sort_by_key(|(k, _)| !k.ends_with("kind"));
    v
}

/// Applies one override to a spec's TOML table; returns the variants' settings it replaced
/// (see [`Shadowed`]).
pub(crate) fn apply_one(table: &mut toml::Table, o: &Override) -> Result<Vec<Shadowed>, ExperimentError> {
    let (index, rest) = match o.target() {
        Target::Spec(key) => {
            assign(table, key, o.value.clone())?;
            return Ok(match key.strip_prefix("train.") {
                Some(path) => drop_from_variants(table, o, path),
                None => Vec::new(),
            });
        }
        Target::Variant { index, rest } => (index, rest),
    };
    let count = table.get("variants").and_then(toml::Value::as_array).map_or(0, Vec::len);
    let variant =
        table.get_mut("variants").and_then(toml::Value::as_array_mut).and_then(|v| v.get_mut(index)).ok_or_else(
            || invalid(format!("variants[{index}]"), format!("does not exist (the spec has {count} variants)")),
        )?;
    let variant = variant
        .as_table_mut()
        .ok_or_else(|| invalid(format!("variants[{index}]"), "must be a table with a label and a set table"))?;
    match rest.strip_prefix("set.") {
        // The rest is one key of `set`: a dotted path below `train`, kept whole.
        Some(key) => {
            let set = variant.entry("set").or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let set = set
                .as_table_mut()
                .ok_or_else(|| invalid(format!("variants[{index}].set"), "must be a table of train keys"))?;
            // The key as the variant writes it, whichever form the override uses.
            let existing = set.keys().find(|k| train_path(k) == train_path(key)).cloned();
            set.insert(existing.unwrap_or_else(|| key.to_string()), o.value.clone());
            Ok(Vec::new())
        }
        None => assign(variant, rest, o.value.clone()).map(|()| Vec::new()),
    }
}

/// Drops from every variant of `table` its settings that the override `o` of the base field
/// `train.<path>` replaces (see [`Shadowed`]), and returns them.
fn drop_from_variants(table: &mut toml::Table, o: &Override, path: &str) -> Vec<Shadowed> {
    // An override of a kind starts a fresh table: the variant's fields of that table go too.
    let path =
        if path.ends_with(".kind") || path == "kind" { path.rsplit_once('.').map_or(path, |p| p.0) } else { path };
    let mut shadowed = Vec::new();
    let Some(variants) = table.get_mut("variants").and_then(toml::Value::as_array_mut) else { return shadowed };
    for (i, variant) in variants.iter_mut().enumerate() {
        let Some(variant) = variant.as_table_mut() else { continue };
        let label = variant.get("label").and_then(toml::Value::as_str).unwrap_or_default().to_string();
        let Some(set) = variant.get_mut("set").and_then(toml::Value::as_table_mut) else { continue };
        let hit: Vec<String> = set.keys().filter(|k| overlapping(train_path(k), path)).cloned().collect();
        for key in hit {
            let was = set.remove(&key).expect("a key just found");
            shadowed.push(Shadowed {
                key: o.key.clone(),
                value: o.value.clone(),
                variant: i,
                label: label.clone(),
                dropped: (key, was),
            });
        }
    }
    shadowed
}

/// Applies overrides to a spec's TOML table: a new list of `variants` first, then `kind`
/// keys, then the other keys of the spec, then the keys of single variants (`variants[I]…`), so that an override of one
/// variant wins over an override of the base whatever their order. A `train.*` override
/// applies to every run: the variants' own values of that field are dropped and returned.
fn apply(table: &mut toml::Table, overrides: &[Override]) -> Result<Vec<Shadowed>, ExperimentError> {
    let mut ordered: Vec<&Override> = overrides.iter().collect();
    ordered.sort_by_key(|o| (matches!(o.target(), Target::Variant { .. }), o.key != "variants", !o.sets_kind()));
    let mut shadowed = Vec::new();
    for o in ordered {
        shadowed.extend(apply_one(table, o)?);
    }
    Ok(shadowed)
}

/// The error of malformed TOML in `what` (`spec`, `sweep file`), naming the line where the
/// parser stopped (`spec line 3`).
pub(crate) fn malformed_toml(what: &str, text: &str, e: &toml::de::Error) -> ExperimentError {
    // The line is one more than the line breaks before the error's first byte.
    let line = e.span().map(|s| text.as_bytes()[..s.start.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1);
    let msg = e.message().replace('\n', " ");
    invalid(line.map_or(what.to_string(), |l| format!("{what} line {l}")), format!("malformed TOML: {msg}"))
}

/// Every value of a TOML table by its dotted key (arrays, and arrays of tables, whole).
fn flat(table: &toml::Table) -> BTreeMap<String, &toml::Value> {
    fn walk<'a>(prefix: &str, t: &'a toml::Table, out: &mut BTreeMap<String, &'a toml::Value>) {
        for (k, v) in t {
            let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
            match v {
                toml::Value::Table(inner) => walk(&key, inner, out),
                other => {
                    out.insert(key, other);
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", table, &mut out);
    out
}

/// The first difference between two specs (or sweeps) as TOML tables, in the order of their
/// dotted keys: `train.lr is 0.02 there and 0.01 here` (`there`: `old`, `here`: `new`; a key
/// one lacks is `absent`); `None` when they are the same.
pub(crate) fn first_difference(old: &toml::Table, new: &toml::Table) -> Option<String> {
    let (a, b) = (flat(old), flat(new));
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter().find_map(|k| {
        let (x, y) = (a.get(k), b.get(k));
        (x != y).then(|| {
            let show = |v: Option<&&toml::Value>| v.map_or("absent".to_string(), |v| v.to_string());
            format!("{k} is {} there and {} here", show(x), show(y))
        })
    })
}

impl ExperimentSpec {
    /// Reads a spec from TOML text with overrides applied (see [`Override`]). Unknown keys and
    /// wrong types are errors naming the field; the rules are checked by [`Self::check`].
    pub fn from_toml(text: &str, overrides: &[Override]) -> Result<Self, ExperimentError> {
        Self::from_toml_noting(text, overrides).map(|(spec, _)| spec)
    }

    /// [`Self::from_toml`], also returning the variants' settings that the overrides replaced
    /// (see [`Shadowed`]).
    pub fn from_toml_noting(text: &str, overrides: &[Override]) -> Result<(Self, Vec<Shadowed>), ExperimentError> {
        let mut table: toml::Table = text.parse().map_err(|e| malformed_toml("spec", text, &e))?;
        let shadowed = apply(&mut table, overrides)?;
        Ok((Self::from_table(table)?, shadowed))
    }

    /// Reads one spec, or several: a file whose top level is an array of tables `[[experiment]]`
    /// (each a whole spec, its tables written `[experiment.train]`, `[[experiment.variants]]`)
    /// holds several, which run together as one unit, as `modewise presets --show demo` prints
    /// them. The overrides apply to each; errors name the spec's position
    /// (`experiment[1]: train.lr: …`).
    pub fn several_from_toml(
        text: &str,
        overrides: &[Override],
    ) -> Result<Vec<(Self, Vec<Shadowed>)>, ExperimentError> {
        let mut table: toml::Table = text.parse().map_err(|e| malformed_toml("spec", text, &e))?;
        let several = match table.remove(SEVERAL) {
            None => return Self::from_toml_noting(text, overrides).map(|one| vec![one]),
            Some(toml::Value::Array(_)) if !table.is_empty() => {
                let other = table.keys().next().cloned().unwrap_or_default();
                return Err(invalid(other, format!("a file of several specs holds only [[{SEVERAL}]] tables")));
            }
            Some(toml::Value::Array(specs)) if !specs.is_empty() => specs,
            Some(other) => {
                return Err(invalid(
                    SEVERAL,
                    format!("must be a non-empty array of spec tables, [[{SEVERAL}]] (got {})", other.type_str()),
                ));
            }
        };
        several
            .into_iter()
            .enumerate()
            .map(|(i, spec)| {
                let within = |e: ExperimentError| e.within(&format!("{SEVERAL}[{i}]"));
                let toml::Value::Table(mut spec) = spec else {
                    return Err(invalid(format!("{SEVERAL}[{i}]"), "must be a spec table"));
                };
                let shadowed = apply(&mut spec, overrides).map_err(within)?;
                Ok((Self::from_table(spec).map_err(within)?, shadowed))
            })
            .collect()
    }

    /// Several specs as one TOML text that [`Self::several_from_toml`] reads back (one spec is
    /// written as itself).
    pub fn several_to_toml(specs: &[Self]) -> String {
        if let [one] = specs {
            return one.to_toml();
        }
        #[derive(Serialize)]
        struct Several<'a> {
            experiment: &'a [ExperimentSpec],
        }
        toml::to_string(&Several { experiment: specs }).expect("specs always serialise")
    }

    /// Deserializes a spec from a TOML table (unknown keys and wrong types are errors naming
    /// the field; the rules are checked by [`Self::check`]).
    pub fn from_table(table: toml::Table) -> Result<Self, ExperimentError> {
        serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." || path.is_empty() { "spec".to_string() } else { path };
            invalid(field, e.into_inner().message().replace('\n', " "))
        })
    }

    /// This spec with overrides applied (see [`Override`]): what `modewise run PRESET --set
    /// KEY=VALUE` runs. Unknown keys and wrong types are errors naming the field; the rules are
    /// checked by [`Self::check`].
    pub fn with_overrides(&self, overrides: &[Override]) -> Result<Self, ExperimentError> {
        self.with_overrides_noting(overrides).map(|(spec, _)| spec)
    }

    /// [`Self::with_overrides`], also returning the variants' settings that the overrides
    /// replaced (see [`Shadowed`]).
    pub fn with_overrides_noting(&self, overrides: &[Override]) -> Result<(Self, Vec<Shadowed>), ExperimentError> {
        let mut table = toml::Table::try_from(self).expect("a spec always serialises to a table");
        let shadowed = apply(&mut table, overrides)?;
        Ok((Self::from_table(table)?, shadowed))
    }

    /// This spec with every run on `backend`: the base's backend replaced and any variant's
    /// `backend` dropped.
    pub fn with_backend(&self, backend: BackendKind) -> Self {
        let mut spec = self.clone();
        spec.train.backend = backend;
        for v in &mut spec.variants {
            v.set.retain(|k, _| train_path(k) != "backend");
        }
        spec
    }

    /// The spec as TOML (stored in every output file's metadata).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a spec always serialises")
    }

    /// Checks the spec and expands it into its runs (one per variant, or the base run), each
    /// with checked training parameters.
    pub fn check(&self) -> Result<CheckedExperiment, ExperimentError> {
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
        if !(1..=MAX_HALVINGS).contains(&o.sde_max_halvings) {
            return Err(invalid(
                "overlays.sde_max_halvings",
                format!("must lie between 1 and {MAX_HALVINGS} (got {})", o.sde_max_halvings),
            ));
        }
        let runs = self.runs()?;
        // What the runs will cost, before anything is allocated (checking the parameters
        // builds the teacher): one run at a time, the records of all kept until written.
        let mut estimate = Estimate::default();
        for (_, _, params, prefix, _) in &runs {
            let run = estimate_run(params, &self.overlays, self.analysis, &format!("{prefix}train"));
            estimate.then(&run, kept_bytes(params));
        }
        if !self.variants.is_empty() {
            // The base is checked too (its teacher built), though only its variants run.
            let base = estimate_run(
                &self.train,
                &Overlays { sde_paths: 0, chain_paths: 0, ..self.overlays.clone() },
                Analysis::None,
                "train",
            );
            estimate.bytes = estimate.bytes.max(base.bytes);
            if base.largest.as_ref().map(|l| l.2) > estimate.largest.as_ref().map(|l| l.2) {
                estimate.largest = base.largest;
            }
        }
        check_memory(&estimate)?;
        if !self.variants.is_empty() {
            // The base's own rules hold even when every run is a variant.
            self.train.check().map_err(|e| ExperimentError::from(e).within("train"))?;
        }
        let plans = runs
            .into_iter()
            .map(|(run_id, label, params, prefix, control)| {
                if self.analysis == Analysis::SdeVsSgd && params.steps == 0 {
                    return Err(invalid(
                        format!("{prefix}train.steps"),
                        "must be at least 1 with analysis = \"sde-vs-sgd\" (it compares the last step with the SDE) (got 0)",
                    ));
                }
                let train = params.check().map_err(|e| ExperimentError::from(e).within(&format!("{prefix}train")))?;
                Ok(RunPlan { run_id, label, train, control })
            })
            .collect::<Result<_, _>>()?;
        Ok(CheckedExperiment { spec: self.clone(), plans, estimate })
    }

    /// The spec's runs before their parameters are checked: run id, label, training parameters,
    /// the prefix that names their fields (empty for the base run, `variants[I] (label): ` for a
    /// variant) and the variant's control marking.
    #[allow(clippy::type_complexity)]
    fn runs(&self) -> Result<Vec<(String, String, TrainParams, String, Option<Control>)>, ExperimentError> {
        if self.variants.is_empty() {
            return Ok(vec![(self.name.clone(), "base".into(), self.train.clone(), String::new(), None)]);
        }
        let base = toml::Table::try_from(&self.train).expect("train parameters serialise");
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
                if let Some(c) = &v.control {
                    c.check(&format!("variants[{i}].control"))?;
                }
                let mut table = base.clone();
                if !self.common_random_numbers {
                    // Variant i: the base's namespaces plus i (independent samples); a variant
                    // that sets its own `streams` keeps them.
                    let base_streams = self.train.streams;
                    let shifted = modewise_dln::StreamNamespaces {
                        init: base_streams.init + i as u64,
                        data: base_streams.data + i as u64,
                    };
                    table.insert("streams".into(), toml::Value::try_from(shifted).expect("namespaces serialise"));
                }
                let mut paths = BTreeMap::new();
                for (k, val) in kinds_first(&v.set) {
                    let path = train_path(k);
                    let top = path.split('.').next().unwrap_or(path);
                    if ["name", "description", "analysis", "overlays", "variants", "sweep"].contains(&top) {
                        return Err(invalid(
                            format!("variants[{i}].set.{k}"),
                            "a variant sets only train fields (keys such as train.lr)",
                        ));
                    }
                    if let Some(other) = paths.insert(path, k) {
                        return Err(invalid(
                            format!("variants[{i}].set.{k}"),
                            format!("names the same field as `{other}`: give it once (as train.{path})"),
                        ));
                    }
                    assign(&mut table, path, val.clone())?;
                }
                let params: TrainParams = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                    invalid(format!("variants[{i}].set.{}", e.path()), e.into_inner().message().replace('\n', " "))
                })?;
                let prefix = format!("variants[{i}] ({}): ", v.label);
                Ok((format!("{}/{}", self.name, v.label), v.label.clone(), params, prefix, v.control.clone()))
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

    fn set(arg: &str) -> Override {
        arg.parse().unwrap()
    }

    /// Parses, overrides and checks `text`, as `modewise run FILE --set …` does.
    fn parse_and_check(text: &str, overrides: &[Override]) -> Result<CheckedExperiment, ExperimentError> {
        ExperimentSpec::from_toml(text, overrides)?.check()
    }

    #[test]
    fn parses_overrides_and_expands_variants() {
        let spec = ExperimentSpec::from_toml(SPEC, &[set("train.lr=0.02")]).unwrap();
        assert_eq!(spec.train.lr, 0.02);
        let checked = spec.check().unwrap();
        let runs = checked.plans();
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
        for (arg, expected) in cases {
            let err = parse_and_check(SPEC, &[set(arg)]).unwrap_err().to_string();
            assert!(err.starts_with(expected), "{arg}: expected `{expected}`, got `{err}`");
        }
        let err = ExperimentSpec::from_toml("name = [", &[]).unwrap_err().to_string();
        assert!(err.starts_with("spec line 1: malformed TOML"), "{err}");
        // The library names its own field; the command line names the flag (`--set`).
        let err = "train.lr".parse::<Override>().unwrap_err().to_string();
        assert!(err.starts_with("override: must be KEY=VALUE"), "{err}");
    }

    /// Three variants over a base whose `data.sigma` is 0.1.
    const VARIANTS: &str = r#"
name = "three"
[train]
dims = [4, 6, 4]
lr = 0.05
steps = 100
seeds = [1, 2, 3]
[train.data]
sigma = 0.1
[train.teacher.spectrum]
kind = "list"
s = [2.0, 1.0]
[[variants]]
label = "base"
[[variants]]
label = "slow"
set = { lr = 0.01, steps = 500 }
[[variants]]
label = "gauss"
set = { "init.kind" = "gaussian", "init.gamma" = 2.0, backend = "flex" }
"#;

    #[test]
    fn a_checked_experiment_holds_the_spec_and_one_checked_plan_per_variant() {
        let spec = ExperimentSpec::from_toml(VARIANTS, &[]).unwrap();
        let checked = spec.check().unwrap();
        assert_eq!(checked.spec(), &spec);
        assert_eq!(checked.name(), "three");
        let ids: Vec<&str> = checked.plans().iter().map(|p| p.run_id.as_str()).collect();
        assert_eq!(ids, ["three/base", "three/slow", "three/gauss"]);
        let labels: Vec<&str> = checked.plans().iter().map(|p| p.label.as_str()).collect();
        assert_eq!(labels, ["base", "slow", "gauss"]);
        let [base, slow, gauss] = checked.plans() else { panic!("three plans") };
        assert_eq!(base.train.params(), spec.train.check().unwrap().params(), "no overrides: the base");
        assert_eq!((slow.train.params().lr, slow.train.params().steps), (0.01, 500));
        assert_eq!((slow.train.params().dims.clone(), slow.train.params().data.sigma), (vec![4, 6, 4], 0.1));
        assert_eq!(
            gauss.train.params().init,
            modewise_dln::InitScheme::Gaussian { std: modewise_dln::init::GaussianStd::Gamma(2.0) }
        );
        assert_eq!(gauss.train.params().backend, BackendKind::Flex);
        assert_eq!(base.train.params().backend, BackendKind::Ndarray);
        // Without variants, one run of the base named after the experiment.
        let single = ExperimentSpec::from_toml(SPEC, &[set("variants=[]")]).unwrap().check().unwrap();
        assert_eq!(single.plans().len(), 1);
        assert_eq!((single.plans()[0].run_id.as_str(), single.plans()[0].label.as_str()), ("tiny", "base"));
        // A variant that breaks a rule is named with its position and label.
        let err = parse_and_check(VARIANTS, &[set("variants[1].set.lr=-0.5")]).unwrap_err().to_string();
        assert_eq!(err, "variants[1] (slow): train.lr: must be finite and positive (got -0.5)");
        let err = parse_and_check(VARIANTS, &[set("variants[2].label=slow")]).unwrap_err().to_string();
        assert_eq!(err, "variants[2].label: must be unique (`slow` repeats)");
    }

    #[test]
    fn with_overrides_sets_typed_fields_like_overrides_of_the_file() {
        let spec = ExperimentSpec::from_toml(VARIANTS, &[]).unwrap();
        let overrides = [
            set("train.init.gamma=3.0"),
            set("train.init.kind=gaussian"),
            set("overlays.sde_paths=7"),
            set("variants[1].set.steps=50"),
            set("variants[1].set.data.sigma=0.7"),
            set("variants[0].label=plain"),
            Override::new("train.seeds", [5u64, 6]).unwrap(),
        ];
        let changed = spec.with_overrides(&overrides).unwrap();
        // The same overrides of the file's text give the same spec.
        assert_eq!(changed, ExperimentSpec::from_toml(VARIANTS, &overrides).unwrap());
        // The kind is set first (clearing the old kind's fields), whatever the order given.
        assert_eq!(
            changed.train.init,
            modewise_dln::InitScheme::Gaussian { std: modewise_dln::init::GaussianStd::Gamma(3.0) }
        );
        assert_eq!(changed.overlays.sde_paths, 7);
        assert_eq!(changed.train.seeds, [5, 6]);
        assert_eq!(changed.variants[0].label, "plain");
        let slow = &changed.variants[1].set;
        assert_eq!(slow.get("steps"), Some(&toml::Value::Integer(50)));
        assert_eq!(slow.get("data.sigma"), Some(&toml::Value::Float(0.7)));
        assert_eq!(slow.get("lr"), Some(&toml::Value::Float(0.01)), "other keys of the variant stay");
        // Everything else is untouched.
        assert_eq!((changed.name.as_str(), changed.train.lr, changed.variants.len()), ("three", 0.05, 3));
        let plans = changed.check().unwrap();
        assert_eq!(plans.plans()[1].train.params().steps, 50);
        assert_eq!(plans.plans()[1].train.params().data.sigma, 0.7);
        // An override of the base applies to every run: the variant's own value is dropped,
        // and said so.
        let (changed, shadowed) = spec.with_overrides_noting(&[set("train.steps=7")]).unwrap();
        let steps: Vec<u64> = changed.check().unwrap().plans().iter().map(|p| p.train.params().steps).collect();
        assert_eq!(steps, [7, 7, 7]);
        assert_eq!(shadowed.len(), 1);
        assert_eq!(
            shadowed[0].to_string(),
            "train.steps = 7 applies to every run, so variants[1] (slow) no longer sets steps = 500 (it keeps its label)"
        );
        // An override of one variant wins over an override of the base, in either order.
        for order in [["variants[1].set.train.steps=9", "train.steps=7"], ["train.steps=7", "variants[1].set.steps=9"]]
        {
            let changed = spec.with_overrides(&order.map(set)).unwrap().check().unwrap();
            let steps: Vec<u64> = changed.plans().iter().map(|p| p.train.params().steps).collect();
            assert_eq!(steps, [7, 9, 7], "{order:?}");
        }
        // A new kind replaces the variant's whole table of that kind.
        let unbalanced = ["train.init.ratio=2.0", "train.init.kind=unbalanced", "train.init.a0=0.2"].map(set);
        let (changed, shadowed) = spec.with_overrides_noting(&unbalanced).unwrap();
        assert_eq!(shadowed.iter().map(|s| s.dropped.0.as_str()).collect::<Vec<_>>(), ["init.gamma", "init.kind"]);
        assert!(changed.check().unwrap().plans().iter().all(|p| p.train.params().init.name() == "unbalanced"));
        // No overrides: the same spec.
        assert_eq!(spec.with_overrides(&[]).unwrap(), spec);
    }

    #[test]
    fn with_overrides_errors_name_the_field() {
        let spec = ExperimentSpec::from_toml(VARIANTS, &[]).unwrap();
        let cases = [
            ("train.lrr=1", "train.lrr: unknown field `lrr`, expected one of `dims`"),
            ("train.steps=-3", "train.steps: invalid value: integer `-3`, expected u64"),
            ("overlays.sde_paths=many", "overlays.sde_paths: invalid type: string \"many\", expected usize"),
            ("train.lr.x=1", "train.lr: is not a table, so `train.lr.x` cannot be set"),
            ("variants[3].set.lr=0.1", "variants[3]: does not exist (the spec has 3 variants)"),
            (
                "variants[0].colour=red",
                "variants[0].colour: unknown field `colour`, expected one of `label`, `set`, `control`",
            ),
            ("variants[0].set=3", "variants[0].set: invalid type: integer `3`, expected a map"),
        ];
        for (arg, expected) in cases {
            let err = spec.with_overrides(&[set(arg)]).unwrap_err().to_string();
            assert!(err.starts_with(expected), "{arg}: expected `{expected}`, got `{err}`");
        }
        let cases = [
            ("a..b=1", "override: key must be a dotted field path such as train.lr (got `a..b`)"),
            ("=1", "override: key must be a dotted field path such as train.lr (got ``)"),
            ("variants[x].set.lr=1", "override: a variant's key must read variants[I].set.KEY or variants[I].label"),
        ];
        for (arg, expected) in cases {
            let err = arg.parse::<Override>().unwrap_err().to_string();
            assert!(err.starts_with(expected), "{arg}: expected `{expected}`, got `{err}`");
        }
    }

    #[test]
    fn the_halving_budget_is_the_theory_crates_bound() {
        let spec = ExperimentSpec::from_toml(VARIANTS, &[]).unwrap();
        let with = |h: u32| spec.with_overrides(&[set(&format!("overlays.sde_max_halvings={h}"))]).unwrap().check();
        assert!(with(1).is_ok() && with(MAX_HALVINGS).is_ok());
        for h in [0, MAX_HALVINGS + 1] {
            let err = with(h).unwrap_err().to_string();
            assert_eq!(err, format!("overlays.sde_max_halvings: must lie between 1 and 16 (got {h})"));
        }
        // The rule is the theory crate's, which refuses the same budgets.
        for h in [0, 1, MAX_HALVINGS, MAX_HALVINGS + 1] {
            assert_eq!(modewise_theory::refine::check_max_halvings("h", h).is_ok(), with(h).is_ok(), "{h}");
        }
    }

    #[test]
    fn variant_keys_read_as_override_keys_and_in_the_older_form() {
        let new_form = VARIANTS
            .replace("set = { lr = 0.01, steps = 500 }", r#"set = { "train.lr" = 0.01, "train.steps" = 500 }"#)
            .replace(
                r#""init.kind" = "gaussian", "init.gamma""#,
                r#""train.init.kind" = "gaussian", "train.init.gamma""#,
            );
        let (old, new) = (parse_and_check(VARIANTS, &[]).unwrap(), parse_and_check(&new_form, &[]).unwrap());
        let params = |c: &CheckedExperiment| c.plans().iter().map(|p| p.train.params().clone()).collect::<Vec<_>>();
        assert_eq!(params(&old), params(&new), "both forms set the same fields");
        // Overrides find the key whichever form the variant and the override use.
        for key in ["variants[1].set.lr=0.02", "variants[1].set.train.lr=0.02"] {
            for text in [VARIANTS, new_form.as_str()] {
                let spec = ExperimentSpec::from_toml(text, &[set(key)]).unwrap();
                assert_eq!(spec.variants[1].set.len(), 2, "{key}: one key per field");
                assert_eq!(spec.check().unwrap().plans()[1].train.params().lr, 0.02, "{key}");
            }
        }
        let both = VARIANTS.replace("set = { lr = 0.01, steps = 500 }", r#"set = { lr = 0.01, "train.lr" = 0.02 }"#);
        let err = parse_and_check(&both, &[]).unwrap_err().to_string();
        assert_eq!(err, "variants[1].set.train.lr: names the same field as `lr`: give it once (as train.lr)");
        let other = VARIANTS.replace("set = { lr = 0.01, steps = 500 }", r#"set = { "overlays.sde_paths" = 5 }"#);
        let err = parse_and_check(&other, &[]).unwrap_err().to_string();
        assert_eq!(err, "variants[1].set.overlays.sde_paths: a variant sets only train fields (keys such as train.lr)");
    }

    /// The rows of `docs/spec.md`'s tables: `(key, default)`, the default as written between
    /// backticks (`None` for —).
    fn documented_keys() -> Vec<(String, Option<String>)> {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/spec.md")).unwrap();
        text.lines()
            .filter(|l| l.starts_with("| `"))
            .map(|l| {
                let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
                let unquote = |c: &str| c.strip_prefix('`').and_then(|c| c.strip_suffix('`')).map(String::from);
                (unquote(cells[0]).unwrap_or_else(|| panic!("a key in backticks: {l}")), unquote(cells[2]))
            })
            .collect()
    }

    #[test]
    fn docs_spec_md_lists_every_key_with_its_default() {
        let documented = documented_keys();
        let default_spec = ExperimentSpec::from_toml("name = \"x\"\n[train]\n", &[]).unwrap();
        let default_table: toml::Table = default_spec.to_toml().parse().unwrap();
        // One spec per kind, so that every kind's fields are seen.
        let kinds = [
            "train.teacher.spectrum={kind=\"power-law\", s_max=2.0, decay=1.0, rank=2, s_min=0.1}",
            "train.teacher.spectrum={kind=\"linear\", s_max=2.0, decay=0.5, rank=2}",
            "train.init={kind=\"gaussian\", scale=0.1}",
            "train.init={kind=\"aligned-balanced\", a0=0.1}",
            "train.init={kind=\"unbalanced\", a0=0.1, factors=[2.0, 0.5, 1.0]}",
            "train.init={kind=\"unbalanced\", a0=0.1, ratio=2.0}",
            "train.init={kind=\"misaligned\", a0=0.1, angle=0.5}",
            "train.init={kind=\"misaligned\", a0=0.1, dose=0.5}",
            "train.data.source={kind=\"fixed\", n=20, whiten=true, train_fraction=0.8}",
            "train.data.source={kind=\"population\"}",
            // Written out only when set.
            "train.checkpoint_every=500",
        ];
        let mut keys: std::collections::BTreeSet<String> = flat(&default_table).into_keys().collect();
        for kind in kinds {
            let spec = default_spec.with_overrides(&[set(kind)]).unwrap_or_else(|e| panic!("{kind}: {e}"));
            let table: toml::Table = spec.to_toml().parse().unwrap();
            keys.extend(flat(&table).into_keys());
        }
        let listed: std::collections::BTreeSet<String> = documented.iter().map(|(k, _)| k.clone()).collect();
        let missing: Vec<&String> = keys.iter().filter(|k| !listed.contains(*k)).collect();
        assert!(missing.is_empty(), "docs/spec.md does not list {missing:?}");
        let pseudo = [
            "variants[I].label",
            "variants[I].control",
            "variants[I].control.reason",
            "variants[I].control.fails",
            "variants[I].set",
            "sweep.<key>",
        ];
        let unknown: Vec<&String> =
            listed.iter().filter(|k| !keys.contains(*k) && !pseudo.contains(&k.as_str())).collect();
        assert!(unknown.is_empty(), "docs/spec.md lists keys the code does not have: {unknown:?}");
        let defaults = flat(&default_table);
        for (key, default) in &documented {
            if let (Some(written), Some(value)) = (default, defaults.get(key).filter(|_| key != "name")) {
                assert_eq!(written, &value.to_string(), "docs/spec.md: the default of {key}");
            }
        }
    }

    #[test]
    fn variants_are_independent_samples_unless_common_random_numbers() {
        let ns = |spec: &ExperimentSpec| -> Vec<(u64, u64)> {
            spec.check()
                .unwrap()
                .plans()
                .iter()
                .map(|p| (p.train.params().streams.init, p.train.params().streams.data))
                .collect()
        };
        let spec = ExperimentSpec::from_toml(VARIANTS, &[]).unwrap();
        assert_eq!(ns(&spec), [(0, 0), (1, 1), (2, 2)], "variant i in namespace i");
        let crn = ExperimentSpec::from_toml(VARIANTS, &[set("common_random_numbers=true")]).unwrap();
        assert_eq!(ns(&crn), [(0, 0), (0, 0), (0, 0)], "one namespace for paired comparisons");
        // The base's namespaces shift; a variant's own wins.
        let shifted = ExperimentSpec::from_toml(
            VARIANTS,
            &[set("train.streams={ init = 0, data = 10 }"), set("variants[2].set.streams=7")],
        )
        .unwrap();
        assert_eq!(ns(&shifted), [(0, 10), (1, 11), (7, 7)]);
        // Without variants, the base's own.
        let single = ExperimentSpec::from_toml(SPEC, &[set("variants=[]"), set("train.streams=5")]).unwrap();
        assert_eq!(ns(&single), [(5, 5)]);
    }

    #[test]
    fn a_control_names_its_reason_and_lists_known_quantities() {
        let spec = ExperimentSpec::from_toml(
            VARIANTS,
            &[set(r#"variants[1].control={ reason = "a large start", fails = ["w_at_peak@1", "d_max"] }"#)],
        )
        .unwrap();
        let plans = spec.check().unwrap();
        let control = plans.plans()[1].control.as_ref().unwrap();
        assert!(plans.plans()[0].control.is_none());
        use crate::table::Quantity;
        assert!(control.lists(Quantity::WAtPeak, 1) && !control.lists(Quantity::WAtPeak, 0));
        assert!(control.lists(Quantity::DMax, 0) && control.lists(Quantity::DMax, 3));
        assert!(!control.lists(Quantity::TLearned, 0));
        let cases = [
            (r#"variants[0].control={ reason = "" }"#, "variants[0].control.reason: must say which premise"),
            (
                r#"variants[0].control={ reason = "x", fails = ["t_learnt"] }"#,
                "variants[0].control.fails[0]: must be a summary quantity",
            ),
            (
                r#"variants[0].control={ reason = "x", fails = ["t_learned@one"] }"#,
                "variants[0].control.fails[0]: must be a summary quantity",
            ),
        ];
        for (arg, expected) in cases {
            let err = parse_and_check(VARIANTS, &[set(arg)]).unwrap_err().to_string();
            assert!(err.starts_with(expected), "{arg}: expected `{expected}`, got `{err}`");
        }
    }

    #[test]
    fn with_backend_moves_every_run() {
        let spec = ExperimentSpec::from_toml(VARIANTS, &[]).unwrap().with_backend(BackendKind::Wgpu);
        let checked = spec.check().unwrap();
        assert!(checked.plans().iter().all(|p| p.train.params().backend == BackendKind::Wgpu));
        assert_eq!(
            checked.plans()[2].train.params().init,
            modewise_dln::InitScheme::Gaussian { std: modewise_dln::init::GaussianStd::Gamma(2.0) }
        );
    }
}
