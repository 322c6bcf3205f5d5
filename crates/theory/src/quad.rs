//! Numerical quadrature shared by the formulas that have no closed form: adaptive composite
//! Gauss–Legendre on smooth integrands (nodes from the `gauss-quad` crate).

use std::num::NonZeroUsize;
use std::sync::OnceLock;

use gauss_quad::GaussLegendre;

/// Nodes per panel of the adaptive rule.
const DEGREE: usize = 20;
/// Deepest bisection of the adaptive rule (a panel is at least `(b − a) / 2^MAX_DEPTH`).
const MAX_DEPTH: u32 = 30;
/// Most panels one integral may split into (a guard against integrands that are not smooth).
const MAX_PANELS: usize = 4096;

fn rule() -> &'static GaussLegendre {
    static RULE: OnceLock<GaussLegendre> = OnceLock::new();
    RULE.get_or_init(|| GaussLegendre::new(NonZeroUsize::new(DEGREE).expect("degree is non-zero")))
}

/// One fixed-order Gauss–Legendre panel on `[a, b]`.
pub(crate) fn panel(f: &mut impl FnMut(f64) -> f64, a: f64, b: f64) -> f64 {
    rule().integrate(a, b, f)
}

/// `∫_a^b f` by adaptive bisection of 20-point Gauss–Legendre panels, to tolerance `tol`
/// relative to `∫_a^b |f|` (so an integral that cancels to nearly 0 does not chase rounding
/// noise). `f` must be smooth on `[a, b]`; singularities are subtracted analytically by the
/// callers.
pub(crate) fn integrate(mut f: impl FnMut(f64) -> f64, a: f64, b: f64, tol: f64) -> f64 {
    if a == b {
        return 0.0;
    }
    let whole = panel(&mut f, a, b);
    let magnitude = panel(&mut |x| f(x).abs(), a, b);
    let scale = magnitude.max(whole.abs()).max(f64::MIN_POSITIVE);
    let mut budget = MAX_PANELS;
    refine(&mut f, a, b, whole, tol * scale, 0, &mut budget)
}

fn refine(
    f: &mut impl FnMut(f64) -> f64,
    a: f64,
    b: f64,
    whole: f64,
    abs_tol: f64,
    depth: u32,
    budget: &mut usize,
) -> f64 {
    let m = 0.5 * (a + b);
    let left = panel(f, a, m);
    let right = panel(f, m, b);
    let both = left + right;
    *budget = budget.saturating_sub(2);
    // Rounding limits what any refinement can reach: a few ulps of the panel magnitudes.
    let floor = 64.0 * f64::EPSILON * (left.abs() + right.abs());
    if (both - whole).abs() <= abs_tol.max(floor) || depth >= MAX_DEPTH || *budget == 0 {
        return both;
    }
    refine(f, a, m, left, abs_tol / 2.0, depth + 1, budget) + refine(f, m, b, right, abs_tol / 2.0, depth + 1, budget)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integrates_known_integrals() {
        let i = integrate(|x| x.exp(), 0.0, 3.0, 1e-13);
        assert!((i - (3f64.exp() - 1.0)).abs() < 1e-11);
        let i = integrate(|x| 1.0 / (1.0 + x * x), -50.0, 50.0, 1e-13);
        assert!((i - 2.0 * 50f64.atan()).abs() < 1e-11, "{i}");
        assert_eq!(integrate(|x| x, 2.0, 2.0, 1e-12), 0.0);
        let i = integrate(|x| x * x, 1.0, 0.0, 1e-13);
        assert!((i + 1.0 / 3.0).abs() < 1e-14);
    }
}
