//! The wgpu backend (a GPU, or Mesa's software Vulkan driver in CI) agrees with ndarray.

mod common;

use common::*;
use modewise_dln::*;

/// A short run gives the same weights on ndarray and wgpu within f32 tolerance, with both
/// gradient paths, and wgpu is reproducible.
#[test]
fn wgpu_agrees_with_ndarray_on_a_short_run() {
    let reference = final_layers(&small_run(BackendKind::Ndarray, vec![1, 2], 50, GradientPath::ClosedForm));
    for gradient in [GradientPath::ClosedForm, GradientPath::Autodiff] {
        let wgpu = final_layers(&small_run(BackendKind::Wgpu, vec![1, 2], 50, gradient));
        let d = max_rel_diff(&reference, &wgpu);
        assert!(d < 1e-4, "{gradient:?}: relative difference {d}");
    }
    let again = final_layers(&small_run(BackendKind::Wgpu, vec![1, 2], 50, GradientPath::ClosedForm));
    let first = final_layers(&small_run(BackendKind::Wgpu, vec![1, 2], 50, GradientPath::ClosedForm));
    assert_eq!(again, first, "same seed, same backend");
}

/// Flex agrees with ndarray too.
#[test]
fn flex_agrees_with_ndarray() {
    let a = final_layers(&small_run(BackendKind::Ndarray, vec![3], 100, GradientPath::Autodiff));
    let b = final_layers(&small_run(BackendKind::Flex, vec![3], 100, GradientPath::Autodiff));
    assert!(max_rel_diff(&a, &b) < 1e-4);
}
