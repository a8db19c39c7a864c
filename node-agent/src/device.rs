//! The one place that picks the candle [`Device`].
//!
//! Default build: always the CPU (F32, bit-identical across runs and thread counts on
//! one machine). With the `cuda` cargo feature (off by default) the first CUDA GPU is
//! used when one is present, the CPU otherwise; `NTX_DEVICE=cpu` forces the CPU in such
//! a build (to compare the two on one machine). GPU results differ from CPU results in
//! the last bits, like results from different CPUs do; the verifier's tolerance rule
//! is what makes them acceptable, never equal hashes.

use candle_core::Device;

use crate::error::InferenceError;

/// What [`select_device`] picked, for logs.
pub fn describe(device: &Device) -> &'static str {
    match device {
        Device::Cpu => "cpu",
        Device::Cuda(_) => "cuda:0",
        Device::Metal(_) => "metal",
    }
}

/// The device inference runs on: CUDA GPU 0 when built with `cuda` and one is present
/// (unless `NTX_DEVICE=cpu`), the CPU otherwise.
pub fn select_device() -> Result<Device, InferenceError> {
    #[cfg(feature = "cuda")]
    if std::env::var("NTX_DEVICE").is_ok_and(|d| d.eq_ignore_ascii_case("cpu")) {
        Ok(Device::Cpu)
    } else {
        Device::cuda_if_available(0).map_err(InferenceError::candle("opening CUDA device 0"))
    }
    #[cfg(not(feature = "cuda"))]
    {
        Ok(Device::Cpu)
    }
}
