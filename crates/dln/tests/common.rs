//! Shared helpers of the DLN integration tests.
#![allow(dead_code)]

use modewise_dln::*;
use nalgebra::DMatrix;

/// Largest entry-wise difference relative to the largest entry, over all members and layers.
pub fn max_rel_diff(a: &[Vec<DMatrix<f64>>], b: &[Vec<DMatrix<f64>>]) -> f64 {
    assert_eq!(a.len(), b.len());
    let mut diff: f64 = 0.0;
    let mut scale: f64 = 0.0;
    for (ma, mb) in a.iter().zip(b) {
        for (wa, wb) in ma.iter().zip(mb) {
            diff = diff.max((wa - wb).amax());
            scale = scale.max(wa.amax());
        }
    }
    diff / scale
}

/// A small online-SGD run with label noise on `backend`.
pub fn small_run(backend: BackendKind, seeds: Vec<u64>, steps: u64, gradient: GradientPath) -> TrainParams {
    TrainParams {
        dims: vec![5, 7, 6, 4],
        teacher: TeacherParams { spectrum: SpectrumSpec::List { s: vec![2.0, 1.0] }, seed: 11 },
        init: InitScheme::Gaussian { std: GaussianStd::Scale(0.4) },
        data: DataParams { source: DataSource::Online, sigma: 0.3, ..DataParams::default() },
        lr: 0.02,
        batch: 4,
        steps,
        seeds,
        gradient,
        backend,
        n_probe: 0,
        ..TrainParams::default()
    }
}

/// Runs to the end and returns the final layers of every member (panics on divergence).
pub fn final_layers(p: &TrainParams) -> Vec<Vec<DMatrix<f64>>> {
    let spec = p.check().unwrap();
    let mut trainer = Trainer::new(&spec).unwrap();
    for _ in 0..p.steps {
        trainer.step();
    }
    trainer.host_layers().unwrap()
}
