//! Runs a few SGD steps of W3's shape (four layers, all of one width) on wgpu (or cuda) after a
//! warm-up, to count the kernel launches of a step by gradient path from cubecl's profiling log:
//! `scripts/launch-count.sh closed-form 512 128` runs it for 2 and 4 steps and halves the
//! difference (the warm-up's compilation and autotuning drop out).
//!
//! Arguments: gradient path (closed-form, autodiff), width, batch, steps, and optionally the
//! backend (wgpu) and the members (1).

use modewise_dln::{
    BackendKind, DataParams, DataSource, GaussianStd, GradientPath, InitScheme, SpectrumSpec, TeacherParams,
    TrainParams, Trainer,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.to_string());
    let gradient: GradientPath = arg(0, "closed-form").parse()?;
    let width: usize = arg(1, "512").parse()?;
    let batch: usize = arg(2, "128").parse()?;
    let steps: u64 = arg(3, "10").parse()?;
    let backend: BackendKind = arg(4, "wgpu").parse()?;
    let members: u64 = arg(5, "1").parse()?;
    let p = TrainParams {
        dims: vec![width; 5],
        teacher: TeacherParams {
            spectrum: SpectrumSpec::PowerLaw { s_max: 1.0, decay: 1.0, rank: 5, s_min: 1e-12 },
            seed: 0,
        },
        init: InitScheme::Gaussian { std: GaussianStd::Gamma(2.0) },
        data: DataParams { source: DataSource::Online, sigma: 0.1, ..DataParams::default() },
        lr: 1e-3,
        batch,
        steps: u64::MAX,
        seeds: (0..members).collect(),
        gradient,
        backend,
        ..TrainParams::default()
    };
    let mut trainer = Trainer::new(&p.check()?)?;
    // Warm-up: compile and autotune every kernel of a step.
    for _ in 0..3 {
        trainer.step();
    }
    trainer.sync()?;
    for _ in 0..steps {
        trainer.step();
    }
    trainer.sync()?;
    println!("{steps} steps of {gradient} at width {width}, batch {batch}, {members} member(s) on {backend}");
    Ok(())
}
