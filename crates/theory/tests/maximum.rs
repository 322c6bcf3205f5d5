//! Local peak and global maximum of the diffusion along gradient flow: the dominance threshold
//! `D(w_peak) = D(s)` (exactly `20√5 − 44` times the bound at `L = 2`), and the maxima on
//! `[w0, ρ s]` against a fine grid, balanced and unbalanced.

use modewise_theory::{Coordinate, Mode, ModeParams, UnbalancedMode};

fn mode(depth: u32, s: f64, sigma2: f64) -> Mode {
    ModeParams { depth, s, sigma: sigma2.sqrt(), lr: 1e-2, batch: 2 }.check().unwrap()
}

/// `D` in `coordinate` at the end-to-end value `w`.
fn d(m: &Mode, coordinate: Coordinate, w: f64) -> f64 {
    match coordinate {
        Coordinate::EndToEnd => m.diffusion(coordinate, w),
        Coordinate::PerLayer => m.diffusion(coordinate, m.a_from_w(w)),
    }
}

/// `D(w_peak) − D(s)` relative to `D(s)`.
fn peak_over_end(m: &Mode, coordinate: Coordinate) -> f64 {
    let w_peak = m.diffusion_peak(coordinate).expect("below the bound");
    d(m, coordinate, w_peak) / d(m, coordinate, m.s()) - 1.0
}

#[test]
fn dominance_threshold_at_depth_two_is_twenty_root_five_minus_forty_four() {
    for s in [1.0, 2.0, 0.3] {
        let m = mode(2, s, 0.0);
        let bound = m.peak_sigma2_max(Coordinate::EndToEnd).unwrap();
        let sigma2 = m.peak_dominance_sigma2(Coordinate::EndToEnd).unwrap();
        let exact = 20.0 * 5f64.sqrt() - 44.0;
        assert!((sigma2 / bound - exact).abs() < 1e-12, "s={s}: {} vs {exact}", sigma2 / bound);
        assert!((sigma2 - (5.0 * 5f64.sqrt() - 11.0) * s * s).abs() < 1e-12 * s * s);
        // There D(w_peak) = D(s), computed from the diffusion itself.
        assert!(peak_over_end(&mode(2, s, sigma2), Coordinate::EndToEnd).abs() < 1e-10);
        // Below it the peak dominates, between it and the bound it does not.
        assert!(peak_over_end(&mode(2, s, 0.70 * bound), Coordinate::EndToEnd) > 0.0);
        assert!(peak_over_end(&mode(2, s, 0.74 * bound), Coordinate::EndToEnd) < 0.0);
        assert!(peak_over_end(&mode(2, s, 0.99 * bound), Coordinate::EndToEnd) < 0.0);
        // In the per-layer coordinate (c = 1) the threshold is σ² = s²/2, 3/4 of the bound 2s²/3:
        // there sqrt(4s² − 6σ²) = s, w_peak = s/2 and D_a ∝ w (2 (s − w)² + σ²) is s³/2 at both.
        let per_layer = m.peak_dominance_sigma2(Coordinate::PerLayer).unwrap();
        assert!((per_layer - 0.5 * s * s).abs() < 1e-12 * s * s, "s={s}: {per_layer}");
    }
}

#[test]
fn dominance_threshold_is_the_single_crossing_at_every_depth() {
    for depth in [2u32, 3, 4, 6] {
        for coordinate in [Coordinate::EndToEnd, Coordinate::PerLayer] {
            let m = mode(depth, 1.5, 0.0);
            let bound = m.peak_sigma2_max(coordinate).unwrap();
            let sigma2 = m.peak_dominance_sigma2(coordinate).unwrap();
            let gap = peak_over_end(&mode(depth, 1.5, sigma2), coordinate);
            assert!(gap.abs() < 1e-10, "L={depth} {coordinate}: D(w_peak)/D(s) − 1 = {gap}");
            // One sign change on a scan of (0, bound): positive below the threshold, negative above.
            for i in 1..200 {
                let x = bound * f64::from(i) / 200.0;
                let g = peak_over_end(&mode(depth, 1.5, x), coordinate);
                assert!((g > 0.0) == (x < sigma2) || (x - sigma2).abs() < 1e-9, "L={depth} {coordinate} σ²={x}: {g}");
            }
            eprintln!("L = {depth} {coordinate}: threshold {:.4} × bound", sigma2 / bound);
        }
    }
    assert_eq!(mode(1, 1.0, 0.0).peak_dominance_sigma2(Coordinate::EndToEnd), None);
}

/// Arg-max and max of `f` on a fine grid over `[lo, hi]`.
fn grid_max(f: impl Fn(f64) -> f64, lo: f64, hi: f64) -> (f64, f64) {
    let n = 200_000;
    (0..=n)
        .map(|i| lo + (hi - lo) * f64::from(i) / f64::from(n))
        .map(|w| (w, f(w)))
        .fold((lo, f64::NEG_INFINITY), |best, (w, v)| if v > best.1 { (w, v) } else { best })
}

#[test]
fn global_maximum_matches_a_grid_along_the_flow() {
    let s = 2.0;
    let w0 = 1e-3;
    for depth in [2u32, 3] {
        for coordinate in [Coordinate::EndToEnd, Coordinate::PerLayer] {
            let bound = mode(depth, s, 0.0).peak_sigma2_max(coordinate).unwrap();
            for factor in [0.0, 0.5, 0.8, 0.95, 1.3] {
                for rho in [0.6, 0.9, 0.99] {
                    let m = mode(depth, s, factor * bound);
                    let max = m.diffusion_maximum(coordinate, w0, rho).unwrap();
                    let (w, v) = grid_max(|w| d(&m, coordinate, w), w0, rho * s);
                    let label = format!("L={depth} {coordinate} σ²={factor}·bound ρ={rho}");
                    assert!(
                        (max.global.diffusion / v - 1.0).abs() < 1e-8,
                        "{label}: {:?} vs grid ({w}, {v})",
                        max.global
                    );
                    assert!((max.global.w - w).abs() < 1e-3 * s, "{label}: at {} vs grid {w}", max.global.w);
                    // Its time is the gradient-flow time to it.
                    let back = m.gf_trajectory(w0, max.global.time).unwrap();
                    assert!((back - max.global.w).abs() < 1e-8, "{label}: flow at its time {back}");
                    match (m.diffusion_peak(coordinate), max.local_peak) {
                        (Some(peak), Some(local)) => {
                            assert_eq!(local.w, peak);
                            let t = m.peak_time(coordinate, w0).unwrap().unwrap();
                            assert!((local.time - t).abs() < 1e-12 * t, "{label}");
                        }
                        (Some(peak), None) => {
                            assert!(peak > rho * s, "{label}: peak {peak} on the way but not reported")
                        }
                        (None, local) => assert_eq!(local, None, "{label}"),
                    }
                }
            }
        }
    }
    // Near the bound the global maximum on the way to 0.99 s is the end, not the peak.
    let m = mode(2, s, 0.9 * s * s / 4.0);
    let max = m.diffusion_maximum(Coordinate::EndToEnd, w0, 0.99).unwrap();
    assert!(max.local_peak.is_some() && max.global.w == 0.99 * s, "{max:?}");
}

#[test]
fn unbalanced_global_maximum_matches_a_grid() {
    let m = ModeParams { depth: 2, s: 1.0, sigma: 0.0, lr: 1e-2, batch: 2 }.check().unwrap();
    for (delta, sigma2, w0) in [(0.3, 0.1, 1e-3), (0.6, 0.0, -0.5), (0.9, 0.4, 0.1), (2.0, 0.2, -1.0)] {
        let m = ModeParams { sigma: f64::sqrt(sigma2), ..m.params() }.check().unwrap();
        let u = UnbalancedMode::new(m, delta).unwrap();
        for rho in [0.7, 0.95] {
            let max = u.diffusion_maximum(w0, rho).unwrap();
            let (w, v) = grid_max(|w| u.diffusion(w), w0, rho);
            let label = format!("δ={delta} σ²={sigma2} w0={w0} ρ={rho}");
            assert!((max.global.diffusion / v - 1.0).abs() < 1e-8, "{label}: {:?} vs grid ({w}, {v})", max.global);
            assert!((max.global.w - w).abs() < 1e-3, "{label}");
            assert!((u.gf_trajectory(w0, max.global.time).unwrap() - max.global.w).abs() < 1e-8, "{label}");
            assert_eq!(max.local_peak.map(|p| p.w), u.diffusion_peak().filter(|&p| p <= rho), "{label}");
        }
    }
}

#[test]
fn start_past_the_end_is_an_error() {
    let m = mode(2, 1.0, 0.01);
    let err = m.diffusion_maximum(Coordinate::EndToEnd, 0.95, 0.9).unwrap_err();
    assert_eq!(err.field(), Some("w0"));
    assert_eq!(m.diffusion_maximum(Coordinate::EndToEnd, 0.1, 1.0).unwrap_err().field(), Some("rho"));
}
