//! Sample statistics shared by the verdicts and the figures: the mean and unbiased variance of a
//! sample, and the same across members per probe step.
//!
//! Every sum runs in the order the values were given (left to right), so that the verdicts
//! computed while training and the figures redrawn from the tables get the same numbers.

use std::collections::BTreeMap;

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
}
