//! The hardware backend, chosen at run time: a name ↔ burn [`Device`] switch.
//!
//! burn 0.22's dispatch [`Device`] lets one code path serve every backend, so an experiment
//! switches hardware without being recompiled.

use burn::tensor::{Device, DeviceKind};
use modewise_theory::InvalidParameter;
use modewise_theory::check::{name_in, one_of};
use serde::{Deserialize, Serialize};

/// A hardware backend, chosen at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// burn-ndarray on the CPU (deprecated upstream in favour of flex; the default and the
    /// reference CPU backend).
    #[default]
    Ndarray,
    /// burn-flex, burn's pure-Rust CPU backend.
    Flex,
    /// burn-wgpu on the best adapter wgpu finds (a GPU, or Mesa's software Vulkan without one).
    Wgpu,
    /// burn's CUDA backend on the first NVIDIA GPU: only in a build with the cargo feature
    /// `cuda` ([`BackendKind::built`]); it loads the CUDA driver at run time.
    Cuda,
}

impl BackendKind {
    /// The one table of names (command line, specs, data files), in the order `--backend` lists
    /// them. Serde's `lowercase` names are the same; a test checks it.
    pub const NAMES: [(BackendKind, &'static str); 4] =
        [(Self::Ndarray, "ndarray"), (Self::Flex, "flex"), (Self::Wgpu, "wgpu"), (Self::Cuda, "cuda")];

    /// Every backend, in the order `--backend` lists them (also those this build lacks: see
    /// [`built`](Self::built)).
    pub const ALL: [BackendKind; 4] = [Self::NAMES[0].0, Self::NAMES[1].0, Self::NAMES[2].0, Self::NAMES[3].0];

    /// Whether this build has the backend: all but [`Cuda`](Self::Cuda), which needs the cargo
    /// feature `cuda` (`cargo build --release --features cuda`).
    pub const fn built(self) -> bool {
        !matches!(self, Self::Cuda) || cfg!(feature = "cuda")
    }

    /// Whether the backend runs on a GPU (through cubecl: wgpu, cuda), where the training data
    /// are drawn on the device and the gradient path `auto` is the closed form on tensors.
    pub const fn is_gpu(self) -> bool {
        matches!(self, Self::Wgpu | Self::Cuda)
    }

    /// The name used on the command line and in data files.
    pub fn name(self) -> &'static str {
        name_in(&self, &Self::NAMES)
    }

    /// The burn device of this backend (lazy: nothing is initialised until first use).
    ///
    /// # Panics
    ///
    /// For a backend this build lacks ([`built`](Self::built) is false): checking a run's
    /// parameters refuses it first, naming the field.
    pub fn device(self) -> Device {
        match self {
            // burn 0.22 deprecates ndarray in favour of flex; the project keeps it as the
            // reference CPU backend, measured side by side with flex.
            #[allow(deprecated)]
            Self::Ndarray => Device::ndarray(),
            Self::Flex => Device::flex(),
            Self::Wgpu => Device::wgpu(DeviceKind::DefaultDevice),
            #[cfg(feature = "cuda")]
            Self::Cuda => Device::cuda(0),
            #[cfg(not(feature = "cuda"))]
            Self::Cuda => panic!("this build has no CUDA backend (the cargo feature `cuda`)"),
        }
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for BackendKind {
    type Err = InvalidParameter;

    fn from_str(s: &str) -> Result<Self, InvalidParameter> {
        one_of("backend", s, &Self::NAMES)
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
        let err = "tpu".parse::<BackendKind>().unwrap_err();
        assert_eq!(err.to_string(), "backend: must be one of ndarray, flex, wgpu, cuda (got tpu)");
        assert_eq!(BackendKind::ALL.map(BackendKind::name), ["ndarray", "flex", "wgpu", "cuda"]);
        assert_eq!(BackendKind::Cuda.built(), cfg!(feature = "cuda"));
        assert!(BackendKind::ALL.iter().filter(|b| **b != BackendKind::Cuda).all(|b| b.built()));
        // Specs spell backends as serde does: the same names.
        use serde::de::{IntoDeserializer, value::Error};
        for (b, name) in BackendKind::NAMES {
            assert_eq!(BackendKind::deserialize(IntoDeserializer::<Error>::into_deserializer(name)), Ok(b));
        }
    }
}
