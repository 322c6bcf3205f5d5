//! Training behaviour: saddle-to-saddle order, divergence handling, data sources, backends.

mod common;

use common::*;
use modewise_dln::*;

/// From a small γ-scaled Gaussian start, online SGD learns the modes one after the other, in
/// order of decreasing singular value, and the loss drops in steps.
#[test]
fn modes_are_learned_in_order_of_decreasing_strength() {
    let p = TrainParams {
        dims: vec![8, 16, 16, 8],
        teacher: TeacherParams { spectrum: SpectrumSpec::List { s: vec![4.0, 2.0, 1.0] }, seed: 4 },
        init: InitScheme::Gaussian { std: GaussianStd::Gamma(3.0) },
        data: DataParams { source: DataSource::Online, sigma: 0.0, ..DataParams::default() },
        lr: 0.01,
        batch: 16,
        steps: 6_000,
        seeds: vec![1, 2],
        probes: ProbeSchedule { per_decade: 60.0 },
        n_probe: 0,
        backend: BackendKind::Flex,
        ..TrainParams::default()
    };
    let spec = p.check().unwrap();
    let (records, report) = Trainer::new(&spec).unwrap().run_collect().unwrap();
    assert!(report.divergences.is_empty());
    for member in 0..2 {
        let rs: Vec<_> = records.iter().filter(|r| r.member == member).collect();
        let s = spec.teacher().s();
        // First probe step at which mode k reaches half its value.
        let learned: Vec<u64> = (0..3)
            .map(|k| {
                rs.iter().find(|r| r.probe.mode_strength[k] >= 0.5 * s[k]).map(|r| r.step).unwrap_or_else(|| {
                    panic!("member {member}: mode {k} never learned: {:?}", rs.last().unwrap().probe.mode_strength)
                })
            })
            .collect();
        assert!(learned[0] < learned[1] && learned[1] < learned[2], "member {member}: {learned:?}");
        // Plateaus: when mode 0 is learned, mode 2 is still near zero.
        let at = rs.iter().find(|r| r.step == learned[0]).unwrap();
        assert!(at.probe.mode_strength[2].abs() < 0.1 * s[2], "member {member}: {:?}", at.probe.mode_strength);
        let last = rs.last().unwrap();
        for k in 0..3 {
            assert!((last.probe.mode_strength[k] - s[k]).abs() < 0.05 * s[k]);
        }
    }
}

/// A member whose weights blow up is stopped and reported with its step; the others go on and
/// end exactly where their single runs end.
#[test]
fn a_diverging_member_is_stopped_and_the_others_go_on() {
    for (backend, path) in [
        (BackendKind::Ndarray, GradientPath::ClosedForm),
        (BackendKind::Flex, GradientPath::ClosedForm),
        (BackendKind::Flex, GradientPath::Fused),
    ] {
        let mut p = small_run(backend, vec![1, 2, 3], 300, path);
        p.check_every = 10;
        p.probes = ProbeSchedule { per_decade: 1.0 };
        let spec = p.check().unwrap();
        let mut members: Vec<_> = (0..p.seeds.len()).map(|m| spec.initial_layers(m).unwrap()).collect();
        for w in members[1].iter_mut() {
            *w *= 8.0; // far too large for this learning rate
        }
        let mut trainer = Trainer::with_initial_layers(&spec, members, backend.device()).unwrap();
        let (records, report) = trainer.run_collect().unwrap();
        assert_eq!(report.divergences.len(), 1, "{backend} {path:?}");
        let d = &report.divergences[0];
        assert_eq!((d.member, d.seed), (1, 2));
        assert!(d.step > 0 && d.step <= 300 && d.last_finite_step < d.step, "{d:?}");
        assert!(d.step - d.last_finite_step <= 10, "checked every 10 steps: {d:?}");
        assert_eq!(report.steps_run, 300);
        assert!(report.final_layers[1].is_none());
        assert!(records.iter().filter(|r| r.member == 1).all(|r| r.step < d.step));
        assert_eq!(records.iter().filter(|r| r.member == 0 && r.step == 300).count(), 1);
        for (i, seed) in [(0usize, 1u64), (2, 3)] {
            let single = final_layers(&small_run(backend, vec![seed], 300, path));
            assert_eq!(report.final_layers[i].as_ref().unwrap(), &single[0], "{backend} {path:?}: member {i}");
        }
    }
}

/// Training on a fixed, whitened, noise-free sample drives the population loss to 0 (its
/// least-squares solution is M); whitening and epochs are tested in the `data` module.
#[test]
fn fixed_whitened_sample_trains_towards_its_least_squares_solution() {
    let mut p = small_run(BackendKind::Flex, vec![4], 4000, GradientPath::ClosedForm);
    p.data = DataParams { source: DataSource::fixed(12, true), sigma: 0.0, ..DataParams::default() };
    p.init = InitScheme::Gaussian { std: GaussianStd::Scale(0.5) };
    p.lr = 0.05;
    let spec = p.check().unwrap();
    let (records, _) = Trainer::new(&spec).unwrap().run_collect().unwrap();
    // Without label noise and with a whitened sample the least-squares solution is M itself.
    let last = records.last().unwrap();
    assert!(last.probe.population_loss < 1e-6, "{}", last.probe.population_loss);
    let err =
        DataParams { source: DataSource::fixed(5, true), sigma: 0.0, ..DataParams::default() }.check(4, 5).unwrap_err();
    assert_eq!(err.to_string(), "source.n: must exceed the input dimension 5 to whiten the sample (got 5)");
    let err = TrainParams {
        data: DataParams { source: DataSource::fixed(5, true), sigma: 0.0, ..DataParams::default() },
        ..p
    }
    .check()
    .unwrap_err();
    assert_eq!(err.to_string(), "data.source.n: must exceed the input dimension 5 to whiten the sample (got 5)");
}

/// Label noise keeps the loss above the noise floor `½ d_L σ²` and the modes fluctuate around s.
#[test]
fn label_noise_sets_the_loss_floor() {
    let mut p = small_run(BackendKind::Flex, vec![8], 3000, GradientPath::ClosedForm);
    p.data.sigma = 0.5;
    let spec = p.check().unwrap();
    let (records, _) = Trainer::new(&spec).unwrap().run_collect().unwrap();
    let last = records.last().unwrap();
    let floor = 0.5 * 4.0 * 0.25;
    assert!(
        last.probe.population_loss > floor && last.probe.population_loss < floor + 0.05,
        "{}",
        last.probe.population_loss
    );
}

/// The probe schedule is log-spaced, starts at 0 and ends at the last step.
#[test]
fn probe_schedule_is_log_spaced_with_both_ends() {
    let s = ProbeSchedule { per_decade: 2.0 }.steps(1000);
    assert_eq!(s, vec![0, 1, 3, 10, 32, 100, 316, 1000]);
    assert_eq!(ProbeSchedule { per_decade: 1.0 }.steps(0), vec![0]);
    assert_eq!(ProbeSchedule::default().steps(5), vec![0, 1, 2, 3, 4, 5]);
}

/// Bad parameters are refused with the field and the rule.
#[test]
fn bad_parameters_name_the_field_and_the_rule() {
    let ok = small_run(BackendKind::Flex, vec![1], 10, GradientPath::ClosedForm);
    let cases: Vec<(TrainParams, &str)> = vec![
        (TrainParams { dims: vec![5], ..ok.clone() }, "dims: must list at least an input and an output width"),
        (TrainParams { dims: vec![5, 0, 4], ..ok.clone() }, "dims[1]: must be at least 1 (got 0)"),
        (TrainParams { lr: -1.0, ..ok.clone() }, "lr: must be finite and positive (got -1.0)"),
        (TrainParams { lr: f64::NAN, ..ok.clone() }, "lr: must be finite and positive (got NaN)"),
        (TrainParams { batch: 0, ..ok.clone() }, "batch: must be at least 1 (got 0)"),
        (TrainParams { seeds: vec![], ..ok.clone() }, "seeds: must hold at least one seed (got [])"),
        (TrainParams { seeds: vec![1, 2, 1], ..ok.clone() }, "seeds[2]: must be distinct"),
        (TrainParams { check_every: 0, ..ok.clone() }, "check_every: must be at least 1 (got 0)"),
        (TrainParams { n_probe: 1, ..ok.clone() }, "n_probe: must be 0 (exact diffusion) or at least 2 (samples)"),
        (
            TrainParams { streams: StreamNamespaces { init: 0, data: 1 << 16 }, ..ok.clone() },
            "streams.data: must be below 2^16 = 65536 (got 65536)",
        ),
        (
            TrainParams { probes: ProbeSchedule { per_decade: 0.0 }, ..ok.clone() },
            "probes.per_decade: must be finite and positive",
        ),
        (
            TrainParams {
                data: DataParams { source: DataSource::Online, sigma: -0.1, ..DataParams::default() },
                ..ok.clone()
            },
            "data.sigma: must be finite and non-negative (got -0.1)",
        ),
        (
            TrainParams {
                data: DataParams { source: DataSource::fixed(2, false), sigma: 0.0, ..DataParams::default() },
                ..ok.clone()
            },
            "data.source.n: must be at least the batch size 4 (got 2)",
        ),
        (
            TrainParams {
                teacher: TeacherParams { spectrum: SpectrumSpec::List { s: vec![1.0; 5] }, seed: 0 },
                ..ok.clone()
            },
            "teacher.spectrum.s: must not hold more values than min(d_0, d_L) = 4 (one per mode) (got 5)",
        ),
        (
            TrainParams {
                teacher: TeacherParams { spectrum: SpectrumSpec::List { s: vec![1.0, 0.0] }, seed: 0 },
                ..ok.clone()
            },
            "teacher.spectrum.s[1]: must be finite and positive (got 0.0)",
        ),
        (
            TrainParams { init: InitScheme::Gaussian { std: GaussianStd::Gamma(f64::NAN) }, ..ok.clone() },
            "init.gamma: must be finite (got NaN)",
        ),
        (
            TrainParams {
                init: InitScheme::Unbalanced { a0: ModeScale::Scalar(0.1), factors: LayerFactors::Ratio(-2.0) },
                ..ok.clone()
            },
            "init.ratio: must be finite and positive (got -2.0)",
        ),
        (
            TrainParams { init: InitScheme::AlignedBalanced { a0: ModeScale::PerMode(vec![0.1]) }, ..ok.clone() },
            "init.a0: must hold one value per teacher mode (2) (got 1)",
        ),
        (
            TrainParams {
                dims: vec![5, 1, 4],
                init: InitScheme::AlignedBalanced { a0: ModeScale::Scalar(0.1) },
                ..ok.clone()
            },
            "init.kind: aligned-balanced needs every layer width to be at least the teacher rank 2",
        ),
    ];
    for (p, expected) in cases {
        let err = p.check().unwrap_err().to_string();
        assert!(err.starts_with(expected), "expected `{expected}`, got `{err}`");
    }
    let err = "gpu".parse::<GradientPath>().unwrap_err().to_string();
    assert_eq!(err, "gradient: must be one of auto, autodiff, closed-form, fused (got gpu)");
}

/// The layers of every member after `spec`'s run from the given initial layers, with the
/// probe records.
fn run_from(spec: &TrainSpec, members: Vec<Vec<nalgebra::DMatrix<f64>>>) -> (Vec<ProbeRecord>, TrainReport) {
    let device = spec.params().backend.device();
    Trainer::with_initial_layers(spec, members, device).unwrap().run_collect().unwrap()
}

/// Random-stream namespaces: the default is namespace 0; the init namespace alone moves the
/// initial weights, the data namespace alone moves the batches and the probe samples; a member
/// of an ensemble in a namespace is its single run in that namespace.
#[test]
fn stream_namespaces_move_the_initial_weights_and_the_data_apart() {
    let base = TrainParams { n_probe: 50, ..small_run(BackendKind::Flex, vec![3, 4], 40, GradientPath::Fused) };
    let with = |streams| TrainParams { streams, ..base.clone() }.check().unwrap();
    let zero = with(StreamNamespaces::default());
    assert_eq!(zero, with(StreamNamespaces::shared(0)));
    let (init1, data1) = (with(StreamNamespaces { init: 1, data: 0 }), with(StreamNamespaces { init: 0, data: 1 }));
    let starts = |spec: &TrainSpec| -> Vec<_> { (0..2).map(|m| spec.initial_layers(m).unwrap()).collect() };
    assert_eq!(starts(&data1), starts(&zero), "the data namespace keeps the initial weights");
    for m in 0..2 {
        assert_ne!(starts(&init1)[m], starts(&zero)[m], "the init namespace moves member {m}'s start");
    }
    // From the same start: the init namespace keeps the data (and the probe samples), the data
    // namespace changes both.
    let (reference, _) = run_from(&zero, starts(&zero));
    let (same_data, _) = run_from(&init1, starts(&zero));
    let (other_data, _) = run_from(&data1, starts(&zero));
    assert_eq!(same_data, reference);
    let (first, last) = (&reference[0], reference.last().unwrap());
    assert_eq!(other_data[0].probe.mode_strength, first.probe.mode_strength, "same start");
    assert_ne!(other_data[0].probe.mode_diffusion, first.probe.mode_diffusion, "other probe samples");
    assert_ne!(other_data.last().unwrap().probe.mode_strength, last.probe.mode_strength, "other batches");
    // A member in a namespace is its single run there, and not the run of namespace 0.
    let shared = |seeds: Vec<u64>, n| TrainParams { seeds, streams: StreamNamespaces::shared(n), ..base.clone() };
    let ensemble = final_layers(&shared(vec![3, 4], 7));
    assert_eq!(ensemble[1], final_layers(&shared(vec![4], 7))[0]);
    assert_ne!(ensemble[1], final_layers(&shared(vec![4], 0))[0]);
}

/// In a spec, `streams` is one integer for both namespaces or a table of the two; it writes out
/// as the table (so data files have the same columns either way) and reads back the same.
#[test]
fn stream_namespaces_read_as_an_integer_or_a_table() {
    let read = |text: &str| -> Result<StreamNamespaces, String> {
        #[derive(serde::Deserialize, serde::Serialize, PartialEq, Debug)]
        struct Spec {
            streams: StreamNamespaces,
        }
        let spec: Spec = toml::from_str(text).map_err(|e| e.message().to_string())?;
        let written = toml::to_string(&spec).unwrap();
        assert_eq!(toml::from_str::<Spec>(&written).unwrap(), spec, "writes out as read: {written}");
        Ok(spec.streams)
    };
    assert_eq!(read("streams = 3"), Ok(StreamNamespaces::shared(3)));
    let written = toml::to_string(&TrainParams { streams: StreamNamespaces::shared(3), ..TrainParams::default() });
    assert!(written.unwrap().contains("[streams]\ninit = 3\ndata = 3\n"), "the table");
    assert_eq!(read("streams = { init = 0, data = 3 }"), Ok(StreamNamespaces { init: 0, data: 3 }));
    let err = read("streams = { seed = 3 }").unwrap_err();
    assert!(err.starts_with("unknown field `seed`, expected `init` or `data`"), "{err}");
    let err = read("streams = -1").unwrap_err();
    assert!(err.starts_with("invalid value: integer `-1`, expected a non-negative integer"), "{err}");
    let params: TrainParams = toml::from_str("seeds = [1]").unwrap();
    assert_eq!(params.streams, StreamNamespaces::default());
}

/// The final end-to-end strengths `w_k = u_kᵀ W_L⋯W_1 v_k` of every member and mode.
fn final_mode_strengths(p: &TrainParams) -> Vec<Vec<f64>> {
    let spec = p.check().unwrap();
    let teacher = spec.teacher();
    final_layers(p)
        .iter()
        .map(|layers| {
            let w = layers.iter().skip(1).fold(layers[0].clone(), |acc, l| l * acc);
            (0..teacher.rank()).map(|k| (teacher.u().column(k).transpose() * &w * teacher.v().column(k))[0]).collect()
        })
        .collect()
}

/// The counter-based batches train like the PCG64 + ziggurat stream they replaced: over 128
/// members each (disjoint seeds, so the two samples are independent), the final strength of
/// every mode, in its stationary fluctuations around `s_k`, has the same mean (Welch: within 4
/// standard errors of the difference) and the same variance (the log of the ratio within 4 of
/// its standard errors, `√(2/(n−1))` each) under both generators; and the fluctuations are not
/// degenerate (label noise reaches the weights under both).
#[test]
fn counter_based_batches_train_like_the_old_generator() {
    let n = 128u64;
    let run = |generator, first_seed: u64| TrainParams {
        dims: vec![4, 5, 4],
        teacher: TeacherParams { spectrum: SpectrumSpec::List { s: vec![2.0, 1.0] }, seed: 3 },
        init: InitScheme::Gaussian { std: GaussianStd::Scale(0.3) },
        data: DataParams { source: DataSource::Online, sigma: 0.5, generator },
        lr: 0.05,
        batch: 2,
        steps: 600,
        seeds: (first_seed..first_seed + n).collect(),
        backend: BackendKind::Flex,
        n_probe: 0,
        ..TrainParams::default()
    };
    let new = final_mode_strengths(&run(Generator::Philox, 0));
    let old = final_mode_strengths(&run(Generator::Pcg64Ziggurat, 1000));
    let moments = |w: &[Vec<f64>], k: usize| {
        let mean = w.iter().map(|m| m[k]).sum::<f64>() / n as f64;
        let var = w.iter().map(|m| (m[k] - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        (mean, var)
    };
    for (k, s) in [(0, 2.0), (1, 1.0)] {
        let ((m_new, v_new), (m_old, v_old)) = (moments(&new, k), moments(&old, k));
        assert!((m_new - s).abs() < 0.1 * s && v_new > 1e-6 && v_old > 1e-6, "mode {k}: {m_new} ± {v_new}");
        let se = ((v_new + v_old) / n as f64).sqrt();
        assert!((m_new - m_old).abs() < 4.0 * se, "mode {k} means: {m_new} vs {m_old} (se {se})");
        let log_ratio = (v_new / v_old).ln();
        let bound = 4.0 * (2.0 * 2.0 / (n - 1) as f64).sqrt();
        assert!(log_ratio.abs() < bound, "mode {k} variances: {v_new} vs {v_old}");
    }
}

/// Every value of a probe, field by field.
fn probe_values(p: &Probe) -> Vec<f64> {
    let mut v = vec![
        p.alignment_error,
        p.alignment_outside,
        p.alignment_full,
        p.balance_total,
        p.balance_relative,
        p.population_loss,
    ];
    for field in [
        &p.mode_strength,
        &p.mode_matrix,
        &p.singular_values,
        &p.singular_overlap,
        &p.balance,
        &p.mode_drift,
        &p.mode_diffusion,
    ] {
        v.extend(field);
    }
    v
}

/// The f64 probes can overflow while the f32 weights are still finite. A member whose probe is
/// not finite is diverged at that probe: its record is not handed out, and the step is right —
/// the member's weights at that step (retrained alone) give a probe that is not finite, while
/// its previous probe was finite.
#[test]
fn non_finite_probes_are_divergence() {
    use modewise_theory::rng::Stream;
    // Depth 4 at an ordinary learning rate (issue 16's spec, eight seeds): seed 7's probes
    // overflow at step 6, before its weights do; seed 1's weights overflow at step 25. These
    // are the batches of the PCG64 stream (the generator when issue 16 was written); on
    // Philox's batches these eight seeds diverge in their weights only.
    let deep = TrainParams {
        data: DataParams { generator: Generator::Pcg64Ziggurat, ..DataParams::default() },
        dims: vec![3, 4, 4, 4, 3],
        teacher: TeacherParams { spectrum: SpectrumSpec::List { s: vec![2.0, 1.0] }, ..TeacherParams::default() },
        lr: 0.2,
        batch: 4,
        steps: 40,
        seeds: (1..=8).collect(),
        backend: BackendKind::Flex,
        n_probe: 64,
        ..TrainParams::default()
    };
    let spec = deep.check().unwrap();
    let (records, report) = Trainer::new(&spec).unwrap().run_collect().unwrap();
    assert!(records.iter().all(|r| probe_values(&r.probe).iter().all(|v| v.is_finite())), "a record is not finite");
    assert!(!report.divergences.is_empty(), "the spec of the issue diverges");
    let schedule = spec.probe_steps();
    let mut probe_divergences = 0;
    for d in &report.divergences {
        assert!(schedule.contains(&d.step), "found at a probe (check_every is beyond the run): {d:?}");
        let mine: Vec<u64> = records.iter().filter(|r| r.member == d.member).map(|r| r.step).collect();
        let before = schedule.iter().copied().filter(|&s| s < d.step).max();
        assert_eq!(mine.last().copied(), before, "the member's records stop at the probe before {d:?}");
        assert_eq!(d.last_finite_step, before.unwrap_or(0));
        // The member alone, retrained to the step of its divergence.
        let alone = TrainParams { seeds: vec![d.seed], ..deep.clone() };
        let layers = &final_layers(&TrainParams { steps: d.step, ..alone.clone() })[0];
        if layers.iter().all(|w| w.iter().all(|v| v.is_finite())) {
            let ctx = ProbeContext { sigma: 0.0, lr: deep.lr, batch: deep.batch, n_probe: deep.n_probe };
            let mut rng = Stream::Probe { namespace: 0, step: d.step }.rng(d.seed);
            let at = probe(layers, spec.teacher(), &ctx, &mut rng);
            assert!(probe_values(&at).iter().any(|v| !v.is_finite()), "{d:?}: the probe there is finite");
            probe_divergences += 1;
        }
    }
    assert!(probe_divergences > 0, "at least one member diverges in its probes, not its weights");

    // Huge weights at depth 6: the probes overflow at step 0; no record, every member diverged
    // at step 0, and no step is taken.
    let huge = TrainParams {
        dims: vec![3, 4, 4, 4, 4, 4, 3],
        init: InitScheme::Gaussian { std: GaussianStd::Scale(1e15) },
        steps: 10,
        n_probe: 0,
        ..deep
    };
    let spec = huge.check().unwrap();
    assert!(spec.initial_layers(0).unwrap().iter().all(|w| w.iter().all(|v| (v.abs() as f32).is_finite())));
    let (records, report) = Trainer::new(&spec).unwrap().run_collect().unwrap();
    assert!(records.is_empty(), "{} records", records.len());
    let found: Vec<(usize, u64, u64)> =
        report.divergences.iter().map(|d| (d.member, d.step, d.last_finite_step)).collect();
    assert_eq!(found, (0..8).map(|m| (m, 0, 0)).collect::<Vec<_>>());
    assert_eq!(report.steps_run, 0);
    assert!(report.final_layers.iter().all(Option::is_none));
}

/// The clones draw from their own streams and step copies of the weights: a run with clones
/// trains exactly as the run without (records, final layers), on the fused path in f32 and
/// f64 and on the closed form on tensors, with online data and a fixed sample; the clone
/// fields are filled at every probe, and `n_clones = 1` is refused.
#[test]
fn clones_leave_the_training_trajectory_bit_identical() {
    for (path, precision, source) in [
        (GradientPath::Fused, Precision::F32, DataSource::Online),
        (GradientPath::Fused, Precision::F64, DataSource::fixed(30, false)),
        (GradientPath::ClosedForm, Precision::F32, DataSource::Online),
        (GradientPath::ClosedForm, Precision::F32, DataSource::fixed(30, false)),
    ] {
        let mut p = TrainParams { precision, ..small_run(BackendKind::Flex, vec![3, 4], 60, path) };
        p.data.source = source;
        let run = |n_clones| {
            let spec = TrainParams { n_clones, ..p.clone() }.check().unwrap();
            Trainer::new(&spec).unwrap().run_collect().unwrap()
        };
        let (plain, plain_report) = run(0);
        let (cloned, cloned_report) = run(16);
        assert_eq!(cloned_report.final_layers, plain_report.final_layers, "{path} {precision} {source:?}");
        assert_eq!(plain.len(), cloned.len());
        for (a, b) in plain.iter().zip(&cloned) {
            assert!(a.probe.diffusion_clones.is_none() && a.probe.drift_clones.is_none());
            let sizes = [&b.probe.drift_clones, &b.probe.diffusion_clones, &b.probe.diffusion_clones_se]
                .map(|v| v.as_ref().map(Vec::len));
            assert_eq!(sizes, [Some(2); 3], "one value per mode at step {}", b.step);
            let stripped =
                Probe { drift_clones: None, diffusion_clones: None, diffusion_clones_se: None, ..b.probe.clone() };
            assert_eq!(a.probe, stripped, "{path} {precision} {source:?} step {}", a.step);
        }
    }
    let err = TrainParams { n_clones: 1, ..small_run(BackendKind::Flex, vec![1], 10, GradientPath::Fused) }.check();
    assert_eq!(
        err.unwrap_err().to_string(),
        "n_clones: must be 0 (no clones) or at least 2 (clones per probe) (got 1)"
    );
}

/// Issue 15, item 7: a trainer resumed from any of its checkpoints ([`Trainer::state`],
/// [`Trainer::resume`]) hands out exactly the probe records the uninterrupted run handed out
/// after that step and ends with exactly its final layers and divergences, bit for bit: on the
/// fused path (online Philox batches in f32, a fixed sample's epochs in f64) and on burn's
/// tensors, with clones, and with a member that diverged before the checkpoint.
#[test]
fn a_trainer_resumed_from_its_checkpoints_ends_bit_for_bit_where_the_run_ends() {
    use std::cell::RefCell;
    let fixed = DataSource::Fixed { n: 10, whiten: false, train_fraction: 1.0 };
    for (backend, path, source, precision) in [
        (BackendKind::Flex, GradientPath::Fused, DataSource::Online, Precision::F32),
        (BackendKind::Flex, GradientPath::Fused, fixed, Precision::F64),
        (BackendKind::Ndarray, GradientPath::ClosedForm, DataSource::Online, Precision::F32),
    ] {
        let mut p = small_run(backend, vec![1, 2, 3], 300, path);
        (p.check_every, p.checkpoint_every, p.n_clones) = (10, 50, 2);
        (p.data.source, p.precision) = (source, precision);
        p.probes = ProbeSchedule { per_decade: 5.0 };
        let spec = p.check().unwrap();
        let mut members: Vec<_> = (0..3).map(|m| spec.initial_layers(m).unwrap()).collect();
        for w in members[1].iter_mut() {
            *w *= 8.0; // far too large for this learning rate: it diverges
        }
        let mut trainer = Trainer::with_initial_layers(&spec, members, backend.device()).unwrap();
        let records = RefCell::new(Vec::new());
        let mut states = Vec::new();
        let report = trainer
            .run_checkpointed(
                |r| {
                    records.borrow_mut().push(r.clone());
                    Ok::<(), DlnError>(())
                },
                |_| {},
                |s| {
                    states.push((s.clone(), records.borrow().len()));
                    Ok(())
                },
            )
            .unwrap();
        let case = format!("{backend} {path:?} {source:?} {precision:?}");
        assert_eq!(report.divergences.len(), 1, "{case}");
        let steps: Vec<u64> = states.iter().map(|(s, _)| s.step()).collect();
        assert_eq!(steps, [50, 100, 150, 200, 250], "{case}: every 50 steps before the last");
        assert!(states.iter().any(|(s, _)| s.active_members() == [0, 2]), "{case}: a checkpoint after the divergence");
        let records = records.into_inner();
        for (state, n) in states {
            let step = state.step();
            let (rest, resumed) = Trainer::resume(&spec, state).unwrap().run_collect().unwrap();
            assert!(!rest.is_empty(), "{case}: probes after step {step}");
            assert_eq!(&records[n..], &rest[..], "{case}: the records after step {step}");
            assert_eq!(resumed.final_layers, report.final_layers, "{case}: resumed at step {step}");
            assert_eq!(resumed.divergences, report.divergences, "{case}: resumed at step {step}");
            assert_eq!(resumed.steps_run, 300);
        }
    }
}

/// A checkpoint of another run is refused, naming the field `checkpoint`.
#[test]
fn a_checkpoint_of_another_run_is_refused() {
    let mut p = small_run(BackendKind::Flex, vec![1, 2], 100, GradientPath::Fused);
    (p.check_every, p.checkpoint_every) = (10, 50);
    let mut state = None;
    Trainer::new(&p.check().unwrap())
        .unwrap()
        .run_checkpointed(
            |_| Ok::<(), DlnError>(()),
            |_| {},
            |s| {
                state.get_or_insert_with(|| s.clone());
                Ok(())
            },
        )
        .unwrap();
    let state = state.expect("a checkpoint at step 50");
    let wider = TrainParams { dims: vec![5, 8, 6, 4], ..p.clone() };
    let fixed = TrainParams {
        data: DataParams { source: DataSource::Fixed { n: 10, whiten: false, train_fraction: 1.0 }, ..p.data },
        ..p.clone()
    };
    let shorter = TrainParams { steps: 40, ..p.clone() };
    let one = TrainParams { seeds: vec![1], ..p.clone() };
    for (other, rule) in [
        (wider, "must hold layers of shapes"),
        (fixed, "must come from a run with the same data"),
        (shorter, "must be at a step of the run (at most 40)"),
        (one, "must name distinct live members below 1"),
    ] {
        let err = Trainer::resume(&other.check().unwrap(), state.clone()).err().expect("refused");
        assert_eq!(err.field(), Some("checkpoint"), "{err}");
        assert!(err.to_string().contains(rule), "{err}");
    }
}
