//! SGD steps per second on the standard DLN workloads (W1, W2, W3 and the ensembles), for each
//! CPU backend and both tensor gradient paths. One iteration is one SGD step of the whole
//! (batched) network, data generation included; for an ensemble, multiply by `E` for
//! member-steps per second. Run single-threaded to compare with the PyTorch peers:
//! `RAYON_NUM_THREADS=1 taskset -c 0 cargo bench -p modewise-bench --bench train`.
//! `MODEWISE_BENCH_BACKENDS=flex,wgpu` picks other backends (default: `ndarray,flex`).
//! W3 runs last (see [`Workload::DLN`]).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use modewise_bench::Workload;
use modewise_dln::{BackendKind, GradientPath, Trainer};
use std::time::Duration;

fn trainer(w: Workload, backend: BackendKind, gradient: GradientPath) -> Trainer {
    let params = w.params(backend, gradient).expect("a DLN workload");
    Trainer::new(&params.check().expect("valid workload")).expect("trainer")
}

fn bench_steps(c: &mut Criterion) {
    let backends: Vec<BackendKind> = std::env::var("MODEWISE_BENCH_BACKENDS")
        .unwrap_or_else(|_| "ndarray,flex".into())
        .split(',')
        .map(|name| name.trim().parse().expect("MODEWISE_BENCH_BACKENDS: a list of ndarray, flex, wgpu"))
        .collect();
    for w in Workload::DLN {
        let mut group = c.benchmark_group(format!("sgd_step/{w}"));
        group.throughput(Throughput::Elements(w.members() as u64));
        if w == Workload::W3 {
            group.sample_size(10).measurement_time(Duration::from_secs(10));
        } else {
            group.measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
        }
        for &backend in &backends {
            for gradient in [GradientPath::ClosedForm, GradientPath::Autodiff] {
                let mut t = trainer(w, backend, gradient);
                group.bench_function(format!("{backend}/{gradient}"), |b| {
                    b.iter(|| {
                        t.step();
                        t.sync().expect("backend sync")
                    })
                });
            }
        }
        group.finish();
    }
}

criterion_group!(benches, bench_steps);
criterion_main!(benches);
