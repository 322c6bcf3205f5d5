//! The deep linear network `W_L ⋯ W_1` as a burn [`Module`], batched over ensemble members.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor, TensorData};
use nalgebra::DMatrix;

use crate::DlnError;
use crate::error::Result;

/// A bias-free deep linear network `f(x) = W_L ⋯ W_1 x`, stored for `E` ensemble members at once.
///
/// Layer `l` (`l = 1, …, L`) is one parameter tensor of shape `[E, d_l, d_{l−1}]`: member `e`'s
/// matrix `W_l ∈ R^{d_l × d_{l−1}}` in the *column-vector* convention of the theory (`h_l = W_l
/// h_{l−1}`). This is the transpose of burn's `Linear`, which stores `[d_in, d_out]` and computes
/// `x W` on row vectors. A single network is the ensemble `E = 1`. Inputs are batched as
/// `[E, d_0, B]` (one column per sample) and outputs come back as `[E, d_L, B]`.
///
/// The tensors live on whichever burn [`Device`] the network was built on (see
/// [`BackendKind`](crate::BackendKind)), in f32 (an f64 run of the fused path hands its weights
/// out here rounded to f32; read them in f64 with `Trainer::host_layers`).
#[derive(Module, Debug)]
pub struct Dln {
    /// `layers[l − 1]` is `W_l`, shape `[E, d_l, d_{l−1}]`.
    pub layers: Vec<Param<Tensor<3>>>,
}

impl Dln {
    /// Builds the network from host matrices: `members[e][l − 1]` is member `e`'s `W_l`.
    /// Every member must have the same dimensions.
    pub fn from_host(members: &[Vec<DMatrix<f64>>], device: &Device) -> Result<Self> {
        let tensors = host_to_tensors(members, device)?;
        Ok(Self::from_tensors(tensors))
    }

    /// Wraps layer tensors `[E, d_l, d_{l−1}]` as parameters.
    pub fn from_tensors(tensors: Vec<Tensor<3>>) -> Self {
        Self { layers: tensors.into_iter().map(Param::from_tensor).collect() }
    }

    /// The layer tensors `[W_1, …, W_L]`.
    pub fn tensors(&self) -> Vec<Tensor<3>> {
        self.layers.iter().map(|p| p.val()).collect()
    }

    /// Depth `L`.
    pub fn depth(&self) -> usize {
        self.layers.len()
    }

    /// Number of ensemble members `E`.
    pub fn members(&self) -> usize {
        self.layers[0].val().dims()[0]
    }

    /// Dimensions `[d_0, …, d_L]`.
    pub fn dims(&self) -> Vec<usize> {
        let mut dims = vec![self.layers[0].val().dims()[2]];
        dims.extend(self.layers.iter().map(|p| p.val().dims()[1]));
        dims
    }

    /// The forward map on inputs `[E, d_0, B]`, giving `[E, d_L, B]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.layers.iter().fold(x, |h, w| w.val().matmul(h))
    }

    /// The end-to-end map `W = W_L ⋯ W_1`, `[E, d_L, d_0]`.
    pub fn end_to_end(&self) -> Tensor<3> {
        let mut it = self.layers.iter();
        let first = it.next().expect("a network has at least one layer").val();
        it.fold(first, |p, w| w.val().matmul(p))
    }

    /// Reads the weights back to the host in f64: `[member][layer]`.
    pub fn to_host(&self) -> Result<Vec<Vec<DMatrix<f64>>>> {
        tensors_to_host(&self.tensors())
    }
}

/// Uploads `members[e][l]` as layer tensors `[E, d_l, d_{l−1}]` (f32).
pub(crate) fn host_to_tensors(members: &[Vec<DMatrix<f64>>], device: &Device) -> Result<Vec<Tensor<3>>> {
    let first = members.first().ok_or_else(|| DlnError::invalid("members", "must hold at least one", 0))?;
    let depth = first.len();
    (0..depth)
        .map(|l| {
            let (rows, cols) = first[l].shape();
            let mut buf = Vec::with_capacity(members.len() * rows * cols);
            for (e, m) in members.iter().enumerate() {
                if m.len() != depth || m[l].shape() != (rows, cols) {
                    return Err(DlnError::invalid(
                        format!("members[{e}]"),
                        "every member must have the same layer shapes",
                        format!("{:?}", m.iter().map(|w| w.shape()).collect::<Vec<_>>()),
                    ));
                }
                push_row_major(&mut buf, &m[l]);
            }
            Ok(Tensor::from_data(TensorData::new(buf, [members.len(), rows, cols]), device))
        })
        .collect()
}

/// Appends `m` in row-major order, as f32.
pub(crate) fn push_row_major(buf: &mut Vec<f32>, m: &DMatrix<f64>) {
    for i in 0..m.nrows() {
        for j in 0..m.ncols() {
            buf.push(m[(i, j)] as f32);
        }
    }
}

/// Reads a `[E, r, c]` tensor back as `E` host matrices.
pub(crate) fn tensor3_to_host(t: &Tensor<3>) -> Result<Vec<DMatrix<f64>>> {
    let [e, r, c] = t.dims();
    let data = t.to_data();
    let v: Vec<f32> = data.try_to_vec::<f32>().map_err(|err| DlnError::Backend {
        backend: format!("{:?}", t.device()),
        reason: format!("reading a tensor back failed: {err:?}"),
    })?;
    Ok((0..e).map(|k| DMatrix::from_fn(r, c, |i, j| v[k * r * c + i * c + j] as f64)).collect())
}

/// Reads layer tensors back as `[member][layer]` host matrices.
pub(crate) fn tensors_to_host(tensors: &[Tensor<3>]) -> Result<Vec<Vec<DMatrix<f64>>>> {
    let per_layer: Vec<Vec<DMatrix<f64>>> = tensors.iter().map(tensor3_to_host).collect::<Result<_>>()?;
    let e = per_layer.first().map_or(0, |l| l.len());
    Ok((0..e).map(|k| per_layer.iter().map(|l| l[k].clone()).collect()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BackendKind;

    #[test]
    fn forward_is_the_end_to_end_product_and_host_round_trips() {
        let device = BackendKind::Flex.device();
        let w1 = DMatrix::from_row_slice(3, 2, &[1.0, 2.0, 0.0, 1.0, -1.0, 0.5]);
        let w2 = DMatrix::from_row_slice(1, 3, &[0.5, -1.0, 2.0]);
        let members = vec![vec![w1.clone(), w2.clone()], vec![w1.clone() * 2.0, w2.clone()]];
        let net = Dln::from_host(&members, &device).unwrap();
        assert_eq!(net.dims(), vec![2, 3, 1]);
        assert_eq!(net.members(), 2);
        assert_eq!(net.to_host().unwrap(), members);
        let e2e = tensor3_to_host(&net.end_to_end()).unwrap();
        assert_eq!(e2e[0], &w2 * &w1);
        assert_eq!(e2e[1], &w2 * &w1 * 2.0);
        let x = Tensor::<3>::from_data(
            TensorData::new(vec![1.0f32, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0], [2, 2, 2]),
            &device,
        );
        let y = tensor3_to_host(&net.forward(x)).unwrap();
        assert_eq!(y[0], &w2 * &w1);
    }
}
