//! `modewise bench`: times one standard workload on this machine (steps, member-steps or
//! path-steps per second), so anyone can measure their own hardware and backends.

use std::time::{Duration, Instant};

use clap::Args;
use modewise_dln::{BackendKind, DlnError, GradientPath, Trainer, Workload};
use modewise_theory::{Coordinate, Dynamics, EnsembleParams, ModeParams, Scheme, TimeGrid};

/// Arguments of `modewise bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// w1, w2, w3 (one network, steps/s), w1e, w2e (ensembles of 64 and 16, member-steps/s) or
    /// sde (per-mode SDE ensemble of 10⁵ paths, L = 4, path-steps/s).
    #[arg(long)]
    pub workload: String,
    /// Backend of the DLN workloads: ndarray, flex (default) or wgpu; the sde workload runs
    /// on the CPU (the theory crate).
    #[arg(long)]
    pub backend: Option<String>,
    /// Gradient path of the DLN workloads: auto (default: fused on the CPU backends,
    /// closed-form on wgpu), fused, closed-form or autodiff (the reference).
    #[arg(long)]
    pub gradient: Option<String>,
    /// Seconds to measure, after a warm-up of a fifth of that.
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// Print one JSON object: {"workload", "backend", "threads", "per_second"}.
    #[arg(long)]
    pub json: bool,
}

/// The sde workload of `shared/bench/numpy_sde.py`: 10⁵ paths, L = 4, s = 2, σ = 0.5,
/// η = 10⁻³, B = 4, dt = 10⁻³, w₀ = 10⁻³, end-to-end Euler–Maruyama; 100 steps per call.
const SDE_PATHS: usize = 100_000;
const SDE_STEPS: u64 = 100;

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
    if !(args.seconds.is_finite() && args.seconds > 0.0) {
        anyhow::bail!(DlnError::invalid("--seconds", "must be finite and positive", args.seconds));
    }
    let threads = rayon::current_num_threads();
    let (backend, per_second, unit) = if args.workload == "sde" {
        if let Some(b) = args.backend.as_deref().filter(|b| *b != "cpu") {
            anyhow::bail!(DlnError::invalid(
                "--backend",
                "must be left out for the sde workload (it runs on the CPU)",
                b
            ));
        }
        let mode = ModeParams { depth: 4, s: 2.0, sigma: 0.5, lr: 1e-3, batch: 4 }.check()?;
        let dt = 1e-3;
        let grid = TimeGrid::from_times(vec![0.0, SDE_STEPS as f64 * dt])?;
        let params = EnsembleParams::new(SDE_PATHS, 0, grid);
        let dynamics = Dynamics::Sde { scheme: Scheme::EulerMaruyama, coordinate: Coordinate::EndToEnd, dt };
        let units = (SDE_PATHS as u64 * SDE_STEPS) as f64;
        let r = rate(args.seconds, units, || {
            std::hint::black_box(mode.ensemble(1e-3, dynamics, &params)?);
            Ok(())
        })?;
        ("cpu".to_string(), r, "path-steps/s")
    } else {
        let workload: Workload = args.workload.parse()?;
        let backend = super::experiment::parse_backend(args.backend.as_deref())?.unwrap_or(BackendKind::Flex);
        let gradient = match args.gradient.as_deref() {
            None => GradientPath::Auto,
            Some(name) => name
                .parse()
                .map_err(|_| DlnError::invalid("--gradient", "must be auto, fused, closed-form or autodiff", name))?,
        };
        let mut trainer = Trainer::new(&workload.params(backend, gradient).check()?)?;
        // Steps are queued on the device; a sync every 16 steps bounds the queue and makes the
        // clock honest on asynchronous backends.
        let chunk = 16;
        let units = (chunk * workload.members()) as f64;
        let r = rate(args.seconds, units, || {
            for _ in 0..chunk {
                trainer.step();
            }
            trainer.sync()?;
            Ok(())
        })?;
        let unit = if workload.members() > 1 { "member-steps/s" } else { "steps/s" };
        (backend.to_string(), r, unit)
    };
    if args.json {
        let out = serde_json::json!({
            "workload": args.workload,
            "backend": backend,
            "threads": threads,
            "per_second": per_second,
        });
        println!("{out}");
    } else {
        println!("{} on {backend}, {threads} thread(s): {per_second:.4e} {unit}", args.workload);
    }
    Ok(())
}
