//! Bracketed root finding for the scalar equations of the theory that have no convenient
//! closed form (peak locations, thresholds): bisection down to adjacent doubles.

/// A root of `f` in `[lo, hi]`, where `f(lo)` and `f(hi)` have opposite signs (or one is 0),
/// by bisection until the bracket holds no double strictly inside (at most 2100 halvings, the
/// number of doubles' exponents and mantissa bits). Returns the end point where `f` is 0 when
/// there is one, and the midpoint of the final bracket otherwise.
pub(crate) fn bisect(f: impl Fn(f64) -> f64, lo: f64, hi: f64) -> f64 {
    let (mut lo, mut hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
    let (f_lo, f_hi) = (f(lo), f(hi));
    if f_lo == 0.0 {
        return lo;
    }
    if f_hi == 0.0 {
        return hi;
    }
    let rising = f_hi > f_lo;
    for _ in 0..2100 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        let v = f(mid);
        if v == 0.0 {
            return mid;
        }
        if (v > 0.0) == rising {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    0.5 * (lo + hi)
}

#[cfg(test)]
mod tests {
    use super::bisect;

    #[test]
    fn finds_roots_to_adjacent_doubles() {
        let r = bisect(|x| x * x - 2.0, 0.0, 2.0);
        assert!((r - std::f64::consts::SQRT_2).abs() <= 2.0 * f64::EPSILON);
        let r = bisect(|x| (-x).exp() - 0.25, 5.0, 0.0);
        assert!((r - 4f64.ln()).abs() <= 4.0 * f64::EPSILON, "{r}");
        assert_eq!(bisect(|x| x - 1.0, 1.0, 3.0), 1.0);
    }
}
