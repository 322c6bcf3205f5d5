//! Parameter validation: each broken rule is a typed error naming its field and rule.

use modewise_theory::{Dynamics, EnsembleParams, ModeParams, SpectrumParams, TheoryError, TimeGrid};

fn field_of(r: Result<impl std::fmt::Debug, TheoryError>) -> String {
    match r.unwrap_err() {
        TheoryError::InvalidParameter(p) => {
            assert!(!p.rule.is_empty());
            p.field
        }
        other => panic!("expected an invalid parameter, got {other}"),
    }
}

#[test]
fn mode_rules() {
    let ok = ModeParams::default();
    assert!(ok.check().is_ok());
    let cases: Vec<(ModeParams, &str)> = vec![
        (ModeParams { depth: 0, ..ok }, "depth"),
        (ModeParams { s: 0.0, ..ok }, "s"),
        (ModeParams { s: -1.0, ..ok }, "s"),
        (ModeParams { s: f64::NAN, ..ok }, "s"),
        (ModeParams { s: f64::INFINITY, ..ok }, "s"),
        (ModeParams { sigma: -0.1, ..ok }, "sigma"),
        (ModeParams { sigma: f64::NAN, ..ok }, "sigma"),
        (ModeParams { lr: 0.0, ..ok }, "lr"),
        (ModeParams { lr: f64::NAN, ..ok }, "lr"),
        (ModeParams { batch: 0, ..ok }, "batch"),
    ];
    for (params, field) in cases {
        assert_eq!(field_of(params.check()), field, "{params:?}");
    }
    let msg = ModeParams { depth: 0, ..ok }.check().unwrap_err().to_string();
    assert_eq!(msg, "depth: must be at least 1 (got 0)");
}

#[test]
fn spectrum_rules() {
    let ok = SpectrumParams::default();
    let spectrum = ok.check().unwrap();
    assert_eq!(spectrum.len(), 3);
    assert_eq!(spectrum.w0(), &[1e-3, 1e-3, 1e-3]);
    let cases: Vec<(SpectrumParams, &str)> = vec![
        (SpectrumParams { s: vec![], ..ok.clone() }, "s"),
        (SpectrumParams { s: vec![1.0, 2.0], ..ok.clone() }, "s[1]"),
        (SpectrumParams { s: vec![2.0, -1.0], ..ok.clone() }, "s[1]"),
        (SpectrumParams { w0: vec![0.1, 0.1], ..ok.clone() }, "w0"),
        (SpectrumParams { w0: vec![0.1, 0.0, 0.1], ..ok.clone() }, "w0[1]"),
        (SpectrumParams { depth: 0, ..ok.clone() }, "depth"),
        (SpectrumParams { lr: -1.0, ..ok.clone() }, "lr"),
    ];
    for (params, field) in cases {
        assert_eq!(field_of(params.check()), field, "{params:?}");
    }
    // Depth 1 accepts any finite start, even negative.
    assert!(SpectrumParams { depth: 1, w0: vec![-0.5], ..ok }.check().is_ok());
}

#[test]
fn ensemble_and_grid_rules() {
    let m = ModeParams::default().check().unwrap();
    let grid = TimeGrid::linear(1.0, 3).unwrap();
    assert_eq!(field_of(m.ensemble(0.1, Dynamics::Chain, &EnsembleParams::new(0, 1, grid.clone()))), "paths");
    assert_eq!(field_of(m.ensemble(-0.1, Dynamics::Chain, &EnsembleParams::new(4, 1, grid.clone()))), "w0");
    let bad_dt = Dynamics::Sde { scheme: Default::default(), coordinate: Default::default(), dt: 0.0 };
    assert_eq!(field_of(m.ensemble(0.1, bad_dt, &EnsembleParams::new(4, 1, grid))), "dt");
    assert_eq!(field_of(TimeGrid::log_spaced(0.0, 1.0, 4)), "t_min");
    assert_eq!(field_of(TimeGrid::log_spaced(2.0, 1.0, 4)), "t_max");
    assert_eq!(field_of(TimeGrid::linear(1.0, 1)), "points");
    assert_eq!(field_of(TimeGrid::from_times(vec![0.0, 2.0, 1.0])), "times[2]");
    assert_eq!(field_of(TimeGrid::from_times(vec![])), "times");
    let d = TimeGrid::default();
    assert_eq!((d.times()[0], d.times()[1], d.t_max(), d.times().len()), (0.0, 1e-2, 1e3, 61));
    let g = TimeGrid::log_spaced(1e-2, 1e2, 5).unwrap();
    assert_eq!(g.times().len(), 6);
    assert_eq!(g.times()[0], 0.0);
    assert!((g.times()[4] - 10.0).abs() < 1e-12);
}
