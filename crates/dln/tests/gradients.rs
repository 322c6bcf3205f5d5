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
        for source in [DataSource::Online, DataSource::fixed(20, true), DataSource::Population] {
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

/// The fused path is refused on wgpu (it runs in host memory), and f64 off the fused path,
/// naming the field and the rule.
#[test]
fn fused_path_is_for_the_cpu() {
    let p = small_run(BackendKind::Wgpu, vec![1], 10, GradientPath::Fused);
    let err = p.check().unwrap_err().to_string();
    assert!(err.starts_with("gradient: fused runs on the CPU in host memory"), "{err}");
    for (backend, path, expected) in [
        (
            BackendKind::Wgpu,
            GradientPath::Auto,
            "precision: f64 trains on the fused CPU path; the wgpu backend trains in f32",
        ),
        (BackendKind::Wgpu, GradientPath::Autodiff, "precision: f64 trains on the fused CPU path; the wgpu backend"),
        (
            BackendKind::Flex,
            GradientPath::ClosedForm,
            "precision: f64 trains on the fused CPU path only (gradient = fused or auto); the closed-form path trains in f32 (got f64)",
        ),
        (
            BackendKind::Ndarray,
            GradientPath::Autodiff,
            "precision: f64 trains on the fused CPU path only (gradient = fused or auto); the autodiff path",
        ),
    ] {
        let p = TrainParams { precision: Precision::F64, ..small_run(backend, vec![1], 10, path) };
        let err = p.check().unwrap_err().to_string();
        assert!(err.starts_with(expected), "{backend} {path}: {err}");
    }
    for backend in [BackendKind::Ndarray, BackendKind::Flex] {
        let p = TrainParams { precision: Precision::F64, ..small_run(backend, vec![1], 10, GradientPath::Auto) };
        assert_eq!(p.check().unwrap().params().gradient, GradientPath::Fused, "auto resolves to fused on {backend}");
    }
}

/// `[member][layer]` host matrices of layer tensors `[E, d_l, d_{l−1}]`.
fn per_member(tensors: Vec<burn::tensor::Tensor<3>>) -> Vec<Vec<nalgebra::DMatrix<f64>>> {
    let layers: Vec<(Vec<f32>, [usize; 3])> =
        tensors.into_iter().map(|t| (t.dims(), t)).map(|(d, t)| (t.into_data().try_to_vec().unwrap(), d)).collect();
    (0..layers[0].1[0])
        .map(|e| {
            layers
                .iter()
                .map(|(v, [_, r, c])| {
                    nalgebra::DMatrix::from_row_iterator(
                        *r,
                        *c,
                        v[e * r * c..(e + 1) * r * c].iter().map(|&x| x as f64),
                    )
                })
                .collect()
        })
        .collect()
}

/// The fused f64 gradients equal burn autodiff's (f32) within f32 precision, for online data, a
/// fixed sample and population descent; they are not the f32 fused gradients themselves.
#[test]
fn f64_gradients_equal_autodiff_within_f32_precision() {
    for source in [DataSource::Online, DataSource::fixed(20, true), DataSource::Population] {
        let mut p = small_run(BackendKind::Flex, vec![3, 4, 5], 0, GradientPath::Fused);
        p.data.source = source;
        let f32_spec = p.check().unwrap();
        let f64_spec = TrainParams { precision: Precision::F64, ..p }.check().unwrap();
        let wide = Trainer::new(&f64_spec).unwrap().next_host_gradients().unwrap();
        let narrow = Trainer::new(&f32_spec).unwrap().next_host_gradients().unwrap();
        let autodiff = per_member(Trainer::new(&f32_spec).unwrap().next_gradients(GradientPath::Autodiff));
        let d = max_rel_diff(&wide, &autodiff);
        assert!(d < 1e-5, "{source:?}: f64 against autodiff {d}");
        let d = max_rel_diff(&wide, &narrow);
        assert!(d > 0.0 && d < 1e-5, "{source:?}: f64 against f32 fused {d}");
    }
}

/// f64 population descent is gradient descent on `½‖W − M‖²` done in f64: it follows the same
/// descent computed here with nalgebra to 1e-12 relative over 200 steps, where the f32 run is
/// off by f32 rounding.
#[test]
fn f64_population_descent_is_gradient_descent_in_f64() {
    use nalgebra::DMatrix;
    let mut p = small_run(BackendKind::Flex, vec![2], 200, GradientPath::Fused);
    p.data.source = DataSource::Population;
    p.init = InitScheme::Gaussian { std: GaussianStd::Scale(0.6) };
    let spec = TrainParams { precision: Precision::F64, ..p.clone() }.check().unwrap();
    let mut layers = spec.initial_layers(0).unwrap();
    let m = spec.teacher().matrix().clone();
    let chain = |ls: &[DMatrix<f64>], n: usize| ls.iter().fold(DMatrix::<f64>::identity(n, n), |acc, w| w * acc);
    for _ in 0..p.steps {
        let delta = chain(&layers, 5) - &m;
        let grads: Vec<DMatrix<f64>> = (0..layers.len())
            .map(|l| {
                let below = chain(&layers[..l], 5);
                let rows = layers[l].nrows();
                let above = layers[l + 1..].iter().fold(DMatrix::<f64>::identity(rows, rows), |acc, w| w * acc);
                above.transpose() * &delta * below.transpose()
            })
            .collect();
        for (w, g) in layers.iter_mut().zip(grads) {
            *w -= g * p.lr;
        }
    }
    let reference = vec![layers];
    let wide = final_layers(spec.params());
    let narrow = final_layers(&p);
    let (d64, d32) = (max_rel_diff(&wide, &reference), max_rel_diff(&narrow, &reference));
    assert!(d64 < 1e-12, "f64 run against f64 descent: {d64}");
    assert!(d32 > 1e-9, "the f32 run is rounded to f32: {d32}");
}

/// An f64 run and an f32 run of the same spec (same seeds, same draws) agree to f32 precision
/// over a short horizon, for online data and a fixed sample.
#[test]
fn f64_and_f32_runs_agree_to_f32_precision() {
    for source in [DataSource::Online, DataSource::fixed(20, false)] {
        let mut p = small_run(BackendKind::Ndarray, vec![7, 8], 200, GradientPath::Auto);
        p.data.source = source;
        let narrow = final_layers(&p);
        let wide = final_layers(&TrainParams { precision: Precision::F64, ..p });
        let d = max_rel_diff(&wide, &narrow);
        assert!(d > 0.0 && d < 1e-4, "{source:?}: relative difference {d}");
    }
}

/// Member `i` of a batched ensemble is the single run with the same seed, bit for bit.
#[test]
fn ensemble_member_equals_single_run() {
    for (backend, path, precision) in [
        (BackendKind::Ndarray, GradientPath::ClosedForm, Precision::F32),
        (BackendKind::Flex, GradientPath::ClosedForm, Precision::F32),
        (BackendKind::Flex, GradientPath::Fused, Precision::F32),
        (BackendKind::Flex, GradientPath::Fused, Precision::F64),
    ] {
        let run = |seeds| TrainParams { precision, ..small_run(backend, seeds, 150, path) };
        let ens = final_layers(&run(vec![1, 2, 3]));
        for (i, seed) in [1u64, 2, 3].into_iter().enumerate() {
            let single = final_layers(&run(vec![seed]));
            assert_eq!(ens[i], single[0], "{backend} {path:?} {precision}: member {i} (seed {seed})");
        }
    }
}

/// Same seed, same backend: bit-identical weights, also with one or two worker threads.
#[test]
fn same_seed_gives_identical_weights_whatever_the_thread_count() {
    for (backend, path, precision) in [
        (BackendKind::Ndarray, GradientPath::ClosedForm, Precision::F32),
        (BackendKind::Flex, GradientPath::ClosedForm, Precision::F32),
        (BackendKind::Flex, GradientPath::Fused, Precision::F32),
        (BackendKind::Flex, GradientPath::Fused, Precision::F64),
    ] {
        let p = TrainParams { precision, ..small_run(backend, vec![5, 6], 120, path) };
        let runs: Vec<_> = [1, 2, 2]
            .into_iter()
            .map(|threads| {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                pool.install(|| final_layers(&p))
            })
            .collect();
        assert_eq!(runs[0], runs[1], "{backend}: 1 vs 2 threads");
        assert_eq!(runs[1], runs[2], "{backend}: repeated run");
        let other = final_layers(&TrainParams { seeds: vec![5, 7], ..p.clone() });
        assert_eq!(other[0], runs[0][0]);
        assert_ne!(other[1], runs[0][1], "a different seed must give a different run");
    }
}
