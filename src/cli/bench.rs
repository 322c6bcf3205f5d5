//! `modewise bench`: times one standard workload on this machine (steps, member-steps or
//! path-steps per second), or measures one core's floating-point peak (`--peak`), so anyone can
//! measure their own hardware and backends.

use std::time::{Duration, Instant};

use clap::Args;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use modewise_bench::peak::Peak;
use modewise_bench::{Workload, sde};
use modewise_dln::{BackendKind, GradientPath, InvalidParameter, Trainer};
use modewise_theory::check::positive;

/// A clap value parser for an enum with a table of names: the names are the possible values
/// (listed by `--help` and by the error for any other value), parsed with the enum's `FromStr`.
fn named<T>(names: &'static [(T, &'static str)]) -> impl TypedValueParser<Value = T>
where
    T: std::str::FromStr<Err = InvalidParameter> + Clone + Send + Sync + 'static,
{
    PossibleValuesParser::new(names.iter().map(|&(_, name)| name))
        .map(|name| name.parse::<T>().expect("a possible value parses"))
}

/// The longest measurement `--seconds` may ask for: an hour.
const MAX_SECONDS: f64 = 3600.0;

/// Arguments of `modewise bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// w1, w2, w3 (one network, steps/s), w1e, w2e (ensembles of 64 and 16, member-steps/s) or
    /// sde (per-mode SDE ensemble of 10⁵ paths, L = 4, path-steps/s).
    #[arg(long, value_parser = named(&Workload::NAMES), required_unless_present = "peak")]
    pub workload: Option<Workload>,
    /// Instead of a workload, measure one core's f32 peak: a loop of independent fused
    /// multiply-adds at each vector width the CPU has (AVX-512, AVX2; a portable loop
    /// elsewhere), in GFLOP/s, on the calling thread.
    #[arg(long, conflicts_with_all = ["workload", "backend"])]
    pub peak: bool,
    /// Backend of the DLN workloads (default flex); the sde workload runs on the CPU (the
    /// theory crate) and takes none.
    #[arg(long, value_parser = named(&BackendKind::NAMES))]
    pub backend: Option<BackendKind>,
    /// Gradient path of the DLN workloads: auto (default: fused on the CPU backends,
    /// closed-form on wgpu), fused, closed-form or autodiff (the reference).
    #[arg(long, value_parser = named(&GradientPath::NAMES), default_value = "auto")]
    pub gradient: GradientPath,
    /// Ensemble members of a DLN workload (default: the workload's own, 1 for w1, w2, w3, 64
    /// for w1e, 16 for w2e), trained as one batched ensemble; rates are then member-steps/s.
    #[arg(long)]
    pub members: Option<usize>,
    /// Seconds to measure (at most 3600), after a warm-up of a fifth of that (with --peak: in
    /// all, shared between the widths).
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// Print one JSON object: {"workload", "backend", "threads", "members", "per_second"}; with --peak
    /// {"peak": {"avx512": GFLOP/s, "avx2": GFLOP/s}, "widest", "cpu"} (null for a width the
    /// CPU lacks; {"portable": GFLOP/s} off x86-64).
    #[arg(long)]
    pub json: bool,
}

/// Runs `one` (which does `units` units of work) for a warm-up and then for at least `seconds`;
/// returns units per second.
fn rate(seconds: f64, units: f64, mut one: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_secs_f64(seconds / 5.0) {
        one()?;
    }
    let start = Instant::now();
    let mut n = 0u64;
    while n == 0 || start.elapsed() < Duration::from_secs_f64(seconds) {
        one()?;
        n += 1;
    }
    Ok(n as f64 * units / start.elapsed().as_secs_f64())
}

/// `modewise bench`.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    positive("--seconds", args.seconds)?;
    if args.seconds > MAX_SECONDS {
        anyhow::bail!(InvalidParameter::new(
            "--seconds",
            format!("must be at most {MAX_SECONDS} (an hour)"),
            args.seconds
        ));
    }
    let Some(workload) = args.workload else {
        return peak(args.seconds, args.json);
    };
    let threads = rayon::current_num_threads();
    if args.members == Some(0) {
        anyhow::bail!(InvalidParameter::new("--members", "must be at least 1", 0));
    }
    let members = args.members.unwrap_or(workload.members());
    let backend = args.backend.unwrap_or(BackendKind::Flex);
    super::experiment::built("--backend", backend)?;
    let (backend, per_second, unit) = match workload.params_with_members(backend, args.gradient, members) {
        None => {
            if args.members.is_some() {
                anyhow::bail!(InvalidParameter::new(
                    "--members",
                    "must be left out for the sde workload (its paths are fixed)",
                    members
                ));
            }
            if let Some(b) = args.backend {
                anyhow::bail!(InvalidParameter::new(
                    "--backend",
                    "must be left out for the sde workload (it runs on the CPU)",
                    b.name()
                ));
            }
            let (mode, params, dynamics) = (sde::mode(), sde::params(), sde::dynamics());
            let units = (sde::PATHS as u64 * sde::STEPS) as f64;
            let r = rate(args.seconds, units, || {
                std::hint::black_box(mode.ensemble(sde::W0, dynamics, &params)?);
                Ok(())
            })?;
            ("cpu", r, "path-steps/s")
        }
        Some(params) => {
            // The workload's seeds are `--members` here: an ensemble too large for the device
            // names the flag.
            let mut trainer = Trainer::new(&params.check()?).map_err(|err| match err.invalid_parameter() {
                Some(p) if p.field == "seeds" => {
                    anyhow::Error::from(InvalidParameter { field: "--members".into(), ..p.clone() })
                }
                _ => err.into(),
            })?;
            // Steps are queued on the device; a sync every 16 steps bounds the queue and makes
            // the clock honest on asynchronous backends.
            let chunk = 16;
            let units = (chunk * members) as f64;
            let r = rate(args.seconds, units, || {
                for _ in 0..chunk {
                    trainer.step();
                }
                trainer.sync()?;
                Ok(())
            })?;
            let unit = if members > 1 { "member-steps/s" } else { "steps/s" };
            (params.backend.name(), r, unit)
        }
    };
    if args.json {
        let out = serde_json::json!({
            "workload": workload.name(),
            "backend": backend,
            "threads": threads,
            "members": members,
            "per_second": per_second,
        });
        println!("{out}");
    } else {
        println!("{workload} on {backend}, {threads} thread(s): {per_second:.4e} {unit}");
    }
    Ok(())
}

/// `modewise bench --peak`: one core's f32 FMA peak at each vector width, `seconds` in all.
fn peak(seconds: f64, json: bool) -> anyhow::Result<()> {
    let p = Peak::measure(seconds);
    if json {
        let mut table = serde_json::Map::new();
        if cfg!(target_arch = "x86_64") {
            table.insert("avx512".into(), serde_json::Value::Null);
            table.insert("avx2".into(), serde_json::Value::Null);
        }
        for &(w, g) in &p.gflops {
            table.insert(w.name().into(), serde_json::json!(g));
        }
        let out = serde_json::json!({ "peak": table, "widest": p.widest().0.name(), "cpu": p.cpu });
        println!("{out}");
    } else {
        let rates: Vec<String> = p.gflops.iter().map(|(w, g)| format!("{} {g:.1} GFLOP/s", w.name())).collect();
        println!("f32 FMA peak of one core: {} ({})", rates.join(", "), p.cpu);
    }
    Ok(())
}
