//! The wgpu backend (a GPU, or Mesa's software Vulkan driver in CI) agrees with ndarray.

mod common;

use common::*;
use modewise_dln::*;

/// A short run gives the same weights on ndarray and wgpu within f32 tolerance, with both
/// gradient paths, and wgpu is reproducible.
#[test]
fn wgpu_agrees_with_ndarray_on_a_short_run() {
    let reference = final_layers(&small_run(BackendKind::Ndarray, vec![1, 2], 50, GradientPath::ClosedForm));
    for gradient in [GradientPath::ClosedForm, GradientPath::Autodiff] {
        let wgpu = final_layers(&small_run(BackendKind::Wgpu, vec![1, 2], 50, gradient));
        let d = max_rel_diff(&reference, &wgpu);
        assert!(d < 1e-4, "{gradient:?}: relative difference {d}");
    }
    let again = final_layers(&small_run(BackendKind::Wgpu, vec![1, 2], 50, GradientPath::ClosedForm));
    let first = final_layers(&small_run(BackendKind::Wgpu, vec![1, 2], 50, GradientPath::ClosedForm));
    assert_eq!(again, first, "same seed, same backend");
}

/// Flex agrees with ndarray too.
#[test]
fn flex_agrees_with_ndarray() {
    let a = final_layers(&small_run(BackendKind::Ndarray, vec![3], 100, GradientPath::Autodiff));
    let b = final_layers(&small_run(BackendKind::Flex, vec![3], 100, GradientPath::Autodiff));
    assert!(max_rel_diff(&a, &b) < 1e-4);
}

/// The mode strengths `m_k` at the end of a run, one row per member.
fn final_mode_strengths(p: &TrainParams) -> Vec<Vec<f64>> {
    let spec = p.check().unwrap();
    let (records, report) = Trainer::new(&spec).unwrap().run_collect().unwrap();
    assert!(report.divergences.is_empty(), "{:?}", report.divergences);
    let last: Vec<Vec<f64>> =
        records.iter().filter(|r| r.step == p.steps).map(|r| r.probe.mode_strength.clone()).collect();
    assert_eq!(last.len(), p.seeds.len());
    last
}

/// Training on the GPU (wgpu: data drawn on the device, closed form on tensors) is
/// statistically the CPU's (flex: fused path, data drawn on the host): over 48 seeds the means
/// of each `m_k` agree within 4 standard errors of their difference and the variances within a
/// factor 1.6 (the F distribution's 99.9% range for 47 and 47 degrees of freedom is about
/// [0.40, 2.5]). The data are in fact the same numbers (the device draws the CPU's Philox
/// stream bit for bit), so each member also agrees with its CPU twin to f32 rounding.
#[test]
fn wgpu_mode_strengths_match_the_cpu_in_mean_and_variance_over_seeds() {
    let n = 48;
    let run = |backend| {
        let mut p = small_run(backend, (0..n as u64).collect(), 150, GradientPath::Auto);
        p.probes.per_decade = 1.0;
        final_mode_strengths(&p)
    };
    let (gpu, cpu) = (run(BackendKind::Wgpu), run(BackendKind::Flex));
    for k in 0..2 {
        let stats = |m: &[Vec<f64>]| {
            let mean = m.iter().map(|r| r[k]).sum::<f64>() / n as f64;
            let var = m.iter().map(|r| (r[k] - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            (mean, var)
        };
        let ((mg, vg), (mc, vc)) = (stats(&gpu), stats(&cpu));
        let se = ((vg + vc) / n as f64).sqrt();
        assert!((mg - mc).abs() <= 4.0 * se, "m_{k}: mean {mg} on wgpu, {mc} on flex (se {se})");
        assert!(vg > 0.0 && (vg / vc).max(vc / vg) < 1.6, "m_{k}: variance {vg} on wgpu, {vc} on flex");
        for (e, (g, c)) in gpu.iter().zip(&cpu).enumerate() {
            assert!((g[k] - c[k]).abs() <= 1e-4 * c[k].abs().max(1.0), "member {e}, m_{k}: {} vs {}", g[k], c[k]);
        }
    }
}

/// Members forced to diverge (initial weights ×50) are dropped on the GPU at a divergence
/// check; the others train on with their own data streams, exactly as a run without them.
#[test]
fn wgpu_drops_diverging_members_and_the_others_train_on() {
    let mut p = small_run(BackendKind::Wgpu, vec![1, 2, 3, 4, 5], 60, GradientPath::ClosedForm);
    p.check_every = 10;
    p.probes.per_decade = 0.5;
    let spec = p.check().unwrap();
    let layers: Vec<Vec<nalgebra::DMatrix<f64>>> = (0..5).map(|m| spec.initial_layers(m).unwrap()).collect();
    let mut forced = layers.clone();
    for m in [1, 3] {
        for w in &mut forced[m] {
            *w *= 50.0;
        }
    }
    let device = BackendKind::Wgpu.device();
    let mut trainer = Trainer::with_initial_layers(&spec, forced, device.clone()).unwrap();
    let (_, report) = trainer.run_collect().unwrap();
    let dropped: Vec<usize> = report.divergences.iter().map(|d| d.member).collect();
    assert_eq!(dropped, [1, 3], "{:?}", report.divergences);
    assert_eq!(report.steps_run, 60);
    // The survivors alone, from the same weights and seeds.
    let survivors = TrainParams { seeds: vec![1, 3, 5], ..p.clone() }.check().unwrap();
    let alone = [0, 2, 4].map(|m| layers[m].clone()).to_vec();
    let mut reference = Trainer::with_initial_layers(&survivors, alone, device).unwrap();
    let (_, expected) = reference.run_collect().unwrap();
    for (m, slot) in [(0, 0), (2, 1), (4, 2)] {
        let got = report.final_layers[m].as_ref().expect("a survivor");
        let want = expected.final_layers[slot].as_ref().unwrap();
        let d = max_rel_diff(std::slice::from_ref(got), std::slice::from_ref(want));
        assert!(d < 1e-5, "member {m}: relative difference {d}");
    }
    assert!(report.final_layers[1].is_none() && report.final_layers[3].is_none());
}

/// A large ensemble on the GPU: 4096 members at tiny width (data drawn on the device, probes
/// reduced on the device), eight of them forced to diverge (initial weights ×50), spread over
/// the ensemble. Exactly those eight are dropped; every survivor is probed at every probe step
/// and ends finite, and three survivors end where they end trained alone from the same weights
/// and seeds.
#[test]
fn wgpu_trains_4096_members_and_drops_the_diverging_ones() {
    let n = 4096;
    let mut p = small_run(BackendKind::Wgpu, (0..n as u64).collect(), 30, GradientPath::ClosedForm);
    p.dims = vec![3, 4, 3];
    p.batch = 2;
    p.check_every = 10;
    p.probes.per_decade = 0.5;
    let spec = p.check().unwrap();
    let layers: Vec<Vec<nalgebra::DMatrix<f64>>> = (0..n).map(|m| spec.initial_layers(m).unwrap()).collect();
    let forced_members = [0, 7, 1000, 2047, 2048, 3001, 4094, 4095];
    let mut forced = layers.clone();
    for &m in &forced_members {
        for w in &mut forced[m] {
            *w *= 50.0;
        }
    }
    let device = BackendKind::Wgpu.device();
    let mut trainer = Trainer::with_initial_layers(&spec, forced, device.clone()).unwrap();
    let mut probed = vec![0usize; n];
    let report = trainer
        .run(|r: &ProbeRecord| -> Result<()> {
            assert!(r.probe.is_finite());
            probed[r.member] += 1;
            Ok(())
        })
        .unwrap();
    let mut dropped: Vec<usize> = report.divergences.iter().map(|d| d.member).collect();
    dropped.sort_unstable();
    assert_eq!(dropped, forced_members, "{:?}", &report.divergences[..report.divergences.len().min(20)]);
    assert_eq!(report.steps_run, 30);
    let probe_steps = spec.probe_steps().len();
    for (m, (&probes, last)) in probed.iter().zip(&report.final_layers).enumerate() {
        if forced_members.contains(&m) {
            assert!(last.is_none(), "member {m}");
        } else {
            assert_eq!(probes, probe_steps, "member {m}");
        }
    }
    let alone_members = [1, 2048 + 1, 4093];
    let survivors =
        TrainParams { seeds: alone_members.iter().map(|&m| m as u64).collect(), ..p.clone() }.check().unwrap();
    let alone = alone_members.map(|m| layers[m].clone()).to_vec();
    let (_, expected) = Trainer::with_initial_layers(&survivors, alone, device).unwrap().run_collect().unwrap();
    for (slot, &m) in alone_members.iter().enumerate() {
        let got = report.final_layers[m].as_ref().expect("a survivor");
        let want = expected.final_layers[slot].as_ref().unwrap();
        let d = max_rel_diff(std::slice::from_ref(got), std::slice::from_ref(want));
        assert!(d < 1e-5, "member {m}: relative difference {d}");
    }
}

/// An ensemble whose tensors cannot fit the device is refused before anything is allocated,
/// naming the seeds, the estimate and how many members would fit.
#[test]
fn wgpu_refuses_an_ensemble_that_does_not_fit() {
    let mut p = small_run(BackendKind::Wgpu, (0..4096).collect(), 1, GradientPath::ClosedForm);
    p.dims = vec![4, 65_536, 4];
    // Trainer::new checks before it draws the initial layers; the probes' W_2ᵀ W_2 alone would
    // take 16 GiB per member.
    let err = Trainer::new(&p.check().unwrap()).err().expect("refused");
    let msg = err.to_string();
    assert_eq!(err.field(), Some("seeds"), "{msg}");
    assert!(msg.contains("4096 members of dims [4, 65536, 4] at batch 4 need about"), "{msg}");
    assert!(msg.contains("not one member fits"), "{msg}");
}
