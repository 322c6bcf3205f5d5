//! What a run will cost, estimated from its unchecked parameters before anything is allocated:
//! the memory it needs (refused when it exceeds what the machine has available) and the time it
//! takes at documented single-core rates (for a warning before very long runs).
//!
//! The memory model counts what grows with the spec: the teacher (`d_L × d_0`, twice while it
//! is built), the members' weights (f64 draws, f32 engine copies with their gradients, f64 host
//! copies for the probes), the batch buffers and activations, a fixed data sample per member,
//! one probe's matrices (`d_0 × d_0`, `d_L × d_L` and per-layer products), the Monte Carlo
//! probe samples, the clones of one member's weights and their batches (`train.n_clones`), the
//! records kept until the tables are written (probes × members × modes), and the theory
//! ensembles' paths × recorded times. The time adds the clones' steps at every probe and the
//! population-GD reference run beside each run that the verdicts need one for. It is meant to be within a factor of two or
//! so, and errs on the high side.

use std::sync::OnceLock;

use modewise_dln::{DataSource, InitScheme, SpectrumSpec, TrainParams};

use crate::ExperimentError;
use crate::spec::{Analysis, Overlays};

/// Bytes of a process running a tiny experiment (the program, its libraries and allocator).
const BASELINE_BYTES: f64 = 100e6;
/// The training rate the time estimate assumes: floating-point operations per second of one
/// core (a release build reaches 2–8·10⁹ on the W1–W3 workloads of `modewise bench`).
pub const FLOPS_PER_SECOND: f64 = 2e9;
/// The theory ensembles' rate the time estimate assumes: path-steps per second of one core
/// (`modewise bench --workload sde` measures about 1.8·10⁸ in a release build).
pub const PATH_STEPS_PER_SECOND: f64 = 5e7;
/// Runs estimated to take longer than this (in seconds) get a warning before they start.
pub const LONG_RUN_SECONDS: f64 = 3600.0;
/// Where the machine's available memory cannot be read, the memory a run may use.
pub const FALLBACK_MEMORY_BYTES: f64 = 8.0 * (1u64 << 30) as f64;
/// The environment variable that sets the memory a run may use instead (bytes, or with a
/// suffix `K`, `M`, `G`, `T`: `64G`).
pub const MEMORY_LIMIT_VAR: &str = "MODEWISE_MEMORY_LIMIT";

/// What a run is estimated to cost.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Estimate {
    /// Peak memory, in bytes.
    pub bytes: f64,
    /// The part of the memory that dominates it: the spec field that sets it, what it is, and
    /// its bytes.
    pub largest: Option<(String, String, f64)>,
    /// Seconds of training (and probing) at [`FLOPS_PER_SECOND`].
    pub training_seconds: f64,
    /// Seconds of theory ensembles at [`PATH_STEPS_PER_SECOND`].
    pub overlay_seconds: f64,
}

impl Estimate {
    /// The estimated time, in seconds.
    pub fn seconds(&self) -> f64 {
        self.training_seconds + self.overlay_seconds
    }

    /// Adds a run that is kept in memory beside this one (its records), or runs after it (its
    /// peak counts once): `kept` of its bytes stay, the rest is transient.
    pub(crate) fn then(&mut self, other: &Estimate, kept: f64) {
        let transient_self = self.bytes;
        self.bytes = transient_self.max(other.bytes) + kept;
        if other.largest.as_ref().map(|l| l.2) > self.largest.as_ref().map(|l| l.2) {
            self.largest.clone_from(&other.largest);
        }
        self.training_seconds += other.training_seconds;
        self.overlay_seconds += other.overlay_seconds;
    }

    /// The time as text: `2.5 h`, `40 min`, `12 s`, `3.1e4 years`.
    pub fn describe_time(&self) -> String {
        describe_seconds(self.seconds())
    }
}

/// Seconds as text with a sensible unit.
pub fn describe_seconds(s: f64) -> String {
    const YEAR: f64 = 365.25 * 86400.0;
    if s >= 1e3 * YEAR {
        format!("{:.1e} years", s / YEAR)
    } else if s >= YEAR {
        format!("{:.1} years", s / YEAR)
    } else if s >= 2.0 * 86400.0 {
        format!("{:.1} days", s / 86400.0)
    } else if s >= 3600.0 {
        format!("{:.1} h", s / 3600.0)
    } else if s >= 60.0 {
        format!("{:.0} min", s / 60.0)
    } else {
        format!("{s:.0} s")
    }
}

/// Bytes as text: `1.6 TB`, `820 MB`.
pub fn describe_bytes(b: f64) -> String {
    for (unit, size) in [("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)] {
        if b >= size {
            return format!("{:.1} {unit}", b / size);
        }
    }
    format!("{b:.0} B")
}

/// The memory parts of one run: `(field, what, bytes)`, and the bytes kept until the tables are
/// written.
struct Parts {
    parts: Vec<(String, String, f64)>,
    kept: f64,
}

impl Parts {
    fn add(&mut self, field: &str, what: String, bytes: f64) {
        self.parts.push((field.to_string(), what, bytes));
    }
}

/// The number of probes of a run of `steps` steps at `per_decade` probes per decade (an upper
/// bound: the log-spaced steps that round to the same step count once).
fn probe_count(steps: u64, per_decade: f64) -> f64 {
    let decades = (steps.max(1) as f64).log10();
    (steps as f64 + 1.0).min(2.0 + per_decade.max(0.0) * decades + 1.0)
}

/// Estimates one run of `p` with the experiment's `overlays` and `analysis`; fields are named
/// below `prefix` (`train`, or a variant's path).
pub(crate) fn estimate_run(p: &TrainParams, overlays: &Overlays, analysis: Analysis, prefix: &str) -> Estimate {
    let f = |field: &str| format!("{prefix}.{field}");
    let dims: Vec<f64> = p.dims.iter().map(|&d| d as f64).collect();
    let (d_in, d_out) = (dims.first().copied().unwrap_or(0.0), dims.last().copied().unwrap_or(0.0));
    let depth = dims.len().saturating_sub(1) as f64;
    let weights: f64 = dims.windows(2).map(|w| w[0] * w[1]).sum();
    let widths: f64 = dims.iter().sum();
    let widest = dims.iter().copied().fold(0.0, f64::max);
    let members = p.seeds.len() as f64;
    let batch = p.batch as f64;
    let declared_rank = match &p.teacher.spectrum {
        SpectrumSpec::List { s } => s.len(),
        SpectrumSpec::PowerLaw { rank, .. } | SpectrumSpec::Linear { rank, .. } => *rank,
    };
    let rank = (declared_rank as f64).min(d_in.min(d_out));
    let probes = probe_count(p.steps, p.probes.per_decade);
    let steps = p.steps as f64;

    let mut m = Parts { parts: Vec::new(), kept: 0.0 };
    let teacher = 16.0 * d_out * d_in + 8.0 * rank * (d_in + d_out);
    m.add(&f("dims"), format!("the teacher matrix {d_out} × {d_in}"), teacher);
    let network = 32.0 * members * weights + 16.0 * widest * widest;
    let network_field = if members >= 1000.0 { "seeds" } else { "dims" };
    m.add(&f(network_field), format!("{members} networks of {weights} weights"), network);
    let activations = 12.0 * members * batch * (widths + d_in + d_out);
    m.add(&f("batch"), format!("batches of {batch} for {members} members"), activations);
    if let DataSource::Fixed { n, whiten, .. } = p.data.source {
        let n = n as f64;
        let held = members * n * (4.0 * (d_in + d_out) + 8.0);
        let transient = n * 8.0 * (d_in + d_out) * if whiten { 4.0 } else { 2.0 };
        m.add(&f("data.source.n"), format!("a fixed sample of {n} points per member"), held + transient);
    }
    let probe = 8.0 * (d_in * d_in + d_out * d_out + widths * (d_in + d_out) + 2.0 * depth * rank * (d_in + d_out));
    m.add(&f("dims"), format!("one probe's matrices ({d_in} × {d_in}, {d_out} × {d_out}, …)"), probe);
    if p.n_probe >= 2 {
        let n = p.n_probe as f64;
        m.add(&f("n_probe"), format!("{n} probe samples"), 8.0 * n * (2.0 * d_in + 3.0 * d_out + 3.0 * rank));
    }
    if p.n_clones >= 2 {
        // The clones' weights on the host (f64) and on the engine, and their batches.
        let c = p.n_clones as f64;
        let clones = c * (24.0 * weights + 8.0 * batch * (d_in + d_out + widths));
        m.add(&f("n_clones"), format!("{c} clones of a network of {weights} weights"), clones);
    }
    // Per record: the mode matrix and the per-mode values; per trajectory row (one per mode):
    // the row, its column in the data frame and its encoding.
    let records = members * probes * (8.0 * rank * rank + 300.0 * rank + 8.0 * depth + 200.0);
    // Named by the factor furthest above its usual size.
    let records_field = [(members / 100.0, "seeds"), (probes / 200.0, "probes.per_decade"), (rank / 100.0, "dims")]
        .into_iter()
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map_or("seeds", |(_, field)| field);
    m.add(&f(records_field), format!("{probes} probes × {members} members × {rank} modes kept"), records);
    m.kept += records;
    let ensemble = |paths: usize| paths as f64 * probes * 16.0 + rank * probes * 200.0;
    if overlays.sde_paths > 0 {
        m.add(
            "overlays.sde_paths",
            format!("{} SDE paths × {probes} times", overlays.sde_paths),
            ensemble(overlays.sde_paths),
        );
    }
    if overlays.chain_paths > 0 {
        let what = format!("{} chain paths × {probes} times", overlays.chain_paths);
        m.add("overlays.chain_paths", what, ensemble(overlays.chain_paths));
    }

    // Time: forward and backward passes (and drawing the batch) per member-step, the probes,
    // and the ensembles' path-steps.
    let per_step = match p.data.source {
        DataSource::Population => 6.0 * d_in * weights,
        _ => 6.0 * batch * weights + 20.0 * batch * (d_in + d_out),
    };
    let probe_flops = 4.0 * depth * widths * (d_in + d_out) * widest + 2.0 * p.n_probe as f64 * weights;
    // The clones: one step of `n_clones` copies of each member at every probe.
    let clone_flops = p.n_clones as f64 * (per_step + 2.0 * weights);
    // The population-GD reference (`run::needs_reference`): the same steps and probes again.
    let aligned = matches!(p.init, InitScheme::AlignedBalanced { .. } | InitScheme::Unbalanced { .. });
    let reference = match analysis {
        Analysis::None => false,
        Analysis::Saddle | Analysis::Relax => true,
        Analysis::Stationary | Analysis::SdeVsSgd | Analysis::Scaling => !aligned,
    };
    let reference_flops =
        if reference { steps * members * 6.0 * d_in * weights + probes * members * probe_flops } else { 0.0 };
    let training_seconds =
        (steps * members * per_step + probes * members * (probe_flops + clone_flops) + reference_flops)
            / FLOPS_PER_SECOND;
    // The refined SDE runs at most levels 0..=h, level j at 2^j steps per SGD step.
    let refined = if overlays.sde_refine { 2f64.powi(overlays.sde_max_halvings as i32 + 1) - 1.0 } else { 0.0 };
    let sde_steps = steps / overlays.sde_dt_over_lr.max(f64::MIN_POSITIVE) + refined * steps;
    let mut path_steps = rank * (overlays.sde_paths as f64 * sde_steps + overlays.chain_paths as f64 * steps);
    if analysis == Analysis::SdeVsSgd {
        path_steps += rank * 4000.0 * steps;
    }
    if analysis == Analysis::Scaling {
        // The exact chain of mode 0 (`crate::scaling::CHAIN_PATHS`).
        path_steps += crate::scaling::CHAIN_PATHS as f64 * steps;
    }
    let overlay_seconds = path_steps / PATH_STEPS_PER_SECOND;

    let bytes = BASELINE_BYTES + m.parts.iter().map(|p| p.2).sum::<f64>();
    let largest = m.parts.into_iter().max_by(|a, b| a.2.total_cmp(&b.2));
    Estimate { bytes, largest, training_seconds, overlay_seconds }
}

/// The records part of an estimate of `p` (what stays in memory until the tables are written).
pub(crate) fn kept_bytes(p: &TrainParams) -> f64 {
    let members = p.seeds.len() as f64;
    let (d_in, d_out) = (p.dims.first().copied().unwrap_or(0) as f64, p.dims.last().copied().unwrap_or(0) as f64);
    let rank = match &p.teacher.spectrum {
        SpectrumSpec::List { s } => s.len() as f64,
        SpectrumSpec::PowerLaw { rank, .. } | SpectrumSpec::Linear { rank, .. } => *rank as f64,
    }
    .min(d_in.min(d_out));
    let depth = p.dims.len().saturating_sub(1) as f64;
    members * probe_count(p.steps, p.probes.per_decade) * (8.0 * rank * rank + 300.0 * rank + 8.0 * depth + 200.0)
}

/// The memory a run may use, in bytes, and where that figure comes from: the environment
/// variable [`MEMORY_LIMIT_VAR`] when set; else the smallest of the memory available to new
/// processes (`MemAvailable` in /proc/meminfo) and what the control group's limit leaves
/// (cgroup v2 `memory.max − memory.current`, as under Slurm); else [`FALLBACK_MEMORY_BYTES`].
/// Read once per process.
pub fn available_memory() -> &'static (f64, String) {
    static AVAILABLE: OnceLock<(f64, String)> = OnceLock::new();
    AVAILABLE.get_or_init(|| {
        if let Some(bytes) = std::env::var(MEMORY_LIMIT_VAR).ok().and_then(|v| parse_bytes(&v)) {
            return (bytes, MEMORY_LIMIT_VAR.to_string());
        }
        let meminfo = std::fs::read_to_string("/proc/meminfo").ok().and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
            let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some((kib * 1024.0, "MemAvailable in /proc/meminfo".to_string()))
        });
        let read = |path: &str| std::fs::read_to_string(path).ok().and_then(|t| t.trim().parse::<f64>().ok());
        let cgroup = match (read("/sys/fs/cgroup/memory.max"), read("/sys/fs/cgroup/memory.current")) {
            (Some(max), Some(current)) => {
                Some(((max - current).max(0.0), "the control group's memory.max".to_string()))
            }
            _ => None,
        };
        match (meminfo, cgroup) {
            (Some(a), Some(b)) => {
                if b.0 < a.0 {
                    b
                } else {
                    a
                }
            }
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => (FALLBACK_MEMORY_BYTES, "a fallback where the available memory cannot be read".to_string()),
        }
    })
}

/// `64G`, `512M`, `1000000`: bytes.
fn parse_bytes(text: &str) -> Option<f64> {
    let text = text.trim();
    let (number, scale) = match text.chars().last()?.to_ascii_uppercase() {
        'K' => (&text[..text.len() - 1], 1024.0),
        'M' => (&text[..text.len() - 1], 1024.0 * 1024.0),
        'G' => (&text[..text.len() - 1], 1024.0 * 1024.0 * 1024.0),
        'T' => (&text[..text.len() - 1], 1024.0 * 1024.0 * 1024.0 * 1024.0),
        _ => (text, 1.0),
    };
    number.trim().parse::<f64>().ok().filter(|v| v.is_finite() && *v > 0.0).map(|v| v * scale)
}

/// Refuses an estimate beyond the memory available, naming the field of its largest part.
pub(crate) fn check_memory(estimate: &Estimate) -> Result<(), ExperimentError> {
    let (available, source) = available_memory();
    if estimate.bytes <= *available {
        return Ok(());
    }
    let (field, what) = estimate.largest.clone().map_or(("train".to_string(), String::new()), |(f, w, _)| (f, w));
    Err(ExperimentError::Invalid {
        field,
        rule: format!(
            "the run would need about {} of memory ({what} dominates), more than the {} available ({source})",
            describe_bytes(estimate.bytes),
            describe_bytes(*available)
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(dims: Vec<usize>) -> TrainParams {
        TrainParams { dims, ..TrainParams::default() }
    }

    #[test]
    fn a_huge_square_network_is_named_by_its_dims() {
        let e = estimate_run(&params(vec![100_000, 100_000]), &Overlays::default(), Analysis::None, "train");
        let (field, what, bytes) = e.largest.clone().unwrap();
        assert_eq!(field, "train.dims");
        assert!(what.contains("100000 × 100000"), "{what}");
        assert!(bytes >= 1.6e11 && e.bytes >= bytes, "{e:?}");
        let err = check_memory(&Estimate { bytes: 1e18, ..e }).unwrap_err().to_string();
        assert!(err.starts_with("train.dims: the run would need about 1000.0 PB of memory"), "{err}");
    }

    #[test]
    fn a_small_run_is_small_and_quick() {
        let e = estimate_run(&params(vec![3, 4, 3]), &Overlays::default(), Analysis::None, "train");
        assert!(e.bytes < 2.0 * BASELINE_BYTES, "{e:?}");
        assert!(e.seconds() < 60.0, "{e:?}");
        check_memory(&e).unwrap();
    }

    #[test]
    fn each_blow_up_is_named_by_its_field() {
        let base = params(vec![3, 4, 3]);
        let cases: Vec<(TrainParams, Overlays, &str)> = vec![
            (TrainParams { seeds: (0..10_000_000).collect(), ..base.clone() }, Overlays::default(), "train.seeds"),
            (TrainParams { n_probe: 1_000_000_000_000, ..base.clone() }, Overlays::default(), "train.n_probe"),
            (TrainParams { n_clones: 1_000_000_000_000, ..base.clone() }, Overlays::default(), "train.n_clones"),
            (
                TrainParams {
                    data: modewise_dln::DataParams {
                        source: DataSource::fixed(1_000_000_000_000, false),
                        sigma: 0.0,
                        ..Default::default()
                    },
                    ..base.clone()
                },
                Overlays::default(),
                "train.data.source.n",
            ),
            (base.clone(), Overlays { sde_paths: 1_000_000_000_000, ..Overlays::default() }, "overlays.sde_paths"),
            (base.clone(), Overlays { chain_paths: 1_000_000_000_000, ..Overlays::default() }, "overlays.chain_paths"),
            (TrainParams { batch: 1_000_000_000_000, ..base.clone() }, Overlays::default(), "train.batch"),
        ];
        for (p, o, field) in cases {
            let e = estimate_run(&p, &o, Analysis::None, "train");
            assert_eq!(e.largest.as_ref().map(|l| l.0.as_str()), Some(field), "{e:?}");
            assert!(e.bytes > 1e11, "{field}: {e:?}");
        }
        // Long runs are long.
        let long = TrainParams { steps: 1_000_000_000_000_000, ..base.clone() };
        assert!(estimate_run(&long, &Overlays::default(), Analysis::None, "train").seconds() > LONG_RUN_SECONDS);
        let fine = Overlays { sde_paths: 100, sde_dt_over_lr: 1e-12, ..Overlays::default() };
        assert!(estimate_run(&base, &fine, Analysis::None, "train").overlay_seconds > LONG_RUN_SECONDS);
        // Clones add their steps at every probe; a verdict's population-GD reference its run.
        let time = |p: &TrainParams, a| estimate_run(p, &Overlays::default(), a, "train").training_seconds;
        let plain = time(&base, Analysis::None);
        let probes = probe_count(base.steps, base.probes.per_decade);
        let cloned = time(&TrainParams { n_clones: 16, ..base.clone() }, Analysis::None);
        let b = base.batch as f64;
        let one_step = 6.0 * b * 24.0 + 20.0 * b * 6.0 + 2.0 * 24.0; // 24 weights, d_0 + d_L = 6
        let expected = probes * base.seeds.len() as f64 * 16.0 * one_step / FLOPS_PER_SECOND;
        assert!((cloned - plain - expected).abs() < 1e-9 * expected, "{cloned} − {plain} vs {expected}");
        assert!(time(&base, Analysis::Saddle) > plain);
        let aligned = TrainParams {
            init: InitScheme::AlignedBalanced { a0: modewise_dln::ModeScale::Scalar(0.1) },
            ..base.clone()
        };
        assert_eq!(time(&aligned, Analysis::Stationary), time(&aligned, Analysis::None), "no reference needed");
    }

    #[test]
    fn sizes_and_times_read_well() {
        assert_eq!(parse_bytes("64G"), Some(64.0 * 1024.0 * 1024.0 * 1024.0));
        assert_eq!(parse_bytes("1000"), Some(1000.0));
        assert_eq!(parse_bytes("x"), None);
        assert_eq!(parse_bytes("-5G"), None);
        assert_eq!(describe_bytes(1.6e12), "1.6 TB");
        assert_eq!(describe_seconds(7200.0), "2.0 h");
        assert_eq!(describe_seconds(90.0), "2 min");
        assert!(describe_seconds(1e20).ends_with("years"));
    }
}
