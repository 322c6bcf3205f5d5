//! Path-steps per second of per-mode ensembles on the sde workload ([`modewise_bench::sde`]:
//! 10⁵ paths, L = 4, s = 2, σ = 0.5, η = 10⁻³, B = 4, dt = 10⁻³, w₀ = 10⁻³), single thread and
//! two threads: end-to-end Euler–Maruyama (what `modewise bench --workload sde` times),
//! Milstein and the exact SGD chain.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use modewise_bench::sde;
use modewise_theory::{Coordinate, Dynamics, Scheme};

fn bench(c: &mut Criterion) {
    let (mode, params) = (sde::mode(), sde::params());
    let cases = [
        ("euler-maruyama-w", sde::dynamics()),
        ("milstein-w", Dynamics::Sde { scheme: Scheme::Milstein, coordinate: Coordinate::EndToEnd, dt: sde::DT }),
        ("exact-chain", Dynamics::Chain),
    ];
    let mut group = c.benchmark_group("sde_ensemble_1e5_paths_L4");
    group.throughput(Throughput::Elements(sde::PATHS as u64 * sde::STEPS));
    group.sample_size(10);
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        for (name, dynamics) in cases {
            if threads == 2 && name != "euler-maruyama-w" {
                continue;
            }
            group.bench_function(format!("{name}/threads-{threads}"), |b| {
                b.iter(|| pool.install(|| mode.ensemble(sde::W0, dynamics, &params).unwrap()))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
