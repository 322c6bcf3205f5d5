//! The gradient paths agree; ensembles equal single runs; runs are reproducible.

mod common;

use common::*;
use modewise_dln::*;

/// Closed-form backpropagation, with tensors or fused on the host, gives burn autodiff's
/// gradients (relative 1e-5), on each CPU backend, for an ensemble, online data, a fixed
/// sample and population descent.
#[test]
fn closed_form_gradients_equal_autodiff() {
    for (backend, path) in [
        (BackendKind::Ndarray, GradientPath::ClosedForm),
        (BackendKind::Flex, GradientPath::ClosedForm),
        (BackendKind::Flex, GradientPath::Fused),
    ] {
        for source in [DataSource::Online, DataSource::Fixed { n: 20, whiten: true }, DataSource::Population] {
            let mut p = small_run(backend, vec![3, 4, 5], 0, path);
            p.data.source = source;
            let spec = p.check().unwrap();
            // Two trainers with the same seeds draw the same batch.
            let mut a = Trainer::new(&spec).unwrap();
            let mut b = Trainer::new(&spec).unwrap();
            let ga = a.next_gradients(path);
            let gb = b.next_gradients(GradientPath::Autodiff);
            assert_eq!(ga.len(), 3);
            for (l, (x, y)) in ga.into_iter().zip(gb).enumerate() {
                assert_eq!(x.dims(), y.dims());
                let x: Vec<f32> = x.into_data().try_to_vec().unwrap();
                let y: Vec<f32> = y.into_data().try_to_vec().unwrap();
                let scale = y.iter().fold(0f32, |m, v| m.max(v.abs()));
                assert!(scale > 1e-3, "{backend} {path:?} {source:?} layer {l}: vanishing gradient");
                let diff = x.iter().zip(&y).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
                assert!(diff <= 1e-5 * scale, "{backend} {path:?} {source:?} layer {l}: {diff} vs scale {scale}");
            }
        }
    }
}

/// A whole SGD run follows the same path with every gradient path (online data and population
/// descent; the fused path also with a member that diverges and is dropped).
#[test]
fn every_gradient_path_trains_alike() {
    for source in [DataSource::Online, DataSource::Population] {
        let run = |path| {
            let mut p = small_run(BackendKind::Flex, vec![7, 8], 200, path);
            p.data.source = source;
            final_layers(&p)
        };
        let reference = run(GradientPath::Autodiff);
        for path in [GradientPath::ClosedForm, GradientPath::Fused] {
            let d = max_rel_diff(&run(path), &reference);
            assert!(d < 1e-4, "{path:?} {source:?}: relative difference {d}");
        }
    }
}

/// The fused path is refused on wgpu (it runs in host memory), naming the field.
#[test]
fn fused_path_is_for_the_cpu() {
    let p = small_run(BackendKind::Wgpu, vec![1], 10, GradientPath::Fused);
    let err = p.check().unwrap_err().to_string();
    assert!(err.starts_with("gradient: fused runs on the CPU in host memory"), "{err}");
}

/// Member `i` of a batched ensemble is the single run with the same seed, bit for bit.
#[test]
fn ensemble_member_equals_single_run() {
    for (backend, path) in [
        (BackendKind::Ndarray, GradientPath::ClosedForm),
        (BackendKind::Flex, GradientPath::ClosedForm),
        (BackendKind::Flex, GradientPath::Fused),
    ] {
        let ens = final_layers(&small_run(backend, vec![1, 2, 3], 150, path));
        for (i, seed) in [1u64, 2, 3].into_iter().enumerate() {
            let single = final_layers(&small_run(backend, vec![seed], 150, path));
            assert_eq!(ens[i], single[0], "{backend} {path:?}: member {i} (seed {seed})");
        }
    }
}

/// Same seed, same backend: bit-identical weights, also with one or two worker threads.
#[test]
fn same_seed_gives_identical_weights_whatever_the_thread_count() {
    for (backend, path) in [
        (BackendKind::Ndarray, GradientPath::ClosedForm),
        (BackendKind::Flex, GradientPath::ClosedForm),
        (BackendKind::Flex, GradientPath::Fused),
    ] {
        let p = small_run(backend, vec![5, 6], 120, path);
        let runs: Vec<_> = [1, 2, 2]
            .into_iter()
            .map(|threads| {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                pool.install(|| final_layers(&p))
            })
            .collect();
        assert_eq!(runs[0], runs[1], "{backend}: 1 vs 2 threads");
        assert_eq!(runs[1], runs[2], "{backend}: repeated run");
        let other = final_layers(&small_run(backend, vec![5, 7], 120, path));
        assert_eq!(other[0], runs[0][0]);
        assert_ne!(other[1], runs[0][1], "a different seed must give a different run");
    }
}
