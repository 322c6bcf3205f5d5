//! Time grids on which ensembles are recorded (log-spaced by default: saddle plateaus span
//! decades of time).

use serde::{Deserialize, Serialize};

use crate::check::{at_least, non_negative, positive};
use crate::{Result, TheoryError};

/// Increasing, non-negative times (in units of `t = η · step`) at which to record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeGrid {
    times: Vec<f64>,
}

impl Default for TimeGrid {
    /// `t = 0` and 60 log-spaced times from `10⁻²` to `10³`: five decades, enough for the
    /// plateaus of small initialisations at unit singular values.
    fn default() -> Self {
        Self::log_spaced(1e-2, 1e3, 60).expect("valid default grid")
    }
}

impl TimeGrid {
    /// `t = 0` followed by `points` log-spaced times from `t_min` to `t_max` (both included).
    /// Needs `0 < t_min < t_max` finite and `points ≥ 2`.
    pub fn log_spaced(t_min: f64, t_max: f64, points: usize) -> Result<Self> {
        positive("t_min", t_min)?;
        positive("t_max", t_max)?;
        if t_max <= t_min {
            return Err(TheoryError::invalid("t_max", format!("must exceed t_min = {t_min}"), t_max));
        }
        at_least("points", points, 2)?;
        let (l0, l1) = (t_min.ln(), t_max.ln());
        let mut times = vec![0.0];
        times.extend((0..points).map(|i| (l0 + (l1 - l0) * i as f64 / (points - 1) as f64).exp()));
        // Exact end points, whatever exp(ln(·)) rounds to.
        times[1] = t_min;
        *times.last_mut().expect("non-empty") = t_max;
        Ok(Self { times })
    }

    /// `points` evenly spaced times from 0 to `t_max` (both included); `points ≥ 2`.
    pub fn linear(t_max: f64, points: usize) -> Result<Self> {
        positive("t_max", t_max)?;
        at_least("points", points, 2)?;
        Ok(Self { times: (0..points).map(|i| t_max * i as f64 / (points - 1) as f64).collect() })
    }

    /// A grid from explicit times: non-empty, finite, `≥ 0`, strictly increasing.
    pub fn from_times(times: Vec<f64>) -> Result<Self> {
        if times.is_empty() {
            return Err(TheoryError::invalid("times", "must hold at least one time", "[]"));
        }
        for (i, &t) in times.iter().enumerate() {
            non_negative(&format!("times[{i}]"), t)?;
            if i > 0 && t <= times[i - 1] {
                return Err(TheoryError::invalid(format!("times[{i}]"), "times must be strictly increasing", t));
            }
        }
        Ok(Self { times })
    }

    /// The times.
    pub fn times(&self) -> &[f64] {
        &self.times
    }

    /// The last time.
    pub fn t_max(&self) -> f64 {
        *self.times.last().expect("a grid is never empty")
    }

    /// The grid snapped to steps of size `dt` (`round(t / dt)`), duplicates removed.
    pub fn steps(&self, dt: f64) -> Vec<u64> {
        let mut steps: Vec<u64> = self.times.iter().map(|t| (t / dt).round() as u64).collect();
        steps.dedup();
        steps
    }
}
