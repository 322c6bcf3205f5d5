//! Host-side f64 linear algebra: seeded random orthonormal frames and their completion.

use nalgebra::DMatrix;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

/// A `rows × cols` matrix of i.i.d. standard normals, filled column by column.
pub(crate) fn gaussian_matrix<R: Rng + ?Sized>(rows: usize, cols: usize, rng: &mut R) -> DMatrix<f64> {
    let mut m = DMatrix::zeros(rows, cols);
    for v in m.iter_mut() {
        *v = StandardNormal.sample(rng);
    }
    m
}

/// Orthonormal columns from the QR decomposition of `a` (`rows ≥ cols`), with the signs fixed so
/// that `R` has a positive diagonal. For a Gaussian `a` this is Haar-distributed.
pub(crate) fn orthonormalize(a: DMatrix<f64>) -> DMatrix<f64> {
    let qr = a.qr();
    let r = qr.r();
    let mut q = qr.q();
    for (j, mut col) in q.column_iter_mut().enumerate() {
        if r[(j, j)] < 0.0 {
            col.neg_mut();
        }
    }
    q
}

/// A random `n × r` matrix with orthonormal columns (QR of a seeded Gaussian matrix).
pub(crate) fn random_orthonormal<R: Rng + ?Sized>(n: usize, r: usize, rng: &mut R) -> DMatrix<f64> {
    orthonormalize(gaussian_matrix(n, r, rng))
}

/// Completes the orthonormal columns of `q` (`n × r`) to an orthonormal basis of `Rⁿ`: the first
/// `r` columns of the result are those of `q`, the rest are random.
pub(crate) fn complete_basis<R: Rng + ?Sized>(q: &DMatrix<f64>, rng: &mut R) -> DMatrix<f64> {
    let (n, r) = q.shape();
    let mut a = gaussian_matrix(n, n, rng);
    a.columns_mut(0, r).copy_from(q);
    let full = orthonormalize(a);
    // QR keeps the span of the first r columns and, with positive diagonal, their exact
    // directions; copy them back to remove rounding.
    let mut full = full;
    full.columns_mut(0, r).copy_from(q);
    full
}

/// `‖a‖_F`.
pub(crate) fn frobenius(a: &DMatrix<f64>) -> f64 {
    a.norm()
}

/// The product `W_L ⋯ W_1` of `layers = [W_1, …, W_L]`.
pub(crate) fn chain_product(layers: &[DMatrix<f64>]) -> DMatrix<f64> {
    let mut it = layers.iter();
    let mut p = it.next().expect("at least one layer").clone();
    for w in it {
        p = w * p;
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use modewise_theory::ensemble::path_rng;

    #[test]
    fn orthonormal_columns_and_completion() {
        let mut rng = path_rng(3, 0);
        let q = random_orthonormal(7, 3, &mut rng);
        let gram = q.transpose() * &q;
        assert!((gram - DMatrix::<f64>::identity(3, 3)).norm() < 1e-12);
        let full = complete_basis(&q, &mut rng);
        assert_eq!(full.shape(), (7, 7));
        assert!((full.transpose() * &full - DMatrix::<f64>::identity(7, 7)).norm() < 1e-12);
        assert_eq!(full.columns(0, 3), q.columns(0, 3));
    }
}
