//! Diffusion peak: location against the numerical maximum of `D` on a fine grid, on both
//! sides of the discriminant bound, in both coordinates; its time against the flow.

use modewise_theory::{Coordinate, Mode, ModeParams};

fn mode(depth: u32, s: f64, sigma: f64) -> Mode {
    ModeParams { depth, s, sigma, lr: 1e-2, batch: 2 }.check().unwrap()
}

/// First local maximum of the diffusion on a fine grid over `(0, s]`, written in `w`, and
/// whether it is interior (with label noise `D` rises again towards `s` after its peak, so
/// the peak is a local maximum, not always the global one).
fn grid_argmax(m: &Mode, coordinate: Coordinate) -> (f64, bool) {
    let n = 400_000;
    let top = match coordinate {
        Coordinate::EndToEnd => m.s(),
        Coordinate::PerLayer => m.a_from_w(m.s()),
    };
    let x = |i: usize| top * i as f64 / n as f64;
    let d = |i: usize| m.diffusion(coordinate, x(i));
    let to_w = |x: f64| match coordinate {
        Coordinate::EndToEnd => x,
        Coordinate::PerLayer => m.w_from_a(x),
    };
    for i in 2..n {
        if d(i) > d(i - 1) && d(i) >= d(i + 1) {
            return (to_w(x(i)), true);
        }
    }
    (to_w(top), false)
}

#[test]
fn peak_location_matches_grid_maximum_on_both_sides_of_the_bound() {
    for depth in [2, 3, 4, 6] {
        for coordinate in [Coordinate::EndToEnd, Coordinate::PerLayer] {
            let s = 1.7;
            let bound = mode(depth, s, 0.0).peak_sigma2_max(coordinate).unwrap();
            for factor in [0.0, 0.5, 0.95, 1.05, 2.0] {
                let sigma = (factor * bound).sqrt();
                let m = mode(depth, s, sigma);
                let (argmax, interior) = grid_argmax(&m, coordinate);
                match m.diffusion_peak(coordinate) {
                    Some(w_peak) => {
                        assert!(factor <= 1.0, "L={depth} {coordinate}: peak claimed above the bound");
                        assert!(interior, "L={depth} {coordinate} σ²={factor}·bound: grid maximum at s");
                        let tol = 1e-4 * s * f64::from(depth);
                        assert!(
                            (w_peak - argmax).abs() < tol,
                            "L={depth} {coordinate} σ²={factor}·bound: w_peak {w_peak} vs grid {argmax}"
                        );
                    }
                    None => {
                        assert!(factor > 1.0, "L={depth} {coordinate}: no peak below the bound");
                        assert!(!interior, "L={depth} {coordinate}: grid has an interior maximum at {argmax}");
                    }
                }
            }
        }
    }
}

#[test]
fn noiseless_peak_is_at_the_closed_form_fraction() {
    for depth in 2..=6 {
        let l = f64::from(depth);
        let m = mode(depth, 2.0, 0.0);
        let w = m.diffusion_peak(Coordinate::EndToEnd).unwrap();
        assert!((w - 2.0 * (l - 1.0) * 2.0 / (3.0 * l - 2.0)).abs() < 1e-12);
        let a = m.diffusion_peak(Coordinate::PerLayer).unwrap();
        assert!((a - (l - 1.0) * 2.0 / (2.0 * l - 1.0)).abs() < 1e-12);
    }
    // Depth 1: D = (η/B) q(w) has no interior maximum.
    let m = mode(1, 1.0, 0.0);
    assert_eq!(m.peak_sigma2_max(Coordinate::EndToEnd), None);
    assert_eq!(m.diffusion_peak(Coordinate::EndToEnd), None);
}

#[test]
fn peak_time_lands_on_the_peak_before_learning() {
    for depth in [2, 3, 4] {
        for coordinate in [Coordinate::EndToEnd, Coordinate::PerLayer] {
            let m = mode(depth, 1.0, 0.1);
            let w0 = 1e-4;
            let t_peak = m.peak_time(coordinate, w0).unwrap().expect("peak ahead");
            let w_peak = m.diffusion_peak(coordinate).unwrap();
            let w = m.gf_trajectory(w0, t_peak).unwrap();
            assert!((w - w_peak).abs() < 1e-8, "L={depth}: w(t_peak) = {w}, w_peak = {w_peak}");
            assert!(t_peak < m.t_learned(w0, 0.9).unwrap());
            // Started past the peak: no peak ahead.
            assert_eq!(m.peak_time(coordinate, 0.95).unwrap(), None);
        }
    }
}
