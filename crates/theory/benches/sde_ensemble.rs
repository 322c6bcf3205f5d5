//! Path-steps per second of per-mode ensembles (10⁵ paths, L = 4), single thread and two
//! threads: the workload of `shared/bench/numpy_sde.py` (s = 2, σ = 0.5, η = 10⁻³, B = 4,
//! dt = 10⁻³, w0 = 10⁻³, end-to-end Euler–Maruyama).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use modewise_theory::{Coordinate, Dynamics, EnsembleParams, ModeParams, Scheme, TimeGrid};

const PATHS: usize = 100_000;
const STEPS: u64 = 100;

fn bench(c: &mut Criterion) {
    let mode = ModeParams { depth: 4, s: 2.0, sigma: 0.5, lr: 1e-3, batch: 4 }.check().unwrap();
    let dt = 1e-3;
    let grid = TimeGrid::from_times(vec![0.0, STEPS as f64 * dt]).unwrap();
    let params = EnsembleParams::new(PATHS, 0, grid);
    let cases = [
        ("euler-maruyama-w", Dynamics::Sde { scheme: Scheme::EulerMaruyama, coordinate: Coordinate::EndToEnd, dt }),
        ("milstein-w", Dynamics::Sde { scheme: Scheme::Milstein, coordinate: Coordinate::EndToEnd, dt }),
        ("exact-chain", Dynamics::Chain),
    ];
    let mut group = c.benchmark_group("sde_ensemble_1e5_paths_L4");
    group.throughput(Throughput::Elements(PATHS as u64 * STEPS));
    group.sample_size(10);
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        for (name, dynamics) in cases {
            if threads == 2 && name != "euler-maruyama-w" {
                continue;
            }
            group.bench_function(format!("{name}/threads-{threads}"), |b| {
                b.iter(|| pool.install(|| mode.ensemble(1e-3, dynamics, &params).unwrap()))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
