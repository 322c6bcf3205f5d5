//! The SDE refined in `dt`: a too-coarse `dt = η` is detected and refined until the ensemble
//! lands on the exact zero-flux density; a fine enough `dt` stops after one halving; a
//! budget too small for convergence is an error naming `max_halvings`; common random numbers
//! make the measured changes sharp; results do not depend on the thread count.

use modewise_theory::{
    EnsembleParams, Mode, ModeParams, RefineParams, RefinedEnsemble, StationaryOptions, TimeGrid, UnbalancedMode,
};

fn mode(lr: f64) -> Mode {
    ModeParams { depth: 2, s: 2.0, sigma: 0.5, lr, batch: 4 }.check().unwrap()
}

/// Stationary recording times: after 12 relaxation times `1/λ = 1/(2s)`, every 2 of them.
fn stationary_grid() -> TimeGrid {
    TimeGrid::from_times((0..7).map(|i| 3.0 + 0.5 * f64::from(i)).collect()).unwrap()
}

fn average(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn refine(m: &Mode, paths: usize, max_halvings: u32) -> modewise_theory::Result<RefinedEnsemble> {
    let params = RefineParams { max_halvings, ..RefineParams::new(EnsembleParams::new(paths, 17, stationary_grid())) };
    m.sde_refined(2.0, &params)
}

#[test]
fn too_coarse_dt_is_refined_onto_the_exact_density() {
    // The note's example: at dt = η Euler–Maruyama gives Var ≈ 1.18 T (the chain's value), the
    // SDE itself ≈ 1.05 T.
    let m = mode(0.05);
    let t = m.temperature();
    let density = m.stationary_density(StationaryOptions::default()).unwrap().variance() / t;
    let out = refine(&m, 20_000, 8).unwrap();
    for level in &out.history {
        eprintln!(
            "j = {} (dt = {:.2e}): Var = {:.4} T, change {:.2} / {:.2} se (mean / variance), paired se of the change {:.2e}",
            level.level,
            level.dt,
            average(&level.variance) / t,
            level.mean_ratio,
            level.variance_ratio,
            level.variance_change_se.first().copied().unwrap_or(0.0) / t
        );
    }
    let coarse = average(&out.history[0].variance) / t;
    let converged = average(&out.stats.variance) / t;
    eprintln!("density {density:.4} T; dt = η: {coarse:.4} T; accepted dt = η/{}: {converged:.4} T", 1 << out.level);
    // 7 × 20 000 samples: relative standard error of the averaged variance ≈ 0.4%.
    assert!((coarse - 1.18).abs() < 0.03, "dt = η gives the chain's {coarse} T");
    assert!(coarse - density > 0.1, "dt = η is far from the SDE");
    assert!((converged - density).abs() < 0.025, "converged {converged} T vs density {density} T");
    assert!(out.level >= 3, "a few halvings are needed, not {}", out.level);
    assert_eq!(out.dt, 0.05 / f64::from(1u32 << out.level));
    assert_eq!(out.history.len() as u32, out.level + 1);
    assert!(out.history.iter().enumerate().all(|(j, l)| l.level == j as u32));
    // The accepted level's statistics are the last level's, on its own time steps.
    assert_eq!(out.stats.variance, out.history.last().unwrap().variance);
    assert_eq!(out.stats.steps[0], 60 << out.level);
    assert!((out.stats.times[0] - 3.0).abs() < 1e-12);
    // Common random numbers: the change between levels is measured far more sharply than the
    // statistics themselves.
    let first = &out.history[1];
    assert!(first.variance_change_se[0] < 0.2 * first.variance_se[0], "{first:?}");
    assert!(first.mean_change_se[0] < 0.2 * first.mean_se[0]);
}

#[test]
fn fine_dt_stops_after_one_halving() {
    // η = 10⁻³: ηλ = 0.004, the Euler–Maruyama bias at dt = η is far below the standard errors.
    let m = mode(1e-3);
    let out = refine(&m, 4000, 8).unwrap();
    assert_eq!(out.level, 1);
    assert_eq!(out.history.len(), 2);
    assert!(out.history[1].variance_ratio <= 1.0 && out.history[1].mean_ratio <= 1.0);
    let v = average(&out.stats.variance) / m.temperature();
    assert!((v - 1.0).abs() < 0.03, "Var = {v} T");
}

#[test]
fn too_few_halvings_is_an_error_naming_the_budget() {
    let err = refine(&mode(0.05), 4000, 1).unwrap_err();
    assert_eq!(err.field(), Some("max_halvings"));
    assert!(err.to_string().contains("did not converge"), "{err}");
}

#[test]
fn or_finest_reports_a_too_coarse_budget_instead_of_failing() {
    let m = mode(0.05);
    let params =
        RefineParams { max_halvings: 1, ..RefineParams::new(EnsembleParams::new(4000, 17, stationary_grid())) };
    let out = m.sde_refined_or_finest(2.0, &params).unwrap();
    assert!(!out.converged, "one halving from dt = η cannot converge here");
    assert_eq!((out.level, out.dt), (1, 0.025));
    assert_eq!(out.stats.variance, out.history[1].variance);
    // With the budget the refinement needs, both entry points agree and report convergence.
    let fine = RefineParams { max_halvings: 8, ..params };
    let (a, b) = (m.sde_refined(2.0, &fine).unwrap(), m.sde_refined_or_finest(2.0, &fine).unwrap());
    assert!(a.converged && b.converged);
    assert_eq!(a, b);
}

#[test]
fn bad_parameters_name_their_field() {
    let m = mode(0.05);
    let base = RefineParams::new(EnsembleParams::new(100, 1, stationary_grid()));
    let field = |p: RefineParams| m.sde_refined(2.0, &p).unwrap_err().field().map(str::to_owned);
    assert_eq!(
        field(RefineParams { ensemble: EnsembleParams::new(1, 1, stationary_grid()), ..base.clone() }).as_deref(),
        Some("paths")
    );
    assert_eq!(field(RefineParams { max_halvings: 0, ..base.clone() }).as_deref(), Some("max_halvings"));
    assert_eq!(
        field(RefineParams { first_level: 10, max_halvings: 12, ..base.clone() }).as_deref(),
        Some("max_halvings")
    );
    assert_eq!(field(RefineParams { tolerance: 0.0, ..base.clone() }).as_deref(), Some("tolerance"));
    assert_eq!(m.sde_refined(-1.0, &base).unwrap_err().field(), Some("w0"));
}

#[test]
fn unbalanced_sde_refines_onto_its_density() {
    let m = ModeParams { depth: 2, s: 1.0, sigma: 0.5, lr: 0.05, batch: 4 }.check().unwrap();
    let u = UnbalancedMode::new(m, 1.5).unwrap();
    let grid = TimeGrid::from_times((0..6).map(|i| 4.0 + 0.8 * f64::from(i)).collect()).unwrap();
    let out = u.sde_refined(1.0, &RefineParams::new(EnsembleParams::new(10_000, 3, grid))).unwrap();
    let density = u.stationary_density(StationaryOptions::default()).unwrap();
    let (v, vd) = (average(&out.stats.variance), density.variance());
    let coarse = average(&out.history[0].variance);
    eprintln!(
        "unbalanced: dt = η {:.4}, accepted (j = {}) {:.4}, density {:.4} (× OU)",
        coarse / u.ou_variance(),
        out.level,
        v / u.ou_variance(),
        vd / u.ou_variance()
    );
    assert!((v / vd - 1.0).abs() < 0.03, "refined {v} vs density {vd}");
    assert!((average(&out.stats.mean) - density.mean()).abs() < 0.1 * vd.sqrt());
}

#[test]
fn results_do_not_depend_on_thread_count() {
    let m = mode(0.05);
    let grid = TimeGrid::from_times(vec![0.5, 1.0]).unwrap();
    let params =
        RefineParams { max_halvings: 3, tolerance: 1e3, ..RefineParams::new(EnsembleParams::new(300, 8, grid)) };
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| m.sde_refined(0.1, &params).unwrap())
    };
    assert_eq!(run(1), run(2));
}
