//! Where the SDE model holds and where it breaks (`docs/theory.md` §7.2): power-law fits of a
//! statistic against a factor (η, B, σ, s) with confidence intervals, and the breakdown
//! learning rate — the smallest `η` from which on a prediction leaves the measured interval.

use crate::stats::{mean, t_quantile};

/// An ordinary-least-squares fit `ln y = c + b ln x` of a power law `y ∝ x^b`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PowerLawFit {
    /// The fitted exponent `b`.
    pub exponent: f64,
    /// Its standard error `sqrt(s² / Σ(ln x − mean)²)`, `s²` the residual variance on `n − 2`
    /// degrees of freedom (0 for an exact fit).
    pub se: f64,
    /// The 95% interval `b ± t_{n−2} · se`.
    pub ci_low: f64,
    /// Upper end of that interval.
    pub ci_high: f64,
    /// The intercept `c`.
    pub intercept: f64,
    /// Points fitted.
    pub n: usize,
}

impl PowerLawFit {
    /// Whether `exponent` lies in the 95% interval.
    pub fn covers(&self, exponent: f64) -> bool {
        (self.ci_low..=self.ci_high).contains(&exponent)
    }
}

/// Fits `y ∝ x^b` by OLS on the logarithms of the points with `x > 0`, `y > 0` both finite
/// (the others are left out); `None` with fewer than three such points or fewer than two
/// distinct `x`. Repeated `x` (one point per seed) are what give the interval its meaning: the
/// residuals then carry the seed-to-seed scatter.
pub fn fit_power_law(x: &[f64], y: &[f64]) -> Option<PowerLawFit> {
    let (lx, ly): (Vec<f64>, Vec<f64>) = x
        .iter()
        .zip(y)
        .filter(|(a, b)| a.is_finite() && b.is_finite() && **a > 0.0 && **b > 0.0)
        .map(|(a, b)| (a.ln(), b.ln()))
        .unzip();
    let n = lx.len();
    if n < 3 {
        return None;
    }
    let (mx, my) = (mean(&lx), mean(&ly));
    let sxx: f64 = lx.iter().map(|a| (a - mx).powi(2)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let sxy: f64 = lx.iter().zip(&ly).map(|(a, b)| (a - mx) * (b - my)).sum();
    let b = sxy / sxx;
    let c = my - b * mx;
    let rss: f64 = lx.iter().zip(&ly).map(|(a, y)| (y - c - b * a).powi(2)).sum();
    let se = (rss / (n - 2) as f64 / sxx).sqrt();
    // Student's t on n − 2 degrees of freedom (t_quantile(m) has m − 1).
    let half = t_quantile(n - 1) * se;
    Some(PowerLawFit { exponent: b, se, ci_low: b - half, ci_high: b + half, intercept: c, n })
}

/// One level of a factor for [`fit_power_law_levels`]: the factor's value, the mean of the
/// statistic over its units (seeds, paths) and that mean's standard error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Level {
    /// The factor's value.
    pub x: f64,
    /// The mean of the statistic over the level's units.
    pub mean: f64,
    /// Its standard error.
    pub se: f64,
    /// Units behind the mean.
    pub n: usize,
}

/// Fits `mean ∝ x^b` by weighted least squares of `ln mean` on `ln x`, each level weighted by
/// `1/(se/mean)²` (the delta method's variance of `ln mean`): the slope's standard error comes
/// from the scatter of the units within each level, not from the residuals, so two levels
/// suffice, and the interval is `b ± t · se` with the degrees of freedom of the smallest level
/// (`n − 1`). Unlike [`fit_power_law`] on one point per unit, the logarithm is taken of the
/// means: `E ln y` of a per-unit statistic is biased by about `−Var(y)/(2 E y²)`, and that bias
/// changes from level to level when the units' effective sample size does (e.g. a time average
/// over a fixed time at a relaxation rate that changes with `s` or `L`), which would tilt the
/// slope. `None` with fewer than two levels with `x > 0`, `mean > 0`, `se > 0` (all finite), or
/// one distinct `x`.
pub fn fit_power_law_levels(levels: &[Level]) -> Option<PowerLawFit> {
    let ok: Vec<(f64, f64, f64, usize)> = levels
        .iter()
        .filter(|l| [l.x, l.mean, l.se].iter().all(|v| v.is_finite() && *v > 0.0) && l.n >= 2)
        .map(|l| (l.x.ln(), l.mean.ln(), (l.mean / l.se).powi(2), l.n))
        .collect();
    if ok.len() < 2 {
        return None;
    }
    let total: f64 = ok.iter().map(|l| l.2).sum();
    let mx = ok.iter().map(|l| l.2 * l.0).sum::<f64>() / total;
    let my = ok.iter().map(|l| l.2 * l.1).sum::<f64>() / total;
    let sxx: f64 = ok.iter().map(|l| l.2 * (l.0 - mx).powi(2)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let b = ok.iter().map(|l| l.2 * (l.0 - mx) * (l.1 - my)).sum::<f64>() / sxx;
    let se = (1.0 / sxx).sqrt();
    let n_min = ok.iter().map(|l| l.3).min().unwrap_or(2);
    let half = t_quantile(n_min) * se;
    let n = ok.iter().map(|l| l.3).sum();
    Some(PowerLawFit { exponent: b, se, ci_low: b - half, ci_high: b + half, intercept: my - b * mx, n })
}

/// One learning rate of a breakdown scan: the model's prediction against the measured
/// interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScanPoint {
    /// The learning rate.
    pub lr: f64,
    /// The model's prediction.
    pub predicted: f64,
    /// Lower end of the measured 95% interval.
    pub ci_low: f64,
    /// Upper end.
    pub ci_high: f64,
}

impl ScanPoint {
    /// Whether the prediction lies in the interval widened by `tolerance · |predicted|` on both
    /// sides (the model's own stated tolerance); a NaN bound never holds.
    pub fn holds(&self, tolerance: f64) -> bool {
        let slack = tolerance * self.predicted.abs();
        self.ci_low - slack <= self.predicted && self.predicted <= self.ci_high + slack
    }
}

/// Where a prediction breaks down along a scan in `η`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Breakdown {
    /// The prediction holds at every learning rate scanned (the breakdown, if any, lies above
    /// the largest).
    Never {
        /// The largest learning rate scanned.
        largest: f64,
    },
    /// It holds below `lr` and fails at `lr` and at every larger learning rate scanned.
    At {
        /// The smallest failing learning rate of the final run of failures.
        lr: f64,
        /// The largest learning rate below it (where it holds).
        last_holding: f64,
    },
    /// It fails at every learning rate scanned.
    Always {
        /// The smallest learning rate scanned.
        smallest: f64,
    },
}

impl Breakdown {
    /// The breakdown learning rate: `lr` of [`Breakdown::At`], the smallest scanned of
    /// [`Breakdown::Always`] (an upper bound), `inf` for [`Breakdown::Never`].
    pub fn lr(&self) -> f64 {
        match *self {
            Self::Never { .. } => f64::INFINITY,
            Self::At { lr, .. } => lr,
            Self::Always { smallest } => smallest,
        }
    }
}

/// The breakdown learning rate of a scan (points in any order; `None` when empty): the smallest
/// `η` from which on, up to the largest scanned, the prediction is outside the measured interval
/// widened by `tolerance` (relative to `|predicted|`). An isolated failure below a holding
/// point does not count: the rule asks where the model *stays* wrong.
pub fn breakdown_lr(points: &[ScanPoint], tolerance: f64) -> Option<Breakdown> {
    let mut sorted = points.to_vec();
    sorted.sort_by(|a, b| a.lr.total_cmp(&b.lr));
    let last = sorted.last()?;
    let first_failing_tail = sorted.iter().rposition(|p| p.holds(tolerance)).map_or(0, |i| i + 1);
    Some(if first_failing_tail == sorted.len() {
        Breakdown::Never { largest: last.lr }
    } else if first_failing_tail == 0 {
        Breakdown::Always { smallest: sorted[0].lr }
    } else {
        Breakdown::At { lr: sorted[first_failing_tail].lr, last_holding: sorted[first_failing_tail - 1].lr }
    })
}

#[cfg(test)]
mod tests {
    use modewise_theory::{Dynamics, EnsembleParams, ModeParams, StationaryOptions, TimeGrid};
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};

    use super::*;

    #[test]
    fn the_fit_recovers_known_exponents_from_noisy_synthetic_data() {
        // y = 0.3 x^b · e^ε, ε ~ N(0, 0.05²), 5 "seeds" at each of 6 x: the exponent within its
        // interval for each of the Boltzmann law's exponents, and the interval about right.
        let mut rng = rand_pcg::Pcg64::seed_from_u64(7);
        let noise = Normal::new(0.0, 0.05).unwrap();
        let mut covered = 0;
        let trials = 40;
        for trial in 0..trials {
            let b = [1.0, -1.0, 2.0, 1.5][trial % 4];
            let (mut x, mut y) = (Vec::new(), Vec::new());
            for i in 0..6 {
                let xi = 0.01 * 2f64.powi(i);
                for _ in 0..5 {
                    x.push(xi);
                    y.push(0.3 * xi.powf(b) * f64::exp(noise.sample(&mut rng)));
                }
            }
            let fit = fit_power_law(&x, &y).unwrap();
            assert_eq!(fit.n, 30);
            assert!((fit.exponent - b).abs() < 0.1, "b = {b}: {fit:?}");
            // se of the slope: 0.05 / sqrt(Σ (ln x − mean)²) = 0.05 / sqrt(5 · 17.5 · ln²2) ≈ 0.0077.
            assert!((fit.se - 0.0077).abs() < 0.003, "{fit:?}");
            covered += usize::from(fit.covers(b));
        }
        // 95% coverage: at least 34 of 40 (P(fewer) < 1% for a correct interval).
        assert!(covered >= 34, "covered {covered} of {trials}");
    }

    #[test]
    fn the_fit_is_exact_on_the_boltzmann_temperature_and_refuses_too_few_points() {
        // The Boltzmann temperature T = L η σ² s^{2−2/L}/(2B) (docs/theory.md §5.4): exponents 1, −1, 2 in η, B, σ exactly.
        let t_s = |lr: f64, batch: u32, sigma: f64, s: f64| {
            ModeParams { depth: 3, s, sigma, lr, batch }.check().unwrap().temperature()
        };
        let t = |lr, batch, sigma| t_s(lr, batch, sigma, 2.0);
        let xs = [0.5, 1.0, 2.0, 4.0];
        for (factor, expected) in [
            ((0..4).map(|i| t(0.01 * xs[i], 4, 0.5)).collect::<Vec<_>>(), 1.0),
            ((0..4).map(|i| t(0.01, 2 << i, 0.5)).collect::<Vec<_>>(), -1.0),
            ((0..4).map(|i| t(0.01, 4, 0.5 * xs[i])).collect::<Vec<_>>(), 2.0),
            // T = L η σ² s^{2−2/L}/(2B): s^{4/3} at L = 3.
            ((0..4).map(|i| t_s(0.01, 4, 0.5, xs[i])).collect::<Vec<_>>(), 4.0 / 3.0),
        ] {
            let fit = fit_power_law(&xs, &factor).unwrap();
            assert!((fit.exponent - expected).abs() < 1e-12, "{fit:?}");
            assert!(fit.se < 1e-12);
        }
        assert!(fit_power_law(&[1.0, 2.0], &[1.0, 2.0]).is_none(), "two points leave no residual");
        assert!(fit_power_law(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]).is_none(), "one distinct x");
        assert!(fit_power_law(&[1.0, 2.0, -3.0, 4.0], &[1.0, 2.0, 3.0, f64::NAN]).is_none(), "two usable points");
    }

    #[test]
    fn the_level_fit_recovers_known_exponents_where_the_per_unit_fit_is_tilted() {
        // Each unit is a mean of m squared Gaussians (a time average of (w − s)² over m
        // independent samples), scaled by x^b; m grows with x as a relaxation rate would.
        // The per-unit log fit is tilted by the changing bias of E ln y; the level fit is not.
        let mut rng = rand_pcg::Pcg64::seed_from_u64(11);
        let normal = Normal::new(0.0, 1.0).unwrap();
        let (mut covered, mut tilted) = (0, 0);
        let trials = 40;
        for trial in 0..trials {
            let b = [1.0, -1.0, 2.0, 1.5][trial % 4];
            let (mut x, mut y, mut levels) = (Vec::new(), Vec::new(), Vec::new());
            for (xi, m) in [(1.0, 2), (2.0, 8), (4.0, 32)] {
                let units: Vec<f64> = (0..400)
                    .map(|_| {
                        let chi2 = (0..m).map(|_| f64::powi(normal.sample(&mut rng), 2)).sum::<f64>() / m as f64;
                        f64::powf(xi, b) * chi2
                    })
                    .collect();
                let se = crate::stats::variance(&units).sqrt() / (units.len() as f64).sqrt();
                levels.push(Level { x: xi, mean: mean(&units), se, n: units.len() });
                x.extend(std::iter::repeat_n(xi, units.len()));
                y.extend(units);
            }
            let fit = fit_power_law_levels(&levels).unwrap();
            assert_eq!(fit.n, 1200);
            covered += usize::from(fit.covers(b));
            tilted += usize::from(!fit_power_law(&x, &y).unwrap().covers(b));
        }
        assert!(covered >= 34, "covered {covered} of {trials}");
        // E ln(χ²_m/m) ≈ −1/m: from −0.5 at m = 2 to −0.03 at m = 32, a tilt of 0.34 in the
        // slope against intervals of about ±0.05.
        assert!(tilted >= 36, "the per-unit fit missed only {tilted} of {trials}");
        assert!(fit_power_law_levels(&[Level { x: 1.0, mean: 1.0, se: 0.1, n: 9 }]).is_none(), "one level");
        let same_x = [Level { x: 1.0, mean: 1.0, se: 0.1, n: 9 }, Level { x: 1.0, mean: 2.0, se: 0.1, n: 9 }];
        assert!(fit_power_law_levels(&same_x).is_none(), "one distinct x");
    }

    #[test]
    fn breakdown_rule_on_hand_made_scans() {
        let p = |lr, predicted, lo, hi| ScanPoint { lr, predicted, ci_low: lo, ci_high: hi };
        let holds = p(0.01, 1.0, 0.9, 1.1);
        let fails = |lr| p(lr, 1.0, 1.2, 1.3);
        assert_eq!(breakdown_lr(&[], 0.0), None);
        assert_eq!(breakdown_lr(&[holds, p(0.02, 1.0, 0.95, 1.05)], 0.0), Some(Breakdown::Never { largest: 0.02 }));
        // Out of order, with an isolated failure below a holding point.
        let scan = [fails(0.08), holds, fails(0.005), p(0.02, 1.0, 0.98, 1.02), fails(0.04)];
        assert_eq!(breakdown_lr(&scan, 0.0), Some(Breakdown::At { lr: 0.04, last_holding: 0.02 }));
        assert_eq!(breakdown_lr(&scan, 0.0).unwrap().lr(), 0.04);
        assert_eq!(breakdown_lr(&[fails(0.01), fails(0.02)], 0.0), Some(Breakdown::Always { smallest: 0.01 }));
        // A 20% model tolerance absorbs a 1.2 lower bound against 1.0.
        assert_eq!(breakdown_lr(&[fails(0.01), fails(0.02)], 0.2), Some(Breakdown::Never { largest: 0.02 }));
        assert!(!p(0.01, 1.0, f64::NAN, 2.0).holds(0.0));
    }

    #[test]
    fn breakdown_is_found_where_the_chain_and_the_sde_separate() {
        // L = 2, s = 2 (λ = 4), σ = 0.5, B = 4: the SDE's exact stationary variance against the
        // exact chain's (the "measurement", 4000 paths at 7 stationary times, 95% interval from
        // its standard error). Linearised (§7.2): chain/SDE ≈ 1 + ηλ/2, so the two separate
        // once ηλ/2 exceeds the interval's ~2% half-width: between η = 0.0025 (0.5%) and
        // η = 0.04 (8%).
        let lrs = [0.0025, 0.005, 0.01, 0.02, 0.04, 0.08];
        let scan: Vec<ScanPoint> = lrs
            .iter()
            .map(|&lr| {
                let mode = ModeParams { depth: 2, s: 2.0, sigma: 0.5, lr, batch: 4 }.check().unwrap();
                let predicted = mode.stationary_density(StationaryOptions::default()).unwrap().variance();
                let grid = TimeGrid::from_times((0..7).map(|i| 3.0 + 0.5 * f64::from(i)).collect()).unwrap();
                let stats = mode.ensemble(2.0, Dynamics::Chain, &EnsembleParams::new(4000, 3, grid)).unwrap();
                let v = mean(&stats.variance);
                // Var of a sample variance of Gaussian values: 2σ⁴/(n − 1), n = 7 × 4000.
                let half = 1.96 * v * (2.0f64 / (7.0 * 4000.0 - 1.0)).sqrt();
                ScanPoint { lr, predicted, ci_low: v - half, ci_high: v + half }
            })
            .collect();
        let b = breakdown_lr(&scan, 0.0).unwrap();
        assert!(scan[0].holds(0.0), "the SDE holds at ηλ = 0.01: {:?}", scan[0]);
        match b {
            Breakdown::At { lr, .. } => assert!((0.005..=0.04).contains(&lr), "{b:?} {scan:?}"),
            other => panic!("expected a breakdown inside the scan, got {other:?}: {scan:?}"),
        }
        // A model tolerance of 25% (larger than ηλ/2 + ηλ/B at the largest η) hides it.
        assert!(matches!(breakdown_lr(&scan, 0.25).unwrap(), Breakdown::Never { .. }));
    }
}
