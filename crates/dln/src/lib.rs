//! Deep linear networks on burn: for now the run-time choice of hardware backend; the model,
//! teacher, data, initialisations, trainer and probes arrive with the DLN issue.
//!
//! Backends are picked at run time through burn 0.22's dispatch [`Device`], so one code path
//! serves every backend and an experiment switches hardware without being recompiled.

#![warn(missing_docs)]

use burn::tensor::{Device, DeviceKind};
use serde::{Deserialize, Serialize};

/// Errors of the DLN crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DlnError {
    /// A parameter broke its rule.
    #[error("{field}: {rule} (got {value})")]
    InvalidParameter {
        /// The parameter's name.
        field: String,
        /// The rule, in words.
        rule: String,
        /// The offending value.
        value: String,
    },
}

/// A hardware backend, chosen at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// burn-ndarray on the CPU (deprecated upstream in favour of flex, kept as the reference).
    #[default]
    Ndarray,
    /// burn-flex, burn's pure-Rust CPU backend.
    Flex,
    /// burn-wgpu on the best adapter wgpu finds (a GPU, or Mesa's software Vulkan without one).
    Wgpu,
}

impl BackendKind {
    /// Every backend, in the order `--backend` lists them.
    pub const ALL: [BackendKind; 3] = [BackendKind::Ndarray, BackendKind::Flex, BackendKind::Wgpu];

    /// The name used on the command line and in data files.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ndarray => "ndarray",
            Self::Flex => "flex",
            Self::Wgpu => "wgpu",
        }
    }

    /// The burn device of this backend (lazy: nothing is initialised until first use).
    pub fn device(self) -> Device {
        match self {
            // burn 0.22 deprecates ndarray in favour of flex; the project keeps it as the
            // reference CPU backend until flex has been measured against it.
            #[allow(deprecated)]
            Self::Ndarray => Device::ndarray(),
            Self::Flex => Device::flex(),
            Self::Wgpu => Device::wgpu(DeviceKind::DefaultDevice),
        }
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for BackendKind {
    type Err = DlnError;

    fn from_str(s: &str) -> Result<Self, DlnError> {
        Self::ALL.into_iter().find(|b| b.name() == s).ok_or_else(|| DlnError::InvalidParameter {
            field: "backend".into(),
            rule: "must be one of ndarray, flex, wgpu".into(),
            value: s.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Tensor;

    #[test]
    fn cpu_backends_multiply_matrices() {
        for backend in [BackendKind::Ndarray, BackendKind::Flex] {
            let device = backend.device();
            let a = Tensor::<2>::from_floats([[1.0, 2.0], [3.0, 4.0]], &device);
            let b = Tensor::<2>::from_floats([[0.5, -1.0], [2.0, 0.0]], &device);
            let c: Vec<f32> = a.matmul(b).into_data().try_to_vec::<f32>().unwrap();
            assert_eq!(c, vec![4.5, -1.0, 9.5, -3.0], "{backend}");
        }
    }

    #[test]
    fn names_round_trip_and_unknown_names_are_rejected() {
        for b in BackendKind::ALL {
            assert_eq!(b.name().parse::<BackendKind>().unwrap(), b);
        }
        let err = "cuda".parse::<BackendKind>().unwrap_err();
        assert_eq!(err.to_string(), "backend: must be one of ndarray, flex, wgpu (got cuda)");
    }
}
