//! Sample statistics shared by the verdicts and the figures: the mean and unbiased variance of a
//! sample, the same across members per probe step, confidence intervals over seeds (Student's t
//! for a mean, a seeded expanded-percentile bootstrap for other statistics), and the curve
//! estimators the verdicts apply alike to a measured and a predicted curve
//! (first crossing of a level, parabolic vertex of a maximum, log-linear decay rate).
//!
//! Every sum runs in the order the values were given (left to right), so that the verdicts
//! computed while training and the figures redrawn from the tables get the same numbers.

use std::collections::BTreeMap;

use rand::Rng;
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// The mean of `xs` (NaN when empty).
pub fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// The unbiased (`n − 1`) variance of `xs`, two-pass: the mean first, then the squared
/// deviations from it (NaN with fewer than two values).
pub fn variance(xs: &[f64]) -> f64 {
    let m = mean(xs);
    xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len() as f64 - 1.0)
}

/// The values of one quantity across members, per probe step: each step keeps its time (the
/// first given) and its values in the order given. Steps come out in increasing order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PerStep {
    steps: BTreeMap<u64, (f64, Vec<f64>)>,
}

impl PerStep {
    /// Adds a member's `value` at probe `step`, time `t`.
    pub fn push(&mut self, step: u64, t: f64, value: f64) {
        self.steps.entry(step).or_insert_with(|| (t, Vec::new())).1.push(value);
    }

    /// Whether no value was added.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// `(t, mean)` per step, in step order.
    pub fn means(&self) -> Vec<(f64, f64)> {
        self.steps.values().map(|(t, v)| (*t, mean(v))).collect()
    }

    /// `(t, unbiased variance)` per step holding at least two values, in step order.
    pub fn variances(&self) -> Vec<(f64, f64)> {
        self.steps.values().filter(|(_, v)| v.len() >= 2).map(|(t, v)| (*t, variance(v))).collect()
    }

    /// `(t, mean, standard error)` per step holding at least two values, in step order.
    pub fn means_with_se(&self) -> Vec<(f64, f64, f64)> {
        self.steps
            .values()
            .filter(|(_, v)| v.len() >= 2)
            .map(|(t, v)| (*t, mean(v), (variance(v) / v.len() as f64).sqrt()))
            .collect()
    }

    /// The number of values at `step` (0 when it has none).
    pub fn count(&self, step: u64) -> usize {
        self.steps.get(&step).map_or(0, |(_, v)| v.len())
    }
}

impl FromIterator<(u64, f64, f64)> for PerStep {
    /// Collects `(step, t, value)` triples.
    fn from_iter<I: IntoIterator<Item = (u64, f64, f64)>>(iter: I) -> Self {
        let mut out = Self::default();
        for (step, t, value) in iter {
            out.push(step, t, value);
        }
        out
    }
}

/// Resamples of the bootstrap confidence intervals.
pub const BOOTSTRAP_RESAMPLES: usize = 2000;

/// Confidence level of the bootstrap intervals.
pub const CONFIDENCE: f64 = 0.95;

/// A two-sided confidence interval `[low, high]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// Lower end.
    pub low: f64,
    /// Upper end.
    pub high: f64,
}

impl Interval {
    /// The interval `[low, high]` shifted by `by`.
    pub fn shifted(self, by: f64) -> Self {
        Self { low: self.low + by, high: self.high + by }
    }

    /// No interval (both ends NaN).
    pub const NONE: Self = Self { low: f64::NAN, high: f64::NAN };
}

/// The `1 − (1 − CONFIDENCE)/2` quantile of Student's t law with `n − 1` degrees of freedom.
pub fn t_quantile(n: usize) -> f64 {
    let law = StudentsT::new(0.0, 1.0, (n - 1) as f64).expect("positive degrees of freedom");
    law.inverse_cdf(1.0 - (1.0 - CONFIDENCE) / 2.0)
}

/// Student's t interval of the mean of `values` (one per seed): `mean ± t_{n−1} s/√n`, exact
/// for Gaussian values and the right width at a handful of seeds (where a percentile bootstrap
/// is too narrow). With fewer than two values, [`Interval::NONE`].
pub fn t_interval(values: &[f64]) -> Interval {
    let n = values.len();
    if n < 2 {
        return Interval::NONE;
    }
    let (m, half) = (mean(values), t_quantile(n) * (variance(values) / n as f64).sqrt());
    Interval { low: m - half, high: m + half }
}

/// The expanded percentile bootstrap interval of `statistic` over `units` (one unit per seed):
/// the statistic of [`BOOTSTRAP_RESAMPLES`] resamples of the units drawn with replacement from
/// `rng`, and the quantiles `α′/2` and `1 − α′/2` of those values (linear interpolation between
/// order statistics), where `α′` widens the nominal `α = 1 − CONFIDENCE` for small samples:
/// `Φ⁻¹(1 − α′/2) = sqrt(n/(n − 1)) t_{n−1}(1 − α/2)` (Hesterberg, *What teachers should know
/// about the bootstrap*, The American Statistician 69, 2015; the plain percentile interval covers
/// a mean of 4 seeds about 80% of the time, not 95%). Resamples whose statistic is not finite are
/// left out; with fewer than two units or no finite resample the interval is [`Interval::NONE`].
/// Deterministic for a given `rng` state, whatever the thread count.
///
/// An index is drawn as `next_u64() mod n` (the bias, below `n/2⁶⁴`, is immaterial for a few
/// hundred seeds), so the resamples depend only on the generator's stream, not on the `rand`
/// crate's range sampling.
pub fn bootstrap<T: Clone>(units: &[T], statistic: impl Fn(&[T]) -> f64, rng: &mut impl Rng) -> Interval {
    let n = units.len();
    if n < 2 {
        return Interval::NONE;
    }
    let mut resample = units.to_vec();
    let mut values = Vec::with_capacity(BOOTSTRAP_RESAMPLES);
    for _ in 0..BOOTSTRAP_RESAMPLES {
        for slot in resample.iter_mut() {
            *slot = units[(rng.next_u64() % n as u64) as usize].clone();
        }
        let v = statistic(&resample);
        if v.is_finite() {
            values.push(v);
        }
    }
    if values.is_empty() {
        return Interval::NONE;
    }
    values.sort_by(f64::total_cmp);
    let z = (n as f64 / (n - 1) as f64).sqrt() * t_quantile(n);
    let alpha = Normal::new(0.0, 1.0).expect("the standard normal").sf(z);
    Interval { low: quantile(&values, alpha), high: quantile(&values, 1.0 - alpha) }
}

/// The `p`-quantile of sorted `values` (linear interpolation between order statistics, the
/// "type 7" rule of Hyndman and Fan 1996).
pub fn quantile(sorted: &[f64], p: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * p;
    let (lo, frac) = (h.floor() as usize, h - h.floor());
    match sorted.get(lo + 1) {
        Some(&next) => sorted[lo] + frac * (next - sorted[lo]),
        None => sorted[lo],
    }
}

/// The first time at which the curve `(t, y)` reaches `level` from below: `t[0]` if it starts at
/// or above it, otherwise linearly interpolated between the last probe below and the first at or
/// above. `None` if it never does. Applied alike to a measured and a predicted curve on the same
/// probe times, the interpolation error of the two is nearly the same.
pub fn first_crossing(t: &[f64], y: &[f64], level: f64) -> Option<f64> {
    let j = y.iter().position(|&v| v >= level)?;
    if j == 0 {
        return Some(t[0]);
    }
    let (t0, t1, y0, y1) = (t[j - 1], t[j], y[j - 1], y[j]);
    Some(t0 + (t1 - t0) * (level - y0) / (y1 - y0))
}

/// The vertex `(x*, y*)` of the parabola through three points, when it opens downwards and its
/// vertex lies between the outer two `x` (the refinement of a sampled maximum at the middle
/// point); `None` otherwise (then the sampled maximum is the estimate).
pub fn parabola_vertex(p0: (f64, f64), p1: (f64, f64), p2: (f64, f64)) -> Option<(f64, f64)> {
    let ((x0, y0), (x1, y1), (x2, y2)) = (p0, p1, p2);
    // Newton's divided differences: y = y0 + d1 (x − x0) + a (x − x0)(x − x1).
    let d1 = (y1 - y0) / (x1 - x0);
    let d2 = (y2 - y1) / (x2 - x1);
    let a = (d2 - d1) / (x2 - x0);
    if !(a < 0.0 && a.is_finite() && d1.is_finite()) {
        return None;
    }
    let x = 0.5 * (x0 + x1) - d1 / (2.0 * a);
    let (lo, hi) = (x0.min(x2), x0.max(x2));
    if !(lo..=hi).contains(&x) {
        return None;
    }
    Some((x, y0 + d1 * (x - x0) + a * (x - x0) * (x - x1)))
}

/// The least-squares slope of `y` against `x` (NaN with fewer than two distinct `x`).
pub fn slope(x: &[f64], y: &[f64]) -> f64 {
    let (mx, my) = (mean(x), mean(y));
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let sxx: f64 = x.iter().map(|a| (a - mx) * (a - mx)).sum();
    sxy / sxx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_mean_and_unbiased_variance_by_hand() {
        // 1, 2, 4: mean 7/3; squared deviations 16/9, 1/9, 25/9 sum to 42/9; over n − 1 = 2: 7/3.
        assert_eq!(mean(&[1.0, 2.0, 4.0]), 7.0 / 3.0);
        assert!((variance(&[1.0, 2.0, 4.0]) - 7.0 / 3.0).abs() < 1e-15);
        assert_eq!(variance(&[3.0, 3.0]), 0.0);
        assert!(mean(&[]).is_nan());
        assert!(variance(&[5.0]).is_nan(), "one value has no unbiased variance");
    }

    #[test]
    fn sums_run_left_to_right() {
        // (1e16 + 1) + 1 rounds back to 1e16 twice; a pairwise or reversed sum would not.
        let xs = [1e16, 1.0, 1.0];
        assert_eq!(mean(&xs), ((1e16 + 1.0) + 1.0) / 3.0);
        assert_eq!(mean(&xs), 1e16 / 3.0);
    }

    #[test]
    fn per_step_groups_members_and_keeps_the_first_time() {
        // Two members at steps 0 and 10, a third member only at step 10; steps given out of order.
        let per: PerStep =
            [(10, 0.1, 3.0), (0, 0.0, 1.0), (10, 0.1, 5.0), (0, 0.0, 2.0), (10, 0.2, 7.0)].into_iter().collect();
        assert_eq!(per.means(), vec![(0.0, 1.5), (0.1, 5.0)]);
        // Step 0: 1, 2 → 0.5; step 10: 3, 5, 7 → mean 5, (4 + 0 + 4) / 2 = 4.
        assert_eq!(per.variances(), vec![(0.0, 0.5), (0.1, 4.0)]);
        assert_eq!((per.count(0), per.count(10), per.count(5)), (2, 3, 0));
        let single: PerStep = [(0, 0.0, 1.0), (1, 0.5, 2.0), (1, 0.5, 4.0)].into_iter().collect();
        assert_eq!(single.variances(), vec![(0.5, 2.0)], "a step with one value has no variance");
        assert!(PerStep::default().is_empty() && !single.is_empty());
    }

    #[test]
    fn quantiles_interpolate_between_order_statistics() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert_eq!(quantile(&v, 1.0), 5.0);
        assert_eq!(quantile(&v, 0.5), 3.0);
        // h = 4 · 0.025 = 0.1: 1 + 0.1 · (2 − 1).
        assert!((quantile(&v, 0.025) - 1.1).abs() < 1e-15);
    }

    #[test]
    fn t_intervals_use_students_quantile() {
        // t_{3, 0.975} = 3.1824 (tables); values 1, 2, 3, 4: mean 2.5, s² = 5/3.
        assert!((t_quantile(4) - 3.182446).abs() < 1e-5);
        let ci = t_interval(&[1.0, 2.0, 3.0, 4.0]);
        let half = 3.182446 * (5.0 / 3.0 / 4.0f64).sqrt();
        assert!((ci.low - (2.5 - half)).abs() < 1e-5 && (ci.high - (2.5 + half)).abs() < 1e-5, "{ci:?}");
        assert!(t_interval(&[1.0]).low.is_nan());
    }

    #[test]
    fn the_expanded_bootstrap_is_as_wide_as_the_t_interval_at_four_seeds() {
        use rand::SeedableRng;
        // The plain percentile interval of a mean of 4 is about half the t interval; the
        // expanded one is close to it.
        let xs = [0.3, -1.2, 0.8, 2.1];
        let boot = bootstrap(&xs, mean, &mut rand_pcg::Pcg64::seed_from_u64(3));
        let t = t_interval(&xs);
        let ratio = (boot.high - boot.low) / (t.high - t.low);
        assert!((0.6..1.1).contains(&ratio), "expanded bootstrap / t width = {ratio}");
    }

    #[test]
    fn the_bootstrap_of_a_mean_covers_it_with_the_standard_error() {
        use rand::SeedableRng;
        // 400 draws of a standard normal: the mean's 95% interval has half-width ≈ 1.96/20.
        let mut normals = rand_pcg::Pcg64::seed_from_u64(1);
        let xs: Vec<f64> =
            (0..400).map(|_| rand_distr::Distribution::sample(&rand_distr::StandardNormal, &mut normals)).collect();
        let mut rng = rand_pcg::Pcg64::seed_from_u64(2);
        let ci = bootstrap(&xs, mean, &mut rng);
        let m = mean(&xs);
        assert!(ci.low < m && m < ci.high, "{ci:?} around {m}");
        let half = 0.5 * (ci.high - ci.low);
        let se = (variance(&xs) / 400.0).sqrt();
        assert!((half / (1.96 * se) - 1.0).abs() < 0.1, "half-width {half} against 1.96 se = {}", 1.96 * se);
        // Deterministic: the same generator state gives the same interval.
        let again = bootstrap(&xs, mean, &mut rand_pcg::Pcg64::seed_from_u64(2));
        assert_eq!(ci, again);
        // Constant data: a point interval; one unit: none.
        let point = bootstrap(&[3.0, 3.0, 3.0], mean, &mut rng);
        assert_eq!((point.low, point.high), (3.0, 3.0));
        assert!(bootstrap(&[3.0], mean, &mut rng).low.is_nan());
    }

    #[test]
    fn crossings_interpolate_linearly_between_probes() {
        let t = [0.0, 1.0, 2.0, 4.0];
        let y = [0.0, 0.5, 0.7, 1.5];
        // 0.9 lies a quarter of the way from 0.7 (t = 2) to 1.5 (t = 4).
        assert!((first_crossing(&t, &y, 0.9).unwrap() - 2.5).abs() < 1e-15);
        assert_eq!(first_crossing(&t, &y, -1.0), Some(0.0), "already above at the start");
        assert_eq!(first_crossing(&t, &y, 2.0), None);
    }

    #[test]
    fn the_vertex_of_a_parabola_is_exact_and_refuses_minima() {
        // y = 3 − 2 (x − 1.3)² sampled at 1, 1.5, 2.5.
        let f = |x: f64| 3.0 - 2.0 * (x - 1.3) * (x - 1.3);
        let (x, y) = parabola_vertex((1.0, f(1.0)), (1.5, f(1.5)), (2.5, f(2.5))).unwrap();
        assert!((x - 1.3).abs() < 1e-12 && (y - 3.0).abs() < 1e-12, "{x} {y}");
        assert_eq!(parabola_vertex((0.0, 1.0), (1.0, 0.0), (2.0, 1.0)), None, "a minimum");
        assert_eq!(parabola_vertex((0.0, 0.0), (1.0, 1.0), (2.0, 2.0)), None, "a line");
    }

    #[test]
    fn the_slope_of_a_line_is_exact() {
        let x = [0.0, 1.0, 3.0];
        let y: Vec<f64> = x.iter().map(|v| 2.0 - 0.5 * v).collect();
        assert!((slope(&x, &y) + 0.5).abs() < 1e-15);
        assert!(slope(&[1.0, 1.0], &[0.0, 1.0]).is_nan());
    }
}
